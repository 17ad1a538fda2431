//! The console domain: xenconsoled and the hypervisor console's input side as one restartable
//! service domain.
//!
//! Every domain but this one has a PV console ring (`xen/include/public/io/console.h`) at its
//! `HVM_PARAM_CONSOLE_PFN`, granted to this domain as `GNTTAB_RESERVED_CONSOLE`, with an
//! unbound port offered to it (`HVM_PARAM_CONSOLE_EVTCHN`; the core's `DOMAIN_INFO` reports it
//! as `console_port`). This domain maps each ring, binds each port, and drives
//! `xenolith-console-logic`'s [`Console`]:
//! - **output**: each domain's bytes become lines `<name>: <text>`, written to the hypervisor
//!   console with `XENOLITH_CONSOLEIO_WRITE_LINE`, each with its sequence number; `out_cons`
//!   moves only after the lines are written, and the state is saved to the preserved region
//!   before and after (the logic crate's exactly-once protocol; the core drops a repeated
//!   number);
//! - **input**: `VIRQ_CONSOLE` says the UART received bytes; `CONSOLEIO_read` takes them; Ctrl-]
//!   three times moves the focus (the core, then each domain in id order, announced on the
//!   console); bytes for a domain go into its `in` ring, bytes for the core go back to it with
//!   `XENOLITH_CONSOLEIO_KEYS`;
//! - **`xl console`**: a xenstore client (as Xen's xenconsoled is one), it watches
//!   `XENOLITH_CONSOLE_FOCUS_PATH`, consumes each request the control domain writes there and
//!   moves the focus as it asks; one Ctrl-] then gives the focus back to the control domain
//!   (`xenolith_console_logic::request`). Its xenstore requests are never waited for: it sends
//!   one, goes on serving consoles, and takes the reply when the store's event (or the
//!   100 ms wait) brings it, re-signalling a store that was restarted meanwhile; so output
//!   and input flow while xenstore is not up yet, restarting, or dead;
//! - **domains come and go**: `VIRQ_DOM_EXC` (sent when a domain is created, shut down or
//!   destroyed) makes it compare its rings with the core's domains: a new domain is connected,
//!   a destroyed one dropped, one rebuilt under its id (a new generation) connected afresh.
//!
//! A guest that breaks its ring (indexes out of range or going backwards) is disconnected alone
//! and not served again until it is rebuilt; a flooding guest gets one round budget of output
//! per round, like every other.
//!
//! # Invariants
//! - The preserved region holds the state as of the last save; nothing a round did to a page
//!   (`out_cons`, `in_prod`) is done before the save that records it, except input placement,
//!   which the page itself makes exactly-once.
//! - Each connection's page is mapped and its port bound by this incarnation.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("console is a bare-metal domain; build it for aarch64-unknown-none");
}

#[cfg(target_os = "none")]
mod service {
    use alloc::collections::BTreeMap;
    use alloc::string::String;
    use alloc::vec::Vec;
    use core::sync::atomic::{AtomicU32, Ordering};

    use xenolith_abi::xen::arch_arm::PRESERVED_REGION_BASE;
    use xenolith_abi::xen::console::CONSOLEIO_read;
    use xenolith_abi::xen::event_channel::{VIRQ_CONSOLE, VIRQ_DOM_EXC};
    use xenolith_abi::xen::grant_table::{grant_handle_t, GNTTAB_RESERVED_CONSOLE};
    use xenolith_abi::xen::hypercall::{__HYPERVISOR_console_io, DOMID_SELF};
    use xenolith_abi::xen::private::XENOLITH_CONSOLE_FOCUS_PATH;
    use xenolith_abi::xen::private::{
        XenolithDomainInfo, XENOLITH_CONSOLEIO_KEYS, XENOLITH_CONSOLEIO_WRITE_LINE,
        XENOLITH_STATE_SHUTDOWN,
    };
    use xenolith_console_logic::request::{Send, FOCUS_TOKEN};
    use xenolith_console_logic::{
        region_size, Config, Console, DomId, Focus, FocusRequest, FocusWatch, Line, RingPage,
        Routed, TakeError, UnknownDomain, MAX_NAME,
    };
    use xenolith_runtime::events::{self, Port};
    use xenolith_runtime::xenbus::{Xenbus, XsError};
    use xenolith_runtime::{grants, hypercall, now_ns, println, StartInfo};

