//! The network split driver's rings (`xen/include/public/io/netif.h`, Xen 4.17): what
//! netfront and netback put in the transmit and receive rings, their flags, extra-info slots and
//! status codes. The rings themselves are [`crate::ring`]'s, one 4 KiB page each.
//!
//! # Invariants
//! - Layouts and numbers are Xen 4.17's (sizes checked below: a tx request is 12 bytes, a tx
//!   response 4, an rx request and an rx response 8, an extra-info slot 8).
//! - An extra-info slot travels in the place of a tx request or an rx response, so it is no
//!   bigger than either; its union is kept as bytes with typed accessors.

// Xen's spelling of its own names.
#![allow(non_camel_case_types, non_upper_case_globals)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::grant_table::grant_ref_t;
use crate::ring::{ring_size, SRING_HEADER_SIZE};

/// `XEN_NETIF_NR_SLOTS_MIN`: the fewest slots a backend must accept for one packet (a
/// frontend may use more only if the backend says so; Linux's netback takes
/// `fatal_skb_slots`, by default this many, before it calls the frontend malicious).
pub const XEN_NETIF_NR_SLOTS_MIN: usize = 18;
/// `XEN_NETIF_MAX_TX_SIZE`: the largest packet a tx request's `size` can state.
pub const XEN_NETIF_MAX_TX_SIZE: u32 = 0xFFFF;

/// `NETTXF_csum_blank`: the protocol checksum field is blank (the backend or the peer fills it).
pub const NETTXF_csum_blank: u16 = 1 << 0;
/// `NETTXF_data_validated`: the packet data has been validated against its protocol checksum.
pub const NETTXF_data_validated: u16 = 1 << 1;
/// `NETTXF_more_data`: the packet continues in the next request.
pub const NETTXF_more_data: u16 = 1 << 2;
/// `NETTXF_extra_info`: extra-info slots follow this request.
pub const NETTXF_extra_info: u16 = 1 << 3;

/// `NETRXF_data_validated`: the packet data has been validated against its protocol checksum.
pub const NETRXF_data_validated: u16 = 1 << 0;
/// `NETRXF_csum_blank`: the protocol checksum field is blank.
pub const NETRXF_csum_blank: u16 = 1 << 1;
/// `NETRXF_more_data`: the packet continues in the next response.
pub const NETRXF_more_data: u16 = 1 << 2;
/// `NETRXF_extra_info`: extra-info slots follow this response.
pub const NETRXF_extra_info: u16 = 1 << 3;
/// `NETRXF_gso_prefix`: a GSO prefix slot (the old `feature-gso-tcpv4-prefix` protocol).
pub const NETRXF_gso_prefix: u16 = 1 << 4;

/// `XEN_NETIF_EXTRA_TYPE_NONE`: never used; invalid.
pub const XEN_NETIF_EXTRA_TYPE_NONE: u8 = 0;
/// `XEN_NETIF_EXTRA_TYPE_GSO`: [`netif_extra_info::gso`].
pub const XEN_NETIF_EXTRA_TYPE_GSO: u8 = 1;
/// `XEN_NETIF_EXTRA_TYPE_MCAST_ADD`: [`netif_extra_info::mcast`].
pub const XEN_NETIF_EXTRA_TYPE_MCAST_ADD: u8 = 2;
/// `XEN_NETIF_EXTRA_TYPE_MCAST_DEL`: [`netif_extra_info::mcast`].
pub const XEN_NETIF_EXTRA_TYPE_MCAST_DEL: u8 = 3;
/// `XEN_NETIF_EXTRA_TYPE_HASH`: a packet hash (`u.hash`).
pub const XEN_NETIF_EXTRA_TYPE_HASH: u8 = 4;
/// `XEN_NETIF_EXTRA_TYPE_MAX`: one past the last type.
pub const XEN_NETIF_EXTRA_TYPE_MAX: u8 = 5;
/// `XEN_NETIF_EXTRA_FLAG_MORE`: another extra-info slot follows.
pub const XEN_NETIF_EXTRA_FLAG_MORE: u8 = 1 << 0;

