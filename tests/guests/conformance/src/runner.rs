//! The probe runner: the ordered probe list, the output protocol of `docs/conformance.md`, and
//! the small tools every family uses (request pages, answer formatting, the virtual timer).
//!
//! # Invariants
//! - The sequence of [`Runner::probe`] calls never depends on an answer, so a probe's index is
//!   the same in every run and on every hypervisor (the list is counted once before it runs).
//! - A probe's answer holds nothing two correct hypervisors may print differently: errors are
//!   printed as they come, other values only normalised (see [`norm`]).
//! - One `console_io` write per line, every line under 160 bytes.

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt::Write;

use xenolith_runtime::hypercall;

use crate::xen;

/// A page the probes build requests in (and the hypervisor writes answers to). The hypervisor
/// writes through the address the probe passes, which `raw` (an `asm!` without `nomem`) makes
/// visible to the compiler.
#[repr(C, align(4096))]
pub struct Page(pub [u8; 4096]);

impl Page {
    /// A zeroed page on the heap.
    pub fn new() -> Box<Self> {
        Box::new(Self([0; 4096]))
    }

    /// Its address (guest-physical: the runtime identity-maps RAM).
    pub fn addr(&mut self) -> u64 {
        self.0.as_mut_ptr() as u64
    }

    /// Its frame number.
    pub fn gfn(&mut self) -> u64 {
        self.addr() >> 12
    }

