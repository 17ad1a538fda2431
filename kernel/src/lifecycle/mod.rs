//! The life of a domain: building one from its prepared boot image (copied as the host tool laid
//! it out: the core parses no image and writes no device tree), giving it its way to
//! xenstore, shutting it down, crashing it alone, destroying it, and restarting it as its policy
//! says (`restart.rs`). Everything here runs with the domain table locked and interrupts masked.
//!
//! # Invariants
//! - A build either completes or leaves nothing allocated.
//! - A domain's frames go back to the allocator, scrubbed, only when it is destroyed, after every
//!   vCPU is off every pCPU and the guest TLBs are flushed.
//! - A domain that shut down is destroyed by the first reschedule after which no pCPU has one of
//!   its vCPUs current ([`reap`]).

mod create;
mod restart;

pub use restart::{build_boot_domains, destroy_or_restart};

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use xenolith_abi::bundle::RestartPolicy;
use xenolith_abi::xen::arch_arm::{GUEST_RAM0_BASE, GUEST_RAM0_SIZE, PRESERVED_REGION_BASE};
use xenolith_abi::xen::hvm::{HVM_NR_PARAMS, HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN};
use xenolith_abi::xen::sched::SHUTDOWN_crash;
use xenolith_kernel::mm::frame::FRAME_SIZE;
use xenolith_kernel::mm::lpae::{AddressSpace, Attributes, MemoryType, Stage2};
use xenolith_kernel::policy::{Capabilities, DomainId};

use crate::arch::guest::{self, VcpuContext};
use core::sync::atomic::Ordering;

use crate::arch::cpu;
use crate::arch::percpu::{CPUS, IDLE};
use crate::domain::{
    Domain, DomainState, Extent, Table, Vcpu, VcpuState, MAX_DOMAINS, MAX_VCPUS_PER_DOMAIN,
    STORE_GFN,
};
use crate::mm::memory::{self, IdentityTables};

/// The most times the core restarts one domain; past it a crash loop stops with a log line.
pub const MAX_RESTARTS: u32 = 1000;

/// What to build a domain from.
pub struct BuildSpec<'a> {
    /// Name (unique).
    pub name: &'a str,
    /// What to copy where (prepared by the host tool), and where vCPU 0 starts.
    pub image: Prepared<'a>,
    /// RAM in MiB.
    pub memory_mib: u32,
    /// vCPUs.
    pub vcpus: u32,
    /// What it may do.
    pub capabilities: Capabilities,
    /// The id to use (a restart keeps its id); `None`: the lowest free one.
    pub id: Option<DomainId>,
    /// What the core does when it stops, and the manifest entry it is rebuilt from.
    pub restart: RestartPolicy,
    /// Index of its entry in the boot manifest's domains, if it has one.
    pub manifest_index: Option<usize>,
    /// Bytes of preserved region to allocate (zeroed) on a first build.
    pub preserved_bytes: u64,
    /// The preserved region of the incarnation before, kept as it was (a restart).
    pub preserved: Option<Extent>,
    /// Restarts so far (0 on a first build).
    pub restarts: u32,
}

/// A prepared boot image with its chunks' bytes found in the bundle.
pub struct Prepared<'a> {
    /// `(guest-physical address, bytes)` runs to copy into the zeroed RAM.
    pub chunks: Vec<(u64, &'a [u8])>,
    /// vCPU 0's first PC.
    pub entry: u64,
    /// vCPU 0's `x0`..`x3`.
    pub registers: [u64; 4],
}