    /// Most domain ids the core hands out (its `MAX_DOMAINS`).
    const MAX_DOMAINS: u16 = 64;
    /// How long one wait for events lasts before the rings are looked at anyway (ns).
    const IDLE_WAIT_NS: u64 = 100_000_000;
    /// How often the domains are compared with the core's even without `VIRQ_DOM_EXC` (ns).
    const RECONCILE_NS: u64 = 1_000_000_000;
    /// How long a xenstore request waits for its reply before the store is signalled again
    /// (ns): a store restarted meanwhile may have missed the notification.
    const NUDGE_NS: u64 = 100_000_000;
    /// The console logic's parameters (the preserved region must hold [`region_size`] of it).
    const CONFIG: Config =
        Config { max_domains: 16, round_budget: 512, switch_key: 0x1d /* Ctrl-] */ };

    /// A guest's console page, mapped into this domain.
    struct Page(u64);

    impl Page {
        fn index(&self, offset: usize) -> &AtomicU32 {
            // SAFETY: the page is a granted frame mapped read-write at `self.0` for as long as
            // this `Page` lives (its connection owns the mapping); `offset` is one of the four
            // 4-byte-aligned index offsets inside it (`RingPage`'s contract). The guest writes
            // it concurrently, so it is only ever accessed atomically.
            unsafe { &*((self.0 + offset as u64) as *const AtomicU32) }
        }
    }

    impl RingPage for Page {
        fn read_byte(&self, offset: usize) -> u8 {
            // SAFETY: inside the mapped page (`offset` < the interface size, `RingPage`'s
            // contract); volatile because the guest may change it at any time.
            unsafe { core::ptr::read_volatile((self.0 + offset as u64) as *const u8) }
        }

        fn write_byte(&mut self, offset: usize, value: u8) {
            // SAFETY: as in `read_byte`.
            unsafe { core::ptr::write_volatile((self.0 + offset as u64) as *mut u8, value) }
        }

        fn read_index(&self, offset: usize) -> u32 {
            self.index(offset).load(Ordering::Acquire)
        }

        fn write_index(&mut self, offset: usize, value: u32) {
            self.index(offset).store(value, Ordering::Release);
        }

        fn read_barrier(&self) {
            core::sync::atomic::fence(Ordering::Acquire);
        }

        fn write_barrier(&self) {
            core::sync::atomic::fence(Ordering::Release);
        }
    }

    /// A served domain's page and port, as mapped and bound by this incarnation.
    struct Connection {
        page: Page,
        handle: grant_handle_t,
        port: Port,
        /// The domain's incarnation when connected: a rebuilt domain has a new page.
        generation: u32,
    }

    /// The console name of a domain: its name, cut to [`MAX_NAME`] bytes, every byte that is
    /// not printable non-space ASCII replaced by `_`; `d<id>` for an empty name.
    fn console_name(id: DomId, info: &XenolithDomainInfo) -> String {
        let length = info.name.iter().position(|&byte| byte == 0).unwrap_or(info.name.len());
        let name: String = info.name[..length.min(MAX_NAME)]
            .iter()
            .map(|&byte| if (0x21..=0x7e).contains(&byte) { byte as char } else { '_' })
            .collect();
        if name.is_empty() {
            alloc::format!("d{id}")
        } else {
            name
        }
    }

    /// `console_io` command `cmd` on `bytes` (read by the core), with `extra` as the fourth
    /// argument.
    fn console_io(cmd: u32, bytes: &[u8], extra: u64) -> i64 {
        let args = [u64::from(cmd), bytes.len() as u64, bytes.as_ptr() as u64, extra, 0];
        hypercall::raw(__HYPERVISOR_console_io, args)
    }

    /// `CONSOLEIO_read` into `buffer`: how many bytes the core wrote there, or its error.
    fn console_read(buffer: &mut [u8]) -> i64 {
        let args =
            [u64::from(CONSOLEIO_read), buffer.len() as u64, buffer.as_mut_ptr() as u64, 0, 0];
        hypercall::raw(__HYPERVISOR_console_io, args)
    }

