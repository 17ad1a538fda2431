//! The portable half of the network frontend ([`crate::netfront`] is the bare-metal half): the
//! transmit and receive rings' logic ([`Queues`]), the xenstore records netfront reads and
//! writes, and the test frames the test guest echoes. The rings are reached through two traits
//! ([`RingMemory`], [`Buffers`]) so the host tests drive the logic with a simulated backend.
//!
//! The protocol is `xen/include/public/io/netif.h` (Xen 4.17) over `io/ring.h` rings, set up as
//! `io/xenbus.h` says; Linux's `drivers/net/xen-netfront.c` is the frontend this one behaves
//! like, reduced: one queue, one event channel, one transmit slot per frame of
//! [`Queues::send`] (a zero-copy sender's [`Queues::send_buffers`] takes one slot a page, for
//! a backend with `feature-sg`; `feature-sg` receive where asked), no offloads
//! (`feature-no-csum-offload`), the receive side in copy mode (`request-rx-copy`), every
//! receive buffer a whole granted page.
//!
//! # Grants
//! [`Layout`] gives each page a fixed grant reference: the two ring pages, then one per
//! transmit buffer (transmit id `i` always uses buffer `i`), then one per receive buffer. A
//! transmit buffer is granted read-only when its frame is queued and its grant ended when the
//! backend answers; a receive buffer is granted writable while it is posted, and its grant is
//! ended before its data is read (as Linux does, so the backend cannot change the data under
//! the reader).
//!
//! # Invariants
//! - Nothing the backend writes is trusted: a producer index that claims more responses than
//!   requests are outstanding, a transmit response for an id that is not in flight, or a grant
//!   the backend still holds when its request is answered makes the queues [`Broken`] (an
//!   error value, as Linux's `np->broken`); a receive response with a negative status, an
//!   offset and length past its page, a wrong id, or a chain that is incomplete or too long
//!   drops that packet only (counted in [`Stats`]). No access ever leaves a page: every offset
//!   and length is checked before [`Buffers::read`] is called.
//! - Each receive buffer is posted at exactly one ring slot, recorded in the queues; a response
//!   at index `i` returns the buffer posted at `i`, whatever its id says, so a backend cannot
//!   make a buffer be returned or re-posted twice.
//! - All ring index arithmetic wraps, as `io/ring.h`'s free-running indices do.
#![forbid(unsafe_code)]

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use xenolith_abi::ring::{FrontRing, SharedIndices, RING_IDX};
use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::grant_table::grant_ref_t;
use xenolith_abi::xen::netif::{
    netif_extra_info, netif_rx_request, netif_rx_response, netif_tx_request, netif_tx_response,
    NETRXF_extra_info, NETRXF_more_data, NETTXF_more_data, NETIF_RSP_DROPPED, NETIF_RSP_NULL,
    NETIF_RSP_OKAY, NET_RX_RING_SIZE, NET_TX_RING_SIZE, XEN_NETIF_EXTRA_FLAG_MORE,
    XEN_NETIF_EXTRA_TYPE_MAX, XEN_NETIF_EXTRA_TYPE_NONE, XEN_NETIF_MAX_TX_SIZE,
    XEN_NETIF_NR_SLOTS_MIN,
};
use xenolith_abi::xen::xenbus::XenbusState;
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::xenbus_wire::XsError;

#[cfg(test)]
mod tests;

/// The page size grants and buffers come in.
pub const PAGE_SIZE: usize = 4096;
/// An Ethernet header (Linux's `ETH_HLEN`): netback drops a frame whose first slot is shorter.
pub const ETH_HLEN: usize = 14;
/// The largest frame [`Queues::send`] takes: one page, one slot, header included.
pub const MAX_FRAME: usize = PAGE_SIZE;
/// The largest packet a receive chain may assemble (`XEN_NETIF_MAX_TX_SIZE`).
pub const MAX_PACKET: usize = XEN_NETIF_MAX_TX_SIZE as usize;
/// Most slots of one received packet, extra-info slots included (Linux's `NET_RX_SLOTS_MIN`,
/// `XEN_NETIF_NR_SLOTS_MIN + 1`, the most its `xennet_get_responses` accepts).
pub const MAX_RX_SLOTS: u32 = XEN_NETIF_NR_SLOTS_MIN as u32 + 1;
/// The fewest receive buffers [`Layout::new`] accepts: a whole packet of [`MAX_RX_SLOTS`]
/// slots must fit (Linux's `NET_RX_SLOTS_MIN`).
pub const MIN_RX_BUFFERS: u16 = MAX_RX_SLOTS as u16;

/// An Ethernet (MAC) address.
pub type Mac = [u8; 6];

