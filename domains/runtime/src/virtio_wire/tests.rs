//! Host tests of the virtio console driver against a simulated virtio-mmio console device
//! ([`Device`]: the register interface of virtio 1.2 4.2.2, split queues as 2.7 says the
//! device side works, and knobs to make it misbehave).

use std::cell::RefCell;
use std::rc::Rc;

use super::*;

const POOL_BASE: u64 = 0x7ff0_0000;
const POOL_SIZE: u64 = 0x10_0000;
/// `VIRTIO_CONSOLE_F_MULTIPORT` and `VIRTIO_CONSOLE_F_EMERG_WRITE`, which QEMU offers too.
const CONSOLE_FEATURES: u64 = (1 << 1) | (1 << 2);

#[derive(Clone, Debug, Default)]
struct DeviceQueue {
    num: u32,
    desc: u64,
    driver: u64,
    device: u64,
    ready: u32,
    last_avail: u16,
    used_index: u16,
}

/// A virtio-mmio console device over a pool of memory.
struct Device {
    memory: Vec<u8>,
    magic: u32,
    version: u32,
    device_id: u32,
    features: u64,
    features_sel: u32,
    driver_features: u64,
    driver_features_sel: u32,
    status: u32,
    queue_sel: u32,
    queues: [DeviceQueue; 4],
    num_max: u32,
    interrupt_status: u32,
    /// Bytes the driver transmitted, in order.
    transmitted: Vec<u8>,
    /// Notifications per queue.
    notifications: [u32; 4],
    /// Used entries written per queue, in all.
    used_written: [u64; 4],
    // Misbehaviour.
    refuse_features: bool,
    ignore_reset: bool,
    hold_transmit: bool,
    next_bad_id: Option<u32>,
    next_bad_length: Option<u32>,
    run_ahead: bool,
}

impl Device {
    fn new() -> Self {
        Self {
            memory: vec![0xA5; POOL_SIZE as usize],
            magic: MAGIC,
            version: VERSION_MODERN,
            device_id: DEVICE_ID_CONSOLE,
            features: (1 << VIRTIO_F_VERSION_1) | CONSOLE_FEATURES,
            features_sel: 0,
            driver_features: 0,
            driver_features_sel: 0,
            status: 0,
            queue_sel: 0,
            queues: Default::default(),
            num_max: 128,
            interrupt_status: 0,
            transmitted: Vec::new(),
            notifications: [0; 4],
            used_written: [0; 4],
            refuse_features: false,
            ignore_reset: false,
            hold_transmit: false,
            next_bad_id: None,
            next_bad_length: None,
            run_ahead: false,
        }
    }

    fn at(&self, address: u64, length: usize) -> usize {
        let offset =
            address.checked_sub(POOL_BASE).expect("the driver gave an address below the pool");
        assert!(offset + length as u64 <= POOL_SIZE, "the driver gave an address past the pool");
        offset as usize
    }

    fn read(&self, address: u64, length: usize) -> &[u8] {
        let at = self.at(address, length);
        &self.memory[at..at + length]
    }

    fn write(&mut self, address: u64, bytes: &[u8]) {
        let at = self.at(address, bytes.len());
        self.memory[at..at + bytes.len()].copy_from_slice(bytes);
    }

    fn u16_at(&self, address: u64) -> u16 {
        u16::from_le_bytes(self.read(address, 2).try_into().unwrap())
    }

    fn u32_at(&self, address: u64) -> u32 {
        u32::from_le_bytes(self.read(address, 4).try_into().unwrap())
    }

    fn u64_at(&self, address: u64) -> u64 {
        u64::from_le_bytes(self.read(address, 8).try_into().unwrap())
    }

    fn reset(&mut self) {
        if self.ignore_reset {
            return;
        }
        self.status = 0;
        self.driver_features = 0;
        self.queues = Default::default();
        self.interrupt_status = 0;
    }

