//! A network frontend for domains: [`Netfront`], the [`Queues`] of
//! [`netfront_wire`](crate::netfront_wire) on granted ring pages, an event channel and xenstore,
//! set up as Linux's `drivers/net/xen-netfront.c` sets up a vif (`netback_changed`,
//! `xennet_connect`, `talk_to_netback`, `setup_netfront`).
//!
//! [`Netfront::connect`] reads the frontend directory `device/vif/<devid>` (`backend`,
//! `backend-id`, `mac`, as libxl writes them), writes its `state` Initialising, waits (by a
//! xenstore watch, up to [`Config::timeout_ns`]) for the backend's `state` to be InitWait,
//! checks the backend offers `feature-rx-copy` (as Linux's `xennet_connect` does), makes and grants the two ring pages, allocates
//! one unbound event channel for the backend, grants and posts every receive buffer, writes
//! [`frontend_keys`] in one transaction, then its `state` Connected, notifies the backend and
//! waits for the backend's Connected.
//!
//! # Waiting
//! The event channel is masked and polled (`SCHEDOP_poll`), never taken by an upcall, as
//! [`crate::xenbus`] does with the store's: each wait is bounded by [`RECHECK_NS`], after which
//! the rings are looked at again, so a lost event (a backend restarting) costs a pause only.
//!
//! # Invariants
//! - The ring and buffer pages come from the heap and are never freed: a page once granted may
//!   still be held by the backend. A [`Netfront`] dropped leaves them (and its grants) behind.
//! - Ring pages are touched only through [`SharedRing`]'s and buffers only through
//!   [`SharedPage`]'s volatile and atomic accessors.

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::Cell;

use xenolith_abi::ring::SharedIndices;
use xenolith_abi::xen::grant_table::grant_ref_t;
use xenolith_abi::xen::hypercall::DOMID_SELF;
use xenolith_abi::xen::netif::{netif_rx_response, netif_tx_request, netif_tx_response};
use xenolith_abi::xen::xenbus::XenbusState;
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::arch;
use crate::events::{self, Port};
use crate::grants::{self, SharedPage, SharedRing};
use crate::netfront_wire::{
    feature_enabled, frontend_keys, parse_mac, Buffer, Buffers, Queues, RingMemory,
};
pub use crate::netfront_wire::{
    format_mac, Broken, Layout, Mac, NetError, Stats, ETH_HLEN, MAX_FRAME,
};
use crate::xenbus::{Xenbus, XsError};

/// The longest a wait lasts before the rings are looked at again (10 ms).
pub const RECHECK_NS: u64 = 10_000_000;

/// How a [`Netfront`] is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Its grant references, from the first on (see [`Layout`]); the table is grown to hold
    /// them. No other user of this domain's grant table may use them.
    pub first_gref: grant_ref_t,
    /// Transmit buffers: frames in flight at most.
    pub tx_buffers: u16,
    /// Receive buffers posted.
    pub rx_buffers: u16,
    /// How long [`Netfront::connect`] waits for each backend state, and [`Netfront::send`] for
    /// a free transmit buffer (ns).
    pub timeout_ns: u64,
    /// Whether to take packets of more than one receive buffer (`feature-sg`).
    pub sg: bool,
}

impl Default for Config {
    /// References from 64 on (clear of Xen's reserved entries 0-7 and the toolstack's console
    /// and xenstore entries), 64 transmit and 128 receive buffers, 10 s, one buffer a packet.
    fn default() -> Self {
        Self {
            first_gref: 64,
            tx_buffers: 64,
            rx_buffers: 128,
            timeout_ns: 10_000_000_000,
            sg: false,
        }
    }
}

impl RingMemory for SharedRing {
    fn read_entry<T: FromBytes + IntoBytes>(&self, slot: usize) -> T {
        self.read(slot)
    }

    fn write_entry<T: IntoBytes + Immutable>(&mut self, slot: usize, entry: &T) {
        self.write(slot, entry);
    }
}

/// The buffer pages, granted to one backend domain.
struct Pages {
    backend_id: u16,
    tx: Vec<SharedPage>,
    rx: Vec<SharedPage>,
}

impl Pages {
    fn page(&self, buffer: Buffer) -> SharedPage {
        match buffer {
            Buffer::Tx(id) => self.tx[usize::from(id)],
            Buffer::Rx(id) => self.rx[usize::from(id)],
        }
    }
}