/// Why a network frontend operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetError {
    /// A xenstore request failed.
    Xenstore(XsError),
    /// A hypercall failed (event-channel allocation, mapping the grant table).
    Hypercall(XenError),
    /// A node of the device's records is missing or malformed: its path and what is wrong.
    Record {
        /// The node.
        path: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The backend did not reach a state in time: the state waited for and the last one read.
    Timeout {
        /// The state waited for.
        waiting_for: XenbusState,
        /// The backend's state at the deadline (`None`: unreadable).
        backend: Option<XenbusState>,
    },
    /// The backend closed (or never came) while the frontend was connecting.
    BackendClosed(XenbusState),
    /// The backend does not offer `feature-rx-copy`, which this frontend needs (Linux's
    /// `xennet_connect` refuses such a backend too).
    NoRxCopy,
    /// The heap has no page left for a ring or buffer.
    NoMemory,
    /// Grant reference `gref` lies beyond the grant table this domain mapped.
    Grant(grant_ref_t),
    /// A frame of this many bytes: fewer than [`ETH_HLEN`] or more than [`MAX_FRAME`].
    FrameSize(usize),
    /// Every transmit buffer (or ring slot) is in flight; the backend has not answered.
    TxFull,
    /// A transmit buffer named as reserved is not, or is written while in flight.
    TxBusy,
    /// The transmit ring stayed full until the deadline.
    TxTimeout,
    /// No receive request slot was free to post a buffer in (never happens: the buffers never
    /// outnumber the slots, and one is posted only after its slot was consumed).
    RxFull,
    /// The backend broke the ring protocol; the queues are unusable.
    Broken(Broken),
}

impl From<XsError> for NetError {
    fn from(error: XsError) -> Self {
        Self::Xenstore(error)
    }
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Xenstore(error) => write!(f, "xenstore: {error}"),
            Self::Hypercall(error) => write!(f, "hypercall failed: {error}"),
            Self::Record { path, why } => write!(f, "{path}: {why}"),
            Self::Timeout { waiting_for, backend } => write!(
                f,
                "backend did not reach {waiting_for:?} in time (it is {})",
                backend.map_or(String::from("unreadable"), |state| alloc::format!("{state:?}"))
            ),
            Self::BackendClosed(state) => write!(f, "backend went to {state:?} while connecting"),
            Self::NoRxCopy => write!(f, "backend lacks feature-rx-copy"),
            Self::NoMemory => write!(f, "out of pages for rings or buffers"),
            Self::Grant(gref) => write!(f, "grant reference {gref} lies beyond the mapped table"),
            Self::FrameSize(size) => {
                write!(f, "a {size}-byte frame is outside {ETH_HLEN}..={MAX_FRAME} bytes")
            }
            Self::TxFull => write!(f, "every transmit buffer is in flight"),
            Self::TxBusy => write!(f, "a transmit buffer is not reserved, or is in flight"),
            Self::TxTimeout => write!(f, "the transmit ring stayed full until the deadline"),
            Self::RxFull => write!(f, "no receive request slot is free"),
            Self::Broken(broken) => write!(f, "backend broke the ring protocol: {broken}"),
        }
    }
}

/// How the backend broke the ring protocol (each ends the queues' use, as Linux's netfront
/// marks itself `broken`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broken {
    /// The transmit ring's `rsp_prod` claims more responses than requests are outstanding
    /// (`RING_RESPONSE_PROD_OVERFLOW`, or past what was asked).
    TxResponses {
        /// The backend's `rsp_prod`.
        prod: RING_IDX,
        /// The frontend's `rsp_cons`.
        cons: RING_IDX,
    },
    /// The receive ring's `rsp_prod` does the same.
    RxResponses {
        /// The backend's `rsp_prod`.
        prod: RING_IDX,
        /// The frontend's `rsp_cons`.
        cons: RING_IDX,
    },
    /// A transmit response names an id past the buffers ("Response has incorrect id").
    TxBadId(u16),
    /// A transmit response names an id not in flight ("Response for inactive request").
    TxNotInFlight(u16),
    /// The backend still held this grant when it answered the request that used it ("Grant
    /// still in use by backend domain").
    GrantInUse(grant_ref_t),
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TxResponses { prod, cons } => {
                write!(f, "tx rsp_prod {prod} is past the requests outstanding from {cons}")
            }
            Self::RxResponses { prod, cons } => {
                write!(f, "rx rsp_prod {prod} is past the requests outstanding from {cons}")
            }
            Self::TxBadId(id) => write!(f, "tx response id {id} names no buffer"),
            Self::TxNotInFlight(id) => write!(f, "tx response id {id} is not in flight"),
            Self::GrantInUse(gref) => write!(f, "grant {gref} still in use after its response"),
        }
    }
}

