//! `restart-counter`: the core's restart policy and preserved region, seen from inside.
//!
//! Each incarnation first checks that its fresh RAM (past its heap, about half of it) reads as
//! zero, reads the counter at the start of its preserved region, checks it equals the restart
//! count the core reports, that its domain id is the one it was first built with (`self=`) and
//! that its generation grew; then it fills its fresh RAM with 0xd1 bytes (an incarnation built
//! on those frames again sees them unless the core scrubs them), increments the counter and
//! crashes, until it has been restarted `restarts=` times (default 3). Then it prints
//! `NAME: PASS restarted N times ...`.
//! With `peer=<id>`, the first incarnation also grants a page (ref 8, filled with 0xab) and
//! offers port 1 to that domain, and crashes only once the peer has mapped and bound both.
//!
//! `restart-peer` (`target=<id>`): maps that grant and binds that port, signals, and once the
//! target's incarnation is gone checks what a peer of a dead incarnation must see: its mapping
//! still reads the old bytes (the frame stays the old one's until unmapped, never the new
//! incarnation's memory), its port is unbound and a send on it is dropped, and mapping the
//! same reference again fails with a grant status. Then `NAME: PASS ...`.

use core::sync::atomic::{AtomicU64, Ordering};

use xenolith_abi::xen::arch_arm::PRESERVED_REGION_BASE;
use xenolith_abi::xen::event_channel::{EVTCHNSTAT_interdomain, EVTCHNSTAT_unbound};
use xenolith_abi::xen::hypercall::DOMID_SELF;
use xenolith_runtime::events::{self, Port};
use xenolith_runtime::grants::{self, GrantError, SharedPage};
use xenolith_runtime::{hypercall, println, StartInfo};

/// The grant reference and port the first incarnation offers its peer.
const PEER_GREF: u32 = 8;
const PEER_PORT: u32 = 1;
/// The byte the granted page is filled with.
const PATTERN: u8 = 0xab;
/// Where the peer maps the grant.
const PEER_MAP_AT: u64 = grants::MAP_AREA;
/// Bounded waits: this many polls of 1 ms.
const WAIT_POLLS: u32 = 20_000;

fn sleep_ms() {
    let _ = events::poll(&[], crate::xenstore::now() + 1_000_000);
}

/// First incarnation with a peer: grant a page and offer a port, wait for the peer's event.
fn serve_peer(name: &str, peer: u16) -> Result<(), &'static str> {
    events::init().map_err(|_| "events::init")?;
    grants::init(1).map_err(|_| "grants::init")?;
    let page = SharedPage::allocate().ok_or("no page")?;
    for offset in 0..4096 {
        page.write_u8(offset, PATTERN);
    }
    grants::grant_access(PEER_GREF, peer, page.gfn(), false).map_err(|_| "grant_access")?;
    let port = events::alloc_unbound(DOMID_SELF, peer).map_err(|_| "alloc_unbound")?;
    if port.0 != PEER_PORT {
        return Err("the offered port is not port 1");
    }
    println!("{name}: granted ref {PEER_GREF} and offered port {PEER_PORT} to domain {peer}");
    for _ in 0..WAIT_POLLS {
        if port.take_pending() {
            return Ok(());
        }
        let _ = events::poll(&[port], crate::xenstore::now() + 1_000_000);
    }
    Err("the peer never signalled")
}

pub fn restart_peer(name: &str, info: &StartInfo) {
    let target: u16 = info.bootarg("target").and_then(|v| v.parse().ok()).unwrap_or(0);
    if let Err(why) = peer_checks(name, target) {
        println!("{name}: FAIL {why}");
    }
}