impl<'a> BuildSpec<'a> {
    /// A first build of manifest entry `spec` of `bundle` (the lowest free id, a new preserved
    /// region); `None` if the entry has no prepared image (it is not a boot domain).
    pub fn from_manifest(
        bundle: &'a xenolith_abi::bundle::Bundle<'_>,
        spec: &'a xenolith_abi::bundle::DomainSpec<'_>,
        capabilities: Capabilities,
        manifest_index: Option<usize>,
    ) -> Option<Self> {
        let prepared = spec.prepared.as_ref()?;
        // The bundle's checks put every chunk inside its module; `get` keeps that a lookup.
        let chunks = prepared
            .chunks
            .iter()
            .map(|chunk| {
                let bytes = bundle.module(chunk.module as usize)?;
                let start = usize::try_from(chunk.offset).ok()?;
                let end = start.checked_add(usize::try_from(chunk.size).ok()?)?;
                Some((chunk.address, bytes.get(start..end)?))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            name: spec.name,
            image: Prepared { chunks, entry: prepared.entry, registers: prepared.registers },
            memory_mib: spec.memory_mib,
            vcpus: spec.vcpus,
            capabilities,
            id: None,
            restart: spec.restart,
            manifest_index,
            preserved_bytes: u64::from(spec.preserved_kib) * 1024,
            preserved: None,
            restarts: 0,
        })
    }
}

/// Why building failed; nothing is left allocated.
#[derive(Debug)]
pub enum BuildError {
    /// Not enough free memory.
    OutOfMemory { bytes: u64 },
    /// Too many domains or vCPUs.
    TooMany,
    /// A bad request (name, sizes, a chunk outside RAM).
    Invalid(&'static str),
}

impl core::fmt::Display for BuildError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::OutOfMemory { bytes } => write!(f, "not enough free memory for {bytes} bytes"),
            Self::TooMany => write!(f, "no free domain or vCPU slot"),
            Self::Invalid(why) => write!(f, "{why}"),
        }
    }
}