/// What the queues counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Frames queued for transmission.
    pub tx_frames: u64,
    /// Transmit responses `NETIF_RSP_OKAY`.
    pub tx_okay: u64,
    /// Transmit responses `NETIF_RSP_ERROR` (or any other negative or unknown status).
    pub tx_errors: u64,
    /// Transmit responses `NETIF_RSP_DROPPED`.
    pub tx_dropped: u64,
    /// Transmit responses `NETIF_RSP_NULL` (skipped, as Linux does).
    pub tx_null: u64,
    /// Responses to requests put on the ring with [`Queues::raw_tx`].
    pub raw_responses: u64,
    /// The status of the last of those.
    pub last_raw_status: Option<i16>,
    /// Packets received and returned.
    pub rx_packets: u64,
    /// Received packets dropped: a response with a negative status, an offset and length past
    /// its page, or an id that is not the buffer's posted at its slot.
    pub rx_errors: u64,
    /// Received packets dropped: a chain that ends before its last slot is produced, runs over
    /// [`MAX_RX_SLOTS`] slots or [`MAX_PACKET`] bytes, or has a bad extra-info slot.
    pub rx_bad_chains: u64,
}

/// A ring page, as the queues reach it: the indices ([`SharedIndices`], with `io/ring.h`'s
/// barriers) and entry copies. On the domain it is `grants::SharedRing`.
pub trait RingMemory: SharedIndices {
    /// Copies entry `slot` out (a slot below the ring's size).
    fn read_entry<T: FromBytes + IntoBytes>(&self, slot: usize) -> T;
    /// Copies `entry` into slot `slot` (a slot below the ring's size).
    fn write_entry<T: IntoBytes + Immutable>(&mut self, slot: usize, entry: &T);
}

/// One of the frontend's buffer pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Buffer {
    /// Transmit buffer `n` (transmit id `n`).
    Tx(u16),
    /// Receive buffer `n`.
    Rx(u16),
}

/// The buffer pages and the grant table, as the queues use them.
pub trait Buffers {
    /// Grants the backend access to `buffer` through entry `gref` (read-only if `readonly`).
    /// `Grant` if the entry is beyond the mapped table.
    fn grant(&mut self, gref: grant_ref_t, buffer: Buffer, readonly: bool) -> Result<(), NetError>;
    /// Ends the grant in `gref` unless the backend has it mapped or in a copy; whether it ended
    /// (Linux's `gnttab_end_foreign_access_ref`).
    fn end_access(&mut self, gref: grant_ref_t) -> bool;
    /// Copies `out.len()` bytes from `offset` of `buffer` (the queues keep it in the page).
    fn read(&self, buffer: Buffer, offset: usize, out: &mut [u8]);
    /// Copies `data` to `offset` of `buffer` (the queues keep it in the page).
    fn write(&mut self, buffer: Buffer, offset: usize, data: &[u8]);
}

/// Which grant reference each page uses (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The first of the netfront's grant references: the transmit ring's.
    pub first_gref: grant_ref_t,
    /// Transmit buffers (frames in flight at most), 1 to 256.
    pub tx_buffers: u16,
    /// Receive buffers posted, [`MIN_RX_BUFFERS`] to 256.
    pub rx_buffers: u16,
}

impl Layout {
    /// A layout, or `None` if a count is out of range or the references would pass `u32`.
    pub fn new(first_gref: grant_ref_t, tx_buffers: u16, rx_buffers: u16) -> Option<Self> {
        let layout = Self { first_gref, tx_buffers, rx_buffers };
        let counts_fit = (1..=NET_TX_RING_SIZE as u16).contains(&tx_buffers)
            && (MIN_RX_BUFFERS..=NET_RX_RING_SIZE as u16).contains(&rx_buffers);
        (counts_fit && first_gref.checked_add(layout.count()).is_some()).then_some(layout)
    }

    fn count(&self) -> u32 {
        2 + u32::from(self.tx_buffers) + u32::from(self.rx_buffers)
    }

    /// The transmit ring page's reference.
    pub fn tx_ring_gref(&self) -> grant_ref_t {
        self.first_gref
    }

    /// The receive ring page's reference.
    pub fn rx_ring_gref(&self) -> grant_ref_t {
        self.first_gref + 1
    }

    /// Transmit buffer `id`'s reference.
    pub fn tx_gref(&self, id: u16) -> grant_ref_t {
        self.first_gref + 2 + u32::from(id)
    }

    /// Receive buffer `id`'s reference.
    pub fn rx_gref(&self, id: u16) -> grant_ref_t {
        self.first_gref + 2 + u32::from(self.tx_buffers) + u32::from(id)
    }

    /// One past the last reference the layout uses (the table must hold this many entries).
    pub fn end_gref(&self) -> grant_ref_t {
        self.first_gref + self.count()
    }
}

/// What one [`Queues::receive`] produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// The next packet, if a whole one was there (its first bytes only, up to the limit of
    /// [`Queues::receive_head`]).
    pub frame: Option<Vec<u8>>,
    /// The whole packet's bytes.
    pub size: usize,
    /// Whether the backend asked to be notified of the receive buffers re-posted.
    pub notify: bool,
}

