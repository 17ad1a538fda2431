//! Grant-table behaviours of the test guest:
//!
//! - `grant-granter` (`peer=<id>`, optionally `witness=<id>`): grants the peer a writable page
//!   (ref 8), a read-only page (ref 9), a ring page (ref 10) and 1 MiB in 256 pages (refs
//!   16..272), then offers it event port 1 (and the witness port 2, as a sign); checks its
//!   grants cannot be ended while mapped, then that the peer's write and its 1 MiB copy arrived
//!   (the checksum the peer announces on the ring) and every grant ends once the peer unmapped;
//! - `grant-mapper` (`peer=<id>`): binds to the granter's port 1, maps, reads and writes those
//!   grants, copies 1 MiB out of and into them, times the copies and map/unmap pairs, announces
//!   the checksum of what it wrote on the ring, unmaps everything;
//! - `grant-errors` (`peer=<id>`, which grants nothing to this guest; `port=<p>`, the port the
//!   peer offers it once its grants are in place): every error path of `grant_table_op` named by the
//!   acceptance tests, a read-only grant to itself, and last a write through its read-only
//!   mapping, which must crash this guest alone;
//! - `grant-victim-granter`, `grant-victim-mapper` (`peer=<id>`): the granter powers off while
//!   the mapper maps its page; the page must keep its contents and unmap cleanly.
//!
//! The two sides meet as in `events.rs`: the granter offers port 1 once its grants are in place,
//! the mapper binds to it (retrying while it is not offered yet), and from then on they take
//! turns, each waiting for the other's event with `SCHEDOP_poll`.

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

/// Binds to port `remote_port` of `peer`, retrying while the peer has not offered it yet, and
/// takes the event binding leaves pending.
fn bind(name: &str, peer: u16, remote_port: u32) -> Option<Port> {
    let mut attempts = 0;
    loop {
        match events::bind_interdomain(peer, remote_port) {
            Ok(port) => {
                port.take_pending();
                return Some(port);
            }
            Err(XenError::EINVAL) if attempts < 100_000 => {
                attempts += 1;
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
    if let Err(error) = events::init() {
        return println!("{name}: FAIL mapping shared info: {error}");
    }
    if let Err(error) = grants::init(1) {
        return println!("{name}: FAIL mapping the grant table: {error}");
    }
    let Some(pages) = allocate(3 + BLOCK_PAGES) else {
        return println!("{name}: FAIL out of memory for the pages to grant");
    };
    let (rw, ro, ring_page, block) = (pages[0], pages[1], pages[2], &pages[3..]);
    fill(rw, SEED_RW, 0);
    fill(ro, SEED_RO, 0);
    let mut ring = SharedRing::new(ring_page, RING_ENTRY);
    ring.init();
    for (index, &page) in block.iter().enumerate() {
        fill(page, SEED_IN, index);
    }
    let mut grants = Vec::new();
    grants.push((REF_RW, rw, false));
    grants.push((REF_RO, ro, true));
    grants.push((REF_RING, ring_page, false));
    for (index, &page) in block.iter().enumerate() {
        grants.push((REF_BLOCK + index as u32, page, false));
    }
    for &(gref, page, readonly) in &grants {
        if let Err(error) = grants::grant_access(gref, peer, page.gfn(), readonly) {
            return println!("{name}: FAIL granting ref {gref}: {error}");
        }
    }
    // Offered only now: the peer's bind succeeding tells it the grants are in place. So does a
    // second port offered to the `witness` domain, if any (the errors guest).
    let port = match events::alloc_unbound(DOMID_SELF, peer) {
        Ok(port) => port,
        Err(error) => return println!("{name}: FAIL alloc_unbound: {error}"),
    };
    println!(
        "{name}: granted refs 8, 9 (read-only), 10 and 16..{} to d{peer}; offered port {}",
        REF_BLOCK + BLOCK_PAGES as u32,
        port.0
    );
    if let Some(witness) = info.bootarg("witness").and_then(|value| value.parse::<u16>().ok()) {
        match events::alloc_unbound(DOMID_SELF, witness) {
            Ok(port) => println!("{name}: offered port {} to witness d{witness}", port.0),
            Err(error) => return println!("{name}: FAIL alloc_unbound for d{witness}: {error}"),
        }
    }
    let mut failures = 0;
    let f = &mut failures;
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
    if let Err(error) = port.send() {
        return println!("{name}: FAIL send: {error}");
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
    if failures == 0 {
        println!(
            "{name}: PASS granted, saw the mapper's write, 1 MiB copied in (checksum {copied_in:#x}), ended {} grants",
            grants.len()
        );
    } else {
        println!("{name}: FAIL {failures} granter check(s)");
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
    // The peer offers us a port once its grants are in place (it is our witness that ref 8 is
    // granted, to another domain); binding to it is all we do with it.
    let witness_port = arg(info, "port", 2);
    if bind(name, peer, witness_port).is_none() {
        return;
    }
    let not_ours = grants::map(peer, REF_RW, MAP_AREA, false);
    // The checks that need the peer alive come first: it powers off once its mapper is done.
    check(
        name,
        f,
        "map the peer's ref 8 (granted to another domain)",
        not_ours,
        status(gt::GNTST_general_error),
    );
    check(
        name,
        f,
        "map ref 100000 of the peer",
        grants::map(peer, 100_000, MAP_AREA, false),
        status(gt::GNTST_bad_gntref),
    );
    check(
        name,
        f,
        "query_size of the peer",
        grants::query_size(peer),
        status(gt::GNTST_permission_denied),
    );
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
        grants::map(me, REF_RW, MAP_AREA, false),
        status(gt::GNTST_general_error),
    );
    let mapped = grants::map(me, REF_RW, MAP_AREA, true);
    check(name, f, "map it read-only", mapped, Ok(()));
    if mapped.is_ok() {
        // SAFETY: our own grant is mapped read-only at MAP_AREA (checked above); only read here.
        let page = unsafe { SharedPage::at(MAP_AREA) };
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
    println!("{name}: writing through a read-only grant mapping");
    // SAFETY: deliberately writes to the read-only grant mapping at MAP_AREA (of our own page,
    // so no other domain's memory is at stake): the test checks the hypervisor crashes this
    // domain alone. The write never completes.
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
fn own_domid() -> u16 {
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
