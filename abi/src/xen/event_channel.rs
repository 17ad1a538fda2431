//! The event-channel hypercall, `event_channel_op(cmd, arg)`
//! (`xen/include/public/event_channel.h`): allocate, bind, signal, inspect and close event
//! channels, Xen's equivalent of interrupts between domains, vCPUs and the hypervisor.
//!
//! x0 is an `EVTCHNOP_*` number, x1 the guest address of the argument named in each number's
//! documentation. The hypercall number itself is [`super::hypercall::__HYPERVISOR_event_channel_op`].
//!
//! # Invariants
//! - Numbers are Xen 4.17's; `EVTCHNOP_*` runs 0..=13 for guests, and 14
//!   ([`EVTCHNOP_reset_cont`]) is Xen's own continuation of a reset (Xen 4.17 takes it from a
//!   guest too, and answers -EBUSY when no reset is under way).
//! - `VIRQ_*` numbers are `xen/include/public/xen.h`'s; 5, 14 and 15 are not defined there and
//!   stay gaps.
//! - Every structure's size and field offsets are pinned by the tests below (arm64 layout; all of
//!   these structures are identical on arm32).
//! - `struct evtchn_status`'s anonymous union is modelled as an 8-byte array `u` with typed
//!   accessors ([`evtchn_status::interdomain`] and friends), read and written in native byte
//!   order, exactly where C places each union member.

// Xen's spelling of its own names (see `hypercall`).
#![allow(non_upper_case_globals, non_camel_case_types)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::hypercall::{domid_t, xen_ulong_t};

