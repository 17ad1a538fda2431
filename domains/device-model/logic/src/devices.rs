//! The target's devices as the domain serves them: the UART and the virtio devices of a
//! [`Config`] on one [`Bus`], each ioreq record dispatched to its device (a virtio device with
//! the target's memory, for its queues), the interrupt lines whose level changed, the UART's
//! output, and the state a restarted model resumes from.
//!
//! Devices are registered in [`Config::windows`]'s order: the UART first (if any), then the
//! virtio-blk devices, then the virtio-net device; their names in logs are `uart`, `blk0`,
//! `blk1`, ... and `net0`. The saved state holds the virtio devices in that order.
//!
//! # Invariants
//! - No record, register access or ring content panics here (the modules underneath hold the
//!   same invariant); each refusal is handed back as a [`Logged`] for the domain to log.
//! - [`Devices::line_changes`] reports a device's line once per change, and every line once
//!   after [`Devices::new`] (a restarted model cannot know what the last one set).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use xenolith_abi::xen::ioreq::ioreq;

use crate::blk::{Block, Disk, ID_BYTES};
use crate::config::Config;
use crate::ioreq::{serve_with, Bus, DeviceId, MmioDevice, Note, Reply, Served};
use crate::memory::GuestMemory;
use crate::mmio::{Device, Fault, Transport};
use crate::net::Net;
use crate::pl011::Pl011;
use crate::state::{DecodeError, Saved};

/// One of the target's devices.
#[derive(Debug)]
pub enum Slot<K> {
    /// The SBSA/PL011 UART.
    Uart(Pl011),
    /// A virtio-blk device on virtio-mmio.
    Blk(Transport<Block<K>>),
    /// The virtio-net device (looped back) on virtio-mmio.
    Net(Transport<Net>),
}

/// What happened that the domain logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// An access answered with a remark (refused register, no device, full FIFO).
    Note(Note),
    /// A virtio device refused an access or its rings: it now needs a reset.
    Fault(Fault),
}

/// An event, the device it concerns (`None`: no device holds the address) and how many the
/// device has had so far (1 for the first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Logged {
    /// The device's id.
    pub device: Option<DeviceId>,
    /// What happened.
    pub event: Event,
    /// The device's count of events, this one included.
    pub count: u64,
}

impl Logged {
    /// Whether to log this one: the first 16 of a device, then every power of two, so a
    /// guest that hammers a refused register cannot flood the console.
    pub fn worth_logging(&self) -> bool {
        self.count <= 16 || self.count.is_power_of_two()
    }
}

/// Why the devices could not be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// A virtio-blk device is configured but no disk was given.
    NoDisk,
    /// The saved state does not fit these devices (another number of devices or queues).
    Saved(DecodeError),
}

/// The target's devices.
#[derive(Debug)]
pub struct Devices<K> {
    bus: Bus<Slot<K>>,
    names: Vec<String>,
    intids: Vec<u32>,
    /// Per device: the line level last reported (`None`: not yet).
    levels: Vec<Option<bool>>,
    /// Per device, and one more for accesses no device holds: events so far.
    counts: Vec<u64>,
}

