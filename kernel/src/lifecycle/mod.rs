//! The life of a domain: building one from its prepared boot image (copied as the host tool laid
//! it out: the core parses no image and writes no device tree), giving it its way to
//! xenstore, shutting it down, crashing it alone, destroying it, and restarting it as its policy
//! says (`restart.rs`). Everything here runs with interrupts masked, and with the domain table
//! locked but for loading a boot-manifest domain's RAM ([`load_ram`]): a restart's multi-MiB
//! scrub and copy stall no other pCPU's hypercalls.
//!
//! # Invariants
//! - A build either completes or leaves nothing allocated.
//! - A domain's frames go back to the allocator only when it is destroyed, after every vCPU is
//!   off every pCPU and the guest TLBs are flushed; they are scrubbed when handed out again
//!   (`mm::memory`).
//! - A domain to be restarted stays in the table, shut down and marked `restarting`, while its
//!   new RAM is loaded; then one hold of the lock destroys it and builds the new incarnation.
//! - A domain that shut down is destroyed by the first reschedule after which no pCPU has one of
//!   its vCPUs current ([`reap`]).

mod create;
mod restart;

pub use restart::{build_boot_domains, restart};

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use xenolith_abi::bundle::ShutdownAction;
use xenolith_abi::bundle::{Bundle, DomainSpec, LoadChunk};
use xenolith_abi::xen::arch_arm::{GUEST_RAM0_BASE, GUEST_RAM0_SIZE, PRESERVED_REGION_BASE};
use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::hvm::{
    HVM_PARAM_CONSOLE_EVTCHN, HVM_PARAM_CONSOLE_PFN, HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN,
};
use xenolith_abi::xen::sched::SHUTDOWN_crash;
use xenolith_kernel::mm::frame::FRAME_SIZE;
use xenolith_kernel::mm::guest_atomic;
use xenolith_kernel::mm::lpae::Attributes;

use xenolith_kernel::policy::{Capabilities, DomainId};

use crate::arch::cpu;
use crate::arch::guest::{self, VcpuContext};
use crate::arch::percpu::{CPUS, IDLE};
use crate::domain::{
    ring_gfn, Domain, DomainState, Extent, Table, VcpuState, RING_CONSOLE, RING_STORE,
};
use crate::mm::domain_memory::{GUEST_PAGE, GUEST_RAM};
use crate::mm::memory::{self, IdentityTables};

/// The most times the core restarts one domain; past it a crash loop stops with a log line.
pub const MAX_RESTARTS: u32 = 1000;

/// What to build a domain from: its boot-manifest entry, and what a restart carries over from
/// the incarnation before.
pub struct BuildSpec<'a> {
    /// Its entry in the boot manifest (name, RAM, vCPUs, scheduling, restart policy, prepared
    /// image, preserved-region size).
    pub entry: &'a DomainSpec<'a>,
    /// Index of that entry in the boot manifest's domains.
    pub manifest_index: usize,
    /// What it may do.
    pub capabilities: Capabilities,
    /// The id to use (a restart keeps its id); `None`: the lowest free one.
    pub id: Option<DomainId>,
    /// The preserved region of the incarnation before, kept as it was (a restart); `None`: a
    /// new, zeroed one of the entry's size.
    pub preserved: Option<Extent>,
    /// Restarts so far (0 on a first build).
    pub restarts: u32,
}

/// Why building failed; nothing is left allocated.
#[derive(Debug)]
pub enum BuildError {
    /// A bad request (name, sizes, a chunk outside RAM, scheduling parameters).
    Invalid(&'static str),
    /// A step the control domain's builder would take through a hypercall failed, with Xen's
    /// error for it.
    Refused(&'static str, XenError),
}

impl core::fmt::Display for BuildError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Invalid(why) => write!(f, "{why}"),
            Self::Refused(step, error) => write!(f, "{step} failed with {error}"),
        }
    }
}

