//! What the control domain's builder asks of the core, Xen's way: create an empty domain
//! (`XEN_DOMCTL_createdomain`), give it RAM (`XENMEM_populate_physmap`), map its pages into the
//! builder to load it (`XENMEM_add_to_physmap_batch` with `XENMAPSPACE_gmfn_foreign`, undone with
//! `XENMEM_remove_from_physmap`), set its first vCPU (`XEN_DOMCTL_setvcpucontext`), unpause it.
//!
//! The image, its DTB and where things go are the builder's business; the core only keeps every
//! mapping inside what the policy allows and every frame accounted for.
//!
//! # Invariants
//! - A domain's RAM never exceeds its `max_mem`; it lies in Xen's guest RAM banks and never
//!   overlaps what is mapped. Its stage 2 is the record of which frames it owns (leaves with the
//!   `owned` attribute) and `ram_pages` counts them: no per-extent list, so RAM is given and taken
//!   back at any order from 4 KiB up, as the balloon driver does, splitting blocks as needed.
//! - A foreign mapping only ever names a frame its source owns (looked up in the source's own
//!   stage 2), and is removed from the mapper when the source is destroyed.
//! - A vCPU context can be set only while the domain has never run or is paused.
//! - Every per-domain list the core keeps on its heap is bounded ([`MAX_FOREIGN`]), so no domain
//!   can exhaust the heap. Stage-2 table frames come from the frame allocator and are not charged
//!   to the domain (as in Xen 4.17 before its p2m pool): scattering 4 KiB pages costs at most one
//!   4 KiB table per 2 MiB region used.

use alloc::vec::Vec;
use core::ops::Range;

use xenolith_abi::xen::arch_arm::{
    GUEST_RAM0_BASE, GUEST_RAM0_SIZE, GUEST_RAM1_BASE, GUEST_RAM1_SIZE,
};
use xenolith_abi::xen::errno::XenError;
use xenolith_kernel::mm::frame::FRAME_SIZE;
use xenolith_kernel::mm::lpae::{Attributes, MemoryType};
use xenolith_kernel::policy::DomainId;

use crate::arch::guest::{self};
use crate::domain::{ring_gfn, Domain, ForeignMapping, Table, RING_CONSOLE, RING_STORE};
use crate::mm::memory::{self, IdentityTables};

/// Most foreign pages one domain may map at once: each is a heap record, and the core's heap is
/// fixed.
pub const MAX_FOREIGN: usize = 512;

/// How a domain's RAM is mapped in its stage 2.
pub const GUEST_RAM: Attributes =
    Attributes { memory: MemoryType::Normal, write: true, execute: true, owned: true, lent: false };
/// How a page lent to a domain (by the core, or another domain through a grant or a foreign
/// mapping) is mapped: never executable, never freed with it.
pub const GUEST_PAGE: Attributes = Attributes {
    memory: MemoryType::Normal,
    write: true,
    execute: false,
    owned: false,
    lent: false,
};

/// How another domain's page is mapped (a grant or foreign mapping): as [`GUEST_PAGE`], and
/// marked so hypercalls do not take it as the caller's memory.
pub const GUEST_LENT: Attributes = Attributes { lent: true, ..GUEST_PAGE };

/// A refused single-page stage-2 mapping as Xen reports it.
fn map_error(error: xenolith_kernel::mm::lpae::MapError) -> XenError {
    match error {
        xenolith_kernel::mm::lpae::MapError::OutOfMemory => XenError::ENOMEM,
        xenolith_kernel::mm::lpae::MapError::AlreadyMapped { .. } => XenError::EBUSY,
        _ => XenError::EINVAL,
    }
}

fn in_guest_ram(ipa: u64, size: u64) -> bool {
    let inside = |base: u64, bank: u64| {
        ipa >= base && ipa.checked_add(size).is_some_and(|end| end <= base + bank)
    };
    inside(GUEST_RAM0_BASE, GUEST_RAM0_SIZE) || inside(GUEST_RAM1_BASE, GUEST_RAM1_SIZE)
}

/// Maps core-owned page `phys` into `domain` at `gfn` (read-write, never executable), removing
/// it from `old`, where it was mapped before: how Xen moves shared-info and grant-table frames.
pub fn map_core_page(
    domain: &mut Domain,
    phys: u64,
    old: Option<u64>,
    gfn: u64,
) -> Result<(), XenError> {
    if old == Some(gfn) {
        return Ok(());
    }
    let ipa = gfn.checked_mul(FRAME_SIZE).ok_or(XenError::EINVAL)?;
    let mut tables = IdentityTables;
    domain.stage2.map(&mut tables, ipa, phys, FRAME_SIZE, GUEST_PAGE).map_err(map_error)?;
    if let Some(old) = old {
        let _ = domain.stage2.unmap(&mut tables, old * FRAME_SIZE, FRAME_SIZE);
        guest::flush_guest_tlbs();
    }
    Ok(())
}

