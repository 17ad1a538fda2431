//! The version hypercall, `xen_version(cmd, arg)` (`xen/include/public/version.h`), and the
//! feature bits it reports (`xen/include/public/features.h`).
//!
//! x0 is a `XENVER_*` number, x1 the guest address of the buffer named in each number's
//! documentation (or null).
//!
//! # Invariants
//! - Numbers are Xen 4.17's; `XENVER_*` runs 0..=10 with no gaps. `XENFEAT_grant_map_identity`
//!   (12) is deprecated and only mentioned in a comment in `features.h`: it is a gap here.
//! - Character arrays are byte arrays, NUL-terminated when shorter than the array.

// Xen's spelling of its own names (see `hypercall`).
#![allow(non_upper_case_globals, non_camel_case_types)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::hypercall::xen_ulong_t;

/// `xen/include/public/version.h`: `XENVER_version`, returns `(major << 16) | minor`.
/// Argument: null.
pub const XENVER_version: u32 = 0;
/// `xen/include/public/version.h`: `XENVER_extraversion`. Argument: [`xen_extraversion`].
pub const XENVER_extraversion: u32 = 1;
/// `xen/include/public/version.h`: `XENVER_compile_info`. Argument: [`xen_compile_info`].
pub const XENVER_compile_info: u32 = 2;
/// `xen/include/public/version.h`: `XENVER_capabilities`. Argument: [`xen_capabilities_info`].
pub const XENVER_capabilities: u32 = 3;
/// `xen/include/public/version.h`: `XENVER_changeset`. Argument: [`xen_changeset_info`].
pub const XENVER_changeset: u32 = 4;
/// `xen/include/public/version.h`: `XENVER_platform_parameters`. Argument:
/// [`xen_platform_parameters`].
pub const XENVER_platform_parameters: u32 = 5;
/// `xen/include/public/version.h`: `XENVER_get_features`. Argument: [`xen_feature_info`].
pub const XENVER_get_features: u32 = 6;
/// `xen/include/public/version.h`: `XENVER_pagesize`, returns the page size in bytes.
/// Argument: null.
pub const XENVER_pagesize: u32 = 7;
/// `xen/include/public/version.h`: `XENVER_guest_handle`, writes the caller's 16-byte domain
/// handle (`xen_domain_handle_t`).
pub const XENVER_guest_handle: u32 = 8;
/// `xen/include/public/version.h`: `XENVER_commandline`, writes the hypervisor command line.
/// Argument: [`xen_commandline`].
pub const XENVER_commandline: u32 = 9;
/// `xen/include/public/version.h`: `XENVER_build_id`. Argument: [`xen_build_id`] followed by
/// its buffer.
pub const XENVER_build_id: u32 = 10;

/// `xen/include/public/version.h`: `xen_extraversion_t`, the version suffix (".0", "-rc1", ...).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_extraversion(pub [u8; 16]);

/// `xen/include/public/version.h`: `XEN_EXTRAVERSION_LEN`.
pub const XEN_EXTRAVERSION_LEN: usize = 16;

/// `xen/include/public/version.h`: `struct xen_compile_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_compile_info {
    /// The compiler that built the hypervisor.
    pub compiler: [u8; 64],
    /// Who built it.
    pub compile_by: [u8; 16],
    /// The builder's domain name.
    pub compile_domain: [u8; 32],
    /// When.
    pub compile_date: [u8; 32],
}

/// `xen/include/public/version.h`: `xen_capabilities_info_t`, a space-separated list of the
/// guest types the hypervisor runs: on arm64 `xen-3.0-aarch64 `, followed by `xen-3.0-armv7l `
/// when the CPUs can run AArch32 guests (`xen/arch/arm/setup.c`).
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_capabilities_info(pub [u8; 1024]);

/// `xen/include/public/version.h`: `XEN_CAPABILITIES_INFO_LEN`.
pub const XEN_CAPABILITIES_INFO_LEN: usize = 1024;

/// `xen/include/public/version.h`: `xen_changeset_info_t`, the source revision.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_changeset_info(pub [u8; 64]);

/// `xen/include/public/version.h`: `XEN_CHANGESET_INFO_LEN`.
pub const XEN_CHANGESET_INFO_LEN: usize = 64;

/// `xen/include/public/version.h`: `struct xen_platform_parameters`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_platform_parameters {
    /// Lowest guest virtual address the hypervisor reserves (x86 PV; meaningless on Arm).
    pub virt_start: xen_ulong_t,
}

