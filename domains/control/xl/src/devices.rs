//! The xenstore records of a guest's network (`vif`) and block (`vbd`) devices, as libxl
//! writes them when it creates a domain: each device as the ordered xenstore operations of
//! `libxl__device_generic_add`, which the control domain runs in one transaction per device.
//!
//! # Rules (Xen 4.17 `tools/libs/light/`)
//! - Paths (`libxl_device.c`): frontend `/local/domain/<domid>/device/<kind>/<devid>`, backend
//!   `/local/domain/<backend>/backend/<kind>/<domid>/<devid>`, libxl's copy
//!   `/libxl/<domid>/device/<kind>/<devid>`.
//! - `libxl__device_generic_add`: removes libxl's copy, writes its `frontend` and `backend`;
//!   removes and makes the frontend directory, owned by the guest with read for the backend
//!   (`frontend_perms`), writes `backend` there, the frontend entries with those permissions
//!   and the read-only ones (`ro_fents`) owned by the backend with read for the guest;
//!   removes and makes the backend directory, owned by the backend with read for the guest
//!   (`backend_perms`), writes `frontend` and the backend entries there, and copies the
//!   backend entries under libxl's path.
//! - Common entries (`libxl__device_add_async`, `device_disk_add`): backend `frontend-id`,
//!   `online` 1, `state` 1 (`XenbusStateInitialising`); frontend `backend-id`, `state` 1.
//! - vif (`libxl__set_xenstore_nic`, `libxl__device_nic_setdefault` in `libxl_nic.c`; xl's
//!   `parse_nic_config` in `tools/xl/xl_parse.c`): devid is the entry's index unless `devid=`;
//!   backend `script` (default `vif-bridge`, made absolute under `/etc/xen/scripts`),
//!   `vifname`, `forwarddev`, `mac`, `ip`, `gatewaydev`, `mtu` (only when not 1500),
//!   `bridge` (default `xenbr0`), `handle`, `type` `vif`, `hotplug-status` empty; frontend
//!   `handle`, `mac`, `trusted`; read-only frontend `mtu`.
//! - vbd (`device_disk_add` in `libxl_disk.c`): devid from the vdev name
//!   ([`disk_dev_number`]); backend `params` (the target), `script` (default `block`),
//!   `removable`, `bootable` 1, `dev`, `type` `phy`, `mode` `w`/`r`, `device-type`
//!   `disk`/`cdrom`, `discard-enable` (default: 1 for a writable disk),
//!   `specification` `xen`; frontend `virtual-device`, `device-type`, `trusted` 1 (no
//!   `protocol`: libxl writes it only for PV guests, and Arm guests are PVH).
//! - The backend domain (`backend=`, `libxl__resolve_domid`): a number is taken as a domain
//!   id, anything else is looked up by name; the default is domain 0. libxl adds the disks
//!   first (`libxl__add_disks`), then the vifs (`domcreate_attach_devices`), and a failure is
//!   logged as `unable to add disk devices` / `unable to add vif devices`.
//!
//! # Departures
//! - MAC: libxl makes up `00:16:3e` followed by three random bytes when none is given;
//!   Xenolith makes them from the domain and the device, `00:16:3e:DH:DL:NN` with DH the domain
//!   id's high byte (below 0x80: domain ids stay below 0x7ff0), DL its low byte and NN the
//!   devid's low byte ([`default_mac`]), so the address is the same on every run and unique
//!   among this host's guests (devids below 256).
//! - A backend given by number that is not a domain is refused (libxl writes the directories
//!   and then times out waiting for a backend that never comes).
//! - Only what a raw disk served by a backend domain needs: a disk format other than `raw`,
//!   an empty CD-ROM (both need QEMU's `qdisk`), `backendtype=` other than `phy`,
//!   `specification=virtio`, and the vif options `rate`, `vlan` and the COLO ones are refused.
//! - libxl then waits for each backend to reach `InitWait`; nothing serves these devices yet,
//!   so Xenolith does not wait.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use xenolith_xlcfg::devices::{Access, Disk, Vif};
use xenolith_xlcfg::DomainConfig;

use crate::cnum::strtoul;

/// `XenbusStateInitialising` (`xen/include/public/io/xenbus.h`).
pub const XENBUS_STATE_INITIALISING: u32 = 1;
/// `LIBXL_DEVICE_NIC_MTU_DEFAULT` (`libxl_nic.c`).
pub const NIC_MTU_DEFAULT: u64 = 1500;
/// `XEN_SCRIPT_DIR` as Xen's `configure` sets it by default.
pub const SCRIPT_DIR: &str = "/etc/xen/scripts";

