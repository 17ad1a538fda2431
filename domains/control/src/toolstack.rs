//! The toolstack's operations over Xen's interfaces (libxl's role): domains built from the
//! xl.cfg modules of the boot bundle, the xenstore entries libxl writes for them, destroying
//! and the domain list.
//!
//! # xenstore, as libxl writes it (Xen 4.17 `tools/libs/light/`)
//! - the domain's home `/local/domain/<id>` with its `name`, `domid` and the nodes and
//!   permissions of `libxl__domain_make` ([`Control::make_home`]), then `XS_INTRODUCE`, after
//!   which the xenstore domain serves the domain's ring;
//! - the primary console (`libxl__device_console_add` with `libxl__device_generic_add`):
//!   frontend `/local/domain/<id>/console` (owned by the backend, the guest may read:
//!   `backend`, `backend-id`, `limit` 1048576, `type` `xenconsoled`, `output` `pty`, `tty`,
//!   `port`, `ring-ref`), backend `/local/domain/<b>/backend/console/<id>/0` (owned by the
//!   backend, the guest may read: `frontend`, `frontend-id`, `online` 1, `state` 1 =
//!   `XenbusStateInitialising`, `protocol` `vt100`), and libxl's copy under
//!   `/libxl/<id>/device/console/0` (`frontend`, `backend`). The backend is the console domain.
//! - the disks and vifs of its configuration (`vif=`, `disk=`): frontend
//!   `/local/domain/<id>/device/<vif|vbd>/<devid>` (the guest's, the backend may read),
//!   backend `/local/domain/<b>/backend/<vif|vbd>/<id>/<devid>` (the backend's, the guest may
//!   read) and libxl's copy `/libxl/<id>/device/<vif|vbd>/<devid>`, with libxl's entries
//!   (`xenolith_xl::devices`), before the domain is unpaused. The backend `b` is the spec's
//!   `backend=` or domain 0; nothing serves these devices yet (no netback, no blkback).
//! - `/libxl/<id>/cfg`: the bundle module it was created from, and `/libxl/<id>/start_time`
//!   (seconds of system time; libxl keeps the JSON configuration under `/libxl/<id>/` and the
//!   start time under `/vm/<uuid>/start_time`).
//!
//! Every entry of a domain goes when it is destroyed, its devices' backend directories with
//! them (`libxl__devices_destroy`).
//!
//! `xl console` writes [`XENOLITH_CONSOLE_FOCUS_PATH`], Xenolith's request to the console
//! domain to move the UART's input focus ([`Control::console`](Toolstack::console)).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use xenolith_abi::xen::arch_arm::{GUEST_MAGIC_BASE, GUEST_MAGIC_CONSOLE_PFN_OFFSET};
use xenolith_abi::xen::domctl::*;
use xenolith_abi::xen::hypercall::DOMID_SELF;
use xenolith_abi::xen::private::{
    XenolithDomainInfo, XENOLITH_CAP_CONSOLE, XENOLITH_CONSOLE_FOCUS_PATH,
};
use xenolith_abi::xen::xenbus::XenbusState;
use xenolith_runtime::xenbus::{Access, Permission, Xenbus, XsError};
use xenolith_runtime::{hypercall, println};
use xenolith_xl::death::AfterShutdown;
use xenolith_xl::devices::{self, StoreOp};
use xenolith_xlcfg::DomainConfig;
use zerocopy::FromZeros;

use crate::service::{INTENT, RESTART};
use crate::{builder, xl};

use xenolith_abi::xen::sysctl::{xen_sysctl, SysctlPayload, XEN_SYSCTL_physinfo};
use xenolith_abi::xen::version as ver;
use xenolith_xl::{
    ConsoleType, CpuMap, DomainInfo, LibxlError, NicRef, NodeInfo, PhysInfo, SchedParams,
    Scheduler, ShutdownKind, ToolError, Toolstack, VcpuInfo, VersionInfo, Vif,
};

/// How long `network-detach` waits for the backend to close the device (libxl waits
/// `LIBXL_DESTROY_TIMEOUT`, 10 s).
const DETACH_TIMEOUT_NS: u64 = 10_000_000_000;

/// `LIBXL_XENCONSOLE_LIMIT`.
const CONSOLE_LIMIT: u32 = 1_048_576;
/// `XenbusStateInitialising`.
const INITIALISING: u32 = 1;

/// The toolstack: its xenstore connection (it keeps nothing else).
pub struct Control {
    /// xenstore.
    pub store: Xenbus,
    /// This domain's id.
    me: u16,
    /// The configuration module the command being run read (`xl create`'s file).
    last_cfg: String,
    /// The command being run is `xl create -p` (the domain is to stay paused).
    create_paused: bool,
    /// [`Control::after_shutdowns`] is running (a restart's `xl create` does not start it again).
    handling_shutdowns: bool,
}

impl Control {
    /// A toolstack on `store`.
    pub fn new(store: Xenbus) -> Self {
        // The domain whose incarnation is this one's (the core never hands a generation out
        // twice).
        let generation = hypercall::domain_info(DOMID_SELF).map(|info| info.generation);
        let mut me = 0;
        hypercall::for_each_domain(|info| {
            if hypercall::domain_info(info.domain).map(|i| i.generation) == generation {
                me = info.domain;
            }
        });
        let (last_cfg, create_paused, handling_shutdowns) = (String::new(), false, false);
        Self { store, me, last_cfg, create_paused, handling_shutdowns }
    }

    /// Whether domain `id` exists.
    pub fn exists(&self, id: u16) -> bool {
        xl::exists(id)
    }

