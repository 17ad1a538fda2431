//! Domains and their vCPUs: the records, building a domain from an ELF image, and ending one.
//!
//! A domain owns one contiguous block of frames as its RAM (mapped in its stage 2 at Xen's
//! `GUEST_RAM0_BASE`), its stage-2 tables, a VMID and its vCPUs. Building from outside the core
//! (the control domain's builder) uses the same steps through domctl.
//!
//! # Invariants
//! - One lock ([`TABLE`]) guards every domain and vCPU record; it is taken before the scheduler's,
//!   and only with interrupts masked (exception handlers run masked; boot code masks them).
//! - A vCPU's saved context is valid only while it is not running; the pCPU running it holds its
//!   live state (trap frame and registers) and saves it under the lock before anyone else may run
//!   it.
//! - A domain's frames go back to the allocator, scrubbed, only when it is destroyed, after every
//!   vCPU is off every pCPU and the guest TLBs are flushed.
//! - Domain ids are never reused while a record exists; the generation grows on every rebuild.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use spin::Mutex;
use xenolith_abi::bundle::RestartPolicy;
use xenolith_abi::xen::arch_arm::{
    GUEST_MAGIC_BASE, GUEST_MAGIC_XENSTORE_PFN_OFFSET, GUEST_RAM0_BASE, GUEST_RAM0_SIZE,
    PRESERVED_REGION_BASE,
};
use xenolith_abi::xen::hvm::{HVM_NR_PARAMS, HVM_PARAM_STORE_EVTCHN, HVM_PARAM_STORE_PFN};
use xenolith_kernel::elf::ElfImage;
use xenolith_kernel::frame::FRAME_SIZE;
use xenolith_kernel::guest_dtb::{self, GuestDtbSpec};
use xenolith_kernel::lpae::{AddressSpace, Attributes, MemoryType, Stage2};
use xenolith_kernel::policy::{Capabilities, DomainId};

use crate::arch::guest::{self, VcpuContext};
use crate::memory::{self, IdentityTables};

/// Most domains at once.
pub const MAX_DOMAINS: usize = 64;
/// Most vCPUs at once, over all domains.
pub const MAX_VCPUS: usize = 64;
/// Most vCPUs of one domain.
pub const MAX_VCPUS_PER_DOMAIN: u32 = 8;
/// Bytes reserved at the top of a domain's RAM for its DTB.
const DTB_SPACE: u64 = 64 * 1024;
/// The guest frame of every domain's xenstore ring page (`HVM_PARAM_STORE_PFN`), where Xen's
/// toolstack puts it on Arm (`GUEST_MAGIC_BASE` + `XENSTORE_PFN_OFFSET`).
pub const STORE_GFN: u64 = GUEST_MAGIC_BASE / FRAME_SIZE + GUEST_MAGIC_XENSTORE_PFN_OFFSET;
/// The most times the core restarts one domain; past it a crash loop stops with a log line.
pub const MAX_RESTARTS: u32 = 1000;

/// Where a domain is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainState {
    /// Its vCPUs may run.
    Running,
    /// Paused by a domctl.
    Paused,
    /// Shut down with a Xen `SHUTDOWN_*` reason, not yet destroyed.
    Shutdown { reason: u32 },
}

/// Where a vCPU is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcpuState {
    /// May run (running or waiting for a pCPU).
    Runnable,
    /// Waits for an event (`SCHEDOP_block`).
    Blocked,
    /// Not brought up yet, or brought down (`VCPUOP_down`, PSCI CPU_OFF).
    Down,
}

/// One vCPU.
pub struct Vcpu {
    /// Its domain.
    pub domain: DomainId,
    /// Its index within the domain.
    pub index: u32,
    /// Saved state (valid while not running).
    pub context: VcpuContext,
    /// Scheduling state.
    pub state: VcpuState,
    /// Absolute deadline (core nanoseconds) of `VCPUOP_set_singleshot_timer`, if armed.
    pub singleshot_deadline: Option<u64>,
    /// Nanoseconds this vCPU has run, up to its last switch out.
    pub runtime_ns: u64,
    /// It has a context to run (its domain's builder or PSCI CPU_ON gave it one).
    pub initialised: bool,
    /// Its redistributor and private interrupts.
    pub vgic: xenolith_kernel::vgic::VgicCpu,
    /// Physical address of its `vcpu_info`: in the shared-info page for vCPU 0, or where
    /// `VCPUOP_register_vcpu_info` put it; `None`: no upcalls (Xen's `dummy_vcpu_info`).
    pub vcpu_info: Option<u64>,
    /// `VCPUOP_register_vcpu_info` succeeded (it may be done once).
    pub vcpu_info_registered: bool,
    /// The ports a `SCHEDOP_poll` waits on, while it waits.
    pub poll: Option<Vec<xenolith_kernel::evtchn::Port>>,
    /// When that poll times out (core nanoseconds).
    pub poll_deadline: Option<u64>,
}