/// Whether `gfn` holds one of the ring pages (the core's, not RAM a domain may give back).
fn is_ring_gfn(gfn: u64) -> bool {
    gfn == ring_gfn(RING_CONSOLE) || gfn == ring_gfn(RING_STORE)
}

impl Domain {
    /// Where it maps (foreign) frames of `source` that lie in `frames`: the IPAs.
    fn foreign_of(&self, source: DomainId, frames: Range<u64>) -> impl Iterator<Item = u64> + '_ {
        self.foreign.iter().filter_map(move |mapping| {
            let (at, _) = self.stage2.translate(&IdentityTables, mapping.ipa)?;
            (mapping.source == source && frames.contains(&at)).then_some(mapping.ipa)
        })
    }

    /// `XENMEM_maximum_gpfn`: the highest guest frame mapped now (Xen keeps the highest ever
    /// mapped; they differ only after the top frame is unmapped).
    pub fn maximum_gfn(&self) -> u64 {
        let mut top = 0;
        let end = GUEST_RAM1_BASE + GUEST_RAM1_SIZE;
        self.stage2.walk_range(&IdentityTables, 0, end, &mut |leaf| {
            top = top.max(leaf.virt + leaf.size);
        });
        (top / FRAME_SIZE).saturating_sub(1)
    }

    /// Physical address of guest frame `gfn` if it is the domain's own RAM, or one of its ring
    /// pages (frames it owns and may grant, as Xen's magic pages are).
    pub fn ram_frame(&self, gfn: u64) -> Option<u64> {
        for ring in [RING_CONSOLE, RING_STORE] {
            if gfn == ring_gfn(ring) {
                if let Some(page) = self.ring_pages[ring] {
                    return Some(page);
                }
            }
        }
        let ipa = gfn.checked_mul(FRAME_SIZE)?;
        let (phys, attributes) = self.stage2.translate(&IdentityTables, ipa)?;
        attributes.owned.then_some(phys)
    }
}

impl Table {
    /// `XENMEM_populate_physmap` for one extent: `2^order` fresh, zeroed frames mapped at
    /// guest frame `gfn` of `target` (`-EBUSY` if any of that range is mapped already).
    pub fn populate(&mut self, target: DomainId, gfn: u64, order: u32) -> Result<(), XenError> {
        if order > 18 {
            return Err(XenError::EINVAL);
        }
        let size = FRAME_SIZE << order;
        let ipa = gfn.checked_mul(FRAME_SIZE).ok_or(XenError::EINVAL)?;
        let domain = self.domain_mut(target).ok_or(XenError::ESRCH)?;
        if !ipa.is_multiple_of(size) || !in_guest_ram(ipa, size) {
            return Err(XenError::EINVAL);
        }
        if (domain.ram_bytes() + domain.unmapped_pages * FRAME_SIZE + size) / 1024
            > domain.max_memkb
        {
            return Err(XenError::ENOMEM);
        }
        let frames = 1usize << order;
        let phys = memory::alloc_scrubbed(frames, frames.min(512)).ok_or(XenError::ENOMEM)?;
        if let Err(error) = domain.stage2.map(&mut IdentityTables, ipa, phys, size, GUEST_RAM) {
            memory::release(phys, frames);
            return Err(map_error(error));
        }
        domain.ram_pages += frames as u64;
        Ok(())
    }

