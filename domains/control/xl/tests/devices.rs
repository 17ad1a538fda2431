//! The vif and vbd records against libxl 4.17's (`libxl_device.c` `libxl__device_generic_add`,
//! `libxl_nic.c`, `libxl_disk.c`): paths, entries, permissions, devids and the errors of
//! `xl create`'s device step.

use std::collections::BTreeMap;

use xenolith_xl::devices::{
    cleanup_parents, default_mac, disk_dev_number, parse_backend_path, plan, BackendPath, Device,
    Kind, Permissions, StoreOp,
};
use xenolith_xlcfg::parse_domain;

/// A xenstore tree: path to (value, permissions), where a new node takes its parent's
/// permissions as xenstored gives them (the root's are `n0`).
#[derive(Default)]
struct Tree(BTreeMap<String, (String, Permissions)>);

impl Tree {
    fn parent_perms(&self, path: &str) -> Permissions {
        let parent = &path[..path.rfind('/').unwrap()];
        match self.0.get(parent) {
            Some((_, perms)) => *perms,
            None if parent.is_empty() => Permissions { owner: 0, reader: 0 },
            None => self.parent_perms(parent),
        }
    }

    fn create(&mut self, path: &str) {
        if !self.0.contains_key(path) {
            let perms = self.parent_perms(path);
            self.0.insert(path.to_string(), (String::new(), perms));
        }
    }

    fn apply(&mut self, ops: &[StoreOp]) {
        for op in ops {
            match op {
                StoreOp::Rm(path) => {
                    let inside = format!("{path}/");
                    self.0.retain(|p, _| p != path && !p.starts_with(&inside));
                }
                StoreOp::Mkdir(path) => self.create(path),
                StoreOp::Write(path, value) => {
                    self.create(path);
                    self.0.get_mut(path).unwrap().0 = value.clone();
                }
                StoreOp::SetPerms(path, perms) => self.0.get_mut(path).unwrap().1 = *perms,
            }
        }
    }

    fn get(&self, path: &str) -> (&str, Permissions) {
        let (value, perms) = self.0.get(path).unwrap_or_else(|| panic!("no {path}"));
        (value, *perms)
    }

    /// The keys directly under `dir`, sorted.
    fn keys(&self, dir: &str) -> Vec<&str> {
        let inside = format!("{dir}/");
        self.0
            .keys()
            .filter_map(|p| p.strip_prefix(&inside))
            .filter(|rest| !rest.contains('/'))
            .collect()
    }
}

fn devices(text: &str, domid: u16) -> Result<Vec<Device>, String> {
    let config = parse_domain(text).expect("config").config;
    plan(domid, &config, |spec| match spec {
        "0" | "Domain-0" => Some(0),
        "2" | "netback" => Some(2),
        _ => None,
    })
}

const NAME: &str = "name = \"guest\"\nkernel = \"k\"\n";

#[test]
fn vif_as_libxl_writes_it() {
    let text = format!("{NAME}vif = ['mac=00:16:3e:0a:0b:0c,bridge=br1']\n");
    let devs = devices(&text, 7).unwrap();
    assert_eq!(devs.len(), 1);
    let vif = &devs[0];
    assert_eq!((vif.kind, vif.devid, vif.backend_domid), (Kind::Vif, 0, 0));
    assert_eq!(vif.frontend_path(), "/local/domain/7/device/vif/0");
    assert_eq!(vif.backend_path(), "/local/domain/0/backend/vif/7/0");
    assert_eq!(vif.libxl_path(), "/libxl/7/device/vif/0");
    let mut tree = Tree::default();
    tree.apply(&vif.generic_add());

    let guest = Permissions { owner: 7, reader: 0 };
    let backend = Permissions { owner: 0, reader: 7 };
    let front = "/local/domain/7/device/vif/0";
    assert_eq!(tree.get(front), ("", guest));
    for (key, value) in [
        ("backend", "/local/domain/0/backend/vif/7/0"),
        ("backend-id", "0"),
        ("state", "1"),
        ("handle", "0"),
        ("mac", "00:16:3e:0a:0b:0c"),
        ("trusted", "1"),
    ] {
        assert_eq!(tree.get(&format!("{front}/{key}")), (value, guest), "{key}");
    }
    // `ro_fents`: the guest may only read its MTU.
    assert_eq!(tree.get(&format!("{front}/mtu")), ("1500", backend));
    assert_eq!(
        tree.keys(front),
        ["backend", "backend-id", "handle", "mac", "mtu", "state", "trusted"]
    );

    let back = "/local/domain/0/backend/vif/7/0";
    assert_eq!(tree.get(back), ("", backend));
    let back_entries = [
        ("frontend", "/local/domain/7/device/vif/0"),
        ("frontend-id", "7"),
        ("online", "1"),
        ("state", "1"),
        ("script", "/etc/xen/scripts/vif-bridge"),
        ("mac", "00:16:3e:0a:0b:0c"),
        ("bridge", "br1"),
        ("handle", "0"),
        ("type", "vif"),
        ("hotplug-status", ""),
    ];
    for (key, value) in back_entries {
        assert_eq!(tree.get(&format!("{back}/{key}")), (value, backend), "{key}");
    }
    assert_eq!(tree.keys(back).len(), back_entries.len());

    // libxl's copy: where the device is, and the backend entries.
    let libxl = "/libxl/7/device/vif/0";
    assert_eq!(tree.get(&format!("{libxl}/backend")).0, back);
    for (key, value) in back_entries {
        assert_eq!(tree.get(&format!("{libxl}/{key}")).0, value, "{key}");
    }
}

