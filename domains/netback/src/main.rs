//! The network backend domain: Xen's netback (`xen/include/public/io/netif.h`) as a small,
//! deprivileged, restartable service domain.
//!
//! - **Vifs**: the toolstack writes a vif's backend directory under this domain's home
//!   (`backend/vif/<frontend>/<devid>`, libxl's layout: `xenolith_xl::devices`). Netback
//!   watches `backend/vif`; for each new device it writes its features
//!   (`xenolith_netback_logic::frontend::BACKEND_FEATURES`) and enters `InitWait`, then
//!   watches the frontend's `state`. When the frontend is `Connected` it reads the frontend's
//!   queues (rings and ports, `FrontendConfig::read`), maps the rings, binds the ports and
//!   enters `Connected`, as Linux's netback does (`drivers/net/xen-netback/xenbus.c`). A
//!   frontend that closes is disconnected (`Closed`); one that initialises again is offered
//!   `InitWait` again; a device whose backend directory goes (the domain was destroyed, or
//!   `xl network-detach`) is dropped.
//! - **Data path** ([`vif`]): each queue's transmit ring is read with
//!   `xenolith_netback_logic::tx`'s checks and each packet's Ethernet header copied in; the
//!   switch (`xenolith_netback_logic::switch`) learns and routes by it. A packet for one vif
//!   whose frontend has buffers posted and nothing queued before it is grant-copied straight
//!   from the sender's pages into them (one copy), laid out as `xenolith_netback_logic::rx`
//!   says; any other is copied into this domain and queued on each vif it goes to, whose
//!   receive ring (queue 0) takes it when its frontend posts buffers. A frontend that breaks
//!   its rings or grants (the XSA-39, -90, -228 and -270 classes) has its vif disconnected
//!   alone (`Closing`); the others keep forwarding.
//!
//! # Limits
//! - Received packets are placed on queue 0 of a multi-queue vif (a frontend must accept any
//!   queue, `netif.h`); transmit is served on every queue.
//! - A segmentation-offload packet for a vif that did not offer `feature-gso-tcpv4` is
//!   dropped (netback does not segment); a checksum-blank packet for one that asked
//!   `feature-no-csum-offload` gets its TCP/UDP checksum completed.
//! - xenstore requests block: while the xenstore domain restarts, a change of vifs waits;
//!   connected vifs keep forwarding except during such a request.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("netback is a bare-metal domain; build it for aarch64-unknown-none");
}

#[cfg(target_os = "none")]
mod vif;

#[cfg(target_os = "none")]
mod service {
    use alloc::collections::BTreeMap;
    use alloc::format;
    use alloc::rc::Rc;
    use alloc::string::String;
    use alloc::vec::Vec;
    use core::cell::Cell;

    use xenolith_abi::xen::arch_arm::PRESERVED_REGION_BASE;
    use xenolith_abi::xen::grant_table::GNTST_okay;
    use xenolith_abi::xen::hypercall::DOMID_SELF;
    use xenolith_abi::xen::xenbus::XenbusState;
    use xenolith_netback_logic::frontend::{FrontendConfig, BACKEND_FEATURES, MAX_QUEUES};
    use xenolith_netback_logic::state::{Saved, MAX_VIFS, VERSION};
    use xenolith_netback_logic::switch::{Route, Switch, VifId};
    use xenolith_preserved::Format;
    use xenolith_runtime::events::{self, Port};
    use xenolith_runtime::netfront_wire::{format_mac, parse_mac};
    use xenolith_runtime::xenbus::{Xenbus, XsError};
    use xenolith_runtime::{hypercall, now_ns, println, StartInfo};

    use crate::vif::{self, Broken, Frame, MapSlots, Placed, Pool, TxPacket, Vif};

