//! The network backend's logic (issue 17): what netback reads from a frontend's rings, checked
//! before anything is copied, so that a hostile or broken frontend is refused (its vif
//! disconnected) and never crashes the backend or reaches past what it granted.
//!
//! - [`tx`]: a packet's slots on the transmit ring: the first request, its extra-info slots,
//!   the `more_data` fragments, checked as Linux's netback checks them (`xenvif_count_requests`,
//!   `xenvif_get_extras`, `xenvif_tx_build_gops`) against the classes of XSA-39, -90, -228 and
//!   -270.
//! - [`rx`]: where a packet goes on a frontend's receive ring: the grant copies (each inside
//!   one page of either side) and the responses, full data slots from offset 0 with the GSO
//!   extra-info slot after the first, as Linux's `xenvif_rx_skb` lays them out for a
//!   `request-rx-copy` frontend; when a packet must wait, can never be placed, or the
//!   frontend's producer index is impossible.
//! - [`switch`]: which vifs a frame goes to: a bounded learning Ethernet switch, kept in the
//!   preserved region across restarts.
//! - [`csum`]: a blank TCP/UDP checksum (`NETTXF_csum_blank`) completed for a vif that wrote
//!   `feature-no-csum-offload`.
//! - [`frontend`]: the xenbus keys: the features netback offers, and a connecting frontend's
//!   queues, rings, ports and features, checked as Linux's netback reads them.
//! - [`state`]: what the preserved region holds (connected vifs, ring positions, the switch)
//!   and where a restarted netback resumes a ring.
//!
//! The bare-metal domain (grant copies, event channels, xenbus, the preserved region through
//! `xenolith-preserved`) calls these; none of them touches memory it is not handed.
//!
//! # Invariants
//! - No input a frontend controls (ring indices, slot contents, frame bytes) can panic this
//!   crate or make it read a slot it was not told is produced.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use xenolith_abi::ring::RING_IDX;

pub mod csum;
pub mod frontend;
mod reader;
pub mod rx;
pub mod state;
pub mod switch;
pub mod tx;

#[cfg(test)]
mod test_rng;

/// Requests a frontend has produced past the backend's consumer index on a ring of
/// `ring_size` slots; `None` if that is more than the ring holds (a producer more than a ring
/// ahead, or behind the consumer: Linux's "Impossible number of requests", fatal for the vif).
fn outstanding(ring_size: u32, cons: RING_IDX, prod: RING_IDX) -> Option<u32> {
    let outstanding = prod.wrapping_sub(cons);
    (outstanding <= ring_size).then_some(outstanding)
}