impl Buffers for Pages {
    fn grant(&mut self, gref: grant_ref_t, buffer: Buffer, readonly: bool) -> Result<(), NetError> {
        grants::grant_access(gref, self.backend_id, self.page(buffer).gfn(), readonly)
            .map_err(|_| NetError::Grant(gref))
    }

    fn end_access(&mut self, gref: grant_ref_t) -> bool {
        grants::end_access(gref)
    }

    fn read(&self, buffer: Buffer, offset: usize, out: &mut [u8]) {
        self.page(buffer).read_bytes(offset, out);
    }

    fn write(&mut self, buffer: Buffer, offset: usize, data: &[u8]) {
        self.page(buffer).write_bytes(offset, data);
    }
}

/// A connected vif.
pub struct Netfront {
    devid: u32,
    frontend: String,
    backend: String,
    backend_id: u16,
    mac: Mac,
    port: Port,
    queues: Queues,
    tx: SharedRing,
    rx: SharedRing,
    pages: Pages,
    timeout_ns: u64,
    /// The backend takes packets of more than one slot (its `feature-sg`).
    backend_sg: bool,
}

fn record(path: &str, why: &'static str) -> NetError {
    NetError::Record { path: String::from(path), why }
}

/// Reads a node as text (`Record` if it is missing or not UTF-8).
fn read_text(bus: &mut Xenbus, path: &str) -> Result<String, NetError> {
    match bus.read(path) {
        Ok(value) => String::from_utf8(value).map_err(|_| record(path, "is not text")),
        Err(XsError::ENOENT) => Err(record(path, "is missing")),
        Err(error) => Err(NetError::Xenstore(error)),
    }
}

/// The state in node `path`: `None` if it is missing or not a state.
fn read_state(bus: &mut Xenbus, path: &str) -> Result<Option<XenbusState>, NetError> {
    match bus.read(path) {
        Ok(value) => Ok(XenbusState::parse(&value)),
        Err(XsError::Errno(_)) => Ok(None),
        Err(error) => Err(NetError::Xenstore(error)),
    }
}

/// Waits (by a watch on `path`) until the state there is `target`, up to `deadline`. If
/// `closing_fails`, `BackendClosed` as soon as it is Closing or Closed; otherwise those are
/// waited out too (a backend being restarted passes through them before InitWait).
fn wait_for_state(
    bus: &mut Xenbus,
    path: &str,
    target: XenbusState,
    deadline: u64,
    closing_fails: bool,
) -> Result<(), NetError> {
    let fired = Rc::new(Cell::new(true));
    let flag = fired.clone();
    let token = format!("netfront-{path}");
    bus.watch(path, &token, move |_| flag.set(true))?;
    let outcome = loop {
        if fired.replace(false) {
            match read_state(bus, path)? {
                Some(state) if state == target => break Ok(()),
                Some(state @ (XenbusState::Closing | XenbusState::Closed)) if closing_fails => {
                    break Err(NetError::BackendClosed(state))
                }
                _ => {}
            }
        }
        if arch::now_ns() >= deadline {
            let backend = read_state(bus, path)?;
            break if backend == Some(target) {
                Ok(())
            } else {
                Err(NetError::Timeout { waiting_for: target, backend })
            };
        }
        bus.wait_watches(Some(deadline))?;
    };
    // The watch is not needed any more; failing to drop it costs only stray events.
    let _ = bus.unwatch(path, &token);
    outcome
}

impl Netfront {
    /// Connects vif `devid` with the [`Config::default`] set-up (see the module
    /// documentation).
    pub fn connect(bus: &mut Xenbus, devid: u32) -> Result<Self, NetError> {
        Self::connect_with(bus, devid, Config::default())
    }

