//! One vif's data path: its queues' rings mapped from the frontend, its ports bound, packets
//! taken off the transmit rings and placed on the receive rings by grant copy: straight from
//! the sender's pages into the receiver's where the receiver can take the packet at once
//! ([`Vif::place_directly`], one copy), else copied into this domain ([`TxPacket::copy_in`])
//! and queued until the receiver posts buffers (two copies).
//!
//! # Invariants
//! - A ring page is touched only through [`SharedRing`] (volatile and atomic accesses): the
//!   frontend writes it concurrently. Each request slot is read once ([`tx::next_packet`] and
//!   [`rx::place`] take copies) and checked before anything is copied.
//! - A round consumes requests and records their responses without writing them; the caller
//!   saves the state (which holds them), then [`Vif::flush`] writes and publishes them: a
//!   response overwrites its request's slot, so a restart must never read a request again
//!   once its response may be there (`xenolith_netback_logic::state`). After a flush every
//!   consumed request is answered and published: `req_cons == rsp_prod_pvt == rsp_prod`.
//! - A grant copy touches the frontend's pages only through the grant references it gave,
//!   and this domain's own buffers only inside the buffer's length.
//! - A transmitted packet's requests are answered in the round that takes it (as Linux's
//!   netback answers once the packet is built): a packet copied straight across is placed in
//!   that same round, before the state is saved, so no packet is ever half-forwarded across
//!   a restart. A straight copy that fails is blamed by copying the sender's pieces in once
//!   more: if that fails too the sender is disconnected and the receiver's responses for the
//!   packet say `NETIF_RSP_ERROR` (it drops it); otherwise the receiver is disconnected.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;

use xenolith_abi::ring::{BackRing, SharedIndices};
use xenolith_abi::xen::event_channel::EVTCHNSTAT_interdomain;
use xenolith_abi::xen::grant_table::{
    gnttab_copy, gnttab_copy_ptr, grant_handle_t, GNTCOPY_dest_gref, GNTCOPY_source_gref,
    GNTST_okay,
};
use xenolith_abi::xen::hypercall::DOMID_SELF;
use xenolith_abi::xen::netif::{
    netif_extra_info, netif_rx_response, netif_tx_request, netif_tx_response, Gso,
    NETTXF_csum_blank, NETTXF_data_validated, NETIF_RSP_ERROR, NETIF_RSP_NULL, NETIF_RSP_OKAY,
    XEN_NETIF_EXTRA_TYPE_GSO, XEN_NETIF_GSO_TYPE_TCPV4,
};
use xenolith_netback_logic::frontend::{Features, QueueConfig};
use xenolith_netback_logic::rx::{self, RxMeta, RxResponse, RxVerdict};
use xenolith_netback_logic::state::{SavedQueue, SavedRing, SavedVif};
use xenolith_netback_logic::switch::VifId;
use xenolith_netback_logic::tx::{self, Verdict};
use xenolith_runtime::events::{self, Port};
use xenolith_runtime::grants::{self, SharedPage, SharedRing, PAGE_SIZE};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout};

/// Entry sizes of the two rings (the larger of request and response, `io/netif.h`).
const TX_ENTRY: usize = core::mem::size_of::<netif_tx_request>();
const RX_ENTRY: usize = core::mem::size_of::<netif_rx_response>();
/// Packets waiting for a vif's receive buffers, and their bytes; past either the oldest is
/// dropped (Linux's `rx_queue_max` plays this part). With [`MAX_VIFS`] vifs the backlogs stay
/// within 16 MiB, whatever the frontends send (netback runs with 32 MiB: the manifests).
///
/// [`MAX_VIFS`]: xenolith_netback_logic::state::MAX_VIFS
pub const RX_BACKLOG: usize = 256;
/// See [`RX_BACKLOG`].
pub const RX_BACKLOG_BYTES: usize = 1024 * 1024;
/// Request slots one ring gives per round (then a packet may finish it): what bounds the
/// responses a saved round holds ([`MAX_ROUND_RESPONSES`]).
const ROUND_SLOTS: u32 = 128;
/// The most responses one ring's round leaves to write: its slots, plus one packet of the
/// most slots a transmit packet may take (`tx::FATAL_SLOTS` fragments, its first request and
/// its extra-info slots).
pub const MAX_ROUND_RESPONSES: usize = ROUND_SLOTS as usize
    + xenolith_netback_logic::tx::FATAL_SLOTS as usize
    + xenolith_abi::xen::netif::XEN_NETIF_EXTRA_TYPE_MAX as usize;
/// Grant-copy segments one hypercall takes.
const COPY_BATCH: usize = 64;

