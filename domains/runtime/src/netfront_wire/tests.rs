//! Host tests of the network frontend's queues against a simulated backend ([`Backend`]: the
//! back end of `io/ring.h` rings as Linux's netback drives them in copy mode, with grant
//! lookups that fail as Xen's would) and a backend that writes whatever it likes.

use std::collections::HashMap;

use xenolith_abi::ring::{sring_header, BackRing};
use xenolith_abi::xen::netif::{NETIF_RSP_ERROR, XEN_NETIF_EXTRA_TYPE_GSO};

use super::*;

/// A ring page: the header and 256 entries of 12 bytes (wide enough for every netif entry).
struct FakeRing {
    header: sring_header,
    entries: Vec<[u8; 12]>,
}

impl FakeRing {
    fn new() -> Self {
        let mut ring = Self { header: sring_header::default(), entries: vec![[0; 12]; 256] };
        xenolith_abi::ring::shared_ring_init(&mut ring.header);
        ring
    }
}

impl SharedIndices for FakeRing {
    fn req_prod(&self) -> RING_IDX {
        self.header.req_prod
    }
    fn set_req_prod(&mut self, v: RING_IDX) {
        self.header.req_prod = v;
    }
    fn req_event(&self) -> RING_IDX {
        self.header.req_event
    }
    fn set_req_event(&mut self, v: RING_IDX) {
        self.header.req_event = v;
    }
    fn rsp_prod(&self) -> RING_IDX {
        self.header.rsp_prod
    }
    fn set_rsp_prod(&mut self, v: RING_IDX) {
        self.header.rsp_prod = v;
    }
    fn rsp_event(&self) -> RING_IDX {
        self.header.rsp_event
    }
    fn set_rsp_event(&mut self, v: RING_IDX) {
        self.header.rsp_event = v;
    }
}

impl RingMemory for FakeRing {
    fn read_entry<T: FromBytes + IntoBytes>(&self, slot: usize) -> T {
        T::read_from_prefix(&self.entries[slot]).expect("an entry fits a slot").0
    }
    fn write_entry<T: IntoBytes + Immutable>(&mut self, slot: usize, entry: &T) {
        let bytes = entry.as_bytes();
        self.entries[slot][..bytes.len()].copy_from_slice(bytes);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Grant {
    buffer: Buffer,
    readonly: bool,
    /// The backend has it mapped (`GTF_reading`/`GTF_writing`).
    busy: bool,
}

/// The buffer pages and a grant table. A read or write outside a page panics (the queues must
/// never ask for one).
struct FakeBuffers {
    tx: Vec<Vec<u8>>,
    rx: Vec<Vec<u8>>,
    table_entries: u32,
    grants: HashMap<grant_ref_t, Grant>,
    granted: u64,
}

impl FakeBuffers {
    fn new(layout: Layout) -> Self {
        Self {
            tx: vec![vec![0; PAGE_SIZE]; usize::from(layout.tx_buffers)],
            rx: vec![vec![0; PAGE_SIZE]; usize::from(layout.rx_buffers)],
            table_entries: layout.end_gref(),
            grants: HashMap::new(),
            granted: 0,
        }
    }

    fn page(&self, buffer: Buffer) -> &Vec<u8> {
        match buffer {
            Buffer::Tx(id) => &self.tx[usize::from(id)],
            Buffer::Rx(id) => &self.rx[usize::from(id)],
        }
    }

    fn page_mut(&mut self, buffer: Buffer) -> &mut Vec<u8> {
        match buffer {
            Buffer::Tx(id) => &mut self.tx[usize::from(id)],
            Buffer::Rx(id) => &mut self.rx[usize::from(id)],
        }
    }
}

impl Buffers for FakeBuffers {
    fn grant(&mut self, gref: grant_ref_t, buffer: Buffer, readonly: bool) -> Result<(), NetError> {
        if gref >= self.table_entries {
            return Err(NetError::Grant(gref));
        }
        let old = self.grants.insert(gref, Grant { buffer, readonly, busy: false });
        assert!(old.is_none(), "grant {gref} given twice without its end: {old:?}");
        self.granted += 1;
        Ok(())
    }

    fn end_access(&mut self, gref: grant_ref_t) -> bool {
        match self.grants.get(&gref) {
            Some(grant) if grant.busy => false,
            Some(_) => {
                self.grants.remove(&gref);
                true
            }
            None => panic!("ending grant {gref}, which is not granted"),
        }
    }

    fn read(&self, buffer: Buffer, offset: usize, out: &mut [u8]) {
        out.copy_from_slice(&self.page(buffer)[offset..offset + out.len()]);
    }

    fn write(&mut self, buffer: Buffer, offset: usize, data: &[u8]) {
        self.page_mut(buffer)[offset..offset + data.len()].copy_from_slice(data);
    }
}

/// A frontend with its rings and pages.
struct Front {
    queues: Queues,
    tx: FakeRing,
    rx: FakeRing,
    buffers: FakeBuffers,
}

impl Front {
    fn new(tx_buffers: u16, rx_buffers: u16) -> Self {
        let layout = Layout::new(100, tx_buffers, rx_buffers).expect("a layout");
        let mut front = Self {
            queues: Queues::new(layout),
            tx: FakeRing::new(),
            rx: FakeRing::new(),
            buffers: FakeBuffers::new(layout),
        };
        assert!(front.queues.post_rx_buffers(&mut front.rx, &mut front.buffers).expect("posted"));
        front
    }

    fn send(&mut self, frame: &[u8]) -> Result<bool, NetError> {
        self.queues.send(&mut self.tx, &mut self.buffers, frame)
    }

    fn reap(&mut self) -> Result<u32, NetError> {
        self.queues.reap_tx(&mut self.tx, &mut self.buffers)
    }

    fn receive(&mut self) -> Result<Option<Vec<u8>>, NetError> {
        Ok(self.queues.receive(&mut self.rx, &mut self.buffers)?.frame)
    }

    /// Receive buffers granted and posted: each exactly once.
    fn rx_posted(&self) -> usize {
        let posted = self.queues.rx_at.iter().flatten().count();
        let granted = self.buffers.grants.values().filter(|g| matches!(g.buffer, Buffer::Rx(_)));
        assert_eq!(granted.count(), posted, "a posted buffer is granted, nothing else is");
        let mut ids: Vec<u16> = self.queues.rx_at.iter().flatten().copied().collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), posted, "no buffer is posted twice");
        posted
    }
}

