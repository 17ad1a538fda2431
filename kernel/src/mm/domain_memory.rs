//! What the control domain's builder asks of the core, Xen's way: create an empty domain
//! (`XEN_DOMCTL_createdomain`), give it RAM (`XENMEM_populate_physmap`), map its pages into the
//! builder to load it (`XENMEM_add_to_physmap_batch` with `XENMAPSPACE_gmfn_foreign`, undone with
//! `XENMEM_remove_from_physmap`), set its first vCPU (`XEN_DOMCTL_setvcpucontext`), unpause it.
//!
//! The image, its DTB and where things go are the builder's business; the core only keeps every
//! mapping inside what the policy allows and every frame accounted for.
//!
//! # Invariants
//! - A domain's RAM never exceeds its `max_mem`; extents lie in Xen's guest RAM banks and never
//!   overlap what is mapped.
//! - A foreign mapping only ever names a frame its source owns (looked up in the source's own
//!   stage 2), and is removed from the mapper when the source is destroyed.
//! - A vCPU context can be set only while the domain has never run or is paused.
//! - Every per-domain list the core keeps on its heap is bounded ([`MAX_EXTENTS`],
//!   [`MAX_FOREIGN`]), so no domain can exhaust the heap.

use xenolith_abi::xen::arch_arm::{
    GUEST_RAM0_BASE, GUEST_RAM0_SIZE, GUEST_RAM1_BASE, GUEST_RAM1_SIZE,
};
use xenolith_abi::xen::errno::XenError;
use xenolith_kernel::mm::frame::FRAME_SIZE;
use xenolith_kernel::mm::lpae::{Attributes, MemoryType};
use xenolith_kernel::policy::DomainId;

use crate::arch::guest::{self};
use crate::domain::{Domain, Extent, ForeignMapping, Table};
use crate::mm::memory::{self, IdentityTables};

/// Most RAM extents one domain may hold: each is a heap record, and the core's heap is fixed
/// (64 domains at both limits use about 1.3 MiB of the 4 MiB heap).
pub const MAX_EXTENTS: usize = 512;
/// Most foreign pages one domain may map at once, for the same reason.
pub const MAX_FOREIGN: usize = 512;

/// How a domain's RAM is mapped in its stage 2.
pub const GUEST_RAM: Attributes =
    Attributes { memory: MemoryType::Normal, write: true, execute: true };

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
    let page = Attributes { execute: false, ..GUEST_RAM };
    domain.stage2.map(&mut tables, ipa, phys, FRAME_SIZE, page).map_err(map_error)?;
    if let Some(old) = old {
        let _ = domain.stage2.unmap(&mut tables, old * FRAME_SIZE, FRAME_SIZE);
        guest::flush_guest_tlbs();
    }
    Ok(())
}

impl Table {
    /// `XENMEM_populate_physmap` for one extent: `2^order` fresh, zeroed frames mapped at
    /// guest frame `gfn` of `target`.
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
        if (domain.ram_bytes() + size) / 1024 > domain.max_memkb || domain.ram.len() >= MAX_EXTENTS
        {
            return Err(XenError::ENOMEM);
        }
        let mut tables = IdentityTables;
        if domain.stage2.translate(&tables, ipa).is_some()
            || domain.stage2.translate(&tables, ipa + size - FRAME_SIZE).is_some()
        {
            return Err(XenError::EBUSY);
        }
        let frames = 1usize << order;
        let phys = memory::FRAMES
            .lock()
            .as_mut()
            .and_then(|allocator| allocator.alloc_contiguous(frames, frames.min(512)))
            .ok_or(XenError::ENOMEM)?;
        memory::scrub(phys, size);
        if let Err(error) = domain.stage2.map(&mut tables, ipa, phys, size, GUEST_RAM) {
            memory::release(phys, frames);
            return Err(match error {
                xenolith_kernel::mm::lpae::MapError::OutOfMemory => XenError::ENOMEM,
                _ => XenError::EBUSY,
            });
        }
        domain.ram.push(Extent { ipa, phys, size });
        Ok(())
    }

    /// `XENMEM_decrease_reservation` for one extent: gives back the extent of `2^order` frames at
    /// guest frame `gfn` of `target`, which must be exactly one the domain was given. Refused
    /// (`-EBUSY`) while another domain maps any of `target`'s memory: frames are not
    /// reference-counted yet, so none may be freed under a live foreign mapping.
    pub fn decrease(&mut self, target: DomainId, gfn: u64, order: u32) -> Result<(), XenError> {
        let size = FRAME_SIZE.checked_shl(order).ok_or(XenError::EINVAL)?;
        let ipa = gfn.checked_mul(FRAME_SIZE).ok_or(XenError::EINVAL)?;
        let mapped_elsewhere = self
            .domains
            .iter()
            .flatten()
            .any(|domain| domain.foreign.iter().any(|mapping| mapping.source == target));
        if mapped_elsewhere {
            return Err(XenError::EBUSY);
        }
        let domain = self.domain(target).ok_or(XenError::ESRCH)?;
        let index = domain
            .ram
            .iter()
            .position(|extent| extent.ipa == ipa && extent.size == size)
            .ok_or(XenError::EINVAL)?;
        let phys = domain.ram[index].phys;
        let holds_vcpu_info = domain.vcpus.iter().any(|&slot| {
            self.vcpus[slot]
                .as_ref()
                .and_then(|vcpu| vcpu.vcpu_info)
                .is_some_and(|info| (phys..phys + size).contains(&info))
        });
        if holds_vcpu_info || self.grant_mapped(phys, size) {
            // Xen keeps such a page alive with a reference; the core counts only frames of
            // destroyed domains, so it refuses instead.
            return Err(XenError::EBUSY);
        }
        let domain = self.domain_mut(target).ok_or(XenError::ESRCH)?;
        let mut tables = IdentityTables;
        domain.stage2.unmap(&mut tables, ipa, size).map_err(|_| XenError::EINVAL)?;
        let extent = domain.ram.swap_remove(index);
        guest::flush_guest_tlbs();
        memory::release(extent.phys, (extent.size / FRAME_SIZE) as usize);
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
        let ipa = gpfn.checked_mul(FRAME_SIZE).ok_or(XenError::EINVAL)?;
        let mapper_domain = self.domain_mut(mapper).ok_or(XenError::ESRCH)?;
        if mapper_domain.foreign.len() >= MAX_FOREIGN {
            return Err(XenError::ENOMEM);
        }
        let mut tables = IdentityTables;
        let foreign = Attributes { execute: false, ..GUEST_RAM };
        mapper_domain
            .stage2
            .map(&mut tables, ipa, phys & !(FRAME_SIZE - 1), FRAME_SIZE, foreign)
            .map_err(map_error)?;
        mapper_domain.foreign.push(ForeignMapping { ipa, source });
        Ok(())
    }

    /// `XENMEM_add_to_physmap` with `XENMAPSPACE_shared_info`: maps the domain's shared-info page
    /// at `gfn` (read-write, never executable), moving it if it was mapped elsewhere, as Xen does.
    pub fn map_shared_info(&mut self, id: DomainId, gfn: u64) -> Result<(), XenError> {
        let domain = self.domain_mut(id).ok_or(XenError::ESRCH)?;
        map_core_page(domain, domain.shared_info, domain.shared_info_gfn, gfn)?;
        domain.shared_info_gfn = Some(gfn);
        Ok(())
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
