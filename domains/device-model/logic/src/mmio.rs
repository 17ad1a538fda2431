//! The virtio-mmio transport, version 2 (virtio 1.2 §4.2.2; the offsets are Linux's
//! `include/uapi/linux/virtio_mmio.h`): the register file a guest's MMIO accesses (ioreqs)
//! reach, the device status state machine (§2.1, §3.1.1), feature negotiation (§2.2) and the
//! interrupt status behind the device's interrupt line.
//!
//! Registers below [`CONFIG`] are 32 bits wide and accessed whole; the device configuration
//! space from [`CONFIG`] on may be read 1, 2, 4 or 8 bytes at a time and is read-only (no
//! device here offers a writable configuration field). Reading a write-only register, writing
//! a read-only one, an access of another width or at no register, setting up a queue that is
//! ready or does not exist, and a status the driver may not write are each a [`Fault`]: the
//! device sets `DEVICE_NEEDS_RESET` (and, once `DRIVER_OK`, raises a configuration change
//! interrupt, §2.1.2) and serves nothing until the driver writes 0 to `Status`. A driver whose
//! features the device does not accept (no `VIRTIO_F_VERSION_1`, or bits it did not offer)
//! sees `FEATURES_OK` stay clear, as §3.1.1 says.
//!
//! The domain turns each ioreq into [`Transport::read`] or [`Transport::write`], logs the
//! [`Fault`] if one comes back, and sets the target's interrupt to
//! [`Transport::interrupt_line`] after each access.
//!
//! # Invariants
//! - No access panics; a refused one changes nothing but the `NEEDS_RESET` state.
//! - Queues are served only while the status has `DRIVER_OK` and neither `NEEDS_RESET` nor
//!   `FAILED`.

use alloc::vec::Vec;

use crate::memory::GuestMemory;
use crate::virtqueue::{ChainError, LayoutError, Queue, F_EVENT_IDX, F_INDIRECT_DESC};

/// `MagicValue`: "virt" little-endian (`VIRTIO_MMIO_MAGIC_VALUE`, 0x000).
pub const MAGIC_VALUE: u64 = 0x000;
/// `Version`, 2 for a non-legacy device (`VIRTIO_MMIO_VERSION`, 0x004).
pub const VERSION: u64 = 0x004;
/// `DeviceID` (`VIRTIO_MMIO_DEVICE_ID`, 0x008).
pub const DEVICE_ID: u64 = 0x008;
/// `VendorID` (`VIRTIO_MMIO_VENDOR_ID`, 0x00c).
pub const VENDOR_ID: u64 = 0x00c;
/// `DeviceFeatures` (`VIRTIO_MMIO_DEVICE_FEATURES`, 0x010).
pub const DEVICE_FEATURES: u64 = 0x010;
/// `DeviceFeaturesSel` (`VIRTIO_MMIO_DEVICE_FEATURES_SEL`, 0x014).
pub const DEVICE_FEATURES_SEL: u64 = 0x014;
/// `DriverFeatures` (`VIRTIO_MMIO_DRIVER_FEATURES`, 0x020).
pub const DRIVER_FEATURES: u64 = 0x020;
/// `DriverFeaturesSel` (`VIRTIO_MMIO_DRIVER_FEATURES_SEL`, 0x024).
pub const DRIVER_FEATURES_SEL: u64 = 0x024;
/// `QueueSel` (`VIRTIO_MMIO_QUEUE_SEL`, 0x030).
pub const QUEUE_SEL: u64 = 0x030;
/// `QueueNumMax` (`VIRTIO_MMIO_QUEUE_NUM_MAX`, 0x034).
pub const QUEUE_NUM_MAX: u64 = 0x034;
/// `QueueNum` (`VIRTIO_MMIO_QUEUE_NUM`, 0x038).
pub const QUEUE_NUM: u64 = 0x038;
/// `QueueReady` (`VIRTIO_MMIO_QUEUE_READY`, 0x044).
pub const QUEUE_READY: u64 = 0x044;
/// `QueueNotify` (`VIRTIO_MMIO_QUEUE_NOTIFY`, 0x050).
pub const QUEUE_NOTIFY: u64 = 0x050;
/// `InterruptStatus` (`VIRTIO_MMIO_INTERRUPT_STATUS`, 0x060).
pub const INTERRUPT_STATUS: u64 = 0x060;
/// `InterruptACK` (`VIRTIO_MMIO_INTERRUPT_ACK`, 0x064).
pub const INTERRUPT_ACK: u64 = 0x064;
/// `Status` (`VIRTIO_MMIO_STATUS`, 0x070).
pub const STATUS: u64 = 0x070;
/// `QueueDescLow` (`VIRTIO_MMIO_QUEUE_DESC_LOW`, 0x080; `High` at 0x084).
pub const QUEUE_DESC_LOW: u64 = 0x080;
/// `QueueDriverLow` (`VIRTIO_MMIO_QUEUE_AVAIL_LOW`, 0x090; `High` at 0x094).
pub const QUEUE_DRIVER_LOW: u64 = 0x090;
/// `QueueDeviceLow` (`VIRTIO_MMIO_QUEUE_USED_LOW`, 0x0a0; `High` at 0x0a4).
pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
/// `ConfigGeneration` (`VIRTIO_MMIO_CONFIG_GENERATION`, 0x0fc).
pub const CONFIG_GENERATION: u64 = 0x0fc;
/// The device configuration space (`VIRTIO_MMIO_CONFIG`, 0x100).
pub const CONFIG: u64 = 0x100;