#[test]
fn vif_options_defaults_and_devids() {
    let text = format!(
        "{NAME}vif = ['', 'backend=netback,script=my-script,vifname=v1,ip=10.0.0.2,mtu=9000,untrusted', 'devid=5,script=/x/y,gatewaydev=eth9']\n"
    );
    let devs = devices(&text, 0x1234).unwrap();
    assert_eq!(devs.iter().map(|d| d.devid).collect::<Vec<_>>(), [0, 1, 5]);
    let back =
        |d: &Device, key: &str| d.back.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
    let front = |d: &Device, key: &str| {
        d.front.iter().chain(&d.ro_front).find(|(k, _)| *k == key).map(|(_, v)| v.clone())
    };
    // No mac: 00:16:3e, the domain id's bytes, the devid (the high byte below 0x80).
    assert_eq!(back(&devs[0], "mac").unwrap(), "00:16:3e:12:34:00");
    assert_eq!(default_mac(0x7fef, 300), [0, 0x16, 0x3e, 0x7f, 0xef, 0x2c]);
    assert_eq!(back(&devs[0], "bridge").unwrap(), "xenbr0");
    assert_eq!(back(&devs[0], "mtu"), None, "libxl writes the backend's mtu only when not 1500");
    assert_eq!(devs[1].backend_domid, 2);
    assert_eq!(front(&devs[1], "backend-id").unwrap(), "2");
    assert_eq!(back(&devs[1], "script").unwrap(), "/etc/xen/scripts/my-script");
    assert_eq!(back(&devs[1], "vifname").unwrap(), "v1");
    assert_eq!(back(&devs[1], "ip").unwrap(), "10.0.0.2");
    assert_eq!(back(&devs[1], "mtu").unwrap(), "9000");
    assert_eq!(front(&devs[1], "mtu").unwrap(), "9000");
    assert_eq!(front(&devs[1], "trusted").unwrap(), "0");
    assert_eq!(back(&devs[2], "script").unwrap(), "/x/y");
    assert_eq!(back(&devs[2], "gatewaydev").unwrap(), "eth9");
    assert_eq!(front(&devs[2], "handle").unwrap(), "5");
    // libxl's order of the backend entries.
    let keys: Vec<_> = devs[1].back.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        keys,
        [
            "frontend-id",
            "online",
            "state",
            "script",
            "vifname",
            "mac",
            "ip",
            "mtu",
            "bridge",
            "handle",
            "type",
            "hotplug-status"
        ]
    );
}

#[test]
fn vbd_as_libxl_writes_it() {
    let text = format!("{NAME}disk = ['/dev/vg/guest,raw,xvda,rw', 'vdev=xvdb,devtype=cdrom,backend=2,target=/img.iso']\n");
    let devs = devices(&text, 3).unwrap();
    let (disk, cdrom) = (&devs[0], &devs[1]);
    assert_eq!((disk.kind, disk.devid, disk.backend_domid), (Kind::Vbd, 51712, 0));
    assert_eq!(disk.frontend_path(), "/local/domain/3/device/vbd/51712");
    assert_eq!(disk.backend_path(), "/local/domain/0/backend/vbd/3/51712");
    let mut tree = Tree::default();
    tree.apply(&disk.generic_add());
    let guest = Permissions { owner: 3, reader: 0 };
    let backend = Permissions { owner: 0, reader: 3 };
    let front = "/local/domain/3/device/vbd/51712";
    for (key, value) in [
        ("backend", "/local/domain/0/backend/vbd/3/51712"),
        ("backend-id", "0"),
        ("state", "1"),
        ("virtual-device", "51712"),
        ("device-type", "disk"),
        ("trusted", "1"),
    ] {
        assert_eq!(tree.get(&format!("{front}/{key}")), (value, guest), "{key}");
    }
    assert_eq!(tree.keys(front).len(), 6);
    let back = "/local/domain/0/backend/vbd/3/51712";
    let entries = [
        ("params", "/dev/vg/guest"),
        ("script", "/etc/xen/scripts/block"),
        ("frontend-id", "3"),
        ("online", "1"),
        ("removable", "0"),
        ("bootable", "1"),
        ("state", "1"),
        ("dev", "xvda"),
        ("type", "phy"),
        ("mode", "w"),
        ("device-type", "disk"),
        ("discard-enable", "1"),
        ("specification", "xen"),
    ];
    assert_eq!(disk.back.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>(), entries);
    for (key, value) in entries {
        assert_eq!(tree.get(&format!("{back}/{key}")), (value, backend), "{key}");
    }
    assert_eq!(tree.get(&format!("{back}/frontend")).0, front);
    assert_eq!(tree.get("/libxl/3/device/vbd/51712/params").0, "/dev/vg/guest");
    // A CD-ROM: read-only, removable, no discard; its own backend.
    assert_eq!((cdrom.devid, cdrom.backend_domid), (51728, 2));
    let value = |key: &str| cdrom.back.iter().find(|(k, _)| *k == key).unwrap().1.clone();
    assert_eq!(
        [value("mode"), value("removable"), value("device-type"), value("discard-enable")],
        ["r", "1", "cdrom", "0"]
    );
}