/// `xen/include/public/event_channel.h`: `EVTCHNOP_bind_interdomain`. Argument:
/// [`evtchn_bind_interdomain`].
pub const EVTCHNOP_bind_interdomain: u32 = 0;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_bind_virq`. Argument: [`evtchn_bind_virq`].
pub const EVTCHNOP_bind_virq: u32 = 1;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_bind_pirq`. Argument: [`evtchn_bind_pirq`].
pub const EVTCHNOP_bind_pirq: u32 = 2;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_close`. Argument: [`evtchn_close`].
pub const EVTCHNOP_close: u32 = 3;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_send`. Argument: [`evtchn_send`].
pub const EVTCHNOP_send: u32 = 4;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_status`. Argument: [`evtchn_status`].
pub const EVTCHNOP_status: u32 = 5;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_alloc_unbound`. Argument:
/// [`evtchn_alloc_unbound`].
pub const EVTCHNOP_alloc_unbound: u32 = 6;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_bind_ipi`. Argument: [`evtchn_bind_ipi`].
pub const EVTCHNOP_bind_ipi: u32 = 7;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_bind_vcpu`. Argument: [`evtchn_bind_vcpu`].
pub const EVTCHNOP_bind_vcpu: u32 = 8;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_unmask`. Argument: [`evtchn_unmask`].
pub const EVTCHNOP_unmask: u32 = 9;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_reset`. Argument: [`evtchn_reset`].
pub const EVTCHNOP_reset: u32 = 10;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_init_control` (FIFO ABI). Argument:
/// [`evtchn_init_control`].
pub const EVTCHNOP_init_control: u32 = 11;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_expand_array` (FIFO ABI). Argument:
/// [`evtchn_expand_array`].
pub const EVTCHNOP_expand_array: u32 = 12;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_set_priority` (FIFO ABI). Argument:
/// [`evtchn_set_priority`].
pub const EVTCHNOP_set_priority: u32 = 13;
/// `xen/include/public/event_channel.h`: `EVTCHNOP_reset_cont`, defined only under `__XEN__`:
/// the hypervisor's own continuation of a preempted [`EVTCHNOP_reset`]. Reserved; a guest
/// never issues it.
pub const EVTCHNOP_reset_cont: u32 = 14;

/// `xen/include/public/event_channel.h`: `evtchn_port_t`, an event-channel port number local to
/// one domain.
pub type evtchn_port_t = u32;

/// `xen/include/public/event_channel.h`: `EVTCHN_2L_NR_CHANNELS`, the number of ports the
/// 2-level ABI addresses, `sizeof(xen_ulong_t)^2 * 64`: 4096 with Arm's 64-bit `xen_ulong_t`.
pub const EVTCHN_2L_NR_CHANNELS: u32 =
    (core::mem::size_of::<xen_ulong_t>() * core::mem::size_of::<xen_ulong_t>() * 64) as u32;

/// `xen/include/public/event_channel.h`: `EVTCHNSTAT_closed`, the channel is not in use.
pub const EVTCHNSTAT_closed: u32 = 0;
/// `xen/include/public/event_channel.h`: `EVTCHNSTAT_unbound`, waiting for an interdomain
/// connection.
pub const EVTCHNSTAT_unbound: u32 = 1;
/// `xen/include/public/event_channel.h`: `EVTCHNSTAT_interdomain`, connected to a remote
/// domain.
pub const EVTCHNSTAT_interdomain: u32 = 2;
/// `xen/include/public/event_channel.h`: `EVTCHNSTAT_pirq`, bound to a physical IRQ.
pub const EVTCHNSTAT_pirq: u32 = 3;
/// `xen/include/public/event_channel.h`: `EVTCHNSTAT_virq`, bound to a virtual IRQ.
pub const EVTCHNSTAT_virq: u32 = 4;
/// `xen/include/public/event_channel.h`: `EVTCHNSTAT_ipi`, bound to a virtual IPI.
pub const EVTCHNSTAT_ipi: u32 = 5;

/// `xen/include/public/event_channel.h`: `BIND_PIRQ__WILL_SHARE`, [`evtchn_bind_pirq`] flag.
pub const BIND_PIRQ__WILL_SHARE: u32 = 1;

// Virtual IRQs: `xen/include/public/xen.h`. "Per-vCPU" VIRQs bind once per vCPU and cannot be
// rebound; "global" ones bind on vCPU 0 and may move with `EVTCHNOP_bind_vcpu`.
//
// Gaps: 5, 14 and 15 are not defined in Xen 4.17's `xen.h`.

/// `xen/include/public/xen.h`: `VIRQ_TIMER` (per-vCPU): timebase update or requested timeout.
pub const VIRQ_TIMER: u32 = 0;
/// `xen/include/public/xen.h`: `VIRQ_DEBUG` (per-vCPU): dump debug information.
pub const VIRQ_DEBUG: u32 = 1;
/// `xen/include/public/xen.h`: `VIRQ_CONSOLE` (global, control domain): emergency console input.
pub const VIRQ_CONSOLE: u32 = 2;
/// `xen/include/public/xen.h`: `VIRQ_DOM_EXC` (global, control domain): some domain had an
/// exceptional event (e.g. it died).
pub const VIRQ_DOM_EXC: u32 = 3;
/// `xen/include/public/xen.h`: `VIRQ_TBUF` (global, control domain): trace records available.
pub const VIRQ_TBUF: u32 = 4;
/// `xen/include/public/xen.h`: `VIRQ_DEBUGGER` (global, control domain): a domain paused for
/// debugging.
pub const VIRQ_DEBUGGER: u32 = 6;
/// `xen/include/public/xen.h`: `VIRQ_XENOPROF` (per-vCPU): a profiling sample is available.
pub const VIRQ_XENOPROF: u32 = 7;
/// `xen/include/public/xen.h`: `VIRQ_CON_RING` (global, control domain): console ring input.
pub const VIRQ_CON_RING: u32 = 8;
/// `xen/include/public/xen.h`: `VIRQ_PCPU_STATE` (global, control domain): a pCPU changed state.
pub const VIRQ_PCPU_STATE: u32 = 9;
/// `xen/include/public/xen.h`: `VIRQ_MEM_EVENT` (global, control domain): a memory event.
pub const VIRQ_MEM_EVENT: u32 = 10;
/// `xen/include/public/xen.h`: `VIRQ_ARGO` (global): Argo message notification.
pub const VIRQ_ARGO: u32 = 11;
/// `xen/include/public/xen.h`: `VIRQ_ENOMEM` (global, control domain): hypervisor heap low.
pub const VIRQ_ENOMEM: u32 = 12;
/// `xen/include/public/xen.h`: `VIRQ_XENPMU` (per-vCPU): PMC interrupt.
pub const VIRQ_XENPMU: u32 = 13;
/// `xen/include/public/xen.h`: `VIRQ_ARCH_0`, first of eight architecture-specific VIRQs
/// (`VIRQ_ARCH_n` is `VIRQ_ARCH_0 + n`); Arm defines none.
pub const VIRQ_ARCH_0: u32 = 16;
/// `xen/include/public/xen.h`: `VIRQ_ARCH_7`, last architecture-specific VIRQ.
pub const VIRQ_ARCH_7: u32 = 23;
/// `xen/include/public/xen.h`: `NR_VIRQS`, one past the highest VIRQ number.
pub const NR_VIRQS: u32 = 24;

/// `xen/include/public/event_channel.h`: `struct evtchn_alloc_unbound`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct evtchn_alloc_unbound {
    /// IN: the domain to allocate the port in (`DOMID_SELF` unless privileged).
    pub dom: domid_t,
    /// IN: the domain allowed to bind to it (may be `DOMID_SELF`, for loopback).
    pub remote_dom: domid_t,
    /// OUT: the fresh port in `dom`.
    pub port: evtchn_port_t,
}

/// `xen/include/public/event_channel.h`: `struct evtchn_bind_interdomain`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct evtchn_bind_interdomain {
    /// IN: the remote domain (may be `DOMID_SELF`).
    pub remote_dom: domid_t,
    /// Implicit C padding before `remote_port`, made explicit; ignored.
    pub _pad: u16,
    /// IN: an unbound port in `remote_dom` that accepts the caller.
    pub remote_port: evtchn_port_t,
    /// OUT: the fresh local port (Xen sets it pending).
    pub local_port: evtchn_port_t,
}

/// `xen/include/public/event_channel.h`: `struct evtchn_bind_virq`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct evtchn_bind_virq {
    /// IN: a `VIRQ_*` number.
    pub virq: u32,
    /// IN: the vCPU to bind on (0 for global VIRQs).
    pub vcpu: u32,
    /// OUT: the fresh local port.
    pub port: evtchn_port_t,
}

/// `xen/include/public/event_channel.h`: `struct evtchn_bind_pirq`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct evtchn_bind_pirq {
    /// IN: the physical IRQ.
    pub pirq: u32,
    /// IN: `BIND_PIRQ__*` flags.
    pub flags: u32,
    /// OUT: the fresh local port.
    pub port: evtchn_port_t,
}

/// `xen/include/public/event_channel.h`: `struct evtchn_bind_ipi`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct evtchn_bind_ipi {
    /// IN: the vCPU to notify (fixed for the channel's life).
    pub vcpu: u32,
    /// OUT: the fresh local port.
    pub port: evtchn_port_t,
}

/// `xen/include/public/event_channel.h`: `struct evtchn_close`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct evtchn_close {
    /// IN: the local port to close; an interdomain peer goes back to unbound.
    pub port: evtchn_port_t,
}

/// `xen/include/public/event_channel.h`: `struct evtchn_send`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct evtchn_send {
    /// IN: the local end of the channel to signal the remote end of.
    pub port: evtchn_port_t,
}

/// `xen/include/public/event_channel.h`: `struct evtchn_status`. The C anonymous union `u` is
/// the 8-byte array [`evtchn_status::u`]; use the accessors, chosen by `status`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct evtchn_status {
    /// IN: the domain owning the port (`DOMID_SELF` unless privileged).
    pub dom: domid_t,
    /// Implicit C padding before `port`, made explicit; ignored.
    pub _pad: u16,
    /// IN: the port.
    pub port: evtchn_port_t,
    /// OUT: an `EVTCHNSTAT_*` value.
    pub status: u32,
    /// OUT: the vCPU the channel notifies.
    pub vcpu: u32,
    /// OUT: the union: `unbound { domid_t dom }`, `interdomain { domid_t dom; evtchn_port_t
    /// port }` (port at byte 4), `uint32_t pirq`, `uint32_t virq`, each from byte 0.
    pub u: [u8; 8],
}

