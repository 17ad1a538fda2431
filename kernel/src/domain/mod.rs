//! Domains and their vCPUs: the records every layer above reads, the one table that holds them,
//! and who is calling (a hypercall's [`Caller`]). Building, stopping and restarting domains is
//! `lifecycle`'s; this module only describes them.
//!
//! A domain owns blocks of frames as its RAM (mapped in its stage 2 at Xen's `GUEST_RAM0_BASE`),
//! its stage-2 tables, a VMID and its vCPUs.
//!
//! # Locking
//! [`TABLE`] holds every domain and vCPU record. Its holder either has the whole table
//! ([`TableLock::lock`]: creating, destroying, scheduling, and every control operation, as Xen's
//! `domctl_lock` serialises those), or is one of many readers, each holding the records of one
//! domain, or two ([`TableLock::local`]: the hypercalls a domain makes on itself and on a peer's
//! event channel, and the return to the guest). So hypercalls of different domains on different
//! pCPUs run side by side.
//!
//! # Invariants
//! - A domain's records (its [`Domain`] and its [`Vcpu`]s) are read or changed only by the holder
//!   of the whole table or of that domain ([`Record`]). The set of domains and vCPU slots changes
//!   only under the whole table.
//! - Two domain locks are taken in domain-id order. The table is taken before the scheduler's
//!   lock, and only with interrupts masked (exception handlers run masked; boot code masks them).
//! - A vCPU's saved context is valid only while it is not running; the pCPU running it holds its
//!   live state (trap frame and registers) and saves it under the lock before anyone else may run
//!   it.
//! - Domain ids are never reused while a record exists; the generation grows on every rebuild.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::UnsafeCell;

use crate::arch::lock::{RawLock, RawShared};
use lock_api::RawMutex;
use xenolith_abi::bundle::ShutdownActions;
use xenolith_abi::xen::arch_arm::{
    GUEST_MAGIC_BASE, GUEST_MAGIC_CONSOLE_PFN_OFFSET, GUEST_MAGIC_XENSTORE_PFN_OFFSET,
};
use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::hvm::HVM_NR_PARAMS;
use xenolith_abi::xen::vcpu::{vcpu_runstate_info, RUNSTATE_offline};
use xenolith_kernel::mm::frame::FRAME_SIZE;
use xenolith_kernel::mm::lpae::{AddressSpace, Stage2};
use xenolith_kernel::policy::{self, Capabilities, DomainId, Operation};

use crate::arch::guest::VcpuContext;

