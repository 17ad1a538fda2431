//! Event channels: one domain's port table and the operations between two domains' tables, with
//! Xen 4.17's 2-level semantics (`xen/common/event_channel.c`, `xen/common/event_2l.c`,
//! `xen/include/public/event_channel.h`).
//!
//! This is the pure half: the core looks up and locks the domains, then calls in here. An
//! operation that involves two domains is a method of one table that takes the other as
//! `Option<&mut EventTable>` (`None`: the same domain); the caller locks both (in domain-id
//! order, as Xen does). An operation that finds it needs a peer it was not given
//! ([`EventTable::close`], [`EventTable::reset`]) changes nothing and names the peer, so the
//! caller can lock it and call the two-table variant, much as Xen's `evtchn_close` drops its
//! lock and retries (`goto again`).
//!
//! Errors are the values Xen returns. The caller's checks stay with the caller: looking up the
//! domain (`-ESRCH`), XSM, `DOMID_SELF`, and the domain's dying/paused state.
//!
//! The pending and mask bits are the 2-level bitmaps in the guest's `shared_info` page
//! ([`Bitmaps`]), which the guest changes too (it masks and clears ports without a hypercall), so
//! every read and change of them is one atomic operation, as Xen's `guest_test_and_set_bit`. The
//! per-vCPU `evtchn_pending_sel` word (which suppresses repeated upcalls) is the caller's: an
//! `Option<u32>` "upcall this vCPU" here means Xen would go on to set the selector bit and, if
//! that was clear, mark the vCPU's events pending.
//!
//! Not modelled: PIRQ channels (`ECS_PIRQ`), channels consumed by Xen itself
//! (`consumer_is_xen`, which Xen refuses to guests with `-EINVAL`/`-EACCES`), a guest-chosen port
//! number (static event channels; we always take the lowest free port), the FIFO ABI and
//! `EVTCHNOP_set_priority`. `SCHEDOP_poll` pollers are the core's (it knows the vCPUs).
//!
//! # Invariants
//! - Port 0 is [`PortState::Reserved`] for the table's life (`evtchn_init`, event_channel.c:1523).
//! - No port above [`EventTable::max_port`] is ever bound.
//! - `Interdomain { remote, remote_port }` at `(d, p)` implies `Interdomain { remote: d,
//!   remote_port: p }` at `(remote, remote_port)`: both ends change under both tables' locks.
//! - `virq_ports[v][virq] == Some(p)` if and only if port `p` is `Virq { virq, vcpu: v }`.
//! - A port freed by the table is left not pending and notifies vCPU 0 (`evtchn_free`,
//!   event_channel.c:287); the guest may still set its bits, which mean nothing until it is bound.
//! - `channels` holds exactly the allocated buckets: the valid ports are `0..channels.len()`.
//! - A failing operation changes nothing.

#[cfg(test)]
mod tests;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::event_channel::{
    evtchn_status, EVTCHNSTAT_closed, EVTCHNSTAT_interdomain, EVTCHNSTAT_ipi, EVTCHNSTAT_unbound,
    EVTCHNSTAT_virq,
};

use crate::mm::guest_atomic;
use crate::policy::DomainId;

/// An event-channel port number (`evtchn_port_t`).
pub type Port = u32;

/// Ports per domain in this build. Xen's 2-level ABI allows `BITS_PER_LONG²` (4096 for a
/// 64-bit guest, `EVTCHN_2L_NR_CHANNELS`); we keep 1024 so a table stays small and fixed-size.
/// A guest asking for a higher port gets Xen's answer for a port beyond `max_evtchns`.
pub const MAX_PORTS: usize = 1024;

/// Ports per allocation bucket. Xen allocates `struct evtchn` in page-sized buckets of
/// `EVTCHNS_PER_BUCKET` (`xen/include/xen/event.h:80`; 64 with 4 KiB pages and a 64-byte
/// `struct evtchn`), and a port is *valid* (`port_is_valid`) once its bucket exists. We model the
/// buckets so the same ports answer `-EINVAL` as on Xen.
pub const EVTCHNS_PER_BUCKET: Port = 64;

