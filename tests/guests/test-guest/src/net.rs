//! The network frontend (`xenolith_runtime::netfront`) on vif 0, against whatever backend the
//! system runs (issue 17's netback):
//!
//! - `net-echo`: connects, prints `NAME: net up <mac>`, then answers every frame addressed to
//!   it with the same frame, source and destination swapped (forever), printing
//!   `NAME: net echoed N` every 100 frames.
//! - `net-send peer=<mac> count=N size=S`: connects, then sends `N` test frames of `S` bytes
//!   (ethertype 0x88b5, a sequence number and a checksum of the data; `netfront_wire::
//!   test_frame`) to `peer`, one at a time: each must come back (an echo) with its data intact
//!   before the next goes; a frame not echoed within [`RETRANSMIT_NS`] is sent again (the
//!   backend may be restarting and drop frames), up to [`ATTEMPTS`] times. Once the first
//!   frame is back it writes its domain's xenstore node `data/net-sending`. With
//!   `until=<xenstore path>` it goes on past `N` until that node exists (looked for every
//!   [`UNTIL_EVERY`] frames, for up to [`UNTIL_NS`]) and then sends [`UNTIL_EVERY`] more, so
//!   whatever a test did before writing the node happened while frames flowed. Ends with
//!   `NAME: PASS net-send <frames sent> frames` (or `NAME: FAIL ...`). Whenever its frontend's or the
//!   backend's `state` is seen to be other than Connected it prints
//!   `NAME: net state frontend=<n> backend=<n>` (`-` for unreadable), so a test can forbid it.
//! - `net-hostile class=<class>`: connects, puts one malformed request of the class on its
//!   transmit ring (the classes of XSA-39, -90, -228 and -270) and notifies, prints
//!   `NAME: net hostile sent <class>`, then watches the backend's `state` and prints
//!   `NAME: net backend state <n>` whenever it changes (a correct backend disconnects the vif:
//!   Closing 5, Closed 6), and `NAME: net hostile response <status>` when the backend answers
//!   the requests. The classes: `bad-gref` (a grant reference it never granted), `bad-offset`
//!   (offset + size past the page), `bad-size` (a fragment larger than what is left of the
//!   packet), `ring-jump` (`req_prod` a thousand slots ahead, more than a ring), `too-many-frags`
//!   (a packet of 22 slots: 21 fragments, past netback's fatal 20), `bad-fragment` (a
//!   packet for `peer=<mac>` whose second slot names a grant it never gave: with `peer` it
//!   first sends the peer one honest frame and waits for its echo, so the switch knows the
//!   peer and the packet goes for it alone), `slot-overflow` (a first
//!   slot whose size, once the fragments are taken out, leaves more than a page in it).
//! - `net-blast peer=<mac> count=N size=S` (`cargo xtask bench net`): connects, waits for
//!   `peer`'s hello (a `net-sink`'s; it also teaches the switch where the sink is), prints
//!   `NAME: net-blast sending`, then sends `N` frames of `S` bytes (a test frame's header with
//!   sequence numbers 0, 1, ...; the data is frame 0's, so only frame 0's checksum holds) back
//!   to back, as fast as its transmit ring takes them, waiting for no answer; then
//!   [`END_MARKERS`] end markers (sequence [`END_MARKER`]) 1 ms apart, and
//!   `NAME: net-blast done N frames`. `count=0` sends forever. With `zerocopy=1` it writes the
//!   frame once into sets of reserved transmit buffers and sends from them again and again,
//!   rewriting only the sequence number (`S` up to 65,535: one slot a page, for a backend with
//!   `feature-sg`).
//! - `net-sink count=N gap_us=G`: connects, broadcasts a hello (sequence [`HELLO`]) every
//!   10 ms until the first frame arrives, then counts the test frames addressed to it: their
//!   number, bytes (whole frames, Ethernet header included) and virtual arrival times. When it
//!   has `N` frames (`count=0`: no limit), an end marker arrives, or no frame came for 2 s, it
//!   prints `NAME: bench net-sink frames=F bytes=B ns=T`: `T` from the first frame's arrival
//!   to the last's, `B` the bytes of the frames after the first (those that arrived within
//!   `T`); then `NAME: bench memcpy bytes=B ns=T`, a plain copy of the same bytes in pieces of
//!   the first frame's size between two buffers of its own heap. Frames the backend dropped
//!   are not counted. With `gap_us=G` it prints `NAME: bench net-gap from=A to=B` whenever
//!   no frame arrived for `G` microseconds or more (the arrivals before and after), for the
//!   backend's kill-to-forwarding downtime. It reads only each frame's header out of its
//!   buffers, unless `verify=1`: then it reads each whole and checks its data against its
//!   checksum (`FAIL` if they differ). It takes packets of several buffers (`feature-sg`).

