//! One packet placed on a frontend's receive ring by grant copy (backend to frontend), laid
//! out as Linux's netback lays it out (`drivers/net/xen-netback/rx.c`: `xenvif_rx_skb`,
//! `xenvif_rx_data_slot`, `xenvif_rx_next_chunk`, `xenvif_rx_extra_slot`,
//! `xenvif_rx_complete`) for a frontend that wrote `request-rx-copy` and, for packets larger
//! than a page, `feature-sg`.
//!
//! The layout (Xen's "Guest receive" wire format, `xen/include/public/io/netif.h`):
//! - Data slots of up to [`PAGE_SIZE`] bytes each: every data slot but the last is full, the
//!   data starts at offset 0 of the granted page (Linux starts at the vif's XDP headroom,
//!   which is 0 unless the frontend asks for XDP, which this backend does not offer), the
//!   response's `offset` is 0 and its `status` the bytes in that slot.
//! - One GSO extra-info slot, if the packet has GSO, *after the first data slot* ("Extras must
//!   go after the first data slot", `xenvif_rx_skb`): the first response carries
//!   `NETRXF_extra_info`.
//! - Flags on the first response: `NETRXF_csum_blank | NETRXF_data_validated` for a packet
//!   whose checksum is blank (Linux: `CHECKSUM_PARTIAL`), `NETRXF_data_validated` for one
//!   already validated (`CHECKSUM_UNNECESSARY`); `NETRXF_more_data` on every data slot but the
//!   last.
//! - Each response sits in the ring slot of the request it answers and echoes its `id`
//!   (netif.h: "backends must make sure this is the case": netfront finds a response's page
//!   by its slot, and an extra-info slot overlays the id). So after a packet the response
//!   producer equals the request consumer (Linux: `rsp_prod_pvt = req_cons` in
//!   `xenvif_rx_complete`).
//! - A grant copy's source and destination both stay inside one page (Xen's `gnttab_copy_buf`
//!   refuses "copy beyond page area" with `GNTST_bad_copy_arg`); like `xenvif_rx_next_chunk`,
//!   a slot's data is split into several copies where the packet's own buffer crosses a page.
//!
//! What a packet needs and when it cannot be placed ([`slots_needed`]): Linux's
//! `xenvif_rx_ring_slots_available` counts `DIV_ROUND_UP(len, XEN_PAGE_SIZE)` data slots plus
//! one for GSO; the packet waits until that many requests are posted ([`RxVerdict::NoRoom`]).
//! A packet larger than a page for a frontend without `feature-sg`, an empty packet, or one of
//! more than [`XEN_NETIF_NR_SLOTS_MIN`] data slots (netfront's `xennet_get_responses` drops
//! such a packet as "Too many slots") is never placeable: the caller drops it.
//!
//! A producer index more than a ring ahead of the consumer is fatal for the vif
//! ([`RxFatal::ImpossibleProducer`], the class of `xenvif_tx_build_gops`'s "Impossible number
//! of requests"; Linux's rx path does not check it, as it reads at most the slots it needs).
//!
//! # Invariants
//! - [`place`] reads each request slot it uses exactly once, only slots in `[cons, cons +
//!   slots)` with `slots` what [`slots_needed`] said, and none when the packet does not fit.
//! - Copies cover the packet's bytes exactly once, in order; no copy crosses a page of the
//!   destination or of the packet's buffer; each data response's `status` is the sum of its
//!   copies' lengths.
//! - Indices wrap as the ring's free-running `u32`s do.

use alloc::vec::Vec;

use xenolith_abi::ring::RING_IDX;
use xenolith_abi::xen::netif::{
    netif_extra_info, netif_rx_request, netif_rx_response, Gso, NETRXF_csum_blank,
    NETRXF_data_validated, NETRXF_extra_info, NETRXF_more_data, XEN_NETIF_NR_SLOTS_MIN,
};
use zerocopy::{FromBytes, IntoBytes};

