//! Grant-table behaviours of the test guest:
//!
//! - `grant-granter` (`peer=<id>`, optionally `witness=<id>`): grants the peer a writable page
//!   (ref 8), a read-only page (ref 9), a ring page (ref 10), the writable page again (ref 11,
//!   which the peer never maps) and 1 MiB in 256 pages (refs 16..272), and the witness a page
//!   read-only (ref 13); leaves ref 12 unwritten; offers the peer event port 1; checks its
//!   grants cannot be ended while mapped, then that the peer's write and its 1 MiB copy arrived
//!   (the checksum the peer announces on the ring) and every grant ends once the peer unmapped;
//!   with the witness, see below;
//! - `grant-mapper` (`peer=<id>`): binds to the granter's port 1, maps, reads and writes those
//!   grants, copies 1 MiB out of and into them, times the copies and map/unmap pairs, announces
//!   the checksum of what it wrote on the ring, unmaps everything;
//! - `grant-errors` (`peer=<id>`, the granter; `port=<p>`, the port the granter offers it as
//!   its witness): every error path of `grant_table_op` named by the acceptance tests, mapping
//!   grants of the granter that are not its own (pinned for the mapper, granted to the mapper,
//!   never granted) with Xen's answer for each, a read-only grant to itself, and last a write
//!   through its read-only mapping of the granter's ref 13, which must crash this guest alone;
//!   the granter then checks that the grant was released with the crashed guest
//!   (`GTF_reading` clear), its page unchanged, and that it can end the grant and go on;
//! - `grant-victim-granter`, `grant-victim-mapper` (`peer=<id>`): the granter powers off while
//!   the mapper maps its page; the page must keep its contents and unmap cleanly.
//!
//! The two sides meet as in `events.rs`: the granter offers port 1 once its grants are in place,
//! the mapper binds to it (retrying while it is not offered yet), and from then on they take
//! turns, each waiting for the other's event with `SCHEDOP_poll`. The witness is fitted into
//! the mapper's first turn: the granter offers it port 2 only once the mapper has mapped refs
//! 8-10, answers the mapper only after the witness's event (so ref 8 stays pinned for the
//! mapper throughout the witness's checks), and answers the witness (which may then write)
//! only after it has seen the witness's read-only mapping in ref 13's flags.

use alloc::vec::Vec;

use xenolith_abi::ring::{BackRing, FrontRing};
use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::event_channel as ec;
use xenolith_abi::xen::grant_table::{self as gt, gnttab_copy, gnttab_copy_ptr};
use xenolith_abi::xen::hypercall::DOMID_SELF;
use xenolith_runtime::events::{self, Port};
use xenolith_runtime::grants::{self, GrantError, SharedPage, SharedRing, MAP_AREA, PAGE_SIZE};
use xenolith_runtime::{hypercall, println, StartInfo};

/// The writable page, the read-only page, the ring page, and the first of the 1 MiB.
const REF_RW: u32 = 8;
const REF_RO: u32 = 9;
const REF_RING: u32 = 10;
/// The writable page again, granted to the mapper, which never maps it.
const REF_UNMAPPED: u32 = 11;
/// An entry inside the granter's table that it never writes (flags 0).
const REF_NEVER: u32 = 12;
/// A page granted read-only to the witness (the errors guest), which writes through its
/// mapping of it and must be crashed alone.
const REF_SHOWN: u32 = 13;
const REF_BLOCK: u32 = 16;
/// 1 MiB of pages.
const BLOCK_PAGES: usize = 256;
/// Pattern seeds: the writable page, the read-only page, the granter's 1 MiB, the mapper's.
const SEED_RW: u64 = 0x5257;
const SEED_RO: u64 = 0x524F;
const SEED_IN: u64 = 0x4752_414E_5445_5200;
const SEED_OUT: u64 = 0x4D41_5050_4552_0000;
/// Where the mapper writes into the writable page, and what.
const MARKER_OFFSET: usize = 0x800;
const MARKER: u64 = 0x4D41_5050_4544_2121;
/// Map/unmap pairs timed.
const MAP_ROUNDS: u32 = 1000;
/// Ring entries: one 64-bit checksum.
const RING_ENTRY: usize = 8;

fn arg(info: &StartInfo, key: &str, default: u32) -> u32 {
    info.bootarg(key).and_then(|value| value.parse().ok()).unwrap_or(default)
}

fn now() -> u64 {
    crate::guest::nanoseconds(crate::guest::counter())
}