    /// The xenstore side: the watch of `xl console`'s requests, driven without ever waiting
    /// (module documentation).
    struct Store {
        bus: Xenbus,
        watch: FocusWatch,
        /// The request in flight: its `req_id`, and when it was sent or the store last
        /// signalled about it.
        in_flight: Option<(u32, u64)>,
        /// The next request, not yet sent (the ring had no room for it).
        next: Option<Send>,
    }

    impl Store {
        /// Connects to this domain's xenstore ring (which needs no store up yet) and queues
        /// the watch; `None` (logged) if this domain has no xenstore ring (a system without
        /// a xenstore domain).
        fn connect() -> Option<Self> {
            match Xenbus::connect() {
                Ok(bus) => {
                    let (watch, first) = FocusWatch::start();
                    Some(Self { bus, watch, in_flight: None, next: Some(first) })
                }
                Err(error) => {
                    println!("console: no xenstore ({error}): `xl console` is not served");
                    None
                }
            }
        }

        /// The store's port (to wait on with the others).
        fn port(&self) -> Port {
            self.bus.transport().port()
        }

        /// Takes what the store sent and sends what the watch asks next, never waiting; the
        /// requests consumed. An error means the connection is unusable (the store said so,
        /// or broke the ring).
        fn poll(&mut self) -> Result<Vec<FocusRequest>, XsError> {
            let mut requests = Vec::new();
            // Taken before the rings are read: an event sent after this wakes the next wait.
            self.port().take_pending();
            loop {
                while let Some(event) = self.bus.next_event()? {
                    if event.token == FOCUS_TOKEN {
                        // Only a watch with nothing outstanding asks for a request here.
                        if let Some(send) = self.watch.event() {
                            self.next = Some(send);
                        }
                    }
                }
                let mut progress = false;
                if let Some((req_id, _)) = self.in_flight {
                    while let Some(reply) = self.bus.try_receive()? {
                        if reply.header.req_id != req_id {
                            continue;
                        }
                        self.in_flight = None;
                        let watching = self.watch.is_watching();
                        let step = self.watch.reply(reply.kind(), &reply.payload);
                        if !watching && self.watch.is_watching() {
                            println!(
                                "console: watching {XENOLITH_CONSOLE_FOCUS_PATH}: `xl console` \
                                 moves the input focus, one Ctrl-] gives it back"
                            );
                        }
                        if let Some(notice) = step.notice {
                            log::warn!("console: {notice}");
                        }
                        requests.extend(step.request);
                        self.next = step.send;
                        progress = true;
                        break;
                    }
                }
                if self.in_flight.is_none() {
                    if let Some(send) = self.next.take() {
                        match self.bus.send_request(send.kind, send.tx_id, &send.payload) {
                            Ok(req_id) => self.in_flight = Some((req_id, now_ns())),
                            Err(XsError::RingFull) => self.next = Some(send),
                            Err(error) => return Err(error),
                        }
                    }
                }
                if !progress {
                    break;
                }
            }
            if let Some((req_id, at)) = self.in_flight {
                if now_ns() > at + NUDGE_NS {
                    self.bus.nudge();
                    self.in_flight = Some((req_id, now_ns()));
                }
            }
            Ok(requests)
        }
    }

    struct Service {
        console: Console,
        connections: BTreeMap<DomId, Connection>,
        /// Domains that broke their ring, with the generation that did: not served again until
        /// rebuilt. Not preserved: a restarted service tries once more.
        refused: BTreeMap<DomId, u32>,
        region: &'static mut [u8],
        me: DomId,
        /// A first start that has not yet given the input focus to the first guest: done by the
        /// first reconcile, before its save, so no saved state ever has the start's focus.
        choose_focus: bool,
    }

    impl Service {
        /// Saves the state to the preserved region; a failure is logged (the region is sized
        /// for [`CONFIG`], so it means a bug, and the last good snapshot stays).
        fn save(&mut self) {
            if let Err(error) = self.console.save(self.region) {
                log::error!("console: state not saved: {error:?}");
            }
        }

        /// Prints `text` as this domain's own console line (announcements and notices).
        fn announce(text: &[u8]) {
            hypercall::console_write(text);
        }

