//! Boot-time population: the nodes a domain finds in the store when it first connects.
//!
//! Exists because Xenolith builds its domains at boot with no toolstack, which is Xen's dom0less
//! case, and a guest's Xen drivers expect what Xen's helper for that case writes before it
//! introduces each domain: `create_xenstore()` in `tools/helpers/init-dom0less.c` (Xen 4.17;
//! the same nodes to this day), itself "the xenstore nodes libxl writes at domain creation". Linux reads
//! `cpu/<n>/availability` for every possible vCPU (`drivers/xen/cpu_hotplug.c`, else "Unable to
//! read cpu state") and its balloon driver watches `memory/target` against `memory/static-max`
//! (`drivers/xen/xen-balloon.c`). Each node's meaning is in `docs/misc/xenstore-paths.pandoc`.
//!
//! What [`Store::add_domain`] writes, in `init-dom0less`'s order, `~` being
//! `/local/domain/<domid>`:
//!
//! | node | value |
//! |---|---|
//! | `/vm/<uuid>/name`, `/vm/<uuid>/uuid`, `/vm/<uuid>/start_time` | the name, the UUID, seconds since boot with two decimals (`%jd.%02d`) |
//! | `~/vm` | `/vm/<uuid>` |
//! | `~/name` | the name |
//! | `~/cpu`, `~/cpu/<n>/availability` for each vCPU `n` | `""`, `online` |
//! | `~/memory`, `~/memory/static-max`, `~/memory/target`, `~/memory/videoram` | `""`, KiB, KiB, `-1` |
//! | `~/device`, `~/device/suspend`, `~/device/suspend/event-channel` | `""` |
//! | `~/control`, `~/control/shutdown`, `~/control/feature-suspend`, `~/control/sysrq` | `""` |
//! | `~/control/feature-poweroff`, `~/control/feature-reboot` | `1` |
//! | `~/control/platform-feature-multiprocessor-suspend`, `~/control/platform-feature-xs_reset_watches` | `1` |
//! | `~/domid` | the domid |
//! | `~/data`, `~/drivers`, `~/feature`, `~/attr`, `~/error` | `""` |
//! | `~/store/port`, `~/store/ring-ref` (a domain with a ring) | its event channel, its ring's gfn |
//!
//! Permissions are `init-dom0less`'s (`do_xs_write_dom()`): every node it writes under `~` is
//! owned by the domain, with read access for the root owner (Xen's dom0): `n<domid> r<root
//! owner>` (`n<domid>` alone for the root owner's own domain); `~/cpu/<n>` is created implicitly
//! below `~/cpu` and so has the same. `~` and `~/store` are `n<domid>` (see the deviations). So
//! the domain may change any of them, and they count against its `nodes` quota: 25, plus 2 per
//! vCPU, plus 3 with a ring (32 for a guest with 2 vCPUs, of Xen's default 1000; at most 44
//! with the core's 8 vCPUs). The `/vm/<uuid>` nodes are written without permissions, so they
//! inherit `/vm`'s, which inherits the root's: the root owner's alone, as
//! `xenstore-paths.pandoc` tags them (`[n]`: not readable by the guest).
//!
//! # Deviations from `init-dom0less` (each deliberate)
//! - `~` is `n<domid>`, as Xenolith always made it (`init-dom0less` leaves it to inherit
//!   `/local/domain`'s `n0`, and so does `~/store`): the domain may create nodes directly
//!   under its home, and when it goes, its whole home goes with it (there is no toolstack to
//!   remove it, as libxl's `libxl__domain_destroy()` does).
//! - `/vm/<uuid>` is removed when the domain goes (libxl's destroy does that; `init-dom0less`
//!   domains are never destroyed). The store remembers the UUID in the domain's connection,
//!   not from `~/vm`, which the domain may rewrite.
//! - `~/name` and `/vm/<uuid>/name` are the manifest's name, not `dom0less-<domid>`.
//! - One `cpu/<n>/availability = online` per vCPU `0..vcpus`, as libxl writes them for every
//!   vCPU it makes available (`libxl__build_post()`): `init-dom0less` loops to `vcpu_max_id`
//!   exclusive (one short) and tests the cpupool id as a bitmap of online vCPUs (all `offline`
//!   in pool 0).
//! - `~/vm` is `/vm/<uuid>`, the absolute path libxl writes (`libxl__domain_make()`) and
//!   `xenstore-paths.pandoc` describes; `init-dom0less` writes `vm/<uuid>`.
//! - `~/error` is libxl's (`libxl__domain_make()`), documented in `xenstore-paths.pandoc`;
//!   `init-dom0less` does not write it.
//! - No `/libxl/<domid>/type` or `dm-version`: libxl's private nodes, for a libxl that
//!   Xenolith does not have.
//! - The UUID is the domain's handle when the core gives one; Xenolith's core gives none (all
//!   zero), so it is derived: see [`Uuid::derived`]. `init-dom0less` generates a random one.
//! - `start_time` counts from boot (the virtual counter): Xenolith keeps no wall clock.
//!
//! # Invariants
//! - A domain's connection holds the UUID of the `/vm/<uuid>` written for it, if any.
//! - [`Store::add_domain`] writes its nodes in one step, outside any transaction: watches fire
//!   once per node in the list (`/vm`, `/local` and `/local/domain` included, even when they
//!   existed), then `@introduceDomain` once.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};