/// Word `word` of page `page` of the pattern `seed`.
fn pattern(seed: u64, page: usize, word: usize) -> u64 {
    (seed ^ ((page as u64) << 32 | word as u64)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

fn fill(page: SharedPage, seed: u64, index: usize) {
    for word in 0..PAGE_SIZE as usize / 8 {
        page.write_u64(word * 8, pattern(seed, index, word));
    }
}

/// Whether `page` holds pattern `seed` for page `index`, leaving out the marker word if `marked`.
fn holds(page: SharedPage, seed: u64, index: usize, marked: bool) -> bool {
    (0..PAGE_SIZE as usize / 8).all(|word| {
        (marked && word * 8 == MARKER_OFFSET)
            || page.read_u64(word * 8) == pattern(seed, index, word)
    })
}

/// An order-sensitive checksum of `pages`' contents.
fn checksum(pages: &[SharedPage]) -> u64 {
    let mut sum = 0u64;
    for page in pages {
        for word in 0..PAGE_SIZE as usize / 8 {
            sum = sum.rotate_left(7) ^ page.read_u64(word * 8);
        }
    }
    sum
}

/// The checksum of [`BLOCK_PAGES`] pages of pattern `seed`.
fn expected_checksum(seed: u64) -> u64 {
    let mut sum = 0u64;
    for page in 0..BLOCK_PAGES {
        for word in 0..PAGE_SIZE as usize / 8 {
            sum = sum.rotate_left(7) ^ pattern(seed, page, word);
        }
    }
    sum
}

fn allocate(count: usize) -> Option<Vec<SharedPage>> {
    (0..count).map(|_| SharedPage::allocate()).collect()
}

/// Waits (in `SCHEDOP_poll`) until `port` is pending, at most `seconds`, and takes the event.
fn wait(port: Port, seconds: u64) -> bool {
    let deadline = now() + seconds * 1_000_000_000;
    loop {
        if port.take_pending() {
            return true;
        }
        if now() >= deadline {
            return false;
        }
        let _ = events::poll(&[port], deadline);
    }
}

/// Binds to port `remote_port` of `peer`, retrying for up to 60 s while the peer has not
/// offered it yet, and takes the event binding leaves pending.
fn bind(name: &str, peer: u16, remote_port: u32) -> Option<Port> {
    let deadline = now() + 60_000_000_000;
    loop {
        match events::bind_interdomain(peer, remote_port) {
            Ok(port) => {
                port.take_pending();
                return Some(port);
            }
            Err(XenError::EINVAL) if now() < deadline => {
                hypercall::sched_op(xenolith_abi::xen::sched::SCHEDOP_yield, 0);
            }
            Err(error) => {
                println!("{name}: FAIL bind_interdomain to d{peer} port {remote_port}: {error}");
                return None;
            }
        }
    }
}

/// Checks `result` is `expected`; prints and counts a failure otherwise.
fn check<T: core::fmt::Debug, E: core::fmt::Debug + PartialEq>(
    name: &str,
    failures: &mut u32,
    what: &str,
    result: Result<T, E>,
    expected: Result<(), E>,
) {
    let ok = match (&result, &expected) {
        (Ok(_), Ok(())) => true,
        (Err(got), Err(want)) => got == want,
        _ => false,
    };
    if ok {
        println!("{name}: {what} -> {result:?} as expected");
    } else {
        *failures += 1;
        println!("{name}: FAIL {what} -> {result:?}, expected {expected:?}");
    }
}

/// A grant entry's `(flags, domid)` (or its absence) for a failure message.
struct Header(Option<(u16, u16)>);

impl core::fmt::Display for Header {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some((flags, domid)) => write!(f, "flags {flags:#x}, domid {domid}"),
            None => f.write_str("no entry"),
        }
    }
}

/// Counts and reports a failed condition.
fn require(name: &str, failures: &mut u32, holds: bool, what: core::fmt::Arguments<'_>) {
    if !holds {
        *failures += 1;
        println!("{name}: FAIL {what}");
    }
}

/// A raw hypercall result as a `Result`.
fn answer(value: i64) -> Result<i64, XenError> {
    match XenError::from_return(value) {
        Some(error) if value < 0 => Err(error),
        _ => Ok(value),
    }
}

fn copy_end(domid: u16, frame: u64, is_gref: bool) -> gnttab_copy_ptr {
    let mut end = gnttab_copy_ptr { domid, ..Default::default() };
    if is_gref {
        end.set_gref(frame as u32);
    } else {
        end.set_gmfn(frame);
    }
    end
}

/// One segment: a whole page, `source` and `dest` each a grant of `peer` or a frame of ours.
fn page_copy(source: (u16, u64, bool), dest: (u16, u64, bool)) -> gnttab_copy {
    let flags = if source.2 { gt::GNTCOPY_source_gref } else { 0 }
        | if dest.2 { gt::GNTCOPY_dest_gref } else { 0 };
    gnttab_copy {
        source: copy_end(source.0, source.1, source.2),
        dest: copy_end(dest.0, dest.1, dest.2),
        len: PAGE_SIZE as u16,
        flags,
        ..Default::default()
    }
}

