//! Domains: built from the boot bundle, isolated, scheduled, speaking Xen's hypercall ABI.

use xenolith_tests::{expect_all, expect_unordered, Boot, TIMEOUT};

#[test]
fn two_guests_both_make_progress() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/two-guests.toml").start();
    expect_all(&mut running, &["domain 0 (alpha) built", "domain 1 (beta) built"]);
    expect_unordered(
        &mut running,
        &[
            "alpha: hello from a Xenolith domain (1 vCPUs, 16 MiB at 0x40000000, Xen 4.17, hypervisor node: true)",
            // 24 MiB: beta's memory comes from its xl.cfg file (tests/manifests/xl/beta.cfg).
            "beta: hello from a Xenolith domain (1 vCPUs, 24 MiB at 0x40000000, Xen 4.17, hypervisor node: true)",
            "alpha: progress 3",
            "beta: progress 3",
        ],
    );
}

#[test]
fn two_guests_share_one_pcpu() {
    let mut running = Boot::new(1, "").manifest("tests/manifests/two-guests.toml").start();
    expect_unordered(&mut running, &["alpha: progress 2", "beta: progress 2"]);
}

#[test]
fn a_faulting_guest_is_crashed_alone_and_others_keep_running() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/isolation.toml").start();
    running.forbid("FAIL");
    expect_all(
        &mut running,
        &[
            "faulty: reading 0x10000000, outside my RAM",
            "domain 1: vCPU 0: read at IPA 0x10000000",
            "outside its memory; crashing it",
            "domain 1 (faulty) shut down: crash",
            "domain 1 destroyed; 16 MiB returned",
        ],
    );
    // The steady guest keeps going after the crash.
    expect_all(&mut running, &["steady: progress 3"]);
}

#[test]
fn unprivileged_domctl_and_sysctl_are_denied() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/isolation.toml").start();
    running.forbid("FAIL");
    expect_all(&mut running, &["nosy: PASS unprivileged domctl and sysctl denied"]);
}

#[test]
fn unknown_operations_get_enosys() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/isolation.toml").start();
    running.forbid("FAIL");
    expect_all(&mut running, &["curious: PASS unknown operations refused"]);
}

#[test]
fn multicall_vm_assist_platform_op_and_a_watchdog_answer_as_xen_on_arm() {
    let mut running = Boot::new(1, "").manifest("tests/manifests/hypercalls.toml").start();
    running.forbid("FAIL");
    expect_all(
        &mut running,
        &[
            "extras: PASS multicall, vm_assist, platform_op and sched_op extras",
            "domain 0: watchdog timer fired",
            "domain 0 (extras) shut down: watchdog",
        ],
    );
}

/// With a console domain in the system every other domain gets a console ring page, its port and
/// grant entry 0 for the console domain, which reads a line from the ring and answers into it.
#[test]
fn every_domain_gets_a_console_ring_its_console_domain_can_map() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/console-ring.toml").start();
    running.forbid("FAIL");
    expect_unordered(
        &mut running,
        &[
            "client: PASS console ring at 0x39000000",
            "server: PASS read from d1's console ring: hello through the console ring",
            "client: PASS input from the console domain: typed into the ring",
        ],
    );
}

/// What is typed on the UART reaches the domain holding `console`: `VIRQ_CONSOLE`, then
/// `CONSOLEIO_read`.
#[test]
fn typed_input_reaches_the_console_domain() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/console-input.toml").start();
    running.forbid("FAIL");
    expect_all(&mut running, &["reader: ready for input"]);
    running.type_input(b"hello core\r").unwrap_or_else(|error| panic!("{error:#}"));
    expect_all(&mut running, &["reader: PASS read input", "VIRQ_CONSOLE): hello core"]);
}