    pub fn w8(&mut self, offset: usize, value: u8) {
        self.0[offset] = value;
    }
    pub fn w16(&mut self, offset: usize, value: u16) {
        self.0[offset..offset + 2].copy_from_slice(&value.to_le_bytes());
    }
    pub fn w32(&mut self, offset: usize, value: u32) {
        self.0[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    }
    pub fn w64(&mut self, offset: usize, value: u64) {
        self.0[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
    }
    pub fn r16(&self, offset: usize) -> u16 {
        let mut bytes = [0; 2];
        bytes.copy_from_slice(&self.0[offset..offset + 2]);
        u16::from_le_bytes(bytes)
    }
    pub fn r32(&self, offset: usize) -> u32 {
        let mut bytes = [0; 4];
        bytes.copy_from_slice(&self.0[offset..offset + 4]);
        u32::from_le_bytes(bytes)
    }
    pub fn r64(&self, offset: usize) -> u64 {
        let mut bytes = [0; 8];
        bytes.copy_from_slice(&self.0[offset..offset + 8]);
        u64::from_le_bytes(bytes)
    }
    /// The signed 16-bit `status` field at `offset` (grant operations).
    pub fn st(&self, offset: usize) -> i16 {
        self.r16(offset) as i16
    }
}

/// A guest address no hypervisor maps for this domain: far above RAM, beyond the runtime's
/// 39-bit stage 1 (`docs/conformance.md`'s "unmapped IPA").
pub const UNMAPPED: u64 = 0x0dea_d000_0000;

/// A hypercall with up to five arguments.
pub fn hc(call: u64, args: [u64; 5]) -> i64 {
    hypercall::raw(call, args)
}

/// `call(a0, a1)`.
pub fn hc2(call: u64, a0: u64, a1: u64) -> i64 {
    hypercall::raw(call, [a0, a1, 0, 0, 0])
}

/// `call(a0, a1, a2)`.
pub fn hc3(call: u64, a0: u64, a1: u64, a2: u64) -> i64 {
    hypercall::raw(call, [a0, a1, a2, 0, 0])
}

/// `event_channel_op(cmd, page)`.
pub fn evtchn(cmd: u32, page: &mut Page) -> i64 {
    hc2(xen::HC_event_channel_op, u64::from(cmd), page.addr())
}

/// `grant_table_op(cmd, page, count)`.
pub fn gnttab(cmd: u32, page: &mut Page, count: u32) -> i64 {
    hc3(xen::HC_grant_table_op, u64::from(cmd), page.addr(), u64::from(count))
}

/// A return value, normalised: errors and 0 as they are, a positive value as `pos` (its size
/// may depend on memory size, configuration or time).
pub fn norm(ret: i64) -> String {
    match ret {
        0 => String::from("0"),
        r if r > 0 => String::from("pos"),
        r => alloc::format!("{r}"),
    }
}

/// A return value as it is (for calls whose positive values are fixed by the ABI).
pub fn raw(ret: i64) -> String {
    alloc::format!("{ret}")
}

/// What the probes know about the system, found before the first probe.
pub struct Cx {
    /// This domain's id.
    pub self_id: u16,
    /// The peer's id (`self_id + 1`).
    pub peer_id: u16,
    /// Whether the peer answered before the probes started.
    pub peer_ready: bool,
    /// Free guest frames the memory probes may give away and take back (never touched by the
    /// guest itself): `order9` is 2 MiB aligned; `small` holds 16 frames; `leak` 16 frames that
    /// may be lost for good. `None` if the free RAM had no room.
    pub scratch: Option<Scratch>,
    /// Results of bringing up vCPU 1 (recorded before the first probe, printed by probes).
    pub vcpu1: [i64; 3],
}

impl Cx {
    /// The domain id a probe's name for it stands for: itself (`self` is DOMID_SELF, `selfid`
    /// its number), the peer, one that does not exist, Xen's reserved ids, or DOMID_INVALID.
    pub fn domid(&self, which: &str) -> u16 {
        match which {
            "self" => xen::DOMID_SELF,
            "selfid" => self.self_id,
            "peer" => self.peer_id,
            "nonexistent" => 1000,
            "io" => xen::DOMID_IO,
            "xen" => xen::DOMID_XEN,
            "idle" => xen::DOMID_IDLE,
            _ => xen::DOMID_INVALID,
        }
    }
}

/// See [`Cx::scratch`].
#[derive(Clone, Copy)]
pub struct Scratch {
    pub order9: u64,
    pub small: u64,
    pub leak: u64,
}

/// Runs the probe list from `from`, printing one line per probe.
pub struct Runner {
    index: u32,
    from: u32,
    counting: bool,
    pub cx: Cx,
}

/// Writes one line with one `console_io`, cut to 159 bytes with its newline.
pub fn emit(line: &str) {
    let mut bytes = alloc::vec::Vec::with_capacity(160);
    bytes.extend_from_slice(&line.as_bytes()[..line.len().min(158)]);
    bytes.push(b'\n');
    hypercall::console_write(&bytes);
}

impl Runner {
    /// A runner that only counts the list.
    pub fn counter(cx: Cx) -> Self {
        Self { index: 0, from: 0, counting: true, cx }
    }

    /// A runner that runs the list from probe `from`.
    pub fn new(cx: Cx, from: u32) -> Self {
        Self { index: 0, from, counting: false, cx }
    }

    /// Probes counted or run so far.
    pub fn count(&self) -> u32 {
        self.index
    }

    /// The next probe of the list: `name` (unique, `family.op.case`) answered by `run`.
    pub fn probe(&mut self, name: &str, run: impl FnOnce(&mut Cx) -> String) {
        let index = self.index;
        self.index += 1;
        if self.counting || index < self.from {
            return;
        }
        let answer = run(&mut self.cx);
        let mut line = String::new();
        let _ = write!(line, "XC {index} {name} {answer}");
        emit(&line);
    }
}

/// The virtual counter.
pub fn counter() -> u64 {
    let ticks: u64;
    // SAFETY: reading the virtual counter (after an ISB) has no side effect.
    unsafe {
        core::arch::asm!("isb", "mrs {0}, cntvct_el0", out(reg) ticks, options(nomem, nostack))
    };
    ticks
}

/// The counter's frequency.
pub fn frequency() -> u64 {
    let frequency: u64;
    // SAFETY: reading CNTFRQ_EL0 has no side effect.
    unsafe { core::arch::asm!("mrs {0}, cntfrq_el0", out(reg) frequency, options(nomem, nostack)) };
    frequency.max(1)
}

/// Arms the EL1 virtual timer `ms` milliseconds from now, interrupt unmasked at the timer (the
/// vCPU keeps IRQs masked, so no handler runs; the hypervisor still wakes a blocked vCPU when
/// it fires).
pub fn vtimer_arm(ms: u64) {
    let deadline = counter() + frequency() * ms / 1000;
    // SAFETY: the virtual timer's registers belong to this vCPU; arming it only makes the
    // hypervisor raise its PPI, which this vCPU takes with IRQs masked (never delivered).
    unsafe {
        core::arch::asm!(
            "msr cntv_cval_el0, {0}",
            "msr cntv_ctl_el0, {1}",
            "isb",
            in(reg) deadline,
            in(reg) 1u64,
            options(nostack)
        )
    };
}

/// Whether the virtual timer's condition holds (ISTATUS), then disarms it.
pub fn vtimer_fired_and_stop() -> bool {
    let control: u64;
    // SAFETY: reading and then clearing this vCPU's virtual timer control register.
    unsafe {
        core::arch::asm!(
            "isb",
            "mrs {0}, cntv_ctl_el0",
            "msr cntv_ctl_el0, xzr",
            "isb",
            out(reg) control,
            options(nostack)
        )
    };
    control & 0b100 != 0
}

/// Yields `times` times.
pub fn yield_times(times: u32) {
    for _ in 0..times {
        hc2(xen::HC_sched_op, xen::SCHEDOP_yield, 0);
    }
}