impl Table {
    /// Builds a domain: RAM, stage 2, image, DTB, vCPU 0 ready to run (the others down). The domain
    /// is returned `Paused`; the caller unpauses it once it is known to the scheduler.
    pub fn build(&mut self, spec: &BuildSpec<'_>) -> Result<DomainId, BuildError> {
        if spec.vcpus == 0 || spec.vcpus > MAX_VCPUS_PER_DOMAIN {
            return Err(BuildError::Invalid("vCPU count out of range"));
        }
        let ram_size = u64::from(spec.memory_mib) << 20;
        if !(FRAME_SIZE..=GUEST_RAM0_SIZE).contains(&ram_size) {
            return Err(BuildError::Invalid("memory size out of range"));
        }
        if self.domains.iter().flatten().any(|domain| domain.name == spec.name) {
            return Err(BuildError::Invalid("a domain with that name exists"));
        }
        // The bundle's checks already keep every chunk and the entry point in RAM; a build never
        // trusts another module's checks for what it writes.
        let in_ram = |address: u64, size: u64| {
            address >= GUEST_RAM0_BASE
                && address.checked_add(size).is_some_and(|end| end <= GUEST_RAM0_BASE + ram_size)
        };
        let image = &spec.image;
        if !image.chunks.iter().all(|&(address, bytes)| in_ram(address, bytes.len() as u64))
            || !in_ram(image.entry, 4)
        {
            return Err(BuildError::Invalid("the prepared image does not lie in the domain's RAM"));
        }
        let id = match spec.id {
            Some(id) if self.domain(id).is_none() && usize::from(id) < MAX_DOMAINS => {
                while self.domains.len() <= usize::from(id) {
                    self.domains.push(None);
                }
                id
            }
            Some(_) => return Err(BuildError::Invalid("that domain id is in use")),
            None => self.free_domain_id().ok_or(BuildError::TooMany)?,
        };
        let slots = self.free_vcpu_slots(spec.vcpus as usize).ok_or(BuildError::TooMany)?;

        let frames = (ram_size / FRAME_SIZE) as usize;
        let align = if ram_size >= 2 << 20 { 512 } else { 1 };
        let ram_phys = memory::FRAMES
            .lock()
            .as_mut()
            .and_then(|frames_allocator| frames_allocator.alloc_contiguous(frames, align))
            .ok_or(BuildError::OutOfMemory { bytes: ram_size })?;
        // From here on, undo on failure.
        let fail = |error: BuildError| {
            if let Some(allocator) = memory::FRAMES.lock().as_mut() {
                let _ = allocator.free_contiguous(ram_phys, frames);
            }
            error
        };
        memory::scrub(ram_phys, ram_size);
        let mut tables = IdentityTables;
        let mut stage2 = AddressSpace::<Stage2>::new(&mut tables)
            .map_err(|_| fail(BuildError::OutOfMemory { bytes: FRAME_SIZE }))?;
        let ram = Attributes { memory: MemoryType::Normal, write: true, execute: true };
        if stage2.map(&mut tables, GUEST_RAM0_BASE, ram_phys, ram_size, ram).is_err() {
            stage2.destroy(&mut tables);
            return Err(fail(BuildError::OutOfMemory { bytes: FRAME_SIZE }));
        }
        // Copy the prepared chunks (the rest of RAM is already zero).
        for &(address, bytes) in &image.chunks {
            memory::copy_to_phys(ram_phys + (address - GUEST_RAM0_BASE), bytes);
        }

        // The preserved region: the last incarnation's, untouched, or a new zeroed one.
        let preserved = match spec.preserved {
            Some(kept) => Some(kept),
            None if spec.preserved_bytes > 0 => {
                let frames = (spec.preserved_bytes / FRAME_SIZE) as usize;
                let phys = memory::FRAMES
                    .lock()
                    .as_mut()
                    .and_then(|allocator| allocator.alloc_contiguous(frames, 1));
                let Some(phys) = phys else {
                    stage2.destroy(&mut tables);
                    return Err(fail(BuildError::OutOfMemory { bytes: spec.preserved_bytes }));
                };
                memory::scrub(phys, spec.preserved_bytes);
                Some(Extent { ipa: PRESERVED_REGION_BASE, phys, size: spec.preserved_bytes })
            }
            None => None,
        };
        // Undoes the preserved region on failure, unless it is the last incarnation's (the
        // caller still owns that one).
        let drop_preserved = |preserved: Option<Extent>| {
            if let (Some(extent), None) = (preserved, spec.preserved) {
                memory::release(extent.phys, (extent.size / FRAME_SIZE) as usize);
            }
        };
        if let Some(extent) = preserved {
            let data = Attributes { memory: MemoryType::Normal, write: true, execute: false };
            if stage2.map(&mut tables, extent.ipa, extent.phys, extent.size, data).is_err() {
                stage2.destroy(&mut tables);
                drop_preserved(preserved);
                return Err(fail(BuildError::OutOfMemory { bytes: FRAME_SIZE }));
            }
        }
        // The xenstore ring page, zeroed: both rings empty.
        let store_page = memory::alloc_zeroed_frame();
        let store_mapped = store_page.is_some_and(|page| {
            let data = Attributes { memory: MemoryType::Normal, write: true, execute: false };
            stage2.map(&mut tables, STORE_GFN * FRAME_SIZE, page, FRAME_SIZE, data).is_ok()
        });
        let Some(store_page) = store_page.filter(|_| store_mapped) else {
            if let Some(page) = store_page {
                memory::release(page, 1);
            }
            stage2.destroy(&mut tables);
            drop_preserved(preserved);
            return Err(fail(BuildError::OutOfMemory { bytes: FRAME_SIZE }));
        };
        let Some(shared_info) = memory::alloc_zeroed_frame() else {
            memory::release(store_page, 1);
            stage2.destroy(&mut tables);
            drop_preserved(preserved);
            return Err(fail(BuildError::OutOfMemory { bytes: FRAME_SIZE }));
        };
        let events = match crate::event::new_table(id, shared_info, spec.vcpus) {
            Ok(events) => events,
            Err(_) => {
                memory::release(shared_info, 1);
                memory::release(store_page, 1);
                stage2.destroy(&mut tables);
                drop_preserved(preserved);
                return Err(fail(BuildError::Invalid("vCPU count out of range")));
            }
        };
        let generation = self.take_generation();
        for (index, &slot) in slots.iter().enumerate() {
            let index = index as u32;
            let context = if index == 0 {
                let mut context = VcpuContext::new(image.entry, image.registers[0], 0);
                context.frame.x[1..4].copy_from_slice(&image.registers[1..]);
                context
            } else {
                VcpuContext::new(0, 0, index)
            };
            let state = if index == 0 { VcpuState::Runnable } else { VcpuState::Down };
            self.vcpus[slot] = Some(Vcpu::new(id, index, context, state, shared_info));
        }
        self.domains[usize::from(id)] = Some(Box::new(Domain {
            id,
            generation,
            name: String::from(spec.name),
            capabilities: spec.capabilities,
            state: DomainState::Paused,
            ram: alloc::vec![Extent { ipa: GUEST_RAM0_BASE, phys: ram_phys, size: ram_size }],
            foreign: Vec::new(),
            stage2,
            vmid: (id + 1) & 0xff,
            vcpus: slots,
            runtime_at_heartbeat: 0,
            sched: xenolith_kernel::sched::VcpuParams::new(id),
            max_memkb: ram_size / 1024,
            vgic: xenolith_kernel::event::vgic::VgicDist::new(),
            shared_info,
            shared_info_gfn: None,
            events,
            grants: xenolith_kernel::grant::GrantState::new(),
            hvm_params: store_params(),
            store_page: Some(store_page),
            restart: spec.restart,
            manifest_index: spec.manifest_index,
            preserved,
            restarts: spec.restarts,
            destroy_requested: false,
        }));
        Ok(id)
    }

