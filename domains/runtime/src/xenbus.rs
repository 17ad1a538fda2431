//! The xenstore client of a domain: [`Xenbus`], the portable [`Client`] of
//! [`xenbus_wire`](crate::xenbus_wire) on this domain's xenstore ring page and event channel, as
//! Linux's xenbus uses them (`drivers/xen/xenbus/xenbus_comms.c`).
//!
//! [`Xenbus::connect`] asks the core where the ring page and the port are (`HVMOP_get_param`,
//! `HVM_PARAM_STORE_PFN` and `HVM_PARAM_STORE_EVTCHN`, as Linux's `xen_guest_init` does on
//! Arm), checks the page lies in Xen's magic region (`GUEST_MAGIC_BASE`, which the runtime maps
//! as normal memory) and the port is an interdomain or unbound channel, and maps the
//! shared-info page ([`events::init`], unless this domain did) to see the port's pending bit.
//!
//! # Waiting
//! The client polls: each wait is a `SCHEDOP_poll` on the store port, bounded by
//! [`RECHECK_NS`] (or the caller's deadline), after which the rings are checked again whether
//! or not an event came. So a lost event (the store was being restarted when it was sent)
//! costs at most [`RECHECK_NS`], and a restart of the store costs only a pause. The port is
//! masked at connect: a domain that takes event-channel upcalls never sees (and never clears)
//! the store's events, which `SCHEDOP_poll` still reports. Nothing here runs in interrupt
//! context. The rest of the model (one request in flight, watch callbacks only from
//! `poll_watches`/`wait_watches`, transactions retried on `EAGAIN`) is [`Client`]'s.
//!
//! A [`Xenbus`] keeps the part of a message it has read; dropping it in the middle of one (after
//! a bounded raw wait gave up) loses that part, so connect again only between messages.
//!
//! # Invariants
//! - At most one [`StoreRing`] exists (`CONNECTED`): one reader and one writer per ring.
//! - The page is touched only through [`SharedPage`]'s volatile and atomic accessors.

use core::sync::atomic::{fence, AtomicBool, Ordering};

use xenolith_abi::xen::arch_arm::{GUEST_MAGIC_BASE, GUEST_MAGIC_SIZE};
use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::event_channel::{EVTCHNSTAT_interdomain, EVTCHNSTAT_unbound};
use xenolith_abi::xen::hvm::{HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN};
use xenolith_abi::xen::hypercall::DOMID_SELF;

use crate::events::{self, Port};
use crate::grants::{SharedPage, PAGE_SIZE};
pub use crate::xenbus_wire::{
    Access, Client, Errno, Message, Permission, ProtocolError, RingError, Stats, Transaction,
    WatchEvent, XsError,
};
use crate::xenbus_wire::{RingPage, Transport};
use crate::{arch, hypercall};

/// The longest a wait lasts before the rings are checked again (10 ms).
pub const RECHECK_NS: u64 = 10_000_000;

/// Whether a [`StoreRing`] exists.
static CONNECTED: AtomicBool = AtomicBool::new(false);

/// The xenstore client of this domain.
pub type Xenbus = Client<StoreRing>;

/// This domain's xenstore ring page and port: the [`Transport`] of [`Xenbus`].
#[derive(Debug)]
pub struct StoreRing {
    page: SharedPage,
    port: Port,
}

impl StoreRing {
    /// The store's event-channel port.
    pub fn port(&self) -> Port {
        self.port
    }

    /// The ring page's guest-physical address.
    pub fn address(&self) -> u64 {
        self.page.address()
    }
}

impl Drop for StoreRing {
    fn drop(&mut self) {
        CONNECTED.store(false, Ordering::Release);
    }
}

impl RingPage for StoreRing {
    fn load(&self, offset: usize) -> u32 {
        self.page.atomic_u32(offset).load(Ordering::Relaxed)
    }

    fn store(&mut self, offset: usize, value: u32) {
        self.page.atomic_u32(offset).store(value, Ordering::Relaxed);
    }

    fn read(&self, offset: usize, out: &mut [u8]) {
        for (index, byte) in out.iter_mut().enumerate() {
            *byte = self.page.read_u8(offset + index);
        }
    }

