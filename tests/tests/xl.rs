//! xl in the control domain (issue 16): commands typed at its console (the console domain's
//! input focus, moved with Ctrl-] three times, or with `xl console` and back with one Ctrl-]),
//! with xl's output; and xl from the host, over the control domain's virtio console (what
//! `cargo xtask xl` does).

use std::path::Path;
use std::time::Duration;

use xenolith_images::xl_client::{self, Answer, XlClientError};
use xenolith_tests::{expect_unordered, focus, type_line, Boot, Running, TIMEOUT};

/// Waits for `marker`, panicking with the serial tail on timeout.
fn wait(running: &mut Running, marker: &str) -> String {
    running.wait_for(marker, TIMEOUT).unwrap_or_else(|error| panic!("{error}"))
}

#[test]
fn xl_at_the_control_domains_console_lists_and_destroys() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/xl.toml").start();
    running.forbid("FAIL");
    wait(&mut running, "control: xl ready");
    focus(&mut running, "control");
    type_line(&mut running, "xl list");
    let header = wait(&mut running, "Name                                        ID   Mem VCPUs");
    let row = wait(&mut running, "spinner     ");
    println!("{header}\n{row}");
    type_line(&mut running, "xl vcpu-list spinner");
    println!("{}", wait(&mut running, "VCPU   CPU State"));
    println!("{}", wait(&mut running, "spinner     "));
    type_line(&mut running, "xl sched-credit2");
    println!("{}", wait(&mut running, "Cpupool Pool-0"));
    type_line(&mut running, "xl info");
    let free = wait(&mut running, "free_memory ");
    // Bad configurations are refused at their line and column, and nothing is built.
    type_line(&mut running, "xl create made.cfg memory=4096");
    println!("{}", wait(&mut running, "memory: 4096 MiB is more than the"));
    type_line(&mut running, "xl create made.cfg vcpus=[1");
    println!("{}", wait(&mut running, "made.cfg:"));
    type_line(&mut running, "xl info");
    let after_bad = wait(&mut running, "free_memory ");
    assert_eq!(after_bad.rsplit(':').next(), free.rsplit(':').next(), "{free} / {after_bad}");
    type_line(&mut running, "xl create made.cfg");
    wait(&mut running, "Parsing config from made.cfg");
    wait(&mut running, "made: progress 1");
    type_line(&mut running, "xl uptime made");
    println!("{}", wait(&mut running, "made                                 "));
    type_line(&mut running, "xl list -l made");
    println!("{}", wait(&mut running, "\"name\": \"made\""));
    type_line(&mut running, "xl destroy made");
    type_line(&mut running, "xl info");
    let free_after = wait(&mut running, "free_memory ");
    assert_eq!(free_after.rsplit(':').next(), free.rsplit(':').next(), "{free} / {free_after}");
    type_line(&mut running, "xl destroy spinner");
    type_line(&mut running, "xl list");
    wait(&mut running, "Name                                        ID   Mem VCPUs");
}

/// Types `bytes` at the UART as they are (a line for a guest, the switch key).
fn type_bytes(running: &mut Running, bytes: &[u8]) {
    running.type_input(bytes).expect("typing on the UART");
}

/// Waits for the console domain's announcement that the input focus is on `name`.
fn focus_on(running: &mut Running, name: &str) {
    let line = wait(running, "[console] input to ");
    assert!(line.trim_end().ends_with(&format!("input to {name}")), "{line}");
}