/// "virt" (§4.2.2: 0x74726976).
pub const MAGIC: u32 = 0x7472_6976;
/// This vendor's id: "Xeno" little-endian (any value; Linux does not look at it).
pub const VENDOR: u32 = u32::from_le_bytes(*b"Xeno");

/// Status: the guest found the device (`VIRTIO_CONFIG_S_ACKNOWLEDGE`, `virtio_config.h`, §2.1).
pub const ACKNOWLEDGE: u8 = 1;
/// Status: the guest has a driver (`VIRTIO_CONFIG_S_DRIVER`).
pub const DRIVER: u8 = 2;
/// Status: the driver is ready (`VIRTIO_CONFIG_S_DRIVER_OK`).
pub const DRIVER_OK: u8 = 4;
/// Status: feature negotiation complete (`VIRTIO_CONFIG_S_FEATURES_OK`).
pub const FEATURES_OK: u8 = 8;
/// Status: the device needs a reset (`VIRTIO_CONFIG_S_NEEDS_RESET`, 0x40).
pub const NEEDS_RESET: u8 = 0x40;
/// Status: the driver gave up (`VIRTIO_CONFIG_S_FAILED`, 0x80).
pub const FAILED: u8 = 0x80;
/// Interrupt status: used buffers (`VIRTIO_MMIO_INT_VRING`).
pub const INT_VRING: u32 = 1;
/// Interrupt status: configuration change (`VIRTIO_MMIO_INT_CONFIG`).
pub const INT_CONFIG: u32 = 2;
/// A virtio 1.x device (`VIRTIO_F_VERSION_1`, bit 32, `virtio_config.h`, §6); required here.
pub const F_VERSION_1: u64 = 1 << 32;

/// Why a device could not serve a queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceFault {
    /// The rings or a chain broke the virtqueue rules.
    Chain(ChainError),
    /// A chain the device cannot read as a request (e.g. shorter than its header); the reason.
    Malformed { head: u16, reason: &'static str },
}

/// A device behind the transport.
pub trait Device {
    /// Its virtio device id (§5: 2 for a block device).
    fn device_id(&self) -> u32;
    /// The features it offers (including [`F_VERSION_1`]).
    fn features(&self) -> u64;
    /// Its configuration space (read-only).
    fn config(&self) -> &[u8];
    /// How many queues it has.
    fn queue_count(&self) -> u16;
    /// `QueueNumMax`.
    fn queue_max(&self) -> u16;
    /// Serves every chain available on queue `index` (ready; `queues` are all the device's,
    /// for a device whose queues feed each other, as virtio-net's loopback does), pushing a
    /// used entry for each, in the order popped.
    fn process<M: GuestMemory + ?Sized>(
        &mut self,
        memory: &mut M,
        index: u16,
        queues: &mut [Queue],
    ) -> Result<(), DeviceFault>;
}

