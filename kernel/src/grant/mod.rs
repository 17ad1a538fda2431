//! Grant tables in the core: each domain's table frames (core-owned pages reached as atomics),
//! the bookkeeping when a domain dies, and `__HYPERVISOR_grant_table_op` (`ops.rs`). The checks,
//! pins and flag protocol are the library's half of this folder (`table.rs`).
//!
//! # Invariants
//! - Called with interrupts masked, holding the whole domain table, or (map, unmap and copy) the
//!   records of the caller's domain and one other as a reader ([`Domains`]).
//! - A domain's grant frames are core-owned pages, zeroed when allocated and scrubbed when the
//!   domain is destroyed; the entries are reached only through [`FrameEntries`] (atomics).
//! - Every live host mapping has a record in its mapper's maptrack (physical frame and the
//!   granter's generation). A frame its granter no longer owns (the granter died) is counted in
//!   [`Table::orphans`] by the mappings that hold it, and goes back to the allocator, scrubbed, when
//!   the last of them is unmapped.

pub mod ops;

use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::grant_table as gt;
use xenolith_kernel::grant::{
    self, grant_handle_t, grant_ref_t, Entries, GrantState, Usage, ENTRIES_PER_FRAME,
    MAX_GRANT_FRAMES,
};
use xenolith_kernel::policy::DomainId;

use crate::domain::{Domain, Local, Table};
use crate::mm::memory;

/// A status no guest is given: a reader of the domain table (`domain::Local`) cannot reach what
/// the operation needs (a third domain, one it could lock only by letting its own go, or the
/// orphans). It is answered before the operation changed anything, and the whole table's holder
/// runs the operation instead.
pub const UNREACHABLE: i16 = i16::MIN;

/// The domains a grant operation of domain [`Domains::me`] reaches: the whole table
/// ([`Whole`]), or a reader's own domain and one other (`domain::Local`).
pub trait Domains {
    /// The calling domain.
    fn me(&self) -> DomainId;
    /// Domain `id`; `Err(missing)` if there is none, or [`UNREACHABLE`].
    fn domain(&mut self, id: DomainId, missing: i16) -> Result<&mut Domain, i16>;
    /// The orphaned frames' counts ([`Table::orphans`]), or [`UNREACHABLE`].
    fn orphans(&mut self) -> Result<&mut alloc::collections::BTreeMap<u64, u32>, i16>;
    /// The domain a `domid_t` names: `DOMID_SELF` is the caller.
    fn resolve(&self, domid: u16) -> DomainId {
        let me = domid == xenolith_abi::xen::hypercall::DOMID_SELF;
        if me {
            self.me()
        } else {
            domid
        }
    }
}

/// The whole table, for domain `.0`'s operation.
pub struct Whole<'a>(pub DomainId, pub &'a mut Table);

impl Domains for Whole<'_> {
    fn me(&self) -> DomainId {
        self.0
    }

    fn domain(&mut self, id: DomainId, missing: i16) -> Result<&mut Domain, i16> {
        self.1.domain_mut(id).ok_or(missing)
    }

    fn orphans(&mut self) -> Result<&mut alloc::collections::BTreeMap<u64, u32>, i16> {
        Ok(&mut self.1.orphans)
    }
}

impl Domains for Local<'_> {
    fn me(&self) -> DomainId {
        self.id()
    }

    #[inline(always)]
    fn domain(&mut self, id: DomainId, missing: i16) -> Result<&mut Domain, i16> {
        if id == self.id() {
            return Ok(self.held().domain);
        }
        // One other domain at most, taken without letting the own one go.
        if self.other_id() != Some(id) && (self.other_id().is_some() || !self.lock_other(id)) {
            return Err(UNREACHABLE);
        }
        self.other().map(|held| held.domain).ok_or(missing)
    }

    fn orphans(&mut self) -> Result<&mut alloc::collections::BTreeMap<u64, u32>, i16> {
        Err(UNREACHABLE)
    }
}

/// Grows the table to `frames` frames (`gnttab_grow_table`): `false` if beyond the limit or
/// out of memory (frames added so far stay).
pub fn grow(state: &mut GrantState, frames: u32) -> bool {
    if frames > MAX_GRANT_FRAMES {
        return false;
    }
    while state.frames.len() < frames as usize {
        let Some(frame) = memory::alloc_zeroed_frame() else { return false };
        state.frames.push(frame);
        state.gfns.push(None);
    }
    true
}

/// Fills reserved entry `gref` (`GNTTAB_RESERVED_CONSOLE` or `_XENSTORE`) so that domain
/// `server` may map the ring page at `gfn`, as Xen's toolstack seeds them (`xc_dom_gnttab_seed`);
/// grows the table to one frame first. `false` if no frame could be had.
pub fn seed_reserved(state: &mut GrantState, gref: u32, server: DomainId, gfn: u64) -> bool {
    if !grow(state, 1) {
        return false;
    }
    // Only the words are written here, with no update that could name an owner.
    let entries = FrameEntries(&state.frames, DomainId::MAX);
    let Some((header, frame)) = entries.words(gref) else {
        return false;
    };
    frame.store(gfn as u32, Ordering::Relaxed);
    header.store(u32::from(gt::GTF_permit_access) | (u32::from(server) << 16), Ordering::Release);
    true
}

/// Gives the table's frames back (the domain is being destroyed).
pub fn release_frames(state: &mut GrantState) {
    for &frame in &state.frames {
        memory::release(frame, 1);
    }
    state.frames.clear();
}

/// A table's version-1 entries in its core-owned frames, and the domain whose table it is.
pub struct FrameEntries<'a>(pub &'a [u64], pub DomainId);