/// Where a ring is mapped: a page of the grant map area, handed out and taken back.
pub struct MapSlots {
    free: Vec<u64>,
}

impl MapSlots {
    /// `count` pages of `grants::MAP_AREA`.
    pub fn new(count: u64) -> Self {
        Self { free: (0..count).rev().map(|i| grants::MAP_AREA + i * PAGE_SIZE).collect() }
    }
}

/// A page of a large frame's buffer.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, align(4096))]
struct Page([u8; PAGE_SIZE as usize]);

/// Sixteen bytes of a small frame's buffer.
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C, align(16))]
struct Block([u8; 16]);

/// Frames of more bytes than this are kept in whole pages.
const SMALL_FRAME: usize = PAGE_SIZE as usize / 2;

/// A frame's bytes, 16-byte aligned (where the core copies in whole blocks); a large frame's
/// page-aligned, so a grant copy between it and a frontend's page-aligned buffers is one
/// segment a page. A small frame's buffer is not rounded up to a page: it is zeroed when made.
#[derive(Clone)]
pub struct Bytes(Storage);

#[derive(Clone)]
enum Storage {
    Small(Vec<Block>, usize),
    Pages(Vec<Page>, usize),
}

/// Large frames' buffers whose frames were placed, to be used again: a buffer from here is not
/// zeroed again (its old bytes past the new frame's end are never read).
#[derive(Default)]
pub struct Pool(Vec<Vec<Page>>);

impl Pool {
    /// How many buffers it keeps at most.
    const MAX: usize = 32;

    /// A buffer for `len` bytes: a small frame's zeroed, a large frame's from the pool (grown
    /// with zeroed pages if it is short) or zeroed; `None` if the heap cannot hold it.
    fn take(&mut self, len: usize) -> Option<Bytes> {
        if len <= SMALL_FRAME {
            return Some(Bytes(Storage::Small(Block::new_vec_zeroed(len.div_ceil(16)).ok()?, len)));
        }
        let pages = len.div_ceil(PAGE_SIZE as usize);
        let mut buffer = self.0.pop().unwrap_or_default();
        if buffer.len() < pages {
            buffer.extend(Page::new_vec_zeroed(pages - buffer.len()).ok()?);
        }
        Some(Bytes(Storage::Pages(buffer, len)))
    }

    /// Keeps `bytes`' buffer for another frame (a large frame's, while there is room).
    fn give(&mut self, bytes: Bytes) {
        if let Storage::Pages(buffer, _) = bytes.0 {
            if self.0.len() < Self::MAX {
                self.0.push(buffer);
            }
        }
    }
}

impl Bytes {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        match &self.0 {
            Storage::Small(blocks, len) => &blocks.as_bytes()[..*len],
            Storage::Pages(pages, len) => &pages.as_bytes()[..*len],
        }
    }

    /// The bytes, to change.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        match &mut self.0 {
            Storage::Small(blocks, len) => &mut blocks.as_mut_bytes()[..*len],
            Storage::Pages(pages, len) => &mut pages.as_mut_bytes()[..*len],
        }
    }

    /// How many bytes.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Where they start (for a grant copy's local end).
    fn address(&self) -> u64 {
        self.as_slice().as_ptr() as u64
    }
}

/// A frame on its way from one vif to another.
#[derive(Clone)]
pub struct Frame {
    /// The Ethernet frame.
    pub bytes: Bytes,
    /// The sender left the TCP/UDP checksum blank (`NETTXF_csum_blank`).
    pub csum_blank: bool,
    /// The sender vouches for the checksum (`NETTXF_data_validated`).
    pub data_validated: bool,
    /// Segmentation offload the sender asked for.
    pub gso: Option<Gso>,
}

/// Why a vif was disconnected.
#[derive(Clone, Debug)]
pub struct Broken(pub String);

/// A frontend's ring, mapped.
struct Ring {
    address: u64,
    handle: grant_handle_t,
    shared: SharedRing,
    back: BackRing,
    /// Bytes of a response (4 for transmit, 8 for receive).
    response_size: usize,
    /// The round's responses, not written yet: they go in the slots from `back.rsp_prod_pvt`
    /// on, after the state that records them is saved (`state`'s module doc).
    pending: Vec<[u8; 8]>,
}