    /// The chain at `head` of queue `queue`: (address, length, flags) per descriptor.
    fn chain(&self, queue: usize, head: u16) -> Vec<(u64, u32, u16)> {
        let q = &self.queues[queue];
        let mut chain = Vec::new();
        let mut index = head;
        loop {
            assert!(u32::from(index) < q.num, "descriptor {index} outside the table");
            let at = q.desc + 16 * u64::from(index);
            let (address, length) = (self.u64_at(at), self.u32_at(at + 8));
            let (flags, next) = (self.u16_at(at + 12), self.u16_at(at + 14));
            chain.push((address, length, flags));
            assert!(chain.len() as u32 <= q.num, "a descriptor loop");
            if flags & VIRTQ_DESC_F_NEXT == 0 {
                return chain;
            }
            index = next;
        }
    }

    /// Takes the next available chain of `queue`.
    fn pop_avail(&mut self, queue: usize) -> Option<u16> {
        let q = &self.queues[queue];
        if q.ready == 0 || self.u16_at(q.driver + 2) == q.last_avail {
            return None;
        }
        let head = self.u16_at(q.driver + 4 + 2 * u64::from(u32::from(q.last_avail) % q.num));
        self.queues[queue].last_avail = q.last_avail.wrapping_add(1);
        Some(head)
    }

    fn push_used(&mut self, queue: usize, id: u32, length: u32) {
        let id = self.next_bad_id.take().unwrap_or(id);
        let length = self.next_bad_length.take().unwrap_or(length);
        let q = self.queues[queue].clone();
        let element = q.device + 4 + 8 * u64::from(u32::from(q.used_index) % q.num);
        self.write(element, &id.to_le_bytes());
        self.write(element + 4, &length.to_le_bytes());
        let step = if std::mem::take(&mut self.run_ahead) { 2 } else { 1 };
        let index = q.used_index.wrapping_add(step);
        self.queues[queue].used_index = index;
        self.write(q.device + 2, &index.to_le_bytes());
        self.used_written[queue] += 1;
        if self.u16_at(q.driver) & VIRTQ_AVAIL_F_NO_INTERRUPT == 0 {
            self.interrupt_status |= 1;
        }
    }

    /// Consumes everything available on the transmit queue.
    fn take_transmitted(&mut self) {
        while let Some(head) = self.pop_avail(usize::from(TRANSMIT_QUEUE)) {
            for (address, length, flags) in self.chain(usize::from(TRANSMIT_QUEUE), head) {
                assert_eq!(flags & VIRTQ_DESC_F_WRITE, 0, "a transmit buffer the device writes");
                let bytes = self.read(address, length as usize).to_vec();
                self.transmitted.extend_from_slice(&bytes);
            }
            self.push_used(usize::from(TRANSMIT_QUEUE), u32::from(head), 0);
        }
    }

    /// The host sends `bytes`: as many as the driver's receive buffers take. Returns how many.
    fn host_send(&mut self, bytes: &[u8]) -> usize {
        let mut sent = 0;
        while sent < bytes.len() {
            let Some(head) = self.pop_avail(usize::from(RECEIVE_QUEUE)) else { break };
            let mut written = 0;
            for (address, length, flags) in self.chain(usize::from(RECEIVE_QUEUE), head) {
                assert_ne!(flags & VIRTQ_DESC_F_WRITE, 0, "a receive buffer the device reads");
                let part = (bytes.len() - sent).min(length as usize);
                let chunk = bytes[sent..sent + part].to_vec();
                self.write(address, &chunk);
                sent += part;
                written += part as u32;
            }
            self.push_used(usize::from(RECEIVE_QUEUE), u32::from(head), written);
        }
        sent
    }

    fn register_read(&mut self, offset: usize) -> u32 {
        let q = self.queues.get(self.queue_sel as usize);
        match offset {
            register::MAGIC_VALUE => self.magic,
            register::VERSION => self.version,
            register::DEVICE_ID => self.device_id,
            register::DEVICE_FEATURES => (self.features >> (32 * self.features_sel.min(1))) as u32,
            register::QUEUE_NUM_MAX => q.map_or(0, |_| self.num_max),
            register::QUEUE_READY => q.map_or(0, |q| q.ready),
            register::INTERRUPT_STATUS => self.interrupt_status,
            register::STATUS => self.status,
            other => panic!("the driver read register {other:#x}"),
        }
    }