impl Vcpu {
    /// A vCPU record as created: `vcpu_info` in the shared-info page at `shared_info` for vCPU 0.
    pub fn new(
        domain: DomainId,
        index: u32,
        context: VcpuContext,
        state: VcpuState,
        shared_info: u64,
    ) -> Self {
        Self {
            domain,
            index,
            context,
            state,
            singleshot_deadline: None,
            runtime_ns: 0,
            initialised: state != VcpuState::Down,
            vgic: xenolith_kernel::vgic::VgicCpu::new(),
            vcpu_info: (index == 0).then_some(shared_info),
            vcpu_info_registered: false,
            poll: None,
            poll_deadline: None,
        }
    }
}

/// What to build a domain from.
pub struct BuildSpec<'a> {
    /// Name (unique).
    pub name: &'a str,
    /// The ELF image.
    pub image: &'a [u8],
    /// RAM in MiB.
    pub memory_mib: u32,
    /// vCPUs.
    pub vcpus: u32,
    /// What it may do.
    pub capabilities: Capabilities,
    /// Its `/chosen/bootargs`.
    pub cmdline: &'a str,
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

impl<'a> BuildSpec<'a> {
    /// A first build of manifest entry `spec` (the lowest free id, a new preserved region).
    pub fn from_manifest(
        spec: &xenolith_abi::bundle::DomainSpec<'a>,
        image: &'a [u8],
        capabilities: Capabilities,
        manifest_index: Option<usize>,
    ) -> Self {
        Self {
            name: spec.name,
            image,
            memory_mib: spec.memory_mib,
            vcpus: spec.vcpus,
            capabilities,
            cmdline: spec.cmdline,
            id: None,
            restart: spec.restart,
            manifest_index,
            preserved_bytes: u64::from(spec.preserved_kib) * 1024,
            preserved: None,
            restarts: 0,
        }
    }
}

/// One domain.
pub struct Domain {
    /// Xen domain id.
    pub id: DomainId,
    /// Incarnation.
    pub generation: u32,
    /// Name.
    pub name: String,
    /// Capabilities.
    pub capabilities: Capabilities,
    /// Life-cycle state.
    pub state: DomainState,
    /// Its RAM: blocks of frames it owns, each mapped at `ipa` in its stage 2.
    pub ram: Vec<Extent>,
    /// Other domains' frames mapped into this one (`XENMAPSPACE_gmfn_foreign`).
    pub foreign: Vec<ForeignMapping>,
    /// Its stage 2.
    pub stage2: AddressSpace<Stage2>,
    /// VMID (8 bits used).
    pub vmid: u16,
    /// Global vCPU slots of its vCPUs, by index.
    pub vcpus: Vec<usize>,
    /// Run time of its vCPUs at the last heartbeat (for the share report).
    pub runtime_at_heartbeat: u64,
    /// Scheduling parameters of its vCPUs (weight and cap are per domain; affinity per vCPU is
    /// kept in the scheduler and here as the domain-wide default).
    pub sched: xenolith_kernel::sched::VcpuParams,
    /// `XEN_DOMCTL_max_mem` limit in KiB (informational: RAM is fixed at build time).
    pub max_memkb: u64,
    /// Its virtual distributor.
    pub vgic: xenolith_kernel::vgic::VgicDist,
    /// Its shared-info page (`xen/include/public/xen.h` `struct shared_info`), owned by the core.
    pub shared_info: u64,
    /// Where the domain mapped its shared-info page (`XENMAPSPACE_shared_info`), if it did.
    pub shared_info_gfn: Option<u64>,
    /// Its event channels (their bits live in the shared-info page).
    pub events: xenolith_kernel::evtchn::EventTable<'static>,
    /// Its grant table and the grants it maps.
    pub grants: crate::grant_op::GrantState,
    /// `HVMOP_{set,get}_param` values by `HVM_PARAM_*` (`hvm/params.h`).
    pub hvm_params: [u64; HVM_NR_PARAMS as usize],
    /// Its xenstore ring page (owned by it, mapped at [`STORE_GFN`]), if it has one.
    pub store_page: Option<u64>,
    /// What the core does when it stops.
    pub restart: RestartPolicy,
    /// Its boot-manifest entry (what a restart rebuilds it from).
    pub manifest_index: Option<usize>,
    /// Its preserved region (mapped at `PRESERVED_REGION_BASE`), kept across restarts.
    pub preserved: Option<Extent>,
    /// How many times the core restarted it.
    pub restarts: u32,
    /// Destroyed on request (`XEN_DOMCTL_destroydomain`): never restarted.
    pub destroy_requested: bool,
}