    /// Whether domain `id` exists and is paused.
    pub fn is_paused(&self, id: u16) -> bool {
        hypercall::getdomaininfo(id).is_ok_and(|info| info.flags & XEN_DOMINF_paused != 0)
    }

    /// The core's record of domain `id` (name, capabilities, console port).
    pub fn core_info(&self, id: u16) -> Option<XenolithDomainInfo> {
        hypercall::domain_info(id).ok()
    }

    /// Every domain id, in order.
    pub fn ids(&self) -> Vec<u16> {
        let mut ids = Vec::new();
        hypercall::for_each_domain(|info| ids.push(info.domain));
        ids
    }

    /// The id of the domain called `name` ([`Control::name`]), if there is one.
    pub fn id_of(&mut self, name: &str) -> Option<u16> {
        self.ids().into_iter().find(|&id| self.name(id) == name)
    }

    /// A domain's name: xenstore's (libxl's) if it has one, else the core's.
    pub fn name(&mut self, id: u16) -> String {
        if let Ok(name) = self.store.read(&format!("/local/domain/{id}/name")) {
            return String::from_utf8_lossy(&name).into_owned();
        }
        let Some(info) = self.core_info(id) else { return format!("d{id}") };
        let end = info.name.iter().position(|&byte| byte == 0).unwrap_or(info.name.len());
        String::from_utf8_lossy(&info.name[..end]).into_owned()
    }

    /// The console domain's id, if there is one.
    fn console_backend(&self) -> Option<u16> {
        self.ids().into_iter().find(|&id| {
            self.core_info(id).is_some_and(|info| info.capabilities & XENOLITH_CAP_CONSOLE != 0)
        })
    }

    /// The lowest domain id nobody holds (0 is never asked for: it means "any" to the core).
    fn free_id(&self) -> u16 {
        let ids = self.ids();
        (1..).find(|id| !ids.contains(id)).unwrap_or(u16::MAX)
    }

    /// Builds domain `config` (from bundle module `cfg`) and writes its records, leaving it
    /// paused. [`INTENT`] says `building` from before it exists, then `built` (or
    /// `built-paused` for `xl create -p`) until the command ends, so a restarted control domain
    /// undoes or finishes it. Returns its id.
    pub fn create(&mut self, config: &DomainConfig, cfg: &str) -> Result<u16, String> {
        let kernel = config.kernel.as_deref().ok_or("no `kernel' given")?;
        let refused = [
            (!config.iomem.is_empty() || !config.irqs.is_empty(), "iomem/irqs (no passthrough)"),
            (!config.dtdevs.is_empty(), "dtdev (no passthrough)"),
        ];
        if let Some((_, what)) = refused.iter().find(|(given, _)| *given) {
            return Err(format!("{what} is not supported"));
        }
        let id = self.free_id();
        let intent = |state: &str| format!("{id} {cfg} {state}");
        let fail = |error| format!("xenstore: {error:?}");
        self.store.write(INTENT, intent("building").as_bytes()).map_err(fail)?;
        let cmdline = config.cmdline.as_deref().unwrap_or("");
        let built = builder::build_paused(
            id,
            kernel,
            config.ramdisk.as_deref(),
            config.memory_mib,
            config.vcpus,
            cmdline,
        );
        if let Err(error) = built {
            let _ = self.store.rm(INTENT);
            return Err(format!("{error}"));
        }
        let finished = self
            .set_scheduling(id, config)
            .and_then(|()| self.make_home(id))
            .and_then(|()| self.write_records(id, cfg))
            .and_then(|()| self.introduce(id))
            .and_then(|()| self.add_devices(id, config))
            .and_then(|()| {
                let built = if self.create_paused { "built-paused" } else { "built" };
                self.store.write(INTENT, intent(built).as_bytes()).map_err(fail)
            });
        if let Err(error) = finished {
            self.remove(id);
            let _ = self.store.rm(INTENT);
            return Err(error);
        }
        Ok(id)
    }

    /// Domain `id`'s xenstore home as `libxl__domain_make` lays it out (Xen 4.17
    /// `tools/libs/light/libxl_create.c`): `/local/domain/<id>` and `cpu`, `memory`, `device`,
    /// `control` readable by it (owned by the toolstack's domain 0, as there), and
    /// `control/{shutdown,feature-poweroff,feature-reboot,feature-suspend,sysrq}`, `data`,
    /// `drivers`, `feature`, `attr`, `error` its own. (The control domain is privileged in
    /// xenstore whoever owns a node.)
    fn make_home(&mut self, id: u16) -> Result<(), String> {
        let home = format!("/local/domain/{id}");
        let read_only = [
            Permission { domid: 0, access: Access::None },
            Permission { domid: id, access: Access::Read },
        ];
        let own = [Permission { domid: id, access: Access::None }];
        let nodes: [(&str, &[Permission]); 16] = [
            ("", &read_only),
            ("/cpu", &read_only),
            ("/memory", &read_only),
            ("/device", &read_only),
            ("/control", &read_only),
            ("/control/shutdown", &own),
            ("/control/feature-poweroff", &own),
            ("/control/feature-reboot", &own),
            ("/control/feature-suspend", &own),
            ("/control/sysrq", &own),
            ("/data", &own),
            ("/drivers", &own),
            ("/feature", &own),
            ("/attr", &own),
            ("/error", &own),
            ("/domid", &read_only),
        ];
        let fail = |error| format!("xenstore: {error:?}");
        for (node, permissions) in nodes {
            let path = format!("{home}{node}");
            let value = if node == "/domid" { format!("{id}") } else { String::new() };
            self.store.write(&path, value.as_bytes()).map_err(fail)?;
            self.store.set_perms(&path, permissions).map_err(fail)?;
        }
        Ok(())
    }

