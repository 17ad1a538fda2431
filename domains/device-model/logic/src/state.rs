//! What the device model keeps in its preserved region so that a new incarnation serves the
//! same devices without the guest seeing an error: per device its status, negotiated features
//! and interrupt status, per queue its size, whether it is ready, its three ring addresses,
//! and the model's positions (`last_avail`, the used index it had published) when saved.
//!
//! # The restore rule
//! The model pushes used entries in the order it popped their chains ([`crate::virtqueue`]),
//! so the used index in guest memory says how many of the chains taken from the available
//! ring are done, whatever the model did after its last save. A restarted model
//! ([`Transport::restore`]) reads `used->idx` and `avail->idx` from guest memory, sets both
//! its positions to that used index, and serves the queue at once: every chain between the
//! used and the available index is treated as not yet done and done again. Its descriptors and
//! buffers are still the device's (the driver frees them only when it sees them used), and a
//! virtio-blk read, write, flush or get-id done twice leaves the disk and the guest's buffers
//! as done once; a used entry written but not published is simply written again. A virtio-net
//! transmit chain done twice loops its frame back twice if the first time had already used a
//! receive chain ([`crate::net`]: a duplicate frame, never a lost one). The saved
//! positions are therefore not needed to resume; they are kept for the log. An available index
//! more than a queue ahead of the used index means the guest broke the ring: the device needs a
//! reset. After a restore the used-buffer interrupt is raised once (a publish may have
//! preceded the kill without its interrupt; a spurious one is harmless to Linux).
//!
//! The domain saves after every access that changes the status, the features or a queue's
//! setup; it need not save per request.
//!
//! Encoding (little-endian): version `u32` ([`VERSION`]), device count `u32`, each device
//! (status `u8`, interrupt status `u8`, driver features `u64`, queue count `u8`, each queue:
//! size `u16`, ready `u8`, descriptor table, available ring and used ring `u64`,
//! `last_avail` `u16`, used `u16`).
//!
//! # Invariants
//! - [`Saved::decode`] never panics and refuses any input [`Saved::encode`] could not have
//!   written (counts past the limits, a ready flag other than 0 or 1, interrupt bits other than
//!   used-buffer and configuration, trailing bytes).

use alloc::vec::Vec;

use crate::memory::read_u16;
use crate::mmio::{
    Device, DeviceFault, Fault, Transport, DRIVER_OK, FAILED, INT_CONFIG, INT_VRING, NEEDS_RESET,
};
use crate::virtqueue::{ChainError, Queue, F_EVENT_IDX, F_INDIRECT_DESC};

/// The format this build writes and reads (2: the snapshot names the target's generation).
pub const VERSION: u32 = 2;
/// Devices one model serves at most.
pub const MAX_DEVICES: usize = 16;
/// Queues one device has at most.
pub const MAX_QUEUES: usize = 8;

/// A device as saved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SavedDevice {
    /// `Status`.
    pub status: u8,
    /// `InterruptStatus`.
    pub interrupt_status: u8,
    /// The features the driver accepted.
    pub driver_features: u64,
    /// Its queues: of each, what the driver set up and the model's two positions (`size`,
    /// `ready`, the three ring addresses, `last_avail`, `used`); the rest is derived on restore
    /// (from the features, and `signalled` from `used`) and decodes as its default.
    pub queues: Vec<Queue>,
}

/// Everything saved.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Saved {
    /// The devices, at most [`MAX_DEVICES`].
    pub devices: Vec<SavedDevice>,
}

/// Why saved bytes do not decode, or do not fit the device they are restored into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Another format version.
    Version(u32),
    /// Ends in the middle of a field.
    Truncated,
    /// A count past its limit, or a flag out of range.
    Count,
    /// Bytes after the end.
    Trailing,
    /// Another number of queues than the device has.
    Queues,
}