/// Runs `segments` as one `GNTTABOP_copy`: how many failed (the hypercall failing fails all).
fn run_copy(name: &str, segments: &mut [gnttab_copy]) -> u32 {
    let result = grants::copy(segments);
    if result != 0 {
        println!("{name}: FAIL GNTTABOP_copy -> {result}");
        return segments.len() as u32;
    }
    let failed = segments.iter().filter(|segment| segment.status != gt::GNTST_okay).count();
    if let Some(segment) = segments.iter().find(|segment| segment.status != gt::GNTST_okay) {
        println!(
            "{name}: FAIL {failed} copy segment(s) failed, the first with {}",
            GrantError::Status(segment.status)
        );
    }
    failed as u32
}

pub fn granter(name: &str, info: &StartInfo) {
    let peer = arg(info, "peer", 1) as u16;
    let witness = info.bootarg("witness").and_then(|value| value.parse::<u16>().ok());
    if let Err(error) = events::init() {
        return println!("{name}: FAIL mapping shared info: {error}");
    }
    if let Err(error) = grants::init(1) {
        return println!("{name}: FAIL mapping the grant table: {error}");
    }
    let Some(pages) = allocate(4 + BLOCK_PAGES) else {
        return println!("{name}: FAIL out of memory for the pages to grant");
    };
    let (rw, ro, ring_page, shown, block) = (pages[0], pages[1], pages[2], pages[3], &pages[4..]);
    fill(rw, SEED_RW, 0);
    fill(ro, SEED_RO, 0);
    fill(shown, SEED_RO, 1);
    let mut ring = SharedRing::new(ring_page, RING_ENTRY);
    ring.init();
    for (index, &page) in block.iter().enumerate() {
        fill(page, SEED_IN, index);
    }
    let mut grants = alloc::vec![
        (REF_RW, rw, false),
        (REF_RO, ro, true),
        (REF_RING, ring_page, false),
        (REF_UNMAPPED, rw, false),
    ];
    for (index, &page) in block.iter().enumerate() {
        grants.push((REF_BLOCK + index as u32, page, false));
    }
    for &(gref, page, readonly) in &grants {
        if let Err(error) = grants::grant_access(gref, peer, page.gfn(), readonly) {
            return println!("{name}: FAIL granting ref {gref}: {error}");
        }
    }
    if let Some(witness) = witness {
        if let Err(error) = grants::grant_access(REF_SHOWN, witness, shown.gfn(), true) {
            return println!("{name}: FAIL granting ref {REF_SHOWN} to d{witness}: {error}");
        }
    }
    let mut failures = 0;
    let f = &mut failures;
    // The errors guest maps ref 12 as a reference in range that was never granted.
    let never = grants::entry_header(REF_NEVER);
    require(
        name,
        f,
        never == Some((0, 0)),
        format_args!("ref {REF_NEVER} is not a never-granted entry: {}", Header(never)),
    );
    // Offered only now: the peer's bind succeeding tells it the grants are in place.
    let port = match events::alloc_unbound(DOMID_SELF, peer) {
        Ok(port) => port,
        Err(error) => return println!("{name}: FAIL alloc_unbound: {error}"),
    };
    println!(
        "{name}: granted refs 8, 9 (read-only), 10, 11 and 16..{} to d{peer}; offered port {}",
        REF_BLOCK + BLOCK_PAGES as u32,
        port.0
    );
    // Turn 1: the mapper holds refs 8, 9 and 10 mapped; none of them may end.
    if !wait(port, 60) {
        return println!("{name}: FAIL no event from the mapper after it mapped");
    }
    for gref in [REF_RW, REF_RO, REF_RING] {
        require(
            name,
            f,
            !grants::end_access(gref),
            format_args!("ended ref {gref} while the peer maps it"),
        );
    }
    // The witness (the errors guest) gets its port only now, while the mapper holds ref 8 and
    // waits for our answer: its checks see ref 8 pinned for the mapper, ref 11 granted to the
    // mapper and not pinned, ref 12 never granted. Its event says it is done with them and
    // holds ref 13 mapped read-only; then it may write through that mapping.
    let witness_port = match witness {
        Some(witness) => match shown_to_witness(name, f, witness) {
            Some(witness_port) => Some((witness, witness_port)),
            None => return,
        },
        None => None,
    };
    if let Err(error) = port.send() {
        return println!("{name}: FAIL send: {error}");
    }
    if let Some((witness, witness_port)) = witness_port {
        if let Err(error) = witness_port.send() {
            return println!("{name}: FAIL send to d{witness}: {error}");
        }
    }
    // Turn 2: the mapper copied, wrote, announced and unmapped everything.
    if !wait(port, 120) {
        return println!("{name}: FAIL no event from the mapper when done");
    }
    require(
        name,
        f,
        rw.read_u64(MARKER_OFFSET) == MARKER && holds(rw, SEED_RW, 0, true),
        format_args!("the mapper's write is not in ref 8: {:#x}", rw.read_u64(MARKER_OFFSET)),
    );
    require(name, f, holds(ro, SEED_RO, 0, false), format_args!("read-only ref 9 changed"));
    let copied_in = checksum(block);
    let mut back = BackRing::new(ring.size());
    let announced = back.next_request(&ring).map(|slot| ring.read::<u64>(slot));
    require(
        name,
        f,
        announced == Some(copied_in) && copied_in == expected_checksum(SEED_OUT),
        format_args!(
            "the mapper announced {announced:x?}; refs 16.. hold {copied_in:#x}, expected {:#x}",
            expected_checksum(SEED_OUT)
        ),
    );
    let unended: Vec<u32> =
        grants.iter().map(|grant| grant.0).filter(|&gref| !grants::end_access(gref)).collect();
    require(
        name,
        f,
        unended.is_empty(),
        format_args!("{} grant(s) did not end after the unmap: {unended:?}", unended.len()),
    );
    if failures != 0 {
        return println!("{name}: FAIL {failures} granter check(s)");
    }
    println!(
        "{name}: PASS granted, saw the mapper's write, 1 MiB copied in (checksum {copied_in:#x}), ended {} grants",
        grants.len()
    );
    if let Some((witness, witness_port)) = witness_port {
        after_the_writer(name, peer, witness, witness_port, shown);
    }
}