    fn register_write(&mut self, offset: usize, value: u32) {
        let sel = self.queue_sel as usize;
        let set_half = |target: &mut u64, high: bool| {
            let shift = if high { 32 } else { 0 };
            *target = (*target & !(0xffff_ffff << shift)) | (u64::from(value) << shift);
        };
        match offset {
            register::DEVICE_FEATURES_SEL => self.features_sel = value,
            register::DRIVER_FEATURES_SEL => self.driver_features_sel = value,
            register::DRIVER_FEATURES => {
                set_half(&mut self.driver_features, self.driver_features_sel == 1)
            }
            register::QUEUE_SEL => self.queue_sel = value,
            register::QUEUE_NUM => self.queues[sel].num = value,
            register::QUEUE_READY => self.queues[sel].ready = value,
            register::QUEUE_DESC_LOW | register::QUEUE_DESC_HIGH => {
                set_half(&mut self.queues[sel].desc, offset == register::QUEUE_DESC_HIGH)
            }
            register::QUEUE_DRIVER_LOW | register::QUEUE_DRIVER_HIGH => {
                set_half(&mut self.queues[sel].driver, offset == register::QUEUE_DRIVER_HIGH)
            }
            register::QUEUE_DEVICE_LOW | register::QUEUE_DEVICE_HIGH => {
                set_half(&mut self.queues[sel].device, offset == register::QUEUE_DEVICE_HIGH)
            }
            register::QUEUE_NOTIFY => {
                assert_ne!(self.status & STATUS_DRIVER_OK, 0, "a notification before DRIVER_OK");
                self.notifications[value as usize] += 1;
                if value == u32::from(TRANSMIT_QUEUE) && !self.hold_transmit {
                    self.take_transmitted();
                }
            }
            register::INTERRUPT_ACK => self.interrupt_status &= !value,
            register::STATUS if value == 0 => self.reset(),
            register::STATUS => {
                let accepted = self.driver_features & !self.features == 0
                    && self.driver_features & (1 << VIRTIO_F_VERSION_1) != 0;
                let refused = value & STATUS_FEATURES_OK != 0
                    && self.status & STATUS_FEATURES_OK == 0
                    && (self.refuse_features || !accepted);
                self.status = if refused { value & !STATUS_FEATURES_OK } else { value };
            }
            other => panic!("the driver wrote {value:#x} to register {other:#x}"),
        }
    }
}

type Shared = Rc<RefCell<Device>>;

struct FakeRegisters(Shared);
struct FakeMemory(Shared);

impl Registers for FakeRegisters {
    fn read(&mut self, offset: usize) -> u32 {
        self.0.borrow_mut().register_read(offset)
    }
    fn write(&mut self, offset: usize, value: u32) {
        self.0.borrow_mut().register_write(offset, value)
    }
}

impl FakeMemory {
    fn range(offset: u64, length: usize) -> std::ops::Range<usize> {
        assert!(offset + length as u64 <= POOL_SIZE, "access of {length} bytes at {offset:#x}");
        offset as usize..offset as usize + length
    }
}