/// Loads a boot-manifest domain's RAM for [`Table::build`]: fresh frames, scrubbed, with its
/// prepared image's chunks copied in. It takes no lock but the frame allocator's, and that only
/// to allocate: the multi-MiB scrub and copy stall no other pCPU's hypercalls.
pub fn load_ram(bundle: &Bundle<'_>, entry: &DomainSpec<'_>) -> Result<Extent, BuildError> {
    let image = entry.prepared.as_ref().ok_or(BuildError::Invalid("no prepared image"))?;
    let size = u64::from(entry.memory_mib) << 20;
    // The bundle's checks already keep the RAM size in range, every chunk and the entry point
    // in RAM and every chunk inside its module; a build never trusts another module's checks
    // for what it writes.
    let in_ram = |address: u64, length: u64| {
        address >= GUEST_RAM0_BASE
            && address.checked_add(length).is_some_and(|end| end <= GUEST_RAM0_BASE + size)
    };
    let bytes = |chunk: &LoadChunk| {
        let start = usize::try_from(chunk.offset).ok()?;
        let end = start.checked_add(usize::try_from(chunk.size).ok()?)?;
        bundle.module(chunk.module as usize)?.get(start..end)
    };
    let fits = |chunk: &LoadChunk| in_ram(chunk.address, chunk.size) && bytes(chunk).is_some();
    if !(FRAME_SIZE..=GUEST_RAM0_SIZE).contains(&size)
        || !image.chunks.iter().all(fits)
        || !in_ram(image.entry, 4)
    {
        return Err(BuildError::Invalid("its RAM size or prepared image is out of range"));
    }
    let frames = (size / FRAME_SIZE) as usize;
    let phys = memory::alloc_scrubbed(frames, frames.min(512))
        .ok_or(BuildError::Refused("giving it RAM", XenError::ENOMEM))?;
    for (chunk, bytes) in image.chunks.iter().filter_map(|chunk| Some((chunk, bytes(chunk)?))) {
        memory::copy_to_phys(phys + (chunk.address - GUEST_RAM0_BASE), bytes);
    }
    Ok(Extent { ipa: GUEST_RAM0_BASE, phys, size })
}

impl Table {
    /// Builds the domain `spec` describes the way the control domain's builder does through
    /// hypercalls, on `ram` that [`load_ram`] loaded for it: an empty domain, that RAM, vCPU 0
    /// ready to run (the others down), then its preserved region. Then gives it its rings'
    /// ports and grants ([`Table::connect_rings`]); it stays paused until [`Table::start`]. On
    /// failure nothing is left allocated, `ram` and a restart's kept preserved region included.
    pub fn build(
        &mut self,
        spec: &BuildSpec<'_>,
        ram: Extent,
        servers: Servers,
    ) -> Result<DomainId, BuildError> {
        let id = self.build_paused(spec, ram).inspect_err(|_| {
            if let Some(kept) = spec.preserved {
                memory::release(kept.phys, (kept.size / FRAME_SIZE) as usize);
            }
        })?;
        self.connect_rings(id, servers);
        Ok(id)
    }

    /// Hands domain `id`, built from `entry`, to the scheduler with the entry's weight, cap and
    /// affinities; refused, it is destroyed (its preserved region with it).
    pub fn start(&mut self, id: DomainId, entry: &DomainSpec<'_>) -> Result<(), BuildError> {
        let DomainSpec { weight, cap, hard_affinity, soft_affinity, .. } = *entry;
        let params = crate::sched::params_for(weight, cap, hard_affinity, soft_affinity, id);
        crate::sched::start_domain(self, id, params).map_err(|why| {
            self.destroy(id);
            BuildError::Invalid(why)
        })?;
        // A domain with a device model waits for it, as xl starts the model before it unpauses
        // the guest: the model's first enabled IOREQ server lets it run (`dm_op`).
        let names = |d: &Domain| d.capabilities.device_model_of.contains(&Some(id));
        if self.domains().any(names) {
            set_paused(self, id, true);
            if let Some(domain) = self.domain_mut(id) {
                domain.waits_for_model = true;
            }
        }
        Ok(())
    }

    /// [`Table::build`] up to a `Paused` domain; on failure the half-built domain is destroyed
    /// (with `ram`, or `ram` is released here) and a restart's kept preserved region is left to
    /// the caller.
    fn build_paused(&mut self, spec: &BuildSpec<'_>, ram: Extent) -> Result<DomainId, BuildError> {
        let created = if self.domains().any(|domain| domain.name == spec.entry.name) {
            Err(BuildError::Invalid("a domain with that name exists"))
        } else {
            self.create_empty(spec.id, spec.entry.vcpus)
                .map_err(|error| BuildError::Refused("creating the domain", error))
        };
        let id =
            created.inspect_err(|_| memory::release(ram.phys, (ram.size / FRAME_SIZE) as usize))?;
        let filled = self.fill(id, spec, ram);
        if filled.is_err() {
            self.destroy(id);
        }
        filled.map(|()| id)
    }