/// The granter's turn with the witness `witness`: offers it a port and waits for its event
/// (it has mapped ref [`REF_SHOWN`] read-only), then checks the entry says so: the port, or
/// `None` after printing why not.
fn shown_to_witness(name: &str, f: &mut u32, witness: u16) -> Option<Port> {
    let witness_port = match events::alloc_unbound(DOMID_SELF, witness) {
        Ok(port) => port,
        Err(error) => {
            println!("{name}: FAIL alloc_unbound for d{witness}: {error}");
            return None;
        }
    };
    println!(
        "{name}: granted ref {REF_SHOWN} read-only to d{witness}; offered port {}",
        witness_port.0
    );
    if !wait(witness_port, 60) {
        println!("{name}: FAIL no event from d{witness} after its checks");
        return None;
    }
    // A read-only mapping sets GTF_reading alone (`_set_status_v1`, grant_table.c:786-796).
    let mapped = grants::entry_header(REF_SHOWN);
    require(
        name,
        f,
        mapped == Some((gt::GTF_permit_access | gt::GTF_readonly | gt::GTF_reading, witness)),
        format_args!("ref {REF_SHOWN} mapped read-only by d{witness} reads {}", Header(mapped)),
    );
    require(
        name,
        f,
        !grants::end_access(REF_SHOWN),
        format_args!("ended ref {REF_SHOWN} while d{witness} maps it"),
    );
    Some(witness_port)
}

/// After the witness wrote through its read-only mapping of [`REF_SHOWN`] and was crashed:
/// waits for its destruction (our port to it turns unbound, `evtchn_destroy`), then checks
/// the grant was released, the page is unchanged, and the grant ends and can be given again
/// (to `peer`, and ended again).
fn after_the_writer(name: &str, peer: u16, witness: u16, witness_port: Port, shown: SharedPage) {
    let deadline = now() + 60_000_000_000;
    loop {
        match events::status(DOMID_SELF, witness_port.0) {
            Ok(status) if status.status == ec::EVTCHNSTAT_unbound => break,
            Ok(status) if status.status == ec::EVTCHNSTAT_interdomain && now() < deadline => {
                hypercall::sched_op(xenolith_abi::xen::sched::SCHEDOP_yield, 0);
            }
            other => return println!("{name}: FAIL waiting for d{witness} to go: {other:?}"),
        }
    }
    let mut failures = 0;
    let f = &mut failures;
    // Xen's `domain_kill` releases the dying domain's grant mappings in `domain_teardown`
    // (`gnttab_release_mappings`, domain.c:432, grant_table.c:3819, whose
    // `reduce_status_for_pin`, :923, clears GTF_reading with the last pin) before
    // `evtchn_destroy` (domain.c:968-971): once our port is unbound, the entry reads again as we
    // wrote it.
    let released = grants::entry_header(REF_SHOWN);
    require(
        name,
        f,
        released == Some((gt::GTF_permit_access | gt::GTF_readonly, witness)),
        format_args!("ref {REF_SHOWN} reads {} after d{witness} was destroyed", Header(released)),
    );
    require(
        name,
        f,
        holds(shown, SEED_RO, 1, false),
        format_args!("the page of read-only ref {REF_SHOWN} changed"),
    );
    require(
        name,
        f,
        grants::end_access(REF_SHOWN),
        format_args!("ref {REF_SHOWN} did not end after d{witness} was destroyed"),
    );
    let regranted = grants::grant_access(REF_SHOWN, peer, shown.gfn(), true)
        .map(|()| grants::end_access(REF_SHOWN));
    require(
        name,
        f,
        regranted == Ok(true),
        format_args!("granting ref {REF_SHOWN} again and ending it: {regranted:?}"),
    );
    let size = grants::query_size(DOMID_SELF);
    require(name, f, size.is_ok(), format_args!("query_size of ourselves: {size:?}"));
    if failures == 0 {
        println!(
            "{name}: PASS d{witness} crashed and destroyed; its read-only mapping of ref {REF_SHOWN} released (flags {:#x}), the page unchanged, the grant ended and given again",
            released.map_or(0, |(flags, _)| flags)
        );
    } else {
        println!("{name}: FAIL {failures} check(s) after d{witness} was crashed");
    }
}

