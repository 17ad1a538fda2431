//! Xen's virtual platform for Arm guests: the guest physical memory map, the interrupts a guest
//! sees, the PSCI function ids Xen's virtual PSCI answers, and the `HVM_PARAM_*` indices a guest
//! reads to find xenstore and its console.
//!
//! The memory map and interrupts are Xen 4.17's `xen/include/public/arch-arm.h` ("Virtual machine
//! platform"); a few facts Xen keeps outside its public headers (the redistributor stride, the
//! vCPU-to-MPIDR mapping, the PSCI ids) are copied from the private header named on each item, so
//! that the core and every tool read them from one place.
//!
//! # Invariants
//! - Every value equals the one in the Xen 4.17 header its doc names; nothing here is Xenolith's
//!   own choice.
//! - Addresses and sizes are `u64` (Xen's `xen_mk_ullong`); interrupt numbers, PSCI function ids
//!   and parameter indices are `u32`.
#![allow(non_upper_case_globals, non_camel_case_types)]

// ---------------------------------------------------------------------------------------------
// Memory map: `xen/include/public/arch-arm.h`.
// ---------------------------------------------------------------------------------------------

/// Base of the vGICv3 distributor (`xen/include/public/arch-arm.h`).
pub const GUEST_GICV3_GICD_BASE: u64 = 0x0300_1000;
/// Size of the vGICv3 distributor frame, 64 KiB (`xen/include/public/arch-arm.h`).
pub const GUEST_GICV3_GICD_SIZE: u64 = 0x0001_0000;
/// Number of vGICv3 redistributor regions a guest with the virtual layout gets
/// (`xen/include/public/arch-arm.h`).
pub const GUEST_GICV3_RDIST_REGIONS: u32 = 1;
/// Base of the first (only) redistributor region, room for vCPUs 0..127
/// (`xen/include/public/arch-arm.h`).
pub const GUEST_GICV3_GICR0_BASE: u64 = 0x0302_0000;
/// Size of the first redistributor region, 16 MiB (`xen/include/public/arch-arm.h`).
pub const GUEST_GICV3_GICR0_SIZE: u64 = 0x0100_0000;
/// Distance between two vCPUs' redistributors: the RD_base and SGI_base 64 KiB frames. Xen calls
/// this `GICV3_GICR_SIZE` (`xen/arch/arm/include/asm/gic_v3_defs.h`, not a public header); vCPU
/// `n`'s redistributor is at `GUEST_GICV3_GICR0_BASE + n * GUEST_GICV3_RDIST_STRIDE`
/// (`xen/arch/arm/vgic-v3.c`, `vgic_v3_vcpu_init`).
pub const GUEST_GICV3_RDIST_STRIDE: u64 = 2 * 0x1_0000;

/// Base of the PL011 (SBSA UART) that Xen's vpl011 emulates (`GUEST_PL011_BASE`,
/// `xen/include/public/arch-arm.h`).
pub const GUEST_PL011_BASE: u64 = 0x2200_0000;
/// Size of the PL011 frame (`GUEST_PL011_SIZE`, `xen/include/public/arch-arm.h`).
pub const GUEST_PL011_SIZE: u64 = 0x0000_1000;
/// Xen's vpl011 is mapped at [`GUEST_PL011_BASE`]; Xen has no separate `GUEST_VPL011_BASE`.
pub const GUEST_VPL011_BASE: u64 = GUEST_PL011_BASE;
/// Xen's vpl011 frame size, [`GUEST_PL011_SIZE`]; Xen has no separate `GUEST_VPL011_SIZE`.
pub const GUEST_VPL011_SIZE: u64 = GUEST_PL011_SIZE;
/// Base of the window libxl places a guest's virtio-mmio devices in (`GUEST_VIRTIO_MMIO_BASE`,
/// `xen/include/public/arch-arm.h`).
pub const GUEST_VIRTIO_MMIO_BASE: u64 = 0x0200_0000;
/// Size of that window (`GUEST_VIRTIO_MMIO_SIZE`, `xen/include/public/arch-arm.h`).
pub const GUEST_VIRTIO_MMIO_SIZE: u64 = 0x0010_0000;
/// Bytes of one virtio-mmio device's registers as libxl places them, one after the other from
/// [`GUEST_VIRTIO_MMIO_BASE`] (`VIRTIO_MMIO_DEV_SIZE` and `alloc_virtio_mmio_base` in
/// `tools/libs/light/libxl_arm.c`: "the biggest known size" of a transport's registers).
pub const VIRTIO_MMIO_DEV_SIZE: u64 = 0x200;