    /// Frees a domain that no pCPU runs any more: its vCPU slots, every mapping other domains
    /// have of its frames, its stage 2 and its RAM (scrubbed). The caller has removed its vCPUs
    /// from the scheduler and made sure none is running.
    pub fn destroy(&mut self, id: DomainId) {
        // Peers' ends of its channels become unbound, as `evtchn_destroy` leaves them.
        crate::event::close_all(self, id);
        // Its grant mappings go; its frames others still map stay, as orphans.
        let held = self.grants_on_destroy(id);
        let Some(mut domain) = self.domains.get_mut(usize::from(id)).and_then(Option::take) else {
            return;
        };
        for &slot in &domain.vcpus {
            self.vcpus[slot] = None;
        }
        // Nobody keeps a window onto frames that are about to be reused.
        let mut tables = IdentityTables;
        for mapper in self.domains.iter_mut().flatten() {
            let stage2 = &mut mapper.stage2;
            mapper.foreign.retain(|mapping| {
                if mapping.source == id {
                    let _ = stage2.unmap(&mut tables, mapping.ipa, FRAME_SIZE);
                    false
                } else {
                    true
                }
            });
        }
        guest::flush_guest_tlbs();
        domain.stage2.destroy(&mut tables);
        for extent in &domain.ram {
            release_except(extent.phys, extent.size / FRAME_SIZE, &held);
        }
        crate::grant::release_frames(&mut domain.grants);
        if let Some(page) = domain.store_page {
            release_except(page, 1, &held);
        }
        if let Some(extent) = domain.preserved {
            // Still here: the domain is not being restarted (a restart takes it out first).
            release_except(extent.phys, extent.size / FRAME_SIZE, &held);
        }
        // The event table refers to the shared-info page: drop it first.
        let shared_info = domain.shared_info;
        drop(domain);
        memory::release(shared_info, 1);
    }
}

/// HVM parameters of a new domain: its xenstore ring page at [`STORE_GFN`] (the port comes
/// with [`Table::connect_store`]).
pub fn store_params() -> [u64; HVM_NR_PARAMS as usize] {
    let mut params = [0; HVM_NR_PARAMS as usize];
    params[HVM_PARAM_STORE_PFN as usize] = STORE_GFN;
    params
}