pub fn mapper(name: &str, info: &StartInfo) {
    let peer = arg(info, "peer", 0) as u16;
    if let Err(error) = events::init() {
        return println!("{name}: FAIL mapping shared info: {error}");
    }
    let Some(port) = bind(name, peer, 1) else { return };
    println!("{name}: bound port {} to d{peer} port 1", port.0);
    let mut failures = 0;
    let f = &mut failures;
    let addresses = [MAP_AREA, MAP_AREA + PAGE_SIZE, MAP_AREA + 2 * PAGE_SIZE];
    let mut handles = [0; 3];
    for (index, (gref, readonly)) in
        [(REF_RW, false), (REF_RO, true), (REF_RING, false)].into_iter().enumerate()
    {
        match grants::map(peer, gref, addresses[index], readonly) {
            Ok(handle) => handles[index] = handle,
            Err(error) => return println!("{name}: FAIL mapping ref {gref} of d{peer}: {error}"),
        }
    }
    // SAFETY: refs 8, 9 and 10 are mapped at these addresses (checked above) until the unmaps
    // at the end; ref 9 is only read.
    let [rw, ro, ring_page] = addresses.map(|address| unsafe { SharedPage::at(address) });
    require(name, f, holds(rw, SEED_RW, 0, false), format_args!("ref 8 lacks its pattern"));
    rw.write_u64(MARKER_OFFSET, MARKER);
    require(name, f, holds(ro, SEED_RO, 0, false), format_args!("ref 9 lacks its pattern"));
    if let Err(error) = port.send() {
        return println!("{name}: FAIL send: {error}");
    }
    if !wait(port, 60) {
        return println!("{name}: FAIL no answer from the granter");
    }
    // 1 MiB out of refs 16.. into our own pages, then 1 MiB of ours into them.
    let Some(own) = allocate(BLOCK_PAGES) else {
        return println!("{name}: FAIL out of memory for 1 MiB");
    };
    let segment = |index: usize, inward: bool| {
        let grant = (peer, u64::from(REF_BLOCK) + index as u64, true);
        let frame = (DOMID_SELF, u64::from(own[index].gfn()), false);
        if inward {
            page_copy(grant, frame)
        } else {
            page_copy(frame, grant)
        }
    };
    let mut segments: Vec<gnttab_copy> =
        (0..BLOCK_PAGES).map(|index| segment(index, true)).collect();
    let start = crate::guest::counter();
    *f += run_copy(name, &mut segments);
    let copy_in = crate::guest::counter() - start;
    require(
        name,
        f,
        checksum(&own) == expected_checksum(SEED_IN),
        format_args!("the 1 MiB copied out of refs 16.. has the wrong checksum"),
    );
    for (index, &page) in own.iter().enumerate() {
        fill(page, SEED_OUT, index);
    }
    let mut segments: Vec<gnttab_copy> =
        (0..BLOCK_PAGES).map(|index| segment(index, false)).collect();
    let start = crate::guest::counter();
    *f += run_copy(name, &mut segments);
    let copy_out = crate::guest::counter() - start;
    let per_kib = crate::guest::nanoseconds(copy_in + copy_out) / (2 * BLOCK_PAGES as u64 * 4);
    println!("{name}: bench grant-copy {per_kib} ns per KiB (1 MiB each way, 4 KiB segments)");
    // Map and unmap ref 8 again and again (a second mapping beside the one held).
    let spare = MAP_AREA + 3 * PAGE_SIZE;
    let start = crate::guest::counter();
    for round in 0..MAP_ROUNDS {
        let done =
            grants::map(peer, REF_RW, spare, false).and_then(|handle| grants::unmap(spare, handle));
        if let Err(error) = done {
            *f += 1;
            println!("{name}: FAIL map/unmap round {round}: {error}");
            break;
        }
    }
    let per_pair =
        crate::guest::nanoseconds(crate::guest::counter() - start) / u64::from(MAP_ROUNDS);
    println!("{name}: bench grant-map-unmap {per_pair} ns ({MAP_ROUNDS} map + unmap pairs)");
    // Announce on the ring the checksum of what we copied into refs 16.., then unmap all.
    let mut ring = SharedRing::new(ring_page, RING_ENTRY);
    let mut front = FrontRing::new(ring.size());
    match front.next_request() {
        Some(slot) => {
            ring.write(slot, &checksum(&own));
            front.push_requests(&mut ring);
        }
        None => require(name, f, false, format_args!("the granter's ring is full")),
    }
    for (index, &address) in addresses.iter().enumerate() {
        check(name, f, "unmap", grants::unmap(address, handles[index]), Ok(()));
    }
    if failures == 0 {
        println!("{name}: PASS mapped, read, wrote, copied 1 MiB each way");
    } else {
        println!("{name}: FAIL {failures} mapper check(s)");
    }
    if let Err(error) = port.send() {
        println!("{name}: FAIL send: {error}");
    }
}

