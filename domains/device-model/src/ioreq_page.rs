//! The IOREQ server's synchronous page (`xen/include/public/hvm/ioreq.h`, `struct
//! shared_iopage`): one 32-byte record per target vCPU, read and answered as Xen's
//! `ioreq_send` and `wait_for_io` (`xen/common/ioreq.c`) expect.
//!
//! # Invariants
//! - The page is touched only with volatile accesses (`SharedPage`): Xen writes it while the
//!   model runs. A record is used only after its state read `STATE_IOREQ_READY` and an acquire
//!   fence (Xen writes the fields, `smp_wmb`, then the state); it is read whole, once, and the
//!   logic crate checks every field.
//! - An answer writes `data`, a release fence, then the bit-field byte with
//!   `STATE_IORESP_READY`, so Xen never sees the state before the data.
//! - The model never sets `STATE_IOREQ_INPROCESS` (Xen accepts `READY` to `IORESP_READY`
//!   directly): a model killed while serving leaves the record `READY`, and its next
//!   incarnation serves it.

use core::sync::atomic::{fence, Ordering};

use xenolith_abi::xen::ioreq::{ioreq, IOREQS_PER_PAGE, IOREQ_STATE_MASK, STATE_IOREQ_READY};
use xenolith_device_model_logic::ioreq::Completion;
use xenolith_runtime::grants::SharedPage;
use zerocopy::FromBytes;

/// Where the page is mapped in this domain's space (normal memory in the runtime's identity
/// map, below the foreign-mapping window).
pub const ADDRESS: u64 = 0xE000_0000;
/// A record's size.
const RECORD: usize = 32;
/// The offset of `data` in a record.
const DATA: usize = 8;
/// The offset of `vp_eport`.
const PORT: usize = 24;
/// The offset of the bit-field byte (`state`, `data_is_ptr`, `dir`, `df`).
const BITFIELD: usize = 30;

// The offsets are `struct ioreq`'s (its layout is pinned by the ABI crate's tests).
const _: () = {
    assert!(core::mem::size_of::<ioreq>() == RECORD);
    assert!(core::mem::offset_of!(ioreq, data) == DATA);
    assert!(core::mem::offset_of!(ioreq, vp_eport) == PORT);
    assert!(core::mem::offset_of!(ioreq, bitfield) == BITFIELD);
};

/// The mapped page.
#[derive(Clone, Copy)]
pub struct IoreqPage {
    page: SharedPage,
}

impl IoreqPage {
    /// The page at [`ADDRESS`], once `XENMEM_acquire_resource` has mapped it there.
    pub fn mapped() -> Self {
        // SAFETY: ADDRESS is page-aligned, in the runtime's normal-memory identity map, and
        // the caller has just had the hypervisor map the server's ioreq page there, where it
        // stays for this incarnation's life unless the target is destroyed (then the core unmaps
        // it and an access faults, crashing this domain: no other memory is reached; the domain
        // drops this value then, and makes another only after mapping the page of its rebuilt
        // target's new server at the same address); it is only accessed through `SharedPage`.
        Self { page: unsafe { SharedPage::at(ADDRESS) } }
    }

    fn offset(vcpu: u32) -> Option<usize> {
        ((vcpu as usize) < IOREQS_PER_PAGE).then_some(vcpu as usize * RECORD)
    }

    /// vCPU `vcpu`'s event-channel port in the target (`vp_eport`).
    pub fn port(&self, vcpu: u32) -> Option<u32> {
        Self::offset(vcpu).map(|at| self.page.read_u32(at + PORT))
    }

    /// vCPU `vcpu`'s record, if a request waits in it.
    pub fn ready(&self, vcpu: u32) -> Option<ioreq> {
        let at = Self::offset(vcpu)?;
        if self.page.read_u8(at + BITFIELD) & IOREQ_STATE_MASK != STATE_IOREQ_READY {
            return None;
        }
        fence(Ordering::Acquire);
        let mut bytes = [0u8; RECORD];
        self.page.read_bytes(at, &mut bytes);
        ioreq::read_from_bytes(&bytes).ok()
    }

    /// Writes `completion` into vCPU `vcpu`'s record.
    pub fn answer(&self, vcpu: u32, completion: Completion) {
        let Some(at) = Self::offset(vcpu) else { return };
        self.page.write_u64(at + DATA, completion.data);
        fence(Ordering::Release);
        self.page.write_u8(at + BITFIELD, completion.bitfield);
    }
}