impl evtchn_status {
    fn u16_at(&self, at: usize) -> u16 {
        u16::from_ne_bytes([self.u[at], self.u[at + 1]])
    }

    fn u32_at(&self, at: usize) -> u32 {
        u32::from_ne_bytes([self.u[at], self.u[at + 1], self.u[at + 2], self.u[at + 3]])
    }

    /// `u.unbound.dom` ([`EVTCHNSTAT_unbound`]): the domain allowed to bind.
    pub fn unbound(&self) -> domid_t {
        self.u16_at(0)
    }

    /// `(u.interdomain.dom, u.interdomain.port)` ([`EVTCHNSTAT_interdomain`]): the peer.
    pub fn interdomain(&self) -> (domid_t, evtchn_port_t) {
        (self.u16_at(0), self.u32_at(4))
    }

    /// `u.pirq` ([`EVTCHNSTAT_pirq`]).
    pub fn pirq(&self) -> u32 {
        self.u32_at(0)
    }

    /// `u.virq` ([`EVTCHNSTAT_virq`]).
    pub fn virq(&self) -> u32 {
        self.u32_at(0)
    }

    /// Writes `u.unbound.dom`, zeroing the rest of the union.
    pub fn set_unbound(&mut self, dom: domid_t) {
        self.u = [0; 8];
        self.u[0..2].copy_from_slice(&dom.to_ne_bytes());
    }