/// Why one received packet is dropped.
enum RxDrop {
    /// Counted in [`Stats::rx_errors`].
    Error,
    /// Counted in [`Stats::rx_bad_chains`].
    Chain,
}

/// The transmit and receive queues of one vif: the frontend's private ring indices and its
/// records of what it gave the backend.
#[derive(Clone, Debug)]
pub struct Queues {
    layout: Layout,
    tx: FrontRing,
    rx: FrontRing,
    /// Transmit ids not in flight.
    tx_free: Vec<u16>,
    /// By transmit id: in flight.
    tx_in_flight: Vec<bool>,
    /// By transmit id: reserved by [`reserve_tx`](Self::reserve_tx) (its owner writes it and
    /// sends it with [`send_buffers`](Self::send_buffers); it never returns to `tx_free`).
    tx_reserved: Vec<bool>,
    /// Requests put on the ring by [`Queues::raw_tx`] and not yet answered.
    raw_outstanding: u32,
    /// By receive ring slot: the buffer posted there.
    rx_at: Vec<Option<u16>>,
    broken: Option<Broken>,
    stats: Stats,
}

impl Queues {
    /// Fresh queues over freshly initialised rings (`SHARED_RING_INIT`, indices at 0).
    pub fn new(layout: Layout) -> Self {
        Self {
            layout,
            tx: FrontRing::new(NET_TX_RING_SIZE as u32),
            rx: FrontRing::new(NET_RX_RING_SIZE as u32),
            tx_free: (0..layout.tx_buffers).rev().collect(),
            tx_in_flight: vec![false; usize::from(layout.tx_buffers)],
            tx_reserved: vec![false; usize::from(layout.tx_buffers)],
            raw_outstanding: 0,
            rx_at: vec![None; NET_RX_RING_SIZE],
            broken: None,
            stats: Stats::default(),
        }
    }

    /// The grant layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// What was counted so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// How the backend broke the protocol, if it did.
    pub fn broken(&self) -> Option<Broken> {
        self.broken
    }

    /// Frames in flight (queued, not answered).
    pub fn tx_in_flight(&self) -> usize {
        usize::from(self.layout.tx_buffers) - self.tx_free.len()
    }

    fn check(&self) -> Result<(), NetError> {
        self.broken.map_or(Ok(()), |broken| Err(NetError::Broken(broken)))
    }

    fn fail(&mut self, broken: Broken) -> NetError {
        self.broken.get_or_insert(broken);
        NetError::Broken(broken)
    }

    /// Grants and posts every receive buffer (once, before the frontend says Connected); true
    /// if the backend asked to be notified.
    pub fn post_rx_buffers<R: RingMemory, B: Buffers>(
        &mut self,
        ring: &mut R,
        buffers: &mut B,
    ) -> Result<bool, NetError> {
        self.check()?;
        for id in 0..self.layout.rx_buffers {
            self.post_rx(ring, buffers, id, true)?;
        }
        Ok(self.rx.push_requests(ring))
    }

    /// Posts receive buffer `id` at the next request slot, granting it first if `grant`.
    fn post_rx<R: RingMemory, B: Buffers>(
        &mut self,
        ring: &mut R,
        buffers: &mut B,
        id: u16,
        grant: bool,
    ) -> Result<(), NetError> {
        let gref = self.layout.rx_gref(id);
        if grant {
            buffers.grant(gref, Buffer::Rx(id), false)?;
        }
        // A buffer is posted only after the slot it left was consumed, so a slot is free: the
        // buffers never outnumber the ring's slots.
        let slot = self.rx.next_request().ok_or(NetError::RxFull)?;
        ring.write_entry(slot, &netif_rx_request { id, pad: 0, gref });
        self.rx_at[slot] = Some(id);
        Ok(())
    }

    /// Queues `frame` (a whole Ethernet frame) in one transmit slot: copies it to a free
    /// buffer, grants that read-only and publishes the request. True if the backend asked to be
    /// notified. `TxFull` if no buffer or slot is free (reap with [`reap_tx`](Self::reap_tx)).
    pub fn send<R: RingMemory, B: Buffers>(
        &mut self,
        ring: &mut R,
        buffers: &mut B,
        frame: &[u8],
    ) -> Result<bool, NetError> {
        self.check()?;
        if !(ETH_HLEN..=MAX_FRAME).contains(&frame.len()) {
            return Err(NetError::FrameSize(frame.len()));
        }
        if self.tx.is_full() {
            return Err(NetError::TxFull);
        }
        let id = self.tx_free.pop().ok_or(NetError::TxFull)?;
        let gref = self.layout.tx_gref(id);
        buffers.write(Buffer::Tx(id), 0, frame);
        if let Err(error) = buffers.grant(gref, Buffer::Tx(id), true) {
            self.tx_free.push(id);
            return Err(error);
        }
        let Some(slot) = self.tx.next_request() else {
            // Checked above; nothing was published.
            self.tx_free.push(id);
            return Err(NetError::TxFull);
        };
        // Flags 0: the frame's checksums are complete (no `NETTXF_csum_blank`).
        let request = netif_tx_request { gref, offset: 0, flags: 0, id, size: frame.len() as u16 };
        ring.write_entry(slot, &request);
        self.tx_in_flight[usize::from(id)] = true;
        self.stats.tx_frames += 1;
        Ok(self.tx.push_requests(ring))
    }