#[test]
fn disk_dev_numbers_as_libxl_computes_them() {
    for (vdev, number) in [
        ("xvda", Some(51712)),
        ("xvdb", Some(51728)),
        ("xvda1", Some(51713)),
        ("xvdp15", Some((202 << 8) | (15 << 4) | 15)),
        ("xvdq", Some((1 << 28) | (16 << 8))),
        ("xvdaa", Some((1 << 28) | (26 << 8))),
        ("xvda16", Some((1 << 28) | 16)),
        ("xvda01", None),
        ("xvda256", None),
        ("xvd", None),
        ("d0p0", Some(51712)),
        ("d16p1", Some((1 << 28) | (16 << 8) | 1)),
        ("51712", Some(51712)),
        ("0xca00", Some(51712)),
        ("hda", Some(3 << 8)),
        ("hdb1", Some((3 << 8) | (1 << 6) | 1)),
        ("hdc", Some(22 << 8)),
        ("hde", None),
        ("sda", Some(8 << 8)),
        ("sdb2", Some((8 << 8) | (1 << 4) | 2)),
        ("sdq", None),
        ("vda", None),
        ("", None),
    ] {
        assert_eq!(disk_dev_number(vdev), number, "{vdev}");
    }
}

#[test]
fn what_the_device_step_refuses_in_libxls_words() {
    let refused = |spec: &str, domid| devices(&format!("{NAME}{spec}\n"), domid).unwrap_err();
    assert_eq!(
        refused("vif = ['backend=nosuch']", 4),
        "backend domain `nosuch' does not exist\nlibxl: error: Domain 4:unable to add vif devices"
    );
    assert_eq!(
        refused("disk = ['/dev/x,raw,xvda,rw,backend=9']", 4),
        "backend domain 9 does not exist\nlibxl: error: Domain 4:unable to add disk devices"
    );
    assert_eq!(
        refused("disk = ['/dev/x,raw,vda,rw']", 4),
        "Domain 4:Invalid or unsupported virtual disk identifier vda\n\
         libxl: error: Domain 4:unable to add disk devices"
    );
    assert_eq!(
        refused("disk = ['/dev/x,raw,xvda,rw', '/dev/y,raw,51712,rw']", 4),
        "Domain 4:device already exists in xenstore\n\
         libxl: error: Domain 4:unable to add disk devices"
    );
    assert_eq!(
        refused("vif = ['', 'devid=0']", 4),
        "Domain 4:device already exists in xenstore\nlibxl: error: Domain 4:unable to add vif devices"
    );
    assert!(refused("disk = ['/i.qcow2,qcow2,xvda,rw']", 4)
        .starts_with("disk format `qcow2' needs QEMU's qdisk"));
    assert!(refused("vif = ['type=ioemu']", 4)
        .starts_with("Domain 4:trying to create PV or PVH guest with an emulated interface"));
    assert!(refused("vif = ['rate=10Mb/s']", 4).starts_with("vif option `rate' is not supported"));
    // Disks are added before vifs: a bad disk is reported even when a vif is bad too.
    assert!(refused("vif = ['backend=nosuch']\ndisk = ['/x,raw,vda,rw']", 4)
        .ends_with("unable to add disk devices"));
}

#[test]
fn backend_paths_and_their_cleanup() {
    assert_eq!(
        parse_backend_path("/local/domain/0/backend/vif/7/0"),
        Some(BackendPath { backend_domid: 0, kind: "vif".into(), domid: 7, devid: 0 })
    );
    assert_eq!(parse_backend_path("/local/domain/0/backend/vif/7"), None);
    assert_eq!(parse_backend_path("/local/domain/0/device/vif/7/0"), None);
    assert_eq!(parse_backend_path("/local/domain/0/backend/vif/7/0/x"), None);
    assert_eq!(
        cleanup_parents("/local/domain/0/backend/vif/7/0"),
        ["/local/domain/0/backend/vif/7", "/local/domain/0/backend/vif", "/local/domain/0/backend"]
    );
}