/// vCPUs per domain this table tracks VIRQ bindings for (the core's `MAX_VCPUS_PER_DOMAIN`).
pub const MAX_VCPUS: usize = 8;

/// `xen/include/public/xen.h`: `NR_VIRQS`, as an array length.
pub const NR_VIRQS: usize = xenolith_abi::xen::event_channel::NR_VIRQS as usize;

pub use xenolith_abi::xen::event_channel::{
    VIRQ_CONSOLE, VIRQ_DEBUG, VIRQ_TIMER, VIRQ_XENOPROF, VIRQ_XENPMU,
};

/// Whether `virq` is global (bound on vCPU 0 only) rather than per-vCPU. `virq_is_global`,
/// event_channel.c:138; on Arm the arch VIRQs are all global (`arch_virq_is_global`).
pub fn virq_is_global(virq: u32) -> bool {
    !matches!(virq, VIRQ_TIMER | VIRQ_DEBUG | VIRQ_XENOPROF | VIRQ_XENPMU)
}

/// What a port is bound to (`ECS_*` in `xen/include/xen/sched.h`, without `ECS_PIRQ`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortState {
    /// `ECS_FREE`: not in use.
    Free,
    /// `ECS_UNBOUND`: offered to domain `remote`, waiting for it to bind.
    Unbound { remote: DomainId },
    /// `ECS_INTERDOMAIN`: connected to `remote_port` of domain `remote` (possibly this domain).
    Interdomain { remote: DomainId, remote_port: Port },
    /// `ECS_VIRQ`: bound to `virq`, recorded in the VIRQ table of `vcpu` (0 for a global VIRQ).
    Virq { virq: u32, vcpu: u32 },
    /// `ECS_IPI`: an inter-processor event to `vcpu` of this domain.
    Ipi { vcpu: u32 },
    /// `ECS_RESERVED`: port 0, never usable.
    Reserved,
}

/// Words of each 2-level bitmap in `shared_info` (`xen/include/public/xen.h`:
/// `evtchn_pending[sizeof(xen_ulong_t) * 8]`, 64-bit words on Arm).
pub const BITMAP_WORDS: usize = 64;

/// A domain's 2-level `shared_info.evtchn_pending` and `evtchn_mask` bitmaps, shared with the
/// guest. Port `p` is bit `p % 64` of word `p / 64`.
#[derive(Clone, Copy, Debug)]
pub struct Bitmaps<'a> {
    owner: DomainId,
    pending: &'a [AtomicU64; BITMAP_WORDS],
    mask: &'a [AtomicU64; BITMAP_WORDS],
}

impl<'a> Bitmaps<'a> {
    /// Domain `owner`'s bitmaps at `pending` and `mask`.
    pub fn new(
        owner: DomainId,
        pending: &'a [AtomicU64; BITMAP_WORDS],
        mask: &'a [AtomicU64; BITMAP_WORDS],
    ) -> Self {
        Self { owner, pending, mask }
    }

    fn bit(port: Port) -> (usize, u64) {
        ((port / 64) as usize % BITMAP_WORDS, 1 << (port % 64))
    }

    /// The port's pending bit.
    pub fn pending(&self, port: Port) -> bool {
        let (word, bit) = Self::bit(port);
        self.pending[word].load(Ordering::Acquire) & bit != 0
    }

    /// The port's mask bit.
    pub fn masked(&self, port: Port) -> bool {
        let (word, bit) = Self::bit(port);
        self.mask[word].load(Ordering::Acquire) & bit != 0
    }

    /// Sets the pending bit; whether it was set. Bounded ([`guest_atomic`]): if the guest
    /// keeps the word changing, the event is dropped (reported as already pending) and the
    /// guest crashed.
    pub fn test_and_set_pending(&self, port: Port) -> bool {
        let (word, bit) = Self::bit(port);
        guest_atomic::update(self.owner, &self.pending[word], |v| v | bit)
            .is_none_or(|v| v & bit != 0)
    }