impl Ring {
    fn map(
        domain: u16,
        gref: u32,
        entry: usize,
        response_size: usize,
        saved: Option<&SavedRing>,
        slots: &mut MapSlots,
    ) -> Result<Self, Broken> {
        let address = slots.free.pop().ok_or_else(|| Broken("no map slot left".into()))?;
        let handle = match grants::map(domain, gref, address, false) {
            Ok(handle) => handle,
            Err(error) => {
                slots.free.push(address);
                return Err(Broken(alloc::format!(
                    "ring grant {gref} cannot be mapped: {error:?}"
                )));
            }
        };
        // SAFETY: `address` is a page of the map area that `MapSlots` handed out to this ring
        // alone (a page is back in its free list only after `unmap`); the grant was just mapped
        // there and stays mapped until `unmap` consumes this ring, so for as long as `page` is
        // used; the page is only touched through `SharedRing`'s volatile and atomic accessors.
        let page = unsafe { SharedPage::at(address) };
        let shared = SharedRing::new(page, entry);
        let size = shared.size();
        let published = shared.rsp_prod();
        let mut ring = Self {
            address,
            handle,
            shared,
            // A fresh connection: the frontend initialised the ring; responses start at its
            // producer, as `BACK_RING_ATTACH` does.
            back: BackRing::attach(size, published),
            response_size,
            pending: Vec::new(),
        };
        if let Some(saved) = saved {
            // A new incarnation: the last round's responses not yet published are written and
            // published now; requests are read from the saved consumer on.
            let Some(unpublished) = saved.unpublished(published) else {
                ring.unmap(slots);
                return Err(Broken(alloc::format!(
                    "the ring's response producer {published} is outside the last round (requests \
                     consumed up to {})",
                    saved.consumer
                )));
            };
            ring.back.req_cons = saved.consumer;
            ring.pending.extend_from_slice(&saved.responses[unpublished.skip..]);
        }
        Ok(ring)
    }

    /// Records the response for the next consumed request (written by [`flush`](Self::flush)).
    fn respond(&mut self, response: &[u8]) {
        let mut bytes = [0; 8];
        bytes[..response.len()].copy_from_slice(response);
        self.pending.push(bytes);
    }

    /// What a new incarnation needs of this ring (`state::SavedRing`).
    fn saved(&self) -> SavedRing {
        SavedRing { consumer: self.back.req_cons, responses: self.pending.clone() }
    }

    /// Writes the pending responses into their slots and publishes them; true if the frontend
    /// asked to be told.
    fn flush(&mut self) -> bool {
        if self.pending.is_empty() {
            return false;
        }
        // Drained, not taken: the list keeps its room for the next round.
        for response in self.pending.drain(..) {
            let Some(slot) = self.back.next_response() else { break };
            match self.response_size {
                4 => self.shared.write(slot, &[response[0], response[1], response[2], response[3]]),
                _ => self.shared.write(slot, &response),
            }
        }
        self.back.push_responses(&mut self.shared)
    }

    fn unmap(self, slots: &mut MapSlots) {
        if grants::unmap(self.address, self.handle).is_ok() {
            slots.free.push(self.address);
        }
    }
}

/// One queue: its rings and its ports.
struct Queue {
    config: QueueConfig,
    tx: Ring,
    rx: Ring,
    tx_port: Port,
    /// The same port as `tx_port` unless the frontend split them.
    rx_port: Port,
}

/// Frames waiting for a vif's receive buffers.
#[derive(Default)]
struct Backlog {
    frames: VecDeque<Frame>,
    /// Their bytes.
    bytes: usize,
}

impl Backlog {
    /// Adds `frame`, dropping the oldest frames while it would hold more than [`RX_BACKLOG`]
    /// frames or [`RX_BACKLOG_BYTES`] bytes.
    fn push(&mut self, frame: Frame) {
        while self.frames.len() == RX_BACKLOG || self.bytes + frame.bytes.len() > RX_BACKLOG_BYTES {
            if !self.drop_oldest() {
                break;
            }
        }
        self.bytes += frame.bytes.len();
        self.frames.push_back(frame);
    }

    /// Takes the oldest frame away; false if there was none.
    fn drop_oldest(&mut self) -> bool {
        self.take_oldest().is_some()
    }

    /// Takes the oldest frame off.
    fn take_oldest(&mut self) -> Option<Frame> {
        let old = self.frames.pop_front()?;
        self.bytes -= old.bytes.len();
        Some(old)
    }
}

/// A connected vif.
pub struct Vif {
    /// Its frontend and device.
    pub id: VifId,
    /// Its MAC address.
    pub mac: [u8; 6],
    /// Its features.
    pub features: Features,
    queues: Vec<Queue>,
    /// Frames for it that wait for receive buffers.
    backlog: Backlog,
}