    /// Takes `count` transmit buffers for the caller to fill and send with
    /// [`send_buffers`](Self::send_buffers) as often as it likes (a zero-copy sender: their
    /// bytes stay between sends). `None` if fewer are free.
    pub fn reserve_tx(&mut self, count: usize) -> Option<Vec<u16>> {
        if self.tx_free.len() < count {
            return None;
        }
        let ids = self.tx_free.split_off(self.tx_free.len() - count);
        for &id in &ids {
            self.tx_reserved[usize::from(id)] = true;
        }
        Some(ids)
    }

    /// Whether reserved transmit buffer `id` may be written (it is reserved and not in flight).
    pub fn tx_buffer_idle(&self, id: u16) -> bool {
        let id = usize::from(id);
        self.tx_reserved.get(id) == Some(&true) && self.tx_in_flight.get(id) == Some(&false)
    }

    /// Queues a packet of `size` bytes the caller wrote in reserved buffers `ids`, in order,
    /// each full ([`PAGE_SIZE`]) but the last, one slot each (`NETTXF_more_data` on all but the
    /// last: the backend must offer `feature-sg` for more than one). True if the backend asked
    /// to be notified; `TxFull` if one of them is still in flight or the ring has too few free
    /// slots, `TxBusy` if one is not reserved.
    pub fn send_buffers<R: RingMemory, B: Buffers>(
        &mut self,
        ring: &mut R,
        buffers: &mut B,
        ids: &[u16],
        size: usize,
    ) -> Result<bool, NetError> {
        self.check()?;
        if !(ETH_HLEN..=MAX_PACKET).contains(&size) || size.div_ceil(PAGE_SIZE) != ids.len() {
            return Err(NetError::FrameSize(size));
        }
        if ids.iter().any(|&id| self.tx_reserved.get(usize::from(id)) != Some(&true)) {
            return Err(NetError::TxBusy);
        }
        let in_flight = ids.iter().any(|&id| self.tx_in_flight[usize::from(id)]);
        if in_flight || self.tx.free_requests() < ids.len() as u32 {
            return Err(NetError::TxFull);
        }
        for &id in ids {
            buffers.grant(self.layout.tx_gref(id), Buffer::Tx(id), true)?;
        }
        for (index, &id) in ids.iter().enumerate() {
            let last = index + 1 == ids.len();
            // The first request carries the packet's size, the others their own bytes.
            let own = if last { size - index * PAGE_SIZE } else { PAGE_SIZE };
            let request = netif_tx_request {
                gref: self.layout.tx_gref(id),
                offset: 0,
                flags: if last { 0 } else { NETTXF_more_data },
                id,
                size: if index == 0 { size as u16 } else { own as u16 },
            };
            let slot = self.tx.next_request().ok_or(NetError::TxFull)?;
            ring.write_entry(slot, &request);
            self.tx_in_flight[usize::from(id)] = true;
        }
        self.stats.tx_frames += 1;
        Ok(self.tx.push_requests(ring))
    }

    /// Puts `requests` on the transmit ring exactly as given and publishes them (for hostile
    /// tests: nothing is checked or granted here). True if the backend asked to be notified.
    pub fn raw_tx<R: RingMemory>(
        &mut self,
        ring: &mut R,
        requests: &[netif_tx_request],
    ) -> Result<bool, NetError> {
        if self.tx.free_requests() < requests.len() as u32 {
            return Err(NetError::TxFull);
        }
        for request in requests {
            let slot = self.tx.next_request().ok_or(NetError::TxFull)?;
            ring.write_entry(slot, request);
            self.raw_outstanding += 1;
        }
        Ok(self.tx.push_requests(ring))
    }

    /// Publishes a transmit `req_prod` `ahead` slots past the requests produced (for hostile
    /// tests: XSA-39's "impossible number of requests"); the private index stays.
    pub fn raw_tx_req_prod<R: RingMemory>(&mut self, ring: &mut R, ahead: u32) {
        ring.write_barrier();
        ring.set_req_prod(self.tx.req_prod_pvt.wrapping_add(ahead));
        ring.full_barrier();
    }