/// A refused access or request; the device now needs a reset (module doc). The domain logs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// No register at `offset` (or past the configuration space).
    Offset { offset: u64, width: u8 },
    /// A register accessed with the wrong width or misaligned.
    Width { offset: u64, width: u8 },
    /// A write to a read-only register (or to the configuration space).
    ReadOnly { offset: u64, value: u64 },
    /// A read of a write-only register.
    WriteOnly { offset: u64 },
    /// A queue register written, or a notify, for a queue the device does not have.
    NoQueue { queue: u32 },
    /// A queue's setup written while it is ready.
    QueueLive { queue: u16, offset: u64 },
    /// A queue made ready with a bad layout, or `QueueReady` written another value than 0 or 1.
    QueueLayout { queue: u16, error: LayoutError },
    /// A status write the driver may not make (clearing bits, skipping steps, unknown bits,
    /// `NEEDS_RESET` itself).
    Status { from: u8, to: u32 },
    /// Driver features written outside the `DRIVER`-but-not-`FEATURES_OK` window.
    Features { status: u8 },
    /// A queue became ready before `FEATURES_OK`.
    QueueEarly { queue: u16 },
    /// The device refused what a queue held.
    Queue { queue: u16, fault: DeviceFault },
}

/// One virtio-mmio device: its registers and queues around a [`Device`].
#[derive(Debug)]
pub struct Transport<D> {
    device: D,
    pub(crate) queues: Vec<Queue>,
    pub(crate) status: u8,
    pub(crate) driver_features: u64,
    pub(crate) interrupt_status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    queue_sel: u32,
}