    /// Writes `u.interdomain`, zeroing its padding.
    pub fn set_interdomain(&mut self, dom: domid_t, port: evtchn_port_t) {
        self.u = [0; 8];
        self.u[0..2].copy_from_slice(&dom.to_ne_bytes());
        self.u[4..8].copy_from_slice(&port.to_ne_bytes());
    }

    /// Writes `u.pirq`, zeroing the rest of the union.
    pub fn set_pirq(&mut self, pirq: u32) {
        self.u = [0; 8];
        self.u[0..4].copy_from_slice(&pirq.to_ne_bytes());
    }

    /// Writes `u.virq`, zeroing the rest of the union.
    pub fn set_virq(&mut self, virq: u32) {
        self.set_pirq(virq);
    }
}

/// `xen/include/public/event_channel.h`: `struct evtchn_bind_vcpu`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct evtchn_bind_vcpu {
    /// IN: the port (not an IPI or per-vCPU VIRQ channel, whose vCPU is fixed).
    pub port: evtchn_port_t,
    /// IN: the vCPU to notify from now on.
    pub vcpu: u32,
}

/// `xen/include/public/event_channel.h`: `struct evtchn_unmask`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct evtchn_unmask {
    /// IN: the local port to unmask (a pending event is then delivered).
    pub port: evtchn_port_t,
}

/// `xen/include/public/event_channel.h`: `struct evtchn_reset`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct evtchn_reset {
    /// IN: the domain whose channels all close (`DOMID_SELF` unless privileged).
    pub dom: domid_t,
}

/// `xen/include/public/event_channel.h`: `struct evtchn_init_control` (FIFO ABI).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct evtchn_init_control {
    /// IN: the guest frame holding the vCPU's control block.
    pub control_gfn: u64,
    /// IN: byte offset of the control block within that frame.
    pub offset: u32,
    /// IN: the vCPU.
    pub vcpu: u32,
    /// OUT: the number of link bits in an event word.
    pub link_bits: u8,
    /// Xen's explicit padding (`_pad[7]`).
    pub _pad: [u8; 7],
}

/// `xen/include/public/event_channel.h`: `struct evtchn_expand_array` (FIFO ABI).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct evtchn_expand_array {
    /// IN: the guest frame to add to the event array.
    pub array_gfn: u64,
}