pub fn errors(name: &str, info: &StartInfo) {
    let peer = arg(info, "peer", 0) as u16;
    if let Err(error) = events::init() {
        return println!("{name}: FAIL mapping shared info: {error}");
    }
    let mut failures = 0;
    let f = &mut failures;
    let status = |status| Err(GrantError::Status(status));
    // The peer offers us a port only once its mapper holds ref 8 mapped, and holds its answer
    // to the mapper (so the mapping stays) until our event on this port: binding to it is our
    // sign that ref 8 is pinned for the mapper, ref 11 granted to the mapper but not mapped,
    // ref 12 never written, and ref 13 granted read-only to us.
    let witness_port = arg(info, "port", 2);
    let Some(witness) = bind(name, peer, witness_port) else { return };
    // Each grant not ours to map gets Xen's own answer (`map_grant_ref`, grant_table.c:987).
    // We map read-only, so no check of GTF_readonly can be the one that refuses.
    // Pinned for another domain: the active entry's domid (:1067-1073).
    check(
        name,
        f,
        "map the peer's ref 8 (mapped by another domain)",
        grants::map(peer, REF_RW, MAP_AREA, true),
        status(gt::GNTST_general_error),
    );
    // Not pinned: `_set_status_v1` finds another domid in the entry (:789-793).
    check(
        name,
        f,
        "map the peer's ref 11 (granted to another domain, not mapped)",
        grants::map(peer, REF_UNMAPPED, MAP_AREA, true),
        status(gt::GNTST_general_error),
    );
    // In range but never granted: `_set_status_v1` finds flags 0, not GTF_permit_access
    // (:789-793).
    check(
        name,
        f,
        "map the peer's ref 12 (in range, never granted)",
        grants::map(peer, REF_NEVER, MAP_AREA, true),
        status(gt::GNTST_general_error),
    );
    // Beyond the peer's table (:1059-1061).
    check(
        name,
        f,
        "map ref 100000 of the peer",
        grants::map(peer, 100_000, MAP_AREA, true),
        status(gt::GNTST_bad_gntref),
    );
    check(
        name,
        f,
        "query_size of the peer",
        grants::query_size(peer),
        status(gt::GNTST_permission_denied),
    );
    // Ref 13, granted read-only to us: writable is refused (`_set_status_v1`, :800-804),
    // read-only it maps, at MAP_AREA, where we write last.
    check(
        name,
        f,
        "map the peer's read-only ref 13 writable",
        grants::map(peer, REF_SHOWN, MAP_AREA, false),
        status(gt::GNTST_general_error),
    );
    let shown = grants::map(peer, REF_SHOWN, MAP_AREA, true);
    check(name, f, "map the peer's ref 13 read-only", shown, Ok(()));
    if shown.is_ok() {
        // SAFETY: the peer's ref 13 is mapped read-only at MAP_AREA (checked above); only read
        // here.
        let page = unsafe { SharedPage::at(MAP_AREA) };
        require(name, f, holds(page, SEED_RO, 1, false), format_args!("ref 13 lacks its pattern"));
    }
    if let Err(error) = witness.send() {
        return println!("{name}: FAIL send to d{peer}: {error}");
    }
    let mut request = gt::gnttab_map_grant_ref {
        host_addr: MAP_AREA,
        flags: 0,
        r#ref: REF_RW,
        dom: peer,
        ..Default::default()
    };
    check(
        name,
        f,
        "map without GNTMAP_host_map",
        map_one(&mut request),
        status(gt::GNTST_bad_gntref),
    );
    request.flags = gt::GNTMAP_device_map | gt::GNTMAP_host_map;
    check(
        name,
        f,
        "map with GNTMAP_device_map",
        map_one(&mut request),
        status(gt::GNTST_general_error),
    );
    check(
        name,
        f,
        "map from domain 0x7000",
        grants::map(0x7000, REF_RW, MAP_AREA, false),
        status(gt::GNTST_bad_domain),
    );
    check(
        name,
        f,
        "unmap handle 4000",
        grants::unmap(MAP_AREA, 4000),
        status(gt::GNTST_bad_handle),
    );
    // Counts.
    let mut one = [gt::gnttab_map_grant_ref::default()];
    check(
        name,
        f,
        "map with count 0x80000000",
        answer(grants::op(gt::GNTTABOP_map_grant_ref, one.as_mut_ptr() as u64, 0x8000_0000)),
        Err(XenError::EINVAL),
    );
    let mut two_setups = [gt::gnttab_setup_table::default(); 2];
    check(
        name,
        f,
        "setup_table with count 2",
        answer(grants::op(gt::GNTTABOP_setup_table, two_setups.as_mut_ptr() as u64, 2)),
        Err(XenError::EINVAL),
    );
    let mut two_queries = [gt::gnttab_query_size::default(); 2];
    check(
        name,
        f,
        "query_size with count 2",
        answer(grants::op(gt::GNTTABOP_query_size, two_queries.as_mut_ptr() as u64, 2)),
        Err(XenError::EINVAL),
    );
    // Versions and unknown operations.
    let (answer_v2, version) = grants::set_version(2);
    check(name, f, "set_version 2", answer_v2, Err(XenError::ENOSYS));
    require(name, f, version == 1, format_args!("set_version 2 reported version {version}"));
    check(name, f, "set_version 3", grants::set_version(3).0, Err(XenError::EINVAL));
    check(name, f, "set_version 1", grants::set_version(1).0, Ok(()));
    let version = grants::get_version(DOMID_SELF);
    require(name, f, version == Ok(1), format_args!("get_version -> {version:?}, expected Ok(1)"));
    let mut scratch = [0u64; 8];
    check(
        name,
        f,
        "grant_table_op 99",
        answer(grants::op(99, scratch.as_mut_ptr() as u64, 1)),
        Err(XenError::ENOSYS),
    );
    // Bits above the command's 12 are cache_flush's alone (Xen 4.17).
    check(
        name,
        f,
        "grant_table_op 0x1001",
        answer(grants::op(0x1001, scratch.as_mut_ptr() as u64, 1)),
        Err(XenError::EINVAL),
    );
    // Our own table.
    match grants::query_size(DOMID_SELF) {
        Ok((_, max)) if max > 0 => {
            println!("{name}: query_size of ourselves -> up to {max} frames")
        }
        other => {
            *f += 1;
            println!("{name}: FAIL query_size of ourselves -> {other:?}");
        }
    }
    check(name, f, "map our grant table", grants::init(1), Ok(()));
    let mut frames = [0u64; 1];
    check(
        name,
        f,
        "setup_table of 1 frame",
        grants::setup_table(DOMID_SELF, 1, &mut frames),
        Ok(()),
    );
    require(
        name,
        f,
        frames[0] == grants::GRANT_TABLE_ADDRESS / PAGE_SIZE,
        format_args!("setup_table reported frame {:#x}", frames[0]),
    );
    // Copies: within our own pages, one crossing the end of a page, one from another's frame.
    let (Some(first), Some(second)) = (SharedPage::allocate(), SharedPage::allocate()) else {
        return println!("{name}: FAIL out of memory");
    };
    fill(first, SEED_RO, 0);
    let own = |page: SharedPage| (DOMID_SELF, u64::from(page.gfn()), false);
    let mut segment = [page_copy(own(first), own(second))];
    check(name, f, "copy between our own frames", copy_status(&mut segment), Ok(()));
    require(name, f, holds(second, SEED_RO, 0, false), format_args!("the local copy differs"));
    segment[0].source.offset = 1;
    check(
        name,
        f,
        "copy past the end of a page",
        copy_status(&mut segment),
        status(gt::GNTST_bad_copy_arg),
    );
    let mut segment = [page_copy((peer, 0x4_0000, false), own(second))];
    check(
        name,
        f,
        "copy from a frame of the peer",
        copy_status(&mut segment),
        status(gt::GNTST_permission_denied),
    );
    // A read-only grant to ourselves: mapped writable it is refused, read-only it maps.
    let me = own_domid();
    let beside = MAP_AREA + PAGE_SIZE;
    check(
        name,
        f,
        "grant our page read-only to ourselves",
        grants::grant_access(REF_RW, me, first.gfn(), true),
        Ok(()),
    );
    check(
        name,
        f,
        "map it writable",
        grants::map(me, REF_RW, beside, false),
        status(gt::GNTST_general_error),
    );
    let mapped = grants::map(me, REF_RW, beside, true);
    check(name, f, "map it read-only", mapped, Ok(()));
    if mapped.is_ok() {
        // SAFETY: our own grant is mapped read-only at `beside` (checked above); only read here.
        let page = unsafe { SharedPage::at(beside) };
        require(name, f, holds(page, SEED_RO, 0, false), format_args!("the mapping differs"));
        require(
            name,
            f,
            !grants::end_access(REF_RW),
            format_args!("ended our grant while it is mapped"),
        );
    }
    if failures != 0 {
        return println!("{name}: FAIL {failures} grant error check(s)");
    }
    println!("{name}: PASS grant error paths");
    // The peer answers our event once it has seen our read-only mapping in its entry.
    if !wait(witness, 60) {
        return println!("{name}: FAIL no answer from d{peer}");
    }
    println!("{name}: writing through the read-only mapping of d{peer}'s ref 13");
    // SAFETY: deliberately writes to the read-only grant mapping of the peer's page at
    // MAP_AREA: the test checks the hypervisor refuses the write and crashes this domain alone.
    // The write never completes, so the peer's page is not changed.
    unsafe { core::ptr::write_volatile(MAP_AREA as *mut u64, MARKER) };
    println!("{name}: FAIL the write through a read-only mapping returned");
}

