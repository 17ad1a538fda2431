//! The network backend's logic (issue 17): what netback reads from a frontend's rings, checked
//! before anything is copied, so that a hostile or broken frontend is refused (its vif
//! disconnected) and never crashes the backend or reaches past what it granted.
//!
//! - [`tx`]: a packet's slots on the transmit ring: the first request, its extra-info slots,
//!   the `more_data` fragments, checked as Linux's netback checks them (`xenvif_count_requests`,
//!   `xenvif_get_extras`, `xenvif_tx_build_gops`) against the classes of XSA-39, -90, -228 and
//!   -270.
//!
//! The bare-metal domain (grant copies, event channels, xenbus) is still to come.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod csum;
pub mod rx;
pub mod switch;
pub mod tx;