/// Most domains at once.
pub const MAX_DOMAINS: usize = 64;
/// Most vCPUs at once, over all domains.
pub const MAX_VCPUS: usize = 64;
/// Most vCPUs of one domain.
pub const MAX_VCPUS_PER_DOMAIN: u32 = 8;
/// The rings Xen's toolstack gives every domain on a page of their own, each served by a service
/// domain: indexed as their frame's offset from `GUEST_MAGIC_BASE` (`CONSOLE_PFN_OFFSET` 0,
/// `XENSTORE_PFN_OFFSET` 1, `tools/libs/guest/xg_dom_arm.c`), which is also their reserved grant
/// entry (`GNTTAB_RESERVED_CONSOLE` 0, `GNTTAB_RESERVED_XENSTORE` 1, `grant_table.h`).
pub const RING_CONSOLE: usize = GUEST_MAGIC_CONSOLE_PFN_OFFSET as usize;
/// See [`RING_CONSOLE`].
pub const RING_STORE: usize = GUEST_MAGIC_XENSTORE_PFN_OFFSET as usize;
/// The guest frame of ring `ring`'s page.
pub const fn ring_gfn(ring: usize) -> u64 {
    GUEST_MAGIC_BASE / FRAME_SIZE + ring as u64
}

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
    /// Waits for its device model to answer an access (`crate::hypercall::dm_op`); only that
    /// answer wakes it.
    WaitingIo,
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
    /// Nanoseconds this vCPU has run, up to its last switch out.
    pub runtime_ns: u64,
    /// The pCPU it runs or last ran on (Xen's `v->processor`).
    pub processor: u32,
    /// It has a context to run (its domain's builder or PSCI CPU_ON gave it one).
    pub initialised: bool,
    /// Its redistributor and private interrupts.
    pub vgic: xenolith_kernel::event::vgic::VgicCpu,
    /// Physical address of its `vcpu_info`: in the shared-info page for vCPU 0, or where
    /// `VCPUOP_register_vcpu_info` put it; `None`: no upcalls (Xen's `dummy_vcpu_info`).
    pub vcpu_info: Option<u64>,
    /// `VCPUOP_register_vcpu_info` succeeded (it may be done once).
    pub vcpu_info_registered: bool,
    /// The ports a `SCHEDOP_poll` waits on, while it waits.
    pub poll: Option<Vec<xenolith_kernel::event::evtchn::Port>>,
    /// When that poll times out (core nanoseconds).
    pub poll_deadline: Option<u64>,
    /// Its run state and the time spent in each (`xen/include/public/vcpu.h`), in core
    /// nanoseconds, changed at every switch to or from it.
    pub runstate: vcpu_runstate_info,
    /// Guest virtual address of the copy it asked to be kept up to date
    /// (`VCPUOP_register_runstate_memory_area`), written each time it is switched in.
    pub runstate_area: Option<u64>,
    /// The MMIO access it waits on, forwarded to an IOREQ server.
    pub io: Option<crate::hypercall::dm_op::Waiting>,
}

impl Vcpu {
    /// A vCPU record as created: down, with no context to run yet, and its `vcpu_info` in the
    /// shared-info page at `shared_info` if it is vCPU 0.
    pub fn new(domain: DomainId, index: u32, shared_info: u64) -> Self {
        Self {
            domain,
            index,
            context: VcpuContext::new(0, 0, index),
            state: VcpuState::Down,
            runtime_ns: 0,
            processor: 0,
            initialised: false,
            vgic: xenolith_kernel::event::vgic::VgicCpu::new(),
            vcpu_info: (index == 0).then_some(shared_info),
            vcpu_info_registered: false,
            poll: None,
            poll_deadline: None,
            runstate: vcpu_runstate_info {
                state: RUNSTATE_offline,
                _pad: 0,
                state_entry_time: 0,
                time: [0; 4],
            },
            runstate_area: None,
            io: None,
        }
    }