/// Base of the 16 MiB (4096 frames) region a guest maps its grant table into
/// (`xen/include/public/arch-arm.h`).
pub const GUEST_GNTTAB_BASE: u64 = 0x3800_0000;
/// Size of the grant-table region (`xen/include/public/arch-arm.h`).
pub const GUEST_GNTTAB_SIZE: u64 = 0x0100_0000;

/// Base of the "magic" pages: console ring, xenstore ring and friends
/// (`xen/include/public/arch-arm.h`).
pub const GUEST_MAGIC_BASE: u64 = 0x3900_0000;
/// Size of the magic-page region (`xen/include/public/arch-arm.h`).
pub const GUEST_MAGIC_SIZE: u64 = 0x0100_0000;
/// Frame offsets inside the magic region, as the toolstack places them
/// (`tools/libs/guest/xg_dom_arm.c`, `CONSOLE_PFN_OFFSET`).
pub const GUEST_MAGIC_CONSOLE_PFN_OFFSET: u64 = 0;
/// `XENSTORE_PFN_OFFSET` (`tools/libs/guest/xg_dom_arm.c`).
pub const GUEST_MAGIC_XENSTORE_PFN_OFFSET: u64 = 1;
/// `MEMACCESS_PFN_OFFSET` (`tools/libs/guest/xg_dom_arm.c`).
pub const GUEST_MAGIC_MEMACCESS_PFN_OFFSET: u64 = 2;
/// `VUART_PFN_OFFSET` (`tools/libs/guest/xg_dom_arm.c`).
pub const GUEST_MAGIC_VUART_PFN_OFFSET: u64 = 3;

/// Xenolith-private: where a service domain's preserved region (kept across its restarts, see
/// ARCHITECTURE.md section 5) is mapped. It lies in the hole Xen 4.17's guest layout leaves
/// between the magic pages (ending at 0x3a00_0000) and `GUEST_RAM0_BASE`, so no Xen-defined
/// region moves.
pub const PRESERVED_REGION_BASE: u64 = 0x3c00_0000;
/// The most bytes the preserved region may span (up to `GUEST_RAM0_BASE`).
pub const PRESERVED_REGION_SIZE: u64 = 0x0400_0000;

/// Xenolith-private: the guest-physical address bits every domain's stage 2 translates (40: a
/// 1 TiB IPA space, `VTCR_EL2.T0SZ` = 24), which is what `XEN_DOMCTL_getdomaininfo` reports as
/// `gpaddr_bits` and what bounds the extended regions of a guest's device tree (libxl's
/// `finalise_ext_region` reads the same `gpaddr_bits`). Xen derives it from the host's PA range;
/// here it is fixed. `GUEST_RAM1` ends exactly at this limit.
pub const GUEST_GPADDR_BITS: u32 = 40;

/// Number of guest RAM banks (`xen/include/public/arch-arm.h`).
pub const GUEST_RAM_BANKS: usize = 2;
/// Low RAM: 3 GiB at 1 GiB (`xen/include/public/arch-arm.h`).
pub const GUEST_RAM0_BASE: u64 = 0x4000_0000;
/// Size of the low RAM bank (`xen/include/public/arch-arm.h`).
pub const GUEST_RAM0_SIZE: u64 = 0xc000_0000;
/// High RAM: 1016 GiB at 8 GiB (`xen/include/public/arch-arm.h`).
pub const GUEST_RAM1_BASE: u64 = 0x02_0000_0000;
/// Size of the high RAM bank (`xen/include/public/arch-arm.h`).
pub const GUEST_RAM1_SIZE: u64 = 0xfe_0000_0000;
/// `GUEST_RAM_BANK_BASES` (`xen/include/public/arch-arm.h`).
pub const GUEST_RAM_BANK_BASES: [u64; GUEST_RAM_BANKS] = [GUEST_RAM0_BASE, GUEST_RAM1_BASE];
/// `GUEST_RAM_BANK_SIZES` (`xen/include/public/arch-arm.h`).
pub const GUEST_RAM_BANK_SIZES: [u64; GUEST_RAM_BANKS] = [GUEST_RAM0_SIZE, GUEST_RAM1_SIZE];