#[test]
fn hidden_cpu_features_read_as_absent_and_unemulated_registers_are_undefined() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/isolation.toml").start();
    running.forbid("FAIL");
    running.forbid("unhandled trap");
    expect_all(
        &mut running,
        &[
            "probe: PASS hidden CPU features read as absent",
            "probe: reading PMCR_EL0",
            // The guest's own vector 4 (synchronous, EL1h): EC 0x00 (unknown reason), IL.
            "unexpected exception 4 at EL1: ESR 0x2000000",
            "domain 4 (probe) shut down: crash",
        ],
    );
    expect_all(&mut running, &["steady: progress 3"]);
}

/// A control domain reads physinfo, lists, tunes, pauses and destroys a guest (every frame
/// back), gets `VIRQ_DOM_EXC`, may not pause itself, and reads the core's console ring
/// (`XEN_SYSCTL_readconsole`): a buffer that is unmapped or wraps is -EFAULT and clears nothing.
#[test]
fn the_control_domain_lists_tunes_pauses_and_destroys_a_guest() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/control.toml").start();
    running.forbid("FAIL");
    let built = running
        .wait_for("domain 2 (victim) built", TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}"));
    let before: u64 = number_before(&built, " frames were free before");
    expect_all(
        &mut running,
        &[
            "control: physinfo: 2 CPUs",
            "control: ID   Mem VCPUs State  Time(s)",
            "control: 2      32     1",
            "control: credit2 of d2: put 0, get 0: weight 1024 cap 50",
            "--p--",
        ],
    );
    let destroyed =
        running.wait_for("domain 2 destroyed", TIMEOUT).unwrap_or_else(|error| panic!("{error}"));
    let after: u64 = number_before(&destroyed, " frames free");
    assert_eq!(
        after, before,
        "the frame allocator did not get every frame of the destroyed guest back"
    );
    expect_all(
        &mut running,
        &[
            "control: readconsole: unmapped -14, wrapping -14, read 0 (256 bytes)",
            "control: VIRQ_DOM_EXC pending",
            "control: PASS control operations",
        ],
    );
    // The bystander is untouched.
    expect_all(&mut running, &["bystander: progress 3"]);
}

/// The number just before `suffix` in `line`.
fn number_before(line: &str, suffix: &str) -> u64 {
    let head = &line[..line.find(suffix).unwrap_or_else(|| panic!("no {suffix:?} in {line:?}"))];
    head.rsplit(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("no number in {line:?}"))
}

#[test]
fn a_four_vcpu_guest_brings_its_vcpus_up_with_psci() {
    let mut running = Boot::new(4, "").manifest("tests/manifests/smp-guest.toml").start();
    running.forbid("FAIL");
    expect_all(
        &mut running,
        &["domain 0 (quad) built", "quad: hello from a Xenolith domain (4 vCPUs"],
    );
    expect_unordered(
        &mut running,
        &[
            "vcpu 1 up (MPIDR 0x1)",
            "vcpu 2 up (MPIDR 0x2)",
            "vcpu 3 up (MPIDR 0x3)",
            "quad: PASS 4 vCPUs up",
        ],
    );
}