/// A block of frames a domain owns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Extent {
    /// Where it is mapped in the domain.
    pub ipa: u64,
    /// Where it is in physical memory.
    pub phys: u64,
    /// Bytes (a multiple of the frame size).
    pub size: u64,
}

/// One page of another domain mapped into this one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForeignMapping {
    /// Where it is mapped in this domain.
    pub ipa: u64,
    /// The domain that owns the frame.
    pub source: DomainId,
}

impl Domain {
    /// Bytes of RAM the domain owns.
    pub fn ram_bytes(&self) -> u64 {
        self.ram.iter().map(|extent| extent.size).sum()
    }

    /// Physical address of guest frame `gfn` if it is the domain's own RAM, or its xenstore ring
    /// page (a frame it owns and may grant, as Xen's magic pages are).
    pub fn ram_frame(&self, gfn: u64) -> Option<u64> {
        if gfn == STORE_GFN {
            if let Some(page) = self.store_page {
                return Some(page);
            }
        }
        let ipa = gfn.checked_mul(FRAME_SIZE)?;
        self.ram
            .iter()
            .find(|extent| (extent.ipa..extent.ipa + extent.size).contains(&ipa))
            .map(|extent| extent.phys + (ipa - extent.ipa))
    }
}

/// Every domain and vCPU.
pub struct Table {
    /// By domain id.
    pub domains: Vec<Option<Box<Domain>>>,
    /// By global vCPU slot.
    pub vcpus: Vec<Option<Vcpu>>,
    /// Frames of destroyed domains still grant-mapped elsewhere, with how many mappings hold
    /// each; freed (scrubbed) when the count reaches zero.
    pub orphans: alloc::collections::BTreeMap<u64, u32>,
    next_generation: u32,
}

/// The table.
pub static TABLE: Mutex<Table> = Mutex::new(Table {
    domains: Vec::new(),
    vcpus: Vec::new(),
    orphans: alloc::collections::BTreeMap::new(),
    next_generation: 1,
});

/// Why building failed; nothing is left allocated.
#[derive(Debug)]
pub enum BuildError {
    /// The image is no usable ELF, or does not fit.
    Image(xenolith_kernel::elf::ElfError),
    /// Not enough free memory.
    OutOfMemory { bytes: u64 },
    /// Too many domains or vCPUs.
    TooMany,
    /// A bad request (name, sizes).
    Invalid(&'static str),
    /// The DTB did not fit.
    Dtb,
}

impl core::fmt::Display for BuildError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Image(error) => write!(f, "image: {error}"),
            Self::OutOfMemory { bytes } => write!(f, "not enough free memory for {bytes} bytes"),
            Self::TooMany => write!(f, "no free domain or vCPU slot"),
            Self::Invalid(why) => write!(f, "{why}"),
            Self::Dtb => write!(f, "the domain's DTB does not fit"),
        }
    }
}

impl Table {
    /// The domain with id `id`, if it exists.
    pub fn domain(&self, id: DomainId) -> Option<&Domain> {
        self.domains.get(usize::from(id))?.as_deref()
    }

    /// The domain with id `id`, if it exists.
    pub fn domain_mut(&mut self, id: DomainId) -> Option<&mut Domain> {
        self.domains.get_mut(usize::from(id))?.as_deref_mut()
    }