/// Most vCPUs a guest may have (`xen/include/public/arch-arm.h`).
pub const GUEST_MAX_VCPUS: u32 = 128;

// ---------------------------------------------------------------------------------------------
// Interrupts: `xen/include/public/arch-arm.h`.
// ---------------------------------------------------------------------------------------------

/// Virtual timer PPI (`xen/include/public/arch-arm.h`).
pub const GUEST_TIMER_VIRT_PPI: u32 = 27;
/// Secure physical timer PPI (`xen/include/public/arch-arm.h`).
pub const GUEST_TIMER_PHYS_S_PPI: u32 = 29;
/// Non-secure physical timer PPI (`xen/include/public/arch-arm.h`).
pub const GUEST_TIMER_PHYS_NS_PPI: u32 = 30;
/// The event-channel upcall PPI (`xen/include/public/arch-arm.h`).
pub const GUEST_EVTCHN_PPI: u32 = 31;
/// The vpl011's SPI (`xen/include/public/arch-arm.h`).
pub const GUEST_VPL011_SPI: u32 = 32;
/// The first SPI libxl gives a virtio-mmio device, one each in disk order
/// (`GUEST_VIRTIO_MMIO_SPI_FIRST`, `xen/include/public/arch-arm.h`; `alloc_virtio_mmio_irq` in
/// `tools/libs/light/libxl_arm.c`).
pub const GUEST_VIRTIO_MMIO_SPI_FIRST: u32 = 33;
/// The last SPI libxl gives a virtio-mmio device (`GUEST_VIRTIO_MMIO_SPI_LAST`,
/// `xen/include/public/arch-arm.h`): eleven devices at most.
pub const GUEST_VIRTIO_MMIO_SPI_LAST: u32 = 43;

// ---------------------------------------------------------------------------------------------
// Device-tree conventions: `xen/include/public/device_tree_defs.h`.
// ---------------------------------------------------------------------------------------------

/// The phandle Xen gives the guest's interrupt controller (`xen/include/public/device_tree_defs.h`).
pub const GUEST_PHANDLE_GIC: u32 = 65000;
/// `#address-cells` of the guest DT root (`xen/include/public/device_tree_defs.h`).
pub const GUEST_ROOT_ADDRESS_CELLS: u32 = 2;
/// `#size-cells` of the guest DT root (`xen/include/public/device_tree_defs.h`).
pub const GUEST_ROOT_SIZE_CELLS: u32 = 2;
/// Interrupt type "rising edge" in a GIC interrupt specifier's flags cell
/// (`xen/include/public/device_tree_defs.h`).
pub const DT_IRQ_TYPE_EDGE_RISING: u32 = 0x1;
/// Interrupt type "active-high level" (`xen/include/public/device_tree_defs.h`).
pub const DT_IRQ_TYPE_LEVEL_HIGH: u32 = 0x4;
/// Interrupt type "active-low level" (`xen/include/public/device_tree_defs.h`).
pub const DT_IRQ_TYPE_LEVEL_LOW: u32 = 0x8;

// ---------------------------------------------------------------------------------------------
// vCPU affinity: `xen/arch/arm/include/asm/domain.h`.
// ---------------------------------------------------------------------------------------------

/// The MPIDR affinity Xen gives vCPU `vcpu_id`: its low 4 bits in Aff0, the next 8 in Aff1
/// (`vcpuid_to_vaffinity`, `xen/arch/arm/include/asm/domain.h`; the toolstack's
/// `libxl__compute_mpdir` in `tools/libs/light/libxl_arm.h` is the same). The guest's
/// `cpu@N` `reg` and PSCI `CPU_ON` targets use this value.
pub const fn vcpuid_to_vaffinity(vcpu_id: u32) -> u64 {
    ((vcpu_id & 0x0f) as u64) | ((((vcpu_id >> 4) & 0xff) as u64) << 8)
}