    /// The backend directories, relative to this domain's home.
    const BACKENDS: &str = "backend/vif";
    /// How long one wait for events lasts before the rings are looked at anyway (ns).
    const IDLE_WAIT_NS: u64 = 100_000_000;
    /// How often the devices are compared with xenstore even without a watch event (ns).
    const RESCAN_NS: u64 = 1_000_000_000;
    /// Entries of the switch's table.
    const SWITCH_CAPACITY: usize = 1024;
    /// Pages of the grant map area for rings: two per queue of every vif.
    const MAP_PAGES: u64 = 2 * 4 * MAX_VIFS as u64;
    /// The largest saved state: every vif with every queue, and a full switch table
    /// (`xenolith_netback_logic::state`'s and `switch`'s encodings).
    const MAX_STATE: usize = 12
        + MAX_VIFS
            * (14 + MAX_QUEUES as usize * (16 + 2 * (6 + 8 * crate::vif::MAX_ROUND_RESPONSES)))
        + xenolith_netback_logic::switch::FIXED
        + SWITCH_CAPACITY * xenolith_netback_logic::switch::ENTRY;
    /// The preserved region's snapshot format (`xenolith_netback_logic::state`'s payload).
    const FORMAT: Format = Format { magic: *b"XLNBSNAP", version: VERSION };

    /// A device netback is the backend of.
    struct Device {
        /// Its backend directory, relative to this domain's home.
        backend: String,
        /// Its frontend directory (the backend's `frontend` node).
        frontend: String,
        /// Its MAC (the backend's `mac` node; libxl always writes one).
        mac: [u8; 6],
        /// The state netback last wrote.
        state: XenbusState,
        /// The connection, when `Connected`.
        vif: Option<Vif>,
    }

    struct Service {
        bus: Xenbus,
        devices: BTreeMap<VifId, Device>,
        switch: Switch,
        slots: MapSlots,
        /// Set by the watches' callbacks: something under `backend/vif` or a frontend's
        /// `state` changed.
        changed: Rc<Cell<bool>>,
        /// The preserved region.
        region: &'static mut [u8],
        /// The state as last saved (a round that changed nothing saves nothing).
        saved: Vec<u8>,
        /// Large frames' buffers, used again.
        pool: Pool,
        /// The preserved region's newest snapshot (slot and sequence), as this incarnation
        /// last wrote or first found it (`Format::save_after`).
        newest: Option<(usize, u64)>,
    }

    impl Service {
        fn read(&mut self, path: &str) -> Option<String> {
            self.bus.read_string(path).ok()
        }

        /// Writes the backend's `state`, in a transaction that first reads it: a backend
        /// directory the toolstack removed meanwhile is not written again (writing would make
        /// it anew, and the device would never be seen to go). Linux's `xenbus_switch_state`
        /// (`drivers/xen/xenbus/xenbus_client.c`) reads first for the same reason.
        fn write_state(&mut self, id: VifId, new: XenbusState) {
            let Some(device) = self.devices.get_mut(&id) else { return };
            device.state = new;
            let path = format!("{}/state", device.backend);
            let value = format!("{}", new.number());
            let written = self.bus.transaction(|tx| match tx.read(&path) {
                Ok(_) => tx.write(&path, value.as_bytes()),
                Err(error) if error == XsError::ENOENT => Ok(()),
                Err(error) => Err(error),
            });
            if let Err(error) = written {
                log::warn!("netback: {path}: {error:?}");
            }
        }

        /// Compares the devices with xenstore and moves each through the handshake.
        fn scan(&mut self) {
            let mut present = Vec::new();
            // Absent is empty; any other error (the store restarting) leaves the devices as
            // they are until the next scan.
            let listed = |result: Result<Vec<String>, XsError>| match result {
                Ok(names) => Some(names),
                Err(error) if error == XsError::ENOENT => Some(Vec::new()),
                Err(_) => None,
            };
            let Some(domains) = listed(self.bus.directory(BACKENDS)) else { return };
            for domain in domains {
                let Ok(domain_id) = domain.parse::<u16>() else { continue };
                let Some(devids) = listed(self.bus.directory(&format!("{BACKENDS}/{domain}")))
                else {
                    return;
                };
                for devid in devids {
                    if let Ok(devid) = devid.parse::<u32>() {
                        present.push(VifId { domain: domain_id, devid });
                    }
                }
            }
            let gone: Vec<VifId> =
                self.devices.keys().filter(|id| !present.contains(id)).copied().collect();
            for id in gone {
                self.drop_device(id);
            }
            for id in present {
                if !self.devices.contains_key(&id) {
                    self.probe(id);
                }
                self.frontend_changed(id);
            }
        }

