//! One packet from a frontend's transmit ring (`io/netif.h`), checked as Linux's netback checks
//! it (`drivers/net/xen-netback/netback.c`: `xenvif_tx_build_gops`, `xenvif_get_extras`,
//! `xenvif_count_requests`) before anything is copied.
//!
//! Outcomes, as Linux's:
//! - a packet ([`Packet`]): its first request, its extra-info slots by type, its fragments;
//! - a packet to drop ([`Verdict::Drop`]): its slots are answered `NETIF_RSP_ERROR` and the vif
//!   goes on (a first slot shorter than an Ethernet header, more slots than
//!   [`LEGACY_SLOTS_MAX`] but no more than the fatal threshold);
//! - a fatal error ([`Fatal`]): the frontend is broken or hostile and its vif is disconnected
//!   (Linux's `xenvif_fatal_tx_err`): a producer index more than a ring ahead (XSA-39's class),
//!   a packet that runs past what the frontend produced, an extra-info slot missing or of no
//!   known type, a fragment larger than what is left of the packet or crossing its page (XSA-90,
//!   -228's classes), more slots than the fatal threshold (XSA-270's class).
//!
//! # Invariants
//! - Nothing here reads a slot at or past the producer index it is given, or more than
//!   [`FATAL_SLOTS`] + [`XEN_NETIF_EXTRA_TYPE_MAX`] slots for one packet.
//! - Every arithmetic on indices wraps, as the ring's free-running `u32`s do.

use alloc::vec::Vec;

use xenolith_abi::ring::RING_IDX;
use xenolith_abi::xen::netif::{
    netif_extra_info, netif_tx_request, NETTXF_extra_info, NETTXF_more_data,
    XEN_NETIF_EXTRA_FLAG_MORE, XEN_NETIF_EXTRA_TYPE_MAX, XEN_NETIF_EXTRA_TYPE_NONE,
    XEN_NETIF_NR_SLOTS_MIN,
};
use zerocopy::{FromBytes, IntoBytes};

/// The page a slot's data must stay inside.
pub const PAGE_SIZE: u32 = 4096;
/// An Ethernet header: a shorter packet is dropped (Linux: `ETH_HLEN`).
pub const ETH_HLEN: u16 = 14;
/// Slots a packet may use without being dropped (Linux: `XEN_NETBK_LEGACY_SLOTS_MAX`, which is
/// `XEN_NETIF_NR_SLOTS_MIN`).
pub const LEGACY_SLOTS_MAX: u32 = XEN_NETIF_NR_SLOTS_MIN as u32;
/// Slots past which a packet is fatal (Linux's `fatal_skb_slots` module parameter, whose
/// default is `FATAL_SKB_SLOTS_DEFAULT`, 20).
pub const FATAL_SLOTS: u32 = 20;

/// A packet's slots, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packet {
    /// The first request: its `size` is the whole packet's.
    pub first: netif_tx_request,
    /// The extra-info slots, by type (index `type - 1`).
    pub extras: [Option<netif_extra_info>; XEN_NETIF_EXTRA_TYPE_MAX as usize - 1],
    /// The fragments after the first request, in order.
    pub fragments: Vec<netif_tx_request>,
    /// Ring slots the packet took (its requests and extra-info slots).
    pub slots: u32,
}

/// What the next packet on the ring is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing produced yet.
    Empty,
    /// A packet to send on.
    Packet(Packet),
    /// A packet to drop: answer each of its requests (`ids`) with `NETIF_RSP_ERROR`, having
    /// consumed `slots` slots; the vif goes on.
    Drop {
        /// The ids of its requests.
        ids: Vec<u16>,
        /// Ring slots it took.
        slots: u32,
    },
}

/// Why a frontend's vif is disconnected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fatal {
    /// The producer index is more than a ring ahead of the consumer's (`req_prod - req_cons >
    /// ring size`: "Impossible number of requests").
    ImpossibleProducer { prod: RING_IDX, cons: RING_IDX },
    /// The packet's slots run past what the frontend produced ("Asked for N slots but exceeds
    /// this limit" / "Missing extra info").
    Truncated { slots: u32 },
    /// An extra-info slot of type none or past the last ("Invalid extra type").
    BadExtraType { r#type: u8 },
    /// More than [`FATAL_SLOTS`] slots ("Malicious frontend using N slots").
    TooManySlots { slots: u32 },
    /// A fragment larger than what is left of the packet's size ("Invalid tx request, slot
    /// size N > remaining size M").
    FragmentTooLarge { size: u16, remaining: u16 },
    /// A slot whose data crosses the end of its page ("Cross page boundary").
    CrossesPage { offset: u16, size: u16 },
}