/// A granted page, the most one data slot holds (`XEN_PAGE_SIZE`).
pub const PAGE_SIZE: usize = 4096;
/// The most data slots a packet may take: netfront drops a packet of more
/// (`xennet_get_responses`: `max = XEN_NETIF_NR_SLOTS_MIN + ...`, "Too many slots").
pub const MAX_DATA_SLOTS: u32 = XEN_NETIF_NR_SLOTS_MIN as u32;

/// A packet to place: what the frontend is told about it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxMeta {
    /// Bytes of the packet.
    pub len: usize,
    /// Where the packet's first byte lies in the first page of the caller's buffer (the
    /// buffer is contiguous; 0 when it is page-aligned). Copies are split where the buffer
    /// crosses a page.
    pub source_offset: usize,
    /// Its TCP/UDP checksum is blank (the sender offloaded it): `NETRXF_csum_blank` (with
    /// `NETRXF_data_validated`, as Linux sets both).
    pub csum_blank: bool,
    /// Its checksum was already validated: `NETRXF_data_validated`.
    pub data_validated: bool,
    /// Segmentation to announce in a GSO extra-info slot. The caller passes it only when the
    /// frontend advertised the type (`feature-gso-tcpv4` / `-tcpv6`; Linux's `gso_mask`).
    pub gso: Option<Gso>,
}

/// Why a packet can never be placed for this frontend (the caller drops it; the vif goes on).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unplaceable {
    /// An empty packet.
    Empty,
    /// Larger than one page, for a frontend without `feature-sg`.
    NeedsScatterGather {
        /// The packet's bytes.
        len: usize,
    },
    /// More data slots than netfront accepts ([`MAX_DATA_SLOTS`]).
    TooLong {
        /// The packet's bytes.
        len: usize,
    },
}

/// A grant copy to do: packet bytes `[packet_offset, packet_offset + len)` into the granted
/// page `gref` at `dest_offset`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxCopy {
    /// The frontend's page (its request's `gref`).
    pub gref: u32,
    /// Where in that page.
    pub dest_offset: u16,
    /// Where in the packet.
    pub packet_offset: usize,
    /// How many bytes (never crossing a page of either side).
    pub len: u16,
    /// The index in [`Placement::responses`] of the response this copy belongs to: a failed
    /// copy sets that response's `status` to the grant status (Linux's
    /// `xenvif_rx_copy_flush`).
    pub response: u32,
}

/// One response slot, in ring order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxResponse {
    /// A data slot's response.
    Data(netif_rx_response),
    /// An extra-info slot, overlaying the response.
    Extra(netif_extra_info),
}

impl RxResponse {
    /// The 8 bytes the response slot gets.
    pub fn bytes(&self) -> [u8; 8] {
        let mut bytes = [0; 8];
        match self {
            Self::Data(response) => bytes.copy_from_slice(response.as_bytes()),
            Self::Extra(extra) => bytes.copy_from_slice(extra.as_bytes()),
        }
        bytes
    }
}

/// Where a packet goes: the copies to make and the responses to write, response `i` at ring
/// index `cons + i` (the response producer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The grant copies, in packet order.
    pub copies: Vec<RxCopy>,
    /// The responses, in ring order.
    pub responses: Vec<RxResponse>,
    /// Request slots consumed (as many as responses).
    pub slots: u32,
}

impl Placement {
    /// After the copies are done and the responses written from `cons` on: the new request
    /// consumer and the new response producer (they are equal, see the module doc).
    pub fn advance(&self, cons: RING_IDX) -> (RING_IDX, RING_IDX) {
        let next = cons.wrapping_add(self.slots);
        (next, next)
    }
}

/// What became of the packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RxVerdict {
    /// Fewer requests posted than the packet needs: it waits (or the caller drops it).
    NoRoom {
        /// Slots it needs.
        needed: u32,
        /// Requests posted.
        posted: u32,
    },
    /// Never placeable for this frontend: the caller drops it.
    Unplaceable(Unplaceable),
    /// Placed.
    Placed(Placement),
}