/// `xl console <guest>` at the control domain's console (`tests/manifests/xl-console.toml`):
/// the console domain moves the input focus to the guest and says so, a line typed then reaches
/// the guest (which answers through its console ring), one Ctrl-] gives the focus back and xl
/// runs again. `xl create -c` does the same for the domain it creates; consoles that are not
/// there get xl's and xenconsole's words; a guest can neither read nor write the request key
/// (xenstore refuses it); and after xenstore is crashed and restarted under the console
/// domain's watch, with the guest's lines arriving meanwhile, `xl console` still works.
#[test]
fn xl_console_moves_the_input_focus_and_one_ctrl_bracket_gives_it_back() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/xl-console.toml").start();
    running.forbid("FAIL");
    running.forbid("has no console here");
    running.forbid("cleared and ignored");
    running.forbid("xenstore refused");
    expect_unordered(
        &mut running,
        &["control: xl ready", "console: watching /tool/xenolith/console/focus"],
    );
    focus(&mut running, "control");
    type_line(&mut running, "xl console echo");
    focus_on(&mut running, "echo");
    type_bytes(&mut running, b"ping 1\n");
    println!("{}", wait(&mut running, "echo: got ping 1"));
    type_bytes(&mut running, b"\x1d");
    focus_on(&mut running, "control");
    type_line(&mut running, "xl list echo");
    println!("{}", wait(&mut running, "echo     "));
    // Consoles that are not there.
    type_line(&mut running, "xl console 42");
    wait(&mut running, "libxl: error: unable to get domain type for domid=42");
    wait(&mut running, "Unable to attach console");
    for command in ["xl console -t vuart echo", "xl console -t pv -n 1 echo", "xl console console"]
    {
        type_line(&mut running, command);
        wait(&mut running, "xenconsole: Could not read tty from store: No such file or directory");
    }
    // A guest may neither read nor write the key (it holds a request now: the last one,
    // consumed, is the empty value).
    type_line(&mut running, "xl console intruder");
    focus_on(&mut running, "intruder");
    type_bytes(&mut running, b"read /tool/xenolith/console/focus\n");
    println!(
        "{}",
        wait(
            &mut running,
            "intruder: read /tool/xenolith/console/focus: refused (xenstore error EACCES"
        )
    );
    type_bytes(&mut running, b"write /tool/xenolith/console/focus 5 2\n");
    println!(
        "{}",
        wait(
            &mut running,
            "intruder: write /tool/xenolith/console/focus: refused (xenstore error EACCES"
        )
    );
    type_bytes(&mut running, b"\x1d");
    focus_on(&mut running, "control");
    // `xl create -c`: the focus goes to the new domain, and comes back.
    // (xl prints once the command is over: the domain may be focused and running before. The
    // console domain names a domain the core has no name for `d<id>`: `made` is domain 6.)
    type_line(&mut running, "xl create -c made.cfg");
    expect_unordered(
        &mut running,
        &["Parsing config from made.cfg", "[console] input to d6", "made: progress 1"],
    );
    type_bytes(&mut running, b"\x1d");
    focus_on(&mut running, "control");
    type_line(&mut running, "xl destroy made");
    // xenstore crashed and restarted under the watch: the guest's lines go on meanwhile, and
    // `xl console` works after.
    type_line(&mut running, "xl console crasher");
    focus_on(&mut running, "crasher");
    type_bytes(&mut running, b"crash 0\n");
    expect_unordered(&mut running, &["domain 0 (xenstore) restarted", "crasher: crashed d0"]);
    for _ in 0..3 {
        wait(&mut running, "echo: seq ");
    }
    type_bytes(&mut running, b"\x1d");
    focus_on(&mut running, "control");
    type_line(&mut running, "xl console echo");
    focus_on(&mut running, "echo");
    type_bytes(&mut running, b"ping 2\n");
    println!("{}", wait(&mut running, "echo: got ping 2"));
    type_bytes(&mut running, b"\x1d");
    focus_on(&mut running, "control");
    type_line(&mut running, "xl list");
    wait(&mut running, "Name                                        ID   Mem VCPUs");
}

/// The control domain is killed ten times at random points of an `xl create`/`xl destroy` loop
/// (each incarnation crashes itself at a random hypercall of its next ~1.5 rounds, seeded:
/// `tests/manifests/xl-kill.toml`) while three guests run. After each restart its `xl list`
/// shows no half-built (paused) domain; every round that completes leaves the same number of
/// free pages (no frame leaked, whichever point the kills hit); after the tenth restart it
/// finishes its rounds and the three guests are still running.
#[test]
fn ten_control_domain_kills_lose_no_guest_leak_no_frame_and_leave_no_half_built_domain() {
    let seed = xenolith_tests::seed();
    let mut running = Boot::new(2, "")
        .manifest("tests/manifests/xl-kill.toml")
        .domain_args("control", &format!("kills=10 seed={seed}"))
        .start();
    running.forbid("FAIL");
    let (mut restarts, mut free, mut listed) = (0, Vec::new(), 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = match running.next_line(left) {
            Ok(Some(line)) => line,
            Ok(None) => {
                panic!("no `loop done` in 10 minutes; last lines:\n{}", running.tail().join("\n"))
            }
            Err(error) => panic!("{error}"),
        };
        if line.contains("(d2)") || line.contains("(control)") {
            println!("{line}");
        }
        if line.contains("(control) restarted") {
            restarts += 1;
        }
        if let Some(at) = line.find("pages free") {
            let words: Vec<&str> = line[..at].split_whitespace().collect();
            free.push(words.last().and_then(|n| n.parse::<u64>().ok()).expect("a page count"));
        }
        // A row of `xl list`: its state letters (`r b p s c d`) must not say paused.
        let row: Vec<&str> = line.split_whitespace().collect();
        if row.len() == 7 && row[2].parse::<u16>().is_ok() && row[5].len() == 6 {
            listed += 1;
            assert!(!row[5].contains('p'), "a paused (half-built) domain after a restart: {line}");
        }
        if line.contains("control: loop done") {
            assert!(line.contains("after 10 restarts"), "{line}");
            break;
        }
    }
    println!(
        "seed {seed}: {restarts} restarts, {listed} rows listed, free pages per round {free:?}"
    );
    assert_eq!(restarts, 10);
    assert!(free.len() >= 3 && free.iter().all(|&pages| pages == free[0]), "{free:?}");
    for guest in ["alpha", "beta", "gamma"] {
        wait(&mut running, &format!("{guest}: progress"));
    }
}