impl Vif {
    /// Maps `queues`' rings of frontend `id.domain` and binds its ports; `positions` are the
    /// saved ring positions of a new incarnation (`None`: a fresh connection).
    pub fn connect(
        id: VifId,
        mac: [u8; 6],
        features: Features,
        queues: &[QueueConfig],
        positions: Option<&[SavedQueue]>,
        slots: &mut MapSlots,
    ) -> Result<Self, Broken> {
        let mut vif = Self { id, mac, features, queues: Vec::new(), backlog: Backlog::default() };
        for (index, config) in queues.iter().enumerate() {
            let saved = positions.and_then(|p| p.get(index));
            match Self::connect_queue(id.domain, *config, saved, slots) {
                Ok(queue) => vif.queues.push(queue),
                Err(error) => {
                    vif.disconnect(slots);
                    return Err(error);
                }
            }
        }
        Ok(vif)
    }

    fn connect_queue(
        domain: u16,
        config: QueueConfig,
        saved: Option<&SavedQueue>,
        slots: &mut MapSlots,
    ) -> Result<Queue, Broken> {
        let tx = Ring::map(domain, config.tx_ring_ref, TX_ENTRY, 4, saved.map(|s| &s.tx), slots)?;
        let rx_saved = saved.map(|s| &s.rx);
        let rx = match Ring::map(domain, config.rx_ring_ref, RX_ENTRY, 8, rx_saved, slots) {
            Ok(rx) => rx,
            Err(error) => {
                tx.unmap(slots);
                return Err(error);
            }
        };
        let bind = |port: u32| {
            events::bind_interdomain(domain, port)
                .map_err(|error| Broken(alloc::format!("port {port} cannot be bound: {error:?}")))
        };
        let tx_port = match bind(config.tx_port) {
            Ok(port) => port,
            Err(error) => {
                tx.unmap(slots);
                rx.unmap(slots);
                return Err(error);
            }
        };
        let rx_port = if config.split() {
            match bind(config.rx_port) {
                Ok(port) => port,
                Err(error) => {
                    let _ = tx_port.close();
                    tx.unmap(slots);
                    rx.unmap(slots);
                    return Err(error);
                }
            }
        } else {
            tx_port
        };
        // Whatever was posted while nobody served the rings is looked at now, and the frontend
        // looks at its own (a restarted backend may have published what it waits for).
        let _ = tx_port.send();
        if rx_port != tx_port {
            let _ = rx_port.send();
        }
        Ok(Queue { config, tx, rx, tx_port, rx_port })
    }

    /// Unmaps the rings and closes the ports.
    pub fn disconnect(&mut self, slots: &mut MapSlots) {
        for queue in self.queues.drain(..) {
            let _ = queue.tx_port.close();
            if queue.rx_port != queue.tx_port {
                let _ = queue.rx_port.close();
            }
            queue.tx.unmap(slots);
            queue.rx.unmap(slots);
        }
        self.backlog = Backlog::default();
    }