    /// Checks the backend's `rsp_prod` against the requests outstanding.
    fn responses(ring: &impl RingMemory, front: &FrontRing) -> Result<RING_IDX, (u32, u32)> {
        let prod = ring.rsp_prod();
        let claimed = prod.wrapping_sub(front.rsp_cons);
        let outstanding = front.req_prod_pvt.wrapping_sub(front.rsp_cons);
        if front.response_prod_overflow(prod) || claimed > outstanding {
            return Err((prod, front.rsp_cons));
        }
        ring.read_barrier();
        Ok(prod)
    }

    /// Takes every transmit response (Linux's `xennet_tx_buf_gc`): ends each answered
    /// buffer's grant and frees its id, counting its status. How many frames completed.
    pub fn reap_tx<R: RingMemory, B: Buffers>(
        &mut self,
        ring: &mut R,
        buffers: &mut B,
    ) -> Result<u32, NetError> {
        self.check()?;
        let mut completed = 0;
        loop {
            let prod = match Self::responses(ring, &self.tx) {
                Ok(prod) => prod,
                Err((prod, cons)) => return Err(self.fail(Broken::TxResponses { prod, cons })),
            };
            while self.tx.rsp_cons != prod {
                let slot = self.tx.slot(self.tx.rsp_cons);
                let response: netif_tx_response = ring.read_entry(slot);
                self.tx.rsp_cons = self.tx.rsp_cons.wrapping_add(1);
                if response.status == NETIF_RSP_NULL {
                    self.stats.tx_null += 1;
                    continue;
                }
                completed += u32::from(self.complete_tx(response, buffers)?);
            }
            if !self.tx.final_check_for_responses(ring) {
                return Ok(completed);
            }
        }
    }

    /// Completes the request `response` answers: true for a frame of [`send`](Self::send),
    /// false for a [`raw_tx`](Self::raw_tx) request.
    fn complete_tx<B: Buffers>(
        &mut self,
        response: netif_tx_response,
        buffers: &mut B,
    ) -> Result<bool, NetError> {
        let id = response.id;
        let in_flight = self.tx_in_flight.get(usize::from(id)).copied();
        if in_flight != Some(true) {
            if self.raw_outstanding > 0 {
                self.raw_outstanding -= 1;
                self.stats.raw_responses += 1;
                self.stats.last_raw_status = Some(response.status);
                return Ok(false);
            }
            let broken =
                if in_flight.is_none() { Broken::TxBadId(id) } else { Broken::TxNotInFlight(id) };
            return Err(self.fail(broken));
        }
        let gref = self.layout.tx_gref(id);
        if !buffers.end_access(gref) {
            return Err(self.fail(Broken::GrantInUse(gref)));
        }
        self.tx_in_flight[usize::from(id)] = false;
        if !self.tx_reserved[usize::from(id)] {
            self.tx_free.push(id);
        }
        match response.status {
            NETIF_RSP_OKAY => self.stats.tx_okay += 1,
            NETIF_RSP_DROPPED => self.stats.tx_dropped += 1,
            _ => self.stats.tx_errors += 1,
        }
        Ok(true)
    }

    /// `RING_FINAL_CHECK_FOR_RESPONSES` on the transmit ring: true if responses wait; else
    /// asks to be notified of the next one.
    pub fn final_check_tx<R: RingMemory>(&self, ring: &mut R) -> bool {
        self.tx.final_check_for_responses(ring)
    }

    /// `RING_FINAL_CHECK_FOR_RESPONSES` on the receive ring.
    pub fn final_check_rx<R: RingMemory>(&self, ring: &mut R) -> bool {
        self.rx.final_check_for_responses(ring)
    }

    /// Takes the next whole received packet (Linux's `xennet_get_responses`), dropping bad
    /// ones, and re-posts every buffer it consumed.
    pub fn receive<R: RingMemory, B: Buffers>(
        &mut self,
        ring: &mut R,
        buffers: &mut B,
    ) -> Result<Received, NetError> {
        self.receive_head(ring, buffers, MAX_PACKET)
    }

    /// As [`receive`](Self::receive), reading only the packet's first `limit` bytes out of the
    /// buffers ([`Received::size`] says how many it had).
    pub fn receive_head<R: RingMemory, B: Buffers>(
        &mut self,
        ring: &mut R,
        buffers: &mut B,
        limit: usize,
    ) -> Result<Received, NetError> {
        self.check()?;
        let mut received = Received::default();
        loop {
            let prod = match Self::responses(ring, &self.rx) {
                Ok(prod) => prod,
                Err((prod, cons)) => return Err(self.fail(Broken::RxResponses { prod, cons })),
            };
            if self.rx.rsp_cons == prod {
                return Ok(received);
            }
            let packet = self.take_packet(ring, buffers, prod, limit);
            received.notify |= self.rx.push_requests(ring);
            match packet? {
                Ok((frame, size)) => {
                    self.stats.rx_packets += 1;
                    received.frame = Some(frame);
                    received.size = size;
                    return Ok(received);
                }
                Err(RxDrop::Error) => self.stats.rx_errors += 1,
                Err(RxDrop::Chain) => self.stats.rx_bad_chains += 1,
            }
        }
    }