impl DmaMemory for FakeMemory {
    fn bus_address(&self) -> u64 {
        POOL_BASE
    }
    fn size(&self) -> u64 {
        POOL_SIZE
    }
    fn read_u16(&self, offset: u64) -> u16 {
        u16::from_le_bytes(self.0.borrow().memory[Self::range(offset, 2)].try_into().unwrap())
    }
    fn read_u32(&self, offset: u64) -> u32 {
        u32::from_le_bytes(self.0.borrow().memory[Self::range(offset, 4)].try_into().unwrap())
    }
    fn write_u16(&mut self, offset: u64, value: u16) {
        self.write_bytes(offset, &value.to_le_bytes());
    }
    fn write_u32(&mut self, offset: u64, value: u32) {
        self.write_bytes(offset, &value.to_le_bytes());
    }
    fn write_u64(&mut self, offset: u64, value: u64) {
        self.write_bytes(offset, &value.to_le_bytes());
    }
    fn read_bytes(&self, offset: u64, into: &mut [u8]) {
        into.copy_from_slice(&self.0.borrow().memory[Self::range(offset, into.len())]);
    }
    fn write_bytes(&mut self, offset: u64, bytes: &[u8]) {
        self.0.borrow_mut().memory[Self::range(offset, bytes.len())].copy_from_slice(bytes);
    }
    fn read_barrier(&self) {}
    fn write_barrier(&self) {}
    fn full_barrier(&self) {}
}

fn device() -> Shared {
    Rc::new(RefCell::new(Device::new()))
}

fn start(device: &Shared) -> Result<Console<FakeRegisters, FakeMemory>, Error> {
    Console::start(FakeRegisters(device.clone()), FakeMemory(device.clone()))
}

/// Everything the driver has received so far.
fn drain(console: &mut Console<FakeRegisters, FakeMemory>) -> Vec<u8> {
    let mut received = Vec::new();
    console.receive(&mut received).unwrap();
    received
}

#[test]
fn start_negotiates_version_1_alone_and_sets_up_both_queues_in_the_pool() {
    let shared = device();
    let console = start(&shared).unwrap();
    let device = shared.borrow();
    assert_eq!(device.driver_features, 1 << VIRTIO_F_VERSION_1, "only VIRTIO_F_VERSION_1");
    let all = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK;
    assert_eq!(device.status, all);
    let layout = console.layout();
    assert!(layout.bytes <= POOL_SIZE);
    for (index, queue) in [layout.receive, layout.transmit].into_iter().enumerate() {
        let q = &device.queues[index];
        assert_eq!((q.num, q.ready), (u32::from(MAX_QUEUE_SIZE), 1));
        assert_eq!(q.desc, POOL_BASE + queue.descriptors);
        assert_eq!(q.driver, POOL_BASE + queue.avail);
        assert_eq!(q.device, POOL_BASE + queue.used);
        assert_eq!(queue.descriptors % 16, 0);
        assert_eq!(queue.used % 4, 0);
    }
    // Every receive buffer is out, published and notified; transmits ask for no interrupt.
    assert_eq!(device.u16_at(POOL_BASE + layout.receive.avail + 2), MAX_QUEUE_SIZE);
    assert_eq!(device.notifications[usize::from(RECEIVE_QUEUE)], 1);
    assert_eq!(device.u16_at(POOL_BASE + layout.transmit.avail), VIRTQ_AVAIL_F_NO_INTERRUPT);
    assert!(layout.transmit.descriptors >= layout.receive.descriptors + layout.receive.bytes);
    assert!(layout.rx_buffers >= layout.transmit.descriptors + layout.transmit.bytes);
}

#[test]
fn a_device_left_running_by_a_previous_driver_is_reset_before_use() {
    let shared = device();
    {
        // What a killed incarnation leaves: a live device, half-used queues, an interrupt.
        let mut console = start(&shared).unwrap();
        shared.borrow_mut().host_send(b"half a requ");
        console.send(b"half an answer").unwrap();
        shared.borrow_mut().hold_transmit = true;
        console.send(b"never taken").unwrap();
    }
    assert_ne!(shared.borrow().status, 0);
    let mut console = start(&shared).unwrap();
    assert_eq!(drain(&mut console), b"", "nothing of the previous incarnation's is received");
    shared.borrow_mut().hold_transmit = false;
    shared.borrow_mut().transmitted.clear();
    assert_eq!(shared.borrow_mut().host_send(b"list\n"), 5);
    assert_eq!(drain(&mut console), b"list\n");
    assert_eq!(console.send(b"answer").unwrap(), 6);
    assert_eq!(shared.borrow().transmitted, b"answer");
    // A device that ignores the reset is given up.
    shared.borrow_mut().ignore_reset = true;
    assert_eq!(start(&shared).err(), Some(Error::ResetStuck));
}