/// The vCPU id for an affinity value (`vaffinity_to_vcpuid`,
/// `xen/arch/arm/include/asm/domain.h`), or `None` if the value has bits Xen's mapping never
/// produces (Aff0 above 15, Aff2 or Aff3 set).
pub const fn vaffinity_to_vcpuid(affinity: u64) -> Option<u32> {
    // MPIDR_HWID_MASK: Aff0..Aff2 in bits 23:0, Aff3 in bits 39:32.
    let affinity = affinity & 0xff_00ff_ffff;
    if affinity & !0xff0f != 0 {
        return None;
    }
    Some(((affinity & 0x0f) | ((affinity >> 8) & 0xff) << 4) as u32)
}

// ---------------------------------------------------------------------------------------------
// PSCI: `xen/include/public/arch-arm.h` (0.1), `xen/arch/arm/include/asm/psci.h` (0.2 and later).
// ---------------------------------------------------------------------------------------------

/// PSCI 0.1 `cpu_suspend` id, written in the guest DT's `psci` node
/// (`xen/include/public/arch-arm.h`).
pub const PSCI_CPU_SUSPEND: u32 = 0;
/// PSCI 0.1 `cpu_off` id (`PSCI_cpu_off`, `xen/include/public/arch-arm.h`).
pub const PSCI_CPU_OFF: u32 = 1;
/// PSCI 0.1 `cpu_on` id (`PSCI_cpu_on`, `xen/include/public/arch-arm.h`).
pub const PSCI_CPU_ON: u32 = 2;
/// PSCI 0.1 `migrate` id (`PSCI_migrate`, `xen/include/public/arch-arm.h`).
pub const PSCI_MIGRATE: u32 = 3;

/// `PSCI_0_2_FN32(n)`: SMCCC fast call, 32-bit convention, owner "standard"
/// (`xen/arch/arm/include/asm/psci.h`, `ARM_SMCCC_CALL_VAL` in `asm/smccc.h`).
const fn psci_0_2_fn32(number: u32) -> u32 {
    (1 << 31) | (4 << 24) | number
}
/// `PSCI_0_2_FN64(n)`: as [`psci_0_2_fn32`] with the 64-bit convention bit (30) set
/// (`xen/arch/arm/include/asm/psci.h`).
const fn psci_0_2_fn64(number: u32) -> u32 {
    (1 << 31) | (1 << 30) | (4 << 24) | number
}