    /// Its ports, to wait on.
    pub fn ports(&self) -> impl Iterator<Item = Port> + '_ {
        self.queues.iter().flat_map(|q| {
            let second = (q.rx_port != q.tx_port).then_some(q.rx_port);
            core::iter::once(q.tx_port).chain(second)
        })
    }

    /// Whether its frontend's end of the event channel is gone: the frontend closed it, or its
    /// domain went (Xen puts this end back to unbound when the peer's closes,
    /// `xen/common/event_channel.c`, `evtchn_close`). A failed copy then is the frontend
    /// going away with requests still on its ring, not a hostile act.
    pub fn frontend_gone(&self) -> bool {
        let Some(queue) = self.queues.first() else { return true };
        events::status(DOMID_SELF, queue.tx_port.0)
            .map_or(true, |status| status.status != EVTCHNSTAT_interdomain)
    }

    /// Clears its ports' pending bits (the rings are looked at next).
    pub fn take_pending(&self) {
        for port in self.ports() {
            port.take_pending();
        }
    }

    /// What a new incarnation needs to serve it again.
    pub fn saved(&self) -> SavedVif {
        SavedVif {
            domain: self.id.domain,
            devid: self.id.devid,
            mac: self.mac,
            features: self.features,
            queues: self
                .queues
                .iter()
                .map(|q| SavedQueue { config: q.config, tx: q.tx.saved(), rx: q.rx.saved() })
                .collect(),
        }
    }

    /// Takes up to a round's packets off each transmit ring into `out`, answered (a packet's
    /// requests are answered when it is taken: what becomes of its bytes later is the
    /// switch's business, as in Linux), with each packet's Ethernet header copied in; `Err`
    /// if the frontend broke a ring or granted what it cannot (the vif must be disconnected).
    pub fn take_tx(&mut self, out: &mut Vec<TxPacket>) -> Result<bool, Broken> {
        let domain = self.id.domain;
        let mut busy = false;
        let first = out.len();
        for queue in &mut self.queues {
            let ring = &mut queue.tx;
            let mut consumed = 0u32;
            loop {
                // At most a round's slots (see `receive`).
                if consumed >= ROUND_SLOTS {
                    busy = true;
                    break;
                }
                let prod = ring.shared.req_prod();
                ring.shared.read_barrier();
                let size = ring.back.size();
                let shared = &ring.shared;
                let back = ring.back;
                let verdict = tx::next_packet(size, back.req_cons, prod, |index| {
                    shared.read::<[u8; TX_ENTRY]>(back.slot(index))
                })
                .map_err(|fatal| Broken(alloc::format!("transmit ring: {fatal:?}")))?;
                match verdict {
                    Verdict::Empty => {
                        if ring.back.final_check_for_requests(&mut ring.shared) {
                            continue;
                        }
                        break;
                    }
                    Verdict::Drop { ids, slots } => {
                        ring.back.req_cons = ring.back.req_cons.wrapping_add(slots);
                        consumed += slots;
                        let rest = ids.iter().skip(1).copied();
                        respond_tx(ring, ids.first().copied(), rest, slots, NETIF_RSP_ERROR);
                    }
                    Verdict::Packet(packet) => {
                        ring.back.req_cons = ring.back.req_cons.wrapping_add(packet.slots);
                        consumed += packet.slots;
                        let fragments = packet.fragments.iter().map(|f| f.id);
                        respond_tx(
                            ring,
                            Some(packet.first.id),
                            fragments,
                            packet.slots,
                            NETIF_RSP_OKAY,
                        );
                        out.push(TxPacket::new(domain, packet));
                    }
                }
                busy = true;
            }
        }
        // The headers, in one batch: the switch routes by them before the rest is copied.
        // `tx::next_packet` drops a packet whose first slot holds less than a header.
        let mut segments = Vec::with_capacity(out.len() - first);
        for packet in &mut out[first..] {
            let (gref, offset, _) = packet.pieces[0];
            let mut segment = gnttab_copy {
                flags: GNTCOPY_source_gref,
                len: HEADER as u16,
                ..Default::default()
            };
            segment.source = granted(domain, gref, offset);
            segment.dest = own(packet.header.0.as_ptr() as u64);
            segments.push(segment);
        }
        run_copies(&mut segments)?;
        Ok(busy)
    }

    /// Whether `packet` may go straight from its sender's pages into this vif's receive
    /// buffers now: nothing waits for them before it, no checksum to complete, no offload
    /// this frontend cannot take, and the round has slots left on its receive ring.
    pub fn takes_directly(&self, packet: &TxPacket) -> bool {
        let Some(queue) = self.queues.first() else { return false };
        let csum_ok = self.features.csum_offload || !packet.csum_blank;
        let gso_ok = self.features.gso_tcpv4 || packet.gso.is_none();
        csum_ok && gso_ok && self.backlog.frames.is_empty() && {
            (queue.rx.pending.len() as u32) < ROUND_SLOTS
        }
    }

    /// Places `packet` (`index` of the round's) on this vif's receive ring with grant copies
    /// straight from its sender's pages: the copies are appended to `segments`, each tagged in
    /// `tags` with the index of the packet's record, pushed to `placed`. False if the
    /// frontend has too few buffers posted or the packet can never be placed (the caller
    /// copies it in and queues it instead); `Err` if the frontend broke its receive ring.
    pub fn place_directly(
        &mut self,
        packet: &TxPacket,
        index: usize,
        segments: &mut Vec<gnttab_copy>,
        tags: &mut Vec<usize>,
        placed: &mut Vec<Placed>,
    ) -> Result<bool, Broken> {
        let Some(queue) = self.queues.first_mut() else { return Ok(false) };
        let domain = self.id.domain;
        let ring = &mut queue.rx;
        let meta = packet.meta();
        let prod = ring.shared.req_prod();
        ring.shared.read_barrier();
        let (size, back, shared) = (ring.back.size(), ring.back, &ring.shared);
        let verdict = rx::place(size, back.req_cons, prod, &meta, self.features.sg, |index| {
            shared.read::<[u8; 8]>(back.slot(index))
        })
        .map_err(|fatal| Broken(alloc::format!("receive ring: {fatal:?}")))?;
        let RxVerdict::Placed(placement) = verdict else { return Ok(false) };
        let before = segments.len();
        packet.copies_into(domain, &placement.copies, segments);
        tags.resize(tags.len() + segments.len() - before, placed.len());
        let first = ring.pending.len();
        let data = placement.responses.iter().enumerate();
        let data = data.filter(|(_, r)| matches!(r, RxResponse::Data(_))).map(|(i, _)| first + i);
        placed.push(Placed { packet: index, to: self.id, data_responses: data.collect() });
        ring.back.req_cons = ring.back.req_cons.wrapping_add(placement.slots);
        for response in &placement.responses {
            ring.respond(&response.bytes());
        }
        Ok(true)
    }

    /// A packet placed directly whose copies failed on its sender's side: each of its data
    /// responses (`responses`, indices of this round's) says so with `NETIF_RSP_ERROR`, and
    /// the frontend drops it (Linux's `xennet_get_responses` drops a negative status).
    pub fn spoil(&mut self, responses: &[usize]) {
        let Some(queue) = self.queues.first_mut() else { return };
        for &index in responses {
            let Some(bytes) = queue.rx.pending.get_mut(index) else { continue };
            let Ok(mut response) = netif_rx_response::read_from_bytes(&bytes[..]) else { continue };
            response.status = NETIF_RSP_ERROR;
            bytes.copy_from_slice(response.as_bytes());
        }
    }

    /// Writes and publishes every ring's pending responses (after the state that records them
    /// was saved), notifying the frontend where it asked.
    pub fn flush(&mut self) {
        for queue in &mut self.queues {
            if queue.tx.flush() {
                let _ = queue.tx_port.send();
            }
            if queue.rx.flush() {
                let _ = queue.rx_port.send();
            }
        }
    }

    /// Queues `frame` for this vif; the oldest waiting frames go while the backlog would be
    /// too long or too large.
    pub fn enqueue(&mut self, frame: Frame) {
        if frame.gso.is_some() && !self.features.gso_tcpv4 {
            // A segmentation-offload packet for a frontend that cannot take one (documented
            // limit: netback does not segment).
            return;
        }
        self.backlog.push(frame);
    }

    /// Places waiting frames on the receive ring while the frontend has buffers posted;
    /// `Err` if it broke the ring or posted buffers it did not grant.
    pub fn receive(&mut self, pool: &mut Pool) -> Result<bool, Broken> {
        let Some(queue) = self.queues.first_mut() else { return Ok(false) };
        let domain = self.id.domain;
        let ring = &mut queue.rx;
        let mut placed = 0;
        // Packets placed straight from their senders this round count too.
        let mut consumed = ring.pending.len() as u32;
        // The round's copies, made in one batch; the frames live until then.
        let mut segments = Vec::new();
        let mut copied = Vec::new();
        while let Some(frame) = self.backlog.frames.front_mut() {
            // At most a round's slots: their responses wait in the preserved state until the
            // round is saved.
            if consumed >= ROUND_SLOTS {
                break;
            }
            if frame.csum_blank && !self.features.csum_offload {
                // The frontend wants whole checksums: complete the one the sender left blank.
                if xenolith_netback_logic::csum::complete_checksum(frame.bytes.as_mut_slice())
                    .is_ok()
                {
                    frame.csum_blank = false;
                    frame.data_validated = true;
                } else {
                    self.backlog.drop_oldest();
                    continue;
                }
            }
            let meta = RxMeta {
                len: frame.bytes.len(),
                source_offset: frame.bytes.address() as usize % PAGE_SIZE as usize,
                csum_blank: frame.csum_blank,
                data_validated: frame.data_validated,
                gso: frame.gso,
            };
            let prod = ring.shared.req_prod();
            ring.shared.read_barrier();
            let size = ring.back.size();
            let shared = &ring.shared;
            let back = ring.back;
            let verdict = rx::place(size, back.req_cons, prod, &meta, self.features.sg, |index| {
                shared.read::<[u8; 8]>(back.slot(index))
            })
            .map_err(|fatal| Broken(alloc::format!("receive ring: {fatal:?}")))?;
            let placement = match verdict {
                RxVerdict::Placed(placement) => placement,
                RxVerdict::NoRoom { .. } => {
                    // Ask to be told when buffers come, and look once more.
                    ring.shared.set_req_event(prod.wrapping_add(1));
                    ring.shared.full_barrier();
                    if ring.shared.req_prod() != prod {
                        continue;
                    }
                    break;
                }
                RxVerdict::Unplaceable(_) => {
                    self.backlog.drop_oldest();
                    continue;
                }
            };
            copy_out(domain, &frame.bytes, &placement.copies, &mut segments);
            ring.back.req_cons = ring.back.req_cons.wrapping_add(placement.slots);
            consumed += placement.slots;
            for response in &placement.responses {
                ring.respond(&response.bytes());
            }
            copied.extend(self.backlog.take_oldest());
            placed += 1;
        }
        run_copies(&mut segments)?;
        for frame in copied {
            pool.give(frame.bytes);
        }
        Ok(placed > 0)
    }
}