    /// Enters run state `state` (`RUNSTATE_*`) at `now`, charging the time since the last change
    /// to the state it leaves. A vCPU woken from `blocked` is charged as blocked until it runs:
    /// wake-ups are not a switch.
    pub fn enter_runstate(&mut self, state: i32, now: u64) {
        let runstate = &mut self.runstate;
        let spent = now.saturating_sub(runstate.state_entry_time);
        if let Some(time) = runstate.time.get_mut(runstate.state as usize) {
            *time += spent;
        }
        (runstate.state, runstate.state_entry_time) = (state, now);
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
    /// How many frames of RAM it owns. Which ones, and where, its stage 2 records: every leaf
    /// with the `owned` attribute is its RAM (freed with it), any other leaf a page lent to it.
    pub ram_pages: u64,
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
    pub vgic: xenolith_kernel::event::vgic::VgicDist,
    /// Its shared-info page (`xen/include/public/xen.h` `struct shared_info`), owned by the core.
    pub shared_info: u64,
    /// Where the domain mapped its shared-info page (`XENMAPSPACE_shared_info`), if it did.
    pub shared_info_gfn: Option<u64>,
    /// Its event channels (their bits live in the shared-info page).
    pub events: xenolith_kernel::event::evtchn::EventTable<'static>,
    /// Its grant table and the grants it maps.
    pub grants: xenolith_kernel::grant::GrantState,
    /// `HVMOP_{set,get}_param` values by `HVM_PARAM_*` (`hvm/params.h`).
    pub hvm_params: [u64; HVM_NR_PARAMS as usize],
    /// Its console and xenstore ring pages ([`RING_CONSOLE`], [`RING_STORE`]; owned by it,
    /// mapped at [`ring_gfn`]).
    pub ring_pages: [Option<u64>; 2],
    /// What the core does when it stops.
    pub on_shutdown: ShutdownActions,
    /// Its boot-manifest entry (what a restart rebuilds it from).
    pub manifest_index: Option<usize>,
    /// Its preserved region (mapped at `PRESERVED_REGION_BASE`), kept across restarts.
    pub preserved: Option<Extent>,
    /// How many times the core restarted it.
    pub restarts: u32,
    /// Destroyed on request (`XEN_DOMCTL_destroydomain`): never restarted.
    pub destroy_requested: bool,
    /// Shut down and being restarted: its new incarnation's RAM is loaded with the table
    /// unlocked (`lifecycle::restart`), and nothing else destroys it meanwhile.
    pub restarting: bool,
    /// `SCHEDOP_shutdown_code`: the reason its shutdown will report, whatever it says then.
    pub shutdown_code: Option<u8>,
    /// `SCHEDOP_watchdog` timers' deadlines (core nanoseconds), by id - 1.
    pub watchdogs: [Option<u64>; 2],
    /// `vm_assist` types enabled (bit n = `VMASST_TYPE_` n).
    pub vm_assist: u64,
    /// Pages `XENMEM_increase_reservation` gave it: counted against its maximum and in its
    /// reservation, never mapped (as Xen on Arm gives a translated guest), so no frame backs them.
    pub unmapped_pages: u64,
    /// Its IOREQ servers by id (`crate::hypercall::dm_op`), at most `MAX_SERVERS`.
    pub ioreq: Vec<Option<crate::hypercall::dm_op::Server>>,
    /// Held paused at start until its device model enables an IOREQ server.
    pub waits_for_model: bool,
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
        self.ram_pages * FRAME_SIZE
    }
}

/// A record of domain `owner` (its own, or one of its vCPUs'), changed under `owner`'s lock or
/// the whole table's (module invariants).
pub struct Record<T> {
    owner: DomainId,
    value: UnsafeCell<T>,
}

impl<T> Record<T> {
    fn new(owner: DomainId, value: T) -> Self {
        Self { owner, value: UnsafeCell::new(value) }
    }

    /// The record, to a holder of the whole table: while one exists, no domain lock is held
    /// ([`TableLock`] lends a `&Table` to nobody else), so nothing changes it meanwhile.
    fn get(&self) -> &T {
        // SAFETY: see above: every `&Table` this is called through comes from the whole table's
        // holder (a `TableGuard` or a `&mut Table`; a reader's `Local` calls no `Table` method),
        // and a `&mut T` to a record is made only from a `&mut Table` (which
        // excludes this borrow) or under a domain lock (which excludes the whole table's holder).
        unsafe { &*self.value.get() }
    }
}

/// A domain's record and the lock the table's readers take to change it.
struct DomainRecord {
    lock: RawLock,
    record: Record<Domain>,
}

/// Every domain and vCPU.
pub struct Table {
    /// By domain id.
    domains: Vec<Option<Box<DomainRecord>>>,
    /// By global vCPU slot.
    vcpus: Vec<Option<Record<Vcpu>>>,
    /// Frames of destroyed domains still grant-mapped elsewhere, with how many mappings hold
    /// each; freed when the count reaches zero.
    pub orphans: alloc::collections::BTreeMap<u64, u32>,
    next_generation: u32,
}

/// The table under a readers-writer lock; its readers also take the locks of the domains they
/// change (module doc).
pub struct TableLock {
    whole: RawShared,
    table: UnsafeCell<Table>,
}

// SAFETY: the table is reached only through `lock` (the writer's hold, alone) and `local`
// (readers, each changing only the records of the domains whose locks it holds); the records
// are plain data owned by the core, so any CPU may use them.
unsafe impl Sync for TableLock {}