/// Each domain's share (percent of one pCPU) in the next heartbeat's `shares:` line (the core's
/// own accounting of run time, as in tests/tests/scheduling.rs).
fn shares_of(running: &mut Running, a: &str, b: &str) -> (f64, f64) {
    let line = wait(running, "shares: ");
    let share = |name: &str| {
        let entry = line.split(", ").find(|entry| entry.split_whitespace().nth(1) == Some(name));
        let percent = entry.and_then(|entry| entry.split_whitespace().nth(2));
        percent.and_then(|p| p.trim_end_matches('%').parse::<f64>().ok()).unwrap_or(0.0)
    };
    (share(a), share(b))
}

/// `xl sched-credit2 -d heavy -w 512` at the console: two busy guests that shared one pCPU
/// evenly then share it two to one, and `xl sched-credit2 -d heavy` says so.
#[test]
fn xl_sched_credit2_changes_a_guests_measured_share() {
    let mut running = Boot::new(1, "").manifest("tests/manifests/xl-share.toml").start();
    running.forbid("FAIL");
    wait(&mut running, "control: xl ready");
    shares_of(&mut running, "heavy", "light");
    let (heavy, light) = shares_of(&mut running, "heavy", "light");
    println!("weights 256:256: heavy {heavy}%, light {light}%");
    assert!((0.8..=1.25).contains(&(heavy / light)), "{heavy}% : {light}%");
    focus(&mut running, "control");
    type_line(&mut running, "xl sched-credit2 -d heavy -w 512");
    type_line(&mut running, "xl sched-credit2 -d heavy");
    println!("{}", wait(&mut running, "heavy       "));
    // The window the change fell in is mixed; the next two are not.
    shares_of(&mut running, "heavy", "light");
    for _ in 0..2 {
        let (heavy, light) = shares_of(&mut running, "heavy", "light");
        println!("weights 512:256: heavy {heavy}%, light {light}%");
        assert!((1.7..=2.3).contains(&(heavy / light)), "{heavy}% : {light}%");
    }
}

/// `xl create linux3.cfg`: Debian's Linux kernel and initramfs from the bundle, its settings from
/// the bundle's xl.cfg text, run to its `/init` checks; `xl reboot` restarts it (xl's
/// `on_reboot`, applied by the control domain); `xl list` shows it; `xl destroy` gives every
/// frame back.
#[test]
fn xl_creates_reboots_and_destroys_a_debian_linux_guest() {
    let linux = Duration::from_secs(300);
    let mut running = Boot::new(2, "").manifest("tests/manifests/xl-linux.toml").start();
    running.forbid("FAIL");
    wait(&mut running, "control: xl ready");
    focus(&mut running, "control");
    type_line(&mut running, "xl info");
    let free = wait(&mut running, "free_memory ");
    type_line(&mut running, "xl create linux3.cfg");
    wait(&mut running, "Parsing config from linux3.cfg");
    running.wait_for("XENOLITH-INIT-DONE", linux).unwrap_or_else(|error| panic!("{error}"));
    // `xl reboot`: Linux reboots itself through the PV control protocol, the core keeps it shut
    // down for the toolstack, and the control domain applies xl's default `on_reboot`
    // (`restart`): destroyed and created again from the same xl.cfg, it boots a second time.
    type_line(&mut running, "xl reboot linux3");
    wait(&mut running, "Rebooting domain ");
    wait(&mut running, ") shut down: reboot");
    wait(&mut running, "(linux3) shut down (reason 1): Restart");
    wait(&mut running, "Parsing config from linux3.cfg");
    running.wait_for("XENOLITH-INIT-DONE", linux).unwrap_or_else(|error| panic!("{error}"));
    type_line(&mut running, "xl list linux3");
    println!("{}", wait(&mut running, "linux3    "));
    type_line(&mut running, "xl destroy linux3");
    type_line(&mut running, "xl info");
    let after = wait(&mut running, "free_memory ");
    assert_eq!(after.rsplit(':').next(), free.rsplit(':').next(), "{free} / {after}");
}

/// A property of one line of output.
type LineCheck<'a> = &'a dyn Fn(&str) -> bool;

