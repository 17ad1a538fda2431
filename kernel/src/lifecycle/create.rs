//! Creating an empty domain and setting a vCPU's first context: what the control domain's
//! builder asks of the core through domctl (`XEN_DOMCTL_createdomain`,
//! `XEN_DOMCTL_setvcpucontext`); it loads the domain itself through `XENMEM_*`.

use alloc::vec::Vec;

use xenolith_abi::bundle::ShutdownActions;
use xenolith_abi::xen::arch_arm::{vcpu_guest_context, VGCF_online};
use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::hvm::HVM_NR_PARAMS;
use xenolith_abi::xen::shared_info::shared_info;
use xenolith_kernel::grant::GrantState;
use xenolith_kernel::mm::lpae::{AddressSpace, Stage2};
use xenolith_kernel::policy::{Capabilities, DomainId};
use zerocopy::IntoBytes;

use crate::arch::guest::VcpuContext;
use crate::domain::{
    ring_gfn, Domain, DomainState, Table, Vcpu, VcpuState, MAX_DOMAINS, MAX_VCPUS,
    MAX_VCPUS_PER_DOMAIN, RING_CONSOLE, RING_STORE,
};
use crate::mm::domain_memory::map_core_page;
use crate::mm::memory::{self, IdentityTables};

impl Table {
    /// `XEN_DOMCTL_createdomain`: a paused domain with `vcpus` vCPUs (all down), no RAM and no
    /// capabilities, its xenstore ring page mapped and, once there is a xenstore domain, its way
    /// to it. `requested` is the id asked for; `None`: the lowest free one.
    pub fn create_empty(
        &mut self,
        requested: Option<DomainId>,
        vcpus: u32,
    ) -> Result<DomainId, XenError> {
        if vcpus == 0 || vcpus > MAX_VCPUS_PER_DOMAIN {
            return Err(XenError::EINVAL);
        }
        // Every domain id and vCPU slot has its place from the first domain on.
        self.reserve();
        let id = match requested {
            Some(id) if usize::from(id) >= MAX_DOMAINS => return Err(XenError::EINVAL),
            Some(id) if self.domain(id).is_some() => return Err(XenError::EEXIST),
            Some(id) => id,
            None => (0..MAX_DOMAINS as DomainId)
                .find(|&id| self.domain(id).is_none())
                .ok_or(XenError::ENOMEM)?,
        };
        let slots: Vec<usize> =
            (0..MAX_VCPUS).filter(|&slot| self.vcpu(slot).is_none()).take(vcpus as usize).collect();
        if slots.len() < vcpus as usize {
            return Err(XenError::ENOMEM);
        }
        let shared_info = memory::alloc_zeroed_frame().ok_or(XenError::ENOMEM)?;
        write_wallclock(shared_info);
        let Ok(stage2) = AddressSpace::<Stage2>::new(&mut IdentityTables) else {
            memory::release(shared_info, 1);
            return Err(XenError::ENOMEM);
        };
        let events = match crate::event::new_table(id, shared_info, vcpus) {
            Ok(events) => events,
            Err(error) => {
                stage2.destroy(&mut IdentityTables);
                memory::release(shared_info, 1);
                return Err(error);
            }
        };
        for (index, &slot) in slots.iter().enumerate() {
            self.set_vcpu(slot, Some(Vcpu::new(id, index as u32, shared_info)));
        }
        let generation = self.take_generation();
        // Its ring pages' frames and ports come with `connect_rings` (none without a xenstore
        // or console domain, as Xen's `no-xenstore` dom0less domUs).
        let hvm_params = [0; HVM_NR_PARAMS as usize];
        self.insert(Domain {
            id,
            generation,
            name: alloc::format!("d{id}"),
            capabilities: Capabilities::default(),
            state: DomainState::Paused,
            ram_pages: 0,
            foreign: Vec::new(),
            stage2,
            vmid: (id + 1) & 0xff,
            vcpus: slots,
            runtime_at_heartbeat: 0,
            sched: xenolith_kernel::sched::VcpuParams::new(id),
            max_memkb: 0,
            vgic: xenolith_kernel::event::vgic::VgicDist::default(),
            shared_info,
            shared_info_gfn: None,
            events,
            grants: GrantState::default(),
            hvm_params,
            ring_pages: [None; 2],
            on_shutdown: ShutdownActions::TOOLSTACK,
            manifest_index: None,
            preserved: None,
            restarts: 0,
            destroy_requested: false,
            restarting: false,
            shutdown_code: None,
            watchdogs: [None; 2],
            vm_assist: 0,
            unmapped_pages: 0,
            ioreq: Vec::new(),
            waits_for_model: false,
        });
        // Its console and xenstore ring pages, zeroed (every ring empty), where Xen's toolstack
        // puts them; attached before they are mapped, so destroying the domain frees them.
        let domain = self.domain_mut(id).ok_or(XenError::ESRCH)?;
        for ring in [RING_CONSOLE, RING_STORE] {
            let page = memory::alloc_zeroed_frame();
            domain.ring_pages[ring] = page;
            let mapped = page.map(|page| map_core_page(domain, page, None, ring_gfn(ring)));
            if !matches!(mapped, Some(Ok(()))) {
                self.destroy(id);
                return Err(XenError::ENOMEM);
            }
        }
        self.connect_rings(id, super::Servers::default());
        crate::event::domain_exception(self);
        Ok(id)
    }
}

impl Table {
    /// `XEN_DOMCTL_setvcpucontext`: where vCPU `vcpu` of a paused `target` starts.
    pub fn set_vcpu_context(
        &mut self,
        target: DomainId,
        vcpu: u32,
        context: &vcpu_guest_context,
    ) -> Result<(), XenError> {
        let domain = self.domain(target).ok_or(XenError::ESRCH)?;
        if domain.state != DomainState::Paused {
            return Err(XenError::EINVAL);
        }
        let slot = *domain.vcpus.get(vcpu as usize).ok_or(XenError::EINVAL)?;
        // Only AArch64 EL1h/EL1t or EL0t with a 4-byte-aligned PC: nothing that could run at EL2.
        let mode = context.user_regs.cpsr & 0x1f;
        if !matches!(mode, 0b00100 | 0b00101 | 0b00000) || !context.user_regs.pc64.is_multiple_of(4)
        {
            return Err(XenError::EINVAL);
        }
        let vcpu_record = self.vcpu_mut(slot).ok_or(XenError::EINVAL)?;
        let mut new = VcpuContext::new(context.user_regs.pc64, context.user_regs.x[0], vcpu);
        new.frame.x = context.user_regs.x;
        new.frame.spsr = context.user_regs.cpsr;
        new.set_el1(
            context.sctlr,
            context.ttbcr,
            context.ttbr0,
            context.ttbr1,
            context.user_regs.sp_el1,
            context.user_regs.elr_el1,
        );
        vcpu_record.context = new;
        vcpu_record.initialised = true;
        vcpu_record.state =
            if context.flags & VGCF_online != 0 { VcpuState::Runnable } else { VcpuState::Down };
        Ok(())
    }
}

/// Writes the wallclock now into the fresh shared-info page at `page`, `wc_version` 2 as after
/// Xen's first `update_domain_wallclock_time` (odd while writing, even after; nobody reads the
/// page before the domain runs).
fn write_wallclock(page: u64) {
    let (seconds, nanoseconds) = crate::platform::wallclock::at(crate::sched::now());
    let fields = [2, seconds as u32, nanoseconds, (seconds >> 32) as u32];
    let offset = core::mem::offset_of!(shared_info, wc_version) as u64;
    memory::copy_to_phys(page + offset, fields.as_bytes());
}