/// The table.
pub static TABLE: TableLock = TableLock {
    whole: RawShared::new(),
    table: UnsafeCell::new(Table {
        domains: Vec::new(),
        vcpus: Vec::new(),
        orphans: alloc::collections::BTreeMap::new(),
        next_generation: 1,
    }),
};

impl TableLock {
    /// How many readers came in while another was inside: hypercalls that ran beside another's
    /// (of another domain, or waiting for their domain's lock if of the same).
    pub fn side_by_side(&self) -> u64 {
        self.whole.side_by_side()
    }

    /// The whole table, alone.
    pub fn lock(&self) -> TableGuard<'_> {
        self.whole.lock();
        TableGuard(self)
    }

    /// The domain of the vCPU in `slot`, as one of the table's readers (`None`: no vCPU there).
    #[inline(always)]
    pub fn local(&self, slot: usize) -> Option<Local<'_>> {
        self.whole.lock_shared();
        // SAFETY: a reader may read the table's vectors and a record's owner: they change only
        // under the whole table (module invariants), which this reader's hold excludes, and
        // they live as long as `self`.
        let table = unsafe { &*self.table.get().cast_const() };
        let domain = table.vcpus.get(slot).and_then(|vcpu| {
            let owner = vcpu.as_ref()?.owner;
            table.domains.get(usize::from(owner))?.as_deref()
        });
        let Some(domain) = domain else {
            // SAFETY: taken above.
            unsafe { self.whole.unlock_shared() };
            return None;
        };
        domain.lock.lock();
        Some(Local { lock: self, domain, other: None, table })
    }
}

/// The whole table, held alone.
pub struct TableGuard<'a>(&'a TableLock);

impl core::ops::Deref for TableGuard<'_> {
    type Target = Table;
    fn deref(&self) -> &Table {
        // SAFETY: this guard is the whole table's only holder.
        unsafe { &*self.0.table.get() }
    }
}

impl core::ops::DerefMut for TableGuard<'_> {
    fn deref_mut(&mut self) -> &mut Table {
        // SAFETY: this guard is the whole table's only holder.
        unsafe { &mut *self.0.table.get() }
    }
}

impl Drop for TableGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: this guard took the writer's hold.
        unsafe { self.0.whole.unlock() };
    }
}

/// One of the table's readers, holding the lock of one domain (the caller's) and perhaps a
/// peer's ([`Local::lock_other`]). Its `table` is never lent out: only the vectors and records
/// it holds are used through it.
pub struct Local<'a> {
    lock: &'a TableLock,
    domain: &'a DomainRecord,
    other: Option<&'a DomainRecord>,
    table: &'a Table,
}

impl Local<'_> {
    /// The records of `domain`, which this reader holds.
    #[inline(always)]
    fn held_of<'b>(&'b mut self, domain: &DomainRecord) -> Held<'b> {
        // SAFETY: the domain's records are this reader's to change while it holds the domain's
        // lock, and the `&mut self` borrow keeps one `Held` per reader at a time.
        Held { domain: unsafe { &mut *domain.record.value.get() }, vcpus: &self.table.vcpus }
    }

    /// The domain it holds.
    #[inline(always)]
    pub fn id(&self) -> DomainId {
        self.domain.record.owner
    }

    /// The other domain it holds ([`Local::lock_other`]), if any.
    pub fn other_id(&self) -> Option<DomainId> {
        Some(self.other?.record.owner)
    }

    /// The records of the domain it holds.
    #[inline(always)]
    pub fn held(&mut self) -> Held<'_> {
        let domain = self.domain;
        self.held_of(domain)
    }

    /// Takes domain `other`'s lock too, if it exists (one other at most). `false`: its own lock
    /// was released and taken again meanwhile, to keep the lock order, so what it read may have
    /// changed.
    pub fn lock_other(&mut self, other: DomainId) -> bool {
        let own = self.domain;
        debug_assert!(self.other.is_none() && other != own.record.owner);
        let Some(Some(record)) = self.table.domains.get(usize::from(other)) else { return true };
        self.other = Some(record);
        if other > own.record.owner {
            record.lock.lock();
            return true;
        }
        if record.lock.try_lock() {
            return true;
        }
        // SAFETY: this reader holds its domain's lock.
        unsafe { own.lock.unlock() };
        record.lock.lock();
        own.lock.lock();
        false
    }

    /// The records of the domain [`Local::lock_other`] locked, if it exists.
    pub fn other(&mut self) -> Option<Held<'_>> {
        let other = self.other?;
        Some(self.held_of(other))
    }
}