impl Saved {
    /// Appends the encoding (module doc) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.devices.len() as u32).to_le_bytes());
        for device in &self.devices {
            out.extend_from_slice(&[device.status, device.interrupt_status]);
            out.extend_from_slice(&device.driver_features.to_le_bytes());
            out.push(device.queues.len() as u8);
            for queue in &device.queues {
                out.extend_from_slice(&queue.size.to_le_bytes());
                out.push(queue.ready.into());
                for address in [queue.desc, queue.driver, queue.device] {
                    out.extend_from_slice(&address.to_le_bytes());
                }
                out.extend_from_slice(&queue.last_avail.to_le_bytes());
                out.extend_from_slice(&queue.used.to_le_bytes());
            }
        }
    }

    /// Reads what [`encode`](Self::encode) wrote.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader(bytes);
        let version = u32::from_le_bytes(reader.take()?);
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        let count = u32::from_le_bytes(reader.take()?) as usize;
        if count > MAX_DEVICES {
            return Err(DecodeError::Count);
        }
        let mut devices = Vec::with_capacity(count);
        for _ in 0..count {
            let [status, interrupt_status] = reader.take()?;
            let driver_features = u64::from_le_bytes(reader.take()?);
            let [queues] = reader.take()?;
            if usize::from(queues) > MAX_QUEUES
                || u32::from(interrupt_status) & !(INT_VRING | INT_CONFIG) != 0
            {
                return Err(DecodeError::Count);
            }
            let mut saved = Vec::with_capacity(queues.into());
            for _ in 0..queues {
                let size = u16::from_le_bytes(reader.take()?);
                let [ready] = reader.take()?;
                if ready > 1 {
                    return Err(DecodeError::Count);
                }
                let desc = u64::from_le_bytes(reader.take()?);
                let driver = u64::from_le_bytes(reader.take()?);
                let device = u64::from_le_bytes(reader.take()?);
                let last_avail = u16::from_le_bytes(reader.take()?);
                let used = u16::from_le_bytes(reader.take()?);
                let ready = ready == 1;
                let queue = Queue {
                    size,
                    ready,
                    desc,
                    driver,
                    device,
                    last_avail,
                    used,
                    ..Queue::default()
                };
                saved.push(queue);
            }
            devices.push(SavedDevice { status, interrupt_status, driver_features, queues: saved });
        }
        if !reader.0.is_empty() {
            return Err(DecodeError::Trailing);
        }
        Ok(Self { devices })
    }
}

/// The bytes not read yet.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    /// The next `N` bytes.
    fn take<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (head, rest) = self.0.split_first_chunk::<N>().ok_or(DecodeError::Truncated)?;
        self.0 = rest;
        Ok(*head)
    }
}

impl<D: Device> Transport<D> {
    /// The device's record.
    pub fn save(&self) -> SavedDevice {
        SavedDevice {
            status: self.status,
            interrupt_status: self.interrupt_status as u8,
            driver_features: self.driver_features,
            queues: self.queues.clone(),
        }
    }

    /// A new incarnation of `device` from its record, resumed by the restore rule (module doc):
    /// positions from the used index in guest memory, every chain after it done again. The
    /// fault, if the guest broke a ring (the device then needs a reset).
    pub fn restore<M: crate::memory::GuestMemory + ?Sized>(
        device: D,
        saved: &SavedDevice,
        memory: &mut M,
    ) -> Result<(Self, Option<Fault>), DecodeError> {
        let mut transport = Self::new(device);
        if saved.queues.len() != transport.queues.len() {
            return Err(DecodeError::Queues);
        }
        transport.status = saved.status;
        transport.driver_features = saved.driver_features;
        transport.interrupt_status = saved.interrupt_status.into();
        let features = saved.driver_features;
        let live = saved.status & (DRIVER_OK | NEEDS_RESET | FAILED) == DRIVER_OK;
        let mut fault = None;
        for (index, (queue, saved)) in transport.queues.iter_mut().zip(&saved.queues).enumerate() {
            *queue = Queue {
                signalled: saved.used,
                indirect: features & F_INDIRECT_DESC != 0,
                event_idx: features & F_EVENT_IDX != 0,
                ..*saved
            };
            if !(live && queue.ready) || fault.is_some() {
                continue;
            }
            match resume_position(queue, memory) {
                Ok(position) => {
                    (queue.last_avail, queue.used, queue.signalled) = (position, position, position)
                }
                Err(error) => {
                    fault =
                        Some(Fault::Queue { queue: index as u16, fault: DeviceFault::Chain(error) })
                }
            }
        }
        if let Some(fault) = fault {
            return Ok((transport.fail_restored(fault), Some(fault)));
        }
        if transport.queues.iter().any(|queue| queue.ready) && live {
            transport.interrupt_status |= INT_VRING;
        }
        for index in 0..transport.queues.len() as u16 {
            if let Some(fault) = transport.serve(memory, index) {
                return Ok((transport, Some(fault)));
            }
        }
        Ok((transport, None))
    }