/// The next packet on a transmit ring of `ring_size` slots whose consumer index is `cons` and
/// producer index `prod`; `slot(i)` reads the 12 bytes of slot `i` (index masked by the
/// caller's ring, any value: the frontend may change it under our feet, so each is read once).
pub fn next_packet(
    ring_size: u32,
    cons: RING_IDX,
    prod: RING_IDX,
    mut slot: impl FnMut(RING_IDX) -> [u8; 12],
) -> Result<Verdict, Fatal> {
    let available = crate::outstanding(ring_size, cons, prod)
        .ok_or(Fatal::ImpossibleProducer { prod, cons })?;
    if available == 0 {
        return Ok(Verdict::Empty);
    }
    let mut read = |taken: u32| -> Result<[u8; 12], Fatal> {
        if taken >= available {
            return Err(Fatal::Truncated { slots: taken + 1 });
        }
        Ok(slot(cons.wrapping_add(taken)))
    };
    let first = request(read(0)?);
    let mut taken = 1;
    let mut extras = [None; XEN_NETIF_EXTRA_TYPE_MAX as usize - 1];
    if first.flags & NETTXF_extra_info != 0 {
        loop {
            let bytes = read(taken)?;
            let extra = netif_extra_info::read_from_prefix(&bytes)
                .map_or_else(|_| Default::default(), |(e, _)| e);
            taken += 1;
            if extra.r#type == XEN_NETIF_EXTRA_TYPE_NONE || extra.r#type >= XEN_NETIF_EXTRA_TYPE_MAX
            {
                return Err(Fatal::BadExtraType { r#type: extra.r#type });
            }
            extras[extra.r#type as usize - 1] = Some(extra);
            if extra.flags & XEN_NETIF_EXTRA_FLAG_MORE == 0 {
                break;
            }
            if taken > XEN_NETIF_EXTRA_TYPE_MAX as u32 {
                return Err(Fatal::TooManySlots { slots: taken });
            }
        }
    }
    let mut fragments = Vec::new();
    let mut remaining = first.size;
    let mut more = first.flags & NETTXF_more_data != 0;
    let mut drop = false;
    while more {
        // Linux counts the fragments read so far, not the first request.
        let read_so_far = fragments.len() as u32;
        if read_so_far >= FATAL_SLOTS {
            return Err(Fatal::TooManySlots { slots: read_so_far + 1 });
        }
        drop |= read_so_far >= LEGACY_SLOTS_MAX;
        let fragment = request(read(taken)?);
        taken += 1;
        if fragment.size > remaining {
            return Err(Fatal::FragmentTooLarge { size: fragment.size, remaining });
        }
        remaining -= fragment.size;
        if u32::from(fragment.offset) + u32::from(fragment.size) > PAGE_SIZE {
            return Err(Fatal::CrossesPage { offset: fragment.offset, size: fragment.size });
        }
        more = fragment.flags & NETTXF_more_data != 0;
        fragments.push(fragment);
    }
    // The first slot holds what the fragments do not.
    let first_bytes = remaining;
    if u32::from(first.offset) + u32::from(first_bytes) > PAGE_SIZE {
        return Err(Fatal::CrossesPage { offset: first.offset, size: first_bytes });
    }
    if drop || first_bytes < ETH_HLEN {
        let ids = core::iter::once(first.id).chain(fragments.iter().map(|f| f.id)).collect();
        return Ok(Verdict::Drop { ids, slots: taken });
    }
    Ok(Verdict::Packet(Packet { first, extras, fragments, slots: taken }))
}

fn request(bytes: [u8; 12]) -> netif_tx_request {
    netif_tx_request::read_from_bytes(&bytes).unwrap_or_default()
}

/// The 12 bytes of a request, as a ring slot holds them.
pub fn slot_bytes(request: &netif_tx_request) -> [u8; 12] {
    let mut bytes = [0; 12];
    bytes.copy_from_slice(request.as_bytes());
    bytes
}

#[cfg(test)]
mod tests;
