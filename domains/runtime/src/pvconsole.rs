//! This domain's own console ring, as Linux's `hvc_xen` uses it: `struct xencons_interface`
//! (`xen/include/public/io/console.h`: `in[1024]`, `out[2048]`, then the free-running indexes
//! `in_cons`, `in_prod`, `out_cons`, `out_prod`) on the page Xen's toolstack puts at
//! `GUEST_MAGIC_BASE` + `CONSOLE_PFN_OFFSET` (`tools/libs/guest/xg_dom_arm.c`), with the port
//! `HVM_PARAM_CONSOLE_EVTCHN` names. The console domain writes what is typed while this domain
//! has the input focus into `in`, and prints `out` under the domain's name.
//!
//! # Invariants
//! - This domain is the only consumer of `in` and the only producer of `out`; the page is
//!   touched only through [`SharedPage`]'s volatile and atomic accessors, and indexes from the
//!   other side are clamped to the half's size before use.

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use xenolith_abi::xen::arch_arm::{GUEST_MAGIC_BASE, GUEST_MAGIC_CONSOLE_PFN_OFFSET};
use xenolith_abi::xen::console::{
    XENCONS_IN_CONS_OFFSET as IN_CONS, XENCONS_IN_OFFSET as IN, XENCONS_IN_PROD_OFFSET as IN_PROD,
    XENCONS_IN_SIZE as IN_SIZE, XENCONS_OUT_CONS_OFFSET as OUT_CONS, XENCONS_OUT_OFFSET as OUT,
    XENCONS_OUT_PROD_OFFSET as OUT_PROD, XENCONS_OUT_SIZE as OUT_SIZE,
};
use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::hvm::HVM_PARAM_CONSOLE_EVTCHN;
use xenolith_abi::xen::hypercall::DOMID_SELF;

use crate::events::Port;
use crate::grants::SharedPage;
use crate::hypercall;

/// The longest input line kept; the rest of a longer one is dropped.
pub const MAX_LINE: usize = 512;

/// This domain's console ring and port, and the part of an input line read so far.
pub struct PvConsole {
    page: SharedPage,
    port: Port,
    line: Vec<u8>,
    /// The last byte taken was a CR: a LF right after it ends no second line.
    after_cr: bool,
}

impl PvConsole {
    /// The ring the core set up for this domain (`-ENOENT` without a console domain: the port
    /// is then 0).
    pub fn open() -> Result<Self, XenError> {
        let port = hypercall::hvm_get_param(DOMID_SELF, HVM_PARAM_CONSOLE_EVTCHN)?;
        if port == 0 {
            return Err(XenError::ENOENT);
        }
        let address = GUEST_MAGIC_BASE + GUEST_MAGIC_CONSOLE_PFN_OFFSET * 4096;
        // SAFETY: the core keeps this domain's console ring page mapped at Xen's magic address
        // (which the runtime maps as normal memory) for the domain's life; only volatile and
        // atomic accessors touch it.
        let page = unsafe { SharedPage::at(address) };
        Ok(Self { page, port: Port(port as u32), line: Vec::new(), after_cr: false })
    }

    /// Its event channel (to poll on).
    pub fn port(&self) -> Port {
        self.port
    }

    /// The next whole line typed (ended by CR, LF or CR LF; without its end), if one is in the
    /// ring; a part of one stays for the next call.
    pub fn read_line(&mut self) -> Option<String> {
        let cons = self.page.atomic_u32(IN_CONS).load(Ordering::Acquire);
        let prod = self.page.atomic_u32(IN_PROD).load(Ordering::Acquire);
        let available = prod.wrapping_sub(cons).min(IN_SIZE);
        let mut taken = 0;
        let mut done = None;
        while taken < available && done.is_none() {
            let at = cons.wrapping_add(taken) & (IN_SIZE - 1);
            let byte = self.page.read_u8(IN + at as usize);
            taken += 1;
            match byte {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\r' | b'\n' => {
                    self.after_cr = byte == b'\r';
                    let bytes = core::mem::take(&mut self.line);
                    done = Some(String::from_utf8_lossy(&bytes).into_owned());
                }
                _ => {
                    self.after_cr = false;
                    if self.line.len() < MAX_LINE {
                        self.line.push(byte);
                    }
                }
            }
        }
        if taken > 0 {
            self.page.atomic_u32(IN_CONS).store(cons.wrapping_add(taken), Ordering::Release);
            // Room in `in` again: the console domain may have more queued.
            let _ = self.port.send();
        }
        done
    }

    /// Writes `bytes` into `out`, waiting (yielding) while it is full, and notifies the console
    /// domain. Gives up after `polls` full looks (the console domain is gone): `false`.
    pub fn write(&self, bytes: &[u8], polls: u32) -> bool {
        let mut rest = bytes;
        let mut looks = 0;
        while !rest.is_empty() {
            let prod = self.page.atomic_u32(OUT_PROD).load(Ordering::Acquire);
            let cons = self.page.atomic_u32(OUT_CONS).load(Ordering::Acquire);
            let room = (OUT_SIZE - prod.wrapping_sub(cons).min(OUT_SIZE)) as usize;
            if room == 0 {
                looks += 1;
                if looks > polls {
                    return false;
                }
                let _ = self.port.send();
                hypercall::sched_op(xenolith_abi::xen::sched::SCHEDOP_yield, 0);
                continue;
            }
            let (now, later) = rest.split_at(room.min(rest.len()));
            for (index, &byte) in now.iter().enumerate() {
                let at = prod.wrapping_add(index as u32) & (OUT_SIZE - 1);
                self.page.write_u8(OUT + at as usize, byte);
            }
            self.page
                .atomic_u32(OUT_PROD)
                .store(prod.wrapping_add(now.len() as u32), Ordering::Release);
            rest = later;
        }
        // Before the console domain binds it, the port is unbound: sending fails, harmlessly.
        let _ = self.port.send();
        true
    }
}
