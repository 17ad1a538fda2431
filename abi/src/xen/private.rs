//! Xenolith's own operations, carried by Xen's hypercalls in a private number range.
//!
//! # The private domctl range
//! Xenolith-only `domctl` commands take `cmd` numbers from [`XENOLITH_DOMCTL_FIRST`] (0xe000) to
//! [`XENOLITH_DOMCTL_LAST`] (0xefff). The range cannot collide with Xen's:
//! - Xen allocates domctl numbers one at a time from 1 (86 is the highest in 4.17, reached over
//!   two decades) plus the 1000-1003 `gdbsx` block: at that pace 0xe000 (57344) is out of reach,
//!   and any new Xen block would follow the existing ones rather than jump there.
//! - Real Xen answers a command it does not know with `-ENOSYS` (or `-ESRCH` when the target
//!   domain does not exist), so a tool that sends a Xenolith command to Xen gets a clean error,
//!   never a different operation.
//!
//! Private commands use the ordinary [`xen_domctl`](super::domctl::xen_domctl) header with
//! `interface_version` = [`XEN_DOMCTL_INTERFACE_VERSION`](super::domctl::XEN_DOMCTL_INTERFACE_VERSION);
//! their payloads sit in its 128-byte union like Xen's. `xen_domctl.domain` is unused by the
//! commands below; callers set it to `DOMID_SELF`.
//!
//! # Invariants
//! - Every private number lies in the private range, and the range lies above every Xen number.
//! - Every payload fits [`DomctlPayload`](super::domctl::DomctlPayload), has no implicit
//!   padding, and has its size and offsets pinned by the tests below.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::hypercall::GuestHandle;

/// First `domctl` command number reserved for Xenolith.
pub const XENOLITH_DOMCTL_FIRST: u32 = 0xe000;
/// Last `domctl` command number reserved for Xenolith.
pub const XENOLITH_DOMCTL_LAST: u32 = 0xefff;

/// `domctl` command: copy part of a boot-bundle module into the caller's buffer. Payload:
/// [`XenolithBundleModule`]. Returns the number of bytes copied (0 at or past the module's end);
/// `-ENOENT` if no module has that index, `-EINVAL` if `pad` is not zero, `-EFAULT` if the
/// buffer is not writable memory of the caller.
pub const XENOLITH_DOMCTL_BUNDLE_MODULE: u32 = 0xe000;
/// `domctl` command: describe the boot bundle and one of its modules. Payload (IN/OUT):
/// [`XenolithBundleInfo`]. `-ENOENT` if no module has that index (`count` is still written).
pub const XENOLITH_DOMCTL_BUNDLE_INFO: u32 = 0xe001;

/// `domctl` command: describe domain `xen_domctl.domain` (`DOMID_SELF` for the caller) as the
/// core knows it: name, capabilities, state, its xenstore ring and port, its preserved region.
/// Payload (OUT): [`XenolithDomainInfo`]. Any domain may ask about itself; about another only a
/// domain holding `control` or `xenstore` (Xen's `XSM_XS_PRIV` for `getdomaininfo`), else
/// `-EPERM`; `-ESRCH` if no such domain exists.
pub const XENOLITH_DOMCTL_DOMAIN_INFO: u32 = 0xe002;

/// [`XenolithDomainInfo::capabilities`] bit: holds `control`.
pub const XENOLITH_CAP_CONTROL: u32 = 1 << 0;
/// [`XenolithDomainInfo::capabilities`] bit: holds `xenstore`.
pub const XENOLITH_CAP_XENSTORE: u32 = 1 << 1;
/// [`XenolithDomainInfo::capabilities`] bit: holds `console`.
pub const XENOLITH_CAP_CONSOLE: u32 = 1 << 2;