    /// Clears the pending bit (as the guest does when it handles the event); bounded.
    pub fn clear_pending(&self, port: Port) {
        let (word, bit) = Self::bit(port);
        guest_atomic::update(self.owner, &self.pending[word], |v| v & !bit);
    }

    /// Clears the mask bit; whether it was set (bounded: `false` if given up).
    pub fn test_and_clear_mask(&self, port: Port) -> bool {
        let (word, bit) = Self::bit(port);
        guest_atomic::update(self.owner, &self.mask[word], |v| v & !bit)
            .is_some_and(|v| v & bit != 0)
    }
}

/// One port's binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channel {
    state: PortState,
    notify_vcpu: u32,
}

impl Channel {
    const FREE: Self = Self { state: PortState::Free, notify_vcpu: 0 };
}

/// Where a [`EventTable::send`] goes. The caller then calls [`EventTable::mark_pending`] on the
/// named port of the named table, which says which vCPU, if any, to upcall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendTarget {
    /// The port is unbound: Xen silently drops the notification and returns 0.
    Dropped,
    /// Mark `port` of the sending domain pending (an IPI, or an interdomain loopback).
    Local { port: Port },
    /// Mark `port` of domain `domain` pending.
    Remote { domain: DomainId, port: Port },
}

/// A new binding: the port, and the vCPU to upcall if binding left it pending and unmasked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bound {
    pub port: Port,
    pub upcall: Option<u32>,
}

/// The outcome of [`EventTable::close`] and [`EventTable::reset`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Close {
    /// Done.
    Done,
    /// `port` is connected to domain `peer`: nothing was changed; lock both tables and call
    /// [`EventTable::close_with_peer`].
    NeedsPeer { port: Port, peer: DomainId },
}

/// One domain's event channels (`d->evtchn` and friends). Small: the ports live on the heap, a
/// bucket at a time.
#[derive(Clone, Debug)]
pub struct EventTable<'a> {
    domain_id: DomainId,
    bits: Bitmaps<'a>,
    /// The allocated buckets: ports below `channels.len()` are valid (`valid_evtchns`).
    channels: Vec<Channel>,
    /// The highest port the domain may bind (`max_evtchn_port` from `createdomain`).
    max_port: Port,
    vcpus: u32,
    virq_ports: [[Option<Port>; NR_VIRQS]; MAX_VCPUS],
}

impl<'a> EventTable<'a> {
    /// `evtchn_init` (event_channel.c:1506) for domain `domain_id` with `vcpus` vCPUs and the
    /// pending and mask bits in `bits`. A
    /// `max_port` beyond this build's [`MAX_PORTS`] is clamped, as Xen clamps it to `INT_MAX`
    /// and then allocates no port at or above `max_evtchns`. `-EINVAL` if `vcpus` is 0 or more
    /// than [`MAX_VCPUS`].
    pub fn new(
        domain_id: DomainId,
        bits: Bitmaps<'a>,
        max_port: Port,
        vcpus: u32,
    ) -> Result<Self, XenError> {
        if vcpus == 0 || vcpus as usize > MAX_VCPUS {
            return Err(XenError::EINVAL);
        }
        let mut channels = alloc::vec![Channel::FREE; EVTCHNS_PER_BUCKET as usize];
        channels[0].state = PortState::Reserved;
        Ok(Self {
            domain_id,
            bits,
            channels,
            max_port: max_port.min(MAX_PORTS as Port - 1),
            vcpus,
            virq_ports: [[None; NR_VIRQS]; MAX_VCPUS],
        })
    }

    /// Whether `port` is pending (`evtchn_port_is_pending`; false for an invalid port).
    pub fn pending(&self, port: Port) -> bool {
        self.channel(port).is_some() && self.bits.pending(port)
    }

