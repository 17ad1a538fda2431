//! Bounded guest atomics (issue 14): a guest that keeps the words it shares with the core
//! changing from a second vCPU (`test=atomics-hammer peer=P`), and a peer whose event sends and
//! grant maps keep the core updating those words (`test=atomics-peer hammer=H`). The core must
//! never stall on them; once its bound is reached (lowered by `test_guest_atomic_attempts=` in
//! the test) the hammering guest is crashed and the peer goes on.

use core::sync::atomic::{AtomicU64, Ordering};

use xenolith_runtime::events::{self, SHARED_INFO_ADDRESS};
use xenolith_runtime::grants::{self, SharedPage, GRANT_TABLE_ADDRESS, MAP_AREA};
use xenolith_runtime::{hypercall, println, StartInfo};

use xenolith_abi::xen::grant_table::GNTST_bad_domain;
use xenolith_abi::xen::hypercall::DOMID_SELF;

/// The grant the hammer offers its peer.
const GREF: u32 = 5;
/// Rounds between the peer's progress lines.
const REPORT_EVERY: u64 = 2000;

/// Toggles bit 63 of each word (port 63, which nobody uses, and the top selector bit) and bit 5
/// of the grant's flags (`GTF_PWT`, which mapping ignores), as fast as it can, for good.
fn hammer_words(_index: usize) -> ! {
    let words = [
        (SHARED_INFO_ADDRESS + 48, 1u64 << 63),    // evtchn_pending[0]
        (SHARED_INFO_ADDRESS + 48 + 512, 1 << 63), // evtchn_mask[0]
        (SHARED_INFO_ADDRESS + 8, 1 << 63),        // vcpu_info[0].evtchn_pending_sel
        (GRANT_TABLE_ADDRESS + u64::from(GREF) * 8, 1 << 5), // the grant's flags and domid
    ];
    loop {
        for &(address, bit) in &words {
            // SAFETY: the shared-info page and grant frame 0, mapped by `events::init` and
            // `grants::init` and never moved; each word is 8-byte aligned. The core updates
            // them too, which is the point: the atomic keeps the access well defined.
            let word = unsafe { &*(address as *const AtomicU64) };
            word.fetch_xor(bit, Ordering::Relaxed);
        }
    }
}

/// `test=atomics-hammer peer=P`.
pub fn hammer(info: &StartInfo) {
    let peer = crate::xenstore::arg(info, "peer", 1) as u16;
    let setup = (|| {
        events::init().map_err(|e| alloc::format!("events: {e}"))?;
        grants::init(1).map_err(|e| alloc::format!("grants: {e}"))?;
        let port =
            events::alloc_unbound(DOMID_SELF, peer).map_err(|e| alloc::format!("port: {e}"))?;
        let page = SharedPage::allocate().ok_or("no page to grant")?;
        grants::grant_access(GREF, peer, page.gfn(), false)
            .map_err(|e| alloc::format!("grant: {e}"))?;
        Ok::<_, alloc::string::String>(port)
    })();
    let port = match setup {
        Ok(port) => port,
        Err(error) => {
            println!("atomics-hammer: FAIL setting up: {error}");
            return;
        }
    };
    // Upcalls stay masked: the words are garbage on purpose.
    // SAFETY: setting PSTATE.I only masks this vCPU's IRQs.
    unsafe { core::arch::asm!("msr daifset, #2", options(nomem, nostack)) };
    // Said before vCPU 1 starts: the core may crash this domain as soon as it hammers.
    println!(
        "atomics-hammer: hammering its event words and grant {GREF} (port {} offered to d{peer})",
        port.0
    );
    if let Err(error) = xenolith_runtime::smp::start_vcpu(1, hammer_words) {
        println!("atomics-hammer: FAIL starting vCPU 1: {}", error.0);
        return;
    }
    loop {
        hypercall::sched_op(xenolith_abi::xen::sched::SCHEDOP_yield, 0);
    }
}

/// `test=atomics-peer hammer=H`: binds the port the hammer offers and then, round after round,
/// sends on it and maps and unmaps the hammer's grant; goes on once the hammer is gone.
pub fn peer(info: &StartInfo) {
    let hammer = crate::xenstore::arg(info, "hammer", 0) as u16;
    if let Err(error) = events::init() {
        println!("atomics-peer: FAIL events: {error}");
        return;
    }
    let port = loop {
        if let Some(port) = (1..8).find_map(|remote| events::bind_interdomain(hammer, remote).ok())
        {
            break port;
        }
        hypercall::sched_op(xenolith_abi::xen::sched::SCHEDOP_yield, 0);
    };
    println!("atomics-peer: bound to d{hammer}'s port as {}", port.0);
    let mut gone_at = None;
    for round in 1u64.. {
        if port.send().is_err() && gone_at.is_none() {
            println!("atomics-peer: FAIL sending in round {round}");
            return;
        }
        match grants::map(hammer, GREF, MAP_AREA, false) {
            Ok(handle) => {
                if let Err(error) = grants::unmap(MAP_AREA, handle) {
                    println!("atomics-peer: FAIL unmapping in round {round}: {error:?}");
                    return;
                }
            }
            // GNTST_bad_domain: the hammer is gone. Any other refusal is the core giving up on a
            // word that kept changing (Xen's `_set_status_v1`), which costs this round only.
            Err(grants::GrantError::Status(status))
                if status == GNTST_bad_domain && gone_at.is_none() =>
            {
                gone_at = Some(round);
                println!("atomics-peer: d{hammer} is gone (round {round}); going on");
            }
            Err(_) => {}
        }
        if round % REPORT_EVERY == 0 {
            println!("atomics-peer: {round} rounds");
            if gone_at.is_some_and(|gone| round >= gone + 2 * REPORT_EVERY) {
                println!(
                    "atomics-peer: PASS {} rounds after d{hammer} went",
                    round - gone_at.unwrap_or(0)
                );
                return;
            }
        }
    }
}
