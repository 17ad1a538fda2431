//! The device model domain: one target guest's emulated devices, as a Xen IOREQ server (QEMU's
//! role, with `dm_restrict`: the domain holds `dm:<target>` and nothing else).
//!
//! - **Configuration**: its own `/chosen/bootargs` (`xenolith_device_model_logic::config`): the
//!   target, the target's RAM, a PL011 UART, a virtio-blk device and a virtio-net device
//!   (looped back), each a window and an SPI.
//!   A bad configuration is reported, naming the key, and the domain crashes (a manifest bug).
//! - **Start** (Xen's sequence, `xen/include/public/hvm/dm_op.h`): `XEN_DMOP_create_ioreq_server`,
//!   `XENMEM_acquire_resource` of its ioreq page at [`ioreq_page::ADDRESS`],
//!   `XEN_DMOP_map_io_range_to_ioreq_server` for every window, `XEN_DMOP_set_ioreq_server_state`,
//!   then each target vCPU's `vp_eport` bound (`EVTCHNOP_bind_interdomain`).
//! - **Serving**: on an event, each record in `STATE_IOREQ_READY` is served by the logic crate
//!   (`devices`), the state saved if it changed, the answer written and the vCPU's port
//!   signalled. A virtio notify does the requests (or loops the frames back) then and there, reaching the target's
//!   RAM through foreign mappings ([`foreign`]). Interrupt lines follow the devices
//!   (`XEN_DMOP_set_irq_level`). The UART's output goes to the hypervisor console line by
//!   line as `<target's name>: <text>`, the console domain's prefix for a guest's lines (the
//!   core puts `(dN) ` before it).
//! - **Refusals**: a hostile record, register access or ring gets the device marked
//!   `VIRTIO_CONFIG_S_NEEDS_RESET` (or the access answered all ones) and a `log::warn!` naming
//!   the device and the reason (the first 16 per device, then every power of two).
//! - **Restart**: the preserved region (`xenolith_device_model_logic::region`) holds the disk
//!   (copied from the domain's initial ramdisk on the first start) and a snapshot: the IOREQ
//!   server's id and the virtio devices' state, saved before any answer that changed it. A new
//!   incarnation checks that the server still exists (`XEN_DMOP_get_ioreq_server_info`),
//!   maps its page again, binds the ports again (they went back to unbound with the old
//!   incarnation), restores the devices by `xenolith_device_model_logic::state`'s rule (every
//!   request the guest has not seen completed is done again) and serves any record left
//!   `READY`.
//! - **The target rebuilt** (a reboot, or a crash its `on_crash` restarts; the core keeps its
//!   id and counts a new generation): its ports stop being interdomain, the core has taken
//!   this domain's mappings of the old incarnation away, and the new one waits paused for its
//!   model. The model closes its old ports, forgets its mappings, puts every device back to
//!   power-on (the disk's bytes kept, as a real disk's across a reboot), and creates, maps,
//!   enables and binds a new server as at start, which lets the target run; xl does the same by
//!   starting a new QEMU with the same disk. The snapshot names the target's generation, so a
//!   model restarted after a rebuild it did not see starts from power-on too. A target gone for
//!   good (its domain id unknown) powers the model off.
//!
//! # What it expects of the core (Xen 4.17's behaviour, `xen/common/ioreq.c`, `dm.c`, `memory.c`)
//! - `dm_op` (41) with one buffer holding a 32-byte `xen_dm_op`; the OUT fields of create,
//!   get_info and nr_vcpus copied back into it.
//! - `XENMEM_acquire_resource` (28), type ioreq server, frame `..._frame_ioreq(0)`,
//!   `frame_list` IN: this domain's frame to map the page at (Arm callers are translated).
//! - `vp_eport` written into each record once the server is enabled, an unbound port of the
//!   target that this domain may bind; back to unbound when this domain dies.
//! - A server whose emulator was restarted (same domid, next generation) still answers to it
//!   (`s->emulator` must match the new incarnation, or get_info and map_io_range are
//!   `-EPERM` and a second server would be made); `map_io_range` of a range the server already
//!   has is `-EEXIST` (taken as done); enabling an enabled server is a no-op.
//! - Foreign mappings of the target (`add_to_physmap_batch`, `gmfn_foreign`) and
//!   `remove_from_physmap` of them, at most [`foreign::SLOTS`] x 16 pages at once (the core's
//!   `MAX_FOREIGN` is 512 a domain).
//!
//! # Limits
//! - One RAM bank, one disk; UART input is not taken (the guest's console reads nothing).
//! - The UART's registers and unsent output are not preserved: a restart resets it.
//! - A model killed between creating its server and saving its id creates another on restart
//!   (Xen allows eight per target); the old one stays, idle, until the target dies.
#![cfg_attr(target_os = "none", no_std)]
#![cfg_attr(target_os = "none", no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("device-model is a bare-metal domain; build it for aarch64-unknown-none");
}