/// One `GNTTABOP_map_grant_ref` of `request` as it stands: the handle, or why not.
fn map_one(request: &mut gt::gnttab_map_grant_ref) -> Result<u32, GrantError> {
    request.status = gt::GNTST_okay;
    answer(grants::map_batch(core::slice::from_mut(request))).map_err(GrantError::Hypercall)?;
    match request.status {
        gt::GNTST_okay => Ok(request.handle),
        status => Err(GrantError::Status(status)),
    }
}

/// One `GNTTABOP_copy` of `segment`: its status, or the hypercall's error.
fn copy_status(segment: &mut [gnttab_copy; 1]) -> Result<(), GrantError> {
    segment[0].status = gt::GNTST_okay;
    answer(grants::copy(segment)).map_err(GrantError::Hypercall)?;
    match segment[0].status {
        gt::GNTST_okay => Ok(()),
        status => Err(GrantError::Status(status)),
    }
}

/// This domain's id, from `EVTCHNOP_status` of an unbound port offered to ourselves.
pub(crate) fn own_domid() -> u16 {
    let Ok(port) = events::alloc_unbound(DOMID_SELF, DOMID_SELF) else { return u16::MAX };
    let dom = events::status(DOMID_SELF, port.0).map_or(u16::MAX, |status| status.unbound());
    port.close().ok();
    dom
}