/// `xen/include/public/version.h`: `struct xen_feature_info`.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_feature_info {
    /// IN: which 32-bit word of feature bits; only 0 exists ([`XENFEAT_NR_SUBMAPS`]).
    pub submap_idx: u32,
    /// OUT: the word, bit `n` meaning `XENFEAT_*` number `32 * submap_idx + n`.
    pub submap: u32,
}

/// `xen/include/public/version.h`: `xen_commandline_t`, the hypervisor command line.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_commandline(pub [u8; 1024]);

/// `xen/include/public/version.h`: `struct xen_build_id`, the fixed head; the `buf` flexible
/// array of `len` bytes follows it.
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct xen_build_id {
    /// IN: size of the buffer after this head; OUT (returned, not written): bytes of build id.
    pub len: u32,
}

/// Copies `text` into a NUL-padded array, truncated to leave at least one NUL at the end.
const fn c_string<const N: usize>(text: &[u8]) -> [u8; N] {
    let mut bytes = [0u8; N];
    let mut index = 0;
    while index < text.len() && index + 1 < N {
        bytes[index] = text[index];
        index += 1;
    }
    bytes
}

impl xen_extraversion {
    /// `text`, NUL-padded and truncated to 15 bytes.
    pub const fn new(text: &[u8]) -> Self {
        Self(c_string(text))
    }
}

impl xen_capabilities_info {
    /// `text`, NUL-padded and truncated to 1023 bytes.
    pub const fn new(text: &[u8]) -> Self {
        Self(c_string(text))
    }
}

impl xen_changeset_info {
    /// `text`, NUL-padded and truncated to 63 bytes.
    pub const fn new(text: &[u8]) -> Self {
        Self(c_string(text))
    }
}

impl xen_commandline {
    /// `text`, NUL-padded and truncated to 1023 bytes.
    pub const fn new(text: &[u8]) -> Self {
        Self(c_string(text))
    }
}

// Feature bits: `xen/include/public/features.h`. Xen 4.17 on Arm sets
// `XENFEAT_writable_page_tables`, `XENFEAT_auto_translated_physmap`,
// `XENFEAT_memory_op_vnode_supported`, `XENFEAT_ARM_SMCCC_supported`, `XENFEAT_dom0` for the
// hardware domain, and exactly one of `XENFEAT_direct_mapped` / `XENFEAT_not_direct_mapped`
// (`xen/common/kernel.c`). The x86-only bits are listed for completeness.
//
// Gap: 12, `XENFEAT_grant_map_identity`, deprecated; `features.h` keeps it commented out.