        /// A new device: its features, `InitWait`, and a watch on its frontend's state.
        fn probe(&mut self, id: VifId) {
            let backend = format!("{BACKENDS}/{}/{}", id.domain, id.devid);
            let frontend = self.read(&format!("{backend}/frontend"));
            let mac = self.read(&format!("{backend}/mac")).and_then(|m| parse_mac(m.as_bytes()));
            let (Some(frontend), Some(mac)) = (frontend, mac) else {
                // The toolstack writes the directory in one transaction: not there yet.
                return;
            };
            let written = self.offer(&backend);
            if let Err(error) = written {
                log::warn!("netback: {backend}: features not written: {error:?}");
                return;
            }
            self.watch_frontend(id, &frontend);
            println!(
                "netback: vif{}.{} mac {} waits for its frontend",
                id.domain,
                id.devid,
                format_mac(&mac)
            );
            self.devices.insert(
                id,
                Device { backend, frontend, mac, state: XenbusState::InitWait, vif: None },
            );
        }

        /// Watches the frontend's `state`.
        fn watch_frontend(&mut self, id: VifId, frontend: &str) {
            let changed = self.changed.clone();
            let token = format!("fe/{}/{}", id.domain, id.devid);
            let watch = format!("{frontend}/state");
            if let Err(error) = self.bus.watch(&watch, &token, move |_| changed.set(true)) {
                log::warn!("netback: {watch}: not watched: {error:?}");
            }
        }

        /// The frontend's state moved (or may have): follow it.
        fn frontend_changed(&mut self, id: VifId) {
            let Some(device) = self.devices.get(&id) else { return };
            let path = format!("{}/state", device.frontend);
            let (back, connected) = (device.state, device.vif.is_some());
            let front = self
                .read(&path)
                .and_then(|s| XenbusState::parse(s.as_bytes()))
                .unwrap_or(XenbusState::Unknown);
            match front {
                XenbusState::Connected if !connected && back == XenbusState::InitWait => {
                    self.connect(id)
                }
                XenbusState::Closing | XenbusState::Closed | XenbusState::Unknown
                    if connected || back != XenbusState::Closed =>
                {
                    if connected {
                        println!("netback: vif{}.{} closed by its frontend", id.domain, id.devid);
                    }
                    self.disconnect(id);
                    if back != XenbusState::Closed {
                        self.write_state(id, XenbusState::Closed);
                    }
                }
                XenbusState::Initialising | XenbusState::InitWait
                    if back == XenbusState::Closed =>
                {
                    self.probe_again(id);
                }
                _ => {}
            }
        }

        /// Writes the features in `backend` and enters `InitWait`, in one transaction.
        fn offer(&mut self, backend: &str) -> Result<(), XsError> {
            // As in `write_state`: a directory removed meanwhile is left removed.
            let frontend = format!("{backend}/frontend");
            self.bus.transaction(|tx| {
                tx.read(&frontend)?;
                for (key, value) in BACKEND_FEATURES {
                    tx.write(&format!("{backend}/{key}"), value.as_bytes())?;
                }
                let init_wait = format!("{}", XenbusState::InitWait.number());
                tx.write(&format!("{backend}/state"), init_wait.as_bytes())
            })
        }

        /// A frontend that closed and initialises again is offered `InitWait` again.
        fn probe_again(&mut self, id: VifId) {
            let Some(device) = self.devices.get(&id) else { return };
            let backend = device.backend.clone();
            let written = self.offer(&backend);
            if written.is_ok() {
                if let Some(device) = self.devices.get_mut(&id) {
                    device.state = XenbusState::InitWait;
                }
                println!("netback: vif{}.{} offered again to its frontend", id.domain, id.devid);
            }
        }