impl Drop for Local<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: this reader holds its domain's lock, and the other's it took.
        unsafe { self.domain.lock.unlock() };
        if let Some(other) = self.other {
            // SAFETY: as above.
            unsafe { other.lock.unlock() };
        }
        // SAFETY: this reader took a reader's hold.
        unsafe { self.lock.whole.unlock_shared() };
    }
}

/// One domain's records, held (by the whole table's holder or by the domain's lock).
pub struct Held<'a> {
    /// The domain.
    pub domain: &'a mut Domain,
    vcpus: &'a [Option<Record<Vcpu>>],
}

impl Held<'_> {
    /// The domain and its vCPU in slot `slot` (`None` if that is not one of its vCPUs).
    #[inline(always)]
    pub fn vcpu(&mut self, slot: usize) -> Option<(&mut Domain, &mut Vcpu)> {
        let record = self.vcpus.get(slot)?.as_ref().filter(|r| r.owner == self.domain.id)?;
        // SAFETY: a vCPU record is changed only under its domain's lock or the whole table's
        // (module invariants): this `Held` stands for that hold, and the `&mut self` borrow keeps
        // this the only reference made through it.
        Some((&mut *self.domain, unsafe { &mut *record.value.get() }))
    }

    /// The slot of its vCPU `index`.
    pub fn slot(&self, index: u32) -> Option<usize> {
        self.domain.vcpus.get(index as usize).copied()
    }
}

impl Table {
    /// The domain with id `id`, if it exists.
    pub fn domain(&self, id: DomainId) -> Option<&Domain> {
        Some(self.domains.get(usize::from(id))?.as_deref()?.record.get())
    }

    /// The domain with id `id`, if it exists.
    pub fn domain_mut(&mut self, id: DomainId) -> Option<&mut Domain> {
        Some(self.domains.get_mut(usize::from(id))?.as_deref_mut()?.record.value.get_mut())
    }