/// `XEN_NETIF_GSO_TYPE_NONE`.
pub const XEN_NETIF_GSO_TYPE_NONE: u8 = 0;
/// `XEN_NETIF_GSO_TYPE_TCPV4`.
pub const XEN_NETIF_GSO_TYPE_TCPV4: u8 = 1;
/// `XEN_NETIF_GSO_TYPE_TCPV6`.
pub const XEN_NETIF_GSO_TYPE_TCPV6: u8 = 2;

/// `NETIF_RSP_DROPPED`: the packet was dropped.
pub const NETIF_RSP_DROPPED: i16 = -2;
/// `NETIF_RSP_ERROR`: the request was in error.
pub const NETIF_RSP_ERROR: i16 = -1;
/// `NETIF_RSP_OKAY`.
pub const NETIF_RSP_OKAY: i16 = 0;
/// `NETIF_RSP_NULL`: the response to a slot that carried no data (an extra-info slot).
pub const NETIF_RSP_NULL: i16 = 1;

/// `struct netif_tx_request`: one slot of a packet the frontend sends: `size` bytes at `offset`
/// of the granted page `gref` (the first slot's `size` is the whole packet's).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct netif_tx_request {
    /// The page holding the data, granted to the backend.
    pub gref: grant_ref_t,
    /// Where the data starts in the page.
    pub offset: u16,
    /// `NETTXF_*`.
    pub flags: u16,
    /// Echoed in the response.
    pub id: u16,
    /// Bytes in this slot (the first slot: in the whole packet).
    pub size: u16,
}

/// `struct netif_tx_response`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct netif_tx_response {
    /// The request's `id`.
    pub id: u16,
    /// `NETIF_RSP_*`.
    pub status: i16,
}

/// `struct netif_rx_request`: a page the frontend offers for received data.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct netif_rx_request {
    /// Echoed in the response.
    pub id: u16,
    /// Padding.
    pub pad: u16,
    /// The page, granted to the backend (which copies into it).
    pub gref: grant_ref_t,
}

/// `struct netif_rx_response`: where received data landed: `status` bytes (or a negative
/// `NETIF_RSP_*`) at `offset` of the request `id`'s page.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct netif_rx_response {
    /// The request's `id`.
    pub id: u16,
    /// Where the data starts in the page.
    pub offset: u16,
    /// `NETRXF_*`.
    pub flags: u16,
    /// Bytes received (at least 0), or a negative `NETIF_RSP_*`.
    pub status: i16,
}

/// `struct netif_extra_info`: a slot that follows a tx request or an rx response flagged
/// `*_extra_info`. The union `u` (GSO, multicast or hash) is kept as its six bytes.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct netif_extra_info {
    /// `XEN_NETIF_EXTRA_TYPE_*`.
    pub r#type: u8,
    /// `XEN_NETIF_EXTRA_FLAG_*`.
    pub flags: u8,
    /// The union's bytes, little-endian as on Arm.
    pub u: [u8; 6],
}

/// `u.gso` of a [`netif_extra_info`]: the segment size, `XEN_NETIF_GSO_TYPE_*`, and features
/// (none are defined).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gso {
    /// Maximum segment size.
    pub size: u16,
    /// `XEN_NETIF_GSO_TYPE_*`.
    pub r#type: u8,
    /// `XEN_NETIF_GSO_FEAT_*` (none are defined).
    pub features: u16,
}

impl netif_extra_info {
    /// `u.gso` (meaningful when `type` is [`XEN_NETIF_EXTRA_TYPE_GSO`]).
    pub fn gso(&self) -> Gso {
        let u = self.u;
        Gso {
            size: u16::from_le_bytes([u[0], u[1]]),
            r#type: u[2],
            features: u16::from_le_bytes([u[4], u[5]]),
        }
    }