        /// Writes `lines` to the hypervisor console, each with its number.
        fn write(lines: &[Line]) {
            for line in lines {
                let answer = console_io(XENOLITH_CONSOLEIO_WRITE_LINE, &line.text, line.sequence);
                if answer < 0 {
                    log::error!("console: line {} not written ({answer})", line.sequence);
                }
            }
        }

        /// Maps `id`'s page and binds its port; `false` (logged) if the core refuses.
        fn connect(&mut self, id: DomId, info: &XenolithDomainInfo) -> bool {
            let address = grants::MAP_AREA + u64::from(id) * grants::PAGE_SIZE;
            let handle = match grants::map(id, GNTTAB_RESERVED_CONSOLE, address, false) {
                Ok(handle) => handle,
                Err(error) => {
                    log::warn!("console: d{id}: its ring cannot be mapped: {error:?}");
                    return false;
                }
            };
            let port = match events::bind_interdomain(id, info.console_port) {
                Ok(port) => port,
                Err(error) => {
                    log::warn!("console: d{id}: port {} not bound: {error:?}", info.console_port);
                    let _ = grants::unmap(address, handle);
                    return false;
                }
            };
            let page = Page(address);
            // A domain the restored state knows keeps its cursors and unfinished line.
            if self.console.name(id).is_none() {
                let name = console_name(id, info);
                if let Err(error) = self.console.add_domain(id, &name, &page) {
                    log::warn!("console: d{id} ({name}) not served: {error}");
                    let _ = port.close();
                    let _ = grants::unmap(address, handle);
                    return false;
                }
            }
            self.connections
                .insert(id, Connection { page, handle, port, generation: info.generation });
            // Whatever the guest wrote while nobody served the ring is looked at now.
            let _ = port.send();
            true
        }

        /// Stops serving `id`: its state goes, its page is unmapped, its port closed.
        fn drop_domain(&mut self, id: DomId) {
            if let Ok(Some(announcement)) = self.console.remove_domain(id) {
                Self::announce(&announcement);
            }
            if let Some(connection) = self.connections.remove(&id) {
                let _ = connection.port.close();
                let _ = grants::unmap(connection.page.0, connection.handle);
            }
        }

        /// `id` broke its ring (`why`): disconnected alone, not served again in this generation.
        fn refuse(&mut self, id: DomId, why: &dyn core::fmt::Display) {
            let name = String::from(self.console.name(id).unwrap_or("?"));
            log::warn!("console: d{id} ({name}): {why}; disconnected");
            let generation = self.connections.get(&id).map_or(0, |c| c.generation);
            self.drop_domain(id);
            self.refused.insert(id, generation);
            self.save();
        }

        /// Brings the served rings in line with the core's domains; `true` if any changed.
        fn reconcile(&mut self) -> bool {
            let mut changed = false;
            let me = self.me;
            for id in (0..MAX_DOMAINS).filter(|&id| id != me) {
                let Ok(info) = hypercall::domain_info(id) else {
                    // Destroyed: its page stays while mapped here, so what it wrote last is
                    // printed before it goes.
                    if self.console.name(id).is_some() || self.connections.contains_key(&id) {
                        self.drain(id);
                        self.drop_domain(id);
                        changed = true;
                    }
                    self.refused.remove(&id);
                    continue;
                };
                match self.connections.get(&id) {
                    Some(connection) if connection.generation == info.generation => continue,
                    Some(_) => {
                        // Rebuilt under its id: a new, empty page.
                        self.drop_domain(id);
                        changed = true;
                    }
                    None => {}
                }
                if self.refused.get(&id).is_some_and(|&bad| bad != info.generation) {
                    self.refused.remove(&id);
                }
                let dying = info.state == XENOLITH_STATE_SHUTDOWN;
                if info.console_port == 0 || self.refused.contains_key(&id) || dying {
                    if self.console.name(id).is_some() {
                        // Restored state of a domain that is gone or cannot be served.
                        self.drop_domain(id);
                        changed = true;
                    }
                    continue;
                }
                changed |= self.connect(id, &info);
            }
            if self.choose_focus {
                // Before the first save: an incarnation killed now restores no state, or this.
                self.choose_focus = false;
                self.focus_first_guest();
                changed = true;
            }
            if changed {
                self.save();
            }
            changed
        }