/// The back end of both rings, as Linux's netback drives them in copy mode.
struct Backend {
    tx: BackRing,
    rx: BackRing,
}

impl Backend {
    fn new() -> Self {
        Self { tx: BackRing::new(256), rx: BackRing::new(256) }
    }

    /// Takes every transmit request, reads its data through its grant (a grant copy, which
    /// fails for a slot outside the page or an entry not granted), and answers `status`.
    fn take_tx(&mut self, front: &mut Front, status: i16) -> Vec<Vec<u8>> {
        let mut frames = Vec::new();
        while let Some(slot) = self.tx.next_request(&front.tx) {
            let request: netif_tx_request = front.tx.read_entry(slot);
            let grant = front.buffers.grants.get(&request.gref).copied().expect("granted");
            assert!(grant.readonly, "a transmit buffer is granted read-only");
            let (offset, size) = (usize::from(request.offset), usize::from(request.size));
            assert!(offset + size <= PAGE_SIZE);
            frames.push(front.buffers.page(grant.buffer)[offset..offset + size].to_vec());
            let answer = self.tx.next_response().expect("a response slot");
            front.tx.write_entry(answer, &netif_tx_response { id: request.id, status });
        }
        self.tx.push_responses(&mut front.tx);
        frames
    }

    /// Copies `frame` into the posted receive buffers, `chunk` bytes a slot (at `offset`),
    /// chained with `NETRXF_more_data`. False if not enough buffers were posted.
    fn deliver(&mut self, front: &mut Front, frame: &[u8], chunk: usize, offset: u16) -> bool {
        let chunks: Vec<&[u8]> = frame.chunks(chunk).collect();
        if self.rx.unconsumed_requests(&front.rx) < chunks.len() as u32 {
            return false;
        }
        for (index, data) in chunks.iter().enumerate() {
            let slot = self.rx.next_request(&front.rx).expect("a request");
            let request: netif_rx_request = front.rx.read_entry(slot);
            let grant = front.buffers.grants.get(&request.gref).copied().expect("granted");
            assert!(!grant.readonly, "a receive buffer is granted writable");
            let start = usize::from(offset);
            front.buffers.page_mut(grant.buffer)[start..start + data.len()].copy_from_slice(data);
            let more = if index + 1 < chunks.len() { NETRXF_more_data } else { 0 };
            let answer = self.rx.next_response().expect("a response slot");
            let response = netif_rx_response {
                id: request.id,
                offset,
                flags: more,
                status: data.len() as i16,
            };
            front.rx.write_entry(answer, &response);
        }
        self.rx.push_responses(&mut front.rx);
        true
    }

