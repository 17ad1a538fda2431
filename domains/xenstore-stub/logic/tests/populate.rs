//! Boot-time population (`Store::add_domain`): every node Xen 4.17's `init-dom0less` writes for a
//! domain, with its value and permissions, read back through the protocol; the watches it
//! fires; the nodes quota it leaves; and what happens across a restart of the store and a
//! rebuild of the domain.

mod common;

use common::{call, drain, Msg};
use xenolith_xenstore::wire::{self, msg::*};
use xenolith_xenstore::{AddDomainError, NewDomain, Quotas, Ring, Store, Uuid};

/// The control domain (privileged, the root owner).
const CONTROL: u16 = 0;
/// The guest under test.
const GUEST: u16 = 5;
/// Another guest.
const OTHER: u16 = 6;

fn control() -> NewDomain<'static> {
    NewDomain { privileged: true, ..NewDomain::new("control", 1, 65536) }
}

/// Guest 5 as the binary would describe it: 3 vCPUs, 16000 KiB now of 16384 at most, a ring,
/// generation 4, started 12.345678901 s after boot, no handle.
fn guest() -> NewDomain<'static> {
    NewDomain {
        name: "guest",
        privileged: false,
        ring: Some(Ring { gfn: 0x39001, port: 7 }),
        vcpus: 3,
        target_kib: 16000,
        static_max_kib: 16384,
        handle: [0; 16],
        generation: 4,
        start_time_ns: 12_345_678_901,
    }
}

/// A store with the control domain and `GUEST` added.
fn store_with_guest() -> Store {
    let mut store = Store::new(Quotas::default());
    store.add_domain(CONTROL, &control()).expect("add control");
    store.add_domain(GUEST, &guest()).expect("add guest");
    store
}

fn ok_reply(store: &mut Store, domid: u16, type_: u32, payload: &[u8]) -> Vec<u8> {
    let (got, reply) = call(store, domid, type_, 0, payload);
    assert_eq!(got, type_, "{type_} {:?}: {:?}", String::from_utf8_lossy(payload), reply);
    reply
}

fn error(store: &mut Store, domid: u16, type_: u32, payload: &[u8]) -> String {
    let (got, reply) = call(store, domid, type_, 0, payload);
    assert_eq!(got, XS_ERROR, "{type_} {:?} succeeded", String::from_utf8_lossy(payload));
    String::from_utf8_lossy(&reply).trim_end_matches('\0').to_string()
}

fn arg(path: &str) -> Vec<u8> {
    format!("{path}\0").into_bytes()
}

/// Every node from `top` down, parents first and children in creation order, as the control
/// domain reads them: (path, value, permissions as `GET_PERMS` prints them, `|`-separated).
fn subtree(store: &mut Store, top: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![top.to_string()];
    while let Some(path) = stack.pop() {
        let value = ok_reply(store, CONTROL, XS_READ, &arg(&path));
        let perms = ok_reply(store, CONTROL, XS_GET_PERMS, &arg(&path));
        let perms: Vec<String> =
            wire::strings(&perms).map(|p| String::from_utf8_lossy(p).into_owned()).collect();
        out.push((path.clone(), String::from_utf8_lossy(&value).into_owned(), perms.join("|")));
        let children = ok_reply(store, CONTROL, XS_DIRECTORY, &arg(&path));
        let names: Vec<String> =
            wire::strings(&children).map(|n| String::from_utf8_lossy(n).into_owned()).collect();
        for name in names.iter().rev() {
            stack.push(format!("{path}/{name}"));
        }
    }
    out
}

fn expected_vm(uuid: &str) -> Vec<(String, String, String)> {
    let vm = format!("/vm/{uuid}");
    [(vm.clone(), "", "n0"), (format!("{vm}/name"), "guest", "n0")]
        .into_iter()
        .map(|(p, v, perms)| (p, v.to_string(), perms.to_string()))
        .chain([
            (format!("{vm}/uuid"), uuid.to_string(), "n0".to_string()),
            (format!("{vm}/start_time"), "12.34".to_string(), "n0".to_string()),
        ])
        .collect()
}

