//! The device records a guest sees in xenstore (what `xl create` writes for `vif=` and `disk=`,
//! as libxl does), read from inside the guest:
//!
//! - `xs-devices`: reads its frontend directories `device/vif/0` and `device/vbd/51712`
//!   (xvda), follows each one's `backend` to the backend directory (which it may read) and
//!   prints every node as `NAME: node <path>=<value>`; checks that the backend's `state` is
//!   closed to its writes (EACCES: the backend owns it) and that its own frontend `state`
//!   takes a write (it owns it). Prints `NAME: PASS xs-devices` and stays (for `xl destroy`).
//! - `xs-devices-gone` (`vif=<id> vbd=<id>`: the destroyed domain's backends): a domain that
//!   has the id of a destroyed one with devices finds no trace of them:
//!   `/local/domain/<vif>/backend/vif/<self>/0` and
//!   `/local/domain/<vbd>/backend/vbd/<self>/51712` (which it could read if they were there:
//!   gone is ENOENT, or EACCES when the nearest node left is one it may not read) and its own `device/vif`, `device/vbd` are ENOENT. Ends
//!   with `NAME: PASS xs-devices-gone`.
//!
//! - `xs-backend`: plays a backend domain as netback and blkback would start: watches its
//!   `backend` directory and, whenever what is under `backend/vif` and `backend/vbd` changes,
//!   prints `NAME: backends <kind>/<domid>/<devid> ...` (sorted; `none` when empty). It reads
//!   each device's `frontend-id`, so it also shows that the directories are the backend's to
//!   read.
//!
//! A failure prints `NAME: FAIL ...` naming what went wrong.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use xenolith_runtime::xenbus::{Xenbus, XsError};
use xenolith_runtime::{println, StartInfo};

use crate::xenstore::connect;

/// The frontend directories read, relative to the domain's home.
const FRONTENDS: [&str; 2] = ["device/vif/0", "device/vbd/51712"];

/// `xs-devices` (module doc).
pub fn devices(name: &str) {
    match run_devices(name) {
        Ok(()) => println!("{name}: PASS xs-devices"),
        Err(why) => println!("{name}: FAIL {why}"),
    }
    loop {
        crate::xenstore::sleep(1_000_000_000);
    }
}

fn text(bus: &mut Xenbus, path: &str) -> Result<String, String> {
    bus.read(path)
        .map(|value| String::from_utf8_lossy(&value).into_owned())
        .map_err(|error| format!("reading {path}: {error}"))
}

/// Prints every node directly under `dir` and returns nothing else.
fn print_dir(name: &str, bus: &mut Xenbus, dir: &str) -> Result<(), String> {
    let keys = bus.directory(dir).map_err(|error| format!("listing {dir}: {error}"))?;
    if keys.is_empty() {
        return Err(format!("{dir} is empty"));
    }
    for key in keys {
        let path = format!("{dir}/{key}");
        println!("{name}: node {path}={}", text(bus, &path)?);
    }
    Ok(())
}

fn run_devices(name: &str) -> Result<(), String> {
    let Some((mut bus, me)) = connect(name) else { return Err("no xenstore".into()) };
    for frontend in FRONTENDS {
        let front = format!("/local/domain/{me}/{frontend}");
        print_dir(name, &mut bus, &front)?;
        let back = text(&mut bus, &format!("{front}/backend"))?;
        print_dir(name, &mut bus, &back)?;
        match bus.write(&format!("{back}/state"), b"4") {
            Err(XsError::EACCES) => {}
            other => return Err(format!("writing {back}/state gave {other:?}, not EACCES")),
        }
        bus.write(&format!("{front}/state"), b"1")
            .map_err(|error| format!("writing its own {front}/state: {error}"))?;
    }
    Ok(())
}

/// `xs-devices-gone` (module doc).
pub fn gone(name: &str, info: &StartInfo) {
    match run_gone(name, info) {
        Ok(()) => println!("{name}: PASS xs-devices-gone"),
        Err(why) => println!("{name}: FAIL {why}"),
    }
}

fn run_gone(name: &str, info: &StartInfo) -> Result<(), String> {
    let vif = info.bootarg("vif").ok_or("no vif=<id>")?;
    let vbd = info.bootarg("vbd").ok_or("no vbd=<id>")?;
    let Some((mut bus, me)) = connect(name) else { return Err("no xenstore".into()) };
    // A backend directory left behind would be readable (the frontend domain may read it); a
    // missing node under a parent this domain may not read is EACCES, as in Xen's xenstored.
    let backends = [
        format!("/local/domain/{vif}/backend/vif/{me}/0"),
        format!("/local/domain/{vbd}/backend/vbd/{me}/51712"),
    ];
    for path in backends {
        match bus.read(&path) {
            Err(XsError::ENOENT | XsError::EACCES) => println!("{name}: gone {path}"),
            other => return Err(format!("{path} is still there: {other:?}")),
        }
    }
    for path in [format!("/local/domain/{me}/device/vif"), format!("/local/domain/{me}/device/vbd")]
    {
        match bus.read(&path) {
            Err(XsError::ENOENT) => println!("{name}: gone {path}"),
            other => return Err(format!("{path} is still there: {other:?}")),
        }
    }
    Ok(())
}

/// `xs-backend` (module doc).
pub fn backend(name: &str) {
    if let Err(why) = run_backend(name) {
        println!("{name}: FAIL {why}");
    }
}

/// The devices under `home/backend`, as `<kind>/<domid>/<devid>`, each checked by reading its
/// `frontend-id`.
fn backends(bus: &mut Xenbus, home: &str) -> Result<Vec<String>, String> {
    let mut found = Vec::new();
    for kind in ["vif", "vbd"] {
        let dir = format!("{home}/backend/{kind}");
        for domid in bus.directory(&dir).unwrap_or_default() {
            for devid in bus.directory(&format!("{dir}/{domid}")).unwrap_or_default() {
                let id = text(bus, &format!("{dir}/{domid}/{devid}/frontend-id"))?;
                if id != domid {
                    return Err(format!("{dir}/{domid}/{devid} has frontend-id {id}"));
                }
                found.push(format!("{kind}/{domid}/{devid}"));
            }
        }
    }
    found.sort();
    Ok(found)
}

fn run_backend(name: &str) -> Result<(), String> {
    let Some((mut bus, me)) = connect(name) else { return Err("no xenstore".into()) };
    let home = format!("/local/domain/{me}");
    bus.watch(&format!("{home}/backend"), "backend", |_| {})
        .map_err(|error| format!("watching {home}/backend: {error}"))?;
    let mut last = None;
    loop {
        let now = backends(&mut bus, &home)?;
        if last.as_ref() != Some(&now) {
            let list = if now.is_empty() { String::from("none") } else { now.join(" ") };
            println!("{name}: backends {list}");
            last = Some(now);
        }
        bus.wait_watches(None).map_err(|error| format!("waiting for a watch: {error}"))?;
    }
}