impl Entries for FrameEntries<'_> {
    fn len(&self) -> u32 {
        self.0.len() as u32 * ENTRIES_PER_FRAME
    }

    fn words(&self, gref: grant_ref_t) -> Option<(&AtomicU32, &AtomicU32)> {
        let frame = *self.0.get((gref / ENTRIES_PER_FRAME) as usize)?;
        let entry = frame + u64::from(gref % ENTRIES_PER_FRAME) * 8;
        // SAFETY: `entry` is an 8-byte-aligned entry inside a grant frame the core allocated and
        // keeps while the domain exists (module invariants); its first word is at `entry`.
        let first = unsafe { memory::shared(entry) };
        // SAFETY: as above; the frame word is at `entry + 4`.
        let frame_word = unsafe { memory::shared(entry + 4) };
        Some((first, frame_word))
    }

    fn owner(&self) -> DomainId {
        self.1
    }
}

impl Table {
    /// `XENMEM_add_to_physmap` with `XENMAPSPACE_grant_table`: maps table frame `idx` at `gfn`
    /// (growing the table to it), giving back the domain's RAM page it replaces; mapped
    /// already, it must be removed first (`-EBUSY`).
    pub fn map_grant_frame(&mut self, id: DomainId, idx: u64, gfn: u64) -> Result<(), XenError> {
        if idx & u64::from(xenolith_abi::xen::memory::XENMAPIDX_grant_table_status) != 0 {
            // Status frames exist only with version 2.
            return Err(XenError::EINVAL);
        }
        let index = u32::try_from(idx).map_err(|_| XenError::EINVAL)?;
        if index >= MAX_GRANT_FRAMES {
            return Err(XenError::EINVAL);
        }
        let domain = self.domain(id).ok_or(XenError::ESRCH)?;
        if domain.grants.gfns.get(index as usize).copied().flatten().is_some() {
            // Mapped already: Xen's `xenmem_add_to_physmap_one` wants it removed first.
            return Err(XenError::EBUSY);
        }
        self.free_ram_at(id, gfn)?;
        let domain = self.domain_mut(id).ok_or(XenError::ESRCH)?;
        if !grow(&mut domain.grants, index + 1) {
            return Err(XenError::EINVAL);
        }
        let frame = domain.grants.frames[index as usize];
        crate::mm::domain_memory::map_core_page(domain, frame, None, gfn)?;
        domain.grants.gfns[index as usize] = Some(gfn);
        Ok(())
    }

    /// Undoes every grant mapping domain `id` holds (it is being destroyed;
    /// `gnttab_release_mappings`). Its stage 2 goes with it.
    fn release_grant_mappings(&mut self, id: DomainId) {
        let Some(domain) = self.domain(id) else { return };
        let handles: Vec<grant_handle_t> =
            domain.grants.maptrack.iter().map(|(handle, _)| handle).collect();
        for handle in handles {
            let _ = forget_mapping(&mut Whole(id, self), handle);
        }
    }

    /// Grant bookkeeping when domain `id` is destroyed: its own mappings are undone, and its
    /// frames that other domains still map become orphans. Returns those frames: the caller
    /// must not free them.
    pub fn grants_on_destroy(&mut self, id: DomainId) -> Vec<u64> {
        self.release_grant_mappings(id);
        let Some(generation) = self.domain(id).map(|domain| domain.generation) else {
            return Vec::new();
        };
        let mut held = Vec::new();
        for mapper in self.domains().filter(|domain| domain.id != id) {
            for (_, mapping) in mapper.grants.maptrack.iter() {
                if mapping.granter == id && mapping.generation == generation {
                    held.push(mapping.phys);
                }
            }
        }
        for &phys in &held {
            *self.orphans.entry(phys).or_insert(0) += 1;
        }
        held
    }
}

/// Frees mapping `handle` of the caller, whose stage-2 entry is gone, and drops its hold on the
/// grant: the granter's pin if it is still the same incarnation, else the orphaned frame's count
/// (freeing the frame at zero). [`UNREACHABLE`] only if a reader could not reach the granter or
/// the orphans (then nothing changed).
pub fn forget_mapping(view: &mut impl Domains, handle: grant_handle_t) -> Result<(), i16> {
    let me = view.me();
    let mapping = *view.domain(me, gt::GNTST_general_error)?.grants.maptrack.find(handle)?;
    let (phys, generation) = (mapping.phys, mapping.generation);
    let live = match view.domain(mapping.granter, gt::GNTST_bad_domain) {
        Ok(granter) => granter.generation == generation,
        Err(UNREACHABLE) => return Err(UNREACHABLE),
        Err(_) => false,
    };
    if live {
        view.domain(me, gt::GNTST_general_error)?.grants.maptrack.remove(handle)?;
        unpin_grant(view, mapping.granter, mapping.gref, mapping.readonly, Usage::Map);
        return Ok(());
    }
    let orphans = view.orphans()?;
    let last = orphans.get_mut(&phys).map(|count| {
        *count -= 1;
        *count == 0
    });
    view.domain(me, gt::GNTST_general_error)?.grants.maptrack.remove(handle)?;
    if last == Some(true) {
        view.orphans()?.remove(&phys);
        memory::release(phys, 1);
        log::info!(
            "frame {phys:#x} of destroyed d{} freed after its last grant unmap",
            mapping.granter
        );
    }
    Ok(())
}

/// Drops one pin of kind `usage`/`readonly` on grant `gref` of domain `id`, if it exists.
pub fn unpin_grant(
    view: &mut impl Domains,
    id: DomainId,
    gref: grant_ref_t,
    readonly: bool,
    usage: Usage,
) {
    if let Ok(domain) = view.domain(id, gt::GNTST_bad_domain) {
        let entries = FrameEntries(&domain.grants.frames, id);
        let _ = grant::unpin(&mut domain.grants.active, &entries, gref, readonly, usage);
    }
}
