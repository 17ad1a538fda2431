//! The domain builder (libxenguest's job in Xen): a domain from an ELF image or an arm64 Linux
//! `Image`, in Xen's steps. What goes where (chunks, device tree, entry, registers) is planned by
//! `xenolith_builder::plan`, the same code the host tool prepares boot domains with, so a domain
//! built here boots exactly as it would from the boot bundle.
//!
//! 1. read the image, and the initial ramdisk if one is named, from the boot bundle
//!    (`XENOLITH_DOMCTL_BUNDLE_INFO` / `_MODULE`) and plan its boot (the ramdisk where libxl puts
//!    one: see `xenolith_builder::plan`);
//! 2. `XEN_DOMCTL_createdomain` (paused, vCPUs down), `XEN_DOMCTL_max_mem`;
//! 3. `XENMEM_populate_physmap`: RAM in 2 MiB extents at `GUEST_RAM0_BASE`;
//! 4. load: map the domain's pages into a window of this domain
//!    (`XENMEM_add_to_physmap_batch`, `XENMAPSPACE_gmfn_foreign`), copy the chunks, the ramdisk
//!    and the DTB, unmap (`XENMEM_remove_from_physmap`);
//! 5. `XEN_DOMCTL_setvcpucontext` for vCPU 0 (entry, x0..x3), `XEN_DOMCTL_unpausedomain`.
//!
//! On any failure the half-built domain is destroyed.

use alloc::vec::Vec;
use core::fmt;

use xenolith_abi::xen::arch_arm::{
    vcpu_guest_context, xen_domctl_vcpucontext, VGCF_online, GUEST_RAM0_BASE,
};
use xenolith_abi::xen::domctl::*;
use xenolith_abi::xen::hypercall::{GuestHandle, DOMID_SELF};
use xenolith_abi::xen::memory::*;
use xenolith_abi::xen::private::*;
use xenolith_builder::{DomainConfig, PlanError, DTB_SPACE};
use xenolith_runtime::hypercall;
use zerocopy::FromZeros;

use crate::xl::{domctl, empty};

/// Where this domain maps the pages it loads (inside its identity-mapped first 4 GiB, above its
/// own RAM).
const WINDOW: u64 = 0xC000_0000;
/// Pages mapped at once.
const BATCH: usize = 256;
const PAGE: u64 = 4096;

/// Why a build failed.
#[derive(Debug)]
pub enum BuildError {
    /// No module of that name in the boot bundle.
    NoModule,
    /// A hypercall failed: which, and Xen's error.
    Hypercall(&'static str, i64),
    /// The image cannot boot as this domain (format, size, device tree).
    Plan(PlanError),
    /// Memory must be a whole number of 2 MiB extents, at least 2.
    Memory,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoModule => write!(f, "no such module in the boot bundle"),
            Self::Hypercall(what, error) => write!(f, "{what} failed with {error}"),
            Self::Plan(error) => write!(f, "{error}"),
            Self::Memory => write!(f, "memory must be an even number of MiB, at least 2"),
        }
    }
}

fn check(what: &'static str, result: i64) -> Result<(), BuildError> {
    if result == 0 {
        Ok(())
    } else {
        Err(BuildError::Hypercall(what, result))
    }
}

/// Reads module `name` from the boot bundle.
pub fn read_module(name: &str) -> Result<Vec<u8>, BuildError> {
    let mut index = 0;
    loop {
        let mut request = XenolithBundleInfo::new_zeroed();
        request.index = index;
        let (result, op) =
            domctl(XENOLITH_DOMCTL_BUNDLE_INFO, DOMID_SELF, DomctlPayload::new(&request));
        if result != 0 {
            return Err(BuildError::NoModule);
        }
        let info: XenolithBundleInfo = op.u.read();
        let length = info.name.iter().position(|&byte| byte == 0).unwrap_or(info.name.len());
        if &info.name[..length] == name.as_bytes() {
            let mut bytes = alloc::vec![0u8; info.size as usize];
            for (chunk_index, chunk) in bytes.chunks_mut(64 * 1024).enumerate() {
                let request = XenolithBundleModule {
                    index,
                    pad: 0,
                    offset: chunk_index as u64 * 64 * 1024,
                    length: chunk.len() as u64,
                    buffer: GuestHandle::new(chunk.as_mut_ptr() as u64),
                };
                let (result, _) =
                    domctl(XENOLITH_DOMCTL_BUNDLE_MODULE, DOMID_SELF, DomctlPayload::new(&request));
                check("reading the module", result)?;
            }
            return Ok(bytes);
        }
        index += 1;
    }
}