/// A device kind libxl writes (`libxl__device_kind_to_string`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A network device (`LIBXL__DEVICE_KIND_VIF`).
    Vif,
    /// A block device (`LIBXL__DEVICE_KIND_VBD`).
    Vbd,
}

impl Kind {
    /// libxl's name for it, as in its xenstore paths.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Vif => "vif",
            Kind::Vbd => "vbd",
        }
    }
}

/// A node's permissions as libxl sets them for devices: `owner` may do anything (and everyone
/// else nothing), `reader` may read (`n<owner>`, `r<reader>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permissions {
    /// The owning domain.
    pub owner: u16,
    /// The domain that may read.
    pub reader: u16,
}

/// One xenstore operation, in the order libxl makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// `XS_RM` (a node that is not there is no error).
    Rm(String),
    /// `XS_MKDIR`.
    Mkdir(String),
    /// `XS_WRITE` (a new node takes its parent's permissions).
    Write(String, String),
    /// `XS_SET_PERMS`.
    SetPerms(String, Permissions),
}

/// One device of a guest, with the entries libxl writes for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// vif or vbd.
    pub kind: Kind,
    /// The guest (frontend) domain.
    pub domid: u16,
    /// The device id (a vif's index, a vbd's [`disk_dev_number`]).
    pub devid: u32,
    /// The backend domain.
    pub backend_domid: u16,
    /// The backend entries (`bents`).
    pub back: Vec<(&'static str, String)>,
    /// The frontend entries (`fents`).
    pub front: Vec<(&'static str, String)>,
    /// The frontend entries the guest may only read (`ro_fents`).
    pub ro_front: Vec<(&'static str, String)>,
}

impl Device {
    /// `libxl__device_frontend_path`.
    pub fn frontend_path(&self) -> String {
        format!("/local/domain/{}/device/{}/{}", self.domid, self.kind.name(), self.devid)
    }

    /// `libxl__device_backend_path`.
    pub fn backend_path(&self) -> String {
        format!(
            "/local/domain/{}/backend/{}/{}/{}",
            self.backend_domid,
            self.kind.name(),
            self.domid,
            self.devid
        )
    }

    /// `libxl__device_libxl_path`.
    pub fn libxl_path(&self) -> String {
        format!("/libxl/{}/device/{}/{}", self.domid, self.kind.name(), self.devid)
    }

    /// The operations of `libxl__device_generic_add` for this device (module doc).
    pub fn generic_add(&self) -> Vec<StoreOp> {
        let (front, back, libxl) = (self.frontend_path(), self.backend_path(), self.libxl_path());
        let frontend_perms = Permissions { owner: self.domid, reader: self.backend_domid };
        let backend_perms = Permissions { owner: self.backend_domid, reader: self.domid };
        let at = |dir: &str, key: &str| format!("{dir}/{key}");
        let mut ops = alloc::vec![
            StoreOp::Rm(libxl.clone()),
            StoreOp::Write(at(&libxl, "frontend"), front.clone()),
            StoreOp::Write(at(&libxl, "backend"), back.clone()),
            StoreOp::Rm(front.clone()),
            StoreOp::Mkdir(front.clone()),
            StoreOp::SetPerms(front.clone(), frontend_perms),
            StoreOp::Write(at(&front, "backend"), back.clone()),
        ];
        for (entries, perms) in [(&self.front, frontend_perms), (&self.ro_front, backend_perms)] {
            for (key, value) in entries {
                ops.push(StoreOp::Write(at(&front, key), value.clone()));
                ops.push(StoreOp::SetPerms(at(&front, key), perms));
            }
        }
        ops.extend([
            StoreOp::Rm(back.clone()),
            StoreOp::Mkdir(back.clone()),
            StoreOp::SetPerms(back.clone(), backend_perms),
            StoreOp::Write(at(&back, "frontend"), front),
        ]);
        for (key, value) in &self.back {
            ops.push(StoreOp::Write(at(&back, key), value.clone()));
        }
        for (key, value) in &self.back {
            ops.push(StoreOp::Write(at(&libxl, key), value.clone()));
        }
        ops
    }
}

/// `libxl__abs_path(script, XEN_SCRIPT_DIR)`.
fn script_path(script: &str) -> String {
    if script.starts_with('/') {
        script.to_string()
    } else {
        format!("{SCRIPT_DIR}/{script}")
    }
}

/// The MAC address Xenolith gives device `devid` of domain `domid` when none is given (module
/// doc, departures).
pub fn default_mac(domid: u16, devid: u32) -> [u8; 6] {
    [0x00, 0x16, 0x3e, ((domid >> 8) & 0x7f) as u8, domid as u8, devid as u8]
}

/// `LIBXL_MAC_FMT`.
fn mac_text(mac: [u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{f:02x}")
}

/// xl's `parse_ulong`: `strtoul(…, 10)` that must read a digit.
fn ulong(text: &str) -> Result<u64, String> {
    let (value, used) = strtoul(text);
    if used == 0 || value == u64::MAX {
        return Err(format!("xl: failed to convert \"{text}\" to number"));
    }
    Ok(value)
}

/// The vif options Xenolith does not carry out (module doc, departures).
fn refused_vif_option(key: &str) -> bool {
    matches!(key, "rate" | "vlan") || key.starts_with("colo_")
}

/// The record of `vif` entry `index` of domain `domid`, served by `backend`.
pub fn nic(domid: u16, index: usize, vif: &Vif, backend: u16) -> Result<Device, String> {
    if let Some((key, _)) = vif.options.iter().find(|(key, _)| refused_vif_option(key)) {
        return Err(format!("vif option `{key}' is not supported by Xenolith"));
    }
    if vif.get("type") == Some("ioemu") {
        return Err(format!(
            "Domain {domid}:trying to create PV or PVH guest with an emulated interface"
        ));
    }
    let devid = match vif.get("devid") {
        Some(text) => ulong(text)?,
        None => index as u64,
    };
    let devid = u32::try_from(devid)
        .ok()
        .filter(|&d| d <= i32::MAX as u32)
        .ok_or_else(|| format!("vif devid {devid} is out of range"))?;
    let mtu = match vif.get("mtu") {
        Some(text) => ulong(text)?,
        None => NIC_MTU_DEFAULT,
    };
    let mtu = if mtu == 0 { NIC_MTU_DEFAULT } else { mtu & 0xffff_ffff };
    let mac = mac_text(vif.mac().unwrap_or_else(|| default_mac(domid, devid)));
    let trusted = match vif.options.iter().rev().find(|(k, _)| k == "trusted" || k == "untrusted") {
        Some((key, _)) if key == "untrusted" => "0",
        _ => "1",
    };
    let mut back = common_back(domid);
    back.push(("script", script_path(vif.get("script").unwrap_or("vif-bridge"))));
    let optional = [
        ("vifname", vif.get("vifname")),
        ("forwarddev", vif.get("forwarddev")),
        ("mac", Some(mac.as_str())),
        ("ip", vif.get("ip")),
        ("gatewaydev", vif.get("gatewaydev").or(vif.get("netdev"))),
    ];
    back.extend(optional.iter().filter_map(|(key, value)| Some((*key, (*value)?.to_string()))));
    if mtu != NIC_MTU_DEFAULT {
        back.push(("mtu", format!("{mtu}")));
    }
    back.extend([
        ("bridge", vif.get("bridge").unwrap_or("xenbr0").to_string()),
        ("handle", format!("{devid}")),
        ("type", "vif".to_string()),
        ("hotplug-status", String::new()),
    ]);
    let mut front = common_front(backend);
    front.extend([("handle", format!("{devid}")), ("mac", mac), ("trusted", trusted.to_string())]);
    let ro_front = alloc::vec![("mtu", format!("{mtu}"))];
    Ok(Device { kind: Kind::Vif, domid, devid, backend_domid: backend, back, front, ro_front })
}

/// The backend entries every device starts with.
fn common_back(domid: u16) -> Vec<(&'static str, String)> {
    alloc::vec![
        ("frontend-id", format!("{domid}")),
        ("online", "1".to_string()),
        ("state", format!("{XENBUS_STATE_INITIALISING}")),
    ]
}

/// The frontend entries every device starts with.
fn common_front(backend: u16) -> Vec<(&'static str, String)> {
    alloc::vec![
        ("backend-id", format!("{backend}")),
        ("state", format!("{XENBUS_STATE_INITIALISING}")),
    ]
}

/// The record of `disk` of domain `domid`, served by `backend`.
pub fn disk(domid: u16, disk: &Disk, backend: u16) -> Result<Device, String> {
    let vdev = &disk.vdev;
    let devid = disk_dev_number(vdev).ok_or_else(|| {
        format!("Domain {domid}:Invalid or unsupported virtual disk identifier {vdev}")
    })?;
    let mut script = None;
    for (key, value) in &disk.other {
        match key.as_str() {
            "backend" => {}
            "script" => script = Some(value.as_str()),
            "backendtype" if value == "phy" => {}
            "specification" if value == "xen" => {}
            _ => {
                return Err(format!("disk parameter `{key}={value}' is not supported by Xenolith"))
            }
        }
    }
    let Some(target) = disk.target.as_deref().filter(|_| disk.format == "raw") else {
        let what = match &disk.target {
            None => "an empty CD-ROM".to_string(),
            Some(_) => format!("disk format `{}'", disk.format),
        };
        return Err(format!("{what} needs QEMU's qdisk backend, which Xenolith does not have"));
    };
    let writable = disk.access == Access::ReadWrite && !disk.cdrom;
    let device_type = if disk.cdrom { "cdrom" } else { "disk" };
    let mut back = alloc::vec![
        ("params", target.to_string()),
        ("script", script_path(script.unwrap_or("block"))),
    ];
    let common = common_back(domid);
    back.extend(common[..2].iter().cloned());
    back.extend([
        ("removable", if disk.cdrom { "1" } else { "0" }.to_string()),
        ("bootable", "1".to_string()),
    ]);
    back.push(common[2].clone());
    back.extend([
        ("dev", vdev.clone()),
        ("type", "phy".to_string()),
        ("mode", if writable { "w" } else { "r" }.to_string()),
        ("device-type", device_type.to_string()),
        ("discard-enable", if writable { "1" } else { "0" }.to_string()),
        ("specification", "xen".to_string()),
    ]);
    let mut front = common_front(backend);
    front.extend([
        ("virtual-device", format!("{devid}")),
        ("device-type", device_type.to_string()),
        ("trusted", "1".to_string()),
    ]);
    Ok(Device {
        kind: Kind::Vbd,
        domid,
        devid,
        backend_domid: backend,
        back,
        front,
        ro_front: Vec::new(),
    })
}

/// libxl's `device_virtdisk_matches`: `prefix`, then a drive letter string read as base 26
/// (a-z, `aa` after `z`) up to `max_index`, then an optional partition without leading zeros up
/// to `max_partition`.
fn virtdisk_matches(
    vdev: &str,
    prefix: &str,
    max_index: u32,
    max_partition: u32,
) -> Option<(u32, u32)> {
    let rest = vdev.strip_prefix(prefix)?;
    let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
    let mut index: i64 = -1;
    for byte in rest[..letters].bytes() {
        index = (index + 1) * 26 + i64::from(byte - b'a');
        if index > i64::from(max_index) {
            return None;
        }
    }
    let index = u32::try_from(index).ok()?;
    let partition = &rest[letters..];
    if partition.is_empty() {
        return Some((index, 0));
    }
    if partition.starts_with('0') || !partition.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let partition: u32 = partition.parse().ok().filter(|&p| p <= max_partition)?;
    Some((index, partition))
}

/// `libxl__device_disk_dev_number`: the device number of a vdev name, as libxl computes the
/// vbd's devid (`xvda` is 51712 = 202 << 8). `None` for a name libxl refuses.
pub fn disk_dev_number(vdev: &str) -> Option<u32> {
    let xen = |disk: u32, partition: u32| {
        if disk <= 15 && partition <= 15 {
            (202 << 8) | (disk << 4) | partition
        } else {
            (1 << 28) | (disk << 8) | partition
        }
    };
    // `d<disk>p<partition>` (as `sscanf("d%ip%i")` over the whole name, decimal here).
    if let Some((disk, partition)) = vdev.strip_prefix('d').and_then(|rest| rest.split_once('p')) {
        let number = |text: &str| {
            (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
                .then(|| text.parse::<u32>().ok())
                .flatten()
        };
        if let (Some(disk), Some(partition)) = (number(disk), number(partition)) {
            if disk < (1 << 20) && partition < 256 {
                return Some(xen(disk, partition));
            }
        }
    }
    if let Some((disk, partition)) = virtdisk_matches(vdev, "xvd", (1 << 20) - 1, 255) {
        return Some(xen(disk, partition));
    }
    let (number, used) = strtoul_any(vdev);
    if used == vdev.len() && used > 0 && number <= i32::MAX as u64 {
        return Some(number as u32);
    }
    if let Some((disk, partition)) = virtdisk_matches(vdev, "hd", 3, 63) {
        return Some(((if disk < 2 { 3 } else { 22 }) << 8) | ((disk & 1) << 6) | partition);
    }
    virtdisk_matches(vdev, "sd", 15, 15).map(|(disk, partition)| (8 << 8) | (disk << 4) | partition)
}

/// `strtoul(text, &end, 0)` for a plain unsigned number: `0x` hexadecimal, a leading `0`
/// octal, else decimal; returns the value and the bytes read (0 when nothing was read).
fn strtoul_any(text: &str) -> (u64, usize) {
    let (radix, digits, skip) =
        if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            (16, hex, 2)
        } else if text.starts_with('0') {
            (8, text, 0)
        } else {
            (10, text, 0)
        };
    let count = digits.bytes().take_while(|b| (*b as char).is_digit(radix)).count();
    if count == 0 {
        return if skip == 2 { (0, 1) } else { (0, 0) };
    }
    match u64::from_str_radix(&digits[..count], radix) {
        Ok(value) => (value, skip + count),
        Err(_) => (u64::MAX, skip + count),
    }
}

/// A backend path's parts (`libxl__parse_backend_path`:
/// `/local/domain/<backend>/backend/<kind>/<domid>/<devid>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendPath {
    /// The backend domain.
    pub backend_domid: u16,
    /// The backend kind (`vif`, `vbd`, `console`, ...).
    pub kind: String,
    /// The frontend domain.
    pub domid: u16,
    /// The device id.
    pub devid: u32,
}

/// Parses a backend path libxl wrote (its copy's `backend`); `None` if it is not one.
pub fn parse_backend_path(path: &str) -> Option<BackendPath> {
    let rest = path.strip_prefix("/local/domain/")?;
    let mut parts = rest.split('/');
    let backend_domid = parts.next()?.parse().ok()?;
    if parts.next()? != "backend" {
        return None;
    }
    let kind = parts.next()?.to_string();
    let domid = parts.next()?.parse().ok()?;
    let devid = parts.next()?.parse().ok()?;
    if parts.next().is_some() || kind.is_empty() || kind.len() > 15 {
        return None;
    }
    Some(BackendPath { backend_domid, kind, domid, devid })
}

/// The parent directories `libxl__xs_path_cleanup` removes, in order, once backend path `path`
/// is gone and while each is empty: its ancestors below the backend domain's home
/// `/local/domain/<backend>`, which stays (libxl climbs further, but a domain's home is never
/// empty there).
pub fn cleanup_parents(path: &str) -> Vec<&str> {
    let home_end = path
        .strip_prefix("/local/domain/")
        .and_then(|rest| rest.find('/'))
        .map_or(path.len(), |end| "/local/domain/".len() + end);
    let mut parents = Vec::new();
    let mut current = path;
    while let Some(end) = current.rfind('/') {
        if end <= home_end {
            break;
        }
        current = &current[..end];
        parents.push(current);
    }
    parents
}

/// Every device of `config` for new domain `domid`, disks first (as libxl adds them), each
/// with its backend resolved by `lookup` (`backend=`: a name or a number; a number must name an
/// existing domain too). The error is what libxl logs, one line after another.
pub fn plan(
    domid: u16,
    config: &DomainConfig,
    mut lookup: impl FnMut(&str) -> Option<u16>,
) -> Result<Vec<Device>, String> {
    let mut devices: Vec<Device> = Vec::new();
    let mut resolve = |spec: Option<&str>| -> Result<u16, String> {
        let spec = spec.unwrap_or("0");
        lookup(spec).ok_or_else(|| match spec.bytes().all(|b| b.is_ascii_digit()) {
            true => format!("backend domain {spec} does not exist"),
            false => format!("backend domain `{spec}' does not exist"),
        })
    };
    let unable = |what: &str, why: String| {
        format!("{why}\nlibxl: error: Domain {domid}:unable to add {what} devices")
    };
    let add = |device: Device, devices: &mut Vec<Device>| {
        if devices.iter().any(|d| d.kind == device.kind && d.devid == device.devid) {
            return Err(format!("Domain {domid}:device already exists in xenstore"));
        }
        devices.push(device);
        Ok(())
    };
    for entry in &config.disks {
        let backend =
            entry.other.iter().rev().find(|(k, _)| k == "backend").map(|(_, v)| v.as_str());
        let device = resolve(backend).and_then(|backend| disk(domid, entry, backend));
        device.and_then(|device| add(device, &mut devices)).map_err(|why| unable("disk", why))?;
    }
    for (index, vif) in config.vifs.iter().enumerate() {
        let device =
            resolve(vif.get("backend")).and_then(|backend| nic(domid, index, vif, backend));
        device.and_then(|device| add(device, &mut devices)).map_err(|why| unable("vif", why))?;
    }
    Ok(devices)
}