/// What `command` prints at the control domain's console, line by line without the `(dN) `
/// `prefix` the core gives the control domain's lines: up to the header of an `xl vcpu-list`
/// typed after it. For `xl dmesg` these are the console ring's lines.
fn output_of(running: &mut Running, prefix: &str, command: &str) -> Vec<String> {
    type_line(running, command);
    type_line(running, "xl vcpu-list");
    let deadline = std::time::Instant::now() + TIMEOUT;
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = match running.next_line(left) {
            Ok(Some(line)) => line,
            Ok(None) => {
                panic!("`{command}` never ended; last lines:\n{}", running.tail().join("\n"))
            }
            Err(error) => panic!("{error}"),
        };
        let Some(text) = line.strip_prefix(prefix) else { continue };
        if text.starts_with("Name ") && text.contains("VCPU   CPU State") {
            return lines;
        }
        lines.push(text.trim_end().to_string());
    }
}

/// `xl dmesg` reads the core's console ring (`XEN_SYSCTL_readconsole`): the core's banner and
/// log lines from boot, a guest's `console_io` line and the lines the console domain wrote for
/// a guest's PV console. `xl dmesg -c` prints the ring and empties it: the next `xl dmesg` has
/// none of those, only what was printed after the clear.
#[test]
fn xl_dmesg_reads_the_cores_console_ring_and_dmesg_c_empties_it() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/xl-dmesg.toml").start();
    running.forbid("FAIL");
    let banner = wait(&mut running, "a Xen-compatible hypervisor with a small trusted core");
    let banner = banner.trim().to_string();
    let found = running
        .wait_for_all(&["control: xl ready", "chatty: done total=3"], TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}"));
    let prefix = &found[0][..found[0].find("control: xl ready").unwrap()];
    println!("banner {banner:?}; the control domain's lines start with {prefix:?}");
    focus(&mut running, "control");

    let ring = output_of(&mut running, prefix, "xl dmesg");
    println!("xl dmesg: {} lines, the first {:?}", ring.len(), ring.first());
    let has = |lines: &[String], check: LineCheck<'_>| lines.iter().any(|l| check(l));
    let core_banner = |line: &str| line.trim() == banner;
    // `(d3) chatty: hello ...`, not an echo of it (`(d2) (d3) chatty: hello ...`).
    let guest_line = |line: &str| {
        line.split_once(") ").is_some_and(|(domain, text)| {
            domain.starts_with("(d") && text.starts_with("chatty: hello from a Xenolith domain")
        })
    };
    let checks: [(&str, LineCheck<'_>); 4] = [
        ("the core's banner", &core_banner),
        ("the core's `Xenolith ready` log line", &|line| {
            line.starts_with('[') && line.contains("Xenolith ready: ")
        }),
        ("a line of chatty's PV console (from the console domain)", &|line| {
            line == "chatty: seq 0"
        }),
        ("a console_io line of chatty", &guest_line),
    ];
    for (what, check) in checks {
        assert!(has(&ring, check), "no {what} in xl dmesg:\n{}", ring.join("\n"));
    }

    let cleared = output_of(&mut running, prefix, "xl dmesg -c");
    assert!(has(&cleared, &core_banner), "xl dmesg -c prints before it clears");
    let after = output_of(&mut running, prefix, "xl dmesg");
    println!("xl dmesg after xl dmesg -c: {} lines", after.len());
    for (what, check) in checks {
        assert!(!has(&after, check), "{what} is still in the ring:\n{}", after.join("\n"));
    }
    // The `xl vcpu-list` typed after `xl dmesg -c` printed after the clear: it is kept.
    let listed = |line: &str| line.strip_prefix(prefix).is_some_and(|l| l.starts_with("Name "));
    assert!(has(&after, &listed), "no line printed after the clear:\n{}", after.join("\n"));
}

/// `xl <line>` from the host through `socket`, as `cargo xtask xl` sends it; panics with the
/// serial tail if no answer comes. Returns the answer and how many interrupts of its virtio
/// console the control domain had taken when it answered (its log line says).
fn host_xl(running: &mut Running, socket: &Path, line: &str) -> (Answer, u64) {
    let answer = match xl_client::request(socket, line, TIMEOUT) {
        Ok(answer) => answer,
        Err(error) => panic!("xl {line}: {error}\n{}", running.tail().join("\n")),
    };
    println!("xl {line} -> {}\n{}", answer.status, answer.text.trim_end());
    let shown: String = line.chars().take(60).collect();
    let logged = wait(running, &format!("control: xl from the host: {shown} (exit status "));
    let interrupts = logged
        .split("; ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no interrupt count in {logged:?}"));
    (answer, interrupts)
}

/// The most interrupts of the device one request may cost: its bytes arrive in one or a few
/// receive buffers. (Unacknowledged, the device's interrupt fires again and again: over
/// 300,000 times for one request.)
const MAX_INTERRUPTS_PER_REQUEST: u64 = 64;