        fn connect(&mut self, id: VifId) {
            let Some(device) = self.devices.get(&id) else { return };
            let frontend = device.frontend.clone();
            let mac = device.mac;
            let mut store_error = None;
            let config = FrontendConfig::read(|key| {
                match self.bus.read_string(&format!("{frontend}/{key}")) {
                    Ok(value) => Some(value),
                    Err(XsError::Errno(_)) => None,
                    Err(error) => {
                        store_error = Some(error);
                        None
                    }
                }
            });
            if let Some(error) = store_error {
                return log::warn!("netback: {frontend}: {error:?}; tried again later");
            }
            let config = match config {
                Ok(config) => config,
                Err(error) => return self.fail(id, &format!("{error}")),
            };
            match Vif::connect(id, mac, config.features, &config.queues, None, &mut self.slots) {
                Ok(vif) => {
                    println!(
                        "netback: vif{}.{} connected: {} queue(s), sg {}, gso {}, csum offload {}",
                        id.domain,
                        id.devid,
                        config.queues.len(),
                        config.features.sg,
                        config.features.gso_tcpv4,
                        config.features.csum_offload
                    );
                    if let Some(device) = self.devices.get_mut(&id) {
                        device.vif = Some(vif);
                    }
                    self.write_state(id, XenbusState::Connected);
                }
                Err(Broken(why)) => self.fail(id, &why),
            }
        }

        /// The frontend cannot be served: its reason in `error/<backend>/error` and `Closing`
        /// (Linux's `xenbus_dev_fatal`).
        fn fail(&mut self, id: VifId, why: &str) {
            let vif = self.devices.get(&id).and_then(|d| d.vif.as_ref());
            if vif.is_some_and(Vif::frontend_gone) {
                // Its domain went (or closed its channel) with requests on its ring: nothing
                // to tell it; the toolstack removes the backend directory.
                println!(
                    "netback: vif{}.{} not served: its frontend is gone ({why})",
                    id.domain, id.devid
                );
                self.disconnect(id);
                return;
            }
            println!("netback: vif{}.{} disconnected: {why}", id.domain, id.devid);
            self.disconnect(id);
            if let Some(device) = self.devices.get(&id) {
                let path = format!("error/{}/error", device.backend);
                let _ = self.bus.write(&path, why.as_bytes());
            }
            self.write_state(id, XenbusState::Closing);
        }

        fn disconnect(&mut self, id: VifId) {
            if let Some(mut vif) = self.devices.get_mut(&id).and_then(|d| d.vif.take()) {
                vif.disconnect(&mut self.slots);
                self.switch.forget(id);
            }
        }

        fn drop_device(&mut self, id: VifId) {
            self.disconnect(id);
            if let Some(device) = self.devices.remove(&id) {
                let token = format!("fe/{}/{}", id.domain, id.devid);
                let _ = self.bus.unwatch(&format!("{}/state", device.frontend), &token);
                println!("netback: vif{}.{} removed", id.domain, id.devid);
            }
        }

        /// One round of the data path: every transmit ring, then every backlog. True if
        /// anything moved.
        fn forward(&mut self) -> bool {
            let mut busy = false;
            let mut broken = Vec::new();
            let ids: Vec<VifId> = self.devices.keys().copied().collect();
            for &id in &ids {
                let Some(vif) = self.devices.get_mut(&id).and_then(|d| d.vif.as_mut()) else {
                    continue;
                };
                if broken.iter().any(|(gone, _)| *gone == id) {
                    continue;
                }
                vif.take_pending();
                let mut packets = Vec::new();
                match vif.take_tx(&mut packets) {
                    Ok(moved) => busy |= moved,
                    Err(Broken(why)) => {
                        // Its packets' headers may not have come: none goes on.
                        broken.push((id, why));
                        continue;
                    }
                }
                // Sent on at once: what one vif sent is all that is in flight here.
                self.send_on(id, &packets, &mut broken);
            }
            for &id in &ids {
                let Some(vif) = self.devices.get_mut(&id).and_then(|d| d.vif.as_mut()) else {
                    continue;
                };
                match vif.receive(&mut self.pool) {
                    Ok(moved) => busy |= moved,
                    Err(Broken(why)) => broken.push((id, why)),
                }
            }
            // A vif may be named more than once (a failed copy of each of its packets): the
            // first reason stands.
            let mut failed: Vec<VifId> = Vec::new();
            for (id, why) in broken {
                if !failed.contains(&id) {
                    failed.push(id);
                    self.fail(id, &why);
                }
            }
            busy
        }