#[cfg(target_os = "none")]
mod foreign;
#[cfg(target_os = "none")]
mod ioreq_page;

#[cfg(target_os = "none")]
mod service {
    use alloc::string::String;
    use alloc::vec::Vec;
    use core::sync::atomic::{compiler_fence, Ordering};

    use xenolith_abi::xen::arch_arm::PRESERVED_REGION_BASE;
    use xenolith_abi::xen::errno::XenError;
    use xenolith_abi::xen::event_channel as ec;
    use xenolith_abi::xen::hypercall::DOMID_SELF;
    use xenolith_console_logic::line::{assemble, LineState};
    use xenolith_device_model_logic::blk::SliceDisk;
    use xenolith_device_model_logic::config::Config;
    use xenolith_device_model_logic::devices::{Devices, Event, Logged};
    use xenolith_device_model_logic::ioreq::Outcome;
    use xenolith_device_model_logic::region::{
        disk_header, disk_length, Snapshot, DISK_HEADER_BYTES, DISK_OFFSET, FORMAT, SNAPSHOT_BYTES,
    };
    use xenolith_runtime::events::{self, Port};
    use xenolith_runtime::{crash, dm, hypercall, now_ns, println, StartInfo};

    use crate::foreign::ForeignRam;
    use crate::ioreq_page::{self, IoreqPage};

    /// How long one wait for events lasts before the records are looked at anyway (ns).
    const IDLE_WAIT_NS: u64 = 100_000_000;
    /// Target vCPUs served at most (the runtime's `SCHEDOP_poll` list is built per round).
    const MAX_VCPUS: u32 = 64;

    /// Reports `what` and crashes the domain: a start the model cannot make is a
    /// configuration or hypervisor problem that a restart will not fix by itself, but the
    /// restart policy decides.
    /// The target was destroyed: nothing left to serve; the domain powers off (not a crash:
    /// a restart would find no target either).
    fn target_gone(target: u16) -> ! {
        println!("device-model: d{target} is gone: powering off");
        xenolith_runtime::power_off()
    }

    fn fail(what: core::fmt::Arguments<'_>) -> ! {
        println!("device-model: FAIL {what}");
        crash()
    }

    struct Service {
        target: u16,
        /// The target's incarnation served (the core's generation count).
        generation: u32,
        server: u16,
        devices: Devices<SliceDisk<'static>>,
        ram: ForeignRam,
        /// The server's page, once mapped for the incarnation served.
        page: Option<IoreqPage>,
        /// This domain's port for each target vCPU.
        ports: Vec<Port>,
        snapshot_area: &'static mut [u8],
        /// The snapshot as last saved.
        saved: Vec<u8>,
        newest: Option<(usize, u64)>,
        /// The target's name, the prefix of its UART lines.
        name: String,
        line: LineState,
    }

    impl Service {
        /// Saves the snapshot if it changed.
        fn save(&mut self) {
            let snapshot = Snapshot {
                target: self.target,
                server: self.server,
                generation: self.generation,
                devices: self.devices.save(),
            };
            let bytes = snapshot.encode();
            if bytes == self.saved {
                return;
            }
            match FORMAT.save_after(self.snapshot_area, &bytes, self.newest) {
                Ok(newest) => {
                    self.newest = Some(newest);
                    self.saved = bytes;
                }
                Err(error) => log::warn!("device-model: state not saved: {error}"),
            }
        }

