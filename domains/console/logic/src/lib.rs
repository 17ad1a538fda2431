//! The console service domain's logic: every guest's Xen PV console ring
//! (`xen/include/public/io/console.h`) served from one restartable domain, as Xen's
//! `xenconsoled` and its hypervisor console do together.
//!
//! The bare-metal binary (`domains/console`) maps each domain's ring page (the frame at
//! `GUEST_MAGIC_BASE + CONSOLE_PFN_OFFSET`, granted as `GNTTAB_RESERVED_CONSOLE`), binds its
//! event channel (`HVM_PARAM_CONSOLE_EVTCHN`), and then drives a [`Console`]:
//! - [`Console::add_domain`] / [`Console::remove_domain`] as domains come and go;
//! - per service round and domain: [`Console::take`] (read output, assemble lines), save,
//!   write the [`Batch`]'s lines to the hypervisor console, [`Console::commit`], save (the
//!   exactly-once protocol, in [`console`]'s documentation);
//! - [`Console::input`] with bytes typed on the UART, which follows the focus key sequence
//!   ([`focus`]) and queues input for the focused domain; [`Console::deliver`] moves queued
//!   input into a domain's `in` ring;
//! - [`FocusWatch`] with the xenstore messages of the watch of the focus request key (the
//!   binary sends and receives them, never waiting), and [`Console::request_focus`] with each
//!   request it consumes: `xl console` at the control domain's console ([`request`]);
//! - [`Console::save`] / [`Console::restore`] keep everything in the preserved region
//!   ([`snapshot`]) so a killed console domain restarts with no output byte lost or repeated.
//!
//! What it needs from outside: a **sequenced sink**. Every output line carries a sequence
//! number; the hypervisor console must drop a line numbered at or below the last one it
//! accepted, and keep that number across this domain's restarts (see [`console`] for why no
//! protocol can do without it). With a plain sink, a kill repeats at most the one batch in flight.
//!
//! What it refuses to do:
//! - touch memory or event channels itself: it sees a ring page through [`RingPage`] and hands
//!   back bytes;
//! - trust a guest: nothing a guest writes into its page can panic the crate, make it read
//!   outside the page, overwrite unread input, or take more than the per-round budget of output
//!   ([`Config::round_budget`]), so one guest can neither starve nor break another;
//! - grow without bound: per-domain state and the preserved region have fixed maxima
//!   ([`region_size`]); a domain beyond [`Config::max_domains`] is refused.
//!
//! Principles:
//! 1. **Xen's layout, Xen's habits.** Ring layout and index rules are `io/console.h`'s; the
//!    printable filter and the three-key focus switch are Xen's (`xen/drivers/char/console.c`).
//! 2. **A broken ring costs its own domain.** Errors name the domain's fault; the caller
//!    disconnects that domain alone.
//! 3. **Advance after it is safe.** `out_cons` moves only after the bytes' lines were written;
//!    `in_prod` moves only after the bytes are in the ring.
//! 4. **The snapshot is the state.** Everything needed after a restart is in [`Console::save`]'s
//!    output, and [`Console::restore`] checks it before trusting it.
//!
//! # Invariants
//! - Domain ids are unique and below `DOMID_FIRST_RESERVED`; names are 1..=[`MAX_NAME`]
//!   printable, non-space ASCII bytes.
//! - At most one output batch is pending (taken, not committed); sequence numbers of written
//!   lines strictly increase across batches, domains and restarts.
//! - Focus is the core or a domain that is present.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;

pub mod console;
pub mod focus;
pub mod line;
pub mod request;
pub mod ring;
pub mod snapshot;

pub use console::{
    AddError, Batch, CommitError, Config, ConfigError, Console, DeliverError, Focus, Line, Routed,
    TakeError, UnknownDomain, CORE_NAME, INPUT_QUEUE, MAX_NAME,
};
pub use request::{FocusRequest, FocusWatch, Notice, Step};
pub use ring::{RingError, RingPage};
pub use snapshot::{region_size, RestoreError};
pub use xenolith_preserved::SaveError;

/// A Xen domain id (`domid_t`, `xen/include/public/xen.h`).
pub type DomId = u16;