    /// Takes the next response slot below `prod`: the response and the buffer posted there.
    fn take_slot<R: RingMemory, T: FromBytes + IntoBytes>(
        &mut self,
        ring: &R,
        prod: RING_IDX,
    ) -> Option<(T, u16)> {
        if self.rx.rsp_cons == prod {
            return None;
        }
        let slot = self.rx.slot(self.rx.rsp_cons);
        let entry = ring.read_entry(slot);
        self.rx.rsp_cons = self.rx.rsp_cons.wrapping_add(1);
        // Every slot below `req_prod_pvt` has a buffer, and `prod` is no further (checked).
        self.rx_at[slot].take().map(|buffer| (entry, buffer))
    }

    /// One packet's slots, from `rsp_cons` on: its first `limit` bytes and its size, or why it
    /// is dropped (all its slots consumed and their buffers re-posted either way).
    fn take_packet<R: RingMemory, B: Buffers>(
        &mut self,
        ring: &mut R,
        buffers: &mut B,
        prod: RING_IDX,
        limit: usize,
    ) -> Result<Result<(Vec<u8>, usize), RxDrop>, NetError> {
        let mut frame = Vec::new();
        let mut size = 0usize;
        let mut drop = None;
        let mut slots = 0u32;
        let mut first = true;
        loop {
            let Some((response, buffer)) = self.take_slot::<R, netif_rx_response>(ring, prod)
            else {
                // "Need more slots": the chain runs past what the backend produced.
                drop = Some(RxDrop::Chain);
                break;
            };
            slots += 1;
            let status = response.status;
            let reason = if response.id != buffer
                || status < 0
                || usize::from(response.offset) + status as usize > PAGE_SIZE
            {
                Some(RxDrop::Error)
            } else if size + status as usize > MAX_PACKET {
                Some(RxDrop::Chain)
            } else {
                None
            };
            if let Some(reason) = reason {
                drop.get_or_insert(reason);
            }
            if drop.is_some() {
                // Nothing is read from a dropped packet's buffers; still granted, each is
                // re-posted as it is.
                self.post_rx(ring, buffers, buffer, false)?;
            } else {
                let gref = self.layout.rx_gref(buffer);
                if !buffers.end_access(gref) {
                    return Err(self.fail(Broken::GrantInUse(gref)));
                }
                let start = frame.len();
                let wanted = (status as usize).min(limit - start);
                frame.resize(start + wanted, 0);
                buffers.read(Buffer::Rx(buffer), usize::from(response.offset), &mut frame[start..]);
                size += status as usize;
                self.post_rx(ring, buffers, buffer, true)?;
            }
            if first && response.flags & NETRXF_extra_info != 0 {
                slots += self.take_extras(ring, buffers, prod, &mut drop)?;
            }
            first = false;
            if response.flags & NETRXF_more_data == 0 {
                break;
            }
            if slots >= MAX_RX_SLOTS {
                // Linux's "Too many slots": the rest of the chain is consumed and dropped.
                drop.get_or_insert(RxDrop::Chain);
            }
        }
        Ok(drop.map_or(Ok((frame, size)), Err))
    }

    /// The extra-info slots after a packet's first response (Linux's `xennet_get_extras`):
    /// consumed, their buffers re-posted as they are (no data went there). How many slots.
    fn take_extras<R: RingMemory, B: Buffers>(
        &mut self,
        ring: &mut R,
        buffers: &mut B,
        prod: RING_IDX,
        drop: &mut Option<RxDrop>,
    ) -> Result<u32, NetError> {
        let mut slots = 0;
        loop {
            let Some((extra, buffer)) = self.take_slot::<R, netif_extra_info>(ring, prod) else {
                // "Missing extra info".
                drop.get_or_insert(RxDrop::Chain);
                return Ok(slots);
            };
            slots += 1;
            self.post_rx(ring, buffers, buffer, false)?;
            if extra.r#type == XEN_NETIF_EXTRA_TYPE_NONE || extra.r#type >= XEN_NETIF_EXTRA_TYPE_MAX
            {
                drop.get_or_insert(RxDrop::Chain);
            }
            if extra.flags & XEN_NETIF_EXTRA_FLAG_MORE == 0 || slots >= MAX_RX_SLOTS {
                if extra.flags & XEN_NETIF_EXTRA_FLAG_MORE != 0 {
                    drop.get_or_insert(RxDrop::Chain);
                }
                return Ok(slots);
            }
        }
    }
}