    /// `XS_INTRODUCE <id> <gfn> <port>` (`xs_introduce_domain`): the xenstore domain serves
    /// domain `id`'s ring from now on.
    fn introduce(&mut self, id: u16) -> Result<(), String> {
        let info = self.core_info(id).ok_or("the domain is gone")?;
        if info.store_port == 0 {
            return Ok(());
        }
        let (domid, gfn, port) =
            (format!("{id}"), format!("{}", info.store_gfn), format!("{}", info.store_port));
        let payload = xenolith_runtime::xenbus_wire::strings(&[
            domid.as_bytes(),
            gfn.as_bytes(),
            port.as_bytes(),
        ])
        .map_err(|error| format!("{error:?}"))?;
        let reply = self.store.raw(xenolith_abi::xen::xs_wire::msg::XS_INTRODUCE, 0, &payload);
        match reply
            .map(|message| message.into_result(xenolith_abi::xen::xs_wire::msg::XS_INTRODUCE))
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) | Err(error) => Err(format!("XS_INTRODUCE of domain {id}: {error:?}")),
        }
    }

    /// The credit2 weight and cap of `config` for domain `id`.
    fn set_scheduling(&mut self, id: u16, config: &DomainConfig) -> Result<(), String> {
        let mut op = xen_domctl_scheduler_op::new_zeroed();
        op.sched_id = XEN_SCHEDULER_CREDIT2;
        op.cmd = XEN_DOMCTL_SCHEDOP_putinfo;
        let cap = u16::try_from(config.cap).map_err(|_| "cap out of range")?;
        op.u.write(&xen_domctl_sched_credit2 { weight: config.weight, cap });
        match xl::domctl(XEN_DOMCTL_scheduler_op, id, DomctlPayload::new(&op)).0 {
            0 => Ok(()),
            error => Err(format!("setting domain {id}'s weight and cap failed with {error}")),
        }
    }

    /// Writes the xenstore entries libxl writes for domain `id` (module doc), created from
    /// bundle module `cfg`.
    pub fn write_records(&mut self, id: u16, cfg: &str) -> Result<(), String> {
        let name = {
            let bytes = builder::read_module(cfg).map_err(|e| format!("{e}"))?;
            let text = core::str::from_utf8(&bytes).map_err(|_| "not UTF-8")?;
            xenolith_xlcfg::parse_domain(text).map_err(|e| format!("{e}"))?.config.name
        };
        let store = &mut self.store;
        let fail = |error| format!("xenstore: {error:?}");
        store.write(&format!("/local/domain/{id}/name"), name.as_bytes()).map_err(fail)?;
        store.write(&format!("/libxl/{id}/cfg"), cfg.as_bytes()).map_err(fail)?;
        let start = xenolith_runtime::now_ns() / 1_000_000_000;
        store
            .write(&format!("/libxl/{id}/start_time"), format!("{start}").as_bytes())
            .map_err(fail)?;
        let Some(backend) = self.console_backend() else { return Ok(()) };
        let info = self.core_info(id).ok_or("the domain is gone")?;
        let store = &mut self.store;
        let front = format!("/local/domain/{id}/console");
        let back = format!("/local/domain/{backend}/backend/console/{id}/0");
        let owned_by_backend = [
            Permission { domid: backend, access: Access::None },
            Permission { domid: id, access: Access::Read },
        ];
        let front_entries = [
            ("backend", back.clone()),
            ("backend-id", format!("{backend}")),
            ("limit", format!("{CONSOLE_LIMIT}")),
            ("type", "xenconsoled".into()),
            ("output", "pty".into()),
            ("tty", String::new()),
            ("port", format!("{}", info.console_port)),
            ("ring-ref", format!("{}", GUEST_MAGIC_BASE / 4096 + GUEST_MAGIC_CONSOLE_PFN_OFFSET)),
        ];
        let back_entries = [
            ("frontend", front.clone()),
            ("frontend-id", format!("{id}")),
            ("online", "1".into()),
            ("state", format!("{INITIALISING}")),
            ("protocol", "vt100".into()),
        ];
        for (directory, entries) in [(&front, &front_entries[..]), (&back, &back_entries[..])] {
            store.mkdir(directory).map_err(fail)?;
            store.set_perms(directory, &owned_by_backend).map_err(fail)?;
            for (key, value) in entries {
                store.write(&format!("{directory}/{key}"), value.as_bytes()).map_err(fail)?;
            }
        }
        let libxl = format!("/libxl/{id}/device/console/0");
        store.write(&format!("{libxl}/frontend"), front.as_bytes()).map_err(fail)?;
        store.write(&format!("{libxl}/backend"), back.as_bytes()).map_err(fail)?;
        Ok(())
    }

    /// Removes domain `id`'s xenstore entries (module doc): its devices' backend directories
    /// first, then its console's, its home, and libxl's records last (what a restarted control
    /// domain finds there it removes again).
    pub fn remove_records(&mut self, id: u16) {
        self.remove_device_backends(id);
        if let Some(backend) = self.console_backend() {
            let _ = self.store.rm(&format!("/local/domain/{backend}/backend/console/{id}"));
        }
        for path in [format!("/local/domain/{id}"), format!("/libxl/{id}")] {
            let _ = self.store.rm(&path);
        }
    }

    /// Writes the frontend and backend directories of `config`'s disks and vifs for new
    /// domain `id` as libxl does ([`xenolith_xl::devices`]), each device in one transaction.
    /// A backend (`backend=`, default domain 0) is a domain name or an existing domain's id.
    fn add_devices(&mut self, id: u16, config: &DomainConfig) -> Result<(), String> {
        if config.vifs.is_empty() && config.disks.is_empty() {
            return Ok(());
        }
        let lookup = self.backend_lookup();
        for device in devices::plan(id, config, lookup)? {
            self.add_device(&device)?;
        }
        Ok(())
    }

    /// Resolves a `backend=` value: a domain's name, or an existing domain's id.
    fn backend_lookup(&mut self) -> impl FnMut(&str) -> Option<u16> {
        let ids = self.ids();
        let named: Vec<(u16, String)> =
            ids.iter().map(|&other| (other, self.name(other))).collect();
        move |spec: &str| {
            if spec.bytes().all(|byte| byte.is_ascii_digit()) {
                spec.parse::<u16>().ok().filter(|other| ids.contains(other))
            } else {
                named.iter().find(|(_, name)| name == spec).map(|(other, _)| *other)
            }
        }
    }

    /// Writes one device's directories in one transaction (`libxl__device_generic_add`).
    fn add_device(&mut self, device: &devices::Device) -> Result<(), String> {
        let ops = device.generic_add();
        self.store
            .transaction(|tx| {
                for op in &ops {
                    match op {
                        StoreOp::Rm(path) => match tx.rm(path) {
                            Err(error) if error != XsError::ENOENT => return Err(error),
                            _ => {}
                        },
                        StoreOp::Mkdir(path) => tx.mkdir(path)?,
                        StoreOp::Write(path, value) => tx.write(path, value.as_bytes())?,
                        StoreOp::SetPerms(path, perms) => tx.set_perms(
                            path,
                            &[
                                Permission { domid: perms.owner, access: Access::None },
                                Permission { domid: perms.reader, access: Access::Read },
                            ],
                        )?,
                    }
                }
                Ok(())
            })
            .map_err(|error| format!("xenstore: {error}"))
    }

    /// Removes a device's backend directory and the parents it leaves empty
    /// (`libxl__xs_path_cleanup`).
    fn remove_backend(&mut self, path: &str) {
        let _ = self.store.transaction(|tx| {
            tx.rm(path)?;
            for parent in devices::cleanup_parents(path) {
                let empty = tx.read(parent).is_ok_and(|value| value.is_empty())
                    && tx.directory(parent).is_ok_and(|children| children.is_empty());
                if !empty {
                    break;
                }
                tx.rm(parent)?;
            }
            Ok(())
        });
    }

    /// Removes the backend directories of domain `id`'s vifs and vbds, found through libxl's
    /// copies (`libxl__devices_destroy`, `libxl__device_destroy`): each with
    /// `libxl__xs_path_cleanup`, which also removes the parents it leaves empty (up to the
    /// backend's home), in one transaction per device. The frontends and the copies go with
    /// the domain's home and `/libxl/<id>`.
    fn remove_device_backends(&mut self, id: u16) {
        for kind in [devices::Kind::Vif, devices::Kind::Vbd] {
            let dir = format!("/libxl/{id}/device/{}", kind.name());
            let Ok(devids) = self.store.directory(&dir) else { continue };
            for devid in devids {
                let Ok(path) = self.store.read(&format!("{dir}/{devid}/backend")) else { continue };
                let path = String::from_utf8_lossy(&path).into_owned();
                let parsed = devices::parse_backend_path(&path);
                if parsed.is_none_or(|parsed| parsed.domid != id || parsed.kind != kind.name()) {
                    continue;
                }
                self.remove_backend(&path);
            }
        }
    }

    /// Destroys domain `id`, waits until it is gone and removes its records.
    pub fn remove(&mut self, id: u16) -> bool {
        let gone = xl::destroy(id, 50_000_000).is_ok();
        self.remove_records(id);
        gone
    }

    /// xl's domain death handling for every domain this toolstack created (it has a
    /// `/libxl/<id>/cfg`) that has shut down: its configuration's action for the reason
    /// (`xenolith_xl::death`). The core keeps such a domain, shut down, until this runs: a
    /// domain that stops while no control domain serves is handled by the next incarnation.
    pub fn after_shutdowns(&mut self) {
        if self.handling_shutdowns {
            return;
        }
        self.handling_shutdowns = true;
        let mut down = Vec::new();
        hypercall::for_each_domain(|info| {
            if info.flags & XEN_DOMINF_shutdown != 0 {
                let reason = (info.flags >> XEN_DOMINF_shutdownshift) & XEN_DOMINF_shutdownmask;
                down.push((info.domain, reason));
            }
        });
        for (id, reason) in down {
            let Ok(cfg) = self.store.read(&format!("/libxl/{id}/cfg")) else { continue };
            let cfg = String::from_utf8_lossy(&cfg).into_owned();
            let Some(config) = self.domain_config(id) else { continue };
            let name = self.name(id);
            let action = xenolith_xl::death::after_shutdown(&config, reason);
            if action == AfterShutdown::Keep {
                continue;
            }
            println!("control: domain {id} ({name}) shut down (reason {reason}): {action:?}");
            if action != AfterShutdown::Destroy {
                // Recorded first: a kill from here on is finished by the next incarnation.
                let _ = self.store.write(RESTART, cfg.as_bytes());
            }
            if action == AfterShutdown::RenameRestart {
                // Kept under a new name: it is no longer the domain this configuration makes.
                let renamed = xenolith_xl::death::preserved_name(&name, id);
                let _ = self.store.write(&format!("/local/domain/{id}/name"), renamed.as_bytes());
                let _ = self.store.rm(&format!("/libxl/{id}/cfg"));
            } else {
                self.remove(id);
            }
            if action != AfterShutdown::Destroy {
                self.restart_pending();
            }
        }
        self.handling_shutdowns = false;
    }

    /// Creates the domain of the configuration [`RESTART`] names, if one is recorded and no
    /// domain of its name exists (the creation it records may have been cut short by a kill),
    /// then forgets it.
    pub fn restart_pending(&mut self) {
        let Ok(cfg) = self.store.read(RESTART) else { return };
        let cfg = String::from_utf8_lossy(&cfg).into_owned();
        if config_module(&cfg).is_some_and(|config| self.id_of(&config.name).is_none()) {
            execute(self, &format!("xl create {cfg}"));
        }
        let _ = self.store.rm(RESTART);
    }

    /// Domains came or went: the records of those gone are removed (a domain the core
    /// destroyed after it shut down).
    pub fn domains_changed(&mut self) {
        let ids = self.ids();
        let Ok(recorded) = self.store.directory("/libxl") else { return };
        for id in recorded.iter().filter_map(|name| name.parse::<u16>().ok()) {
            if !ids.contains(&id) {
                println!("control: domain {id} is gone; its records go too");
                self.remove_records(id);
            }
        }
    }
}