use alloc::format;
use alloc::rc::Rc;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::Cell;

use xenolith_abi::xen::netif::{netif_tx_request, NETTXF_more_data};
use xenolith_abi::xen::xenbus::XenbusState;
use xenolith_runtime::netfront::{format_mac, Config, Mac, NetError, Netfront};
use xenolith_runtime::netfront_wire::{
    echo_frame, parse_mac, parse_test_frame, test_frame, ETHERTYPE_TEST, ETH_HLEN, MAX_PACKET,
    PAGE_SIZE as PAGE, TEST_HEADER,
};
use xenolith_runtime::xenbus::Xenbus;
use xenolith_runtime::{println, StartInfo};

use crate::xenstore::{connect, now, sleep};

/// How long `net-send` waits for an echo before it sends the frame again (1 s).
const RETRANSMIT_NS: u64 = 1_000_000_000;
/// How many times `net-send` sends one frame before it fails.
const ATTEMPTS: u32 = 60;
/// How often `net-send until=` looks for its node, and how many frames it sends after.
const UNTIL_EVERY: u32 = 64;
/// How long `net-send until=`'s node may take to appear (10 minutes).
const UNTIL_NS: u64 = 600_000_000_000;

/// How long a boot domain waits for its vif's records: the control domain writes those of
/// boot domains once it is up, which may be after this domain started, and `xl
/// network-attach` whenever it is typed.
const RECORDS_NS: u64 = 60_000_000_000;

fn connect_vif(name: &str) -> Option<(Xenbus, Netfront)> {
    connect_vif_with(name, Config::default())
}

/// As [`connect_vif`], with `config`.
fn connect_vif_with(name: &str, config: Config) -> Option<(Xenbus, Netfront)> {
    let (mut bus, _) = connect(name)?;
    let deadline = now() + RECORDS_NS;
    if bus.read("device/vif/0/backend").is_err() {
        println!("{name}: waiting for device/vif/0");
    }
    while bus.read("device/vif/0/backend").is_err() {
        if now() > deadline {
            println!("{name}: FAIL no device/vif/0 records within 60 s");
            return None;
        }
        sleep(10_000_000);
    }
    match Netfront::connect_with(&mut bus, 0, config) {
        Ok(netfront) => {
            println!("{name}: net up {}", format_mac(&netfront.mac()));
            Some((bus, netfront))
        }
        Err(error) => {
            println!("{name}: FAIL connecting vif 0: {error}");
            None
        }
    }
}

/// `net-echo` (module doc).
pub fn echo(name: &str) {
    let Some((_bus, mut netfront)) = connect_vif(name) else { return };
    let own = netfront.mac();
    let (mut echoed, mut errors) = (0u64, 0u64);
    loop {
        let received = netfront.receive(now() + 1_000_000_000);
        if netfront.stats().rx_errors != errors {
            errors = netfront.stats().rx_errors;
            println!("{name}: net dropped {errors} packets the backend marked bad");
        }
        let frame = match received {
            Ok(Some(frame)) => frame,
            Ok(None) => continue,
            Err(error) => {
                println!("{name}: FAIL receiving: {error}");
                return;
            }
        };
        if frame.len() < ETH_HLEN || frame[..6] != own {
            continue;
        }
        let Some(reply) = echo_frame(&frame, &own) else { continue };
        if let Err(error) = netfront.send(&reply) {
            println!("{name}: FAIL echoing: {error}");
            return;
        }
        echoed += 1;
        if echoed.is_multiple_of(100) {
            println!("{name}: net echoed {echoed}");
        }
    }
}