        /// The UART's output to the console, the interrupt lines to the target, the state to
        /// the preserved region: what follows every access, before it is answered.
        fn after_access(&mut self) {
            let mut bytes = Vec::new();
            self.devices.uart_output(|byte| {
                bytes.push(byte);
                true
            });
            if !bytes.is_empty() {
                assemble(&self.name, &mut self.line, &bytes, &mut |line| {
                    hypercall::console_write(&line);
                });
            }
            let target = self.target;
            self.devices.line_changes(|intid, level| {
                if let Err(error) = dm::set_irq_level(target, intid, level) {
                    log::warn!("device-model: INTID {intid} to {level} refused: {error}");
                }
            });
            self.save();
        }

        fn log(&self, logged: Logged) {
            if !logged.worth_logging() {
                return;
            }
            let name = self.devices.name(logged.device);
            let count = logged.count;
            match logged.event {
                Event::Fault(fault) => log::warn!(
                    "device-model: d{} {name}: {fault:?}: marked as needing reset \
                     (VIRTIO_CONFIG_S_NEEDS_RESET) ({count} so far)",
                    self.target
                ),
                Event::Note(note) => {
                    log::warn!("device-model: d{} {name}: {note:?} ({count} so far)", self.target)
                }
            }
        }

        /// Serves the target's incarnation `self.generation` through IOREQ server `existing`
        /// (kept by the core across this domain's restarts) or a new one: the server's id
        /// saved before anything else is asked of it, its page mapped, every window claimed,
        /// the server enabled (which lets a target waiting for its model run), each vCPU's
        /// port bound, and every line and any output reported once.
        fn attach(&mut self, existing: Option<u16>) {
            let target = self.target;
            self.server = match existing {
                Some(server) => server,
                None => match dm::create_ioreq_server(target) {
                    Ok(server) => server,
                    Err(XenError::ESRCH) => target_gone(target),
                    Err(error) => fail(format_args!("no IOREQ server for d{target}: {error}")),
                },
            };
            let server = self.server;
            if let Err(error) = dm::acquire_ioreq_page(target, server, ioreq_page::ADDRESS / 4096) {
                fail(format_args!("server {server}'s ioreq page not mapped: {error}"));
            }
            let page = IoreqPage::mapped();
            self.page = Some(page);
            self.save();
            let windows: Vec<(u64, u64)> = self.devices.windows().collect();
            for (base, length) in windows {
                match dm::map_mmio_range(target, server, base, base + length - 1) {
                    // Claimed by the last incarnation: the server kept it.
                    Ok(()) | Err(XenError::EEXIST) => {}
                    Err(error) => {
                        fail(format_args!("MMIO {base:#x}+{length:#x} not claimed: {error}"))
                    }
                }
            }
            if let Err(error) = dm::set_ioreq_server_state(target, server, true) {
                fail(format_args!("server {server} not enabled: {error}"));
            }
            let vcpus = match dm::nr_vcpus(target) {
                Ok(vcpus) if (1..=MAX_VCPUS).contains(&vcpus) => vcpus,
                Ok(vcpus) => fail(format_args!("d{target} has {vcpus} vCPUs; at most {MAX_VCPUS}")),
                Err(error) => fail(format_args!("d{target}'s vCPU count: {error}")),
            };
            for vcpu in 0..vcpus {
                let remote = page.port(vcpu).unwrap_or(0);
                match events::bind_interdomain(target, remote) {
                    Ok(port) => self.ports.push(port),
                    Err(error) => fail(format_args!(
                        "vCPU{vcpu}'s port {remote} of d{target} not bound: {error}"
                    )),
                }
            }
            // Every line once (a restarted model does not know what the last one set), then
            // anything that arrived while no model ran.
            self.after_access();
        }

        /// The target's ports are no longer interdomain: the core destroyed its incarnation.
        /// Gone for good, this domain powers off; rebuilt (a reboot, or a crash its
        /// `on_crash` restarts), the new incarnation waits paused for its model, which serves
        /// it from power-on with the disk as the last one left it, as xl starts a new QEMU
        /// for a rebooted guest with the same disk.
        fn target_changed(&mut self) {
            let target = self.target;
            let generation = match hypercall::domain_info(target) {
                Ok(info) if info.generation != self.generation => info.generation,
                // The same incarnation, its ports closed: it is being destroyed.
                _ => target_gone(target),
            };
            for port in self.ports.drain(..) {
                let _ = port.close();
            }
            self.page = None;
            // The core took this domain's mappings of the old incarnation (its RAM and the
            // ioreq page) away with it; forget them.
            self.ram.invalidate();
            self.devices.power_on();
            self.generation = generation;
            self.attach(None);
            println!(
                "device-model: d{target} was rebuilt (generation {generation}): serving it from \
                 power-on, the disk kept (IOREQ server {})",
                self.server
            );
        }