/// Copies `bytes` to the new domain's physical address `ipa`, a batch of pages at a time.
fn load(id: u16, ipa: u64, bytes: &[u8]) -> Result<(), BuildError> {
    let first = ipa / PAGE;
    let last = (ipa + bytes.len() as u64).div_ceil(PAGE);
    let mut page = first;
    while page < last {
        let count = ((last - page) as usize).min(BATCH);
        let idxs: Vec<u64> = (0..count as u64).map(|i| page + i).collect();
        let gpfns: Vec<u64> = (0..count as u64).map(|i| WINDOW / PAGE + i).collect();
        let mut errors = alloc::vec![0i32; count];
        let batch = xen_add_to_physmap_batch {
            domid: DOMID_SELF,
            space: XENMAPSPACE_gmfn_foreign as u16,
            size: count as u16,
            u: id,
            idxs: GuestHandle::new(idxs.as_ptr() as u64),
            gpfns: GuestHandle::new(gpfns.as_ptr() as u64),
            errs: GuestHandle::new(errors.as_mut_ptr() as u64),
        };
        check(
            "mapping the domain's pages",
            hypercall::memory_op(XENMEM_add_to_physmap_batch, (&raw const batch) as u64),
        )?;
        if let Some(&error) = errors.iter().find(|&&error| error != 0) {
            return Err(BuildError::Hypercall("mapping a page of the domain", i64::from(error)));
        }
        // Copy the part of `bytes` that falls in these pages.
        let window_start = page * PAGE;
        let window_end = window_start + count as u64 * PAGE;
        let from = ipa.max(window_start);
        let to = (ipa + bytes.len() as u64).min(window_end);
        let source = &bytes[(from - ipa) as usize..(to - ipa) as usize];
        let destination = (WINDOW + (from - window_start)) as *mut u8;
        // SAFETY: the window pages [WINDOW, WINDOW + count pages) were just mapped to the new
        // domain's frames (every entry reported success); this domain's identity map covers them
        // as normal memory, and `destination..+len` lies inside them. Nothing else uses them.
        unsafe { core::ptr::copy_nonoverlapping(source.as_ptr(), destination, source.len()) };
        for gpfn in &gpfns {
            let remove = xen_remove_from_physmap { domid: DOMID_SELF, _pad: [0; 6], gpfn: *gpfn };
            check(
                "unmapping the window",
                hypercall::memory_op(XENMEM_remove_from_physmap, (&raw const remove) as u64),
            )?;
        }
        page += count as u64;
    }
    Ok(())
}

/// Where the built domain's mailbox page is: the page below its DTB. A guest that has
/// something to report to its builder writes a non-zero `u64` at its start.
pub fn mailbox_gfn(memory_mib: u64) -> u64 {
    (GUEST_RAM0_BASE + (memory_mib << 20) - DTB_SPACE - PAGE) / PAGE
}

/// Waits until domain `id` writes a non-zero value to its mailbox (at most `polls` looks, 10 ms
/// of virtual time apart), and returns it (0: it never did). The page is mapped only while it is
/// read: a foreign mapping keeps its owner from giving that page back (`-EBUSY`).
pub fn wait_for_mailbox(id: u16, gfn: u64, polls: u64) -> Result<u64, BuildError> {
    for _ in 0..polls {
        let value = read_mailbox(id, gfn)?;
        if value != 0 {
            return Ok(value);
        }
        sleep_ms(10);
    }
    Ok(0)
}

/// Sleeps `ms` of virtual time (`SCHEDOP_poll` on no port until a deadline).
fn sleep_ms(ms: u64) {
    let _ = xenolith_runtime::events::poll(&[], xenolith_runtime::now_ns() + ms * 1_000_000);
}

/// Domain `id`'s mailbox word, read through a foreign mapping made for the read.
fn read_mailbox(id: u16, gfn: u64) -> Result<u64, BuildError> {
    let idxs = [gfn];
    let gpfns = [WINDOW / PAGE];
    let mut errors = [0i32; 1];
    let batch = xen_add_to_physmap_batch {
        domid: DOMID_SELF,
        space: XENMAPSPACE_gmfn_foreign as u16,
        size: 1,
        u: id,
        idxs: GuestHandle::new(idxs.as_ptr() as u64),
        gpfns: GuestHandle::new(gpfns.as_ptr() as u64),
        errs: GuestHandle::new(errors.as_mut_ptr() as u64),
    };
    check(
        "mapping the mailbox",
        hypercall::memory_op(XENMEM_add_to_physmap_batch, (&raw const batch) as u64),
    )?;
    if errors[0] != 0 {
        return Err(BuildError::Hypercall("mapping the mailbox page", i64::from(errors[0])));
    }
    // SAFETY: WINDOW was just mapped to the domain's mailbox frame (the entry reported success)
    // and is identity-mapped here as normal memory; the other domain writes it, hence the
    // volatile read.
    let value = unsafe { core::ptr::read_volatile(WINDOW as *const u64) };
    let remove = xen_remove_from_physmap { domid: DOMID_SELF, _pad: [0; 6], gpfn: WINDOW / PAGE };
    check(
        "unmapping the mailbox",
        hypercall::memory_op(XENMEM_remove_from_physmap, (&raw const remove) as u64),
    )?;
    Ok(value)
}