    /// The rest of [`Table::build_paused`] once the empty domain `id` exists.
    fn fill(&mut self, id: DomainId, spec: &BuildSpec<'_>, ram: Extent) -> Result<(), BuildError> {
        let domain = self.domain_mut(id).ok_or(BuildError::Invalid("the new domain is gone"))?;
        domain.name = String::from(spec.entry.name);
        (domain.capabilities, domain.max_memkb) = (spec.capabilities, ram.size / 1024);
        (domain.on_shutdown, domain.manifest_index) =
            (spec.entry.on_shutdown, Some(spec.manifest_index));
        domain.restarts = spec.restarts;
        // Its RAM first: once mapped, destroying the domain frees it.
        if domain.stage2.map(&mut IdentityTables, ram.ipa, ram.phys, ram.size, GUEST_RAM).is_err() {
            // A map that ran out of table frames half-way leaves nothing of it mapped.
            let _ = domain.stage2.unmap(&mut IdentityTables, ram.ipa, ram.size);
            memory::release(ram.phys, (ram.size / FRAME_SIZE) as usize);
            return Err(BuildError::Refused("giving it RAM", XenError::ENOMEM));
        }
        domain.ram_pages = ram.size / FRAME_SIZE;
        // Its passed-through hardware, 1:1 (never owned: never freed with it): device frames
        // and the DMA window the boot check reserved; then its SPIs.
        let hardware = &spec.entry.passthrough;
        let device = Attributes { lent: true, ..Attributes::DEVICE };
        let ranges = hardware.iomem.iter().map(|range| (range.bytes(), device));
        let window = hardware.direct_map.iter().map(|range| (range.bytes(), GUEST_PAGE));
        for (bytes, how) in ranges.chain(window) {
            let (start, size) =
                bytes.map_or((0, 0), |bytes| (bytes.start, bytes.end - bytes.start));
            if domain.stage2.map(&mut IdentityTables, start, start, size, how).is_err() {
                return Err(BuildError::Refused("mapping its hardware", XenError::ENOMEM));
            }
        }
        for &intid in &hardware.irqs {
            crate::event::virq::claim(intid, id);
        }
        let image = spec.entry.prepared.as_ref().ok_or(BuildError::Invalid("no prepared image"))?;
        let slot = domain.vcpus[0];
        let vcpu = self.vcpu_mut(slot).ok_or(BuildError::Invalid("the new vCPU is gone"))?;
        vcpu.context = VcpuContext::new(image.entry, image.registers[0], 0);
        vcpu.context.frame.x[1..4].copy_from_slice(&image.registers[1..]);
        (vcpu.state, vcpu.initialised) = (VcpuState::Runnable, true);
        // The preserved region last: once attached, destroying the domain frees it.
        let preserved_bytes = u64::from(spec.entry.preserved_kib) * 1024;
        let region = match spec.preserved {
            Some(kept) => kept,
            None if preserved_bytes > 0 => {
                let frames = (preserved_bytes / FRAME_SIZE) as usize;
                let phys = memory::alloc_scrubbed(frames, 1).ok_or(BuildError::Refused(
                    "allocating its preserved region",
                    XenError::ENOMEM,
                ))?;
                Extent { ipa: PRESERVED_REGION_BASE, phys, size: preserved_bytes }
            }
            None => return Ok(()),
        };
        let domain = self.domain_mut(id).ok_or(BuildError::Invalid("the new domain is gone"))?;
        let data = GUEST_PAGE;
        if domain
            .stage2
            .map(&mut IdentityTables, region.ipa, region.phys, region.size, data)
            .is_err()
        {
            if spec.preserved.is_none() {
                memory::release(region.phys, (region.size / FRAME_SIZE) as usize);
            }
            return Err(BuildError::Refused("mapping its preserved region", XenError::ENOMEM));
        }
        domain.preserved = Some(region);
        Ok(())
    }