#[test]
fn devices_that_are_not_a_modern_console_are_refused() {
    type Change = fn(&mut Device);
    let cases: [(Change, Error); 7] = [
        (|d| d.magic = 0, Error::NotVirtio { magic: 0 }),
        (|d| d.version = 1, Error::Version { version: 1 }),
        (|d| d.device_id = 0, Error::NoDevice),
        (|d| d.device_id = 2, Error::WrongDevice { id: 2 }),
        (|d| d.features = CONSOLE_FEATURES, Error::NoVersion1),
        (|d| d.refuse_features = true, Error::FeaturesRefused),
        (|d| d.num_max = 0, Error::QueueMissing { queue: 0 }),
    ];
    for (index, (change, error)) in cases.into_iter().enumerate() {
        let shared = device();
        change(&mut shared.borrow_mut());
        assert_eq!(start(&shared).err(), Some(error), "case {index}");
        // Once the reset is done, a failure is marked FAILED for the device to see.
        if index >= 4 {
            assert_ne!(shared.borrow().status & STATUS_FAILED, 0, "case {index}");
        }
    }
    // A queue still ready after the reset (a device that does not reset its queues).
    let shared = device();
    shared.borrow_mut().queues[0].ready = 1;
    shared.borrow_mut().ignore_reset = true;
    shared.borrow_mut().status = 0;
    assert_eq!(start(&shared).err(), Some(Error::QueueStillReady { queue: 0 }));
}

#[test]
fn queue_sizes_are_powers_of_two_within_what_the_device_allows() {
    for (most, size) in [(128, 64), (64, 64), (100, 64), (48, 32), (16, 16), (1, 1)] {
        let shared = device();
        shared.borrow_mut().num_max = most;
        let console = start(&shared).unwrap();
        assert_eq!(console.layout().receive.size, size, "QueueNumMax {most}");
        assert_eq!(shared.borrow().queues[1].num, u32::from(size));
    }
}

#[test]
fn a_pool_too_small_for_the_queues_and_buffers_is_an_error() {
    struct Small(FakeMemory);
    impl DmaMemory for Small {
        fn bus_address(&self) -> u64 {
            POOL_BASE
        }
        fn size(&self) -> u64 {
            64 * 1024
        }
        fn read_u16(&self, offset: u64) -> u16 {
            self.0.read_u16(offset)
        }
        fn read_u32(&self, offset: u64) -> u32 {
            self.0.read_u32(offset)
        }
        fn write_u16(&mut self, offset: u64, value: u16) {
            self.0.write_u16(offset, value)
        }
        fn write_u32(&mut self, offset: u64, value: u32) {
            self.0.write_u32(offset, value)
        }
        fn write_u64(&mut self, offset: u64, value: u64) {
            self.0.write_u64(offset, value)
        }
        fn read_bytes(&self, offset: u64, into: &mut [u8]) {
            self.0.read_bytes(offset, into)
        }
        fn write_bytes(&mut self, offset: u64, bytes: &[u8]) {
            self.0.write_bytes(offset, bytes)
        }
        fn read_barrier(&self) {}
        fn write_barrier(&self) {}
        fn full_barrier(&self) {}
    }
    let shared = device();
    let started =
        Console::start(FakeRegisters(shared.clone()), Small(FakeMemory(shared.clone()))).err();
    let needed = Layout::new(MAX_QUEUE_SIZE).bytes;
    assert_eq!(started, Some(Error::PoolTooSmall { needed, size: 64 * 1024 }));
    assert_ne!(shared.borrow().status & STATUS_FAILED, 0);
}