/// `PSCI_0_2_FN32_PSCI_VERSION` (`xen/arch/arm/include/asm/psci.h`).
pub const PSCI_0_2_FN32_PSCI_VERSION: u32 = psci_0_2_fn32(0);
/// `PSCI_0_2_FN32_CPU_SUSPEND` (`xen/arch/arm/include/asm/psci.h`).
pub const PSCI_0_2_FN32_CPU_SUSPEND: u32 = psci_0_2_fn32(1);
/// `PSCI_0_2_FN32_CPU_OFF` (`xen/arch/arm/include/asm/psci.h`).
pub const PSCI_0_2_FN32_CPU_OFF: u32 = psci_0_2_fn32(2);
/// `PSCI_0_2_FN32_CPU_ON` (`xen/arch/arm/include/asm/psci.h`).
pub const PSCI_0_2_FN32_CPU_ON: u32 = psci_0_2_fn32(3);
/// `PSCI_0_2_FN32_AFFINITY_INFO` (`xen/arch/arm/include/asm/psci.h`).
pub const PSCI_0_2_FN32_AFFINITY_INFO: u32 = psci_0_2_fn32(4);
/// `PSCI_0_2_FN32_MIGRATE_INFO_TYPE` (`xen/arch/arm/include/asm/psci.h`).
pub const PSCI_0_2_FN32_MIGRATE_INFO_TYPE: u32 = psci_0_2_fn32(6);
/// `PSCI_0_2_FN32_SYSTEM_OFF` (`xen/arch/arm/include/asm/psci.h`).
pub const PSCI_0_2_FN32_SYSTEM_OFF: u32 = psci_0_2_fn32(8);
/// `PSCI_0_2_FN32_SYSTEM_RESET` (`xen/arch/arm/include/asm/psci.h`).
pub const PSCI_0_2_FN32_SYSTEM_RESET: u32 = psci_0_2_fn32(9);
/// `PSCI_1_0_FN32_PSCI_FEATURES` (`xen/arch/arm/include/asm/psci.h`).
pub const PSCI_1_0_FN32_PSCI_FEATURES: u32 = psci_0_2_fn32(10);
/// `PSCI_0_2_FN64_CPU_SUSPEND` (`xen/arch/arm/include/asm/psci.h`).
pub const PSCI_0_2_FN64_CPU_SUSPEND: u32 = psci_0_2_fn64(1);
/// `PSCI_0_2_FN64_CPU_ON` (`xen/arch/arm/include/asm/psci.h`).
pub const PSCI_0_2_FN64_CPU_ON: u32 = psci_0_2_fn64(3);
/// `PSCI_0_2_FN64_AFFINITY_INFO` (`xen/arch/arm/include/asm/psci.h`).
pub const PSCI_0_2_FN64_AFFINITY_INFO: u32 = psci_0_2_fn64(4);
/// `ARM_SMCCC_VERSION_FID`: fast call, 32-bit, owner "arch", function 0; Xen's vPSCI lists it
/// in `PSCI_FEATURES` (`xen/arch/arm/include/asm/smccc.h`, `xen/arch/arm/vpsci.c`).
pub const ARM_SMCCC_VERSION_FID: u32 = 1 << 31;
/// The PSCI version Xen 4.17's vPSCI reports, 1.1 (`PSCI_VERSION(1, 1)`,
/// `xen/arch/arm/vpsci.c`).
pub const PSCI_VERSION_1_1: u32 = (1 << 16) | 1;

/// PSCI return code "success" (`xen/arch/arm/include/asm/psci.h`).
pub const PSCI_SUCCESS: i32 = 0;
/// `PSCI_NOT_SUPPORTED` (`xen/arch/arm/include/asm/psci.h`).
pub const PSCI_NOT_SUPPORTED: i32 = -1;
/// `PSCI_INVALID_PARAMETERS` (`xen/arch/arm/include/asm/psci.h`).
pub const PSCI_INVALID_PARAMETERS: i32 = -2;
/// `PSCI_DENIED` (`xen/arch/arm/include/asm/psci.h`).
pub const PSCI_DENIED: i32 = -3;
/// `PSCI_ALREADY_ON` (`xen/arch/arm/include/asm/psci.h`).
pub const PSCI_ALREADY_ON: i32 = -4;

// ---------------------------------------------------------------------------------------------
// HVM parameters: `xen/include/public/hvm/params.h` (indices for `HVMOP_get_param`).
// ---------------------------------------------------------------------------------------------