/// Answers a packet of `slots` slots whose requests are `first` and `fragments` with `status`,
/// its extra-info slots with `NETIF_RSP_NULL` after the first, as Linux's `make_tx_response`
/// does; the slots are consumed already.
fn respond_tx(
    ring: &mut Ring,
    first: Option<u16>,
    fragments: impl ExactSizeIterator<Item = u16>,
    slots: u32,
    status: i16,
) {
    let extras = slots as usize - usize::from(first.is_some()) - fragments.len();
    if let Some(id) = first {
        ring.respond(netif_tx_response { id, status }.as_bytes());
    }
    for _ in 0..extras {
        ring.respond(netif_tx_response { id: 0, status: NETIF_RSP_NULL }.as_bytes());
    }
    for id in fragments {
        ring.respond(netif_tx_response { id, status }.as_bytes());
    }
}

/// Bytes of a packet's header copied in for the switch (an Ethernet header: the destination
/// and source addresses, and the type).
pub const HEADER: usize = 14;

/// Room for a packet's header, never across a page (a grant copy's end stays in one page).
#[derive(Clone, Copy, Default)]
#[repr(C, align(16))]
struct Header([u8; 16]);

/// A packet taken off a transmit ring: its bytes are still in its sender's granted pages.
pub struct TxPacket {
    /// The sender's domain.
    domain: u16,
    /// Its pieces in packet order: grant, offset and bytes (each inside one page: the
    /// transmit checks).
    pieces: Vec<(u32, u16, u32)>,
    /// Its bytes.
    len: usize,
    csum_blank: bool,
    data_validated: bool,
    gso: Option<Gso>,
    /// Its Ethernet header, copied in by [`Vif::take_tx`] (its first piece holds one:
    /// `tx::next_packet` drops a packet whose first slot holds less).
    header: Header,
}