impl Control {
    /// Writes the device records of the boot domains whose manifest gave them `vif`s (their
    /// `<name>.cfg` module, which the host tool packs for them), once per domain: those not
    /// written yet, then `/libxl/<id>/boot-devices`, after which they are the toolstack's like
    /// any other (`xl network-detach` removes one for good). An incarnation that died before it
    /// wrote the mark leaves the rest to the next. Run when the control domain starts: boot
    /// domains are all there by then.
    pub fn boot_devices(&mut self) {
        for id in self.ids() {
            let name = self.name(id);
            let mark = format!("/libxl/{id}/boot-devices");
            if self.store.read(&format!("/libxl/{id}/cfg")).is_ok()
                || self.store.read(&mark).is_ok()
            {
                continue; // Created by `xl create`, which wrote its devices, or done already.
            }
            let Some(config) = config_module(&format!("{name}.cfg")) else { continue };
            if config.name != name || config.vifs.is_empty() {
                continue;
            }
            let lookup = self.backend_lookup();
            let planned = match devices::plan(id, &config, lookup) {
                Ok(planned) => planned,
                Err(why) => {
                    println!("control: {name}'s devices: {why}");
                    continue;
                }
            };
            for device in planned {
                let copy = format!("{}/frontend", device.libxl_path());
                if self.store.read(&copy).is_ok() {
                    continue;
                }
                match self.add_device(&device) {
                    Ok(()) => println!(
                        "control: {name}: vif {} served by domain {}",
                        device.devid, device.backend_domid
                    ),
                    Err(why) => println!("control: {name}'s vif {}: {why}", device.devid),
                }
            }
            if let Err(error) = self.store.write(&mark, b"") {
                println!("control: {name}'s devices: {mark}: {error:?}");
            }
        }
    }
}