#[test]
fn bytes_flow_both_ways_in_buffer_sized_pieces() {
    let shared = device();
    let mut console = start(&shared).unwrap();
    shared.borrow_mut().host_send(b"create linux3.cfg\n");
    assert_eq!(drain(&mut console), b"create linux3.cfg\n");
    let answer: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(console.send(&answer).unwrap(), answer.len());
    assert_eq!(shared.borrow().transmitted, answer);
    assert!(!console.transmitting().unwrap());
    // More than all receive buffers hold arrives as the driver gives them back.
    let big: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 253) as u8).collect();
    let (mut sent, mut received) = (0, Vec::new());
    while received.len() < big.len() {
        sent += shared.borrow_mut().host_send(&big[sent..]);
        assert!(sent - received.len() <= usize::from(MAX_QUEUE_SIZE) * RX_BUFFER as usize);
        console.receive(&mut received).unwrap();
    }
    assert_eq!(received, big);
}

#[test]
fn sending_stops_at_full_queue_and_goes_on_once_the_device_takes_buffers() {
    let shared = device();
    let mut console = start(&shared).unwrap();
    shared.borrow_mut().hold_transmit = true;
    let all = usize::from(MAX_QUEUE_SIZE) * TX_BUFFER as usize;
    let bytes: Vec<u8> = (0..all + 10).map(|i| (i % 256) as u8).collect();
    assert_eq!(console.send(&bytes).unwrap(), all);
    assert_eq!(console.send(&bytes[all..]).unwrap(), 0, "no buffer free");
    assert!(console.transmitting().unwrap());
    shared.borrow_mut().take_transmitted();
    assert_eq!(console.send(&bytes[all..]).unwrap(), 10);
    shared.borrow_mut().take_transmitted();
    assert_eq!(shared.borrow().transmitted, bytes);
    assert!(!console.transmitting().unwrap());
}

#[test]
fn the_16_bit_ring_indices_wrap_around() {
    let shared = device();
    let mut console = start(&shared).unwrap();
    let rounds = 70_000u32;
    for round in 0..rounds {
        let byte = [(round % 256) as u8];
        assert_eq!(shared.borrow_mut().host_send(&byte), 1, "round {round}");
        assert_eq!(drain(&mut console), byte, "round {round}");
        assert_eq!(console.send(&byte).unwrap(), 1, "round {round}");
    }
    let device = shared.borrow();
    assert_eq!(device.used_written[0], u64::from(rounds));
    assert_eq!(device.used_written[1], u64::from(rounds));
    // Both used indices went past 65535 and around.
    assert_eq!(device.queues[0].used_index, (rounds % 65_536) as u16);
    assert_eq!(device.queues[1].used_index, (rounds % 65_536) as u16);
    assert_eq!(device.transmitted.len(), rounds as usize);
    assert!(device.transmitted.iter().enumerate().all(|(i, &b)| b == (i % 256) as u8));
}