        /// Finishes the batch a killed incarnation left pending: writes its lines again (the
        /// core drops those it has) and commits it.
        fn finish_pending(&mut self) {
            let Some(batch) = self.console.pending() else { return };
            let Some(connection) = self.connections.get_mut(&batch.domain) else {
                self.drop_domain(batch.domain);
                return;
            };
            Self::write(&batch.lines);
            let _ = self.console.commit(batch.domain, &mut connection.page);
            let _ = connection.port.send();
            self.save();
        }

        /// Writes what is left in `id`'s ring (a whole ring's worth at most).
        fn drain(&mut self, id: DomId) {
            let rounds = (xenolith_abi::xen::console::XENCONS_OUT_SIZE / CONFIG.round_budget) + 1;
            for _ in 0..rounds {
                if !self.output_of(&[id]) {
                    return;
                }
            }
        }

        /// One round of output: at most one batch of each domain; `true` if any was written.
        fn output(&mut self) -> bool {
            let ids: Vec<DomId> = self.connections.keys().copied().collect();
            self.output_of(&ids)
        }

        /// At most one batch of each of `ids`; `true` if any was written.
        fn output_of(&mut self, ids: &[DomId]) -> bool {
            let mut any = false;
            for &id in ids {
                let Some(connection) = self.connections.get(&id) else { continue };
                let batch = match self.console.take(id, &connection.page) {
                    Ok(Some(batch)) => batch,
                    Ok(None) => continue,
                    Err(TakeError::Ring(error)) => {
                        self.refuse(id, &error);
                        continue;
                    }
                    Err(error) => {
                        log::error!("console: d{id}: {error}");
                        continue;
                    }
                };
                self.save();
                Self::write(&batch.lines);
                if let Some(connection) = self.connections.get_mut(&id) {
                    let _ = self.console.commit(id, &mut connection.page);
                    // Room in its ring: a guest waiting to write more goes on.
                    let _ = connection.port.send();
                }
                self.save();
                any = true;
            }
            any
        }

        /// Takes what was typed on the UART and routes it; `true` if any came.
        fn input(&mut self) -> bool {
            let mut buffer = [0u8; 256];
            let mut any = false;
            loop {
                let read = console_read(&mut buffer);
                if read <= 0 {
                    if read < 0 {
                        log::error!("console: CONSOLEIO_read failed ({read})");
                    }
                    break;
                }
                any = true;
                let bytes = buffer.get(..read as usize).unwrap_or(&buffer);
                for routed in self.console.input(bytes) {
                    match routed {
                        Routed::Core(keys) => {
                            for chunk in keys.chunks(256) {
                                console_io(XENOLITH_CONSOLEIO_KEYS, chunk, 0);
                            }
                        }
                        Routed::Announce(text) => Self::announce(&text),
                    }
                }
            }
            if any {
                self.save();
            }
            any
        }

        /// Moves queued input into the rings that have room; `true` if any moved.
        fn deliver(&mut self) -> bool {
            let ids: Vec<DomId> = self
                .connections
                .keys()
                .copied()
                .filter(|&id| self.console.queued_input(id) > 0)
                .collect();
            let mut any = false;
            for id in ids {
                let Some(connection) = self.connections.get_mut(&id) else { continue };
                match self.console.deliver(id, &mut connection.page) {
                    Ok(0) => {}
                    Ok(_) => {
                        let _ = connection.port.send();
                        any = true;
                    }
                    Err(error) => self.refuse(id, &error),
                }
            }
            if any {
                self.save();
            }
            any
        }

        /// Moves the focus as `request` (`xl console`) asks, announced; a target not yet
        /// connected (`xl create -c` asks as soon as the domain is built) is looked for first.
        /// A domain with no console here is ignored, logged.
        fn focus_request(&mut self, request: FocusRequest) {
            if self.console.name(request.target).is_none() {
                self.reconcile();
            }
            match self.console.request_focus(request) {
                Ok(announcement) => {
                    Self::announce(&announcement);
                    self.save();
                }
                Err(UnknownDomain(id)) => log::warn!(
                    "console: `xl console` of d{} for d{}: d{id} has no console here; ignored",
                    request.target,
                    request.requester
                ),
            }
        }