impl<K: Disk> Devices<K> {
    /// The devices of `config`, the virtio-blk device over `disk`. With `saved` (a restarted
    /// model), each virtio device resumes by the restore rule (`crate::state`), which may
    /// serve its queues (hence `memory`); the faults that restore found are returned to log.
    pub fn new<M: GuestMemory + ?Sized>(
        config: &Config,
        disk: Option<K>,
        saved: Option<&Saved>,
        memory: &mut M,
    ) -> Result<(Self, Vec<Logged>), BuildError> {
        if !config.blk.is_empty() && disk.is_none() {
            return Err(BuildError::NoDisk);
        }
        if let Some(saved) = saved {
            if saved.devices.len() != config.blk.len() + usize::from(config.net.is_some()) {
                return Err(BuildError::Saved(DecodeError::Count));
            }
        }
        let mut devices = Self {
            bus: Bus::new(),
            names: Vec::new(),
            intids: Vec::new(),
            levels: Vec::new(),
            counts: Vec::new(),
        };
        let mut found = Vec::new();
        let mut disk = disk;
        let mut index = 0;
        for (key, base, size, intid) in config.windows() {
            let (name, slot) = if key == "xenolith.dm.uart" {
                (String::from("uart"), Slot::Uart(Pl011::new()))
            } else if key == "xenolith.dm.blk" {
                let blk = &config.blk[index];
                let Some(disk) = disk.take() else { return Err(BuildError::NoDisk) };
                let mut id = [0u8; ID_BYTES];
                let text = format!("xenolith-blk{index}");
                id[..text.len()].copy_from_slice(text.as_bytes());
                let mut block = Block::new(disk, id);
                if blk.read_only {
                    block = block.read_only();
                }
                let saved = saved.map(|saved| &saved.devices[index]);
                let transport = resume(block, saved, memory, devices.names.len(), &mut found)?;
                index += 1;
                (format!("blk{}", index - 1), Slot::Blk(transport))
            } else {
                let net = config.net.as_ref().ok_or(BuildError::Saved(DecodeError::Count))?;
                let saved = saved.map(|saved| &saved.devices[index]);
                let device = Net::new(net.mac);
                let transport = resume(device, saved, memory, devices.names.len(), &mut found)?;
                index += 1;
                (String::from("net0"), Slot::Net(transport))
            };
            // Config::parse refused overlapping and wrapping windows.
            if devices.bus.register(base, size, slot).is_err() {
                return Err(BuildError::Saved(DecodeError::Count));
            }
            devices.names.push(name);
            devices.intids.push(intid);
            devices.levels.push(None);
            devices.counts.push(0);
        }
        devices.counts.push(0);
        let logged =
            found.into_iter().map(|(device, fault)| devices.log(Some(device), Event::Fault(fault)));
        let logged = logged.collect();
        Ok((devices, logged))
    }

    /// A device's name in logs (`uart`, `blk0`, ...), or `-` for no device.
    pub fn name(&self, device: Option<DeviceId>) -> &str {
        device.and_then(|id| self.names.get(id)).map_or("-", String::as_str)
    }

    fn log(&mut self, device: Option<DeviceId>, event: Event) -> Logged {
        let index = device.unwrap_or(self.names.len()).min(self.counts.len() - 1);
        self.counts[index] += 1;
        Logged { device, event, count: self.counts[index] }
    }

    /// Serves one vCPU's record (a copy of the slot, read once): the answer to write back and
    /// anything to log.
    pub fn serve<M: GuestMemory + ?Sized>(
        &mut self,
        memory: &mut M,
        record: &ioreq,
    ) -> (Served, Option<Logged>) {
        let mut event = None;
        let served = serve_with(record, |access| {
            let Some((id, offset)) = self.bus.route(access.addr, access.size) else {
                event = Some((None, Event::Note(Note::Unclaimed)));
                return Reply::refused(Note::Unclaimed);
            };
            let width = access.size.bytes() as u8;
            let (reply, happened) = match self.bus.device_mut(id) {
                Some(Slot::Uart(uart)) => {
                    let reply = match access.write {
                        Some(value) => {
                            Reply { data: 0, note: uart.write(offset, access.size, value) }
                        }
                        None => uart.read(offset, access.size),
                    };
                    (reply, reply.note.map(Event::Note))
                }
                Some(Slot::Blk(transport)) => {
                    virtio(transport, memory, offset, width, access.write)
                }
                Some(Slot::Net(transport)) => {
                    virtio(transport, memory, offset, width, access.write)
                }
                None => (Reply::refused(Note::Unclaimed), Some(Event::Note(Note::Unclaimed))),
            };
            event = happened.map(|happened| (Some(id), happened));
            reply
        });
        let logged = event.map(|(device, event)| self.log(device, event));
        (served, logged)
    }

    /// Calls `each` with the INTID and level of every line whose level changed since it was
    /// last reported (every line, the first time).
    pub fn line_changes(&mut self, mut each: impl FnMut(u32, bool)) {
        for (id, (_, _, slot)) in self.bus.devices().enumerate() {
            let level = match slot {
                Slot::Uart(uart) => uart.level(),
                Slot::Blk(transport) => transport.interrupt_line(),
                Slot::Net(transport) => transport.interrupt_line(),
            };
            if self.levels[id] != Some(level) {
                self.levels[id] = Some(level);
                each(self.intids[id], level);
            }
        }
    }