    fn write(&mut self, offset: usize, bytes: &[u8]) {
        for (index, &byte) in bytes.iter().enumerate() {
            self.page.write_u8(offset + index, byte);
        }
    }

    /// `virt_rmb()`: `dmb ishld` (the store runs in the inner-shareable domain).
    fn read_barrier(&self) {
        fence(Ordering::Acquire);
    }

    /// `virt_wmb()`: `dmb ish`.
    fn write_barrier(&self) {
        fence(Ordering::Release);
    }

    /// `virt_mb()`: `dmb ish`.
    fn full_barrier(&self) {
        fence(Ordering::SeqCst);
    }
}

impl Transport for StoreRing {
    fn notify(&mut self) {
        // Sending on a port whose peer is gone (the store is restarting) is dropped by the
        // core, and harmless: the client re-checks the rings on its own.
        let _ = self.port.send();
    }

    fn wait(&mut self, deadline: Option<u64>) -> bool {
        if self.port.take_pending() {
            return true;
        }
        let now = arch::now_ns();
        let until = deadline.map_or(now + RECHECK_NS, |deadline| deadline.min(now + RECHECK_NS));
        if until <= now {
            return false;
        }
        // The port was checked above: an event sent since leaves it pending, which ends the
        // poll at once. An error (the port closed under us) only ends this wait early.
        let _ = events::poll(&[self.port], until);
        self.port.take_pending()
    }

    fn now(&self) -> u64 {
        arch::now_ns()
    }
}

impl Client<StoreRing> {
    /// Connects to this domain's xenstore (see the module documentation). `AlreadyConnected` if
    /// a [`Xenbus`] exists already.
    pub fn connect() -> Result<Self, XsError> {
        if CONNECTED.swap(true, Ordering::AcqRel) {
            return Err(XsError::AlreadyConnected);
        }
        match open() {
            Ok(ring) => Ok(Client::new(ring)),
            Err(error) => {
                CONNECTED.store(false, Ordering::Release);
                Err(error)
            }
        }
    }
}

/// Finds, checks and opens the ring page and port (the caller holds `CONNECTED`).
fn open() -> Result<StoreRing, XsError> {
    match events::init() {
        // Mapped already by this domain (a domain that set up its event channels first): the
        // core maps one shared-info page per domain, where `events::init` puts it.
        Ok(()) | Err(XenError::EBUSY) => {}
        Err(error) => return Err(XsError::Hypercall(error)),
    }
    let frame =
        hypercall::hvm_get_param(DOMID_SELF, HVM_PARAM_STORE_PFN).map_err(XsError::Hypercall)?;
    let address = frame.saturating_mul(PAGE_SIZE);
    if frame == 0 || !(GUEST_MAGIC_BASE..GUEST_MAGIC_BASE + GUEST_MAGIC_SIZE).contains(&address) {
        return Err(XsError::BadPage(address));
    }
    debug_assert!(arch::is_normal(address), "the magic region must be normal memory");
    let port =
        hypercall::hvm_get_param(DOMID_SELF, HVM_PARAM_STORE_EVTCHN).map_err(XsError::Hypercall)?;
    let port = match u32::try_from(port) {
        Ok(port) if port != 0 => Port(port),
        _ => return Err(XsError::NoPort),
    };
    match events::status(DOMID_SELF, port.0) {
        Ok(status)
            if status.status == EVTCHNSTAT_interdomain || status.status == EVTCHNSTAT_unbound => {}
        _ => return Err(XsError::NoPort),
    }
    // Events are polled for, never taken by an upcall handler (module documentation).
    port.mask();
    // SAFETY: `address` is a frame number times the page size, so page-aligned, and lies in
    // Xen's magic region (checked above), which the runtime's identity map maps as normal memory
    // (`arch::NORMAL_IN_FIRST_GIB`) and where none of this domain's image, heap or stacks lie;
    // the core keeps the store's page mapped there for the domain's life (the contract of
    // `HVM_PARAM_STORE_PFN`). Only this `StoreRing` uses it (`CONNECTED`), through
    // `SharedPage`'s volatile and atomic accessors only, never a reference to its bytes.
    let page = unsafe { SharedPage::at(address) };
    Ok(StoreRing { page, port })
}