/// What `init-dom0less` writes under `/local/domain/5` for `guest()` (`~` and `~/store` are
/// `n5`, the rest `n5 r0`), in creation order.
fn expected_home(uuid: &str) -> Vec<(String, String, String)> {
    let vm = format!("/vm/{uuid}");
    let mut nodes: Vec<(&str, &str)> =
        vec![("", ""), ("/vm", &vm), ("/name", "guest"), ("/cpu", "")];
    let cpus: Vec<String> = (0..3).map(|n| format!("/cpu/{n}")).collect();
    let available: Vec<String> = cpus.iter().map(|cpu| format!("{cpu}/availability")).collect();
    for (cpu, availability) in cpus.iter().zip(&available) {
        nodes.push((cpu, ""));
        nodes.push((availability, "online"));
    }
    nodes.extend([
        ("/memory", ""),
        ("/memory/static-max", "16384"),
        ("/memory/target", "16000"),
        ("/memory/videoram", "-1"),
        ("/device", ""),
        ("/device/suspend", ""),
        ("/device/suspend/event-channel", ""),
        ("/control", ""),
        ("/control/shutdown", ""),
        ("/control/feature-poweroff", "1"),
        ("/control/feature-reboot", "1"),
        ("/control/feature-suspend", ""),
        ("/control/sysrq", ""),
        ("/control/platform-feature-multiprocessor-suspend", "1"),
        ("/control/platform-feature-xs_reset_watches", "1"),
        ("/domid", "5"),
        ("/data", ""),
        ("/drivers", ""),
        ("/feature", ""),
        ("/attr", ""),
        ("/error", ""),
        ("/store", ""),
        ("/store/port", "7"),
        ("/store/ring-ref", "233473"),
    ]);
    nodes
        .into_iter()
        .map(|(relative, value)| {
            let perms = if relative.is_empty() || relative == "/store" { "n5" } else { "n5|r0" };
            (format!("/local/domain/5{relative}"), value.to_string(), perms.to_string())
        })
        .collect()
}

fn uuid_of_guest() -> String {
    Uuid::derived(GUEST, "guest", 4).to_string()
}

#[test]
fn every_node_value_and_permission_is_init_dom0less_s() {
    let mut store = store_with_guest();
    let uuid = uuid_of_guest();
    assert_eq!(subtree(&mut store, "/local/domain/5"), expected_home(&uuid));
    assert_eq!(subtree(&mut store, &format!("/vm/{uuid}")), expected_vm(&uuid));
    // /vm and /local/domain keep the root's permissions.
    for top in ["/vm", "/local", "/local/domain"] {
        assert_eq!(ok_reply(&mut store, CONTROL, XS_GET_PERMS, &arg(top)), b"n0\0");
    }
    // The root owner's own domain has no second entry naming itself.
    assert_eq!(ok_reply(&mut store, CONTROL, XS_GET_PERMS, &arg("/local/domain/0/name")), b"n0\0");
}

#[test]
fn the_nodes_hold_the_domain_s_figures() {
    let mut store = Store::new(Quotas::default());
    let one = NewDomain {
        vcpus: 1,
        target_kib: 1 << 20,
        static_max_kib: 2 << 20,
        start_time_ns: 7_000_000_000,
        ..guest()
    };
    store.add_domain(CONTROL, &control()).unwrap();
    store.add_domain(GUEST, &one).unwrap();
    let read = |store: &mut Store, path: &str| {
        String::from_utf8(ok_reply(store, CONTROL, XS_READ, &arg(path))).unwrap()
    };
    assert_eq!(read(&mut store, "/local/domain/5/memory/target"), "1048576");
    assert_eq!(read(&mut store, "/local/domain/5/memory/static-max"), "2097152");
    assert_eq!(ok_reply(&mut store, CONTROL, XS_DIRECTORY, &arg("/local/domain/5/cpu")), b"0\0");
    let vm = read(&mut store, "/local/domain/5/vm");
    assert_eq!(read(&mut store, &format!("{vm}/start_time")), "7.00");
    // No ring, no store/ nodes.
    let bare = NewDomain { ring: None, ..guest() };
    store.add_domain(OTHER, &bare).unwrap();
    assert_eq!(error(&mut store, CONTROL, XS_READ, &arg("/local/domain/6/store")), "ENOENT");
}