    /// Hands the UART's pending output to `sink` while it takes bytes; how many it took.
    pub fn uart_output(&mut self, sink: impl FnMut(u8) -> bool) -> usize {
        let id = self.bus.devices().position(|(_, _, slot)| matches!(slot, Slot::Uart(_)));
        match id.and_then(|id| self.bus.device_mut(id)) {
            Some(Slot::Uart(uart)) => uart.transmit(sink),
            _ => 0,
        }
    }

    /// The devices as a new incarnation of the target finds them (the core rebuilt it: a
    /// reboot, or a crash its `on_crash` restarts): every virtio device reset as if its driver
    /// wrote 0 to `Status`, the UART at reset, every line reported again by the next
    /// [`Devices::line_changes`]; the disk's bytes stay, as a real disk's do.
    pub fn power_on(&mut self) {
        for id in 0..self.names.len() {
            match self.bus.device_mut(id) {
                Some(Slot::Uart(uart)) => *uart = Pl011::new(),
                Some(Slot::Blk(transport)) => transport.reset(),
                Some(Slot::Net(transport)) => transport.reset(),
                None => {}
            }
        }
        self.levels.iter_mut().for_each(|level| *level = None);
    }

    /// The virtio devices' state, for the preserved region.
    pub fn save(&self) -> Saved {
        let devices = self.bus.devices().filter_map(|(_, _, slot)| match slot {
            Slot::Blk(transport) => Some(transport.save()),
            Slot::Net(transport) => Some(transport.save()),
            Slot::Uart(_) => None,
        });
        Saved { devices: devices.collect() }
    }

    /// Every device's window (base, length), in registration order, for the domain to claim
    /// from the core (`XEN_DMOP_map_io_range_to_ioreq_server`).
    pub fn windows(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.bus.devices().map(|(base, length, _)| (base, length))
    }

    /// The device, by id.
    pub fn device(&self, id: DeviceId) -> Option<&Slot<K>> {
        self.bus.device(id)
    }
}

/// A virtio device's transport, new or (with `saved`) resumed by the restore rule; a fault the
/// restore found is added to `found` for device `id`.
fn resume<D: Device, M: GuestMemory + ?Sized>(
    device: D,
    saved: Option<&crate::state::SavedDevice>,
    memory: &mut M,
    id: DeviceId,
    found: &mut Vec<(DeviceId, Fault)>,
) -> Result<Transport<D>, BuildError> {
    let Some(saved) = saved else { return Ok(Transport::new(device)) };
    let (transport, fault) =
        Transport::restore(device, saved, memory).map_err(BuildError::Saved)?;
    found.extend(fault.map(|fault| (id, fault)));
    Ok(transport)
}