use xenolith_abi::xen::hypercall::DOMID_FIRST_RESERVED;

use crate::connection::Connection;
use crate::db::Db;
use crate::path;
use crate::perms::{self, Perm};
use crate::store::{AddDomainError, Ring, Store, INTRODUCE_DOMAIN};
use crate::tree::Node;
use crate::DomId;

/// A domain's UUID (Xen's `xen_domain_handle_t`), the `<uuid>` of `/vm/<uuid>`.
///
/// Displays as Xen's tools print it (`LIBXL_UUID_FMT`): 32 lowercase hex digits in groups of
/// 8-4-4-4-12.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The all-zero UUID: Xen's "no handle".
    pub const NIL: Self = Self([0; 16]);

    /// A UUID that is the same every time for the same domain id, name and generation (the
    /// domain's incarnation, which grows with every restart), and differs when any of them
    /// does.
    ///
    /// RFC 9562's version 8 ("custom"): FNV-1a (128-bit) over the bytes
    /// `"xenolith-vm-uuid" NUL`, the domid (2 bytes, little-endian), the generation (4 bytes,
    /// little-endian) and the name; the hash's high half XORed into its low half, so every input
    /// byte reaches every output byte; written big-endian; then the version (byte 6's high
    /// nibble = 8) and variant (byte 8's top bits = `10`) set.
    pub fn derived(domid: DomId, name: &str, generation: u32) -> Self {
        const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
        const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;
        let mut hash = OFFSET;
        let parts: [&[u8]; 4] = [
            b"xenolith-vm-uuid\0",
            &domid.to_le_bytes(),
            &generation.to_le_bytes(),
            name.as_bytes(),
        ];
        for byte in parts.iter().flat_map(|part| part.iter()) {
            hash = (hash ^ u128::from(*byte)).wrapping_mul(PRIME);
        }
        hash ^= hash >> 64;
        let mut bytes = hash.to_be_bytes();
        bytes[6] = (bytes[6] & 0x0f) | 0x80;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Self(bytes)
    }

    /// `handle` if it is not nil, else [`Uuid::derived`] from the rest.
    pub fn for_domain(handle: [u8; 16], domid: DomId, name: &str, generation: u32) -> Self {
        if handle == Self::NIL.0 {
            Self::derived(domid, name, generation)
        } else {
            Self(handle)
        }
    }

    /// `/vm/<uuid>`.
    pub fn vm_path(&self) -> String {
        let mut text = String::with_capacity(40);
        // Writing to a String cannot fail.
        let _ = write!(text, "/vm/{self}");
        text
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, byte) in self.0.iter().enumerate() {
            if matches!(index, 4 | 6 | 8 | 10) {
                f.write_char('-')?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// What [`Store::add_domain`] needs to know of a domain: the facts `init-dom0less` takes from
/// `libxl_dominfo` (Xen's `XEN_DOMCTL_getdomaininfo`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NewDomain<'a> {
    /// Its name (`~/name`, `/vm/<uuid>/name`).
    pub name: &'a str,
    /// The control domain: no permission checks, no quotas except memory bounds.
    pub privileged: bool,
    /// Its ring and port (`~/store/*`), kept for the binary; `None` for a domain served some
    /// other way (tests, fuzzing).
    pub ring: Option<Ring>,
    /// Its vCPUs, ids `0..vcpus` (getdomaininfo's `max_vcpu_id + 1`).
    pub vcpus: u32,
    /// `~/memory/target` in KiB: what it has now (`init-dom0less`: `current_memkb`, which is
    /// getdomaininfo's `tot_pages` in KiB).
    pub target_kib: u64,
    /// `~/memory/static-max` in KiB: the most it may have (`max_memkb`: `max_pages` in KiB).
    pub static_max_kib: u64,
    /// Its handle (getdomaininfo's `handle`); all zero for "none", and then the UUID is
    /// [`Uuid::derived`] from the domid, the name and `generation`.
    pub handle: [u8; 16],
    /// Its incarnation (Xenolith's generation), for [`Uuid::derived`].
    pub generation: u32,
    /// When it was added, in ns since boot (`/vm/<uuid>/start_time`).
    pub start_time_ns: u64,
}

impl<'a> NewDomain<'a> {
    /// An unprivileged domain without a ring, with `vcpus` vCPUs and `memory_kib` KiB (target
    /// and maximum), no handle, generation 0, started at 0.
    pub fn new(name: &'a str, vcpus: u32, memory_kib: u64) -> Self {
        Self {
            name,
            privileged: false,
            ring: None,
            vcpus,
            target_kib: memory_kib,
            static_max_kib: memory_kib,
            handle: Uuid::NIL.0,
            generation: 0,
            start_time_ns: 0,
        }
    }
}

/// The permissions of a node [`Store::add_domain`] writes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// A new node takes its parent's permissions (Xen's `create_node()` for a privileged
    /// writer); an existing one keeps its own.
    Inherit,
    /// `n<domid>`: the domain's, no rights for others (`~`, and `~/store`, which `init-dom0less`
    /// creates implicitly under `~`).
    Home,
    /// `n<domid> r<root owner>` (`do_xs_write_dom()`), or `n<domid>` for the root owner's own
    /// domain.
    Domain,
}