fn state_text(state: Result<Option<XenbusState>, NetError>) -> String {
    match state {
        Ok(Some(state)) => format!("{}", state.number()),
        _ => String::from("-"),
    }
}

/// Prints the frontend's and the backend's states if either is not Connected and they differ
/// from what was printed last.
fn report_states(name: &str, bus: &mut Xenbus, netfront: &Netfront, last: &mut Option<String>) {
    let front = netfront.frontend_state(bus);
    let back = netfront.state(bus);
    let connected = Ok(Some(XenbusState::Connected));
    let now = if front == connected && back == connected {
        None
    } else {
        Some(format!("frontend={} backend={}", state_text(front), state_text(back)))
    };
    if now != *last {
        if let Some(text) = &now {
            println!("{name}: net state {text}");
        }
        *last = now;
    }
}

/// `net-send` (module doc).
pub fn send(name: &str, info: &StartInfo) {
    let Some(peer) = info.bootarg("peer").and_then(|text| parse_mac(text.as_bytes())) else {
        println!("{name}: FAIL net-send needs peer=<mac>");
        return;
    };
    let count: u32 = info.bootarg("count").and_then(|text| text.parse().ok()).unwrap_or(100);
    let size: usize = info.bootarg("size").and_then(|text| text.parse().ok()).unwrap_or(1000);
    if !(TEST_HEADER..=xenolith_runtime::netfront::MAX_FRAME).contains(&size) {
        println!("{name}: FAIL size={size} is outside {TEST_HEADER}..=4096");
        return;
    }
    let until = info.bootarg("until");
    let Some((mut bus, mut netfront)) = connect_vif(name) else { return };
    match send_all(name, &mut bus, &mut netfront, &peer, count, size, until) {
        Ok((sent, retransmits)) => {
            println!("{name}: net-send retransmitted {retransmits} times");
            println!("{name}: PASS net-send {sent} frames");
        }
        Err(why) => println!("{name}: FAIL {why}"),
    }
}

fn send_all(
    name: &str,
    bus: &mut Xenbus,
    netfront: &mut Netfront,
    peer: &Mac,
    count: u32,
    size: usize,
    until: Option<&str>,
) -> Result<(u32, u32), String> {
    let own = netfront.mac();
    let mut last_state = None;
    let mut retransmits = 0;
    // The frames to send: `count`, or (with `until`) more, settled once the node is there.
    let (mut end, mut waiting) = (count, until.is_some());
    let deadline = now() + UNTIL_NS;
    let mut sequence = 0;
    while sequence < end || waiting {
        if let (Some(path), true) = (until, waiting && sequence % UNTIL_EVERY == 0) {
            if bus.read(path).is_ok() {
                (end, waiting) = (end.max(sequence + UNTIL_EVERY), false);
            } else if now() > deadline {
                return Err(format!("{path} did not appear within 10 minutes"));
            }
        }
        let frame = test_frame(peer, &own, sequence, size);
        let mut attempt = 0;
        'attempts: loop {
            if attempt == ATTEMPTS {
                return Err(format!("frame {sequence} was not echoed after {ATTEMPTS} sends"));
            }
            if attempt > 0 {
                retransmits += 1;
                report_states(name, bus, netfront, &mut last_state);
            }
            attempt += 1;
            netfront.send(&frame).map_err(|error| format!("sending frame {sequence}: {error}"))?;
            let deadline = now() + RETRANSMIT_NS;
            while let Some(echo) = netfront
                .receive(deadline)
                .map_err(|error| format!("receiving the echo of {sequence}: {error}"))?
            {
                if echo.len() < TEST_HEADER || echo[..6] != own || echo[6..12] != *peer {
                    continue;
                }
                match parse_test_frame(&echo) {
                    // An echo of an earlier send of an earlier frame.
                    Ok(echoed) if echoed < sequence => continue,
                    Ok(echoed) if echoed == sequence && echo[12..] == frame[12..] => {
                        break 'attempts
                    }
                    Ok(echoed) => {
                        return Err(format!("frame {sequence}'s echo came back as {echoed}"))
                    }
                    Err(why) => return Err(format!("frame {sequence}'s echo: {why}")),
                }
            }
        }
        if sequence == 0 {
            // For a test that acts while frames flow (its killer's `start=`), as the Linux
            // initramfs's sender writes the same node.
            bus.write("data/net-sending", b"1")
                .map_err(|error| format!("writing data/net-sending: {error}"))?;
        }
        if sequence % 64 == 63 {
            report_states(name, bus, netfront, &mut last_state);
        }
        sequence += 1;
    }
    report_states(name, bus, netfront, &mut last_state);
    let stats = netfront.stats();
    if stats.tx_errors + stats.tx_dropped > 0 {
        println!(
            "{name}: net-send backend answered {} errors, {} dropped",
            stats.tx_errors, stats.tx_dropped
        );
    }
    Ok((sequence, retransmits))
}