/// The guest frame of the xenstore ring (`xen/include/public/hvm/params.h`).
pub const HVM_PARAM_STORE_PFN: u32 = 1;
/// The xenstore event channel (`xen/include/public/hvm/params.h`).
pub const HVM_PARAM_STORE_EVTCHN: u32 = 2;
/// The guest frame of the PV console ring (`xen/include/public/hvm/params.h`).
pub const HVM_PARAM_CONSOLE_PFN: u32 = 17;
/// The PV console event channel (`xen/include/public/hvm/params.h`).
pub const HVM_PARAM_CONSOLE_EVTCHN: u32 = 18;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_map_matches_xen_4_17() {
        assert_eq!(GUEST_GICV3_GICD_BASE, 0x0300_1000);
        assert_eq!(GUEST_GICV3_GICR0_BASE, 0x0302_0000);
        assert_eq!(GUEST_GICV3_GICR0_SIZE / GUEST_GICV3_RDIST_STRIDE, u64::from(GUEST_MAX_VCPUS));
        assert_eq!(GUEST_GNTTAB_BASE, 0x3800_0000);
        assert_eq!(GUEST_RAM0_BASE + GUEST_RAM0_SIZE, 0x1_0000_0000);
        assert_eq!(GUEST_RAM1_BASE + GUEST_RAM1_SIZE, 0x100_0000_0000);
        assert_eq!(GUEST_VPL011_BASE, 0x2200_0000);
        assert_eq!((GUEST_VIRTIO_MMIO_BASE, GUEST_VIRTIO_MMIO_SIZE), (0x0200_0000, 0x10_0000));
        assert_eq!(VIRTIO_MMIO_DEV_SIZE, 0x200);
        // The regions of the virtual platform do not overlap one another.
        let regions = [
            (GUEST_GICV3_GICD_BASE, GUEST_GICV3_GICD_SIZE),
            (GUEST_GICV3_GICR0_BASE, GUEST_GICV3_GICR0_SIZE),
            (GUEST_PL011_BASE, GUEST_PL011_SIZE),
            (GUEST_VIRTIO_MMIO_BASE, GUEST_VIRTIO_MMIO_SIZE),
            (GUEST_GNTTAB_BASE, GUEST_GNTTAB_SIZE),
            (GUEST_MAGIC_BASE, GUEST_MAGIC_SIZE),
            (PRESERVED_REGION_BASE, PRESERVED_REGION_SIZE),
            (GUEST_RAM0_BASE, GUEST_RAM0_SIZE),
            (GUEST_RAM1_BASE, GUEST_RAM1_SIZE),
        ];
        for (i, a) in regions.iter().enumerate() {
            for b in &regions[i + 1..] {
                assert!(a.0 + a.1 <= b.0 || b.0 + b.1 <= a.0, "{a:x?} overlaps {b:x?}");
            }
        }
    }

    #[test]
    fn interrupts_match_xen_4_17() {
        assert_eq!(GUEST_EVTCHN_PPI, 31);
        assert_eq!(
            [GUEST_TIMER_VIRT_PPI, GUEST_TIMER_PHYS_S_PPI, GUEST_TIMER_PHYS_NS_PPI],
            [27, 29, 30]
        );
        assert_eq!(GUEST_VPL011_SPI, 32);
        assert_eq!((GUEST_VIRTIO_MMIO_SPI_FIRST, GUEST_VIRTIO_MMIO_SPI_LAST), (33, 43));
        assert_eq!(GUEST_PHANDLE_GIC, 65000);
    }

    #[test]
    fn psci_ids_match_the_smccc_encoding() {
        assert_eq!(PSCI_0_2_FN32_PSCI_VERSION, 0x8400_0000);
        assert_eq!(PSCI_0_2_FN32_CPU_OFF, 0x8400_0002);
        assert_eq!(PSCI_0_2_FN64_CPU_ON, 0xc400_0003);
        assert_eq!(PSCI_0_2_FN64_AFFINITY_INFO, 0xc400_0004);
        assert_eq!(PSCI_1_0_FN32_PSCI_FEATURES, 0x8400_000a);
        assert_eq!(ARM_SMCCC_VERSION_FID, 0x8000_0000);
        assert_eq!((PSCI_CPU_OFF, PSCI_CPU_ON), (1, 2));
    }

    #[test]
    fn hvm_params_match_xen_4_17() {
        assert_eq!((HVM_PARAM_STORE_PFN, HVM_PARAM_STORE_EVTCHN), (1, 2));
        assert_eq!((HVM_PARAM_CONSOLE_PFN, HVM_PARAM_CONSOLE_EVTCHN), (17, 18));
    }

    #[test]
    fn vcpu_affinity_round_trips() {
        assert_eq!(vcpuid_to_vaffinity(0), 0);
        assert_eq!(vcpuid_to_vaffinity(15), 0xf);
        assert_eq!(vcpuid_to_vaffinity(16), 0x100);
        assert_eq!(vcpuid_to_vaffinity(127), 0x70f);
        for vcpu in 0..4096 {
            assert_eq!(vaffinity_to_vcpuid(vcpuid_to_vaffinity(vcpu)), Some(vcpu));
        }
        assert_eq!(vaffinity_to_vcpuid(0x10), None);
        assert_eq!(vaffinity_to_vcpuid(0x1_0000), None);
        // Bits outside MPIDR's affinity fields (e.g. MPIDR_EL1.U/MT/RES1) are ignored.
        assert_eq!(vaffinity_to_vcpuid(0x8000_0001), Some(1));
    }
}