/// Takes the last 2 MiB extent of domain `id`'s `memory_mib` back (`XENMEM_decrease_reservation`).
pub fn shrink(id: u16, memory_mib: u64) -> Result<(), BuildError> {
    let extents = [GUEST_RAM0_BASE / PAGE + (memory_mib / 2 - 1) * 512];
    let reservation = xen_memory_reservation {
        extent_start: GuestHandle::new(extents.as_ptr() as u64),
        nr_extents: 1,
        extent_order: 9,
        mem_flags: 0,
        domid: id,
        _pad: [0; 6],
    };
    match hypercall::memory_op(XENMEM_decrease_reservation, (&raw const reservation) as u64) {
        1 => Ok(()),
        done => Err(BuildError::Hypercall("XENMEM_decrease_reservation", done)),
    }
}

/// Builds and unpauses a domain of `vcpus` vCPUs (vCPU 0 started; the guest starts the others
/// with PSCI) from bundle module `module` with `memory_mib` of RAM,
/// `args` as its command line and, if `ramdisk` names a bundle module, that module as its initial
/// ramdisk (xl.cfg `ramdisk`). Returns its id.
pub fn build(
    module: &str,
    ramdisk: Option<&str>,
    memory_mib: u64,
    vcpus: u32,
    args: &str,
) -> Result<u16, BuildError> {
    let id = build_paused(0, module, ramdisk, memory_mib, vcpus, args)?;
    if let Err(error) =
        check("XEN_DOMCTL_unpausedomain", domctl(XEN_DOMCTL_unpausedomain, id, empty()).0)
    {
        let _ = domctl(XEN_DOMCTL_destroydomain, id, empty());
        return Err(error);
    }
    Ok(id)
}

/// [`build`], as domain `id` (0: the core chooses), left paused.
pub fn build_paused(
    id: u16,
    module: &str,
    ramdisk: Option<&str>,
    memory_mib: u64,
    vcpus: u32,
    args: &str,
) -> Result<u16, BuildError> {
    if memory_mib < 2 || !memory_mib.is_multiple_of(2) {
        return Err(BuildError::Memory);
    }
    let image = read_module(module)?;
    let ramdisk = ramdisk.map(read_module).transpose()?;
    let memory = u32::try_from(memory_mib).map_err(|_| BuildError::Memory)?;
    let config = DomainConfig {
        memory_mib: memory,
        vcpus,
        cmdline: args,
        initrd_size: ramdisk.as_ref().map(|bytes| bytes.len() as u64),
        hardware: Default::default(),
        emulated: Default::default(),
    };
    let plan = xenolith_builder::plan(&image, &config).map_err(BuildError::Plan)?;
    let ram = memory_mib << 20;

    let mut config = xen_domctl_createdomain::new_zeroed();
    config.max_vcpus = vcpus;
    config.flags = 0;
    let (result, op) = domctl(XEN_DOMCTL_createdomain, id, DomctlPayload::new(&config));
    check("XEN_DOMCTL_createdomain", result)?;
    let id = op.domain;
    let built = (|| {
        let limit = xen_domctl_max_mem { max_memkb: ram / 1024 };
        check("XEN_DOMCTL_max_mem", domctl(XEN_DOMCTL_max_mem, id, DomctlPayload::new(&limit)).0)?;
        let extents: Vec<u64> =
            (0..ram / (2 << 20)).map(|i| GUEST_RAM0_BASE / PAGE + i * 512).collect();
        let reservation = xen_memory_reservation {
            extent_start: GuestHandle::new(extents.as_ptr() as u64),
            nr_extents: extents.len() as u64,
            extent_order: 9,
            mem_flags: 0,
            domid: id,
            _pad: [0; 6],
        };
        let done = hypercall::memory_op(XENMEM_populate_physmap, (&raw const reservation) as u64);
        if done != extents.len() as i64 {
            return Err(BuildError::Hypercall("XENMEM_populate_physmap", done));
        }
        for chunk in &plan.chunks {
            load(id, chunk.address, &image[chunk.offset as usize..][..chunk.size as usize])?;
        }
        if let (Some(bytes), Some(address)) = (&ramdisk, plan.initrd_address) {
            load(id, address, bytes)?;
        }
        load(id, plan.dtb_address, &plan.dtb)?;
        let mut context = vcpu_guest_context::new_zeroed();
        context.flags = VGCF_online;
        context.user_regs.pc64 = plan.entry;
        context.user_regs.x[..4].copy_from_slice(&plan.registers);
        context.user_regs.cpsr = 0x3c5; // EL1h, DAIF masked
        let request = xen_domctl_vcpucontext {
            vcpu: 0,
            _pad: 0,
            ctxt: GuestHandle::new((&raw const context) as u64),
        };
        check(
            "XEN_DOMCTL_setvcpucontext",
            domctl(XEN_DOMCTL_setvcpucontext, id, DomctlPayload::new(&request)).0,
        )
    })();
    if let Err(error) = built {
        let _ = domctl(XEN_DOMCTL_destroydomain, id, empty());
        return Err(error);
    }
    Ok(id)
}