    /// Connects vif `devid` with `config`.
    pub fn connect_with(bus: &mut Xenbus, devid: u32, config: Config) -> Result<Self, NetError> {
        let layout = Layout::new(config.first_gref, config.tx_buffers, config.rx_buffers)
            .ok_or(NetError::Grant(config.first_gref))?;
        let frames = layout.end_gref().div_ceil(grants::ENTRIES_PER_FRAME);
        if frames > grants::MAX_FRAMES {
            return Err(NetError::Grant(layout.end_gref() - 1));
        }
        grants::init(frames.max(1)).map_err(NetError::Hypercall)?;
        // Relative paths are under this domain's home, `/local/domain/<id>`.
        let frontend = format!("device/vif/{devid}");
        let backend = read_text(bus, &format!("{frontend}/backend"))?;
        let backend_id_path = format!("{frontend}/backend-id");
        let backend_id = read_text(bus, &backend_id_path)?
            .trim_end_matches('\0')
            .parse::<u16>()
            .map_err(|_| record(&backend_id_path, "is not a domain id"))?;
        let mac_path = format!("{frontend}/mac");
        let mac = parse_mac(read_text(bus, &mac_path)?.as_bytes())
            .ok_or_else(|| record(&mac_path, "is not a MAC address"))?;
        let deadline = arch::now_ns().saturating_add(config.timeout_ns);

        // Linux's `xennet_create_dev`, then `netback_changed` on InitWait.
        bus.write(&format!("{frontend}/state"), b"1")?;
        wait_for_state(bus, &format!("{backend}/state"), XenbusState::InitWait, deadline, false)?;
        let rx_copy = bus.read(&format!("{backend}/feature-rx-copy")).ok();
        if !feature_enabled(rx_copy.as_deref()) {
            return Err(NetError::NoRxCopy);
        }
        let backend_sg =
            feature_enabled(bus.read(&format!("{backend}/feature-sg")).ok().as_deref());

        // `setup_netfront`: the rings and the event channel.
        let tx_page = SharedPage::allocate().ok_or(NetError::NoMemory)?;
        let rx_page = SharedPage::allocate().ok_or(NetError::NoMemory)?;
        let mut tx = SharedRing::new(tx_page, size_of::<netif_tx_request>());
        let mut rx = SharedRing::new(rx_page, size_of::<netif_rx_response>());
        tx.init();
        rx.init();
        let mut pages = Pages { backend_id, tx: Vec::new(), rx: Vec::new() };
        for _ in 0..layout.tx_buffers {
            pages.tx.push(SharedPage::allocate().ok_or(NetError::NoMemory)?);
        }
        for _ in 0..layout.rx_buffers {
            pages.rx.push(SharedPage::allocate().ok_or(NetError::NoMemory)?);
        }
        for (gref, page) in [(layout.tx_ring_gref(), tx_page), (layout.rx_ring_gref(), rx_page)] {
            grants::grant_access(gref, backend_id, page.gfn(), false)
                .map_err(|_| NetError::Grant(gref))?;
        }
        let port = events::alloc_unbound(DOMID_SELF, backend_id).map_err(NetError::Hypercall)?;
        // Polled, never taken by an upcall (module documentation).
        port.mask();
        let mut queues = Queues::new(layout);
        queues.post_rx_buffers(&mut rx, &mut pages)?;

        // `talk_to_netback`'s transaction, then `xenbus_switch_state(Connected)`.
        let keys = frontend_keys(layout.tx_ring_gref(), layout.rx_ring_gref(), port.0, config.sg);
        bus.transaction(|transaction| {
            for (key, value) in &keys {
                transaction.write(&format!("{frontend}/{key}"), value.as_bytes())?;
            }
            Ok(())
        })?;
        bus.write(&format!("{frontend}/state"), b"4")?;
        let netfront = Self {
            devid,
            frontend,
            backend,
            backend_id,
            mac,
            port,
            queues,
            tx,
            rx,
            pages,
            timeout_ns: config.timeout_ns,
            backend_sg,
        };
        // `xennet_connect` kicks the backend once it is set up.
        netfront.notify();
        let deadline = arch::now_ns().saturating_add(config.timeout_ns);
        let backend_state = format!("{}/state", netfront.backend);
        wait_for_state(bus, &backend_state, XenbusState::Connected, deadline, true)?;
        Ok(netfront)
    }

    /// The vif's MAC address (from its `mac` node).
    pub fn mac(&self) -> Mac {
        self.mac
    }

    /// The vif's device id.
    pub fn devid(&self) -> u32 {
        self.devid
    }

    /// The backend's directory.
    pub fn backend_path(&self) -> &str {
        &self.backend
    }

    /// The backend's domain id.
    pub fn backend_id(&self) -> u16 {
        self.backend_id
    }

    /// The frontend's directory (relative to this domain's home).
    pub fn frontend_path(&self) -> &str {
        &self.frontend
    }

    /// What the queues counted.
    pub fn stats(&self) -> Stats {
        self.queues.stats()
    }

    /// How the backend broke the ring protocol, if it did.
    pub fn broken(&self) -> Option<Broken> {
        self.queues.broken()
    }

    /// The grant layout.
    pub fn layout(&self) -> Layout {
        self.queues.layout()
    }