/// The malformed requests of `class` (module doc), or `None` for `ring-jump` (which moves the
/// producer index instead).
fn hostile_requests(
    netfront: &mut Netfront,
    class: &str,
    peer: Option<Mac>,
) -> Result<Option<Vec<netif_tx_request>>, String> {
    let ungranted = netfront.ungranted_gref();
    let mut data = [0u8; 4096];
    data[..6].copy_from_slice(&peer.unwrap_or([0xff; 6]));
    data[6..12].copy_from_slice(&netfront.mac());
    data[12..14].copy_from_slice(&0x88b5u16.to_be_bytes());
    let mut grant = |index: u16| {
        netfront.grant_raw_buffer(index, &data).map_err(|error| format!("granting: {error}"))
    };
    let request =
        |gref, offset, flags, id, size| netif_tx_request { gref, offset, flags, id, size };
    Ok(Some(match class {
        "bad-gref" => alloc::vec![request(ungranted, 0, 0, 0, 60)],
        "bad-offset" => alloc::vec![request(grant(0)?, 4000, 0, 0, 200)],
        "bad-size" => {
            alloc::vec![
                request(grant(0)?, 0, NETTXF_more_data, 0, 100),
                request(grant(1)?, 0, 0, 1, 200)
            ]
        }
        "too-many-frags" => {
            let slots = 22u16;
            let mut requests = Vec::new();
            for index in 0..slots {
                let more = if index + 1 < slots { NETTXF_more_data } else { 0 };
                let size = if index == 0 { 60 * slots } else { 60 };
                requests.push(request(grant(index)?, 0, more, index, size));
            }
            requests
        }
        "slot-overflow" => alloc::vec![
            request(grant(0)?, 0, NETTXF_more_data, 0, 0xffff),
            request(grant(1)?, 0, 0, 1, 100)
        ],
        "bad-fragment" => {
            // A whole header in the first slot, a grant never given in the second.
            alloc::vec![
                request(grant(1)?, 0, NETTXF_more_data, 1, 200),
                request(ungranted, 0, 0, 2, 100)
            ]
        }
        "ring-jump" => return Ok(None),
        other => return Err(format!("unknown class {other:?}")),
    }))
}