#[test]
fn a_device_returning_bad_ids_lengths_or_indices_gets_an_error_not_a_panic() {
    type Break = fn(&mut Device);
    let cases: [(&str, Break, bool, Error); 5] = [
        (
            "an id past the queue",
            |d| d.next_bad_id = Some(64),
            true,
            Error::UsedId { queue: 0, id: 64 },
        ),
        (
            "an id far past",
            |d| d.next_bad_id = Some(u32::MAX),
            true,
            Error::UsedId { queue: 0, id: u32::MAX },
        ),
        (
            "a receive length past the buffer",
            |d| d.next_bad_length = Some(RX_BUFFER + 1),
            true,
            Error::UsedLength { queue: 0, id: 0, length: RX_BUFFER + 1, capacity: RX_BUFFER },
        ),
        (
            "a length for a buffer the device only reads",
            |d| d.next_bad_length = Some(1),
            false,
            Error::UsedLength { queue: 1, id: 0, length: 1, capacity: 0 },
        ),
        (
            "a used index two ahead for one entry",
            |d| d.run_ahead = true,
            false,
            Error::UsedIndex { queue: 1, consumed: 0, index: 2 },
        ),
    ];
    for (what, make_break, on_receive, error) in cases {
        let shared = device();
        let mut console = start(&shared).unwrap();
        make_break(&mut shared.borrow_mut());
        let result = if on_receive {
            shared.borrow_mut().host_send(b"x");
            console.receive(&mut Vec::new()).map(|_| ())
        } else {
            console.send(b"x").unwrap();
            console.send(b"y").map(|_| ())
        };
        assert_eq!(result, Err(error), "{what}");
        // The error stays (nothing was taken), and a restart of the driver recovers.
        let again = if on_receive {
            console.receive(&mut Vec::new()).map(|_| ())
        } else {
            console.send(b"y").map(|_| ())
        };
        assert_eq!(again, Err(error), "{what}, asked again");
        let mut console = start(&shared).unwrap();
        shared.borrow_mut().transmitted.clear();
        shared.borrow_mut().host_send(b"ok\n");
        assert_eq!(drain(&mut console), b"ok\n", "{what}: after the restart");
        console.send(b"fine").unwrap();
        assert_eq!(shared.borrow().transmitted, b"fine", "{what}: after the restart");
    }
    // An id of a chain that is not out: the transmit queue's descriptor 5 when only 0 is.
    let shared = device();
    let mut console = start(&shared).unwrap();
    shared.borrow_mut().hold_transmit = true;
    console.send(b"x").unwrap();
    shared.borrow_mut().next_bad_id = Some(5);
    shared.borrow_mut().take_transmitted();
    assert_eq!(console.send(b"y"), Err(Error::UsedId { queue: 1, id: 5 }));
}

#[test]
fn a_device_flagged_for_reset_is_reported() {
    let shared = device();
    let mut console = start(&shared).unwrap();
    shared.borrow_mut().status |= STATUS_DEVICE_NEEDS_RESET;
    assert_eq!(console.receive(&mut Vec::new()), Err(Error::NeedsReset));
}

#[test]
fn interrupts_are_acknowledged_with_the_bits_read() {
    let shared = device();
    let mut console = start(&shared).unwrap();
    shared.borrow_mut().host_send(b"x");
    assert_eq!(shared.borrow().interrupt_status, 1);
    assert_eq!(acknowledge_interrupt(console.registers()), 1);
    assert_eq!(shared.borrow().interrupt_status, 0);
    assert_eq!(acknowledge_interrupt(console.registers()), 0);
    // Transmit completions raise none (the driver asked for none).
    console.send(b"y").unwrap();
    assert_eq!(shared.borrow().interrupt_status, 0);
}

/// A bare queue of 8 descriptors at the pool's start.
fn bare_queue(shared: &Shared) -> (SplitQueue, FakeMemory) {
    let mut memory = FakeMemory(shared.clone());
    let layout = QueueLayout::new(0, 8);
    memory.write_bytes(0, &vec![0; layout.bytes as usize]);
    let mut device = shared.borrow_mut();
    device.queues[0] = DeviceQueue {
        num: 8,
        desc: POOL_BASE + layout.descriptors,
        driver: POOL_BASE + layout.avail,
        device: POOL_BASE + layout.used,
        ready: 1,
        ..Default::default()
    };
    (SplitQueue::new(0, layout), memory)
}