/// Requests from the host, checked to reach the control domain through interrupts of the
/// device that it acknowledges: the count it logs never falls, grows by at most
/// [`MAX_INTERRUPTS_PER_REQUEST`] a request, and is at least one for every two requests. (Not
/// one for each: a request whose bytes are already in the ring when the driver checks it once
/// more before waiting is served without an interrupt of its own, as virtio drivers do, e.g.
/// Linux's `virtqueue_enable_cb`; and a request's interrupt may be counted before the previous
/// answer's log line. CI run 33 saw the fifth request served with four interrupts in all.)
struct Host<'a> {
    socket: &'a Path,
    interrupts: u64,
    requests: u64,
}

impl Host<'_> {
    fn new(socket: &Path) -> Host<'_> {
        Host { socket, interrupts: 0, requests: 0 }
    }

    fn xl(&mut self, running: &mut Running, line: &str) -> Answer {
        let (answer, interrupts) = host_xl(running, self.socket, line);
        self.requests += 1;
        assert!(
            interrupts >= self.interrupts && 2 * interrupts >= self.requests,
            "xl {line}: {interrupts} device interrupts in all for {} requests (before it: {})",
            self.requests,
            self.interrupts
        );
        assert!(
            interrupts - self.interrupts <= MAX_INTERRUPTS_PER_REQUEST,
            "xl {line}: {} device interrupts since the last request (is it acknowledged?)",
            interrupts - self.interrupts
        );
        self.interrupts = interrupts;
        answer
    }
}

/// xl's `list` header (Xen 4.17 `tools/xl/xl_info.c`, `list_domains`).
const LIST_HEADER: &str =
    "Name                                        ID   Mem VCPUs\tState\tTime(s)";

/// xl from the host (`cargo xtask xl`'s client) over the control domain's virtio console
/// (`tests/manifests/xl-host.toml`): `xl list` answers with xl's header and the domains, `xl
/// create made.cfg` builds a guest from the bundle that then runs and is listed, `xl destroy`
/// removes it; an unknown command and a usage error come back with xl's text and status 1 and
/// 2, a request over 4 KiB with an error. Each request reaches the control domain through an
/// interrupt of the device, acknowledged (it counts them: one or a few per request). The control
/// domain is then killed while it serves
/// a request (a crash injected at a random one of its next 10 hypercalls, seeded): that
/// request's client gets a timeout; the control domain restarts and serves the host again on
/// the device its previous incarnation left mid-use.
#[test]
fn xl_from_the_host_lists_creates_destroys_and_survives_a_control_domain_kill() {
    let seed = xenolith_tests::seed();
    let socket = xenolith_tests::xl_socket();
    let mut running = Boot::new(2, "")
        .manifest("tests/manifests/xl-host.toml")
        .domain_args("control", &format!("host_kill=8 seed={seed} span=10"))
        .xl_socket(&socket)
        .start();
    running.forbid("FAIL");
    wait(&mut running, "control: xl from the host on the virtio console");
    wait(&mut running, "control: xl ready");
    let mut host = Host::new(&socket);
    let list = host.xl(&mut running, "list");
    assert_eq!(list.status, 0);
    assert_eq!(list.text.lines().next(), Some(LIST_HEADER), "{}", list.text);
    assert!(list.text.lines().any(|row| row.starts_with("spinner ")), "{}", list.text);
    assert!(!list.text.contains("made"), "{}", list.text);
    let created = host.xl(&mut running, "xl create made.cfg");
    assert_eq!((created.status, created.text.as_str()), (0, "Parsing config from made.cfg\n"));
    wait(&mut running, "made: progress 1");
    let list = host.xl(&mut running, "list made");
    assert_eq!(list.status, 0);
    assert!(list.text.lines().nth(1).is_some_and(|row| row.starts_with("made ")), "{}", list.text);
    let destroyed = host.xl(&mut running, "destroy made");
    assert_eq!((destroyed.status, destroyed.text.as_str()), (0, ""));
    let list = host.xl(&mut running, "list");
    assert!(!list.text.contains("made"), "{}", list.text);
    // Failures: xl's words and exit status.
    let unknown = host.xl(&mut running, "frobnicate");
    assert_eq!((unknown.status, unknown.text.as_str()), (1, "command not implemented\n"));
    let usage = host.xl(&mut running, "destroy");
    assert_eq!(usage.status, 2, "{}", usage.text);
    assert!(
        usage.text.starts_with("'xl destroy' requires at least 1 argument.\n"),
        "{}",
        usage.text
    );
    // Request 8 kills the control domain while it serves it (within its first 10 hypercalls:
    // listing four domains takes more), so its answer never comes. The restarted control
    // domain resets the device its previous incarnation left mid-use and serves the host again.
    let killed = xl_client::request(&socket, "list", Duration::from_secs(15));
    assert!(matches!(killed, Err(XlClientError::Timeout { .. })), "{killed:?}");
    println!("the request the kill hit: {}", killed.unwrap_err());
    wait(&mut running, "control: request 8 from the host: a kill is injected");
    wait(&mut running, "crash injected at counter");
    wait(&mut running, "(control) restarted");
    wait(&mut running, "control: xl from the host on the virtio console");
    wait(&mut running, "control: xl ready");
    let mut host = Host::new(&socket);
    let list = host.xl(&mut running, "list");
    assert_eq!(list.status, 0);
    assert_eq!(list.text.lines().next(), Some(LIST_HEADER), "{}", list.text);
    let created = host.xl(&mut running, "create made.cfg");
    assert_eq!(created.status, 0, "{}", created.text);
    wait(&mut running, "made: progress 1");
    assert_eq!(host.xl(&mut running, "destroy made").status, 0);
    // A request over the limit gets an error, and the next one is served as usual.
    let long = over_long_request(&socket);
    assert_eq!(long.status, 1);
    assert!(long.text.contains("at most 4096 are read"), "{}", long.text);
    wait(&mut running, "control: xl from the host: <5000 bytes> (exit status 1");
    assert_eq!(host.xl(&mut running, "list spinner").status, 0);
}