/// Why a frontend's vif is disconnected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxFatal {
    /// The request producer is more than a ring ahead of the consumer.
    ImpossibleProducer {
        /// The frontend's `req_prod`.
        prod: RING_IDX,
        /// The backend's `req_cons`.
        cons: RING_IDX,
    },
}

/// Data slots for `len` bytes.
fn data_slots(len: usize) -> usize {
    len.div_ceil(PAGE_SIZE)
}

/// Ring slots `meta`'s packet takes (data slots, plus one for GSO), or why it never fits a
/// frontend with (`sg`) or without `feature-sg`.
pub fn slots_needed(meta: &RxMeta, sg: bool) -> Result<u32, Unplaceable> {
    if meta.len == 0 {
        return Err(Unplaceable::Empty);
    }
    if !sg && meta.len > PAGE_SIZE {
        return Err(Unplaceable::NeedsScatterGather { len: meta.len });
    }
    let data = data_slots(meta.len);
    if data > MAX_DATA_SLOTS as usize {
        return Err(Unplaceable::TooLong { len: meta.len });
    }
    Ok(data as u32 + u32::from(meta.gso.is_some()))
}

/// Places `meta`'s packet on a receive ring of `ring_size` slots whose request consumer is
/// `cons` and request producer `prod`; `slot(i)` reads the 8 bytes of request slot `i` (index
/// masked by the caller; any value, read once).
pub fn place(
    ring_size: u32,
    cons: RING_IDX,
    prod: RING_IDX,
    meta: &RxMeta,
    sg: bool,
    mut slot: impl FnMut(RING_IDX) -> [u8; 8],
) -> Result<RxVerdict, RxFatal> {
    let posted = crate::outstanding(ring_size, cons, prod)
        .ok_or(RxFatal::ImpossibleProducer { prod, cons })?;
    let needed = match slots_needed(meta, sg) {
        Ok(needed) => needed,
        Err(why) => return Ok(RxVerdict::Unplaceable(why)),
    };
    if posted < needed {
        return Ok(RxVerdict::NoRoom { needed, posted });
    }
    let mut copies = Vec::new();
    let mut responses = Vec::with_capacity(needed as usize);
    let mut done = 0usize;
    for index in 0..needed {
        let response = index;
        if index == 1 {
            if let Some(gso) = meta.gso {
                // Its request is consumed unread: the extra-info slot overlays its response.
                responses.push(RxResponse::Extra(netif_extra_info::new_gso(gso, false)));
                continue;
            }
        }
        let request =
            netif_rx_request::read_from_bytes(&slot(cons.wrapping_add(index))).unwrap_or_default();
        let start = done;
        let end = meta.len.min(start + PAGE_SIZE);
        while done < end {
            // Stop at the end of the slot and at the end of the buffer's page.
            let page_end = (meta.source_offset + done) / PAGE_SIZE * PAGE_SIZE + PAGE_SIZE;
            let len = (end - done).min(page_end - (meta.source_offset + done));
            copies.push(RxCopy {
                gref: request.gref,
                dest_offset: (done - start) as u16,
                packet_offset: done,
                len: len as u16,
                response,
            });
            done += len;
        }
        let mut flags = if done < meta.len { NETRXF_more_data } else { 0 };
        if index == 0 {
            if meta.csum_blank {
                flags |= NETRXF_csum_blank | NETRXF_data_validated;
            } else if meta.data_validated {
                flags |= NETRXF_data_validated;
            }
            if meta.gso.is_some() {
                flags |= NETRXF_extra_info;
            }
        }
        responses.push(RxResponse::Data(netif_rx_response {
            id: request.id,
            offset: 0,
            flags,
            status: (end - start) as i16,
        }));
    }
    Ok(RxVerdict::Placed(Placement { copies, responses, slots: needed }))
}

/// The 8 bytes of a request, as a ring slot holds them.
pub fn request_bytes(request: &netif_rx_request) -> [u8; 8] {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(request.as_bytes());
    bytes
}

#[cfg(test)]
mod tests;