/// [`XenolithDomainInfo::state`]: its vCPUs may run.
pub const XENOLITH_STATE_RUNNING: u32 = 0;
/// [`XenolithDomainInfo::state`]: paused.
pub const XENOLITH_STATE_PAUSED: u32 = 1;
/// [`XenolithDomainInfo::state`]: shut down (reason in `shutdown_reason`), being destroyed.
pub const XENOLITH_STATE_SHUTDOWN: u32 = 2;

/// Bytes of a domain name [`XENOLITH_DOMCTL_DOMAIN_INFO`] reports (names are at most 64
/// characters; longer ones are cut, without a NUL).
pub const XENOLITH_DOMAIN_NAME_LEN: usize = 64;

/// Payload of [`XENOLITH_DOMCTL_DOMAIN_INFO`].
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct XenolithDomainInfo {
    /// OUT: its name, NUL-padded.
    pub name: [u8; XENOLITH_DOMAIN_NAME_LEN],
    /// OUT: its incarnation (grows on every restart; its id stays).
    pub generation: u32,
    /// OUT: `XENOLITH_CAP_*` bits.
    pub capabilities: u32,
    /// OUT: `XENOLITH_STATE_*`.
    pub state: u32,
    /// OUT: the `SHUTDOWN_*` reason when `state` is [`XENOLITH_STATE_SHUTDOWN`].
    pub shutdown_reason: u32,
    /// OUT: its xenstore ring page's guest frame (`HVM_PARAM_STORE_PFN`), 0 if none.
    pub store_gfn: u64,
    /// OUT: its port to xenstore (`HVM_PARAM_STORE_EVTCHN`), 0 if none.
    pub store_port: u32,
    /// OUT: how many times the core restarted it.
    pub restarts: u32,
    /// OUT: bytes of its preserved region at
    /// [`PRESERVED_REGION_BASE`](super::arch_arm::PRESERVED_REGION_BASE), 0 if it has none.
    pub preserved_size: u64,
    /// OUT: its port to the console domain (`HVM_PARAM_CONSOLE_EVTCHN`), 0 if none; its ring
    /// page is granted to that domain as `GNTTAB_RESERVED_CONSOLE`.
    pub console_port: u32,
    /// Zero.
    pub pad: u32,
}

/// `console_io` command (private, beside `xen.h`'s `CONSOLEIO_write` 0 and `CONSOLEIO_read`
/// 1), for the domain holding `console`: write `count` (at most
/// [`XENOLITH_CONSOLE_LINE_MAX`]) bytes from `buffer` (arg 3) to the hypervisor console as they
/// are, numbered `sequence` (arg 4). The core keeps the highest number it wrote, across the
/// console domain's restarts, and drops a write numbered at or below it: that makes a
/// restarted console domain's repeated writes harmless. Returns that highest number after the
/// call (so `count` 0 with `sequence` 0 asks for it). `-EPERM` without `console`, `-EINVAL`
/// for a longer write, `-EFAULT` for an unreadable buffer.
pub const XENOLITH_CONSOLEIO_WRITE_LINE: u32 = 0xe000;
/// `console_io` command (private), for the domain holding `console`: `count` bytes from
/// `buffer` were typed while the input focus is on the hypervisor; the core runs its key
/// handlers on them (`h` lists them). Returns 0; errors as for
/// [`XENOLITH_CONSOLEIO_WRITE_LINE`].
pub const XENOLITH_CONSOLEIO_KEYS: u32 = 0xe001;
/// The longest [`XENOLITH_CONSOLEIO_WRITE_LINE`] or [`XENOLITH_CONSOLEIO_KEYS`], in bytes.
pub const XENOLITH_CONSOLE_LINE_MAX: usize = 512;