        /// Sends `from`'s packets on. A packet for one vif whose frontend has buffers posted
        /// and nothing queued before it goes straight from the sender's pages into them: one
        /// grant copy. Any other is copied in (its sender's pages into netback) and queued on
        /// each vif it goes to, which copies it out when its frontend has buffers. A vif that
        /// broke its side is pushed to `broken`.
        fn send_on(
            &mut self,
            from: VifId,
            packets: &[TxPacket],
            broken: &mut Vec<(VifId, String)>,
        ) {
            let (mut direct, mut tags, mut placed) = (Vec::new(), Vec::new(), Vec::new());
            let (mut copies, mut frames) = (Vec::new(), Vec::new());
            // Vifs that got a queued frame this round: what comes after it for them queues too.
            let mut queued: Vec<VifId> = Vec::new();
            for (index, packet) in packets.iter().enumerate() {
                let route = self.route_by(from, packet.header());
                if let Route::Unicast(to) = route {
                    let receiver = self.devices.get_mut(&to).and_then(|d| d.vif.as_mut());
                    let free = !queued.contains(&to) && !broken.iter().any(|(b, _)| *b == to);
                    if let Some(vif) = receiver.filter(|vif| free && vif.takes_directly(packet)) {
                        match vif.place_directly(packet, index, &mut direct, &mut tags, &mut placed)
                        {
                            Ok(true) => continue,
                            Ok(false) => {}
                            Err(Broken(why)) => broken.push((to, why)),
                        }
                    }
                    queued.push(to);
                }
                // A buffer the heap cannot hold drops the packet (it was answered already).
                if let Some(frame) = packet.copy_in(&mut self.pool, &mut copies) {
                    frames.push((frame, route));
                }
            }
            // Copies in fail only by the sender's doing.
            if let Err(Broken(why)) = vif::run_copies(&mut copies) {
                broken.push((from, why));
                frames.clear();
            }
            for (frame, route) in frames {
                self.deliver(frame, route);
            }
            let failed = match vif::run_copies_each(&mut direct) {
                Ok(()) => {
                    let bad = direct
                        .iter()
                        .zip(&tags)
                        .filter(|(segment, _)| segment.status != GNTST_okay);
                    let mut bad: Vec<usize> = bad.map(|(_, &tag)| tag).collect();
                    bad.dedup();
                    bad
                }
                Err(_) => (0..placed.len()).collect(),
            };
            // Which side broke a copy straight across: the sender's pieces are copied in
            // once more; if that works, the receiver's buffers were at fault.
            for tag in failed {
                let Placed { packet, to, data_responses } = &placed[tag];
                if packets[*packet].sender_intact(&mut self.pool) {
                    let why = String::from("grant copy into its receive buffers failed");
                    broken.push((*to, why));
                } else {
                    let why = String::from("grant copy of a transmitted packet failed");
                    broken.push((from, why));
                    if let Some(vif) = self.devices.get_mut(to).and_then(|d| d.vif.as_mut()) {
                        vif.spoil(data_responses);
                    }
                }
            }
        }

        /// Learns where `header`'s source is and routes by its destination.
        fn route_by(&mut self, from: VifId, header: &[u8]) -> Route {
            let mut destination = [0u8; 6];
            destination.copy_from_slice(&header[..6]);
            let mut source = [0u8; 6];
            source.copy_from_slice(&header[6..12]);
            self.switch.learn(source, from);
            let connected = self.devices.iter().filter(|(_, d)| d.vif.is_some()).map(|(id, _)| *id);
            self.switch.route(destination, from, connected)
        }