/// `xen/include/public/arch-arm.h`: `struct vcpu_guest_core_regs`, arm64 view: x0-x30 (each a
/// union with an AArch32 register), then PC, CPSR and the EL1 banked state.
#[repr(C)]
#[derive(
    Clone,
    Copy,
    Debug,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::KnownLayout,
    zerocopy::Immutable,
)]
pub struct vcpu_guest_core_regs {
    /// x0..x30.
    pub x: [u64; 31],
    /// `pc64`: where the vCPU starts (ELR_EL2).
    pub pc64: u64,
    /// `cpsr`: its PSTATE (SPSR_EL2).
    pub cpsr: u64,
    /// `spsr_el1`.
    pub spsr_el1: u64,
    /// `spsr_fiq`, `spsr_irq`, `spsr_und`, `spsr_abt` (AArch32 only).
    pub spsr_aarch32: [u32; 4],
    /// `sp_el0`.
    pub sp_el0: u64,
    /// `sp_el1`.
    pub sp_el1: u64,
    /// `elr_el1`.
    pub elr_el1: u64,
}

/// `xen/include/public/arch-arm.h`: `VGCF_online`, the vCPU is brought up with this context.
pub const VGCF_online: u32 = 1 << 0;

/// `xen/include/public/arch-arm.h`: `struct vcpu_guest_context`.
#[repr(C)]
#[derive(
    Clone,
    Copy,
    Debug,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::KnownLayout,
    zerocopy::Immutable,
)]
pub struct vcpu_guest_context {
    /// `VGCF_*`.
    pub flags: u32,
    /// Padding (implicit in C: `user_regs` is 8-byte aligned).
    pub _pad: u32,
    /// Core registers.
    pub user_regs: vcpu_guest_core_regs,
    /// `sctlr` (SCTLR_EL1).
    pub sctlr: u64,
    /// `ttbcr` (TCR_EL1).
    pub ttbcr: u64,
    /// `ttbr0` (TTBR0_EL1).
    pub ttbr0: u64,
    /// `ttbr1` (TTBR1_EL1).
    pub ttbr1: u64,
}

/// `xen/include/public/domctl.h`: `struct xen_domctl_vcpucontext`, the payload of
/// `XEN_DOMCTL_setvcpucontext` / `getvcpucontext`.
#[repr(C)]
#[derive(
    Clone,
    Copy,
    Debug,
    zerocopy::FromBytes,
    zerocopy::IntoBytes,
    zerocopy::KnownLayout,
    zerocopy::Immutable,
)]
pub struct xen_domctl_vcpucontext {
    /// The vCPU.
    pub vcpu: u32,
    /// Padding (the handle is 8-byte aligned).
    pub _pad: u32,
    /// `XEN_GUEST_HANDLE_64(vcpu_guest_context_t)`.
    pub ctxt: super::hypercall::GuestHandle,
}

#[cfg(test)]
mod vcpu_context_layout {
    use super::*;
    use core::mem::{offset_of, size_of};

    /// Offsets from `arch-arm.h` (Xen 4.17) for arm64.
    #[test]
    fn layouts() {
        assert_eq!(size_of::<vcpu_guest_core_regs>(), 312);
        assert_eq!(offset_of!(vcpu_guest_core_regs, pc64), 248);
        assert_eq!(offset_of!(vcpu_guest_core_regs, cpsr), 256);
        assert_eq!(offset_of!(vcpu_guest_core_regs, spsr_el1), 264);
        assert_eq!(offset_of!(vcpu_guest_core_regs, sp_el0), 288);
        assert_eq!(offset_of!(vcpu_guest_core_regs, elr_el1), 304);
        assert_eq!(size_of::<vcpu_guest_context>(), 352);
        assert_eq!(offset_of!(vcpu_guest_context, user_regs), 8);
        assert_eq!(offset_of!(vcpu_guest_context, sctlr), 320);
        assert_eq!(offset_of!(vcpu_guest_context, ttbr1), 344);
        assert_eq!(size_of::<xen_domctl_vcpucontext>(), 16);
        assert_eq!(offset_of!(xen_domctl_vcpucontext, ctxt), 8);
    }
}