impl Table {
    /// Gives domain `id` its way to xenstore, as Xen's toolstack does at build time: an unbound
    /// port offered to the xenstore domain (`HVM_PARAM_STORE_EVTCHN`) and grant entry
    /// `GNTTAB_RESERVED_XENSTORE` granting that domain its ring page (`xc_dom_gnttab_seed`). Does
    /// nothing for the xenstore domain itself, without a xenstore domain, or if already done.
    /// `xenstore` names that domain when it is not built yet (boot order); `None`: look it up.
    pub fn connect_store(&mut self, id: DomainId, xenstore: Option<DomainId>) {
        let Some(xenstore) = xenstore.or_else(|| self.xenstore_domain()) else { return };
        let Some(domain) = self.domain_mut(id) else { return };
        if id == xenstore || domain.hvm_params[HVM_PARAM_STORE_EVTCHN as usize] != 0 {
            return;
        }
        match domain.events.alloc_unbound(xenstore) {
            Ok(port) => domain.hvm_params[HVM_PARAM_STORE_EVTCHN as usize] = u64::from(port),
            Err(error) => {
                log::error!("domain {id}: no port for xenstore ({error:?})");
                return;
            }
        }
        if domain.store_page.is_some()
            && !crate::grant::seed_xenstore(&mut domain.grants, xenstore, STORE_GFN)
        {
            log::error!("domain {id}: no grant-table frame for its xenstore entry");
        }
    }
}

/// Releases `frames` frames at `phys`, except those in `held` (still mapped elsewhere).
fn release_except(phys: u64, frames: u64, held: &[u64]) {
    let end = phys + frames * FRAME_SIZE;
    let mut run = phys;
    let mut frame = phys;
    while frame < end {
        if held.contains(&frame) {
            if frame > run {
                memory::release(run, ((frame - run) / FRAME_SIZE) as usize);
            }
            run = frame + FRAME_SIZE;
        }
        frame += FRAME_SIZE;
    }
    if end > run {
        memory::release(run, ((end - run) / FRAME_SIZE) as usize);
    }
}

/// Shuts domain `id` down with a Xen `SHUTDOWN_*` reason: its vCPUs stop being scheduled and it
/// is destroyed as soon as no pCPU runs one of them.
pub fn shutdown_domain(table: &mut Table, id: DomainId, reason: u32) {
    let Some(domain) = table.domain_mut(id) else { return };
    if matches!(domain.state, DomainState::Shutdown { .. }) {
        return;
    }
    domain.state = DomainState::Shutdown { reason };
    let name = domain.name.clone();
    let slots = domain.vcpus.clone();
    log::info!("domain {id} ({name}) shut down: {}", shutdown_reason_name(reason));
    crate::event::domain_exception(table);
    for &slot in &slots {
        crate::sched::remove_vcpu(slot);
    }
    for (index, this) in CPUS.iter().enumerate() {
        let current = this.current.load(Ordering::Acquire);
        if current != IDLE && slots.contains(&current) && index != cpu::current_index() {
            crate::arch::smp::kick(index);
        }
    }
}

/// Crashes domain `id` alone, with a log line saying why.
pub fn crash_domain(table: &mut Table, id: DomainId, why: core::fmt::Arguments<'_>) {
    log::error!("domain {id}: {why}; crashing it");
    shutdown_domain(table, id, SHUTDOWN_crash);
}

fn shutdown_reason_name(reason: u32) -> &'static str {
    match reason {
        0 => "poweroff",
        1 => "reboot",
        2 => "suspend",
        3 => "crash",
        4 => "watchdog",
        5 => "soft_reset",
        _ => "unknown reason",
    }
}

/// Destroys every shut-down domain no pCPU is running.
pub fn reap(table: &mut Table) {
    let dead: alloc::vec::Vec<DomainId> = table
        .domains
        .iter()
        .flatten()
        .filter(|domain| matches!(domain.state, DomainState::Shutdown { .. }))
        .filter(|domain| {
            !CPUS.iter().any(|this| {
                let current = this.current.load(Ordering::Acquire);
                current != IDLE && domain.vcpus.contains(&current)
            })
        })
        .map(|domain| domain.id)
        .collect();
    for id in dead {
        let mib = table.domain(id).map_or(0, |domain| domain.ram_bytes() >> 20);
        let restarted = destroy_or_restart(table, id);
        crate::event::domain_exception(table);
        if !restarted {
            log::info!(
                "domain {id} destroyed; {mib} MiB returned to the frame allocator, {} frames free",
                memory::frame_counts().1
            );
        }
    }
}