    /// `port`'s channel, if the port is valid (`port_is_valid`: its bucket is allocated).
    pub fn channel(&self, port: Port) -> Option<&Channel> {
        self.channels.get(port as usize)
    }

    /// The port bound to `virq` for `vcpu` (vCPU 0's table for a global VIRQ, as
    /// `send_guest_global_virq` looks there).
    pub fn virq_port(&self, virq: u32, vcpu: u32) -> Option<Port> {
        let vcpu = if virq_is_global(virq) { 0 } else { vcpu };
        *self.virq_ports.get(vcpu as usize)?.get(virq as usize)?
    }

    /// `get_free_port` (event_channel.c:256) without allocating: the lowest free port at or
    /// below `max_port`, else `-ENOSPC`. A port beyond the allocated buckets is free.
    fn free_port(&self) -> Result<Port, XenError> {
        (1..=self.max_port)
            .find(|&port| self.channel(port).is_none_or(|channel| channel.state == PortState::Free))
            .ok_or(XenError::ENOSPC)
    }

    /// Binds free `port` (from [`Self::free_port`]), allocating its bucket as
    /// `evtchn_allocate_port` does.
    fn bind(&mut self, port: Port, state: PortState, notify_vcpu: u32) {
        if self.channel(port).is_none() {
            let buckets = port / EVTCHNS_PER_BUCKET + 1;
            self.channels.resize((buckets * EVTCHNS_PER_BUCKET) as usize, Channel::FREE);
        }
        let channel = &mut self.channels[port as usize];
        channel.state = state;
        channel.notify_vcpu = notify_vcpu;
    }

    /// `evtchn_free` (event_channel.c:287): clears pending, resets the vCPU; the mask stays.
    fn free(&mut self, port: Port) {
        let channel = &mut self.channels[port as usize];
        channel.state = PortState::Free;
        channel.notify_vcpu = 0;
        self.bits.clear_pending(port);
    }

    /// `EVTCHNOP_alloc_unbound` (event_channel.c:324): a new port offered to `remote` (the
    /// caller has resolved `DOMID_SELF`). Xen does not check that `remote` exists.
    pub fn alloc_unbound(&mut self, remote: DomainId) -> Result<Port, XenError> {
        let port = self.free_port()?;
        self.bind(port, PortState::Unbound { remote }, 0);
        Ok(port)
    }

    /// `EVTCHNOP_bind_interdomain` (event_channel.c:389) to `remote_port` of `remote`'s table,
    /// or of this domain's own for `None` (a loopback channel). The local port is allocated
    /// first, so a full table answers `-ENOSPC` before a bad remote port answers `-EINVAL`
    /// (unless that port is unbound and offered to this domain, event_channel.c:421-426). As
    /// Xen, the new local port is left pending, in case the remote end sent while unbound.
    pub fn bind_interdomain(
        &mut self,
        remote: Option<&mut Self>,
        remote_port: Port,
    ) -> Result<Bound, XenError> {
        let local_port = self.free_port()?;
        let local_id = self.domain_id;
        let peer = remote.as_deref().unwrap_or(self);
        match peer.channel(remote_port).map(|channel| channel.state) {
            Some(PortState::Unbound { remote }) if remote == local_id => {}
            _ => return Err(XenError::EINVAL),
        }
        let remote_id = peer.domain_id;
        self.bind(local_port, PortState::Interdomain { remote: remote_id, remote_port }, 0);
        remote.unwrap_or(&mut *self).channels[remote_port as usize].state =
            PortState::Interdomain { remote: local_id, remote_port: local_port };
        Ok(Bound { port: local_port, upcall: self.mark_pending(local_port) })
    }