        /// Queues `frame` on the vifs `route` names (none for `Drop`).
        fn deliver(&mut self, frame: Frame, route: Route) {
            match route {
                Route::Unicast(to) => {
                    if let Some(vif) = self.devices.get_mut(&to).and_then(|d| d.vif.as_mut()) {
                        vif.enqueue(frame);
                    }
                }
                Route::Flood(targets) => {
                    for to in targets {
                        if let Some(vif) = self.devices.get_mut(&to).and_then(|d| d.vif.as_mut()) {
                            vif.enqueue(frame.clone());
                        }
                    }
                }
                Route::Drop => {}
            }
        }

        /// Saves the connected vifs, their positions and the switch if they changed since the
        /// last save. Run after every round: between rounds the rings' positions are settled
        /// (`vif`'s invariants).
        fn save(&mut self) {
            let vifs = self.devices.values().filter_map(|d| d.vif.as_ref());
            let mut state = Saved { vifs: vifs.map(Vif::saved).collect(), switch: Vec::new() };
            self.switch.encode(&mut state.switch);
            let mut bytes = Vec::with_capacity(self.saved.len());
            state.encode(&mut bytes);
            if bytes == self.saved {
                return;
            }
            match FORMAT.save_after(self.region, &bytes, self.newest) {
                Ok(newest) => {
                    self.saved = bytes;
                    self.newest = Some(newest);
                }
                Err(error) => log::error!("netback: not saved: {error}"),
            }
        }

        /// Serves again the vifs the last incarnation saved, before anything waits for
        /// xenstore: the frontends' rings and ports are mapped and bound as they were. A vif
        /// that cannot be (its frontend went, or broke its ring meanwhile) is returned, to be
        /// closed once xenstore is reachable.
        fn restore(&mut self) -> (usize, Vec<(VifId, String)>) {
            self.newest = FORMAT.newest_slot(self.region);
            let Some((_, payload)) = FORMAT.latest(self.region) else { return (0, Vec::new()) };
            let saved = match Saved::decode(payload) {
                Ok(saved) => saved,
                Err(error) => {
                    log::error!(
                        "netback: the saved state does not decode ({error:?}); fresh start"
                    );
                    return (0, Vec::new());
                }
            };
            self.saved = payload.to_vec();
            if let Ok(switch) = Switch::decode(&saved.switch) {
                self.switch = switch;
            }
            let mut failed = Vec::new();
            for vif_record in &saved.vifs {
                let id = VifId { domain: vif_record.domain, devid: vif_record.devid };
                let configs: Vec<_> = vif_record.queues.iter().map(|q| q.config).collect();
                let backend = format!("{BACKENDS}/{}/{}", id.domain, id.devid);
                let frontend = format!("/local/domain/{}/device/vif/{}", id.domain, id.devid);
                let connected = Vif::connect(
                    id,
                    vif_record.mac,
                    vif_record.features,
                    &configs,
                    Some(&vif_record.queues),
                    &mut self.slots,
                );
                // Connected as far as the store is concerned either way: a vif that failed is
                // closed once xenstore is reachable (the caller's `failed`).
                let vif = match connected {
                    Ok(vif) => Some(vif),
                    Err(Broken(why)) => {
                        failed.push((id, why));
                        None
                    }
                };
                let (mac, state) = (vif_record.mac, XenbusState::Connected);
                self.devices.insert(id, Device { backend, frontend, mac, state, vif });
            }
            (saved.vifs.len() - failed.len(), failed)
        }

        fn flush(&mut self) {
            for vif in self.devices.values_mut().filter_map(|d| d.vif.as_mut()) {
                vif.flush();
            }
        }

        fn ports(&self, into: &mut Vec<Port>) {
            into.clear();
            into.push(self.bus.transport().port());
            for vif in self.devices.values().filter_map(|d| d.vif.as_ref()) {
                into.extend(vif.ports());
            }
            into.truncate(128);
        }
    }

    /// Where netback's start is in its xenstore steps (`main`).
    enum Setup {
        /// Forget an earlier incarnation's watches; then the restored vifs' frontends are to be
        /// watched and those that could not be restored closed.
        Reset { restored: Vec<(VifId, String)>, failed: Vec<(VifId, String)> },
        /// Watch `backend/vif` and the restored frontends; close the failed vifs.
        Watch { restored: Vec<(VifId, String)>, failed: Vec<(VifId, String)> },
        /// Started: follow the watches.
        Done,
    }