        /// Serves every record waiting; whether there was one.
        fn serve(&mut self) -> bool {
            let mut any = false;
            let Some(page) = self.page else { return false };
            for vcpu in 0..self.ports.len() as u32 {
                let Some(record) = page.ready(vcpu) else { continue };
                any = true;
                let (served, logged) = self.devices.serve(&mut self.ram, &record);
                if let Some(logged) = logged {
                    self.log(logged);
                }
                match served.outcome {
                    Outcome::Invalidate => self.ram.invalidate(),
                    Outcome::Refused(refusal) => log::warn!(
                        "device-model: d{} vCPU{vcpu}: record refused: {refusal:?}",
                        self.target
                    ),
                    Outcome::Emulated { .. } => {}
                }
                self.after_access();
                if let Some(completion) = served.completion {
                    page.answer(vcpu, completion);
                    if let Err(error) = self.ports[vcpu as usize].send() {
                        log::warn!("device-model: vCPU{vcpu}'s port: {error}");
                    }
                }
            }
            any
        }
    }

    /// The disk: the preserved copy if there is one, else the initrd copied there first.
    fn disk(
        info: &StartInfo,
        header: &'static mut [u8],
        area: &'static mut [u8],
        region_length: usize,
    ) -> SliceDisk<'static> {
        if let Some(length) = disk_length(header, region_length) {
            println!("device-model: disk of {length} bytes kept in the preserved region");
            return SliceDisk(&mut area[..length as usize]);
        }
        let Some((start, end)) = info.initrd else {
            fail(format_args!(
                "`xenolith.dm.blk` needs a disk image as this domain's ramdisk, and it has none"
            ));
        };
        let length = end - start;
        if length > area.len() as u64 {
            fail(format_args!(
                "the {length}-byte disk image does not fit the preserved region ({} bytes \
                 after its first {DISK_OFFSET}); raise `preserved_kib`",
                area.len()
            ));
        }
        let (heap_end, _) = xenolith_runtime::free_memory();
        if start < heap_end {
            fail(format_args!(
                "the disk image at {start:#x} lies under the heap (up to {heap_end:#x}); give \
                 this domain less memory so its ramdisk stays above the heap"
            ));
        }
        // SAFETY: the core loaded the ramdisk at [start, end) in this domain's RAM (its DTB
        // says so), which the runtime identity-maps as normal memory; it lies above the heap
        // (checked above) and below the DTB, where nothing else writes.
        let image = unsafe { core::slice::from_raw_parts(start as *const u8, length as usize) };
        header[..8].fill(0);
        compiler_fence(Ordering::SeqCst);
        area[..image.len()].copy_from_slice(image);
        let fresh = disk_header(length);
        compiler_fence(Ordering::SeqCst);
        header[8..fresh.len()].copy_from_slice(&fresh[8..]);
        compiler_fence(Ordering::SeqCst);
        header[..8].copy_from_slice(&fresh[..8]);
        println!("device-model: disk of {length} bytes copied from the ramdisk");
        SliceDisk(&mut area[..length as usize])
    }

    fn main(info: &StartInfo) {
        println!("device-model: first instruction at counter {}", xenolith_runtime::started_at());
        let config = match Config::parse(info.bootargs()) {
            Ok(config) => config,
            Err(error) => fail(format_args!("bad configuration: {error}")),
        };
        let target = config.target;
        let me = match hypercall::domain_info(DOMID_SELF) {
            Ok(info) => info,
            Err(error) => fail(format_args!("no domain information ({error:?})")),
        };
        if let Err(error) = events::init() {
            fail(format_args!("events: {error:?}"));
        }
        for &(base, size) in &info.ram[..info.ram_banks] {
            if base < ForeignRam::window_end() && ioreq_page::ADDRESS < base + size {
                fail(format_args!(
                    "this domain's RAM at {base:#x} reaches the mapping windows at {:#x}; give it \
                     less memory",
                    ioreq_page::ADDRESS
                ));
            }
        }
        let needed = if config.blk.is_empty() { SNAPSHOT_BYTES } else { DISK_OFFSET };
        let region_length = me.preserved_size as usize;
        if region_length < needed {
            fail(format_args!(
                "a {region_length}-byte preserved region is too small; give it `preserved_kib` of \
                 at least {} (and room for the disk)",
                needed / 1024
            ));
        }
        // SAFETY: the core maps this domain's preserved region, `preserved_size` bytes of RAM
        // that only this domain can reach, at `PRESERVED_REGION_BASE` for its whole life; this
        // is the one reference to it.
        let region: &'static mut [u8] = unsafe {
            core::slice::from_raw_parts_mut(PRESERVED_REGION_BASE as *mut u8, region_length)
        };
        let (snapshot_area, rest) = region.split_at_mut(SNAPSHOT_BYTES);
        let newest = FORMAT.newest_slot(snapshot_area);
        let snapshot = match FORMAT.latest(snapshot_area).map(|(_, bytes)| Snapshot::decode(bytes))
        {
            Some(Ok(snapshot)) if snapshot.target == target => Some(snapshot),
            Some(Ok(snapshot)) => {
                log::warn!(
                    "device-model: a snapshot for d{}, not d{target}: ignored",
                    snapshot.target
                );
                None
            }
            Some(Err(error)) => {
                log::warn!("device-model: the snapshot does not decode ({error:?}): ignored");
                None
            }
            None => None,
        };
        // A snapshot of another incarnation of the target (rebuilt while no model ran) holds
        // neither its server nor its devices' state.
        let Ok(target_info) = hypercall::domain_info(target) else { target_gone(target) };
        let generation = target_info.generation;
        let snapshot = snapshot.filter(|snapshot| {
            let same = snapshot.generation == generation;
            if !same {
                println!(
                    "device-model: d{target} was rebuilt (generation {} -> {generation}) while \
                     no model ran: serving it from power-on, the disk kept",
                    snapshot.generation
                );
            }
            same
        });
        let disk = (!config.blk.is_empty()).then(|| {
            let (header, area) = rest.split_at_mut(DISK_HEADER_BYTES);
            disk(info, header, area, region_length)
        });

        // The devices first: a restored virtio device completes what was in flight at once.
        let mut ram = ForeignRam::new(target, config.ram);
        let saved = snapshot.as_ref().map(|snapshot| &snapshot.devices);
        let (devices, faults) = match Devices::new(&config, disk, saved, &mut ram) {
            Ok(built) => built,
            Err(error) => fail(format_args!("devices: {error:?}")),
        };

        // The server: the saved one if it still exists, else a new one.
        let existing = snapshot.as_ref().map(|snapshot| snapshot.server).filter(|&server| {
            let found = dm::ioreq_server_exists(target, server);
            if let Err(error) = found {
                log::warn!("device-model: IOREQ server {server} of d{target} is gone ({error})");
            }
            found.is_ok()
        });
        let name = target_info.name;
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        let name = core::str::from_utf8(&name[..end])
            .ok()
            .filter(|name| !name.is_empty())
            .map_or_else(|| alloc::format!("d{target}"), String::from);
        let mut service = Service {
            target,
            generation,
            server: 0,
            devices,
            ram,
            page: None,
            ports: Vec::new(),
            snapshot_area,
            saved: Vec::new(),
            newest,
            name,
            line: LineState::default(),
        };
        for logged in faults {
            service.log(logged);
        }
        service.attach(existing);
        println!(
            "device-model: serving d{target} ({} vCPUs, IOREQ server {}, restart {}, at {} ns)",
            service.ports.len(),
            service.server,
            me.restarts,
            now_ns()
        );
        loop {
            for port in &service.ports {
                port.take_pending();
            }
            // A destroyed target's page is unmapped: never read it then. (It can still go
            // between this check and the read: that crashes this domain, and its restart
            // finds the target gone, or rebuilt, as this check would.)
            let status = events::status(DOMID_SELF, service.ports[0].0);
            if status.is_ok_and(|status| status.status != ec::EVTCHNSTAT_interdomain) {
                service.target_changed();
                continue;
            }
            if service.serve() {
                continue;
            }
            let _ = events::poll(&service.ports, now_ns() + IDLE_WAIT_NS);
        }
    }

    xenolith_runtime::entry!(main);
}