    /// Frees a domain that no pCPU runs any more: its vCPU slots, every mapping other domains
    /// have of its frames, its stage 2 and its RAM (scrubbed). The caller has removed its vCPUs
    /// from the scheduler and made sure none is running.
    pub fn destroy(&mut self, id: DomainId) {
        // Peers' ends of its channels become unbound, as `evtchn_destroy` leaves them.
        crate::event::close_all(self, id);
        // Its grant mappings go; its frames others still map stay, as orphans.
        let held = self.grants_on_destroy(id);
        let Some(mut domain) = self.take(id) else { return };
        crate::event::virq::release(id);
        for &slot in &domain.vcpus {
            self.set_vcpu(slot, None);
        }
        // Nobody keeps a window onto frames that are about to be reused.
        let mut tables = IdentityTables;
        for mapper in self.domains_mut() {
            for mapping in mapper.foreign.extract_if(.., |mapping| mapping.source == id) {
                let _ = mapper.stage2.unmap(&mut tables, mapping.ipa, FRAME_SIZE);
            }
        }
        guest::flush_guest_tlbs();
        domain.stage2.walk(&tables, &mut |leaf| {
            if leaf.attributes.owned {
                release_except(leaf.phys, leaf.size / FRAME_SIZE, &held);
            }
        });
        domain.stage2.destroy(&mut tables);
        crate::grant::release_frames(&mut domain.grants);
        for page in domain.ring_pages.into_iter().flatten() {
            release_except(page, 1, &held);
        }
        if let Some(extent) = domain.preserved {
            // Still here: the domain is not being restarted (a restart takes it out first).
            release_except(extent.phys, extent.size / FRAME_SIZE, &held);
        }
        crate::hypercall::dm_op::release(&mut domain);
        // The event table refers to the shared-info page: drop it first.
        let shared_info = domain.shared_info;
        drop(domain);
        memory::release(shared_info, 1);
    }
}

/// The service domains that serve every domain's rings: which ids they have or will have (boot
/// order); `None` looks them up by capability.
#[derive(Clone, Copy, Debug, Default)]
pub struct Servers {
    /// The xenstore domain.
    pub xenstore: Option<DomainId>,
    /// The console domain.
    pub console: Option<DomainId>,
}

impl Table {
    /// Gives domain `id` its rings as Xen's toolstack does at build time, for each ring whose
    /// service domain exists (or, at boot, will): an unbound port offered to that domain
    /// (`HVM_PARAM_STORE_EVTCHN`, `_CONSOLE_EVTCHN`), the ring's frame (`_STORE_PFN`,
    /// `_CONSOLE_PFN`), and the reserved grant entry granting that domain the ring page
    /// (`xc_dom_gnttab_seed`). Skips a ring for its own server and a ring already connected.
    pub fn connect_rings(&mut self, id: DomainId, servers: Servers) {
        let xenstore = servers.xenstore.or_else(|| self.xenstore_domain());
        let console = servers.console.or_else(|| self.console_domain());
        let rings = [
            (RING_STORE, xenstore, HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN),
            (RING_CONSOLE, console, HVM_PARAM_CONSOLE_EVTCHN, HVM_PARAM_CONSOLE_PFN),
        ];
        for (ring, server, evtchn, pfn) in rings {
            let Some(server) = server else { continue };
            let Some(domain) = self.domain_mut(id) else { return };
            if id == server || domain.hvm_params[evtchn as usize] != 0 {
                continue;
            }
            match domain.events.alloc_unbound(server) {
                Ok(port) => {
                    domain.hvm_params[evtchn as usize] = u64::from(port);
                    domain.hvm_params[pfn as usize] = ring_gfn(ring);
                }
                Err(error) => {
                    log::error!("domain {id}: no port for ring {ring} ({error:?})");
                    continue;
                }
            }
            let gfn = ring_gfn(ring);
            if domain.ring_pages[ring].is_some()
                && !crate::grant::seed_reserved(&mut domain.grants, ring as u32, server, gfn)
            {
                log::error!("domain {id}: no grant-table frame for ring {ring}'s entry");
            }
        }
    }
}

/// Releases `frames` frames at `phys`, except those in `held` (still mapped elsewhere).
fn release_except(phys: u64, frames: u64, held: &[u64]) {
    let end = phys + frames * FRAME_SIZE;
    let mut run = phys;
    // Each held frame, and the end, closes the run of frames before it.
    for frame in (phys..=end).step_by(FRAME_SIZE as usize) {
        if frame == end || held.contains(&frame) {
            if frame > run {
                memory::release(run, ((frame - run) / FRAME_SIZE) as usize);
            }
            run = frame + FRAME_SIZE;
        }
    }
}