/// xenstore key (Xenolith's, under `/tool`, the toolstack's tree in
/// `docs/misc/xenstore-paths.pandoc`): the control domain asks the console domain to move the
/// UART's input focus (`xl console <domain>`). Its value is `<target> <requester>`, two domain
/// ids in decimal with one space between: the domain to get the focus, and the control domain
/// that asked, to which one press of the switch key gives it back. The control domain writes
/// it and its permissions `n<requester> b<console domain>` in one transaction, so no other
/// domain may read or write it (xenstore refuses a guest's write with `EACCES`); the console
/// domain watches it and consumes a request by writing the value empty in the transaction that
/// read it, as a guest acknowledges `~/control/shutdown`. Empty, or absent, is no request.
pub const XENOLITH_CONSOLE_FOCUS_PATH: &str = "/tool/xenolith/console/focus";

/// Payload of [`XENOLITH_DOMCTL_BUNDLE_MODULE`].
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct XenolithBundleModule {
    /// IN: index of the module in the bundle's manifest.
    pub index: u32,
    /// Must be zero.
    pub pad: u32,
    /// IN: byte offset within the module to start at.
    pub offset: u64,
    /// IN: the most bytes to copy (the buffer's size); fewer are copied at the module's end.
    pub length: u64,
    /// IN: the caller's buffer of `length` bytes.
    pub buffer: GuestHandle,
}

/// Bytes of a module name [`XENOLITH_DOMCTL_BUNDLE_INFO`] reports.
pub const XENOLITH_BUNDLE_NAME_LEN: usize = 32;

/// Payload of [`XENOLITH_DOMCTL_BUNDLE_INFO`].
#[repr(C)]
#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct XenolithBundleInfo {
    /// IN: index of the module to describe.
    pub index: u32,
    /// OUT: number of modules in the bundle (valid indices are `0..count`).
    pub count: u32,
    /// OUT: size of module `index` in bytes.
    pub size: u64,
    /// OUT: the module's name from the manifest, NUL-padded; a name of
    /// [`XENOLITH_BUNDLE_NAME_LEN`] bytes or more is cut to that length, without a NUL.
    pub name: [u8; XENOLITH_BUNDLE_NAME_LEN],
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xen::domctl::{DomctlPayload, XEN_DOMCTL_gdbsx_domstatus};
    use crate::xen::hypercall::assert_layout;

    /// The private numbers are in the private range, above `xen/include/public/domctl.h`'s.
    #[test]
    fn numbers_are_private() {
        const { assert!(XENOLITH_DOMCTL_FIRST > XEN_DOMCTL_gdbsx_domstatus) };
        for number in [
            XENOLITH_DOMCTL_BUNDLE_MODULE,
            XENOLITH_DOMCTL_BUNDLE_INFO,
            XENOLITH_DOMCTL_DOMAIN_INFO,
        ] {
            assert!((XENOLITH_DOMCTL_FIRST..=XENOLITH_DOMCTL_LAST).contains(&number));
        }
        assert_ne!(XENOLITH_DOMCTL_BUNDLE_MODULE, XENOLITH_DOMCTL_BUNDLE_INFO);
    }

    /// Payload layouts (arm64), each within the domctl union.
    #[test]
    fn layouts() {
        assert_layout!(XenolithBundleModule, size = 32, align = 8, {
            index @ 0, pad @ 4, offset @ 8, length @ 16, buffer @ 24,
        });
        assert_layout!(XenolithBundleInfo, size = 48, align = 8, {
            index @ 0, count @ 4, size @ 8, name @ 16,
        });
        assert!(size_of::<XenolithBundleModule>() <= DomctlPayload::SIZE);
        assert!(size_of::<XenolithBundleInfo>() <= DomctlPayload::SIZE);
        assert_layout!(XenolithDomainInfo, size = 112, align = 8, {
            name @ 0, generation @ 64, capabilities @ 68, state @ 72, shutdown_reason @ 76,
            store_gfn @ 80, store_port @ 88, restarts @ 92, preserved_size @ 96,
            console_port @ 104, pad @ 108,
        });
        assert!(size_of::<XenolithDomainInfo>() <= DomctlPayload::SIZE);
    }
}