/// The configuration in bundle module `cfg` (an xl.cfg text), if it reads and parses.
fn config_module(cfg: &str) -> Option<DomainConfig> {
    let bytes = builder::read_module(cfg).ok()?;
    Some(xenolith_xlcfg::parse_domain(core::str::from_utf8(&bytes).ok()?).ok()?.config)
}

/// A libxl failure with the sentence it would log.
fn failure(code: LibxlError, reason: impl Into<String>) -> ToolError {
    ToolError::because(code, reason)
}

/// A domctl's result as a libxl error (`-ESRCH`: no such domain).
fn domctl_result(what: &str, id: u16, result: i64) -> Result<(), ToolError> {
    match result {
        0 => Ok(()),
        -3 => Err(failure(LibxlError::DomainNotFound, format!("domain {id} not found"))),
        error => Err(failure(LibxlError::Fail, format!("{what} of domain {id} failed: {error}"))),
    }
}

/// A NUL-terminated string from a `xen_version` buffer.
fn version_string(cmd: u32, size: usize) -> String {
    let mut buffer = alloc::vec![0u8; size];
    if hypercall::xen_version(cmd, buffer.as_mut_ptr() as u64) < 0 {
        return String::new();
    }
    let end = buffer.iter().position(|&byte| byte == 0).unwrap_or(size);
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

impl Toolstack for Control {
    fn list_domains(&mut self) -> Result<Vec<DomainInfo>, ToolError> {
        let mut infos = Vec::new();
        hypercall::for_each_domain(|info| infos.push(*info));
        let mut domains = Vec::new();
        for info in infos {
            let name = self.name(info.domain);
            let mut domain = DomainInfo::from_getdomaininfo(&info, name);
            // Service domains are never stopped by `shutdown -a` (xl's `never_stop`).
            domain.never_stop |= self.core_info(info.domain).is_some_and(|i| i.capabilities != 0);
            domains.push(domain);
        }
        Ok(domains)
    }

    fn domain_config(&mut self, domid: u16) -> Option<DomainConfig> {
        let cfg = self.store.read(&format!("/libxl/{domid}/cfg")).ok()?;
        config_module(core::str::from_utf8(&cfg).ok()?)
    }

    fn vcpus(&mut self, domid: u16) -> Result<Vec<VcpuInfo>, ToolError> {
        let nr_cpus = self.physinfo()?.nr_cpus;
        let mut vcpus = Vec::new();
        for vcpu in 0.. {
            let request = xen_domctl_getvcpuinfo {
                vcpu,
                online: 0,
                blocked: 0,
                running: 0,
                _pad: 0,
                cpu_time: 0,
                cpu: 0,
                _pad2: 0,
            };
            let (result, op) =
                xl::domctl(XEN_DOMCTL_getvcpuinfo, domid, DomctlPayload::new(&request));
            if result == -22 && vcpu > 0 {
                break;
            }
            domctl_result("getvcpuinfo", domid, result)?;
            let info = op.u.read::<xen_domctl_getvcpuinfo>();
            let (hard, soft) = affinity(domid, vcpu, nr_cpus)?;
            vcpus.push(VcpuInfo {
                vcpuid: vcpu,
                cpu: info.cpu,
                online: info.online != 0,
                blocked: info.blocked != 0,
                running: info.running != 0,
                vcpu_time: info.cpu_time,
                cpumap: hard,
                cpumap_soft: soft,
            });
        }
        Ok(vcpus)
    }

    fn set_vcpu_affinity(
        &mut self,
        domid: u16,
        vcpu: u32,
        hard: Option<&CpuMap>,
        soft: Option<&CpuMap>,
    ) -> Result<(), ToolError> {
        let nr_cpus = self.physinfo()?.nr_cpus;
        let (current_hard, current_soft) = affinity(domid, vcpu, nr_cpus)?;
        let (hard, soft) = (hard.unwrap_or(&current_hard), soft.unwrap_or(&current_soft));
        let request = xen_domctl_vcpuaffinity {
            vcpu,
            flags: XEN_VCPUAFFINITY_HARD | XEN_VCPUAFFINITY_SOFT,
            cpumap_hard: bitmap(hard),
            cpumap_soft: bitmap(soft),
        };
        let result = xl::domctl(XEN_DOMCTL_setvcpuaffinity, domid, DomctlPayload::new(&request)).0;
        domctl_result("setvcpuaffinity", domid, result)
    }

    fn read_file(&mut self, path: &str) -> Result<String, ToolError> {
        let bytes = builder::read_module(path).map_err(|_| {
            failure(LibxlError::NotFound, "No such file or directory (not in the boot bundle)")
        })?;
        self.last_cfg = String::from(path);
        String::from_utf8(bytes).map_err(|_| failure(LibxlError::Inval, "not UTF-8 text"))
    }

    fn create(&mut self, config: &DomainConfig) -> Result<u16, ToolError> {
        let cfg = core::mem::take(&mut self.last_cfg);
        Control::create(self, config, &cfg).map_err(|reason| failure(LibxlError::Fail, reason))
    }

    fn destroy(&mut self, domid: u16) -> Result<(), ToolError> {
        if !self.exists(domid) {
            return Err(ToolError::new(LibxlError::DomainNotFound));
        }
        if self.remove(domid) {
            Ok(())
        } else {
            Err(failure(LibxlError::Fail, format!("domain {domid} is still there")))
        }
    }

    fn pause(&mut self, domid: u16) -> Result<(), ToolError> {
        domctl_result("pause", domid, xl::domctl(XEN_DOMCTL_pausedomain, domid, xl::empty()).0)
    }

    fn unpause(&mut self, domid: u16) -> Result<(), ToolError> {
        domctl_result("unpause", domid, xl::domctl(XEN_DOMCTL_unpausedomain, domid, xl::empty()).0)
    }

    fn shutdown(&mut self, domid: u16, kind: ShutdownKind) -> Result<(), ToolError> {
        // libxl's PV control protocol: the guest advertises `control/feature-*` and watches
        // `control/shutdown`.
        let (feature, word) = match kind {
            ShutdownKind::Poweroff => ("feature-poweroff", "poweroff"),
            ShutdownKind::Reboot => ("feature-reboot", "reboot"),
        };
        let control = format!("/local/domain/{domid}/control");
        if self.store.read(&format!("{control}/{feature}")).ok().as_deref() != Some(b"1") {
            return Err(failure(LibxlError::NoParavirt, "PV control interface not available"));
        }
        self.store
            .write(&format!("{control}/shutdown"), word.as_bytes())
            .map_err(|error| failure(LibxlError::Fail, format!("xenstore: {error:?}")))
    }

    fn wait(&mut self) {
        let _ = xenolith_runtime::events::poll(&[], xenolith_runtime::now_ns() + 100_000_000);
        // What `xl shutdown -w` waits for: a domain of its own that shut down is destroyed here.
        self.after_shutdowns();
    }

    /// Asks the console domain to give the UART's input focus to `domid`'s console: writes
    /// `<domid> <this domain>` to [`XENOLITH_CONSOLE_FOCUS_PATH`] with its permissions
    /// (`n<this domain> b<console domain>`: no guest may read or write it) in one transaction,
    /// and returns. The console domain announces the move; one Ctrl-] gives the focus back
    /// here. `xenolith_xl::run` has refused every console but PV console 0 (the one the console
    /// domain serves, to every domain but itself that has a console port): a domain without
    /// it, or a system without a console domain, is [`LibxlError::NotFound`].
    fn console(
        &mut self,
        domid: u16,
        _console: Option<ConsoleType>,
        _number: i32,
    ) -> Result<(), ToolError> {
        let backend = self.console_backend();
        let served = self.core_info(domid).is_some_and(|info| info.console_port != 0);
        let Some(backend) = backend.filter(|&backend| served && backend != domid) else {
            return Err(ToolError::new(LibxlError::NotFound));
        };
        let request = format!("{domid} {}", self.me);
        let permissions = [
            Permission { domid: self.me, access: Access::None },
            Permission { domid: backend, access: Access::Both },
        ];
        self.store
            .transaction(|tx| {
                tx.write(XENOLITH_CONSOLE_FOCUS_PATH, request.as_bytes())?;
                tx.set_perms(XENOLITH_CONSOLE_FOCUS_PATH, &permissions)
            })
            .map_err(|error| failure(LibxlError::Fail, format!("xenstore: {error}")))
    }

    fn sched_params(&mut self, domid: u16) -> Result<SchedParams, ToolError> {
        let mut op = xen_domctl_scheduler_op::new_zeroed();
        op.sched_id = XEN_SCHEDULER_CREDIT2;
        op.cmd = XEN_DOMCTL_SCHEDOP_getinfo;
        let (result, answer) = xl::domctl(XEN_DOMCTL_scheduler_op, domid, DomctlPayload::new(&op));
        domctl_result("scheduler_op", domid, result)?;
        let credit2: xen_domctl_sched_credit2 = answer.u.read::<xen_domctl_scheduler_op>().u.read();
        Ok(SchedParams {
            sched: Scheduler::Credit2,
            weight: i32::from(credit2.weight),
            cap: i32::from(credit2.cap),
        })
    }

    fn set_sched_params(
        &mut self,
        domid: u16,
        weight: Option<u16>,
        cap: Option<u16>,
    ) -> Result<(), ToolError> {
        let current = self.sched_params(domid)?;
        let mut op = xen_domctl_scheduler_op::new_zeroed();
        op.sched_id = XEN_SCHEDULER_CREDIT2;
        op.cmd = XEN_DOMCTL_SCHEDOP_putinfo;
        op.u.write(&xen_domctl_sched_credit2 {
            weight: weight.unwrap_or(current.weight as u16),
            cap: cap.unwrap_or(current.cap as u16),
        });
        domctl_result(
            "scheduler_op",
            domid,
            xl::domctl(XEN_DOMCTL_scheduler_op, domid, DomctlPayload::new(&op)).0,
        )
    }

    fn credit2_ratelimit(&mut self) -> Result<u32, ToolError> {
        // The core's credit2 rate limit is fixed (`sched::credit2::RATELIMIT`, 1 ms).
        Ok(1000)
    }

    fn set_credit2_ratelimit(&mut self, _ratelimit_us: u32) -> Result<(), ToolError> {
        Err(failure(LibxlError::Ni, "the credit2 rate limit is fixed at 1000 us in Xenolith"))
    }

    fn physinfo(&mut self) -> Result<PhysInfo, ToolError> {
        let mut op = xen_sysctl {
            cmd: XEN_SYSCTL_physinfo,
            interface_version: 0,
            u: SysctlPayload::new(&[0u64; 16]),
        };
        match hypercall::sysctl(&mut op) {
            0 => Ok(PhysInfo::from_physinfo(&op.u.read())),
            error => Err(failure(LibxlError::Fail, format!("physinfo failed: {error}"))),
        }
    }

    fn version_info(&mut self) -> Result<VersionInfo, ToolError> {
        let version = hypercall::xen_version(ver::XENVER_version, 0);
        let mut compile = [0u8; 144];
        hypercall::xen_version(ver::XENVER_compile_info, compile.as_mut_ptr() as u64);
        let text = |bytes: &[u8]| {
            let end = bytes.iter().position(|&byte| byte == 0).unwrap_or(bytes.len());
            String::from_utf8_lossy(&bytes[..end]).into_owned()
        };
        Ok(VersionInfo {
            xen_version_major: (version >> 16) as i32,
            xen_version_minor: (version & 0xffff) as i32,
            xen_version_extra: version_string(ver::XENVER_extraversion, 16),
            compiler: text(&compile[..64]),
            compile_by: text(&compile[64..80]),
            compile_domain: text(&compile[80..112]),
            compile_date: text(&compile[112..144]),
            capabilities: version_string(ver::XENVER_capabilities, 1024),
            changeset: version_string(ver::XENVER_changeset, 64),
            virt_start: 0,
            pagesize: hypercall::xen_version(ver::XENVER_pagesize, 0) as u32,
            commandline: version_string(ver::XENVER_commandline, 1024),
            build_id: String::new(),
        })
    }

    fn node_info(&mut self) -> NodeInfo {
        NodeInfo {
            host: String::from("control"),
            release: String::from(env!("CARGO_PKG_VERSION")),
            version: String::from("xenolith control domain"),
            machine: String::from("aarch64"),
        }
    }

    fn scheduler(&mut self) -> Result<Scheduler, ToolError> {
        Ok(Scheduler::Credit2)
    }

    fn console_ring(&mut self, clear: bool) -> Result<String, ToolError> {
        // `xl dmesg` through libxl's `libxl_xen_console_read_line`: incremental reads of up to
        // 16 KiB from index 0 until one reads nothing, each clearing what it read with `-c`.
        let (mut text, mut chunk, mut index) = (Vec::new(), alloc::vec![0u8; 16 * 1024], 0);
        loop {
            match hypercall::readconsole(&mut chunk, clear, &mut index) {
                Ok(0) => return Ok(String::from_utf8_lossy(&text).into_owned()),
                Ok(count) => text.extend_from_slice(&chunk[..count]),
                Err(error) => {
                    let reason = format!("reading console ring buffer: {error}");
                    return Err(failure(LibxlError::Fail, reason));
                }
            }
        }
    }

    fn set_memory_target(&mut self, domid: u16, target_kb: u64) -> Result<(), ToolError> {
        // libxl's `libxl_set_memory_target`: the balloon driver's target in xenstore.
        let path = format!("/local/domain/{domid}/memory/target");
        self.store
            .write(&path, format!("{target_kb}").as_bytes())
            .map_err(|error| failure(LibxlError::Fail, format!("xenstore: {error:?}")))
    }

    fn uptime(&mut self, domid: u16) -> Option<u64> {
        let start = self.store.read(&format!("/libxl/{domid}/start_time")).ok()?;
        let start: u64 = core::str::from_utf8(&start).ok()?.parse().ok()?;
        Some(u64::from(self.time_of_day()).saturating_sub(start))
    }

    fn time_of_day(&mut self) -> u32 {
        (xenolith_runtime::now_ns() / 1_000_000_000) as u32
    }

    fn network_attach(&mut self, domid: u16, vif: &Vif) -> Result<(), ToolError> {
        // libxl's next free devid: one past the highest it has a copy of.
        let existing = self.store.directory(&format!("/libxl/{domid}/device/vif"));
        let next = existing
            .unwrap_or_default()
            .iter()
            .filter_map(|devid| devid.parse::<usize>().ok())
            .max()
            .map_or(0, |highest| highest + 1);
        let mut lookup = self.backend_lookup();
        let backend = vif.get("backend").unwrap_or("0");
        let device = lookup(backend)
            .ok_or_else(|| format!("backend domain `{backend}' does not exist"))
            .and_then(|backend| devices::nic(domid, next, vif, backend))
            .map_err(|why| failure(LibxlError::Fail, why))?;
        let exists = self.store.read(&device.frontend_path()).is_ok();
        if exists {
            return Err(failure(LibxlError::Fail, "device already exists in xenstore"));
        }
        self.add_device(&device).map_err(|why| failure(LibxlError::Fail, why))
    }

    fn network_detach(&mut self, domid: u16, device: &NicRef) -> Result<(), ToolError> {
        // libxl finds the device through its copy under `/libxl/<domid>/device/vif`.
        let dir = format!("/libxl/{domid}/device/vif");
        let devids = self.store.directory(&dir).unwrap_or_default();
        let found = devids.into_iter().find(|devid| match device {
            NicRef::DevId(wanted) => devid.parse::<i32>().ok() == Some(*wanted),
            NicRef::Mac(mac) => self
                .store
                .read(&format!("{dir}/{devid}/mac"))
                .is_ok_and(|value| value.eq_ignore_ascii_case(mac.as_bytes())),
        });
        let Some(devid) = found else { return Err(ToolError::new(LibxlError::NotFound)) };
        let libxl = format!("{dir}/{devid}");
        let read = |store: &mut Xenbus, key: &str| {
            store
                .read(&format!("{libxl}/{key}"))
                .ok()
                .map(|v| String::from_utf8_lossy(&v).into_owned())
        };
        let (Some(front), Some(back)) =
            (read(&mut self.store, "frontend"), read(&mut self.store, "backend"))
        else {
            return Err(ToolError::new(LibxlError::NotFound));
        };
        // `libxl__initiate_device_generic_remove`: offline and Closing, then wait (bounded)
        // for the backend to close; a backend that does not is removed anyway, as libxl does
        // after its timeout.
        let _ = self.store.transaction(|tx| {
            tx.write(&format!("{back}/online"), b"0")?;
            tx.write(
                &format!("{back}/state"),
                format!("{}", XenbusState::Closing.number()).as_bytes(),
            )
        });
        let deadline = xenolith_runtime::now_ns() + DETACH_TIMEOUT_NS;
        while xenolith_runtime::now_ns() < deadline {
            let state = self.store.read(&format!("{back}/state"));
            if state.is_ok_and(|s| XenbusState::parse(&s) == Some(XenbusState::Closed)) {
                break;
            }
            let _ = self.store.wait_watches(Some(xenolith_runtime::now_ns() + 50_000_000));
        }
        let _ = self.store.rm(&front);
        self.remove_backend(&back);
        let _ = self.store.rm(&libxl);
        Ok(())
    }
}

/// A vCPU's hard and soft affinity (`XEN_DOMCTL_getvcpuaffinity`).
fn affinity(domid: u16, vcpu: u32, nr_cpus: u32) -> Result<(CpuMap, CpuMap), ToolError> {
    let (hard, soft) = (CpuMap::new(nr_cpus), CpuMap::new(nr_cpus));
    let request = xen_domctl_vcpuaffinity {
        vcpu,
        flags: XEN_VCPUAFFINITY_HARD | XEN_VCPUAFFINITY_SOFT,
        cpumap_hard: bitmap(&hard),
        cpumap_soft: bitmap(&soft),
    };
    let result = xl::domctl(XEN_DOMCTL_getvcpuaffinity, domid, DomctlPayload::new(&request)).0;
    domctl_result("getvcpuaffinity", domid, result)?;
    Ok((hard, soft))
}

/// A `xenctl_bitmap` over `map`'s bytes (the core writes through it for a get).
fn bitmap(map: &CpuMap) -> xenctl_bitmap {
    xenctl_bitmap {
        bitmap: xenolith_abi::xen::hypercall::GuestHandle::new(map.bytes().as_ptr() as u64),
        nr_bits: map.size() * 8,
        _pad: 0,
    }
}

/// Runs one line as an xl command: what xl prints, and xl's exit status (0 on success).
pub fn run(control: &mut Control, line: &str) -> (String, u8) {
    let mut out = String::new();
    let result = xenolith_xl::parse(line).and_then(|command| {
        control.create_paused = matches!(&command, xenolith_xl::Command::Create(c) if c.paused);
        xenolith_xl::run(&command, control, &mut out)
    });
    // Whatever the command did is over: no creation is in flight any more.
    let _ = control.store.rm(INTENT);
    let status = match result {
        Ok(()) => 0,
        Err(error) => {
            out.push_str(&error.text);
            error.status
        }
    };
    (out, status)
}

/// Runs one line typed at the console as an xl command, printing what xl prints.
pub fn execute(control: &mut Control, line: &str) {
    for text in run(control, line).0.lines() {
        println!("{text}");
    }
}