/// `xen/include/public/features.h`: `XENFEAT_writable_page_tables`, the guest may write its page
/// tables directly (set on Arm, where the guest owns stage 1).
pub const XENFEAT_writable_page_tables: u32 = 0;
/// `xen/include/public/features.h`: `XENFEAT_writable_descriptor_tables` (x86 PV).
pub const XENFEAT_writable_descriptor_tables: u32 = 1;
/// `xen/include/public/features.h`: `XENFEAT_auto_translated_physmap`, the hypervisor translates
/// guest frames to machine frames (always on Arm: stage 2).
pub const XENFEAT_auto_translated_physmap: u32 = 2;
/// `xen/include/public/features.h`: `XENFEAT_supervisor_mode_kernel` (x86).
pub const XENFEAT_supervisor_mode_kernel: u32 = 3;
/// `xen/include/public/features.h`: `XENFEAT_pae_pgdir_above_4gb` (x86 PV).
pub const XENFEAT_pae_pgdir_above_4gb: u32 = 4;
/// `xen/include/public/features.h`: `XENFEAT_mmu_pt_update_preserve_ad` (x86 PV).
pub const XENFEAT_mmu_pt_update_preserve_ad: u32 = 5;
/// `xen/include/public/features.h`: `XENFEAT_highmem_assist` (x86 PV).
pub const XENFEAT_highmem_assist: u32 = 6;
/// `xen/include/public/features.h`: `XENFEAT_gnttab_map_avail_bits` (x86 PV).
pub const XENFEAT_gnttab_map_avail_bits: u32 = 7;
/// `xen/include/public/features.h`: `XENFEAT_hvm_callback_vector` (x86 HVM).
pub const XENFEAT_hvm_callback_vector: u32 = 8;
/// `xen/include/public/features.h`: `XENFEAT_hvm_safe_pvclock` (x86 HVM).
pub const XENFEAT_hvm_safe_pvclock: u32 = 9;
/// `xen/include/public/features.h`: `XENFEAT_hvm_pirqs` (x86 HVM).
pub const XENFEAT_hvm_pirqs: u32 = 10;
/// `xen/include/public/features.h`: `XENFEAT_dom0`, the caller may act as the hardware domain.
pub const XENFEAT_dom0: u32 = 11;
/// `xen/include/public/features.h`: `XENFEAT_memory_op_vnode_supported`, memory operations
/// accept `XENMEMF_vnode`.
pub const XENFEAT_memory_op_vnode_supported: u32 = 13;
/// `xen/include/public/features.h`: `XENFEAT_ARM_SMCCC_supported`, the hypervisor implements the
/// Arm SMC Calling Convention (`hvc #0` / `smc`).
pub const XENFEAT_ARM_SMCCC_supported: u32 = 14;
/// `xen/include/public/features.h`: `XENFEAT_linux_rsdp_unrestricted` (x86 PVH).
pub const XENFEAT_linux_rsdp_unrestricted: u32 = 15;
/// `xen/include/public/features.h`: `XENFEAT_not_direct_mapped`, guest frame != machine frame.
pub const XENFEAT_not_direct_mapped: u32 = 16;
/// `xen/include/public/features.h`: `XENFEAT_direct_mapped`, guest frame == machine frame (1:1).
pub const XENFEAT_direct_mapped: u32 = 17;
/// `xen/include/public/features.h`: `XENFEAT_NR_SUBMAPS`, how many 32-bit feature words exist.
pub const XENFEAT_NR_SUBMAPS: u32 = 1;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::hypercall::assert_layout;

    /// `xen/include/public/version.h`: the `XENVER_*` numbers.
    #[test]
    fn numbers() {
        let ops = [
            XENVER_version,
            XENVER_extraversion,
            XENVER_compile_info,
            XENVER_capabilities,
            XENVER_changeset,
            XENVER_platform_parameters,
            XENVER_get_features,
            XENVER_pagesize,
            XENVER_guest_handle,
            XENVER_commandline,
            XENVER_build_id,
        ];
        assert_eq!(ops, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    }

    /// `xen/include/public/features.h`: the `XENFEAT_*` numbers, 12 left out.
    #[test]
    fn features() {
        assert_eq!(XENFEAT_auto_translated_physmap, 2);
        assert_eq!(XENFEAT_dom0, 11);
        assert_eq!(XENFEAT_memory_op_vnode_supported, 13);
        assert_eq!(XENFEAT_ARM_SMCCC_supported, 14);
        assert_eq!(XENFEAT_not_direct_mapped, 16);
        assert_eq!(XENFEAT_direct_mapped, 17);
        const { assert!(XENFEAT_direct_mapped < 32 * XENFEAT_NR_SUBMAPS) };
    }

    /// `xen/include/public/version.h`: structure and array layouts.
    #[test]
    fn layouts() {
        assert_layout!(xen_extraversion, size = XEN_EXTRAVERSION_LEN, align = 1, {});
        assert_layout!(xen_compile_info, size = 144, align = 1, {
            compiler @ 0, compile_by @ 64, compile_domain @ 80, compile_date @ 112,
        });
        assert_layout!(xen_capabilities_info, size = XEN_CAPABILITIES_INFO_LEN, align = 1, {});
        assert_layout!(xen_changeset_info, size = XEN_CHANGESET_INFO_LEN, align = 1, {});
        assert_layout!(xen_platform_parameters, size = 8, align = 8, { virt_start @ 0 });
        assert_layout!(xen_feature_info, size = 8, align = 4, { submap_idx @ 0, submap @ 4 });
        assert_layout!(xen_commandline, size = 1024, align = 1, {});
        assert_layout!(xen_build_id, size = 4, align = 4, { len @ 0 });
    }

    #[test]
    fn strings_keep_a_terminator() {
        let short = xen_extraversion::new(b".0-xenolith");
        assert_eq!(&short.0[..12], b".0-xenolith\0");
        let long = xen_extraversion::new(b"0123456789abcdefXYZ");
        assert_eq!(&long.0, b"0123456789abcde\0");
    }
}