    /// The vCPU in slot `slot`.
    pub fn vcpu(&self, slot: usize) -> Option<&Vcpu> {
        self.vcpus.get(slot)?.as_ref()
    }

    /// The vCPU in slot `slot`.
    pub fn vcpu_mut(&mut self, slot: usize) -> Option<&mut Vcpu> {
        self.vcpus.get_mut(slot)?.as_mut()
    }

    pub(crate) fn free_domain_id(&mut self) -> Option<DomainId> {
        if let Some(index) = self.domains.iter().position(Option::is_none) {
            return DomainId::try_from(index).ok();
        }
        if self.domains.len() < MAX_DOMAINS {
            self.domains.push(None);
            return DomainId::try_from(self.domains.len() - 1).ok();
        }
        None
    }

    /// The next incarnation number.
    pub(crate) fn take_generation(&mut self) -> u32 {
        let generation = self.next_generation;
        self.next_generation += 1;
        generation
    }

    pub(crate) fn free_vcpu_slots(&mut self, count: usize) -> Option<Vec<usize>> {
        while self.vcpus.len() < MAX_VCPUS {
            self.vcpus.push(None);
        }
        let free: Vec<usize> =
            (0..self.vcpus.len()).filter(|&slot| self.vcpus[slot].is_none()).take(count).collect();
        (free.len() == count).then_some(free)
    }