#[test]
fn a_real_handle_names_the_vm_path() {
    let mut store = Store::new(Quotas::default());
    store.add_domain(CONTROL, &control()).unwrap();
    store.add_domain(GUEST, &NewDomain { handle: [0xab; 16], ..guest() }).unwrap();
    let uuid = "abababab-abab-abab-abab-abababababab";
    let vm = ok_reply(&mut store, CONTROL, XS_READ, &arg("/local/domain/5/vm"));
    assert_eq!(vm, format!("/vm/{uuid}").as_bytes());
    let path = format!("/vm/{uuid}/uuid");
    assert_eq!(ok_reply(&mut store, CONTROL, XS_READ, &arg(&path)), uuid.as_bytes());
}

#[test]
fn the_guest_owns_its_nodes_others_cannot_read_them_and_vm_is_closed_to_it() {
    let mut store = store_with_guest();
    store.add_domain(OTHER, &NewDomain { name: "other", ..guest() }).unwrap();
    let uuid = uuid_of_guest();
    // Relative paths, as Linux's xenbus uses them.
    ok_reply(&mut store, GUEST, XS_WRITE, b"memory/target\x0012345");
    assert_eq!(ok_reply(&mut store, GUEST, XS_READ, &arg("memory/target")), b"12345");
    assert_eq!(ok_reply(&mut store, GUEST, XS_READ, &arg("cpu/2/availability")), b"online");
    ok_reply(&mut store, GUEST, XS_WRITE, b"control/shutdown\0");
    ok_reply(&mut store, GUEST, XS_WRITE, b"device/vif/0/state\x001");
    assert_eq!(error(&mut store, OTHER, XS_READ, &arg("/local/domain/5/memory/target")), "EACCES");
    assert_eq!(
        error(&mut store, OTHER, XS_WRITE, b"/local/domain/5/control/shutdown\0x"),
        "EACCES"
    );
    for path in [format!("/vm/{uuid}"), format!("/vm/{uuid}/name"), String::from("/vm")] {
        assert_eq!(error(&mut store, GUEST, XS_READ, &arg(&path)), "EACCES", "{path}");
    }
    assert_eq!(error(&mut store, GUEST, XS_WRITE, &arg(&format!("/vm/{uuid}/name"))), "EACCES");
}

/// Every event `domid` received, as `path|token`.
fn events(store: &mut Store, domid: u16) -> Vec<String> {
    drain(store, domid)
        .into_iter()
        .filter(Msg::is_event)
        .map(|message| {
            let parts: Vec<String> = wire::strings(&message.payload)
                .map(|part| String::from_utf8_lossy(part).into_owned())
                .collect();
            parts.join("|")
        })
        .collect()
}

#[test]
fn watches_fire_once_for_every_node_written_then_introduce_domain() {
    let mut store = Store::new(Quotas::default());
    store.add_domain(CONTROL, &control()).unwrap();
    for watch in [&b"/local/domain\0home\0"[..], b"/vm\0vm\0", b"@introduceDomain\0intro\0"] {
        ok_reply(&mut store, CONTROL, XS_WATCH, watch);
    }
    events(&mut store, CONTROL);
    store.add_domain(GUEST, &guest()).unwrap();
    let uuid = uuid_of_guest();
    let mut expected: Vec<String> = vec![String::from("/vm|vm")];
    expected.extend(expected_vm(&uuid).into_iter().map(|(path, _, _)| format!("{path}|vm")));
    expected.push(String::from("/local/domain|home"));
    expected.extend(expected_home(&uuid).into_iter().map(|(path, _, _)| format!("{path}|home")));
    expected.push(String::from("@introduceDomain|intro"));
    assert_eq!(events(&mut store, CONTROL), expected);
}