/// Sends `peer` one test frame (raw, transmit buffer 0) and waits up to 20 s for its echo.
fn hello_peer(netfront: &mut Netfront, peer: &Mac) -> Result<(), String> {
    let frame = test_frame(peer, &netfront.mac(), 0, 64);
    let gref = netfront.grant_raw_buffer(0, &frame).map_err(|error| format!("{error}"))?;
    let request = netif_tx_request { gref, offset: 0, flags: 0, id: 0, size: 64 };
    netfront.raw_tx(&[request]).map_err(|error| format!("{error}"))?;
    let deadline = now() + 20_000_000_000;
    loop {
        match netfront.receive(deadline) {
            Ok(Some(echo)) if echo.len() >= ETH_HLEN && echo[6..12] == *peer => return Ok(()),
            Ok(Some(_)) => {}
            Ok(None) => return Err(String::from("no echo from the peer within 20 s")),
            Err(error) => return Err(format!("{error}")),
        }
    }
}

/// `net-hostile` (module doc).
pub fn hostile(name: &str, info: &StartInfo) {
    let class = info.bootarg("class").unwrap_or("");
    let peer = info.bootarg("peer").and_then(|text| parse_mac(text.as_bytes()));
    let Some((mut bus, mut netfront)) = connect_vif(name) else { return };
    if let Some(peer) = peer {
        // The peer's echo of one honest frame first: the switch knows where the peer is
        // before the malformed packet comes, so it goes for the peer alone.
        if let Err(why) = hello_peer(&mut netfront, &peer) {
            return println!("{name}: FAIL net-hostile {class}: {why}");
        }
        println!("{name}: net hostile peer answered");
    }
    let sent = match hostile_requests(&mut netfront, class, peer) {
        Ok(Some(requests)) => netfront.raw_tx(&requests).map_err(|error| format!("{error}")),
        Ok(None) => {
            netfront.raw_tx_req_prod(1000);
            Ok(())
        }
        Err(why) => Err(why),
    };
    if let Err(why) = sent {
        println!("{name}: FAIL net-hostile {class}: {why}");
        return;
    }
    println!("{name}: net hostile sent {class}");
    let changed = Rc::new(Cell::new(true));
    let flag = changed.clone();
    let path = format!("{}/state", netfront.backend_path());
    if let Err(error) = bus.watch(&path, "hostile-backend", move |_| flag.set(true)) {
        println!("{name}: FAIL watching {path}: {error}");
        return;
    }
    let mut last_state = None;
    let mut last_responses = 0;
    loop {
        if changed.replace(false) {
            let state = state_text(netfront.state(&mut bus));
            if last_state.as_ref() != Some(&state) {
                println!("{name}: net backend state {state}");
                last_state = Some(state);
            }
        }
        // Answers to the requests (a backend that takes them as errors, not as fatal).
        if netfront.broken().is_none() {
            let _ = netfront.reap();
        }
        let stats = netfront.stats();
        if stats.raw_responses != last_responses {
            last_responses = stats.raw_responses;
            let status = stats.last_raw_status.unwrap_or_default();
            println!("{name}: net hostile response {status}");
        }
        if bus.wait_watches(Some(now() + 100_000_000)).is_err() {
            sleep(100_000_000);
        }
    }
}

/// The sequence number of `net-blast`'s end markers.
const END_MARKER: u32 = u32::MAX;
/// The sequence number of `net-sink`'s hello.
const HELLO: u32 = u32::MAX - 1;
/// How many end markers `net-blast` sends (the backend may drop some).
const END_MARKERS: u32 = 8;
/// How long `net-sink` waits for the next frame before it reports what it has (2 s).
const SINK_IDLE_NS: u64 = 2_000_000_000;
/// How often `net-sink` broadcasts its hello until the first frame comes (10 ms).
const HELLO_NS: u64 = 10_000_000;

/// The sequence number of a test frame addressed to `own`, if `frame` is one.
fn bench_sequence(frame: &[u8], own: &Mac) -> Option<u32> {
    if frame.len() < TEST_HEADER || frame[..6] != *own {
        return None;
    }
    if frame[12..14] != ETHERTYPE_TEST.to_be_bytes() {
        return None;
    }
    Some(u32::from_be_bytes([frame[14], frame[15], frame[16], frame[17]]))
}