    /// Answers the next receive requests with `responses` as given (ids filled from the
    /// requests when `None`) and publishes them.
    fn raw_rx(&mut self, front: &mut Front, responses: &[(Option<u16>, u16, u16, i16)]) {
        for &(id, offset, flags, status) in responses {
            let slot = self.rx.next_request(&front.rx).expect("a request");
            let request: netif_rx_request = front.rx.read_entry(slot);
            let answer = self.rx.next_response().expect("a response slot");
            let id = id.unwrap_or(request.id);
            front.rx.write_entry(answer, &netif_rx_response { id, offset, flags, status });
        }
        self.rx.push_responses(&mut front.rx);
    }
}

fn frame(size: usize, seed: u8) -> Vec<u8> {
    (0..size).map(|index| (index as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn a_layout_gives_each_page_its_own_grant_and_refuses_bad_counts() {
    let layout = Layout::new(64, 8, 32).expect("a layout");
    assert_eq!((layout.tx_ring_gref(), layout.rx_ring_gref()), (64, 65));
    assert_eq!((layout.tx_gref(0), layout.tx_gref(7)), (66, 73));
    assert_eq!((layout.rx_gref(0), layout.rx_gref(31)), (74, 105));
    assert_eq!(layout.end_gref(), 106);
    assert!(Layout::new(64, 256, 256).is_some());
    assert!(Layout::new(64, 0, 32).is_none());
    assert!(Layout::new(64, 257, 32).is_none());
    assert!(Layout::new(64, 8, MIN_RX_BUFFERS - 1).is_none());
    assert!(Layout::new(64, 8, 257).is_none());
    assert!(Layout::new(u32::MAX - 10, 8, 32).is_none());
}

#[test]
fn records_parse_and_the_keys_are_linux_s() {
    assert_eq!(parse_mac(b"00:16:3e:0a:b1:ff"), Some([0, 0x16, 0x3e, 0x0a, 0xb1, 0xff]));
    assert_eq!(parse_mac(b"0:16:3E:a:b1:FF\0"), Some([0, 0x16, 0x3e, 0x0a, 0xb1, 0xff]));
    for bad in [
        &b""[..],
        b"00:16:3e:0a:b1",
        b"00:16:3e:0a:b1:ff:00",
        b"00:16:3e:0a:b1:fff",
        b"00::3e:0a:b1:ff",
        b"00:16:3e:0a:b1:fg",
        b"+0:16:3e:0a:b1:ff",
    ] {
        assert_eq!(parse_mac(bad), None, "{bad:?}");
    }
    assert_eq!(format_mac(&[0, 0x16, 0x3e, 0x0a, 0xb1, 0xff]), "00:16:3e:0a:b1:ff");
    let keys = frontend_keys(8, 9, 17, false);
    let names: Vec<&str> = keys.iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        [
            "tx-ring-ref",
            "rx-ring-ref",
            "event-channel",
            "request-rx-copy",
            "feature-rx-notify",
            "feature-sg",
            "feature-no-csum-offload"
        ]
    );
    let values: Vec<&str> = keys.iter().map(|(_, value)| value.as_str()).collect();
    assert_eq!(values, ["8", "9", "17", "1", "1", "0", "1"]);
    assert_eq!(frontend_keys(8, 9, 17, true)[5], ("feature-sg", String::from("1")));
    assert!(feature_enabled(Some(b"1")));
    assert!(feature_enabled(Some(b"1\0")));
    assert!(!feature_enabled(Some(b"0")));
    assert!(!feature_enabled(Some(b"yes")));
    assert!(!feature_enabled(None));
}

#[test]
fn a_frame_goes_out_in_one_read_only_slot_and_its_grant_ends_on_completion() {
    let mut front = Front::new(4, 32);
    let mut backend = Backend::new();
    let data = frame(1514, 7);
    assert!(front.send(&data).expect("sent"), "the backend asked for the first request");
    let grefs = front.queues.layout().tx_gref(0)..front.queues.layout().end_gref();
    assert_eq!(front.buffers.grants.keys().filter(|gref| grefs.contains(gref)).count(), 1 + 32);
    let request: netif_tx_request = front.tx.read_entry(0);
    assert_eq!(request.flags, 0, "one slot, checksums complete");
    assert_eq!(usize::from(request.size), data.len());
    assert_eq!(backend.take_tx(&mut front, NETIF_RSP_OKAY), vec![data]);
    assert_eq!(front.reap().expect("reaped"), 1);
    assert!(!front.buffers.grants.contains_key(&request.gref), "its grant ended");
    assert_eq!(front.queues.tx_in_flight(), 0);
    for (status, size) in [(NETIF_RSP_ERROR, 60), (NETIF_RSP_DROPPED, 14), (-7, 4096)] {
        front.send(&frame(size, 1)).expect("sent");
        backend.take_tx(&mut front, status);
        assert_eq!(front.reap(), Ok(1));
    }
    let stats = front.queues.stats();
    assert_eq!((stats.tx_frames, stats.tx_okay, stats.tx_errors, stats.tx_dropped), (4, 1, 2, 1));
    assert_eq!(front.send(&[0; 13]), Err(NetError::FrameSize(13)));
    assert_eq!(front.send(&[0; 4097]), Err(NetError::FrameSize(4097)));
}

#[test]
fn a_full_ring_waits_for_the_backend_and_null_responses_are_skipped() {
    let mut front = Front::new(3, 32);
    let mut backend = Backend::new();
    for seed in 0..3 {
        front.send(&frame(60, seed)).expect("sent");
    }
    assert_eq!(front.send(&frame(60, 9)), Err(NetError::TxFull));
    assert_eq!(front.reap(), Ok(0), "nothing answered yet");
    assert_eq!(backend.take_tx(&mut front, NETIF_RSP_OKAY).len(), 3);
    assert_eq!(front.reap(), Ok(3));
    front.send(&frame(60, 9)).expect("room again");
    // The backend answers the frame, after a NULL response (which Linux skips).
    let slot = backend.tx.next_request(&front.tx).expect("a request");
    let request: netif_tx_request = front.tx.read_entry(slot);
    let answer = backend.tx.next_response().expect("a slot");
    front.tx.write_entry(answer, &netif_tx_response { id: request.id, status: NETIF_RSP_NULL });
    backend.tx.push_responses(&mut front.tx);
    assert_eq!(front.reap(), Ok(0));
    assert_eq!(front.queues.stats().tx_null, 1);
    assert_eq!(front.queues.tx_in_flight(), 1);
}

#[test]
fn thousands_of_frames_wrap_both_rings() {
    let mut front = Front::new(16, 64);
    let mut backend = Backend::new();
    let mut seed = 1u32;
    for round in 0..3000u32 {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let size = 14 + (seed >> 8) as usize % (4096 - 14 + 1);
        let data = frame(size, round as u8);
        front.send(&data).expect("sent");
        let sent = backend.take_tx(&mut front, NETIF_RSP_OKAY);
        assert_eq!(sent, vec![data.clone()]);
        front.reap().expect("reaped");
        // The echo comes back in slots of up to 1500 bytes at varying offsets.
        let chunk = 400 + (seed >> 20) as usize % 1100;
        let offset = (seed % 64) as u16;
        assert!(backend.deliver(&mut front, &data, chunk, offset));
        let received = front.receive().expect("received");
        assert!(received == Some(data), "round {round}: a different frame came back");
        assert_eq!(front.receive().expect("nothing more"), None);
        assert_eq!(front.rx_posted(), 64);
    }
    assert!(front.tx.header.req_prod > 2 * 256 && front.rx.header.rsp_prod > 4 * 256);
    assert_eq!(front.queues.stats().rx_packets, 3000);
    assert_eq!(front.queues.broken(), None);
}

#[test]
fn indices_near_the_u32_wrap_keep_working() {
    let mut front = Front::new(4, 32);
    // Start both rings a few slots before the indices wrap (as after a long uptime).
    let start = u32::MAX - 40;
    front.queues = Queues::new(front.queues.layout());
    front.queues.tx = FrontRing::attach(256, start);
    front.queues.rx = FrontRing::attach(256, start);
    front.buffers.grants.clear();
    for ring in [&mut front.tx, &mut front.rx] {
        ring.header.req_prod = start;
        ring.header.rsp_prod = start;
    }
    front.queues.post_rx_buffers(&mut front.rx, &mut front.buffers).expect("posted");
    let mut backend =
        Backend { tx: BackRing::attach(256, start), rx: BackRing::attach(256, start) };
    for round in 0..100u8 {
        let data = frame(100 + usize::from(round), round);
        front.send(&data).expect("sent");
        backend.take_tx(&mut front, NETIF_RSP_OKAY);
        front.reap().expect("reaped");
        assert!(backend.deliver(&mut front, &data, 64, 0));
        assert_eq!(front.receive().expect("received"), Some(data));
    }
    assert!(front.rx.header.rsp_prod < start, "the indices wrapped");
}

#[test]
fn a_backend_that_answers_what_was_not_asked_breaks_the_queues() {
    type Case = fn(&mut Front, &mut Backend);
    let cases: [(&str, Case, Broken); 5] = [
        (
            "an id past the buffers",
            |front, backend| {
                backend.tx.next_request(&front.tx);
                let slot = backend.tx.next_response().expect("a slot");
                front.tx.write_entry(slot, &netif_tx_response { id: 200, status: 0 });
                backend.tx.push_responses(&mut front.tx);
            },
            Broken::TxBadId(200),
        ),
        (
            "an id not in flight",
            |front, backend| {
                backend.tx.next_request(&front.tx);
                let slot = backend.tx.next_response().expect("a slot");
                front.tx.write_entry(slot, &netif_tx_response { id: 3, status: 0 });
                backend.tx.push_responses(&mut front.tx);
            },
            Broken::TxNotInFlight(3),
        ),
        (
            "a producer a ring ahead",
            |front, _| front.tx.header.rsp_prod = 1000,
            Broken::TxResponses { prod: 1000, cons: 0 },
        ),
        (
            "more responses than requests",
            |front, _| front.tx.header.rsp_prod = 2,
            Broken::TxResponses { prod: 2, cons: 0 },
        ),
        (
            "a grant still mapped",
            |front, backend| {
                let gref = front.queues.layout().tx_gref(0);
                front.buffers.grants.get_mut(&gref).expect("granted").busy = true;
                backend.take_tx(front, NETIF_RSP_OKAY);
            },
            Broken::GrantInUse(102),
        ),
    ];
    for (what, case, broken) in cases {
        let mut front = Front::new(4, 32);
        let mut backend = Backend::new();
        front.send(&frame(60, 0)).expect("sent");
        case(&mut front, &mut backend);
        assert_eq!(front.reap(), Err(NetError::Broken(broken)), "{what}");
        assert_eq!(front.queues.broken(), Some(broken));
        assert_eq!(front.send(&frame(60, 1)), Err(NetError::Broken(broken)), "{what}: stays");
        assert_eq!(front.receive(), Err(NetError::Broken(broken)), "{what}: stays");
    }
}

#[test]
fn a_receive_chain_with_extra_info_reassembles() {
    let mut front = Front::new(4, 32);
    let mut backend = Backend::new();
    // A first slot flagged extra-info and more-data, a GSO extra slot, then two fragments.
    let data = frame(3000, 5);
    let mut slots = Vec::new();
    for _ in 0..4 {
        let slot = backend.rx.next_request(&front.rx).expect("a request");
        slots.push(front.rx.read_entry::<netif_rx_request>(slot));
    }
    let write = |front: &mut Front, request: &netif_rx_request, offset: usize, bytes: &[u8]| {
        let grant = front.buffers.grants[&request.gref];
        front.buffers.page_mut(grant.buffer)[offset..offset + bytes.len()].copy_from_slice(bytes);
    };
    write(&mut front, &slots[0], 10, &data[..1000]);
    write(&mut front, &slots[2], 0, &data[1000..2500]);
    write(&mut front, &slots[3], 96, &data[2500..]);
    let answers = [
        netif_rx_response {
            id: slots[0].id,
            offset: 10,
            flags: NETRXF_more_data | NETRXF_extra_info,
            status: 1000,
        },
        netif_rx_response { id: 0, offset: 0, flags: 0, status: 0 },
        netif_rx_response { id: slots[2].id, offset: 0, flags: NETRXF_more_data, status: 1500 },
        netif_rx_response { id: slots[3].id, offset: 96, flags: 0, status: 500 },
    ];
    for (index, answer) in answers.iter().enumerate() {
        let slot = backend.rx.next_response().expect("a slot");
        if index == 1 {
            let gso = netif_extra_info::new_gso(
                xenolith_abi::xen::netif::Gso { size: 1448, r#type: 1, features: 0 },
                false,
            );
            assert_eq!(gso.r#type, XEN_NETIF_EXTRA_TYPE_GSO);
            front.rx.write_entry(slot, &gso);
        } else {
            front.rx.write_entry(slot, answer);
        }
    }
    backend.rx.push_responses(&mut front.rx);
    assert_eq!(front.receive().expect("received"), Some(data));
    assert_eq!(front.rx_posted(), 32, "all four buffers are posted again");
}

#[test]
fn a_bad_receive_response_drops_its_packet_only() {
    // Each case: responses as the backend writes them (id from the request unless given,
    // offset, flags, status), and the counter the drop lands in.
    type Responses = &'static [(Option<u16>, u16, u16, i16)];
    const MORE: u16 = NETRXF_more_data;
    let cases: [(&str, Responses, bool); 7] = [
        ("a negative status", &[(None, 0, 0, NETIF_RSP_ERROR)], true),
        ("data past the page", &[(None, 4000, 0, 200)], true),
        ("a fragment past its page", &[(None, 0, MORE, 100), (None, 0, 0, 4097)], true),
        ("another buffer's id", &[(Some(31), 0, 0, 60)], true),
        ("a chain cut short", &[(None, 0, MORE, 100), (None, 0, MORE, 100)], false),
        (
            "more slots than a packet may take",
            &[(None, 0, MORE, 10); MAX_RX_SLOTS as usize + 1],
            false,
        ),
        ("a missing extra-info slot", &[(None, 0, NETRXF_extra_info, 60)], false),
    ];
    for (what, responses, error) in cases {
        let mut front = Front::new(4, 32);
        let mut backend = Backend::new();
        backend.raw_rx(&mut front, responses);
        assert_eq!(front.receive(), Ok(None), "{what}");
        let stats = front.queues.stats();
        assert_eq!((stats.rx_errors, stats.rx_bad_chains), (error as u64, !error as u64), "{what}");
        assert_eq!(front.rx_posted(), 32, "{what}: every buffer is posted again");
        // The next packet comes through.
        let data = frame(700, 3);
        assert!(backend.deliver(&mut front, &data, 300, 0), "{what}");
        assert_eq!(front.receive(), Ok(Some(data)), "{what}");
    }
}

#[test]
fn a_receive_producer_past_the_requests_breaks_the_queues() {
    let mut front = Front::new(4, 32);
    front.rx.header.rsp_prod = 33;
    let broken = Broken::RxResponses { prod: 33, cons: 0 };
    assert_eq!(front.receive(), Err(NetError::Broken(broken)));
    let mut front = Front::new(4, 32);
    front.rx.header.rsp_prod = 0u32.wrapping_sub(1);
    assert!(matches!(front.receive(), Err(NetError::Broken(Broken::RxResponses { .. }))));
    // A receive buffer the backend still holds when it answers.
    let mut front = Front::new(4, 32);
    let mut backend = Backend::new();
    let gref = front.queues.layout().rx_gref(0);
    front.buffers.grants.get_mut(&gref).expect("granted").busy = true;
    assert!(backend.deliver(&mut front, &frame(60, 0), 60, 0));
    assert_eq!(front.receive(), Err(NetError::Broken(Broken::GrantInUse(gref))));
}

#[test]
fn notifications_follow_the_backends_event_indices() {
    let mut front = Front::new(4, 32);
    let mut backend = Backend::new();
    // The backend wants to hear of every request: each send notifies.
    front.tx.header.req_event = 1;
    assert_eq!(front.send(&frame(60, 0)), Ok(true));
    front.tx.header.req_event = 2;
    assert_eq!(front.send(&frame(60, 0)), Ok(true));
    // It is busy and will look by itself up to request 10.
    front.tx.header.req_event = 10;
    assert_eq!(front.send(&frame(60, 0)), Ok(false));
    // Re-posted receive buffers notify once the backend asks (RING_PUSH_REQUESTS_AND_CHECK_NOTIFY).
    backend.take_tx(&mut front, NETIF_RSP_OKAY);
    front.reap().expect("reaped");
    assert!(backend.deliver(&mut front, &frame(60, 0), 60, 0));
    front.rx.header.req_event = front.rx.header.req_prod + 1;
    let received = front.queues.receive(&mut front.rx, &mut front.buffers).expect("received");
    assert!(received.frame.is_some() && received.notify);
    assert!(backend.deliver(&mut front, &frame(60, 0), 60, 0));
    front.rx.header.req_event = front.rx.header.req_prod + 5;
    let received = front.queues.receive(&mut front.rx, &mut front.buffers).expect("received");
    assert!(received.frame.is_some() && !received.notify);
    // The final check asks to hear of the next response.
    assert!(!front.queues.final_check_rx(&mut front.rx));
    assert_eq!(front.rx.header.rsp_event, front.rx.header.rsp_prod + 1);
}

#[test]
fn raw_requests_go_out_as_given_and_their_answers_are_counted() {
    let mut front = Front::new(4, 32);
    let request = netif_tx_request { gref: 9999, offset: 4000, flags: 0, id: 0, size: 200 };
    front.queues.raw_tx(&mut front.tx, &[request, request]).expect("sent");
    assert_eq!(front.tx.header.req_prod, 2);
    assert_eq!(front.tx.read_entry::<netif_tx_request>(1), request);
    let mut backend = Backend::new();
    for _ in 0..2 {
        backend.tx.next_request(&front.tx);
        let slot = backend.tx.next_response().expect("a slot");
        front.tx.write_entry(slot, &netif_tx_response { id: 0, status: NETIF_RSP_ERROR });
    }
    backend.tx.push_responses(&mut front.tx);
    assert_eq!(front.reap(), Ok(0));
    let stats = front.queues.stats();
    assert_eq!((stats.raw_responses, stats.last_raw_status), (2, Some(NETIF_RSP_ERROR)));
    front.queues.raw_tx_req_prod(&mut front.tx, 1000);
    assert_eq!(front.tx.header.req_prod, 1002);
}

/// Whatever a backend writes in both rings, the queues answer with values: no panic, no access
/// outside a page (the fake pages would panic), each buffer posted once.
#[test]
fn a_random_backend_never_makes_the_queues_panic() {
    let mut seed = 0x2545_f491_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for run in 0..300 {
        let mut front = Front::new(8, 32);
        for step in 0..60 {
            let _ = front.send(&frame(14 + (next() % 4083) as usize, step));
            // The backend writes random bytes in random slots and moves its producers.
            for _ in 0..(next() % 6) {
                let slot = (next() % 256) as usize;
                let bytes = next().to_le_bytes();
                let ring = if next() % 2 == 0 { &mut front.tx } else { &mut front.rx };
                ring.entries[slot][..8].copy_from_slice(&bytes);
                if next() % 3 == 0 {
                    ring.entries[slot][4..6]
                        .copy_from_slice(&((next() % 4200) as u16).to_le_bytes());
                }
            }
            if next() % 4 == 0 {
                let ring = if next() % 2 == 0 { &mut front.tx } else { &mut front.rx };
                let step = if next() % 8 == 0 { next() as u32 } else { (next() % 8) as u32 };
                ring.header.rsp_prod = ring.header.rsp_prod.wrapping_add(step);
            }
            let _ = front.reap();
            let _ = front.receive();
            if front.queues.broken().is_none() {
                assert_eq!(front.rx_posted(), 32, "run {run} step {step}");
            }
        }
    }
}

#[test]
fn test_frames_carry_their_sequence_and_checksum() {
    let (a, b) = ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]);
    let sent = test_frame(&b, &a, 77, 1000);
    assert_eq!(sent.len(), 1000);
    assert_eq!(&sent[..6], &b);
    assert_eq!(&sent[6..12], &a);
    assert_eq!(parse_test_frame(&sent), Ok(77));
    let echo = echo_frame(&sent, &b).expect("long enough");
    assert_eq!((&echo[..6], &echo[6..12]), (&a[..], &b[..]));
    assert_eq!(&echo[12..], &sent[12..]);
    assert_eq!(parse_test_frame(&echo), Ok(77));
    let mut bad = sent.clone();
    bad[500] ^= 1;
    assert_eq!(parse_test_frame(&bad), Err("its checksum does not match its data"));
    assert_ne!(test_frame(&b, &a, 78, 1000)[TEST_HEADER..], sent[TEST_HEADER..]);
    assert_eq!(test_frame(&b, &a, 1, 0).len(), TEST_HEADER);
    assert!(parse_test_frame(&sent[..20]).is_err());
    assert_eq!(echo_frame(&sent[..13], &b), None);
}

/// Takes every transmit packet as Linux's netback does (`xenvif_count_requests`): a chain of
/// slots linked by `NETTXF_more_data`, the first slot's size the packet's; each packet's bytes
/// read through its grants, every slot answered OKAY.
fn take_tx_packets(backend: &mut Backend, front: &mut Front) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    let mut slots: Vec<netif_tx_request> = Vec::new();
    while let Some(slot) = backend.tx.next_request(&front.tx) {
        let request: netif_tx_request = front.tx.read_entry(slot);
        slots.push(request);
        if request.flags & NETTXF_more_data != 0 {
            continue;
        }
        let rest: usize = slots[1..].iter().map(|r| usize::from(r.size)).sum();
        let mut packet = Vec::new();
        for (index, request) in slots.iter().enumerate() {
            let grant = front.buffers.grants.get(&request.gref).copied().expect("granted");
            assert!(grant.readonly, "a transmit buffer is granted read-only");
            let size = if index == 0 {
                usize::from(request.size) - rest
            } else {
                usize::from(request.size)
            };
            let offset = usize::from(request.offset);
            assert!(offset + size <= PAGE_SIZE);
            packet.extend_from_slice(&front.buffers.page(grant.buffer)[offset..offset + size]);
        }
        for request in slots.drain(..) {
            let answer = backend.tx.next_response().expect("a response slot");
            let response = netif_tx_response { id: request.id, status: NETIF_RSP_OKAY };
            front.tx.write_entry(answer, &response);
        }
        packets.push(packet);
    }
    backend.tx.push_responses(&mut front.tx);
    packets
}

#[test]
fn a_zero_copy_sender_sends_its_reserved_buffers_again_without_writing_them_again() {
    let mut front = Front::new(8, 64);
    let mut backend = Backend::new();
    let packet = frame(2 * PAGE_SIZE + 100, 5);
    assert_eq!(front.queues.reserve_tx(9), None, "only 8 buffers");
    let ids = front.queues.reserve_tx(3).expect("3 of 8 free");
    for (&id, piece) in ids.iter().zip(packet.chunks(PAGE_SIZE)) {
        assert!(front.queues.tx_buffer_idle(id));
        front.buffers.write(Buffer::Tx(id), 0, piece);
    }
    let (queues, tx, buffers) = (&mut front.queues, &mut front.tx, &mut front.buffers);
    assert!(queues.send_buffers(tx, buffers, &ids, packet.len()).expect("queued"));
    assert!(ids.iter().all(|&id| !front.queues.tx_buffer_idle(id)), "in flight");
    // In flight: not again until answered.
    let (queues, tx, buffers) = (&mut front.queues, &mut front.tx, &mut front.buffers);
    assert_eq!(queues.send_buffers(tx, buffers, &ids, packet.len()), Err(NetError::TxFull));
    assert_eq!(take_tx_packets(&mut backend, &mut front), std::slice::from_ref(&packet));
    assert_eq!(front.reap(), Ok(3));
    assert!(ids.iter().all(|&id| front.queues.tx_buffer_idle(id)), "answered");
    let tx_grants = front.buffers.grants.values().filter(|g| matches!(g.buffer, Buffer::Tx(_)));
    assert_eq!(tx_grants.count(), 0, "every transmit grant ended at its answer");
    // Reserved for good: `send` has the other five only.
    assert_eq!(front.queues.tx_free.len(), 5);
    // Sent again as they are: the same bytes, nothing written.
    let (queues, tx, buffers) = (&mut front.queues, &mut front.tx, &mut front.buffers);
    queues.send_buffers(tx, buffers, &ids, packet.len()).expect("queued again");
    assert_eq!(take_tx_packets(&mut backend, &mut front), std::slice::from_ref(&packet));
    assert_eq!(front.reap(), Ok(3));
    assert_eq!(front.queues.stats().tx_okay, 6);
    assert_eq!(front.queues.tx_free.len(), 5, "still reserved");
    // A buffer not reserved, a size that does not fill the buffers as named, or one past
    // what a packet may hold, is refused with nothing queued.
    let free = front.queues.tx_free[0];
    let (queues, tx, buffers) = (&mut front.queues, &mut front.tx, &mut front.buffers);
    assert_eq!(queues.send_buffers(tx, buffers, &[free], 64), Err(NetError::TxBusy));
    for size in [PAGE_SIZE * 2, PAGE_SIZE * 3 + 1, ETH_HLEN - 1, MAX_PACKET + 1] {
        let result = queues.send_buffers(tx, buffers, &ids, size);
        assert_eq!(result, Err(NetError::FrameSize(size)));
    }
    assert_eq!(take_tx_packets(&mut backend, &mut front), Vec::<Vec<u8>>::new());
}

#[test]
fn receive_head_reads_only_the_first_bytes_and_says_the_packets_size() {
    let mut front = Front::new(8, 64);
    let mut backend = Backend::new();
    let packet = frame(3 * PAGE_SIZE - 7, 9);
    assert!(backend.deliver(&mut front, &packet, PAGE_SIZE, 0));
    let received = front.queues.receive_head(&mut front.rx, &mut front.buffers, 22).expect("ok");
    assert_eq!(received.frame.as_deref(), Some(&packet[..22]));
    assert_eq!(received.size, packet.len());
    assert_eq!(front.rx_posted(), 64, "every buffer re-posted");
    // A limit past the packet reads it whole, as `receive` does.
    assert!(backend.deliver(&mut front, &packet, PAGE_SIZE, 0));
    let received = front.queues.receive_head(&mut front.rx, &mut front.buffers, MAX_PACKET);
    let received = received.expect("ok");
    assert_eq!((received.frame, received.size), (Some(packet.clone()), packet.len()));
}