/// One node to write: its path, its value (`None`: an existing node's value stays, a new one is
/// empty) and its owner.
struct Spec {
    path: String,
    value: Option<Vec<u8>>,
    owner: Owner,
}

/// `value` as decimal text.
fn decimal(value: impl fmt::Display) -> Vec<u8> {
    let mut text = String::new();
    // Writing to a String cannot fail.
    let _ = write!(text, "{value}");
    text.into_bytes()
}

/// The nodes for `domid`, parents before children, in `init-dom0less`'s order.
fn specs(domid: DomId, domain: &NewDomain<'_>, uuid: Uuid) -> Vec<Spec> {
    let vm = uuid.vm_path();
    let home = path::domain_path(u32::from(domid));
    let mut specs = Vec::new();
    let mut add = |path: String, value: Option<&[u8]>, owner: Owner| {
        specs.push(Spec { path, value: value.map(<[u8]>::to_vec), owner });
    };
    let under = |base: &str, relative: &str| path::child(base, relative.as_bytes());
    let seconds = domain.start_time_ns / 1_000_000_000;
    let hundredths = domain.start_time_ns / 10_000_000 % 100;
    let mut start_time = String::new();
    // Writing to a String cannot fail.
    let _ = write!(start_time, "{seconds}.{hundredths:02}");
    let mut uuid_text = String::new();
    let _ = write!(uuid_text, "{uuid}");

    add(String::from("/vm"), None, Owner::Inherit);
    add(vm.clone(), None, Owner::Inherit);
    add(under(&vm, "name"), Some(domain.name.as_bytes()), Owner::Inherit);
    add(under(&vm, "uuid"), Some(uuid_text.as_bytes()), Owner::Inherit);
    add(under(&vm, "start_time"), Some(start_time.as_bytes()), Owner::Inherit);

    add(String::from("/local"), None, Owner::Inherit);
    add(String::from("/local/domain"), None, Owner::Inherit);
    add(home.clone(), None, Owner::Home);
    add(under(&home, "vm"), Some(vm.as_bytes()), Owner::Domain);
    add(under(&home, "name"), Some(domain.name.as_bytes()), Owner::Domain);
    add(under(&home, "cpu"), Some(b""), Owner::Domain);
    for vcpu in 0..domain.vcpus {
        let mut cpu = under(&home, "cpu/");
        // Writing to a String cannot fail.
        let _ = write!(cpu, "{vcpu}");
        add(cpu.clone(), None, Owner::Domain);
        add(under(&cpu, "availability"), Some(b"online"), Owner::Domain);
    }
    add(under(&home, "memory"), Some(b""), Owner::Domain);
    let static_max = decimal(domain.static_max_kib);
    add(under(&home, "memory/static-max"), Some(&static_max), Owner::Domain);
    add(under(&home, "memory/target"), Some(&decimal(domain.target_kib)), Owner::Domain);
    add(under(&home, "memory/videoram"), Some(b"-1"), Owner::Domain);
    for (relative, value) in [
        ("device", ""),
        ("device/suspend", ""),
        ("device/suspend/event-channel", ""),
        ("control", ""),
        ("control/shutdown", ""),
        ("control/feature-poweroff", "1"),
        ("control/feature-reboot", "1"),
        ("control/feature-suspend", ""),
        ("control/sysrq", ""),
        ("control/platform-feature-multiprocessor-suspend", "1"),
        ("control/platform-feature-xs_reset_watches", "1"),
    ] {
        add(under(&home, relative), Some(value.as_bytes()), Owner::Domain);
    }
    add(under(&home, "domid"), Some(&decimal(domid)), Owner::Domain);
    for relative in ["data", "drivers", "feature", "attr", "error"] {
        add(under(&home, relative), Some(b""), Owner::Domain);
    }
    if let Some(ring) = domain.ring {
        add(under(&home, "store"), None, Owner::Home);
        add(under(&home, "store/port"), Some(&decimal(ring.port)), Owner::Domain);
        add(under(&home, "store/ring-ref"), Some(&decimal(ring.gfn)), Owner::Domain);
    }
    specs
}