#[test]
fn descriptor_chains_link_their_buffers_and_come_back_whole() {
    let shared = device();
    let (mut queue, mut memory) = bare_queue(&shared);
    let read = |offset, length| Buffer { offset, length, device_writes: false };
    let write = |offset, length| Buffer { offset, length, device_writes: true };
    // A request-like chain: two buffers the device reads, one it writes.
    queue.add(&mut memory, &[read(0x1000, 16), read(0x2000, 100), write(0x3000, 64)], 7).unwrap();
    queue.add(&mut memory, &[write(0x4000, 32)], 8).unwrap();
    assert_eq!(queue.free_descriptors(), 4);
    assert!(queue.publish(&mut memory));
    let mut device = shared.borrow_mut();
    let first = device.pop_avail(0).unwrap();
    let second = device.pop_avail(0).unwrap();
    assert_eq!(device.pop_avail(0), None);
    assert_eq!(
        device.chain(0, first),
        vec![
            (POOL_BASE + 0x1000, 16, VIRTQ_DESC_F_NEXT),
            (POOL_BASE + 0x2000, 100, VIRTQ_DESC_F_NEXT),
            (POOL_BASE + 0x3000, 64, VIRTQ_DESC_F_WRITE),
        ]
    );
    assert_eq!(device.chain(0, second), vec![(POOL_BASE + 0x4000, 32, VIRTQ_DESC_F_WRITE)]);
    // The device gives them back out of order, each with at most its writable bytes.
    device.push_used(0, u32::from(second), 32);
    device.push_used(0, u32::from(first), 64);
    drop(device);
    assert_eq!(queue.pop_used(&mut memory), Ok(Some(Used { token: 8, length: 32 })));
    assert_eq!(queue.pop_used(&mut memory), Ok(Some(Used { token: 7, length: 64 })));
    assert_eq!(queue.pop_used(&mut memory), Ok(None));
    assert_eq!((queue.free_descriptors(), queue.chains_out()), (8, 0));
    // A chain over a descriptor too many is refused, as is one past the pool or empty.
    let eight: Vec<Buffer> = (0..8).map(|i| read(0x1000 * i, 1)).collect();
    queue.add(&mut memory, &eight, 1).unwrap();
    assert_eq!(queue.add(&mut memory, &[read(0, 1)], 2), Err(AddError::Full));
    let nine: Vec<Buffer> = (0..9).map(|i| read(0x1000 * i, 1)).collect();
    assert_eq!(queue.add(&mut memory, &nine, 2), Err(AddError::BadChain));
    assert_eq!(queue.add(&mut memory, &[], 2), Err(AddError::BadChain));
    let (mut other, mut memory) = bare_queue(&shared);
    assert_eq!(other.add(&mut memory, &[read(POOL_SIZE - 1, 2)], 2), Err(AddError::OutsidePool));
    assert_eq!(other.add(&mut memory, &[read(u64::MAX, 2)], 2), Err(AddError::OutsidePool));
}

#[test]
fn garbage_in_the_used_ring_never_panics_nor_frees_a_descriptor_twice() {
    let shared = device();
    let (mut queue, mut memory) = bare_queue(&shared);
    let used = queue.layout().used;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out: Vec<u32> = Vec::new();
    let mut token = 0;
    for _ in 0..20_000 {
        while queue.free_descriptors() > 0 && random() % 2 == 0 {
            let length = (random() % 3 + 1) as usize;
            let chain: Vec<Buffer> = (0..length.min(queue.free_descriptors()))
                .map(|i| Buffer { offset: 0x1000 * i as u64, length: 8, device_writes: true })
                .collect();
            queue.add(&mut memory, &chain, token).unwrap();
            out.push(token);
            token += 1;
        }
        queue.publish(&mut memory);
        // The "device" writes anything at all into the used ring.
        let entry = used + 4 + 8 * (random() % 8);
        memory.write_u32(entry, (random() % 12) as u32);
        memory.write_u32(entry + 4, (random() % 40) as u32);
        // ... and any used index from what was consumed to a few past it.
        memory.write_u16(used + 2, queue.used_consumed.wrapping_add((random() % 4) as u16));
        for _ in 0..4 {
            match queue.pop_used(&mut memory) {
                Ok(Some(done)) => {
                    assert!(done.length <= 24);
                    let at = out.iter().position(|&t| t == done.token).expect("a token not out");
                    out.swap_remove(at);
                }
                Ok(None) | Err(_) => break,
            }
        }
        assert_eq!(queue.chains_out(), out.len());
        let mut free = queue.free.clone();
        free.sort_unstable();
        free.dedup();
        assert_eq!(free.len(), queue.free_descriptors(), "a descriptor freed twice");
        assert!(free.iter().all(|&descriptor| descriptor < 8));
    }
}