/// `net-blast` (module doc).
pub fn blast(name: &str, info: &StartInfo) {
    let Some(peer) = info.bootarg("peer").and_then(|text| parse_mac(text.as_bytes())) else {
        println!("{name}: FAIL net-blast needs peer=<mac>");
        return;
    };
    let count = crate::xenstore::arg(info, "count", 10_000);
    let size: usize = info.bootarg("size").and_then(|text| text.parse().ok()).unwrap_or(1400);
    let zero_copy = info.bootarg("zerocopy") == Some("1");
    let largest = if zero_copy { MAX_PACKET } else { xenolith_runtime::netfront::MAX_FRAME };
    if !(TEST_HEADER..=largest).contains(&size) {
        println!("{name}: FAIL size={size} is outside {TEST_HEADER}..={largest}");
        return;
    }
    let config = Config { tx_buffers: ZERO_COPY_BUFFERS, ..Config::default() };
    let Some((_bus, mut netfront)) = connect_vif_with(name, config) else { return };
    let own = netfront.mac();
    let deadline = now() + RECORDS_NS;
    loop {
        match netfront.receive(deadline) {
            Ok(Some(frame)) if frame.len() >= TEST_HEADER && frame[6..12] == peer => {
                let sequence = u32::from_be_bytes([frame[14], frame[15], frame[16], frame[17]]);
                if frame[12..14] == ETHERTYPE_TEST.to_be_bytes() && sequence == HELLO {
                    break;
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => return println!("{name}: FAIL no hello from the sink within 20 s"),
            Err(error) => return println!("{name}: FAIL receiving the hello: {error}"),
        }
    }
    let mode = if zero_copy { "zero-copy, " } else { "" };
    println!("{name}: net-blast sending {count} frames of {size} bytes ({mode}one pCPU)");
    let mut frame = test_frame(&peer, &own, 0, size);
    let sent = if zero_copy {
        blast_zero_copy(&mut netfront, &frame, count)
    } else {
        let mut sequence = 0u32;
        while count == 0 || sequence < count {
            frame[14..18].copy_from_slice(&sequence.to_be_bytes());
            if let Err(error) = netfront.send(&frame) {
                return println!("{name}: FAIL sending frame {sequence}: {error}");
            }
            sequence = (sequence + 1) % HELLO;
        }
        Ok(())
    };
    if let Err(error) = sent {
        return println!("{name}: FAIL sending: {error}");
    }
    frame.truncate(xenolith_runtime::netfront::MAX_FRAME);
    frame[14..18].copy_from_slice(&END_MARKER.to_be_bytes());
    for _ in 0..END_MARKERS {
        if let Err(error) = netfront.send(&frame) {
            return println!("{name}: FAIL sending an end marker: {error}");
        }
        sleep(1_000_000);
    }
    let stats = netfront.stats();
    println!(
        "{name}: net-blast done {count} frames (backend answered {} errors, {} dropped)",
        stats.tx_errors, stats.tx_dropped
    );
}

/// Transmit buffers of `net-blast`: [`ZERO_COPY_SETS`] packets of 64 KiB, and 16 for `send`.
const ZERO_COPY_BUFFERS: u16 = 144;
/// How many packets `net-blast zerocopy=1` keeps in flight at most.
const ZERO_COPY_SETS: usize = 8;

/// `net-blast zerocopy=1`: `frame` written once into [`ZERO_COPY_SETS`] sets of reserved
/// buffers, then sent from them `count` times (0: for ever), each time with only its sequence
/// number written again: the sender's bytes are not copied per packet (as Linux's pktgen
/// sends one skb again and again).
fn blast_zero_copy(netfront: &mut Netfront, frame: &[u8], count: u32) -> Result<(), NetError> {
    let pages = frame.len().div_ceil(PAGE);
    let mut sets = Vec::new();
    for _ in 0..ZERO_COPY_SETS {
        let ids = netfront.reserve_tx_buffers(pages)?;
        for (&id, piece) in ids.iter().zip(frame.chunks(PAGE)) {
            netfront.write_tx_buffer(id, 0, piece)?;
        }
        sets.push(ids);
    }
    let mut sequence = 0u32;
    while count == 0 || sequence < count {
        let ids = &sets[sequence as usize % ZERO_COPY_SETS];
        netfront.await_tx_idle(ids)?;
        netfront.write_tx_buffer(ids[0], 14, &sequence.to_be_bytes())?;
        netfront.send_buffers(ids, frame.len())?;
        sequence = (sequence + 1) % HELLO;
    }
    Ok(())
}

/// `net-sink` (module doc).
pub fn sink(name: &str, info: &StartInfo) {
    let count = u64::from(crate::xenstore::arg(info, "count", 0));
    let gap_ns = u64::from(crate::xenstore::arg(info, "gap_us", 0)) * 1000;
    let verify = info.bootarg("verify") == Some("1");
    // Packets of more than a page come in several buffers.
    let config = Config { rx_buffers: 256, sg: true, ..Config::default() };
    let Some((_bus, mut netfront)) = connect_vif_with(name, config) else { return };
    let own = netfront.mac();
    let hello = test_frame(&[0xff; 6], &own, HELLO, 64);
    let (mut frames, mut bytes, mut first, mut last, mut size) = (0u64, 0u64, 0, 0, 0);
    let mut next_hello = 0;
    loop {
        if frames == 0 && now() >= next_hello {
            if let Err(error) = netfront.send(&hello) {
                return println!("{name}: FAIL sending the hello: {error}");
            }
            next_hello = now() + HELLO_NS;
        }
        let deadline = if frames == 0 { next_hello } else { last + SINK_IDLE_NS };
        // Only the header is read out of the buffers (unless it verifies the data).
        let limit = if verify { MAX_PACKET } else { TEST_HEADER };
        let (frame, frame_size) = match netfront.receive_head(deadline, limit) {
            Ok(Some(received)) => received,
            Ok(None) if frames > 0 && now() >= last + SINK_IDLE_NS => {
                println!("{name}: net-sink no frame for 2 s; reporting");
                break;
            }
            Ok(None) => continue,
            Err(error) => return println!("{name}: FAIL receiving: {error}"),
        };
        match bench_sequence(&frame, &own) {
            Some(END_MARKER) if frames > 0 => break,
            Some(END_MARKER | HELLO) | None => continue,
            Some(_) => {}
        }
        if verify {
            if let Err(why) = parse_test_frame(&frame) {
                return println!("{name}: FAIL frame {frames} of {frame_size} bytes: {why}");
            }
        }
        let at = now();
        if frames == 0 {
            (first, size) = (at, frame_size);
        } else {
            bytes += frame_size as u64;
            if gap_ns > 0 && at - last >= gap_ns {
                println!("{name}: bench net-gap from={last} to={at}");
            }
        }
        last = at;
        frames += 1;
        if frames == count {
            break;
        }
    }
    println!("{name}: bench net-sink frames={frames} bytes={bytes} ns={}", last - first);
    let (copied, ns) = memcpy(bytes, size);
    println!("{name}: bench memcpy bytes={copied} ns={ns}");
    println!("{name}: PASS net-sink");
}

/// Copies `bytes` (rounded down to whole pieces) in `piece`-byte pieces from one heap buffer to
/// another: the bytes copied and the virtual ns it took.
fn memcpy(bytes: u64, piece: usize) -> (u64, u64) {
    const SPAN: usize = 64 * 1024;
    let piece = piece.clamp(1, SPAN);
    let source: Vec<u8> = (0..SPAN).map(|index| index as u8).collect();
    let mut target = alloc::vec![0u8; SPAN];
    let pieces = bytes / piece as u64;
    let start = now();
    let mut offset = 0;
    for _ in 0..pieces {
        if offset + piece > SPAN {
            offset = 0;
        }
        let from = core::hint::black_box(&source[offset..offset + piece]);
        target[offset..offset + piece].copy_from_slice(from);
        core::hint::black_box(&mut target);
        offset += piece;
    }
    (pieces * piece as u64, now() - start)
}