/// Sends a 5,000-byte line (which `xl_client` refuses to send) and reads the answer.
fn over_long_request(socket: &Path) -> Answer {
    use std::io::{Read, Write};
    use xenolith_abi::host_xl::{request_id, AnswerReader, Step};
    let line = vec![b'x'; 5000];
    let mut stream = std::os::unix::net::UnixStream::connect(socket).expect("connecting");
    stream.set_read_timeout(Some(TIMEOUT)).expect("a read timeout");
    stream.write_all(&line).and_then(|()| stream.write_all(b"\n")).expect("sending");
    let (mut reader, mut text, mut byte) = (AnswerReader::default(), Vec::new(), [0u8]);
    loop {
        stream.read_exact(&mut byte).expect("an answer to the long request");
        match reader.push(byte[0]) {
            Step::Text(byte) => text.push(byte),
            Step::Done(trailer) if trailer.id == request_id(&line) => {
                let text = String::from_utf8_lossy(&text).into_owned();
                return Answer { text, status: trailer.status };
            }
            Step::Done(_) => text.clear(),
            Step::Trailer => {}
            Step::Malformed => panic!("a malformed trailer"),
        }
    }
}

/// Issue 16's acceptance, every step from the host through `cargo xtask xl`'s client
/// (`tests/manifests/xl-acceptance.toml`): `xl create linux3.cfg` builds Debian's Linux from the
/// bundle's xl.cfg text and it boots to its `/init` checks; `xl console linux3` gives it the
/// console's input (a line typed on the UART reaches its shell, one Ctrl-] gives the input back
/// to the control domain); `xl list` has xl's columns and the guest; `xl sched-credit2 -d heavy
/// -w 512` takes a busy guest's measured share of its pCPU from even to two to one; `xl destroy
/// linux3` gives every frame back (`xl info`'s free memory is as before).
#[test]
fn xl_from_the_host_meets_the_issues_acceptance() {
    let linux = Duration::from_secs(300);
    let socket = xenolith_tests::xl_socket();
    let mut running =
        Boot::new(2, "").manifest("tests/manifests/xl-acceptance.toml").xl_socket(&socket).start();
    running.forbid("FAIL");
    wait(&mut running, "control: xl from the host on the virtio console");
    wait(&mut running, "control: xl ready");
    let mut host = Host::new(&socket);
    let free_memory = |text: &str| {
        let line = text.lines().find(|line| line.starts_with("free_memory "));
        line.unwrap_or_else(|| panic!("no free_memory in:\n{text}")).to_string()
    };
    let info = host.xl(&mut running, "info");
    assert_eq!(info.status, 0, "{}", info.text);
    let free = free_memory(&info.text);

    let created = host.xl(&mut running, "create linux3.cfg");
    assert_eq!((created.status, created.text.as_str()), (0, "Parsing config from linux3.cfg\n"));
    running.wait_for("XENOLITH-INIT-DONE", linux).unwrap_or_else(|error| panic!("{error}"));

    let list = host.xl(&mut running, "list");
    assert_eq!(list.status, 0);
    assert_eq!(list.text.lines().next(), Some(LIST_HEADER), "{}", list.text);
    let row = list.text.lines().find(|row| row.starts_with("linux3 "));
    let row = row.unwrap_or_else(|| panic!("no linux3 in:\n{}", list.text));
    let id = row.split_whitespace().nth(1).expect("an id column").to_string();
    // Mem is what it has now: 128 MiB less what Linux gave back (its balloon, a page or so).
    let mem: u32 = row.split_whitespace().nth(2).and_then(|mib| mib.parse().ok()).unwrap_or(0);
    assert!((120..=128).contains(&mem), "{row}");

    let console = host.xl(&mut running, "console linux3");
    assert_eq!((console.status, console.text.as_str()), (0, ""));
    // The console domain moves the focus when xenstore tells it, after xl has answered: type
    // until the guest's shell answers (a line that reached the control domain first is an
    // unknown xl command there).
    let reached = (0..12).any(|_| {
        type_line(&mut running, "echo ACCEPTANCE-$((6 * 7))");
        running.wait_for("ACCEPTANCE-42", Duration::from_secs(5)).is_ok()
    });
    assert!(reached, "no answer from linux3 (d{id}):\n{}", running.tail().join("\n"));
    running.type_input(b"\x1d").expect("typing on the UART");
    wait(&mut running, "[console] input to control");

    shares_of(&mut running, "heavy", "light");
    let (heavy, light) = shares_of(&mut running, "heavy", "light");
    println!("weights 256:256: heavy {heavy}%, light {light}%");
    assert!((0.8..=1.25).contains(&(heavy / light)), "{heavy}% : {light}%");
    let set = host.xl(&mut running, "sched-credit2 -d heavy -w 512");
    assert_eq!((set.status, set.text.as_str()), (0, ""));
    let get = host.xl(&mut running, "sched-credit2 -d heavy");
    assert!(
        get.text.lines().any(|row| row.starts_with("heavy ") && row.contains(" 512 ")),
        "{}",
        get.text
    );
    // The window the change fell in is mixed; the next two are not.
    shares_of(&mut running, "heavy", "light");
    for _ in 0..2 {
        let (heavy, light) = shares_of(&mut running, "heavy", "light");
        println!("weights 512:256: heavy {heavy}%, light {light}%");
        assert!((1.7..=2.3).contains(&(heavy / light)), "{heavy}% : {light}%");
    }

    let destroyed = host.xl(&mut running, "destroy linux3");
    assert_eq!((destroyed.status, destroyed.text.as_str()), (0, ""));
    let list = host.xl(&mut running, "list");
    assert!(!list.text.contains("linux3"), "{}", list.text);
    // The service domains let the destroyed guest's pages go on `VIRQ_DOM_EXC`: ask until the
    // free memory holds still, at most ten times.
    let mut after = free_memory(&host.xl(&mut running, "info").text);
    for _ in 0..10 {
        if after == free {
            break;
        }
        after = free_memory(&host.xl(&mut running, "info").text);
    }
    assert_eq!(after, free, "every frame of the destroyed guest is back");
}

