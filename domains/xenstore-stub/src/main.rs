//! The xenstore domain: xenstored as a restartable service domain.
//!
//! It serves every domain through the ring page and event channel the core gave it
//! (`HVM_PARAM_STORE_PFN`/`_EVTCHN`, reached here through grant entry
//! `GNTTAB_RESERVED_XENSTORE` and an interdomain bind), with the protocol and database of
//! `xenolith-xenstore`. Everything it knows lives in that crate's `Store`, whose encoding is
//! committed to the preserved region ([`xenstore_stub::snapshot`]) after every batch of requests
//! and before any reply or `req_cons` of that batch is published. So when the core restarts this
//! domain (a crash, or `SCHEDOP_remote_shutdown` from the control domain), the new incarnation
//! reads the last snapshot back and carries on with the same rings: requests it had not
//! committed are read again, replies it had committed are written unless the page shows they
//! were already published ([`xenstore_stub::ring::already_published`]). Open transactions end
//! with EAGAIN.
//!
//! # Invariants
//! - Nothing a batch of requests did is visible to any guest before the snapshot holding it is
//!   committed.
//! - Each connection's `req_cons` and `rsp_prod` come from the store's snapshot, never from the
//!   guest-writable page.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("xenstore-stub is a bare-metal domain; build it for aarch64-unknown-none");
}

#[cfg(target_os = "none")]
mod stub {
    use alloc::collections::BTreeMap;
    use alloc::vec::Vec;
    use core::sync::atomic::{AtomicU32, Ordering};

    use xenolith_abi::xen::arch_arm::PRESERVED_REGION_BASE;
    use xenolith_abi::xen::domctl::{xen_domctl_getdomaininfo, XEN_INVALID_MAX_VCPU_ID};
    use xenolith_abi::xen::event_channel::VIRQ_DOM_EXC;
    use xenolith_abi::xen::grant_table::{grant_handle_t, GNTTAB_RESERVED_XENSTORE};
    use xenolith_abi::xen::hypercall::DOMID_SELF;
    use xenolith_abi::xen::private::{
        XenolithDomainInfo, XENOLITH_CAP_CONTROL, XENOLITH_STATE_SHUTDOWN,
    };
    use xenolith_abi::xen::xs_wire::{
        XENSTORE_ERROR_COMM, XENSTORE_ERROR_RINGIDX, XENSTORE_SERVER_FEATURE_ERROR, XS_ERROR_FIELD,
        XS_SERVER_FEATURES,
    };
    use xenolith_runtime::events::{self, Port};
    use xenolith_runtime::{grants, hypercall, now_ns, println, StartInfo};
    use xenolith_xenstore::{DomId, Effect, NewDomain, Quotas, Ring, Store};
    use xenstore_stub::ring::{self, RingPage};
    use xenstore_stub::snapshot::{FORMAT, MIN_REGION};

    /// Most domain ids the core hands out (its `MAX_DOMAINS`).
    const MAX_DOMAINS: u16 = 64;
    /// How long one wait for events lasts before the rings are looked at anyway (ns).
    const IDLE_WAIT_NS: u64 = 100_000_000;

    /// A guest's ring page, mapped into this domain.
    struct Page(u64);

    impl Page {
        fn at(&self, offset: usize) -> u64 {
            self.0 + offset as u64
        }
    }

    impl RingPage for Page {
        fn load_acquire(&self, offset: usize) -> u32 {
            // SAFETY: the page is a granted frame mapped read-write at `self.0` for as long as
            // this `Page` lives (the connection owns the mapping); `offset` is a 4-byte-aligned
            // index offset inside it (ring module invariant). The guest writes it concurrently,
            // so it is only ever accessed atomically.
            let index = unsafe { &*(self.at(offset) as *const AtomicU32) };
            index.load(Ordering::Acquire)
        }

        fn store_release(&self, offset: usize, value: u32) {
            // SAFETY: as in `load_acquire`.
            let index = unsafe { &*(self.at(offset) as *const AtomicU32) };
            index.store(value, Ordering::Release);
        }

        fn read(&self, offset: usize, out: &mut [u8]) {
            for (i, byte) in out.iter_mut().enumerate() {
                // SAFETY: inside the mapped page (ring module invariant); volatile because the
                // guest may change it at any time.
                *byte =
                    unsafe { core::ptr::read_volatile((self.at(offset) + i as u64) as *const u8) };
            }
        }