    /// A GSO slot (no more slots after it unless `more`).
    pub fn new_gso(gso: Gso, more: bool) -> Self {
        let (size, features) = (gso.size.to_le_bytes(), gso.features.to_le_bytes());
        Self {
            r#type: XEN_NETIF_EXTRA_TYPE_GSO,
            flags: if more { XEN_NETIF_EXTRA_FLAG_MORE } else { 0 },
            u: [size[0], size[1], gso.r#type, 0, features[0], features[1]],
        }
    }

    /// `u.mcast.addr` (meaningful for `XEN_NETIF_EXTRA_TYPE_MCAST_*`).
    pub fn mcast(&self) -> [u8; 6] {
        self.u
    }
}

/// Slots of the transmit ring in one page (`NET_TX_RING_SIZE` for 4 KiB pages): 256.
pub const NET_TX_RING_SIZE: usize = ring_size(
    4096,
    SRING_HEADER_SIZE,
    max(size_of::<netif_tx_request>(), size_of::<netif_tx_response>()),
);
/// Slots of the receive ring in one page (`NET_RX_RING_SIZE` for 4 KiB pages): 256.
pub const NET_RX_RING_SIZE: usize = ring_size(
    4096,
    SRING_HEADER_SIZE,
    max(size_of::<netif_rx_request>(), size_of::<netif_rx_response>()),
);

const fn max(a: usize, b: usize) -> usize {
    if a > b {
        a
    } else {
        b
    }
}

const _: () = {
    assert!(size_of::<netif_tx_request>() == 12);
    assert!(size_of::<netif_tx_response>() == 4);
    assert!(size_of::<netif_rx_request>() == 8);
    assert!(size_of::<netif_rx_response>() == 8);
    assert!(size_of::<netif_extra_info>() == 8);
    // An extra-info slot takes the place of a tx request or an rx response.
    assert!(size_of::<netif_extra_info>() <= size_of::<netif_tx_request>());
    assert!(size_of::<netif_extra_info>() <= size_of::<netif_rx_response>());
    assert!(NET_TX_RING_SIZE == 256 && NET_RX_RING_SIZE == 256);
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_netif_h_offsets() {
        let request = netif_tx_request {
            gref: 0x0403_0201,
            offset: 0x0605,
            flags: 0x0807,
            id: 0x0a09,
            size: 0x0c0b,
        };
        assert_eq!(request.as_bytes(), &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let response = netif_rx_response { id: 1, offset: 2, flags: NETRXF_more_data, status: -2 };
        assert_eq!(response.as_bytes(), &[1, 0, 2, 0, 4, 0, 0xfe, 0xff]);
        let rx = netif_rx_request { id: 7, pad: 0, gref: 9 };
        assert_eq!(rx.as_bytes(), &[7, 0, 0, 0, 9, 0, 0, 0]);
    }

    #[test]
    fn a_gso_slot_round_trips_through_its_union_bytes() {
        let gso = Gso { size: 1448, r#type: XEN_NETIF_GSO_TYPE_TCPV4, features: 0 };
        let slot = netif_extra_info::new_gso(gso, true);
        assert_eq!(slot.as_bytes(), &[1, 1, 0xa8, 0x05, 1, 0, 0, 0]);
        assert_eq!(slot.gso(), gso);
        // The slot read from a tx ring entry's first 8 bytes, as netback reads it.
        let entry = netif_tx_request::read_from_bytes(&[1, 0, 0xa8, 0x05, 2, 0, 0, 0, 0, 0, 0, 0]);
        let entry = entry.expect("12 bytes");
        let extra = netif_extra_info::read_from_prefix(entry.as_bytes()).expect("8 bytes").0;
        assert_eq!(extra.gso(), Gso { size: 1448, r#type: XEN_NETIF_GSO_TYPE_TCPV6, features: 0 });
    }
}