/// The frames a destroyed domain filled reach the next domain as zeros. The control domain
/// first builds a "dirtier" with all free memory but a few MiB, which fills its RAM with a
/// non-zero pattern, and destroys it; then it builds the child, whose RAM can only come from
/// those free frames, most of them filled: the control domain prints the least number of the
/// child's frames that must be filled ones, and with what the child checked this proves a
/// check of filled frames, whatever order the allocator hands frames out in.
#[test]
fn the_control_domain_builds_a_guest_that_sees_zeroed_memory_and_destroys_it() {
    let mut running =
        Boot::new(2, "").memory(256).manifest("tests/manifests/builder-scrub.toml").start();
    running.forbid("FAIL");
    // Unscrubbed frames show before the child's own check, too: its .bss holding the dirtier's
    // bytes (test-guest's 0xd1) crashes it, and its mailbox page holding them reads as a report.
    running.forbid("; crashing it");
    running.forbid("reported 0xd1d1d1d1d1d1d1d1 through its mailbox");
    expect_all(
        &mut running,
        &[
            "domain 0 (control) built",
            "control: the control domain is up",
            "domain 1 created by domain 0: 1 vCPU(s), paused",
        ],
    );
    expect_unordered(&mut running, &["to dirty its memory", "dirtier: filled "]);
    expect_all(&mut running, &["domain 1 destroyed"]);
    let dirtied = running
        .wait_for("control: domain 1 filled ", TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}"));
    let filled = number_before(&dirtied, " frames and is destroyed");
    expect_all(
        &mut running,
        &[
            "domain 1 created by domain 0: 1 vCPU(s), paused",
            "control: built domain 1 from test-guest (32 MiB) and unpaused it",
        ],
    );
    // The control domain's bound and the child's check, in whatever order they come.
    let lines = running
        .wait_for_all(
            &[
                "control: at least ",
                "child: hello from a Xenolith domain (1 vCPUs, 32 MiB at 0x40000000, Xen 4.17, hypervisor node: true)",
                "child: PASS fresh memory is zero (",
            ],
            TIMEOUT,
        )
        .unwrap_or_else(|error| panic!("{error}"));
    let at_least = number_before(&lines[0], " of domain 1's 8192 RAM frames were filled");
    // The child checked `checked_frames` of its 8192 frames (the RAM past its heap): at most
    // `8192 - checked_frames` of the filled ones can be among those it did not check.
    let checked_frames = number_before(&lines[2], " KiB checked") / 4;
    let checked_filled = (at_least + checked_frames).saturating_sub(8192);
    assert!(
        checked_filled >= 2048,
        "only {checked_filled} of the frames the child checked are sure to be ones the dirtier \
         filled ({filled} filled, at least {at_least} of the child's)"
    );
    eprintln!("the child checked {checked_filled} or more frames the dirtier had filled");
    expect_unordered(
        &mut running,
        &[
            "domain 1 destroyed",
            "control: domain 1 reported 0x50415353 through its mailbox",
            "control: took the last 2 MiB of domain 1 back",
            "control: 1      30     1",
            "control: PASS built, listed and destroyed domain 1",
        ],
    );
}

#[test]
fn vcpu_op_and_sched_block_answer_as_xen_on_arm() {
    let mut running = Boot::new(1, "").manifest("tests/manifests/vcpu-op.toml").start();
    running.forbid("FAIL");
    expect_all(
        &mut running,
        &["sleeper: blocked for", "sleeper: PASS vcpu_op and SCHEDOP_block as on Xen on Arm"],
    );
    expect_all(&mut running, &["busy: progress 2"]);
}

/// A vCPU that waits for its virtual timer is woken at the deadline (the core arms its own
/// timer for it), not at the next 10 ms tick. A busy guest shares the pCPU, so virtual time is
/// instructions only (measured: at most 708 us late, the scheduler's 1 ms rate limit included,
/// against 9,622 us with the tick alone).
#[test]
fn a_virtual_timer_wakes_its_sleeping_vcpu_on_time() {
    let mut running =
        Boot::new(1, "").manifest("tests/manifests/vtimer-latency.toml").icount().start();
    running.forbid("FAIL");
    running.forbid("unexpected interrupt");
    let line = running.wait_for("waker: PASS virtual timer wakes at most", TIMEOUT);
    println!("{}", line.unwrap_or_else(|error| panic!("{error}")));
}

#[test]
fn the_virtual_gic_delivers_virtual_timer_interrupts_and_sgis() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/vgic.toml").start();
    running.forbid("FAIL");
    running.forbid("unexpected interrupt");
    expect_unordered(
        &mut running,
        &["ticker: PASS 5 virtual timer interrupts", "pair: PASS vCPU 1 took SGI 1 from vCPU 0"],
    );
}