impl TxPacket {
    fn new(domain: u16, packet: tx::Packet) -> Self {
        let fragment_bytes: u32 = packet.fragments.iter().map(|f| u32::from(f.size)).sum();
        let first_bytes = u32::from(packet.first.size) - fragment_bytes;
        let pieces = core::iter::once((packet.first.gref, packet.first.offset, first_bytes))
            .chain(packet.fragments.iter().map(|f| (f.gref, f.offset, u32::from(f.size))))
            .filter(|&(_, _, bytes)| bytes > 0)
            .collect();
        let extra = packet.extras[usize::from(XEN_NETIF_EXTRA_TYPE_GSO) - 1];
        let gso = extra
            .map(|e: netif_extra_info| e.gso())
            .filter(|g| g.r#type == XEN_NETIF_GSO_TYPE_TCPV4);
        let flags = packet.first.flags;
        Self {
            domain,
            pieces,
            len: usize::from(packet.first.size),
            csum_blank: flags & NETTXF_csum_blank != 0,
            data_validated: flags & NETTXF_data_validated != 0,
            gso,
            header: Header::default(),
        }
    }

    /// Its Ethernet header.
    pub fn header(&self) -> &[u8] {
        &self.header.0[..HEADER]
    }

    /// What a receiving frontend is told of it.
    fn meta(&self) -> RxMeta {
        RxMeta {
            len: self.len,
            // The sender's pieces are split where they end (`copies_into`).
            source_offset: 0,
            csum_blank: self.csum_blank,
            data_validated: self.data_validated,
            gso: self.gso,
        }
    }

    /// The grant copies, sender's grant to receiver's, of `copies` (in packet order, as
    /// `rx::place` makes them) into frontend `domain`'s pages, split where the sender's
    /// pieces end; appended to `segments`.
    fn copies_into(&self, domain: u16, copies: &[rx::RxCopy], segments: &mut Vec<gnttab_copy>) {
        // The piece the next byte is in, and the packet offset where that piece starts.
        let (mut piece, mut at) = (0, 0);
        for copy in copies {
            let (mut want, mut left) = (copy.packet_offset, usize::from(copy.len));
            let mut dest_offset = copy.dest_offset;
            while left > 0 {
                let Some(&(gref, offset, bytes)) = self.pieces.get(piece) else { return };
                let bytes = bytes as usize;
                if want >= at + bytes {
                    (piece, at) = (piece + 1, at + bytes);
                    continue;
                }
                let inside = want - at;
                let chunk = (bytes - inside).min(left);
                let mut segment = gnttab_copy {
                    flags: GNTCOPY_source_gref | GNTCOPY_dest_gref,
                    len: chunk as u16,
                    ..Default::default()
                };
                segment.source = granted(self.domain, gref, offset + inside as u16);
                segment.dest = granted(domain, copy.gref, dest_offset);
                segments.push(segment);
                (want, left, dest_offset) =
                    (want + chunk, left - chunk, dest_offset + chunk as u16);
            }
        }
    }

    /// A buffer for its bytes, and the grant copies that fill it from the sender's pages
    /// (appended to `segments`, made by the caller; the buffer's heap bytes stay put when the
    /// frame moves), the buffer from `pool`. `None` if the heap cannot hold the buffer.
    pub fn copy_in(&self, pool: &mut Pool, segments: &mut Vec<gnttab_copy>) -> Option<Frame> {
        let bytes = pool.take(self.len)?;
        let base = bytes.address();
        let mut at = 0u64;
        for &(gref, offset, length) in &self.pieces {
            let mut done = 0u32;
            while done < length {
                let local = base + at;
                let room = (PAGE_SIZE - local % PAGE_SIZE) as u32;
                let chunk = room.min(length - done);
                let mut segment = gnttab_copy {
                    flags: GNTCOPY_source_gref,
                    len: chunk as u16,
                    ..Default::default()
                };
                segment.source = granted(self.domain, gref, offset + done as u16);
                segment.dest = own(local);
                segments.push(segment);
                done += chunk;
                at += u64::from(chunk);
            }
        }
        Some(Frame {
            bytes,
            csum_blank: self.csum_blank,
            data_validated: self.data_validated,
            gso: self.gso,
        })
    }

    /// Whether its sender granted every piece as it says: its bytes copied in once more, for
    /// a copy straight to a receiver that failed (which side broke it?). False too if the heap
    /// cannot hold the buffer. The buffer lives until the copies into it are done.
    pub fn sender_intact(&self, pool: &mut Pool) -> bool {
        let mut segments = Vec::new();
        let Some(frame) = self.copy_in(pool, &mut segments) else { return false };
        let intact = run_copies(&mut segments).is_ok();
        pool.give(frame.bytes);
        intact
    }
}

/// A packet placed straight into a receiver's buffers this round.
pub struct Placed {
    /// Its index among the round's packets of its sender.
    pub packet: usize,
    /// The receiver.
    pub to: VifId,
    /// Its data responses (indices of the receiver's round).
    pub data_responses: Vec<usize>,
}

/// The grant copies of `frame`'s bytes into frontend `domain`'s buffers as `copies` says,
/// appended to `segments` (made by the caller while the frame lives).
fn copy_out(domain: u16, frame: &Bytes, copies: &[rx::RxCopy], segments: &mut Vec<gnttab_copy>) {
    let base = frame.address();
    // `rx::place` splits copies where either page ends.
    for copy in copies {
        let local = base + copy.packet_offset as u64;
        let mut segment =
            gnttab_copy { flags: GNTCOPY_dest_gref, len: copy.len, ..Default::default() };
        segment.source = own(local);
        segment.dest = granted(domain, copy.gref, copy.dest_offset);
        segments.push(segment);
    }
}

/// A grant copy's end in this domain's own memory at `local` (identity-mapped: the frame is the
/// address's page).
fn own(local: u64) -> gnttab_copy_ptr {
    gnttab_copy_ptr {
        u: local / PAGE_SIZE,
        domid: DOMID_SELF,
        offset: (local % PAGE_SIZE) as u16,
        ..Default::default()
    }
}

/// A grant copy's end in frontend `domain`'s page `gref` at `offset`.
fn granted(domain: u16, gref: u32, offset: u16) -> gnttab_copy_ptr {
    let mut end = gnttab_copy_ptr { domid: domain, offset, ..Default::default() };
    end.set_gref(gref);
    end
}

/// Runs `segments` in batches, each segment's status its own; `Err` with the hypercall's
/// result if one failed as a whole (its segments and the rest are then not run).
pub fn run_copies_each(segments: &mut [gnttab_copy]) -> Result<(), i64> {
    for batch in segments.chunks_mut(COPY_BATCH) {
        let result = grants::copy(batch);
        if result != 0 {
            return Err(result);
        }
    }
    Ok(())
}

/// Runs `segments` in batches; `Err` naming the first that failed (a grant the frontend did
/// not give: the XSA classes of bad references, offsets and sizes that pass the ring checks).
pub fn run_copies(segments: &mut [gnttab_copy]) -> Result<(), Broken> {
    for batch in segments.chunks_mut(COPY_BATCH) {
        run_copies_each(batch)
            .map_err(|result| Broken(alloc::format!("grant copy failed: {result}")))?;
        if let Some(bad) = batch.iter().find(|s| s.status != GNTST_okay) {
            return Err(Broken(alloc::format!(
                "grant copy of {} bytes failed: {}",
                bad.len,
                grants::status_name(bad.status)
            )));
        }
    }
    Ok(())
}