    /// The backend's `state` as it stands (`None`: missing or not a state, as when the backend
    /// is gone).
    pub fn state(&self, bus: &mut Xenbus) -> Result<Option<XenbusState>, NetError> {
        read_state(bus, &format!("{}/state", self.backend))
    }

    /// This frontend's own `state` as it stands.
    pub fn frontend_state(&self, bus: &mut Xenbus) -> Result<Option<XenbusState>, NetError> {
        read_state(bus, &format!("{}/state", self.frontend))
    }

    fn notify(&self) {
        // A send to a backend that is gone or restarting is dropped; the rings say the rest.
        let _ = self.port.send();
    }

    /// Waits for an event from the backend, `deadline` or [`RECHECK_NS`], whichever is first.
    fn wait(&self, deadline: u64) {
        if self.port.take_pending() {
            return;
        }
        let now = arch::now_ns();
        let until = deadline.min(now.saturating_add(RECHECK_NS));
        if until > now {
            // An event since the check above leaves the port pending, which ends the poll.
            let _ = events::poll(&[self.port], until);
        }
        self.port.take_pending();
    }

    /// Takes the transmit responses there are: how many frames completed.
    pub fn reap(&mut self) -> Result<u32, NetError> {
        self.queues.reap_tx(&mut self.tx, &mut self.pages)
    }

    /// Sends `frame` (a whole Ethernet frame, [`ETH_HLEN`] to [`MAX_FRAME`] bytes, checksums
    /// complete) in one transmit slot, waiting up to [`Config::timeout_ns`] for a free buffer.
    /// Returns once it is queued; how the backend answered shows in [`stats`](Self::stats)
    /// (`NETIF_RSP_ERROR` and `NETIF_RSP_DROPPED` are counted there).
    pub fn send(&mut self, frame: &[u8]) -> Result<(), NetError> {
        self.queue_tx(|queues, ring, pages| queues.send(ring, pages, frame))
    }