    /// `EVTCHNOP_bind_virq` (event_channel.c:465). `-EINVAL` for a VIRQ beyond `NR_VIRQS` or a
    /// global VIRQ on a vCPU other than 0, `-ENOENT` for no such vCPU, `-EEXIST` if already
    /// bound for that vCPU, `-ENOSPC` for no free port, in that order.
    pub fn bind_virq(&mut self, virq: u32, vcpu: u32) -> Result<Port, XenError> {
        if virq as usize >= NR_VIRQS || (virq_is_global(virq) && vcpu != 0) {
            return Err(XenError::EINVAL);
        }
        if vcpu >= self.vcpus {
            return Err(XenError::ENOENT);
        }
        if self.virq_ports[vcpu as usize][virq as usize].is_some() {
            return Err(XenError::EEXIST);
        }
        let port = self.free_port()?;
        self.bind(port, PortState::Virq { virq, vcpu }, vcpu);
        self.virq_ports[vcpu as usize][virq as usize] = Some(port);
        Ok(port)
    }

    /// `EVTCHNOP_bind_ipi` (event_channel.c:526): `-ENOENT` for no such vCPU, `-ENOSPC`.
    pub fn bind_ipi(&mut self, vcpu: u32) -> Result<Port, XenError> {
        if vcpu >= self.vcpus {
            return Err(XenError::ENOENT);
        }
        let port = self.free_port()?;
        self.bind(port, PortState::Ipi { vcpu }, vcpu);
        Ok(port)
    }

    /// `EVTCHNOP_close` (event_channel.c:648) of a port that does not need a peer's table.
    /// `-EINVAL` for an invalid, free or reserved port. An interdomain port whose peer is
    /// another domain is left alone and reported as [`Close::NeedsPeer`].
    pub fn close(&mut self, port: Port) -> Result<Close, XenError> {
        let id = self.domain_id;
        match self.channel(port).ok_or(XenError::EINVAL)?.state {
            PortState::Free | PortState::Reserved => return Err(XenError::EINVAL),
            PortState::Unbound { .. } | PortState::Ipi { .. } => {}
            PortState::Virq { virq, vcpu } => self.virq_ports[vcpu as usize][virq as usize] = None,
            PortState::Interdomain { remote, .. } if remote != id => {
                return Ok(Close::NeedsPeer { port, peer: remote });
            }
            PortState::Interdomain { remote_port, .. } => {
                self.channels[remote_port as usize].state = PortState::Unbound { remote: id };
            }
        }
        self.free(port);
        Ok(Close::Done)
    }

    /// `EVTCHNOP_close` of interdomain `port` connected to `remote` (`None`: this domain): frees
    /// `port` and puts the peer's port back to `Unbound { remote: this domain }`, ready to be
    /// bound again (event_channel.c:756-757). `-EINVAL` if `port` is not (or no longer)
    /// connected to `remote`, as Xen answers when the port changed while it relocked
    /// (event_channel.c:743).
    pub fn close_with_peer(
        &mut self,
        remote: Option<&mut Self>,
        port: Port,
    ) -> Result<(), XenError> {
        let id = self.domain_id;
        let peer_id = remote.as_deref().map_or(id, |remote| remote.domain_id);
        match self.channel(port).map(|channel| channel.state) {
            Some(PortState::Interdomain { remote: peer, remote_port }) if peer == peer_id => {
                self.free(port);
                remote.unwrap_or(self).channels[remote_port as usize].state =
                    PortState::Unbound { remote: id };
                Ok(())
            }
            _ => Err(XenError::EINVAL),
        }
    }

    /// `EVTCHNOP_send` (event_channel.c:784): where the event goes. `-EINVAL` for an invalid,
    /// free, reserved or VIRQ port; an unbound port drops the event and succeeds.
    pub fn send(&self, port: Port) -> Result<SendTarget, XenError> {
        match self.channel(port).ok_or(XenError::EINVAL)?.state {
            PortState::Interdomain { remote, remote_port } if remote == self.domain_id => {
                Ok(SendTarget::Local { port: remote_port })
            }
            PortState::Interdomain { remote, remote_port } => {
                Ok(SendTarget::Remote { domain: remote, port: remote_port })
            }
            PortState::Ipi { .. } => Ok(SendTarget::Local { port }),
            PortState::Unbound { .. } => Ok(SendTarget::Dropped),
            PortState::Free | PortState::Reserved | PortState::Virq { .. } => Err(XenError::EINVAL),
        }
    }