/// The `nodes` line of `CONTROL quota <domid>`.
fn owned_nodes(store: &mut Store, domid: u16) -> u32 {
    let report = ok_reply(store, CONTROL, XS_CONTROL, format!("quota\0{domid}\0").as_bytes());
    let report = String::from_utf8_lossy(&report).into_owned();
    let line = report.lines().find(|line| line.starts_with("nodes")).expect("a nodes line");
    line.rsplit(' ').next().and_then(|count| count.parse().ok()).expect("a count")
}

#[test]
fn the_nodes_quota_leaves_a_guest_with_8_vcpus_room() {
    let mut store = Store::new(Quotas::default());
    store.add_domain(CONTROL, &control()).unwrap();
    store.add_domain(GUEST, &NewDomain { vcpus: 8, ..guest() }).unwrap();
    // 25 + 2 per vCPU + 3 for the ring.
    let populated = 25 + 2 * 8 + 3;
    assert_eq!(owned_nodes(&mut store, GUEST), populated);
    // The guest fills the rest of its quota (64 nodes a directory, under the node-size limit).
    let quota = Quotas::default().nodes;
    let mut written = 0;
    let refused = loop {
        let path = format!("data/g{}/n{}\0v", written / 64, written % 64);
        let (type_, reply) = call(&mut store, GUEST, XS_WRITE, 0, path.as_bytes());
        if type_ != XS_WRITE {
            break reply;
        }
        written += 1;
    };
    assert_eq!(refused, b"ENOSPC\0");
    assert!(written > 900, "only {written} nodes written");
    assert_eq!(owned_nodes(&mut store, GUEST), quota);
}

#[test]
fn a_restored_store_holds_the_same_nodes_and_adds_none_again() {
    let store = store_with_guest();
    let mut bytes = Vec::new();
    store.encode(&mut bytes);
    let mut restored = Store::decode(&bytes).expect("decode");
    assert_eq!(restored, store);
    let nodes = restored.stats().nodes;
    assert_eq!(restored.add_domain(GUEST, &guest()), Err(AddDomainError::Exists));
    assert_eq!(restored.stats().nodes, nodes);
    // The restored connection still knows its /vm path, and takes it when it goes.
    let vm = format!("/vm/{}", uuid_of_guest());
    restored.domain_gone(GUEST);
    assert_eq!(error(&mut restored, CONTROL, XS_READ, &arg(&vm)), "ENOENT");
}

#[test]
fn a_rebuilt_domain_gets_fresh_nodes_and_a_new_vm_path_in_place_of_the_old() {
    let mut store = store_with_guest();
    let nodes = store.stats().nodes;
    ok_reply(&mut store, CONTROL, XS_WATCH, b"/vm\0vm\0");
    events(&mut store, CONTROL);
    ok_reply(&mut store, GUEST, XS_WRITE, b"data/left-behind\0x");
    let old = format!("/vm/{}", uuid_of_guest());
    store.domain_gone(GUEST);
    assert_eq!(events(&mut store, CONTROL), [format!("{old}|vm")]);
    assert_eq!(error(&mut store, CONTROL, XS_READ, &arg("/local/domain/5")), "ENOENT");
    assert_eq!(error(&mut store, CONTROL, XS_READ, &arg(&old)), "ENOENT");

    store.add_domain(GUEST, &NewDomain { generation: 5, ..guest() }).unwrap();
    let new = format!("/vm/{}", Uuid::derived(GUEST, "guest", 5));
    assert_ne!(new, old);
    assert_eq!(ok_reply(&mut store, CONTROL, XS_READ, &arg("/local/domain/5/vm")), new.as_bytes());
    assert_eq!(
        error(&mut store, CONTROL, XS_READ, &arg("/local/domain/5/data/left-behind")),
        "ENOENT"
    );
    assert_eq!(store.stats().nodes, nodes);
    let listed = ok_reply(&mut store, CONTROL, XS_DIRECTORY, &arg("/vm"));
    let control_vm = Uuid::derived(CONTROL, "control", 0).to_string();
    assert_eq!(listed, format!("{control_vm}\0{}\0", &new[4..]).into_bytes());
}