impl Store {
    /// Boot-time population of `domid` (the module documentation lists the nodes), then its
    /// connection.
    ///
    /// A node that exists already keeps its place among its parent's children; one the domain
    /// owns gets its value and permissions as listed. Watches on every node written fire, then
    /// `@introduceDomain`.
    pub fn add_domain(
        &mut self,
        domid: DomId,
        domain: &NewDomain<'_>,
    ) -> Result<(), AddDomainError> {
        if domid >= DOMID_FIRST_RESERVED {
            return Err(AddDomainError::Reserved);
        }
        if self.connections.contains_key(&domid) {
            return Err(AddDomainError::Exists);
        }
        let uuid = Uuid::for_domain(domain.handle, domid, domain.name, domain.generation);
        let home = alloc::vec![Perm::new(domid, 0)];
        let mut own = home.clone();
        if domid != self.root_owner {
            own.push(Perm::new(self.root_owner, perms::READ));
        }
        let mut db = Db::new(&mut self.tree, None, &mut self.generation, None);
        for spec in specs(domid, domain, uuid) {
            let mut node = match db.tree.get(&spec.path).cloned() {
                Some(node) => node,
                None => {
                    let parent_path = path::parent(&spec.path);
                    let Some(mut parent) = db.tree.get(parent_path).cloned() else { continue };
                    parent.add_child(path::basename(&spec.path));
                    let inherited = parent.perms.clone();
                    // Writes outside a transaction cannot fail.
                    let _ = db.write(parent_path, parent);
                    Node::new(inherited)
                }
            };
            match spec.owner {
                Owner::Inherit => {}
                Owner::Home => node.perms = home.clone(),
                Owner::Domain => node.perms = own.clone(),
            }
            if let Some(value) = spec.value {
                node.data = value;
            }
            // Writes outside a transaction cannot fail.
            let _ = db.write(&spec.path, node);
            db.fire(&spec.path, false, None, None);
        }
        let fires = core::mem::take(&mut db.fires);
        let mut connection = Connection::new(domain.privileged, domain.ring);
        connection.vm = Some(uuid);
        self.connections.insert(domid, connection);
        self.deliver(&fires);
        self.fire_special(INTRODUCE_DOMAIN);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn uuid_text_is_xen_s_format() {
        let uuid = Uuid([
            0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ]);
        assert_eq!(uuid.to_string(), "00112233-4455-6677-8899-aabbccddeeff");
        assert_eq!(uuid.vm_path(), "/vm/00112233-4455-6677-8899-aabbccddeeff");
    }

    #[test]
    fn derived_uuid_is_a_stable_version_8_uuid_of_its_inputs() {
        let uuid = Uuid::derived(3, "guest", 7);
        assert_eq!(uuid, Uuid::derived(3, "guest", 7));
        assert_eq!(uuid.0[6] >> 4, 8, "version 8");
        assert_eq!(uuid.0[8] >> 6, 0b10, "RFC 9562 variant");
        // The same inputs give the same UUID on every build: it names a path others may keep.
        // (Checked against a Python FNV-1a-128 of the same bytes.)
        assert_eq!(uuid.to_string(), "fd0558ec-1cc5-84a0-970b-58173ea177d4");
        for other in [
            Uuid::derived(4, "guest", 7),
            Uuid::derived(3, "guesT", 7),
            Uuid::derived(3, "guest", 8),
            Uuid::derived(3, "guest7", 0),
        ] {
            assert_ne!(uuid, other);
        }
    }

    #[test]
    fn a_handle_is_the_uuid_unless_it_is_nil() {
        let handle = [7; 16];
        assert_eq!(Uuid::for_domain(handle, 1, "a", 1), Uuid(handle));
        assert_eq!(Uuid::for_domain([0; 16], 1, "a", 1), Uuid::derived(1, "a", 1));
    }
}