    /// `XENMEM_decrease_reservation` for one extent: gives back the `2^order` frames at guest
    /// frame `gfn` of `target`, which must all be RAM it owns (`-EINVAL`), in one populated
    /// extent or several, splitting blocks around them. Refused (`-EBUSY`) while a frame is
    /// mapped by another domain (foreign or grant mapping) or holds a vCPU's `vcpu_info`:
    /// frames are not reference-counted (Xen keeps such a page alive with a reference instead).
    pub fn decrease(&mut self, target: DomainId, gfn: u64, order: u32) -> Result<(), XenError> {
        let size = FRAME_SIZE.checked_shl(order).ok_or(XenError::EINVAL)?;
        let ipa = gfn.checked_mul(FRAME_SIZE).ok_or(XenError::EINVAL)?;
        let end = ipa.checked_add(size).ok_or(XenError::EINVAL)?;
        let domain = self.domain(target).ok_or(XenError::ESRCH)?;
        // The physical pieces of the range, each clipped to it; all owned RAM, covering it.
        let mut pieces = alloc::vec::Vec::new();
        domain.stage2.walk_range(&IdentityTables, ipa, size, &mut |leaf| {
            let start = leaf.virt.max(ipa);
            let length = (leaf.virt + leaf.size).min(end) - start;
            pieces.push((leaf.attributes.owned, leaf.phys + (start - leaf.virt), length));
        });
        let covered: u64 = pieces.iter().map(|&(_, _, length)| length).sum();
        if covered != size || pieces.iter().any(|&(owned, ..)| !owned) {
            return Err(XenError::EINVAL);
        }
        for &(_, phys, length) in &pieces {
            let holds_vcpu_info = domain.vcpus.iter().any(|&slot| {
                self.vcpu(slot)
                    .and_then(|vcpu| vcpu.vcpu_info)
                    .is_some_and(|info| (phys..phys + length).contains(&info))
            });
            // A frame another domain maps (foreign) stays: no frame is reference-counted.
            let foreign =
                |mapper: &Domain| mapper.foreign_of(target, phys..phys + length).next().is_some();
            if holds_vcpu_info || self.grant_mapped(phys, length) || self.domains().any(foreign) {
                return Err(XenError::EBUSY);
            }
        }
        let domain = self.domain_mut(target).ok_or(XenError::ESRCH)?;
        domain.stage2.unmap(&mut IdentityTables, ipa, size).map_err(map_error)?;
        domain.ram_pages -= size / FRAME_SIZE;
        guest::flush_guest_tlbs();
        for (_, phys, length) in pieces {
            memory::release(phys, (length / FRAME_SIZE) as usize);
        }
        Ok(())
    }

    /// Maps `source`'s guest frame `gfn` at `mapper`'s guest frame `gpfn` (read-write).
    pub fn map_foreign(
        &mut self,
        mapper: DomainId,
        gpfn: u64,
        source: DomainId,
        gfn: u64,
    ) -> Result<(), XenError> {
        if mapper == source {
            return Err(XenError::EINVAL);
        }
        let tables = IdentityTables;
        let source_domain = self.domain(source).ok_or(XenError::ESRCH)?;
        let (phys, attributes) = source_domain
            .stage2
            .translate(&tables, gfn.checked_mul(FRAME_SIZE).ok_or(XenError::EINVAL)?)
            .ok_or(XenError::EINVAL)?;
        if attributes.memory != MemoryType::Normal {
            return Err(XenError::EINVAL);
        }
        self.map_lent(mapper, gpfn, phys & !(FRAME_SIZE - 1), source)
    }

    /// Maps frame `phys`, which `source` owns (its RAM or a page the core keeps for it), at
    /// `mapper`'s guest frame `gpfn` (read-write) as a foreign mapping: undone when `source` is
    /// destroyed.
    pub fn map_lent(
        &mut self,
        mapper: DomainId,
        gpfn: u64,
        phys: u64,
        source: DomainId,
    ) -> Result<(), XenError> {
        let ipa = gpfn.checked_mul(FRAME_SIZE).ok_or(XenError::EINVAL)?;
        let mapper_domain = self.domain_mut(mapper).ok_or(XenError::ESRCH)?;
        if mapper_domain.foreign.len() >= MAX_FOREIGN {
            return Err(XenError::ENOMEM);
        }
        let mut tables = IdentityTables;
        mapper_domain
            .stage2
            .map(&mut tables, ipa, phys, FRAME_SIZE, GUEST_LENT)
            .map_err(map_error)?;
        mapper_domain.foreign.push(ForeignMapping { ipa, source });
        Ok(())
    }

    /// `XENMEM_add_to_physmap` with `XENMAPSPACE_shared_info`: maps the domain's shared-info page
    /// at `gfn` (read-write, never executable). Mapped already, it must be removed first
    /// (`-EBUSY`), as Xen's `xenmem_add_to_physmap_one` mandates.
    pub fn map_shared_info(&mut self, id: DomainId, gfn: u64) -> Result<(), XenError> {
        if self.domain(id).ok_or(XenError::ESRCH)?.shared_info_gfn.is_some() {
            return Err(XenError::EBUSY);
        }
        self.free_ram_at(id, gfn)?;
        let domain = self.domain_mut(id).ok_or(XenError::ESRCH)?;
        map_core_page(domain, domain.shared_info, None, gfn)?;
        domain.shared_info_gfn = Some(gfn);
        Ok(())
    }