/// `xen/include/public/event_channel.h`: `struct evtchn_set_priority` (FIFO ABI).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct evtchn_set_priority {
    /// IN: the port.
    pub port: evtchn_port_t,
    /// IN: 0 (highest) to 15 (lowest).
    pub priority: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::hypercall::{__HYPERVISOR_event_channel_op, assert_layout};

    /// `xen/include/public/event_channel.h` and `xen.h`: every number.
    #[test]
    fn numbers() {
        assert_eq!(__HYPERVISOR_event_channel_op, 32);
        let ops = [
            EVTCHNOP_bind_interdomain,
            EVTCHNOP_bind_virq,
            EVTCHNOP_bind_pirq,
            EVTCHNOP_close,
            EVTCHNOP_send,
            EVTCHNOP_status,
            EVTCHNOP_alloc_unbound,
            EVTCHNOP_bind_ipi,
            EVTCHNOP_bind_vcpu,
            EVTCHNOP_unmask,
            EVTCHNOP_reset,
            EVTCHNOP_init_control,
            EVTCHNOP_expand_array,
            EVTCHNOP_set_priority,
            EVTCHNOP_reset_cont,
        ];
        assert_eq!(ops.to_vec(), (0..=14).collect::<Vec<u32>>());
        let stat = [
            EVTCHNSTAT_closed,
            EVTCHNSTAT_unbound,
            EVTCHNSTAT_interdomain,
            EVTCHNSTAT_pirq,
            EVTCHNSTAT_virq,
            EVTCHNSTAT_ipi,
        ];
        assert_eq!(stat.to_vec(), (0..=5).collect::<Vec<u32>>());
        assert_eq!(BIND_PIRQ__WILL_SHARE, 1);
        let virqs = [
            (VIRQ_TIMER, 0),
            (VIRQ_DEBUG, 1),
            (VIRQ_CONSOLE, 2),
            (VIRQ_DOM_EXC, 3),
            (VIRQ_TBUF, 4),
            (VIRQ_DEBUGGER, 6),
            (VIRQ_XENOPROF, 7),
            (VIRQ_CON_RING, 8),
            (VIRQ_PCPU_STATE, 9),
            (VIRQ_MEM_EVENT, 10),
            (VIRQ_ARGO, 11),
            (VIRQ_ENOMEM, 12),
            (VIRQ_XENPMU, 13),
            (VIRQ_ARCH_0, 16),
            (VIRQ_ARCH_7, 23),
            (NR_VIRQS, 24),
        ];
        for (got, want) in virqs {
            assert_eq!(got, want);
        }
        assert_eq!(EVTCHN_2L_NR_CHANNELS, 4096);
    }

    /// `xen/include/public/event_channel.h`: structure layouts on arm64.
    #[test]
    fn layouts() {
        assert_layout!(evtchn_alloc_unbound, size = 8, align = 4, {
            dom @ 0, remote_dom @ 2, port @ 4,
        });
        assert_layout!(evtchn_bind_interdomain, size = 12, align = 4, {
            remote_dom @ 0, _pad @ 2, remote_port @ 4, local_port @ 8,
        });
        assert_layout!(evtchn_bind_virq, size = 12, align = 4, { virq @ 0, vcpu @ 4, port @ 8 });
        assert_layout!(evtchn_bind_pirq, size = 12, align = 4, { pirq @ 0, flags @ 4, port @ 8 });
        assert_layout!(evtchn_bind_ipi, size = 8, align = 4, { vcpu @ 0, port @ 4 });
        assert_layout!(evtchn_close, size = 4, align = 4, { port @ 0 });
        assert_layout!(evtchn_send, size = 4, align = 4, { port @ 0 });
        assert_layout!(evtchn_status, size = 24, align = 4, {
            dom @ 0, _pad @ 2, port @ 4, status @ 8, vcpu @ 12, u @ 16,
        });
        assert_layout!(evtchn_bind_vcpu, size = 8, align = 4, { port @ 0, vcpu @ 4 });
        assert_layout!(evtchn_unmask, size = 4, align = 4, { port @ 0 });
        assert_layout!(evtchn_reset, size = 2, align = 2, { dom @ 0 });
        assert_layout!(evtchn_init_control, size = 24, align = 8, {
            control_gfn @ 0, offset @ 8, vcpu @ 12, link_bits @ 16, _pad @ 17,
        });
        assert_layout!(evtchn_expand_array, size = 8, align = 8, { array_gfn @ 0 });
        assert_layout!(evtchn_set_priority, size = 8, align = 4, { port @ 0, priority @ 4 });
    }

    /// The union accessors place each member where C does.
    #[test]
    fn status_union() {
        let mut s = evtchn_status::default();
        s.set_interdomain(7, 0x1234_5678);
        assert_eq!(s.interdomain(), (7, 0x1234_5678));
        assert_eq!(&s.as_bytes()[16..18], &7u16.to_ne_bytes());
        assert_eq!(&s.as_bytes()[18..20], &[0, 0]);
        assert_eq!(&s.as_bytes()[20..24], &0x1234_5678u32.to_ne_bytes());
        s.set_unbound(3);
        assert_eq!(s.unbound(), 3);
        assert_eq!(s.u[2..], [0; 6]);
        s.set_pirq(42);
        assert_eq!(s.pirq(), 42);
        s.set_virq(VIRQ_DOM_EXC);
        assert_eq!(s.virq(), VIRQ_DOM_EXC);
        assert_eq!(&s.as_bytes()[16..20], &VIRQ_DOM_EXC.to_ne_bytes());
    }
}