    /// `evtchn_2l_set_pending` (event_2l.c:19): sets the pending bit; if it was clear and the
    /// port is unmasked, the port's notify vCPU must get an upcall. An invalid port does nothing.
    pub fn mark_pending(&mut self, port: Port) -> Option<u32> {
        let notify_vcpu = self.channel(port)?.notify_vcpu;
        let was_pending = self.bits.test_and_set_pending(port);
        (!was_pending && !self.bits.masked(port)).then_some(notify_vcpu)
    }

    /// `EVTCHNOP_unmask` (event_channel.c:1129, `evtchn_2l_unmask` event_2l.c:51): clears the
    /// mask bit; if it was set and the port is pending, its notify vCPU must get an upcall.
    /// `-EINVAL` for an invalid port; any valid port may be unmasked, whatever its state.
    pub fn unmask(&mut self, port: Port) -> Result<Option<u32>, XenError> {
        let notify_vcpu = self.channel(port).ok_or(XenError::EINVAL)?.notify_vcpu;
        let was_masked = self.bits.test_and_clear_mask(port);
        Ok((was_masked && self.bits.pending(port)).then_some(notify_vcpu))
    }

    /// `EVTCHNOP_status` (event_channel.c:1000) of `op.port`: fills in `status`, `vcpu` (the
    /// notify vCPU) and the union. `-EINVAL` for an invalid port.
    pub fn status(&self, op: &mut evtchn_status) -> Result<(), XenError> {
        let channel = self.channel(op.port).ok_or(XenError::EINVAL)?;
        op.vcpu = channel.notify_vcpu;
        op.u = [0; 8];
        op.status = match channel.state {
            PortState::Free | PortState::Reserved => EVTCHNSTAT_closed,
            PortState::Unbound { remote } => {
                op.set_unbound(remote);
                EVTCHNSTAT_unbound
            }
            PortState::Interdomain { remote, remote_port } => {
                op.set_interdomain(remote, remote_port);
                EVTCHNSTAT_interdomain
            }
            PortState::Virq { virq, .. } => {
                op.set_virq(virq);
                EVTCHNSTAT_virq
            }
            PortState::Ipi { .. } => EVTCHNSTAT_ipi,
        };
        Ok(())
    }

    /// `EVTCHNOP_bind_vcpu` (event_channel.c:1072): `-ENOENT` for no such vCPU (checked
    /// first), `-EINVAL` for an invalid port or one that cannot move: only unbound,
    /// interdomain and global-VIRQ ports can.
    pub fn bind_vcpu(&mut self, port: Port, vcpu: u32) -> Result<(), XenError> {
        if vcpu >= self.vcpus {
            return Err(XenError::ENOENT);
        }
        let channel = self.channels.get_mut(port as usize).ok_or(XenError::EINVAL)?;
        match channel.state {
            PortState::Virq { virq, .. } if virq_is_global(virq) => {}
            PortState::Unbound { .. } | PortState::Interdomain { .. } => {}
            _ => return Err(XenError::EINVAL),
        }
        channel.notify_vcpu = vcpu;
        Ok(())
    }

    /// `EVTCHNOP_reset` (event_channel.c:1159): closes every port. Stops, having closed every
    /// port below it, at the first interdomain port connected to another domain; the caller
    /// closes that one with [`Self::close_with_peer`] and calls again, as Xen continues a
    /// preempted reset.
    pub fn reset(&mut self) -> Close {
        for port in 1..self.channels.len() as Port {
            match self.close(port) {
                Ok(Close::NeedsPeer { port, peer }) => return Close::NeedsPeer { port, peer },
                Ok(Close::Done) | Err(_) => {}
            }
        }
        Close::Done
    }
}