    /// `XENMEM_increase_reservation` for one extent: `2^order` pages counted for `target`
    /// against its maximum (`-ENOMEM`), never mapped.
    pub fn reserve_unmapped(&mut self, target: DomainId, order: u32) -> Result<(), XenError> {
        let domain = self.domain_mut(target).ok_or(XenError::ESRCH)?;
        let pages = domain.ram_pages + domain.unmapped_pages + (1 << order);
        if pages * FRAME_SIZE / 1024 > domain.max_memkb {
            return Err(XenError::ENOMEM);
        }
        domain.unmapped_pages += 1 << order;
        Ok(())
    }

    /// `XENMEM_remove_from_physmap` of `target`'s frame `gfn`, whatever is there (Xen's
    /// `get_page_from_gfn` then `guest_physmap_remove_page`): a foreign mapping, the shared-info
    /// page or a grant-table frame (which may then be added again), or its own RAM (given back,
    /// where Xen keeps the unmapped page allocated to it). Nothing of its own there: `-ENOENT`.
    pub fn remove_from_physmap(&mut self, target: DomainId, gfn: u64) -> Result<(), XenError> {
        let ipa = gfn.checked_mul(FRAME_SIZE).ok_or(XenError::ENOENT)?;
        let domain = self.domain_mut(target).ok_or(XenError::ESRCH)?;
        if domain.foreign.iter().any(|mapping| mapping.ipa == ipa) {
            return self.unmap_foreign(target, gfn);
        }
        let grant_frame = domain.grants.gfns.iter().position(|&frame| frame == Some(gfn));
        if domain.shared_info_gfn == Some(gfn) || grant_frame.is_some() {
            domain.stage2.unmap(&mut IdentityTables, ipa, FRAME_SIZE).map_err(map_error)?;
            guest::flush_guest_tlbs();
            match grant_frame {
                Some(index) => domain.grants.gfns[index] = None,
                None => domain.shared_info_gfn = None,
            }
            return Ok(());
        }
        if !is_ring_gfn(gfn) && domain.ram_frame(gfn).is_some() {
            // Xen unmaps the page but leaves it allocated to the domain: its frame is freed
            // here, but it still counts, as an unmapped page.
            self.decrease(target, gfn, 0)?;
            if let Some(domain) = self.domain_mut(target) {
                domain.unmapped_pages += 1;
            }
            return Ok(());
        }
        Err(XenError::ENOENT)
    }

    /// Before a page lent by the core is mapped at `gfn` of `id`: if the domain's own RAM is
    /// there, it is given back as by `decrease_reservation`, as Xen's `add_to_physmap` removes
    /// the page it replaces (Linux maps shared info and grant frames over pages it allocated).
    pub fn free_ram_at(&mut self, id: DomainId, gfn: u64) -> Result<(), XenError> {
        let domain = self.domain(id).ok_or(XenError::ESRCH)?;
        if is_ring_gfn(gfn) || domain.ram_frame(gfn).is_none() {
            return Ok(());
        }
        self.decrease(id, gfn, 0)
    }

    /// Undoes every foreign mapping `mapper` has of frame `phys` of `source`.
    pub fn unmap_frame(&mut self, mapper: DomainId, source: DomainId, phys: u64) {
        let Some(domain) = self.domain_mut(mapper) else { return };
        let gone: Vec<u64> = domain.foreign_of(source, phys..phys + 1).collect();
        domain.foreign.retain(|mapping| !gone.contains(&mapping.ipa));
        for ipa in gone {
            let _ = domain.stage2.unmap(&mut IdentityTables, ipa, FRAME_SIZE);
        }
        guest::flush_guest_tlbs();
    }

    /// `XENMEM_remove_from_physmap` of a foreign mapping at `mapper`'s `gpfn`.
    pub fn unmap_foreign(&mut self, mapper: DomainId, gpfn: u64) -> Result<(), XenError> {
        let ipa = gpfn.checked_mul(FRAME_SIZE).ok_or(XenError::EINVAL)?;
        let domain = self.domain_mut(mapper).ok_or(XenError::ESRCH)?;
        let index =
            domain.foreign.iter().position(|mapping| mapping.ipa == ipa).ok_or(XenError::EINVAL)?;
        let mut tables = IdentityTables;
        domain.stage2.unmap(&mut tables, ipa, FRAME_SIZE).map_err(|_| XenError::EINVAL)?;
        domain.foreign.swap_remove(index);
        guest::flush_guest_tlbs();
        Ok(())
    }
}