/// An access to a virtio device: the reply and the fault to log.
fn virtio<D: Device, M: GuestMemory + ?Sized>(
    transport: &mut Transport<D>,
    memory: &mut M,
    offset: u64,
    width: u8,
    write: Option<u64>,
) -> (Reply, Option<Event>) {
    let (data, fault) = match write {
        Some(value) => (0, transport.write(memory, offset, width, value)),
        None => transport.read(offset, width),
    };
    (Reply::value(data), fault.map(Event::Fault))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blk::{VecDisk, S_OK, T_OUT};
    use crate::config::Config;
    use crate::memory::VecMemory;
    use crate::mmio::{
        DRIVER_OK, INTERRUPT_ACK, NEEDS_RESET, QUEUE_NOTIFY, QUEUE_NUM_MAX, QUEUE_READY, STATUS,
    };
    use crate::pl011::{DR, FR, IMSC};
    use crate::test_driver::{Guest, SECTORS};
    use xenolith_abi::xen::ioreq::{
        IOREQ_READ, IOREQ_TYPE_COPY, IOREQ_WRITE, STATE_IOREQ_READY, STATE_IORESP_READY,
    };

    const UART: u64 = 0x2200_0000;
    const BLK: u64 = 0x0200_0000;
    const NET: u64 = 0x0200_0200;

    fn config() -> Config {
        Config::parse(&format!(
            "xenolith.dm.target=2 xenolith.dm.ram=0x40000000:0x400000 \
             xenolith.dm.uart={UART:#x}:37 xenolith.dm.blk={BLK:#x}:40 \
             xenolith.dm.net={NET:#x}:41"
        ))
        .unwrap()
    }

    fn record(addr: u64, size: u32, dir: u8, data: u64) -> ioreq {
        ioreq {
            addr,
            data,
            count: 1,
            size,
            vp_eport: 5,
            _pad0: 0,
            bitfield: ioreq::bitfield_of(STATE_IOREQ_READY, false, dir, false),
            r#type: IOREQ_TYPE_COPY,
        }
    }

    fn disk() -> VecDisk {
        VecDisk(alloc::vec![0; (SECTORS * 512) as usize])
    }

    /// Accesses through records reach the right device at the right offset; refusals come
    /// back with the device named and counted.
    #[test]
    fn records_reach_their_devices() {
        let mut memory = VecMemory::new(0x4000_0000, 0x40_0000);
        let (mut devices, logged) =
            Devices::new(&config(), Some(disk()), None, &mut memory).unwrap();
        assert!(logged.is_empty());
        assert_eq!(
            (devices.name(Some(0)), devices.name(Some(1)), devices.name(None)),
            ("uart", "blk0", "-")
        );
        assert_eq!(
            devices.windows().collect::<Vec<_>>(),
            [(UART, 0x1000), (BLK, 0x200), (NET, 0x200)]
        );
        assert_eq!(devices.name(Some(2)), "net0");
        // Every line is reported once at first, low.
        let mut lines = Vec::new();
        devices.line_changes(|intid, level| lines.push((intid, level)));
        assert_eq!(lines, [(37, false), (40, false), (41, false)]);
        devices.line_changes(|_, _| panic!("nothing changed"));

        let (served, logged) = devices.serve(&mut memory, &record(BLK, 4, IOREQ_READ, 0));
        assert_eq!((served.completion.unwrap().data, logged), (0x7472_6976, None));
        let (served, _) =
            devices.serve(&mut memory, &record(BLK + QUEUE_NUM_MAX, 4, IOREQ_READ, 0));
        assert_eq!(served.completion.unwrap().data, 256);
        devices.serve(&mut memory, &record(UART + DR, 1, IOREQ_WRITE, 0x4142_4344_0a4f_004b));
        let mut out = Vec::new();
        assert_eq!(
            devices.uart_output(|byte| {
                out.push(byte);
                true
            }),
            1
        );
        assert_eq!(out, b"K");
        let (served, _) = devices.serve(&mut memory, &record(UART + FR, 2, IOREQ_READ, 0));
        assert_eq!(served.completion.unwrap().bitfield & 0xf, STATE_IORESP_READY);

        // No device: all ones, noted, counted apart.
        let (served, logged) = devices.serve(&mut memory, &record(0x100_0000, 4, IOREQ_READ, 0));
        assert_eq!(served.completion.unwrap().data, 0xffff_ffff);
        assert_eq!(
            logged,
            Some(Logged { device: None, event: Event::Note(Note::Unclaimed), count: 1 })
        );
        // A write to a read-only virtio register: the device needs a reset, logged.
        let (served, logged) = devices.serve(&mut memory, &record(BLK, 4, IOREQ_WRITE, 1));
        assert!(served.completion.is_some());
        let fault = Fault::ReadOnly { offset: 0, value: 1 };
        assert_eq!(logged, Some(Logged { device: Some(1), event: Event::Fault(fault), count: 1 }));
        let (served, _) = devices.serve(&mut memory, &record(BLK + STATUS, 4, IOREQ_READ, 0));
        assert_eq!(served.completion.unwrap().data, u64::from(NEEDS_RESET));
        // A 64-bit UART access: noted on the UART.
        let (_, logged) = devices.serve(&mut memory, &record(UART + FR, 8, IOREQ_READ, 0));
        assert_eq!(
            logged.map(|l| (l.device, l.event)),
            Some((Some(0), Event::Note(Note::BadWidth)))
        );
        // The net device answers as device 1 (virtio-net).
        let device_id = crate::mmio::DEVICE_ID;
        let (served, _) = devices.serve(&mut memory, &record(NET + device_id, 4, IOREQ_READ, 0));
        assert_eq!(served.completion.unwrap().data, 1);
        assert_eq!(devices.save().devices.len(), 2);
    }

    #[test]
    fn a_blk_device_needs_its_disk_and_saved_state_must_fit() {
        let mut memory = VecMemory::new(0x4000_0000, 0x1000);
        let devices = Devices::<VecDisk>::new(&config(), None, None, &mut memory);
        assert_eq!(devices.err(), Some(BuildError::NoDisk));
        let devices = Devices::new(&config(), Some(disk()), Some(&Saved::default()), &mut memory);
        assert_eq!(devices.err(), Some(BuildError::Saved(DecodeError::Count)));
        let uart_only = Config { blk: Vec::new(), net: None, ..config() };
        let (devices, _) =
            Devices::<VecDisk>::new(&uart_only, None, Some(&Saved::default()), &mut memory)
                .unwrap();
        assert_eq!(devices.save(), Saved::default());
    }

    /// Seeded random records at and around the windows, over RAM full of random bytes (so
    /// any queue the records set up holds garbage rings): nothing panics, every `READY` record
    /// is answered, and the devices' state always encodes and decodes.
    #[test]
    fn random_records_never_panic() {
        let mut rng = crate::test_rng::Xorshift(0x0dd_ba11_cafe_f00d);
        let mut memory = VecMemory::new(0x4000_0000, 0x40_0000);
        for byte in memory.bytes.iter_mut() {
            *byte = rng.next() as u8;
        }
        let (mut devices, _) = Devices::new(&config(), Some(disk()), None, &mut memory).unwrap();
        let mut faults = 0;
        for round in 0..100_000 {
            let addr = match rng.next() % 6 {
                0 => BLK + rng.next() % 0x210,
                1 => BLK + (rng.next() % 0x40) * 4,
                2 => UART + rng.next() % 0x1010,
                3 => NET + rng.next() % 0x210,
                4 => NET + (rng.next() % 0x40) * 4,
                _ => 0x4000_0000 + rng.next() % 0x40_0000,
            };
            let size = [1, 2, 4, 8, 4, 4, 3][(rng.next() % 7) as usize];
            let dir = (rng.next() % 2) as u8;
            // Mostly plausible values: small numbers, RAM addresses, status steps.
            let data = match rng.next() % 4 {
                0 => rng.next(),
                1 => rng.next() % 16,
                2 => 0x4000_0000 + rng.next() % 0x40_0000,
                _ => [0, 1, 3, 11, 15][(rng.next() % 5) as usize],
            };
            let (served, logged) = devices.serve(&mut memory, &record(addr, size, dir, data));
            assert!(served.completion.is_some(), "round {round}");
            if matches!(logged, Some(Logged { event: Event::Fault(_), .. })) {
                faults += 1;
            }
            devices.line_changes(|_, _| {});
            devices.uart_output(|_| rng.next().is_multiple_of(2));
            // What decodes encodes the same (a queue's `signalled` is derived on restore, not
            // saved, so the decoded state need not equal the live one).
            let mut bytes = Vec::new();
            devices.save().encode(&mut bytes);
            let mut again = Vec::new();
            let decoded = Saved::decode(&bytes);
            decoded.unwrap_or_else(|e| panic!("round {round}: {e:?}")).encode(&mut again);
            assert_eq!(again, bytes, "round {round}");
        }
        assert!(faults > 100, "{faults}");
    }

    #[test]
    fn worth_logging_thins_out_repeats() {
        let logged: Vec<u64> = (1..=300)
            .filter(|&count| {
                Logged { device: None, event: Event::Note(Note::Unclaimed), count }.worth_logging()
            })
            .collect();
        let mut expected: Vec<u64> = (1..=16).collect();
        expected.extend([32, 64, 128, 256]);
        assert_eq!(logged, expected);
    }

    /// The simulated driver's guest, its blk device set up (the driver talks to a Transport
    /// directly), and devices restored from that device's saved state over the guest's memory,
    /// as a restarted model finds them; restoring logged nothing.
    fn restored() -> (Guest, Devices<VecDisk>) {
        let mut guest = Guest::new();
        let mut model = crate::test_driver::model();
        guest.probe(&mut model, u64::MAX);
        let net = Transport::new(Net::new(crate::net::DEFAULT_MAC)).save();
        let saved = Saved { devices: alloc::vec![model.save(), net] };
        let config = Config {
            ram: (crate::test_driver::RAM, crate::test_driver::RAM_SIZE as u64),
            ..config()
        };
        let (devices, logged) =
            Devices::new(&config, Some(disk()), Some(&saved), &mut guest.memory).unwrap();
        assert!(logged.is_empty());
        (guest, devices)
    }

    /// A driver through records (the simulated Linux driver's register traffic turned into
    /// ioreqs): a write completes, the line rises and falls with the acknowledgement, and a
    /// model rebuilt from the saved state over the same disk and memory goes on.
    #[test]
    fn a_driver_through_records_and_a_restart() {
        let (mut guest, mut devices) = restored();
        let mut lines = Vec::new();
        devices.line_changes(|intid, level| lines.push((intid, level)));
        // Restored with queues ready: the used-buffer interrupt is raised once.
        assert_eq!(lines, [(37, false), (40, true), (41, false)]);
        devices.serve(&mut guest.memory, &record(BLK + INTERRUPT_ACK, 4, IOREQ_WRITE, 1));
        lines.clear();
        devices.line_changes(|intid, level| lines.push((intid, level)));
        assert_eq!(lines, [(40, false)]);
        let head = guest.submit(T_OUT, 2, &[7; 512], 0, false);
        devices.serve(&mut guest.memory, &record(BLK + QUEUE_NOTIFY, 4, IOREQ_WRITE, 0));
        let completions = guest.completions();
        assert_eq!(completions.len(), 1);
        assert_eq!((completions[0].head, completions[0].status), (head, S_OK));
        lines.clear();
        devices.line_changes(|intid, level| lines.push((intid, level)));
        assert_eq!(lines, [(40, true)]);
        let (served, _) = devices.serve(&mut guest.memory, &record(BLK + STATUS, 4, IOREQ_READ, 0));
        assert_eq!(served.completion.unwrap().data as u8 & DRIVER_OK, DRIVER_OK);
        match devices.device(1) {
            Some(Slot::Blk(transport)) => {
                assert_eq!(&transport.device().disk().0[1024..1536], &[7; 512])
            }
            _ => panic!("device 1 is the blk device"),
        }
    }

    /// A target rebuilt by the core (a reboot): after `power_on` every virtio device reads as
    /// at power-on (status 0, no queue ready), the UART's interrupt mask is clear, every line
    /// is reported again (low), and the disk keeps what the last incarnation wrote.
    #[test]
    fn power_on_resets_the_devices_and_keeps_the_disk() {
        let (mut guest, mut devices) = restored();
        guest.submit(T_OUT, 2, &[9; 512], 0, false);
        devices.serve(&mut guest.memory, &record(BLK + QUEUE_NOTIFY, 4, IOREQ_WRITE, 0));
        devices.serve(&mut guest.memory, &record(UART + IMSC, 2, IOREQ_WRITE, 0x50));
        devices.line_changes(|_, _| {});

        devices.power_on();
        let read = |devices: &mut Devices<VecDisk>, memory: &mut VecMemory, addr| {
            let (served, _) = devices.serve(memory, &record(addr, 4, IOREQ_READ, 0));
            served.completion.unwrap().data
        };
        assert_eq!(read(&mut devices, &mut guest.memory, BLK + STATUS), 0);
        assert_eq!(read(&mut devices, &mut guest.memory, BLK + QUEUE_READY), 0);
        assert_eq!(read(&mut devices, &mut guest.memory, UART + IMSC), 0);
        let mut lines = Vec::new();
        devices.line_changes(|intid, level| lines.push((intid, level)));
        assert_eq!(lines, [(37, false), (40, false), (41, false)]);
        match devices.device(1) {
            Some(Slot::Blk(transport)) => {
                assert_eq!(&transport.device().disk().0[1024..1536], &[9; 512])
            }
            _ => panic!("device 1 is the blk device"),
        }
        assert_eq!(devices.save().devices[0].status, 0);
    }
}