        /// At a first start, input goes to the first guest (a domain holding no capability),
        /// as Xen's goes to dom0, rather than to the core.
        fn focus_first_guest(&mut self) {
            let guest = self
                .console
                .domains()
                .find(|&id| hypercall::domain_info(id).is_ok_and(|info| info.capabilities == 0));
            if let Some(id) = guest {
                if let Ok(announcement) = self.console.set_focus(Focus::Domain(id)) {
                    Self::announce(&announcement);
                }
            }
        }
    }

    fn main(_info: &StartInfo) {
        // The boot figure of `cargo xtask bench` waits for every boot domain's line of this kind.
        println!("console: first instruction at counter {}", xenolith_runtime::started_at());
        let me = match hypercall::domain_info(DOMID_SELF) {
            Ok(info) => info,
            Err(error) => return println!("console: FAIL no domain information ({error:?})"),
        };
        let my_id = (0..MAX_DOMAINS)
            .find(|&id| {
                hypercall::domain_info(id).is_ok_and(|info| info.generation == me.generation)
            })
            .unwrap_or(0);
        if let Err(error) = events::init() {
            return println!("console: FAIL events: {error:?}");
        }
        let needed = region_size(&CONFIG);
        if (me.preserved_size as usize) < needed {
            return println!(
                "console: FAIL a {}-byte preserved region is too small; give it `preserved_kib` \
                 of at least {}",
                me.preserved_size,
                needed.div_ceil(1024)
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
        let (console, restored) = match Console::restore(CONFIG, region) {
            Ok(Some(console)) => (console, true),
            Ok(None) => (Console::new(CONFIG).expect("CONFIG is valid"), false),
            Err(error) => {
                log::error!(
                    "console: the saved state does not restore ({error:?}); starting empty"
                );
                (Console::new(CONFIG).expect("CONFIG is valid"), false)
            }
        };
        let mut service = Service {
            console,
            connections: BTreeMap::new(),
            refused: BTreeMap::new(),
            region,
            me: my_id,
            choose_focus: !restored,
        };
        // Number new lines above every line the core has written, whatever the region held.
        let last = console_io(XENOLITH_CONSOLEIO_WRITE_LINE, &[], 0);
        service.console.continue_after(last.max(0) as u64);
        let (Ok(console_virq), Ok(dom_exc)) =
            (events::bind_virq(VIRQ_CONSOLE, 0), events::bind_virq(VIRQ_DOM_EXC, 0))
        else {
            return println!("console: FAIL VIRQ_CONSOLE or VIRQ_DOM_EXC cannot be bound");
        };
        // After `events::init`: connecting finds the shared-info page mapped already.
        let mut store = Store::connect();
        service.reconcile();
        service.finish_pending();
        // `at` is virtual time: `cargo xtask bench` takes kill-to-serving downtimes from it.
        let (count, restarts, at) = (service.connections.len(), me.restarts, now_ns());
        if restored {
            println!("console: serving {count} domains again (restart {restarts}, at {at} ns)");
        } else {
            println!(
                "console: serving {count} domains (restart {restarts}, at {at} ns, fresh state); \
                 press Ctrl-] three times to move the input focus (the core, then each domain)"
            );
        }
        let mut ports: Vec<Port> = Vec::new();
        let mut reconciled_at = now_ns();
        loop {
            for connection in service.connections.values() {
                connection.port.take_pending();
            }
            console_virq.take_pending();
            if dom_exc.take_pending() || now_ns() > reconciled_at + RECONCILE_NS {
                service.reconcile();
                reconciled_at = now_ns();
            }
            let mut busy = service.input();
            if let Some(connection) = &mut store {
                match connection.poll() {
                    Ok(requests) => requests.into_iter().for_each(|r| service.focus_request(r)),
                    Err(error) => {
                        log::error!("console: xenstore: {error}; `xl console` is not served");
                        store = None;
                    }
                }
            }
            busy |= service.deliver();
            busy |= service.output();
            if busy {
                continue;
            }
            ports.clear();
            ports.extend([console_virq, dom_exc]);
            ports.extend(store.as_ref().map(Store::port));
            ports.extend(service.connections.values().map(|c| c.port).take(125));
            let _ = events::poll(&ports, now_ns() + IDLE_WAIT_NS);
        }
    }

    xenolith_runtime::entry!(main);
}