pub fn victim_granter(name: &str, info: &StartInfo) {
    let peer = arg(info, "peer", 1) as u16;
    if let Err(error) = events::init() {
        return println!("{name}: FAIL mapping shared info: {error}");
    }
    if let Err(error) = grants::init(1) {
        return println!("{name}: FAIL mapping the grant table: {error}");
    }
    let Some(page) = SharedPage::allocate() else {
        return println!("{name}: FAIL out of memory");
    };
    fill(page, SEED_RW, 0);
    if let Err(error) = grants::grant_access(REF_RW, peer, page.gfn(), false) {
        return println!("{name}: FAIL granting ref 8: {error}");
    }
    let port = match events::alloc_unbound(DOMID_SELF, peer) {
        Ok(port) => port,
        Err(error) => return println!("{name}: FAIL alloc_unbound: {error}"),
    };
    println!("{name}: granted ref 8 to d{peer}; offered port {}", port.0);
    if !wait(port, 60) {
        return println!("{name}: FAIL no event from the mapper");
    }
    // Returning powers this domain off; the core destroys it with the page still mapped.
    println!("{name}: powering off with ref 8 mapped by d{peer}");
}

pub fn victim_mapper(name: &str, info: &StartInfo) {
    let peer = arg(info, "peer", 0) as u16;
    if let Err(error) = events::init() {
        return println!("{name}: FAIL mapping shared info: {error}");
    }
    let Some(port) = bind(name, peer, 1) else { return };
    let handle = match grants::map(peer, REF_RW, MAP_AREA, false) {
        Ok(handle) => handle,
        Err(error) => return println!("{name}: FAIL mapping ref 8 of d{peer}: {error}"),
    };
    // SAFETY: ref 8 is mapped at MAP_AREA (checked above) until the unmap below.
    let page = unsafe { SharedPage::at(MAP_AREA) };
    if !holds(page, SEED_RW, 0, false) {
        return println!("{name}: FAIL ref 8 lacks its pattern");
    }
    if let Err(error) = port.send() {
        return println!("{name}: FAIL send: {error}");
    }
    // Our port turns unbound when the granter is destroyed (`evtchn_destroy`).
    let mut polls = 0u64;
    loop {
        match events::status(DOMID_SELF, port.0) {
            Ok(status) if status.status == ec::EVTCHNSTAT_unbound => break,
            Ok(status) if status.status == ec::EVTCHNSTAT_interdomain && polls < 50_000_000 => {
                polls += 1;
                core::hint::black_box(page.read_u64(0));
                hypercall::sched_op(xenolith_abi::xen::sched::SCHEDOP_yield, 0);
            }
            other => return println!("{name}: FAIL waiting for the granter to go: {other:?}"),
        }
    }
    if !holds(page, SEED_RW, 0, false) {
        return println!("{name}: FAIL the orphaned page changed");
    }
    println!("{name}: PASS the granter is gone and the page still reads the same");
    match grants::unmap(MAP_AREA, handle) {
        Ok(()) => println!("{name}: unmapped the orphaned grant"),
        Err(error) => println!("{name}: FAIL unmapping the orphaned grant: {error}"),
    }
}