/// Parses a `mac` node: six two-digit hex bytes separated by `:` (Linux's `xen_net_read_mac`
/// takes the same; a trailing NUL is ignored).
pub fn parse_mac(text: &[u8]) -> Option<Mac> {
    let text = core::str::from_utf8(text).ok()?.trim_end_matches('\0');
    let mut mac = [0; 6];
    let mut parts = text.split(':');
    for byte in &mut mac {
        let part = parts.next()?;
        if part.is_empty() || part.len() > 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &Mac) -> String {
    alloc::format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        mac[0],
        mac[1],
        mac[2],
        mac[3],
        mac[4],
        mac[5]
    )
}

/// The nodes the frontend writes in its directory (in one transaction, before its `state`
/// goes to Connected), in the order Linux's `talk_to_netback` writes them: the rings, the
/// event channel, then the features (copy-mode receive, receive notifications, scatter-gather
/// receive if `sg`, no checksum offload).
pub fn frontend_keys(
    tx_ring_ref: grant_ref_t,
    rx_ring_ref: grant_ref_t,
    event_channel: u32,
    sg: bool,
) -> [(&'static str, String); 7] {
    [
        ("tx-ring-ref", alloc::format!("{tx_ring_ref}")),
        ("rx-ring-ref", alloc::format!("{rx_ring_ref}")),
        ("event-channel", alloc::format!("{event_channel}")),
        ("request-rx-copy", String::from("1")),
        ("feature-rx-notify", String::from("1")),
        ("feature-sg", String::from(if sg { "1" } else { "0" })),
        ("feature-no-csum-offload", String::from("1")),
    ]
}

/// A boolean feature node's value (`xenbus_read_unsigned(..., 0) != 0`): a missing or
/// malformed node is 0.
pub fn feature_enabled(value: Option<&[u8]>) -> bool {
    value
        .and_then(|value| core::str::from_utf8(value).ok())
        .and_then(|text| text.trim_end_matches('\0').trim().parse::<u32>().ok())
        .is_some_and(|value| value != 0)
}

/// Ethernet's local experimental ethertype (IEEE 802 "Local Experimental Ethertype 1"), the
/// test frames' type.
pub const ETHERTYPE_TEST: u16 = 0x88b5;
/// A test frame's bytes before its data: the Ethernet header, then a sequence number and a
/// checksum of the data (both big-endian `u32`).
pub const TEST_HEADER: usize = ETH_HLEN + 8;

/// The FNV-1a hash of `data` (the test frames' checksum).
pub fn checksum(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5, |hash, &byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193))
}

/// Test frame `sequence` of `size` bytes (at least [`TEST_HEADER`]) from `source` to
/// `destination`: type [`ETHERTYPE_TEST`], the sequence number, the data's checksum, then data
/// that depends on the sequence number.
pub fn test_frame(destination: &Mac, source: &Mac, sequence: u32, size: usize) -> Vec<u8> {
    let size = size.max(TEST_HEADER);
    let mut frame = Vec::with_capacity(size);
    frame.extend_from_slice(destination);
    frame.extend_from_slice(source);
    frame.extend_from_slice(&ETHERTYPE_TEST.to_be_bytes());
    frame.extend_from_slice(&sequence.to_be_bytes());
    frame.extend_from_slice(&[0; 4]);
    let mut state = sequence.wrapping_mul(0x9e37_79b9) | 1;
    while frame.len() < size {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        frame.push(state as u8);
    }
    let sum = checksum(&frame[TEST_HEADER..]);
    frame[ETH_HLEN + 4..TEST_HEADER].copy_from_slice(&sum.to_be_bytes());
    frame
}

/// A received test frame's sequence number, if it is a test frame whose checksum matches its
/// data; `Err` says what is wrong otherwise.
pub fn parse_test_frame(frame: &[u8]) -> Result<u32, &'static str> {
    if frame.len() < TEST_HEADER {
        return Err("shorter than a test frame's header");
    }
    if frame[12..14] != ETHERTYPE_TEST.to_be_bytes() {
        return Err("not of the test ethertype");
    }
    let word =
        |at: usize| u32::from_be_bytes([frame[at], frame[at + 1], frame[at + 2], frame[at + 3]]);
    if checksum(&frame[TEST_HEADER..]) != word(ETH_HLEN + 4) {
        return Err("its checksum does not match its data");
    }
    Ok(word(ETH_HLEN))
}

/// `frame` with its source and destination addresses swapped (what an echo sends back), its
/// new source `own`. `None` if it is shorter than an Ethernet header.
pub fn echo_frame(frame: &[u8], own: &Mac) -> Option<Vec<u8>> {
    if frame.len() < ETH_HLEN {
        return None;
    }
    let mut echo = frame.to_vec();
    echo.copy_within(6..12, 0);
    echo[6..12].copy_from_slice(own);
    Some(echo)
}