    /// The transport with `NEEDS_RESET` set for `fault`.
    fn fail_restored(mut self, fault: Fault) -> Self {
        let _ = self.fail(fault);
        self
    }
}

/// Where a restarted model resumes `queue`: the used index in guest memory, if the available
/// index is at most a queue ahead of it.
fn resume_position<M: crate::memory::GuestMemory + ?Sized>(
    queue: &Queue,
    memory: &M,
) -> Result<u16, ChainError> {
    let used = read_u16(memory, queue.device.wrapping_add(2)).map_err(ChainError::Ring)?;
    let avail = read_u16(memory, queue.driver.wrapping_add(2)).map_err(ChainError::Ring)?;
    if avail.wrapping_sub(used) > queue.size {
        return Err(ChainError::AvailIndex { avail, position: used });
    }
    Ok(used)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn sample() -> Saved {
        let queue = Queue {
            size: 128,
            ready: true,
            desc: 0x4000_0000,
            driver: 0x4000_1000,
            device: 0x4000_2000,
            last_avail: 65530,
            used: 65529,
            ..Queue::default()
        };
        Saved {
            devices: vec![
                SavedDevice {
                    status: 15,
                    interrupt_status: 1,
                    driver_features: (1 << 32) | 0x3000_0246,
                    queues: vec![queue],
                },
                SavedDevice {
                    status: 0,
                    interrupt_status: 0,
                    driver_features: 0,
                    queues: vec![Queue::default(); 2],
                },
            ],
        }
    }

    #[test]
    fn what_is_encoded_decodes_the_same() {
        let mut bytes = Vec::new();
        sample().encode(&mut bytes);
        assert_eq!(Saved::decode(&bytes), Ok(sample()));
        let mut empty = Vec::new();
        Saved::default().encode(&mut empty);
        assert_eq!(Saved::decode(&empty), Ok(Saved::default()));
    }

    #[test]
    fn every_truncation_extension_and_bad_field_is_refused() {
        let mut bytes = Vec::new();
        sample().encode(&mut bytes);
        for length in 0..bytes.len() {
            assert_eq!(Saved::decode(&bytes[..length]), Err(DecodeError::Truncated), "{length}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Saved::decode(&longer), Err(DecodeError::Trailing));
        let mut other = bytes.clone();
        other[0] = 9;
        assert_eq!(Saved::decode(&other), Err(DecodeError::Version(9)));
        let mut many = bytes.clone();
        many[4..8].copy_from_slice(&(MAX_DEVICES as u32 + 1).to_le_bytes());
        assert_eq!(Saved::decode(&many), Err(DecodeError::Count));
        // The first device: status at 8, interrupt status 9, features 10..18, queue count 18,
        // its first queue's ready flag at 21.
        let mut interrupt = bytes.clone();
        interrupt[9] = 4;
        assert_eq!(Saved::decode(&interrupt), Err(DecodeError::Count));
        let mut queues = bytes.clone();
        queues[18] = MAX_QUEUES as u8 + 1;
        assert_eq!(Saved::decode(&queues), Err(DecodeError::Count));
        let mut ready = bytes;
        ready[21] = 2;
        assert_eq!(Saved::decode(&ready), Err(DecodeError::Count));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = crate::test_rng::Xorshift(0x9e37_79b9_7f4a_7c15);
        let mut bytes = Vec::new();
        sample().encode(&mut bytes);
        for _ in 0..5000 {
            let mut damaged = bytes.clone();
            rng.damage(&mut damaged, 8);
            let _ = Saved::decode(&damaged);
            let length = (rng.next() % 120) as usize;
            let mut random: Vec<u8> = (0..length).map(|_| rng.next() as u8).collect();
            if length >= 4 {
                random[..4].copy_from_slice(&VERSION.to_le_bytes());
            }
            let _ = Saved::decode(&random);
        }
    }
}