/// The `NAME: node <path>=<value>` lines a guest prints until `NAME: PASS <what>`, and every
/// line read meanwhile.
fn nodes_of(
    running: &mut Running,
    name: &str,
    what: &str,
) -> (std::collections::BTreeMap<String, String>, Vec<String>) {
    let deadline = std::time::Instant::now() + TIMEOUT;
    let (mut nodes, mut lines) = (std::collections::BTreeMap::new(), Vec::new());
    let (node, pass) = (format!("{name}: node "), format!("{name}: PASS {what}"));
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = match running.next_line(left) {
            Ok(Some(line)) => line,
            Ok(None) => panic!("no `{pass}`; last lines:\n{}", running.tail().join("\n")),
            Err(error) => panic!("{error}"),
        };
        if line.contains(&pass) {
            return (nodes, lines);
        }
        lines.push(line.clone());
        if let Some((path, value)) =
            line.split_once(&node).and_then(|(_, rest)| rest.trim_end().split_once('='))
        {
            nodes.insert(path.to_string(), value.to_string());
        }
    }
}

/// `xl create` of a configuration with a vif and a disk (issue 16) writes their frontend and
/// backend directories as libxl does (`tests/manifests/xl-devices.toml`'s `made`, with
/// `KEY=VALUE` settings after the file): the guest reads its frontends `device/vif/0` and
/// `device/vbd/51712` (xvda), and through their `backend` the backend directories, with
/// libxl's entries; the backends' `state` is closed to its writes (the backend owns it). The
/// vif's backend is domain 0 (libxl's default), the disk's the test domain `netback` by name,
/// which watches its `backend` directory as a backend domain does and sees the vbd come and,
/// at `xl destroy`, go. A backend that does not exist fails the create with libxl's words and
/// nothing is left behind. After `xl destroy` a new domain with the same id finds no
/// frontends, and none of the backend directories it could read.
#[test]
fn xl_create_writes_vif_and_vbd_records_as_libxl_does_and_destroy_removes_them() {
    let mut running = Boot::new(2, "").manifest("tests/manifests/xl-devices.toml").start();
    running.forbid("FAIL");
    running
        .wait_for_all(&["control: xl ready", "netback: backends none"], TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}"));
    focus(&mut running, "control");
    type_line(&mut running, "xl info");
    let free = wait(&mut running, "free_memory ");

    type_line(&mut running, "xl create made.cfg \"vif=['backend=nosuch']\"");
    println!("{}", wait(&mut running, "backend domain `nosuch' does not exist"));
    let unable = wait(&mut running, "libxl: error: Domain ");
    assert!(unable.trim_end().ends_with(":unable to add vif devices"), "{unable}");
    type_line(&mut running, "xl info");
    let after_bad = wait(&mut running, "free_memory ");
    assert_eq!(after_bad.rsplit(':').next(), free.rsplit(':').next(), "{free} / {after_bad}");

    type_line(
        &mut running,
        "xl create made.cfg \"extra='name=made test=xs-devices'\" \
         \"vif=['mac=00:16:3e:01:02:03,bridge=br9']\" \
         \"disk=['/dev/vg/made,raw,xvda,rw,backend=netback']\"",
    );
    let (nodes, lines) = nodes_of(&mut running, "made", "xs-devices");
    let get = |path: &str| {
        nodes.get(path).unwrap_or_else(|| panic!("no {path} among {nodes:#?}")).as_str()
    };
    // Each `(key, value)` of `entries` is what the guest read at `<dir>/<key>`.
    let expect = |dir: &str, entries: &[(&str, &str)]| {
        for (key, value) in entries {
            assert_eq!(get(&format!("{dir}/{key}")), *value, "{dir}/{key}");
        }
    };
    let vif_back = nodes
        .iter()
        .find_map(|(path, value)| path.ends_with("/device/vif/0/backend").then_some(value.clone()))
        .unwrap_or_else(|| panic!("no vif backend among {nodes:#?}"));
    // /local/domain/0/backend/vif/<domid>/0
    let domid: u16 = vif_back.split('/').nth(6).and_then(|d| d.parse().ok()).expect("domid");
    assert_eq!(vif_back, format!("/local/domain/0/backend/vif/{domid}/0"));
    let vif_front = format!("/local/domain/{domid}/device/vif/0");
    expect(
        &vif_front,
        &[
            ("backend-id", "0"),
            ("state", "1"),
            ("handle", "0"),
            ("mac", "00:16:3e:01:02:03"),
            ("trusted", "1"),
            ("mtu", "1500"),
        ],
    );
    expect(
        &vif_back,
        &[
            ("frontend", vif_front.as_str()),
            ("frontend-id", &domid.to_string()),
            ("online", "1"),
            ("state", "1"),
            ("script", "/etc/xen/scripts/vif-bridge"),
            ("mac", "00:16:3e:01:02:03"),
            ("bridge", "br9"),
            ("handle", "0"),
            ("type", "vif"),
            ("hotplug-status", ""),
        ],
    );
    let vbd_front = format!("/local/domain/{domid}/device/vbd/51712");
    let vbd_back = get(&format!("{vbd_front}/backend")).to_string();
    let netback: u16 = vbd_back.split('/').nth(3).and_then(|d| d.parse().ok()).expect("backend");
    assert_eq!(vbd_back, format!("/local/domain/{netback}/backend/vbd/{domid}/51712"));
    assert_ne!(netback, 0, "backend=netback named the netback domain");
    expect(
        &vbd_front,
        &[
            ("backend-id", netback.to_string().as_str()),
            ("state", "1"),
            ("virtual-device", "51712"),
            ("device-type", "disk"),
            ("trusted", "1"),
        ],
    );
    expect(
        &vbd_back,
        &[
            ("frontend", vbd_front.as_str()),
            ("frontend-id", &domid.to_string()),
            ("params", "/dev/vg/made"),
            ("script", "/etc/xen/scripts/block"),
            ("online", "1"),
            ("removable", "0"),
            ("bootable", "1"),
            ("state", "1"),
            ("dev", "xvda"),
            ("type", "phy"),
            ("mode", "w"),
            ("device-type", "disk"),
            ("discard-enable", "1"),
            ("specification", "xen"),
        ],
    );
    println!("made (d{domid}): {} nodes as libxl writes them", nodes.len());
    let present = format!("netback: backends vbd/{domid}/51712");
    match lines.iter().find(|line| line.contains(&present)) {
        Some(line) => println!("{line}"),
        None => println!("{}", wait(&mut running, &present)),
    }

    type_line(&mut running, "xl destroy made");
    println!("{}", wait(&mut running, "netback: backends none"));
    type_line(&mut running, "xl list");
    wait(&mut running, "Name                                        ID   Mem VCPUs");
    type_line(
        &mut running,
        &format!(
            "xl create made.cfg \"extra='name=made test=xs-devices-gone vif=0 vbd={netback}'\""
        ),
    );
    let (vif_gone, vbd_gone) = (
        format!("made: gone /local/domain/0/backend/vif/{domid}/0"),
        format!("made: gone /local/domain/{netback}/backend/vbd/{domid}/51712"),
    );
    let found = running
        .wait_for_all(&[&vif_gone, &vbd_gone, "made: PASS xs-devices-gone"], TIMEOUT)
        .unwrap_or_else(|error| panic!("{error}"));
    println!("{}", found.join("\n"));
}