fn peer_checks(name: &str, target: u16) -> Result<(), alloc::string::String> {
    use alloc::format;
    events::init().map_err(|e| format!("events::init: {e:?}"))?;
    // The target grants and offers once it runs: retry, bounded.
    let mut mapped = None;
    for _ in 0..WAIT_POLLS {
        match grants::map(target, PEER_GREF, PEER_MAP_AT, false) {
            Ok(handle) => {
                mapped = Some(handle);
                break;
            }
            Err(_) => sleep_ms(),
        }
    }
    let handle = mapped.ok_or("the target's grant never became mappable")?;
    // SAFETY: the grant was just mapped at PEER_MAP_AT, in the runtime's normal-memory window;
    // it stays mapped until the unmap below, after the last use of `page`.
    let page = unsafe { SharedPage::at(PEER_MAP_AT) };
    let mut bound = None;
    for _ in 0..WAIT_POLLS {
        match events::bind_interdomain(target, PEER_PORT) {
            Ok(port) => {
                bound = Some(port);
                break;
            }
            Err(_) => sleep_ms(),
        }
    }
    let port: Port = bound.ok_or("the target's port never became bindable")?;
    if page.read_u8(100) != PATTERN {
        return Err(format!("the mapped page reads {:#x}", page.read_u8(100)));
    }
    port.send().map_err(|e| format!("send: {e:?}"))?;
    println!("{name}: mapped ref {PEER_GREF} and bound port {PEER_PORT} of domain {target}");
    // The target crashes now; its end of the channel is closed when it is destroyed.
    let mut unbound = false;
    for _ in 0..WAIT_POLLS {
        let status = events::status(DOMID_SELF, port.0).map_err(|e| format!("status: {e:?}"))?;
        if status.status == EVTCHNSTAT_unbound {
            unbound = true;
            break;
        }
        if status.status != EVTCHNSTAT_interdomain {
            return Err(format!("the port's status became {}", status.status));
        }
        sleep_ms();
    }
    if !unbound {
        return Err("the port never became unbound".into());
    }
    port.send().map_err(|e| format!("a send to the dead incarnation failed: {e:?}"))?;
    for offset in (0..4096).step_by(512) {
        if page.read_u8(offset) != PATTERN {
            return Err(format!("the old mapping changed at {offset}: stale or reused memory"));
        }
    }
    let refused = match grants::map(target, PEER_GREF, PEER_MAP_AT + 4096, false) {
        Ok(_) => return Err("the new incarnation's ref 8 mapped without a grant".into()),
        Err(GrantError::Status(status)) => grants::status_name(status),
        Err(GrantError::Hypercall(error)) => return Err(format!("map: {error:?}")),
    };
    grants::unmap(PEER_MAP_AT, handle).map_err(|e| format!("unmap: {e:?}"))?;
    println!(
        "{name}: PASS dead incarnation: old mapping kept its bytes until unmapped, port unbound \
         and sends dropped, ref {PEER_GREF} of the new incarnation refused ({refused})"
    );
    Ok(())
}

/// The preserved counter: the first 8 bytes of the preserved region.
fn counter() -> &'static AtomicU64 {
    // SAFETY: the core maps this domain's preserved region (the manifest gives it one; checked
    // by the caller through `preserved_size`) at PRESERVED_REGION_BASE for the domain's whole
    // life; the address is 8-byte aligned and nothing else in this domain uses it.
    unsafe { &*(PRESERVED_REGION_BASE as *const AtomicU64) }
}

pub fn restart_counter(name: &str, info: &StartInfo) {
    // Before anything else: an incarnation before may have filled these frames.
    if let Some((address, value)) = crate::guest::nonzero_fresh_word() {
        return println!("{name}: FAIL fresh memory at {address:#x} holds {value:#x}");
    }
    let wanted: u32 = info.bootarg("restarts").and_then(|v| v.parse().ok()).unwrap_or(3);
    let first_id: u16 = info.bootarg("self").and_then(|v| v.parse().ok()).unwrap_or(0);
    let me = match hypercall::domain_info(DOMID_SELF) {
        Ok(me) => me,
        Err(error) => return println!("{name}: FAIL domain info: {error:?}"),
    };
    if me.preserved_size < 4096 {
        return println!("{name}: FAIL no preserved region ({} bytes)", me.preserved_size);
    }
    match hypercall::domain_info(first_id) {
        Ok(by_id) if by_id.generation == me.generation => {}
        Ok(by_id) => {
            return println!(
                "{name}: FAIL domain {first_id} is generation {}, this one is {}: the id changed",
                by_id.generation, me.generation
            )
        }
        Err(error) => return println!("{name}: FAIL domain {first_id}: {error:?}"),
    }
    let count = counter().load(Ordering::Acquire);
    println!(
        "{name}: incarnation after {} restarts: generation {}, preserved counter {count}",
        me.restarts, me.generation
    );
    if count != u64::from(me.restarts) {
        return println!(
            "{name}: FAIL the preserved counter is {count} after {} restarts",
            me.restarts
        );
    }
    if me.restarts == 0 {
        if let Some(peer) = info.bootarg("peer").and_then(|v| v.parse::<u16>().ok()) {
            if let Err(why) = serve_peer(name, peer) {
                return println!("{name}: FAIL {why}");
            }
        }
    }
    if me.restarts >= wanted {
        println!(
            "{name}: PASS restarted {wanted} times, id {first_id} kept, generation {}, preserved region kept, fresh memory zero in every incarnation",
            me.generation
        );
        return;
    }
    let (start, end) = xenolith_runtime::free_memory();
    // SAFETY: [start, end) is this domain's own RAM (after its heap, before its DTB),
    // identity-mapped as normal memory; nothing of this program lives there.
    unsafe {
        core::ptr::write_bytes(start as *mut u8, crate::guest::DIRTY, (end - start) as usize)
    };
    println!(
        "{name}: filled {} KiB of fresh memory with {:#04x} bytes",
        (end - start) >> 10,
        crate::guest::DIRTY
    );
    counter().store(count + 1, Ordering::Release);
    xenolith_runtime::crash();
}