    /// Runs `queue` (which puts requests on the transmit ring) after reaping, again while it
    /// finds the ring or its buffers full, waiting for answers up to [`Config::timeout_ns`];
    /// notifies the backend if it asked.
    fn queue_tx(
        &mut self,
        mut queue: impl FnMut(&mut Queues, &mut SharedRing, &mut Pages) -> Result<bool, NetError>,
    ) -> Result<(), NetError> {
        let deadline = arch::now_ns().saturating_add(self.timeout_ns);
        loop {
            self.reap()?;
            match queue(&mut self.queues, &mut self.tx, &mut self.pages) {
                Ok(notify) => {
                    if notify {
                        self.notify();
                    }
                    return Ok(());
                }
                Err(NetError::TxFull) => {
                    if arch::now_ns() >= deadline {
                        return Err(NetError::TxTimeout);
                    }
                    if !self.queues.final_check_tx(&mut self.tx) {
                        self.wait(deadline);
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// The next frame received, waiting until `deadline` (absolute ns of
    /// [`now_ns`](crate::now_ns)) for one; `None` if none came. Reaps transmit responses too.
    pub fn receive(&mut self, deadline: u64) -> Result<Option<Vec<u8>>, NetError> {
        loop {
            self.reap()?;
            let received = self.queues.receive(&mut self.rx, &mut self.pages)?;
            if received.notify {
                self.notify();
            }
            if received.frame.is_some() {
                return Ok(received.frame);
            }
            if self.queues.final_check_rx(&mut self.rx) {
                continue;
            }
            if arch::now_ns() >= deadline {
                return Ok(None);
            }
            self.wait(deadline);
        }
    }

    /// Takes `count` transmit buffers for a zero-copy sender: it writes them with
    /// [`write_tx_buffer`](Self::write_tx_buffer) and sends them with
    /// [`send_buffers`](Self::send_buffers) as often as it likes; they never go back to
    /// [`send`](Self::send)'s. `TxFull` if fewer are free.
    pub fn reserve_tx_buffers(&mut self, count: usize) -> Result<Vec<u16>, NetError> {
        self.reap()?;
        self.queues.reserve_tx(count).ok_or(NetError::TxFull)
    }

    /// Writes `data` at `offset` of reserved transmit buffer `id`; `TxBusy` while it is in
    /// flight (reap with [`reap`](Self::reap)) or if it is not reserved.
    pub fn write_tx_buffer(&mut self, id: u16, offset: usize, data: &[u8]) -> Result<(), NetError> {
        if !self.queues.tx_buffer_idle(id) {
            return Err(NetError::TxBusy);
        }
        if offset + data.len() > MAX_FRAME {
            return Err(NetError::FrameSize(offset + data.len()));
        }
        self.pages.write(Buffer::Tx(id), offset, data);
        Ok(())
    }

    /// Whether reserved transmit buffer `id` is out of flight (after a [`reap`](Self::reap)).
    pub fn tx_buffer_idle(&self, id: u16) -> bool {
        self.queues.tx_buffer_idle(id)
    }

    /// Waits up to [`Config::timeout_ns`] until reserved buffers `ids` are out of flight (to be
    /// written again).
    pub fn await_tx_idle(&mut self, ids: &[u16]) -> Result<(), NetError> {
        let deadline = arch::now_ns().saturating_add(self.timeout_ns);
        loop {
            self.reap()?;
            if ids.iter().all(|&id| self.queues.tx_buffer_idle(id)) {
                return Ok(());
            }
            if arch::now_ns() >= deadline {
                return Err(NetError::TxTimeout);
            }
            if !self.queues.final_check_tx(&mut self.tx) {
                self.wait(deadline);
            }
        }
    }

    /// Sends the `size`-byte packet written in reserved buffers `ids` (each full but the last;
    /// more than one needs a backend with `feature-sg`), waiting up to [`Config::timeout_ns`]
    /// for them to be out of flight and for ring slots. They are in flight until answered.
    pub fn send_buffers(&mut self, ids: &[u16], size: usize) -> Result<(), NetError> {
        if ids.len() > 1 && !self.backend_sg {
            return Err(NetError::FrameSize(size));
        }
        self.queue_tx(|queues, ring, pages| queues.send_buffers(ring, pages, ids, size))
    }

    /// The next packet received, as [`receive`](Self::receive), but only its first `limit`
    /// bytes read out of the buffers, with the whole packet's size.
    pub fn receive_head(
        &mut self,
        deadline: u64,
        limit: usize,
    ) -> Result<Option<(Vec<u8>, usize)>, NetError> {
        loop {
            self.reap()?;
            let received = self.queues.receive_head(&mut self.rx, &mut self.pages, limit)?;
            if received.notify {
                self.notify();
            }
            if let Some(frame) = received.frame {
                return Ok(Some((frame, received.size)));
            }
            if self.queues.final_check_rx(&mut self.rx) {
                continue;
            }
            if arch::now_ns() >= deadline {
                return Ok(None);
            }
            self.wait(deadline);
        }
    }

    /// For hostile tests: copies `data` to transmit buffer `index` and grants it read-only to
    /// the backend; its grant reference. The buffer must not be in use by [`send`](Self::send)
    /// (use it on a netfront that sends nothing else).
    pub fn grant_raw_buffer(&mut self, index: u16, data: &[u8]) -> Result<grant_ref_t, NetError> {
        if index >= self.layout().tx_buffers || data.len() > MAX_FRAME {
            return Err(NetError::FrameSize(data.len()));
        }
        self.pages.write(Buffer::Tx(index), 0, data);
        let gref = self.layout().tx_gref(index);
        self.pages.grant(gref, Buffer::Tx(index), true)?;
        Ok(gref)
    }

    /// For hostile tests: a grant reference in the mapped table this netfront never grants.
    pub fn ungranted_gref(&self) -> grant_ref_t {
        grants::table_entries().saturating_sub(1).max(self.layout().end_gref())
    }

    /// For hostile tests: puts `requests` on the transmit ring exactly as given, publishes them
    /// and notifies the backend.
    pub fn raw_tx(&mut self, requests: &[netif_tx_request]) -> Result<(), NetError> {
        self.queues.raw_tx(&mut self.tx, requests)?;
        self.notify();
        Ok(())
    }

    /// For hostile tests: publishes a transmit `req_prod` `ahead` slots past the requests
    /// produced and notifies the backend.
    pub fn raw_tx_req_prod(&mut self, ahead: u32) {
        self.queues.raw_tx_req_prod(&mut self.tx, ahead);
        self.notify();
    }

    /// The transmit ring's shared `req_prod` and `rsp_prod` as they stand (for tests).
    pub fn tx_indices(&self) -> (u32, u32) {
        (self.tx.req_prod(), self.tx.rsp_prod())
    }
}

// The entry sizes the rings are made with: the larger of a request and a response.
const _: () = {
    assert!(size_of::<netif_tx_request>() == 12 && size_of::<netif_tx_response>() <= 12);
    assert!(size_of::<netif_rx_response>() == 8);
};
