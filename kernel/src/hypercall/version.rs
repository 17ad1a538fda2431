//! `__HYPERVISOR_xen_version` (`xen/include/public/version.h`): the interface version this core
//! implements (Xen 4.17), its strings and the feature bits Xen 4.17 on Arm reports.

use xenolith_abi::xen::errno::XenError;
use xenolith_abi::xen::version;

use crate::mm::guest_access::{read_struct, write_struct, GuestMemory};

/// Xen 4.17 is the interface version this core implements.
const XEN_MAJOR: i64 = 4;
const XEN_MINOR: i64 = 17;

#[inline(always)]
pub fn xen_version(args: [u64; 5], control: impl Fn() -> bool) -> Result<i64, XenError> {
    // Most sub-operations fill a fixed-size buffer: `text`, zero-padded to `size` bytes.
    let copy_string = |text: &str, size: usize| {
        let mut bytes = [0u8; 1024];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        GuestMemory.write(args[1], &bytes[..size]).map(|()| 0)
    };
    // `control`: whether the caller holds `control`; only two sub-operations ask, so it is
    // looked up then, not on every call (XENVER_version is the null hypercall the benchmarks
    // time).
    match args[0] as u32 {
        version::XENVER_version => Ok((XEN_MAJOR << 16) | XEN_MINOR),
        version::XENVER_extraversion => copy_string(".0-xenolith", 16),
        version::XENVER_capabilities => copy_string("xen-3.0-aarch64 xen-3.0-armv7l ", 1024),
        // Xen 4.17 `do_xen_version`: an argument is refused.
        version::XENVER_pagesize if args[1] != 0 => Err(XenError::EINVAL),
        version::XENVER_pagesize => Ok(4096),
        version::XENVER_changeset => {
            copy_string(concat!("xenolith ", env!("CARGO_PKG_VERSION")), 64)
        }
        // No fixed hypervisor virtual area is visible to an Arm guest.
        version::XENVER_platform_parameters => copy_string("", 8),
        // The domain handle (a UUID in Xen); Xenolith does not assign one yet: all zero.
        version::XENVER_guest_handle => copy_string("", 16),
        version::XENVER_compile_info => {
            // compiler[64], compile_by[16], compile_domain[32], compile_date[32]: reproducible,
            // so no date or host.
            let mut info = [0u8; 144];
            let compiler = b"rustc (stable, pinned by rust-toolchain.toml)";
            info[..compiler.len()].copy_from_slice(compiler);
            info[64..72].copy_from_slice(b"xenolith");
            GuestMemory.write(args[1], &info).map(|()| 0)
        }
        version::XENVER_get_features => {
            let mut request: version::xen_feature_info = read_struct(args[1])?;
            if request.submap_idx != 0 {
                return Err(XenError::EINVAL);
            }
            // As Xen 4.17 on Arm answers submap 0 (`xen/common/kernel.c`).
            request.submap = (1u32 << version::XENFEAT_memory_op_vnode_supported)
                | (1 << version::XENFEAT_writable_page_tables)
                | (1 << version::XENFEAT_auto_translated_physmap)
                | (1 << version::XENFEAT_ARM_SMCCC_supported)
                | (1 << version::XENFEAT_not_direct_mapped)
                | (u32::from(control()) << version::XENFEAT_dom0);
            write_struct(args[1], &request).map(|()| 0)
        }
        // Privileged, as Xen's XSM default (`xsm_xen_version`): others get Xen's `xen_deny()`
        // string, and no build id.
        version::XENVER_commandline if !control() => {
            GuestMemory.write(args[1], b"<denied>\0").map(|()| 0)
        }
        version::XENVER_build_id if !control() => Err(XenError::EPERM),
        // The core is built without a build-id note: Xen's `xen_build_id` says -ENODATA then.
        version::XENVER_build_id => Err(XenError::ENODATA),
        version::XENVER_commandline => {
            let line = crate::domain::boot_bundle().map_or("", |bundle| bundle.manifest.cmdline);
            copy_string(&line[..line.len().min(1023)], 1024)
        }
        _ => Err(XenError::ENOSYS),
    }
}