impl<D: Device> Transport<D> {
    /// The device as reset.
    pub fn new(device: D) -> Self {
        let queues = alloc::vec![Queue::default(); device.queue_count().into()];
        Self {
            device,
            queues,
            status: 0,
            driver_features: 0,
            interrupt_status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            queue_sel: 0,
        }
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The device, to hand its disk on (the domain's restart path).
    pub fn into_device(self) -> D {
        self.device
    }

    /// The status register.
    pub fn status(&self) -> u8 {
        self.status
    }

    /// Queue `index`, if the device has it.
    pub fn queue(&self, index: u16) -> Option<&Queue> {
        self.queues.get(usize::from(index))
    }

    /// The level the device's interrupt line should have (any interrupt status bit set).
    pub fn interrupt_line(&self) -> bool {
        self.interrupt_status != 0
    }

    /// Whether the queues are served (module invariants).
    fn live(&self) -> bool {
        self.status & (DRIVER_OK | NEEDS_RESET | FAILED) == DRIVER_OK
    }

    /// Marks the device as needing a reset because of `fault`, and hands `fault` back.
    pub(crate) fn fail(&mut self, fault: Fault) -> Option<Fault> {
        if self.status & DRIVER_OK != 0 && self.status & NEEDS_RESET == 0 {
            self.interrupt_status |= INT_CONFIG;
        }
        self.status |= NEEDS_RESET;
        Some(fault)
    }

    /// Back to the state after power-on (the driver wrote 0 to `Status`).
    pub(crate) fn reset(&mut self) {
        self.queues.iter_mut().for_each(|queue| *queue = Queue::default());
        self.status = 0;
        self.driver_features = 0;
        self.interrupt_status = 0;
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.queue_sel = 0;
    }

    /// A guest read of `width` bytes at `offset`: the value (0 if refused) and the fault.
    pub fn read(&mut self, offset: u64, width: u8) -> (u64, Option<Fault>) {
        if offset >= CONFIG {
            let start = offset - CONFIG;
            let config = self.device.config();
            let length = usize::from(width);
            if !matches!(width, 1 | 2 | 4 | 8) {
                return (0, self.fail(Fault::Width { offset, width }));
            }
            let Some(bytes) = usize::try_from(start)
                .ok()
                .and_then(|start| config.get(start..start.checked_add(length)?))
            else {
                return (0, self.fail(Fault::Offset { offset, width }));
            };
            let mut value = [0; 8];
            value[..length].copy_from_slice(bytes);
            return (u64::from_le_bytes(value), None);
        }
        if let Err(fault) = register_shape(offset, width) {
            return (0, self.fail(fault));
        }
        let queue = self.queues.get(self.queue_sel as usize);
        let value = match offset {
            MAGIC_VALUE => MAGIC,
            VERSION => 2,
            DEVICE_ID => self.device.device_id(),
            VENDOR_ID => VENDOR,
            DEVICE_FEATURES => match self.device_features_sel {
                0 => self.device.features() as u32,
                1 => (self.device.features() >> 32) as u32,
                _ => 0,
            },
            QUEUE_NUM_MAX => queue.map_or(0, |_| self.device.queue_max().into()),
            QUEUE_READY => queue.map_or(0, |queue| queue.ready.into()),
            INTERRUPT_STATUS => self.interrupt_status,
            STATUS => self.status.into(),
            CONFIG_GENERATION => 0,
            DEVICE_FEATURES_SEL | DRIVER_FEATURES | DRIVER_FEATURES_SEL | QUEUE_SEL | QUEUE_NUM
            | QUEUE_NOTIFY | INTERRUPT_ACK => return (0, self.fail(Fault::WriteOnly { offset })),
            _ if queue_address(offset).is_some() => {
                return (0, self.fail(Fault::WriteOnly { offset }))
            }
            _ => return (0, self.fail(Fault::Offset { offset, width })),
        };
        (value.into(), None)
    }

    /// A guest write of `value` (`width` bytes) at `offset`; the fault if refused. A notify
    /// serves the queue, reading and writing `memory`.
    pub fn write<M: GuestMemory + ?Sized>(
        &mut self,
        memory: &mut M,
        offset: u64,
        width: u8,
        value: u64,
    ) -> Option<Fault> {
        if offset >= CONFIG {
            return self.fail(Fault::ReadOnly { offset, value });
        }
        if let Err(fault) = register_shape(offset, width) {
            return self.fail(fault);
        }
        let value32 = value as u32;
        match offset {
            MAGIC_VALUE | VERSION | DEVICE_ID | VENDOR_ID | DEVICE_FEATURES | QUEUE_NUM_MAX
            | INTERRUPT_STATUS | CONFIG_GENERATION => self.fail(Fault::ReadOnly { offset, value }),
            DEVICE_FEATURES_SEL => {
                self.device_features_sel = value32;
                None
            }
            DRIVER_FEATURES_SEL => {
                self.driver_features_sel = value32;
                None
            }
            DRIVER_FEATURES => {
                if self.status & (DRIVER | FEATURES_OK | NEEDS_RESET | FAILED) != DRIVER {
                    return self.fail(Fault::Features { status: self.status });
                }
                match self.driver_features_sel {
                    0 => {
                        self.driver_features =
                            (self.driver_features >> 32 << 32) | u64::from(value32)
                    }
                    1 => {
                        self.driver_features = (self.driver_features & 0xffff_ffff) | (value << 32)
                    }
                    _ => {}
                }
                None
            }
            QUEUE_SEL => {
                self.queue_sel = value32;
                None
            }
            QUEUE_NOTIFY => self.notify(memory, value32),
            INTERRUPT_ACK => {
                self.interrupt_status &= !value32;
                None
            }
            STATUS => self.write_status(value32),
            QUEUE_NUM | QUEUE_READY => self.write_queue(memory, offset, value32),
            _ if queue_address(offset).is_some() => self.write_queue(memory, offset, value32),
            _ => self.fail(Fault::Offset { offset, width }),
        }
    }

    /// A write to one of the selected queue's registers.
    fn write_queue<M: GuestMemory + ?Sized>(
        &mut self,
        memory: &M,
        offset: u64,
        value: u32,
    ) -> Option<Fault> {
        let selected = self.queue_sel;
        let (max, features, status) = (self.device.queue_max(), self.driver_features, self.status);
        let Some(queue) = self.queues.get_mut(selected as usize) else {
            return self.fail(Fault::NoQueue { queue: selected });
        };
        let index = selected as u16;
        let written = if offset == QUEUE_READY {
            set_ready(queue, memory, value, max, features, status)
                .map_err(|error| error.unwrap_or(Fault::QueueEarly { queue: index }))
                .map_err(|fault| match fault {
                    Fault::QueueLayout { error, .. } => Fault::QueueLayout { queue: index, error },
                    fault => fault,
                })
        } else if queue.ready {
            Err(Fault::QueueLive { queue: index, offset })
        } else {
            if offset == QUEUE_NUM {
                // A size past u16 can never be valid: keep 0, refused at QueueReady.
                queue.size = u16::try_from(value).unwrap_or(0);
            } else if let Some((field, high)) = queue_address(offset) {
                let address = match field {
                    0 => &mut queue.desc,
                    1 => &mut queue.driver,
                    _ => &mut queue.device,
                };
                *address = if high {
                    (*address & 0xffff_ffff) | (u64::from(value) << 32)
                } else {
                    (*address >> 32 << 32) | u64::from(value)
                };
            }
            Ok(())
        };
        written.err().and_then(|fault| self.fail(fault))
    }

    /// A `QueueNotify` of queue `value`: serves it if the device is live and the queue ready.
    fn notify<M: GuestMemory + ?Sized>(&mut self, memory: &mut M, value: u32) -> Option<Fault> {
        if value as usize >= self.queues.len() {
            return self.fail(Fault::NoQueue { queue: value });
        }
        self.serve(memory, value as u16)
    }

    /// Serves queue `index` if live and ready, raising the used-buffer interrupt if the
    /// driver wants one.
    pub(crate) fn serve<M: GuestMemory + ?Sized>(
        &mut self,
        memory: &mut M,
        index: u16,
    ) -> Option<Fault> {
        if !self.live() {
            return None;
        }
        if !self.queues.get(usize::from(index))?.ready {
            return None;
        }
        let served = self.device.process(memory, index, &mut self.queues);
        // Every queue: serving one may have used another's chains (virtio-net's loopback).
        let mut interrupt = Ok(false);
        for queue in self.queues.iter_mut().filter(|queue| queue.ready) {
            match queue.interrupt_needed(memory) {
                Ok(needed) => interrupt = interrupt.map(|any| any | needed),
                Err(error) => interrupt = Err(DeviceFault::Chain(error)),
            }
        }
        match (served, interrupt) {
            (Ok(()), Ok(interrupt)) => {
                if interrupt {
                    self.interrupt_status |= INT_VRING;
                }
                None
            }
            (Err(fault), _) | (_, Err(fault)) => {
                // What was completed before the fault is the driver's to see.
                self.interrupt_status |= INT_VRING;
                self.fail(Fault::Queue { queue: index, fault })
            }
        }
    }

    /// A write to `Status` (§2.1, §3.1.1).
    fn write_status(&mut self, value: u32) -> Option<Fault> {
        if value == 0 {
            self.reset();
            return None;
        }
        let from = self.status;
        let known = ACKNOWLEDGE | DRIVER | DRIVER_OK | FEATURES_OK | NEEDS_RESET | FAILED;
        let refused = Fault::Status { from, to: value };
        let Ok(to) = u8::try_from(value) else {
            return self.fail(refused);
        };
        let added = to & !from;
        let ordered = [(DRIVER, ACKNOWLEDGE), (FEATURES_OK, DRIVER), (DRIVER_OK, FEATURES_OK)]
            .iter()
            .all(|&(bit, needs)| added & bit == 0 || to & needs != 0);
        // The driver keeps every bit it set (only a reset clears them) and never sets
        // NEEDS_RESET, which is the device's.
        if to & !known != 0
            || from & !to & !NEEDS_RESET != 0
            || added & NEEDS_RESET != 0
            || !ordered
        {
            return self.fail(refused);
        }
        let mut to = to | (from & NEEDS_RESET);
        if added & FEATURES_OK != 0 {
            let offered = self.device.features();
            let features = self.driver_features;
            if features & !offered != 0 || features & F_VERSION_1 == 0 {
                to &= !FEATURES_OK;
            }
        }
        self.status = to;
        None
    }
}

/// `QueueReady` written with `value`: 0 stops the queue (positions back to 0), 1 starts it once
/// its layout is checked and features are negotiated; `Err(None)` if features are not.
fn set_ready<M: GuestMemory + ?Sized>(
    queue: &mut Queue,
    memory: &M,
    value: u32,
    max: u16,
    features: u64,
    status: u8,
) -> Result<(), Option<Fault>> {
    let layout = |error| Some(Fault::QueueLayout { queue: 0, error });
    match value {
        0 => {
            *queue = Queue { ready: false, last_avail: 0, used: 0, signalled: 0, ..*queue };
            Ok(())
        }
        1 if status & FEATURES_OK == 0 => Err(None),
        1 => {
            queue.check_layout(memory, max).map_err(layout)?;
            queue.ready = true;
            (queue.last_avail, queue.used, queue.signalled) = (0, 0, 0);
            queue.indirect = features & F_INDIRECT_DESC != 0;
            queue.event_idx = features & F_EVENT_IDX != 0;
            Ok(())
        }
        _ => Err(layout(LayoutError::Size(queue.size))),
    }
}

/// Checks a register access below [`CONFIG`]: 4 bytes, aligned.
fn register_shape(offset: u64, width: u8) -> Result<(), Fault> {
    if width != 4 || !offset.is_multiple_of(4) {
        return Err(Fault::Width { offset, width });
    }
    Ok(())
}

/// Which queue address register `offset` is: (0 desc, 1 driver, 2 device; high half).
fn queue_address(offset: u64) -> Option<(u8, bool)> {
    match offset {
        0x080 => Some((0, false)),
        0x084 => Some((0, true)),
        0x090 => Some((1, false)),
        0x094 => Some((1, true)),
        0x0a0 => Some((2, false)),
        0x0a4 => Some((2, true)),
        _ => None,
    }
}