    /// Domain `id` with its vCPUs.
    pub fn held(&mut self, id: DomainId) -> Option<Held<'_>> {
        let domain = self.domains.get_mut(usize::from(id))?.as_deref_mut()?;
        Some(Held { domain: domain.record.value.get_mut(), vcpus: &self.vcpus })
    }

    /// Two different domains, `a`'s first.
    pub fn pair_mut(&mut self, a: DomainId, b: DomainId) -> Option<(&mut Domain, &mut Domain)> {
        let (low, high) = (usize::from(a.min(b)), usize::from(a.max(b)));
        if low == high || high >= self.domains.len() {
            return None;
        }
        let (head, tail) = self.domains.split_at_mut(high);
        let first = head.get_mut(low)?.as_deref_mut()?.record.value.get_mut();
        let second = tail.first_mut()?.as_deref_mut()?.record.value.get_mut();
        Some(if a < b { (first, second) } else { (second, first) })
    }

    /// Every domain.
    pub fn domains(&self) -> impl Iterator<Item = &Domain> {
        self.domains.iter().flatten().map(|domain| domain.record.get())
    }

    /// Every domain.
    pub fn domains_mut(&mut self) -> impl Iterator<Item = &mut Domain> {
        self.domains.iter_mut().flatten().map(|domain| domain.record.value.get_mut())
    }

    /// Every vCPU, with its slot.
    pub fn vcpus_mut(&mut self) -> impl Iterator<Item = (usize, &mut Vcpu)> {
        let slots = self.vcpus.iter_mut().enumerate();
        slots.filter_map(|(slot, record)| Some((slot, record.as_mut()?.value.get_mut())))
    }

    /// The vCPU in slot `slot`.
    pub fn vcpu(&self, slot: usize) -> Option<&Vcpu> {
        Some(self.vcpus.get(slot)?.as_ref()?.get())
    }

    /// The vCPU in slot `slot`.
    pub fn vcpu_mut(&mut self, slot: usize) -> Option<&mut Vcpu> {
        Some(self.vcpus.get_mut(slot)?.as_mut()?.value.get_mut())
    }

    /// Puts `vcpu` in slot `slot` (every slot exists from the first domain on), or empties it.
    pub(crate) fn set_vcpu(&mut self, slot: usize, vcpu: Option<Vcpu>) {
        self.vcpus[slot] = vcpu.map(|vcpu| Record::new(vcpu.domain, vcpu));
    }

    /// Puts `domain` in its place.
    pub(crate) fn insert(&mut self, domain: Domain) {
        let id = domain.id;
        let lock = RawLock::INIT;
        self.domains[usize::from(id)] =
            Some(Box::new(DomainRecord { lock, record: Record::new(id, domain) }));
    }

    /// Takes domain `id` out of the table.
    pub(crate) fn take(&mut self, id: DomainId) -> Option<Domain> {
        let domain = self.domains.get_mut(usize::from(id))?.take()?;
        Some(domain.record.value.into_inner())
    }

    /// Gives every domain id and vCPU slot its place (from the first domain on).
    pub(crate) fn reserve(&mut self) {
        self.domains.resize_with(MAX_DOMAINS, || None);
        self.vcpus.resize_with(MAX_VCPUS, || None);
    }

    /// The next incarnation number.
    pub(crate) fn take_generation(&mut self) -> u32 {
        let generation = self.next_generation;
        self.next_generation += 1;
        generation
    }

    /// The xenstore domain (the one holding `xenstore`), if one exists.
    pub fn xenstore_domain(&self) -> Option<DomainId> {
        self.domains().find(|domain| domain.capabilities.xenstore).map(|d| d.id)
    }

    /// The domain holding `console`, if any.
    pub fn console_domain(&self) -> Option<DomainId> {
        self.domains().find(|domain| domain.capabilities.console).map(|d| d.id)
    }
}

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

/// Who is calling.
pub struct Caller<'a> {
    /// The calling domain.
    pub domain: DomainId,
    /// The calling vCPU's global slot.
    pub vcpu_slot: usize,
    /// The caller had IRQs masked (PSTATE.I in the trapped SPSR); a hypercall that clears it
    /// unmasks them on return.
    pub irqs_masked: bool,
    /// Every domain (locked).
    pub table: &'a mut Table,
}

impl Caller<'_> {
    /// The domain a `domid_t` argument names: `DOMID_SELF` is the caller.
    pub fn resolve(&self, domid: u16) -> DomainId {
        if domid == xenolith_abi::xen::hypercall::DOMID_SELF {
            self.domain
        } else {
            domid
        }
    }

    /// Asks the policy whether the caller may do `operation`: `-EPERM` if not.
    pub fn allow(&self, operation: Operation) -> Result<(), XenError> {
        let domain = self.table.domain(self.domain).ok_or(XenError::ESRCH)?;
        policy::check(self.domain, &domain.capabilities, operation).map_err(|denied| {
            log::debug!("{denied}");
            XenError::EPERM
        })
    }
}

impl Table {
    /// Whether any domain holds a grant mapping of a frame in `[phys, phys + size)`.
    pub fn grant_mapped(&self, phys: u64, size: u64) -> bool {
        self.domains().any(|domain| {
            let mut mappings = domain.grants.maptrack.iter();
            mappings.any(|(_, mapping)| (phys..phys + size).contains(&mapping.phys))
        })
    }
}