        fn write(&self, offset: usize, bytes: &[u8]) {
            for (i, &byte) in bytes.iter().enumerate() {
                // SAFETY: as in `read`.
                unsafe { core::ptr::write_volatile((self.at(offset) + i as u64) as *mut u8, byte) };
            }
        }
    }

    /// A served domain's ring and port, as mapped and bound by this incarnation.
    struct Connection {
        page: Page,
        handle: grant_handle_t,
        port: Port,
        /// `req_cons` last written to the page.
        published_req_cons: u32,
        /// The guest broke its ring or the protocol: no longer served.
        broken: bool,
    }

    fn name_of(info: &XenolithDomainInfo) -> &str {
        let length = info.name.iter().position(|&byte| byte == 0).unwrap_or(info.name.len());
        core::str::from_utf8(&info.name[..length]).unwrap_or("?")
    }

    /// What the store writes for domain `info` at boot (Xen's `init-dom0less` takes the same from
    /// `libxl_dominfo`): its vCPUs, its memory now (`memory/target`) and at most
    /// (`memory/static-max`), its handle, from the core's `XEN_DOMCTL_getdomaininfo` (`record`).
    fn new_domain<'a>(
        info: &'a XenolithDomainInfo,
        record: &xen_domctl_getdomaininfo,
        now_ns: u64,
    ) -> NewDomain<'a> {
        let vcpus = match record.max_vcpu_id {
            XEN_INVALID_MAX_VCPU_ID => 0,
            highest => highest.saturating_add(1),
        };
        NewDomain {
            name: name_of(info),
            privileged: info.capabilities & XENOLITH_CAP_CONTROL != 0,
            ring: Some(Ring { gfn: info.store_gfn, port: info.store_port }),
            vcpus,
            target_kib: record.tot_pages.saturating_mul(4),
            static_max_kib: record.max_pages.saturating_mul(4),
            handle: record.handle,
            generation: info.generation,
            start_time_ns: now_ns,
        }
    }

    /// The xenstore server: the store, this incarnation's mappings and the preserved region.
    struct Server {
        store: Store,
        connections: BTreeMap<DomId, Connection>,
        /// The preserved region (snapshots in [`FORMAT`]'s two slots).
        region: &'static mut [u8],
        me: u16,
        commits: u64,
        snapshot: Vec<u8>,
        /// The incarnation (the core's generation) of each domain the store holds, as this
        /// incarnation of the server first saw it: a domain restarted under its id may get its
        /// old port number back, and only the generation tells the two apart. Not persisted: a
        /// domain restarted while the server itself was down is taken for the same one.
        /// With it, how many times the core had restarted the domain then: a higher count
        /// under a new generation is the same domain restarted by its policy, not a new one.
        generations: BTreeMap<DomId, (u32, u32)>,
    }

    impl Server {
        /// Maps `domid`'s ring page and binds its port; `None` (logged) if the core refuses.
        fn connect(&mut self, domid: DomId) -> bool {
            let Some(ring) = self.store.ring(domid) else { return false };
            let address = grants::MAP_AREA + u64::from(domid) * grants::PAGE_SIZE;
            let handle = match grants::map(domid, GNTTAB_RESERVED_XENSTORE, address, false) {
                Ok(handle) => handle,
                Err(error) => {
                    log::warn!("xenstore: domain {domid}: its ring cannot be mapped: {error:?}");
                    return false;
                }
            };
            let port = match events::bind_interdomain(domid, ring.port) {
                Ok(port) => port,
                Err(error) => {
                    log::warn!(
                        "xenstore: domain {domid}: port {} cannot be bound: {error:?}",
                        ring.port
                    );
                    let _ = grants::unmap(address, handle);
                    return false;
                }
            };
            let page = Page(address);
            page.store_release(XS_SERVER_FEATURES, XENSTORE_SERVER_FEATURE_ERROR);
            let transport = self.store.transport(domid).unwrap_or_default();
            // The page's req_cons may lag what was committed (it is published after commit).
            ring::publish_req_cons(&page, transport.req_cons);
            // Replies the last incarnation already published are not written again.
            ring::skip_published(&mut self.store, domid, &page);
            self.connections.insert(
                domid,
                Connection {
                    page,
                    handle,
                    port,
                    published_req_cons: transport.req_cons,
                    broken: false,
                },
            );
            // Whatever arrived while nobody served the ring is looked at now.
            let _ = port.send();
            true
        }

        fn disconnect(&mut self, domid: DomId) {
            if let Some(connection) = self.connections.remove(&domid) {
                let _ = connection.port.close();
                let _ = grants::unmap(connection.page.0, connection.handle);
            }
        }

        /// Marks `domid`'s connection broken with a ring `error` code; it is served no more.
        fn break_connection(&mut self, domid: DomId, error: u32, why: &str) {
            if let Some(connection) = self.connections.get_mut(&domid) {
                if !connection.broken {
                    log::warn!("xenstore: domain {domid}: {why}; disconnected");
                    connection.broken = true;
                    connection.page.store_release(XS_ERROR_FIELD, error);
                    let _ = connection.port.send();
                }
            }
        }

        /// Brings the store in line with the core's domains: a domain destroyed (or rebuilt
        /// with a new port) loses its connection (`@releaseDomain`); one shut down fires
        /// `@releaseDomain` once and keeps its connection until it is destroyed; with `add_new`
        /// (a fresh store) every running domain with a xenstore port is added, and a domain
        /// rebuilt under its id is added again (its old nodes and `/vm/<uuid>` went with
        /// `domain_gone`; the new ones carry the new generation's UUID). A restored store adds
        /// nothing else: its domains' nodes are in the snapshot. `true` if the store changed.
        fn reconcile(&mut self, add_new: bool) -> bool {
            let mut changed = false;
            let me = self.me;
            for id in (0..MAX_DOMAINS).filter(|&id| id != me) {
                let known = self.store.is_connected(id);
                let Ok(info) = hypercall::domain_info(id) else {
                    if known {
                        self.disconnect(id);
                        self.store.domain_gone(id);
                        changed = true;
                    }
                    self.generations.remove(&id);
                    continue;
                };
                let (seen, restarts) =
                    *self.generations.entry(id).or_insert((info.generation, info.restarts));
                let same = self.store.ring(id).is_some_and(|ring| ring.port == info.store_port)
                    && seen == info.generation;
                if known && !same {
                    self.disconnect(id);
                    if seen != info.generation && info.restarts > restarts {
                        self.store.domain_restarted(id);
                    } else {
                        self.store.domain_gone(id);
                    }
                    changed = true;
                }
                if info.state == XENOLITH_STATE_SHUTDOWN {
                    if known && same {
                        self.store.domain_shutdown(id);
                        changed = true;
                    }
                    continue;
                }
                if info.store_port == 0 || self.store.is_connected(id) || !(add_new || known) {
                    continue;
                }
                let record = match hypercall::getdomaininfo(id) {
                    Ok(record) => record,
                    Err(error) => {
                        log::warn!("xenstore: domain {id} not added: no getdomaininfo ({error:?})");
                        continue;
                    }
                };
                match self.store.add_domain(id, &new_domain(&info, &record, now_ns())) {
                    Ok(()) => {
                        self.generations.insert(id, (info.generation, info.restarts));
                        changed = true;
                    }
                    Err(error) => log::warn!("xenstore: domain {id} not added: {error}"),
                }
            }
            changed
        }

        /// Maps and binds every connection of the store this incarnation does not serve yet;
        /// a domain whose ring or port the core refuses is dropped from the store.
        fn connect_missing(&mut self) {
            let missing: Vec<DomId> = self
                .store
                .connections()
                .filter(|domid| !self.connections.contains_key(domid))
                .collect();
            for domid in missing {
                if !self.connect(domid) {
                    self.store.domain_gone(domid);
                }
            }
        }

        /// Writes the store to the preserved region; `false` if it no longer fits a slot.
        fn commit(&mut self) -> bool {
            self.snapshot.clear();
            self.store.encode(&mut self.snapshot);
            match FORMAT.save(self.region, &self.snapshot) {
                Ok(_) => {
                    self.commits += 1;
                    true
                }
                Err(error) => {
                    log::warn!("xenstore: snapshot not committed: {error}");
                    false
                }
            }
        }

        /// Goes back to the last committed snapshot, as a restart would, without unmapping
        /// anything: replies already published are skipped, connections the rolled-back batch
        /// introduced are dropped.
        fn roll_back(&mut self) {
            let Some(store) =
                FORMAT.latest(self.region).and_then(|(_, bytes)| Store::decode(bytes).ok())
            else {
                log::error!("xenstore: the committed snapshot does not decode; keeping memory");
                return;
            };
            self.store = store;
            let stale: Vec<DomId> = self
                .connections
                .keys()
                .copied()
                .filter(|&domid| !self.store.is_connected(domid))
                .collect();
            for domid in stale {
                self.disconnect(domid);
            }
            for (&domid, connection) in &self.connections {
                ring::skip_published(&mut self.store, domid, &connection.page);
            }
            // Domains the rolled-back batch released are served again.
            self.connect_missing();
        }

        /// A batch made the store too large for the preserved region: nothing of it was
        /// published. Roll it back and take the connections one at a time; the one whose
        /// requests overflow the region is released (its nodes, watches and transactions go, as
        /// when a domain dies) and disconnected, so the others' committed state stays durable.
        fn recover_from_overflow(&mut self, buffer: &mut [u8]) {
            self.roll_back();
            let ids: Vec<DomId> = self.connections.keys().copied().collect();
            for domid in ids {
                if !self.receive_from(domid, buffer) {
                    continue;
                }
                self.effects();
                if self.commit() {
                    continue;
                }
                self.roll_back();
                self.break_connection(
                    domid,
                    XENSTORE_ERROR_COMM,
                    "its requests would overflow the preserved region; released",
                );
                self.store.domain_gone(domid);
                if !self.commit() {
                    log::error!("xenstore: the store does not fit the preserved region even so");
                }
            }
        }

        /// Reads what every connection sent; `true` if the store changed.
        fn receive(&mut self, buffer: &mut [u8]) -> bool {
            let ids: Vec<DomId> = self.connections.keys().copied().collect();
            let mut changed = false;
            for domid in ids {
                changed |= self.receive_from(domid, buffer);
            }
            changed
        }

        /// Reads what `domid` sent; `true` if the store changed.
        fn receive_from(&mut self, domid: DomId, buffer: &mut [u8]) -> bool {
            let Some(connection) = self.connections.get(&domid) else { return false };
            if connection.broken {
                return false;
            }
            let Some(mut transport) = self.store.transport(domid) else { return false };
            match ring::read_requests(&connection.page, transport.req_cons, buffer) {
                Ok(0) => false,
                Ok(count) => match self.store.receive(domid, &buffer[..count]) {
                    Ok(used) => {
                        transport.req_cons = transport.req_cons.wrapping_add(used as u32);
                        self.store.set_transport(domid, transport);
                        used > 0
                    }
                    Err(error) => {
                        let why = alloc::format!("protocol violation: {error}");
                        self.break_connection(domid, error.ring_error(), &why);
                        true
                    }
                },
                Err(error) => {
                    let why = alloc::format!("broken ring index: {error:?}");
                    self.break_connection(domid, XENSTORE_ERROR_RINGIDX, &why);
                    false
                }
            }
        }

        /// Acts on what the requests asked of the domain itself.
        fn effects(&mut self) -> bool {
            let effects = self.store.take_effects();
            let any = !effects.is_empty();
            for effect in effects {
                match effect {
                    Effect::Introduce { domid, .. } => {
                        if !self.connections.contains_key(&domid) && !self.connect(domid) {
                            self.store.domain_gone(domid);
                        }
                    }
                    Effect::Release { domid } => self.disconnect(domid),
                    Effect::Resume { .. } => {}
                    Effect::Print { text } => println!("xenstore: {text}"),
                    Effect::Logging { enabled } => {
                        println!(
                            "xenstore: request logging {}",
                            if enabled { "on" } else { "off" }
                        );
                    }
                }
            }
            any
        }

        /// Publishes consumed requests and pending replies; `true` if anything was written.
        fn publish(&mut self) -> bool {
            let mut wrote = false;
            let ids: Vec<DomId> = self.connections.keys().copied().collect();
            for domid in ids {
                let Some(transport) = self.store.transport(domid) else { continue };
                let Some(connection) = self.connections.get_mut(&domid) else { continue };
                if connection.broken {
                    continue;
                }
                let mut notify = false;
                if connection.published_req_cons != transport.req_cons {
                    ring::publish_req_cons(&connection.page, transport.req_cons);
                    connection.published_req_cons = transport.req_cons;
                    notify = true;
                }
                let output = self.store.output(domid);
                if !output.is_empty() {
                    match ring::write_replies(&connection.page, transport.rsp_prod, output) {
                        Ok(count) if count > 0 => {
                            self.store.consume_output(domid, count);
                            let mut moved = transport;
                            moved.rsp_prod = moved.rsp_prod.wrapping_add(count as u32);
                            self.store.set_transport(domid, moved);
                            notify = true;
                            wrote = true;
                        }
                        Ok(_) => {}
                        Err(error) => {
                            self.break_connection(
                                domid,
                                XENSTORE_ERROR_RINGIDX,
                                &alloc::format!("broken ring index: {error:?}"),
                            );
                            continue;
                        }
                    }
                }
                if notify {
                    if let Some(connection) = self.connections.get(&domid) {
                        let _ = connection.port.send();
                    }
                }
            }
            wrote
        }
    }

    fn main(_info: &StartInfo) {
        // The boot figure of `cargo xtask bench` waits for every boot domain's line of this kind.
        println!("xenstore-stub: first instruction at counter {}", xenolith_runtime::started_at());
        let me = match hypercall::domain_info(DOMID_SELF) {
            Ok(info) => info,
            Err(error) => {
                println!("xenstore-stub: FAIL no domain information ({error:?})");
                return;
            }
        };
        let my_id = (0..MAX_DOMAINS)
            .find(|&id| {
                hypercall::domain_info(id).is_ok_and(|info| info.generation == me.generation)
            })
            .unwrap_or(0);
        if let Err(error) = events::init() {
            println!("xenstore-stub: FAIL events: {error:?}");
            return;
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
        if region.len() < MIN_REGION {
            println!(
                "xenstore-stub: FAIL a {}-byte preserved region is too small; give it \
                 `preserved_kib` of at least 16",
                me.preserved_size
            );
            return;
        }
        let (store, restored) =
            match FORMAT.latest(region).map(|(sequence, bytes)| (sequence, Store::decode(bytes))) {
                Some((sequence, Ok(mut store))) => {
                    store.abort_transactions();
                    (store, Some(sequence))
                }
                Some((sequence, Err(error))) => {
                    log::error!(
                        "xenstore: snapshot {sequence} does not decode ({error:?}); starting empty"
                    );
                    (Store::new(Quotas::default()), None)
                }
                None => (Store::new(Quotas::default()), None),
            };
        let mut server = Server {
            store,
            connections: BTreeMap::new(),
            region,
            me: my_id,
            commits: 0,
            snapshot: Vec::new(),
            generations: BTreeMap::new(),
        };
        server.reconcile(restored.is_none());
        server.connect_missing();
        if !server.commit() {
            log::error!("xenstore: the restored store does not fit the preserved region");
        }
        let dom_exc = match events::bind_virq(VIRQ_DOM_EXC, 0) {
            Ok(port) => port,
            Err(error) => {
                println!("xenstore-stub: FAIL VIRQ_DOM_EXC: {error:?}");
                return;
            }
        };
        match restored {
            Some(sequence) => println!(
                "xenstore-stub: serving {} domains again (restart {}, snapshot {sequence}, at {} ns)",
                server.connections.len(),
                me.restarts,
                now_ns()
            ),
            None => println!(
                "xenstore-stub: serving {} domains (generation {}, fresh store)",
                server.connections.len(),
                me.generation
            ),
        }
        let mut buffer = alloc::vec![0u8; 1024];
        let mut ports: Vec<Port> = Vec::new();
        loop {
            for connection in server.connections.values() {
                connection.port.take_pending();
            }
            let mut changed = false;
            if dom_exc.take_pending() {
                changed |= server.reconcile(false);
                server.connect_missing();
            }
            changed |= server.receive(&mut buffer);
            changed |= server.effects();
            if changed && !server.commit() {
                server.recover_from_overflow(&mut buffer);
            }
            let wrote = server.publish();
            if changed || wrote {
                continue;
            }
            ports.clear();
            ports.push(dom_exc);
            ports.extend(
                server.connections.values().filter(|c| !c.broken).map(|c| c.port).take(127),
            );
            let _ = events::poll(&ports, now_ns() + IDLE_WAIT_NS);
        }
    }

    xenolith_runtime::entry!(main);
}