/// Shuts domain `id` down with a Xen `SHUTDOWN_*` reason: its vCPUs stop being scheduled, and
/// once no pCPU runs one of them its shutdown action applies (`reap`; a domain the control
/// domain created is kept for the toolstack, which `VIRQ_DOM_EXC` tells).
pub fn shutdown_domain(table: &mut Table, id: DomainId, reason: u32) {
    let Some(domain) = table.domain_mut(id) else { return };
    if matches!(domain.state, DomainState::Shutdown { .. }) {
        return;
    }
    domain.state = DomainState::Shutdown { reason };
    let name = domain.name.clone();
    let slots = domain.vcpus.clone();
    let why = SHUTDOWN_REASONS.get(reason as usize).unwrap_or(&"unknown reason");
    log::info!("domain {id} ({name}) shut down: {why}");
    crate::event::domain_exception(table);
    for &slot in &slots {
        crate::sched::remove_vcpu(slot);
    }
    for index in cpus_running(&slots).filter(|&index| index != cpu::current_index()) {
        crate::arch::smp::kick(index);
    }
}

/// The pCPUs whose current vCPU is in one of `slots`.
fn cpus_running(slots: &[usize]) -> impl Iterator<Item = usize> + '_ {
    CPUS.iter().enumerate().filter_map(|(index, this)| {
        let current = this.current.load(Ordering::Acquire);
        (current != IDLE && slots.contains(&current)).then_some(index)
    })
}

/// Crashes domain `id` alone, with a log line saying why.
pub fn crash_domain(table: &mut Table, id: DomainId, why: core::fmt::Arguments<'_>) {
    log::error!("domain {id}: {why}; crashing it");
    shutdown_domain(table, id, SHUTDOWN_crash);
}

/// Pauses or unpauses domain `id` (`XEN_DOMCTL_pausedomain`, `_unpausedomain`): its vCPUs leave
/// or rejoin the run queues.
pub fn set_paused(table: &mut Table, id: DomainId, pause: bool) {
    let Some(domain) = table.domain_mut(id) else { return };
    domain.state = if pause { DomainState::Paused } else { DomainState::Running };
    for slot in domain.vcpus.clone() {
        if pause {
            crate::sched::sleep(slot);
        } else if table.vcpu(slot).is_some_and(|v| v.state == VcpuState::Runnable) {
            crate::sched::wake(slot);
        }
    }
}

/// Xen's `SHUTDOWN_*` reasons by number, as the shutdown log line names them.
const SHUTDOWN_REASONS: [&str; 6] =
    ["poweroff", "reboot", "suspend", "crash", "watchdog", "soft_reset"];

/// Crashes every domain that kept a shared word changing under the core's bounded updates
/// (`guest_atomic`), then destroys every shut-down domain no pCPU is running, but for those its
/// restart policy brings back: they are marked `restarting` and returned with their
/// boot-manifest entries' indices, for [`restart`] once the caller has unlocked the table.
pub fn reap(table: &mut Table) -> Vec<(DomainId, usize)> {
    let contended = guest_atomic::take_contended();
    for id in (0..64).filter(|&id| contended & (1 << id) != 0) {
        if table.domain(id).is_some() {
            crash_domain(
                table,
                id,
                format_args!("it kept a word it shares with the core changing"),
            );
        }
    }
    let dead: Vec<DomainId> = table
        .domains()
        .filter(|domain| match domain.state {
            // `preserve`: kept, shut down, until destroyed on request.
            DomainState::Shutdown { reason } => {
                domain.destroy_requested
                    || domain.on_shutdown.for_reason(reason) != ShutdownAction::Preserve
            }
            _ => false,
        })
        .filter(|domain| !domain.restarting && cpus_running(&domain.vcpus).next().is_none())
        .map(|domain| domain.id)
        .collect();
    let mut restarts = Vec::new();
    for id in dead {
        if let Some(index) = restart::mark_for_restart(table, id) {
            restarts.push((id, index));
            continue;
        }
        let mib = table.domain(id).map_or(0, |domain| domain.ram_bytes() >> 20);
        table.destroy(id);
        crate::event::domain_exception(table);
        log::info!(
            "domain {id} destroyed; {mib} MiB returned to the frame allocator, {} frames free",
            memory::frame_counts().1
        );
    }
    restarts
}