    /// Builds a domain: RAM, stage 2, image, DTB, vCPU 0 ready to run (the others down). The domain
    /// is returned `Paused`; the caller unpauses it once it is known to the scheduler.
    pub fn build(&mut self, spec: &BuildSpec<'_>) -> Result<DomainId, BuildError> {
        if spec.vcpus == 0 || spec.vcpus > MAX_VCPUS_PER_DOMAIN {
            return Err(BuildError::Invalid("vCPU count out of range"));
        }
        let ram_size = u64::from(spec.memory_mib) << 20;
        if !(2 * DTB_SPACE..=GUEST_RAM0_SIZE).contains(&ram_size) {
            return Err(BuildError::Invalid("memory size out of range"));
        }
        if self.domains.iter().flatten().any(|domain| domain.name == spec.name) {
            return Err(BuildError::Invalid("a domain with that name exists"));
        }
        let image = ElfImage::parse(spec.image).map_err(BuildError::Image)?;
        image.check_fits(GUEST_RAM0_BASE, ram_size - DTB_SPACE).map_err(BuildError::Image)?;
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
        // Copy the image's segments (the rest of RAM is already zero).
        for segment in image.segments() {
            let offset = segment.address - GUEST_RAM0_BASE;
            let bytes = &spec.image[segment.file_offset as usize..][..segment.file_size as usize];
            memory::copy_to_phys(ram_phys + offset, bytes);
        }
        // The DTB at the top of RAM.
        let dtb_ipa = GUEST_RAM0_BASE + ram_size - DTB_SPACE;
        let mut dtb = alloc::vec![0u8; DTB_SPACE as usize];
        let dtb_spec = GuestDtbSpec {
            vcpus: spec.vcpus,
            ram: &[(GUEST_RAM0_BASE, ram_size)],
            bootargs: spec.cmdline,
            initrd: None,
            clock_frequency: None,
            gic_redistributors: spec.vcpus,
            console_uart: None,
        };
        let dtb_len = match guest_dtb::build(&dtb_spec, &mut dtb) {
            Ok(len) => len,
            Err(_) => {
                stage2.destroy(&mut tables);
                return Err(fail(BuildError::Dtb));
            }
        };
        memory::copy_to_phys(ram_phys + (dtb_ipa - GUEST_RAM0_BASE), &dtb[..dtb_len]);

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
                VcpuContext::new(image.entry, dtb_ipa, 0)
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
            vgic: xenolith_kernel::vgic::VgicDist::new(),
            shared_info,
            shared_info_gfn: None,
            events,
            grants: crate::grant_op::GrantState::new(),
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
        domain.grants.release_frames();
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
pub(crate) fn store_params() -> [u64; HVM_NR_PARAMS as usize] {
    let mut params = [0; HVM_NR_PARAMS as usize];
    params[HVM_PARAM_STORE_PFN as usize] = STORE_GFN;
    params
}

impl Table {
    /// The xenstore domain (the one holding `xenstore`), if one exists.
    pub fn xenstore_domain(&self) -> Option<DomainId> {
        self.domains.iter().flatten().find(|domain| domain.capabilities.xenstore).map(|d| d.id)
    }

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
        if domain.store_page.is_some() && !domain.grants.seed_xenstore(xenstore, STORE_GFN) {
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

/// The capabilities a manifest entry grants, with domain names resolved to the ids the boot
/// domains get (their manifest order). Names of domains not built at boot are dropped with a
/// warning: their ids are not known yet.
fn resolve_capabilities(
    manifest: &xenolith_abi::bundle::BootManifest<'_>,
    spec: &xenolith_abi::bundle::DomainSpec<'_>,
) -> Capabilities {
    use xenolith_abi::bundle::Capability;
    let boot_id = |name: &str| {
        manifest
            .domains
            .iter()
            .filter(|domain| domain.boot)
            .position(|domain| domain.name == name)
            .and_then(|index| DomainId::try_from(index).ok())
    };
    let mut capabilities = Capabilities::default();
    let add = |list: &mut [Option<DomainId>; xenolith_kernel::policy::MAX_TARGETS],
               target: &str| {
        match (boot_id(target), list.iter_mut().find(|slot| slot.is_none())) {
            (Some(id), Some(slot)) => *slot = Some(id),
            _ => log::warn!(
                "domain {}: capability target {target:?} not resolved at boot; ignored",
                spec.name
            ),
        }
    };
    for capability in &spec.capabilities {
        match capability {
            Capability::Control => capabilities.control = true,
            Capability::Xenstore => capabilities.xenstore = true,
            Capability::Console => capabilities.console = true,
            Capability::DeviceModel { target } => add(&mut capabilities.device_model_of, target),
            Capability::Introspect { target } => add(&mut capabilities.introspect, target),
            Capability::Hardware { device } => {
                log::warn!(
                    "domain {}: hardware:{device} passthrough is not implemented; ignored",
                    spec.name
                );
            }
        }
    }
    capabilities
}

/// The id the manifest's xenstore domain gets at boot (its place among the boot domains).
fn boot_xenstore(manifest: &xenolith_abi::bundle::BootManifest<'_>) -> Option<DomainId> {
    manifest
        .domains
        .iter()
        .filter(|domain| domain.boot)
        .position(|domain| {
            domain.capabilities.contains(&xenolith_abi::bundle::Capability::Xenstore)
        })
        .and_then(|index| DomainId::try_from(index).ok())
}

/// Rebuilds domain `id` after it stopped, if its restart policy asks for it (`reason` is its
/// Xen `SHUTDOWN_*` reason): from its pristine image in the boot bundle, with the same id, a new
/// generation and its preserved region as it was. The old incarnation is destroyed here; the
/// caller has made sure no pCPU runs it. Returns whether it was rebuilt.
pub fn destroy_or_restart(table: &mut Table, id: DomainId) -> bool {
    use xenolith_abi::xen::sched::SHUTDOWN_crash;
    let Some(domain) = table.domain_mut(id) else { return false };
    let reason = match domain.state {
        DomainState::Shutdown { reason } => reason,
        _ => SHUTDOWN_crash,
    };
    let wanted = !domain.destroy_requested
        && match domain.restart {
            RestartPolicy::Never => false,
            RestartPolicy::OnCrash => reason == SHUTDOWN_crash,
            RestartPolicy::Always => true,
        };
    let bundle = boot_bundle();
    let spec = domain
        .manifest_index
        .and_then(|index| Some((bundle?, bundle?.manifest.domains.get(index)?)));
    let (Some((bundle, spec)), true) = (spec, wanted) else {
        table.destroy(id);
        return false;
    };
    let restarts = domain.restarts + 1;
    if restarts > MAX_RESTARTS {
        log::error!("domain {id}: restarted {MAX_RESTARTS} times already; not restarted again");
        table.destroy(id);
        return false;
    }
    // The preserved region leaves with the record, so destroy does not free it.
    let preserved = domain.preserved.take();
    let capabilities = domain.capabilities;
    let manifest_index = domain.manifest_index;
    table.destroy(id);
    let Some(image) = bundle.domain_image(spec) else {
        log::error!("domain {id}: its image is gone from the boot bundle; not restarted");
        drop_region(preserved);
        return false;
    };
    let build = BuildSpec {
        id: Some(id),
        preserved,
        restarts,
        ..BuildSpec::from_manifest(spec, image, capabilities, manifest_index)
    };
    if let Err(error) = table.build(&build) {
        log::error!("domain {id} ({}): not restarted: {error}", spec.name);
        drop_region(preserved);
        return false;
    }
    table.connect_store(id, None);
    if let Err(error) = start_from_manifest(table, id, spec) {
        log::error!("domain {id} ({}): not restarted: {error}", spec.name);
        if let Some(domain) = table.domain_mut(id) {
            domain.restart = RestartPolicy::Never;
        }
        table.destroy(id);
        return false;
    }
    let generation = table.domain(id).map_or(0, |domain| domain.generation);
    log::info!(
        "domain {id} ({}) restarted: generation {generation}, restart {restarts}{}",
        spec.name,
        if preserved.is_some() { ", preserved region kept" } else { "" }
    );
    true
}

/// Hands domain `id`, built from manifest entry `spec`, to the scheduler with the entry's weight,
/// cap and affinities.
fn start_from_manifest(
    table: &mut Table,
    id: DomainId,
    spec: &xenolith_abi::bundle::DomainSpec<'_>,
) -> Result<(), &'static str> {
    let params = crate::schedule::params_for(
        spec.weight,
        spec.cap,
        spec.hard_affinity,
        spec.soft_affinity,
        id,
    );
    crate::schedule::start_domain(table, id, params)
}

/// Frees a preserved region no incarnation will use.
fn drop_region(region: Option<Extent>) {
    if let Some(extent) = region {
        memory::release(extent.phys, (extent.size / FRAME_SIZE) as usize);
    }
}

/// Builds and starts every domain the manifest marks `boot = true`, in manifest order. A domain
/// that cannot be built is reported and skipped; the others still start.
/// The boot bundle, kept for the control domain's builder (`XENOLITH_DOMCTL_BUNDLE_*`).
static BOOT_BUNDLE: spin::Once<xenolith_abi::bundle::Bundle<'static>> = spin::Once::new();

/// The boot bundle, if the system booted with one.
pub fn boot_bundle() -> Option<&'static xenolith_abi::bundle::Bundle<'static>> {
    BOOT_BUNDLE.get()
}

/// Keeps the boot bundle for the life of the system (its memory stays reserved).
pub fn keep_boot_bundle(bundle: xenolith_abi::bundle::Bundle<'static>) {
    BOOT_BUNDLE.call_once(|| bundle);
}

/// Runs with interrupts masked (the caller's duty: the timer interrupt takes the same locks).
pub fn build_boot_domains(bundle: &xenolith_abi::bundle::Bundle<'_>) {
    let manifest = &bundle.manifest;
    for spec in manifest.domains.iter().filter(|spec| spec.boot) {
        let Some(image) = bundle.domain_image(spec) else {
            log::error!(
                "domain {}: its image module is missing from the bundle; not built",
                spec.name
            );
            continue;
        };
        let build = BuildSpec::from_manifest(
            spec,
            image,
            resolve_capabilities(manifest, spec),
            manifest.domains.iter().position(|other| other.name == spec.name),
        );
        let mut table = TABLE.lock();
        let free_before = memory::frame_counts().1;
        let id = match table.build(&build) {
            Ok(id) => id,
            Err(error) => {
                log::error!("domain {}: not built: {error}", spec.name);
                continue;
            }
        };
        table.connect_store(id, boot_xenstore(manifest));
        if let Err(error) = start_from_manifest(&mut table, id, spec) {
            log::error!("domain {id} ({}): not started: {error}", spec.name);
            table.destroy(id);
            continue;
        }
        let entry = table
            .vcpu(table.domain(id).map_or(0, |domain| domain.vcpus[0]))
            .map_or(0, |vcpu| vcpu.context.frame.elr);
        let generation = table.domain(id).map_or(0, |domain| domain.generation);
        log::info!(
            "domain {id} ({}) built: generation {generation}, {} MiB, {} vCPU(s), entry {entry:#x}, weight {}, cap {}; {free_before} frames were free before",
            spec.name,
            spec.memory_mib,
            spec.vcpus,
            spec.weight,
            spec.cap
        );
    }
}