#[test]
fn a_restarted_domain_keeps_its_nodes_loses_its_watches_and_gets_a_new_vm_path() {
    let mut store = store_with_guest();
    ok_reply(&mut store, CONTROL, XS_WATCH, b"@releaseDomain\0rel\0");
    ok_reply(&mut store, CONTROL, XS_WATCH, b"/vm\0vm\0");
    events(&mut store, CONTROL);
    ok_reply(&mut store, GUEST, XS_WRITE, b"backend/vif/3/0/state\x004");
    ok_reply(&mut store, GUEST, XS_WATCH, b"backend\0mine\0");
    events(&mut store, GUEST);
    let old = format!("/vm/{}", uuid_of_guest());
    store.domain_restarted(GUEST);
    // Its /vm path went; no @releaseDomain: the domain lives on.
    assert_eq!(events(&mut store, CONTROL), [format!("{old}|vm")]);
    store.add_domain(GUEST, &NewDomain { generation: 5, ..guest() }).unwrap();
    // What it served others through is still there, and still its own.
    let path = arg("/local/domain/5/backend/vif/3/0/state");
    assert_eq!(ok_reply(&mut store, CONTROL, XS_READ, &path), b"4");
    assert_eq!(ok_reply(&mut store, GUEST, XS_READ, b"backend/vif/3/0/state\0"), b"4");
    // The old incarnation's watch is gone: a write under it fires nothing for the new one.
    events(&mut store, GUEST);
    ok_reply(&mut store, CONTROL, XS_WRITE, b"/local/domain/5/backend/vif/3/0/state\x005");
    assert_eq!(events(&mut store, GUEST), Vec::<String>::new());
    let new = format!("/vm/{}", Uuid::derived(GUEST, "guest", 5));
    assert_eq!(ok_reply(&mut store, CONTROL, XS_READ, &arg("/local/domain/5/vm")), new.as_bytes());
    assert_eq!(error(&mut store, CONTROL, XS_READ, &arg(&old)), "ENOENT");
}

#[test]
fn release_takes_the_vm_path_too() {
    let mut store = store_with_guest();
    let vm = format!("/vm/{}", uuid_of_guest());
    ok_reply(&mut store, CONTROL, XS_RELEASE, b"5\0");
    assert_eq!(error(&mut store, CONTROL, XS_READ, &arg(&vm)), "ENOENT");
    assert_eq!(error(&mut store, CONTROL, XS_READ, &arg("/local/domain/5")), "ENOENT");
}

#[test]
fn nodes_that_exist_keep_their_place_and_take_the_listed_value_and_permissions() {
    let mut store = Store::new(Quotas::default());
    store.add_domain(CONTROL, &control()).unwrap();
    ok_reply(&mut store, CONTROL, XS_WRITE, b"/local/domain/5/data\0stale");
    ok_reply(&mut store, CONTROL, XS_WRITE, b"/local/domain/5/mine\0kept");
    store.add_domain(GUEST, &guest()).unwrap();
    let read = |store: &mut Store, path: &str| ok_reply(store, CONTROL, XS_READ, &arg(path));
    assert_eq!(read(&mut store, "/local/domain/5/data"), b"");
    assert_eq!(read(&mut store, "/local/domain/5/mine"), b"kept");
    let perms = ok_reply(&mut store, CONTROL, XS_GET_PERMS, &arg("/local/domain/5/data"));
    assert_eq!(perms, b"n5\0r0\0");
    let listed = ok_reply(&mut store, CONTROL, XS_DIRECTORY, &arg("/local/domain/5"));
    assert!(listed.starts_with(b"data\0mine\0vm\0name\0cpu\0"), "{listed:?}");
}