    fn main(_info: &StartInfo) {
        // The boot figure of `cargo xtask bench` waits for every boot domain's line of this kind.
        println!("netback: first instruction at counter {}", xenolith_runtime::started_at());
        let me = match hypercall::domain_info(DOMID_SELF) {
            Ok(info) => info,
            Err(error) => return println!("netback: FAIL no domain information ({error:?})"),
        };
        if let Err(error) = events::init() {
            return println!("netback: FAIL events: {error:?}");
        }
        let bus = match Xenbus::connect() {
            Ok(bus) => bus,
            Err(error) => return println!("netback: FAIL no xenstore ({error})"),
        };
        if xenolith_preserved::capacity(me.preserved_size as usize) < MAX_STATE {
            return println!(
                "netback: FAIL a {}-byte preserved region is too small; give it `preserved_kib` \
                 of at least {}",
                me.preserved_size,
                (2 * (MAX_STATE + xenolith_preserved::HEADER_SIZE)).div_ceil(4096) * 4
            );
        }
        // SAFETY: the core maps this domain's preserved region, `preserved_size` bytes of RAM
        // that only this domain can reach, at `PRESERVED_REGION_BASE` for its whole life; this
        // is the one reference to it.
        let region: &'static mut [u8] = unsafe {
            core::slice::from_raw_parts_mut(
                PRESERVED_REGION_BASE as *mut u8,
                me.preserved_size as usize,
            )
        };
        let mut service = Service {
            bus,
            devices: BTreeMap::new(),
            switch: Switch::new(SWITCH_CAPACITY),
            slots: MapSlots::new(MAP_PAGES),
            changed: Rc::new(Cell::new(true)),
            region,
            saved: Vec::new(),
            pool: Pool::default(),
            newest: None,
        };
        // Forwarding resumes first; xenstore (which may be restarting too) comes after.
        let (restored, failed) = service.restore();
        // `at` is virtual time: `cargo xtask bench` takes kill-to-forwarding downtimes from it.
        println!(
            "netback: serving {restored} vifs again (restart {}, at {} ns)",
            me.restarts,
            now_ns()
        );
        // xenstore comes after forwarding: one step of it a round, each after a round of
        // forwarding, so a restarted netback forwards before it asks the store anything.
        let restored: Vec<(VifId, String)> =
            service.devices.iter().map(|(id, d)| (*id, d.frontend.clone())).collect();
        let mut steps = Setup::Reset { restored, failed };
        let mut ports = Vec::new();
        let mut scanned_at = 0;
        loop {
            let busy = service.forward();
            // The round's responses are recorded before they are written (`vif`'s invariants).
            service.save();
            service.flush();
            steps = match steps {
                Setup::Reset { restored, failed } => {
                    // Watches of an earlier incarnation are the store's to forget.
                    let _ = service.bus.reset_watches();
                    Setup::Watch { restored, failed }
                }
                Setup::Watch { restored, failed } => {
                    let changed = service.changed.clone();
                    let watched =
                        service.bus.watch(BACKENDS, "backends", move |_| changed.set(true));
                    if let Err(error) = watched {
                        return println!("netback: FAIL {BACKENDS} cannot be watched: {error:?}");
                    }
                    for (id, frontend) in restored {
                        service.watch_frontend(id, &frontend);
                    }
                    for (id, why) in failed {
                        service.fail(id, &why);
                    }
                    Setup::Done
                }
                Setup::Done => {
                    if service.bus.poll_watches().is_err() {
                        log::warn!("netback: xenstore watch events lost; rescanning");
                        service.changed.set(true);
                    }
                    if service.changed.replace(false) || now_ns() > scanned_at + RESCAN_NS {
                        service.scan();
                        scanned_at = now_ns();
                    }
                    Setup::Done
                }
            };
            if busy || !matches!(steps, Setup::Done) {
                continue;
            }
            service.ports(&mut ports);
            let _ = events::poll(&ports, now_ns() + IDLE_WAIT_NS);
        }
    }

    xenolith_runtime::entry!(main);
}
