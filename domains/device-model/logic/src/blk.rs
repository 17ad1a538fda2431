//! virtio-blk (virtio 1.2 §5.2; numbers from Linux's `include/uapi/linux/virtio_blk.h`) over a
//! [`Disk`] the domain keeps where it survives the model's restart (the preserved region).
//!
//! A request is a chain whose readable bytes start with the 16-byte header `{type: le32,
//! reserved: le32, sector: le64}` and whose last writable byte is the status (§5.2.6);
//! framing across descriptors is free (`VIRTIO_F_VERSION_1` implies any layout). For
//! `VIRTIO_BLK_T_OUT` the readable bytes after the header are the data, for `VIRTIO_BLK_T_IN`
//! and `VIRTIO_BLK_T_GET_ID` the writable bytes before the status.
//!
//! Offered: `VIRTIO_F_VERSION_1`, `VIRTIO_F_INDIRECT_DESC`, `VIRTIO_F_EVENT_IDX`,
//! `VIRTIO_BLK_F_SIZE_MAX` ([`SIZE_MAX`] 64 KiB), `VIRTIO_BLK_F_SEG_MAX` ([`SEG_MAX`] 126),
//! `VIRTIO_BLK_F_BLK_SIZE` (512) and `VIRTIO_BLK_F_FLUSH` (the [`Disk`]'s flush). One queue
//! of up to [`MAX_QUEUE_SIZE`] entries. The configuration space is `struct virtio_blk_config`
//! up to the write-zeroes fields (60 bytes), zero past `blk_size`.
//!
//! Faults, by who is at fault: a chain without room for the header or the status is
//! malformed ([`DeviceFault::Malformed`]: the device needs a reset); a request the device
//! can read but not do is answered in its status: past the disk's end, a length not a
//! multiple of 512, or a failing [`Disk`] is `VIRTIO_BLK_S_IOERR`, an unknown type
//! `VIRTIO_BLK_S_UNSUPP`.
//!
//! # Invariants
//! - Every request is done at most up to the disk's end; reading or writing the same request
//!   twice leaves the disk and the guest's buffers as once (what a restart relies on).

use alloc::vec::Vec;

use crate::memory::{GuestMemory, OutsideRam};
use crate::mmio::{Device, DeviceFault, F_VERSION_1};
use crate::virtqueue::{Chain, Queue, F_EVENT_IDX, F_INDIRECT_DESC, MAX_QUEUE_SIZE};

/// virtio-blk's device id (§5.2.1).
pub const DEVICE_ID: u32 = 2;
/// The unit of `sector` and `capacity`, whatever `blk_size` says (§5.2.6).
pub const SECTOR_SIZE: u64 = 512;
/// Request type: read (`VIRTIO_BLK_T_IN`).
pub const T_IN: u32 = 0;
/// Request type: write (`VIRTIO_BLK_T_OUT`).
pub const T_OUT: u32 = 1;
/// Request type: flush (`VIRTIO_BLK_T_FLUSH`).
pub const T_FLUSH: u32 = 4;
/// Request type: device id string (`VIRTIO_BLK_T_GET_ID`).
pub const T_GET_ID: u32 = 8;
/// Status: done (`VIRTIO_BLK_S_OK`).
pub const S_OK: u8 = 0;
/// Status: I/O error (`VIRTIO_BLK_S_IOERR`).
pub const S_IOERR: u8 = 1;
/// Status: unsupported request (`VIRTIO_BLK_S_UNSUPP`).
pub const S_UNSUPP: u8 = 2;
/// `size_max` is valid (`VIRTIO_BLK_F_SIZE_MAX`, bit 1).
pub const F_SIZE_MAX: u64 = 1 << 1;
/// `seg_max` is valid (`VIRTIO_BLK_F_SEG_MAX`, bit 2).
pub const F_SEG_MAX: u64 = 1 << 2;
/// The disk is read-only (`VIRTIO_BLK_F_RO`, bit 5): offered only by a device made with
/// [`Block::read_only`], which fails every write with `VIRTIO_BLK_S_IOERR` (§5.2.6.2).
pub const F_RO: u64 = 1 << 5;
/// `blk_size` is valid (`VIRTIO_BLK_F_BLK_SIZE`, bit 6).
pub const F_BLK_SIZE: u64 = 1 << 6;
/// Flush requests (`VIRTIO_BLK_F_FLUSH`, bit 9).
pub const F_FLUSH: u64 = 1 << 9;
/// The largest segment, in bytes.
pub const SIZE_MAX: u32 = 64 << 10;
/// The most data segments in a request.
pub const SEG_MAX: u32 = 126;
/// The id string's length (`VIRTIO_BLK_ID_BYTES`).
pub const ID_BYTES: usize = 20;
/// The configuration space's length: `struct virtio_blk_config` through
/// `write_zeroes_may_unmap` and its padding.
pub const CONFIG_LENGTH: usize = 60;
/// Bytes copied between disk and guest at a time.
const CHUNK: usize = 4096;

/// A disk failure (the guest sees `VIRTIO_BLK_S_IOERR`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskError;

/// The disk behind the device: bytes the model may read and write, kept by the domain.
pub trait Disk {
    /// Its size in bytes (capacity is this over 512, rounded down).
    fn size(&self) -> u64;
    /// Fills `buffer` from byte `offset` on (inside [`size`](Self::size)).
    fn read(&mut self, offset: u64, buffer: &mut [u8]) -> Result<(), DiskError>;
    /// Writes `data` from byte `offset` on (inside [`size`](Self::size)).
    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), DiskError>;
    /// Makes every completed write durable.
    fn flush(&mut self) -> Result<(), DiskError>;
}

/// A virtio-blk device.
#[derive(Debug)]
pub struct Block<D> {
    disk: D,
    config: [u8; CONFIG_LENGTH],
    id: [u8; ID_BYTES],
    scratch: Vec<u8>,
    read_only: bool,
}

impl<D: Disk> Block<D> {
    /// A device serving `disk`, answering `VIRTIO_BLK_T_GET_ID` with `id`.
    pub fn new(disk: D, id: [u8; ID_BYTES]) -> Self {
        let mut config = [0; CONFIG_LENGTH];
        config[0..8].copy_from_slice(&(disk.size() / SECTOR_SIZE).to_le_bytes());
        config[8..12].copy_from_slice(&SIZE_MAX.to_le_bytes());
        config[12..16].copy_from_slice(&SEG_MAX.to_le_bytes());
        config[20..24].copy_from_slice(&(SECTOR_SIZE as u32).to_le_bytes());
        Self { disk, config, id, scratch: alloc::vec![0; CHUNK], read_only: false }
    }

    /// The device offering [`F_RO`] and refusing writes.
    pub fn read_only(self) -> Self {
        Self { read_only: true, ..self }
    }

    /// The disk.
    pub fn disk(&self) -> &D {
        &self.disk
    }

    /// The disk, handed back (the domain keeps it across a restart).
    pub fn into_disk(self) -> D {
        self.disk
    }

    /// Does the request in `chain` and writes its status; the bytes written into the chain
    /// (the used entry's length), or the reason the chain is malformed.
    pub fn handle<M: GuestMemory + ?Sized>(
        &mut self,
        memory: &mut M,
        chain: &Chain,
    ) -> Result<u32, DeviceFault> {
        let malformed = |reason| DeviceFault::Malformed { head: chain.head, reason };
        let ram = |_: OutsideRam| malformed("a buffer left RAM");
        let (readable, writable) = (chain.length(false), chain.length(true));
        if readable < 16 {
            return Err(malformed("no room for the 16-byte request header"));
        }
        if writable == 0 {
            return Err(malformed("no room for the status byte"));
        }
        let mut header = [0; 16];
        chain.read_at(memory, 0, &mut header).map_err(ram)?;
        let (kind, sector) = header_fields(&header);
        let data_in = writable - 1;
        let (status, written) = match kind {
            T_IN => self.read_request(memory, chain, sector, data_in).map_err(ram)?,
            T_OUT if self.read_only => (S_IOERR, 0),
            T_OUT => self.write_request(memory, chain, sector, readable - 16).map_err(ram)?,
            T_FLUSH => (if self.disk.flush().is_ok() { S_OK } else { S_IOERR }, 0),
            T_GET_ID => {
                let length = data_in.min(ID_BYTES as u64) as usize;
                chain.write_at(memory, 0, &self.id[..length]).map_err(ram)?;
                (S_OK, length as u64)
            }
            _ => (S_UNSUPP, 0),
        };
        chain.write_at(memory, data_in, &[status]).map_err(ram)?;
        // At most MAX_CHAIN_BYTES.
        Ok(u32::try_from(written + 1).unwrap_or(u32::MAX))
    }

    /// The byte range of `length` bytes from `sector`, if it is whole sectors on the disk.
    fn range(&self, sector: u64, length: u64) -> Option<u64> {
        let offset = sector.checked_mul(SECTOR_SIZE)?;
        let end = offset.checked_add(length)?;
        (length.is_multiple_of(SECTOR_SIZE) && end <= self.disk.size()).then_some(offset)
    }

    /// `VIRTIO_BLK_T_IN`: disk to the writable buffers; (status, bytes written).
    fn read_request<M: GuestMemory + ?Sized>(
        &mut self,
        memory: &mut M,
        chain: &Chain,
        sector: u64,
        length: u64,
    ) -> Result<(u8, u64), OutsideRam> {
        let Some(offset) = self.range(sector, length) else {
            return Ok((S_IOERR, 0));
        };
        let mut done = 0;
        while done < length {
            let n = (length - done).min(CHUNK as u64) as usize;
            if self.disk.read(offset + done, &mut self.scratch[..n]).is_err() {
                return Ok((S_IOERR, done));
            }
            chain.write_at(memory, done, &self.scratch[..n])?;
            done += n as u64;
        }
        Ok((S_OK, done))
    }

    /// `VIRTIO_BLK_T_OUT`: the readable buffers after the header to disk; (status, 0).
    fn write_request<M: GuestMemory + ?Sized>(
        &mut self,
        memory: &M,
        chain: &Chain,
        sector: u64,
        length: u64,
    ) -> Result<(u8, u64), OutsideRam> {
        let Some(offset) = self.range(sector, length) else {
            return Ok((S_IOERR, 0));
        };
        let mut done = 0;
        while done < length {
            let n = (length - done).min(CHUNK as u64) as usize;
            chain.read_at(memory, 16 + done, &mut self.scratch[..n])?;
            if self.disk.write(offset + done, &self.scratch[..n]).is_err() {
                return Ok((S_IOERR, 0));
            }
            done += n as u64;
        }
        Ok((S_OK, 0))
    }
}

/// A request header's type and sector (`struct virtio_blk_outhdr`; `reserved`, once `ioprio`,
/// is ignored).
fn header_fields(header: &[u8; 16]) -> (u32, u64) {
    let [t0, t1, t2, t3, _, _, _, _, s0, s1, s2, s3, s4, s5, s6, s7] = *header;
    (u32::from_le_bytes([t0, t1, t2, t3]), u64::from_le_bytes([s0, s1, s2, s3, s4, s5, s6, s7]))
}

impl<D: Disk> Device for Block<D> {
    fn device_id(&self) -> u32 {
        DEVICE_ID
    }

    fn features(&self) -> u64 {
        let read_only = if self.read_only { F_RO } else { 0 };
        F_VERSION_1
            | F_INDIRECT_DESC
            | F_EVENT_IDX
            | F_SIZE_MAX
            | F_SEG_MAX
            | F_BLK_SIZE
            | F_FLUSH
            | read_only
    }

    fn config(&self) -> &[u8] {
        &self.config
    }

    fn queue_count(&self) -> u16 {
        1
    }

    fn queue_max(&self) -> u16 {
        MAX_QUEUE_SIZE
    }

    fn process<M: GuestMemory + ?Sized>(
        &mut self,
        memory: &mut M,
        index: u16,
        queues: &mut [Queue],
    ) -> Result<(), DeviceFault> {
        let Some(queue) = queues.get_mut(usize::from(index)) else { return Ok(()) };
        while let Some(chain) = queue.pop(memory).map_err(DeviceFault::Chain)? {
            let written = self.handle(memory, &chain)?;
            queue.push(memory, chain.head, written).map_err(DeviceFault::Chain)?;
        }
        Ok(())
    }
}

/// A disk in memory the domain owns (its preserved region): writes land there at once, so
/// flush has nothing to do.
#[derive(Debug)]
pub struct SliceDisk<'a>(pub &'a mut [u8]);

impl Disk for SliceDisk<'_> {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }

    fn read(&mut self, offset: u64, buffer: &mut [u8]) -> Result<(), DiskError> {
        let start = usize::try_from(offset).map_err(|_| DiskError)?;
        let end = start.checked_add(buffer.len()).ok_or(DiskError)?;
        buffer.copy_from_slice(self.0.get(start..end).ok_or(DiskError)?);
        Ok(())
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        let start = usize::try_from(offset).map_err(|_| DiskError)?;
        let end = start.checked_add(data.len()).ok_or(DiskError)?;
        self.0.get_mut(start..end).ok_or(DiskError)?.copy_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DiskError> {
        Ok(())
    }
}

/// A disk in a `Vec`, for the tests.
#[cfg(test)]
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VecDisk(pub Vec<u8>);

#[cfg(test)]
impl Disk for VecDisk {
    fn size(&self) -> u64 {
        self.0.len() as u64
    }

    fn read(&mut self, offset: u64, buffer: &mut [u8]) -> Result<(), DiskError> {
        let start = usize::try_from(offset).map_err(|_| DiskError)?;
        let bytes = self.0.get(start..start + buffer.len()).ok_or(DiskError)?;
        buffer.copy_from_slice(bytes);
        Ok(())
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        let start = usize::try_from(offset).map_err(|_| DiskError)?;
        let bytes = self.0.get_mut(start..start + data.len()).ok_or(DiskError)?;
        bytes.copy_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), DiskError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mmio::Transport;
    use crate::mmio::{
        Fault, ACKNOWLEDGE, DRIVER, DRIVER_FEATURES, DRIVER_FEATURES_SEL, DRIVER_OK,
    };
    use crate::mmio::{FEATURES_OK, INTERRUPT_ACK, INTERRUPT_STATUS, NEEDS_RESET, STATUS};
    use crate::test_driver::{Completion, Guest, ID, SECTORS};
    use crate::virtqueue::AVAIL_F_NO_INTERRUPT;

    fn pattern(seed: u8, length: usize) -> Vec<u8> {
        (0..length).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    /// Linux's happy path, with indirect descriptors and event indices or without.
    fn happy_path(wanted: u64, indirect: bool) {
        let mut model = crate::test_driver::model();
        let mut guest = Guest::new();
        let features = guest.probe(&mut model, wanted).unwrap();
        assert_eq!(features, wanted & model.device().features());
        // Capacity (two 32-bit halves, as Linux reads a u64), seg_max, blk_size.
        let capacity = |model: &mut crate::test_driver::Model, at: u64| model.read(0x100 + at, 4).0;
        assert_eq!(capacity(&mut model, 0) | (capacity(&mut model, 4) << 32), SECTORS);
        assert_eq!(model.read(0x10c, 4), (u64::from(SEG_MAX), None));
        assert_eq!(model.read(0x114, 4), (512, None));
        assert_eq!(model.read(0x114, 1), (0, None));
        assert_eq!(model.read(0x115, 2), (2, None));

        let data = pattern(7, 1024);
        let head = guest.submit(T_OUT, 3, &data, 0, indirect);
        guest.notify(&mut model);
        assert_eq!(guest.completions(), [Completion { head, length: 1, status: S_OK }]);
        assert!(model.interrupt_line());
        assert_eq!(guest.read(&mut model, INTERRUPT_STATUS), 1);
        guest.write(&mut model, INTERRUPT_ACK, 1);
        assert!(!model.interrupt_line());
        assert_eq!(&model.device().disk().0[3 * 512..5 * 512], &data[..]);

        let head = guest.submit(T_IN, 3, &[], 1024, indirect);
        guest.notify(&mut model);
        assert_eq!(guest.completions(), [Completion { head, length: 1025, status: S_OK }]);
        assert_eq!(guest.data(head, 1024), data);

        // Several at once, one notify: flush, id, past the end, a length not of sectors, an
        // unknown type, a sector whose byte offset overflows.
        let flush = guest.submit(T_FLUSH, 0, &[], 0, indirect);
        let id = guest.submit(T_GET_ID, 0, &[], 20, indirect);
        let past = guest.submit(T_IN, SECTORS - 1, &[], 1024, indirect);
        let odd = guest.submit(T_OUT, 0, &[1; 100], 0, indirect);
        guest.notify(&mut model);
        let unknown = guest.submit(3, 0, &[], 0, indirect);
        let overflow = guest.submit(T_OUT, u64::MAX / 256, &[1; 512], 0, indirect);
        guest.notify(&mut model);
        let expected = [
            Completion { head: flush, length: 1, status: S_OK },
            Completion { head: id, length: 21, status: S_OK },
            Completion { head: past, length: 1, status: S_IOERR },
            Completion { head: odd, length: 1, status: S_IOERR },
            Completion { head: unknown, length: 1, status: S_UNSUPP },
            Completion { head: overflow, length: 1, status: S_IOERR },
        ];
        assert_eq!(guest.completions(), expected);
        assert_eq!(guest.data(id, 20), ID);
        assert_eq!(&model.device().disk().0[..512], &[0; 512]);
        assert_eq!(model.status() & (DRIVER_OK | NEEDS_RESET), DRIVER_OK);
    }

    #[test]
    fn linux_reads_and_writes_with_every_feature() {
        happy_path(u64::MAX, false);
        happy_path(u64::MAX, true);
    }

    #[test]
    fn linux_reads_and_writes_with_version_1_alone() {
        happy_path(F_VERSION_1, false);
    }

    #[test]
    fn features_without_version_1_or_not_offered_are_refused() {
        let mut model = crate::test_driver::model();
        let mut guest = Guest::new();
        assert_eq!(guest.probe(&mut model, F_FLUSH), None);
        assert_eq!(model.status() & FEATURES_OK, 0);
        // Bit 33 (not offered) with VERSION_1: refused too.
        guest.write(&mut model, STATUS, 0);
        guest.write(&mut model, STATUS, (ACKNOWLEDGE | DRIVER).into());
        guest.write(&mut model, DRIVER_FEATURES_SEL, 1);
        guest.write(&mut model, DRIVER_FEATURES, 3);
        guest.write(&mut model, STATUS, (ACKNOWLEDGE | DRIVER | FEATURES_OK).into());
        assert_eq!(model.status(), ACKNOWLEDGE | DRIVER);
        // And a later probe with good features succeeds after the reset.
        assert!(guest.probe(&mut model, F_VERSION_1).is_some());
    }

    #[test]
    fn the_driver_decides_when_it_is_interrupted() {
        // Without event indices: VIRTQ_AVAIL_F_NO_INTERRUPT.
        let mut model = crate::test_driver::model();
        let mut guest = Guest::new();
        guest.probe(&mut model, F_VERSION_1);
        guest.memory.put_u16(crate::test_driver::AVAIL, AVAIL_F_NO_INTERRUPT);
        guest.submit(T_FLUSH, 0, &[], 0, false);
        guest.notify(&mut model);
        assert_eq!(guest.completions().len(), 1);
        assert!(!model.interrupt_line());
        // With event indices: used_event 2 means "interrupt when entry 2 is used" (the third).
        let mut model = crate::test_driver::model();
        let mut guest = Guest::new();
        guest.probe(&mut model, F_VERSION_1 | F_EVENT_IDX);
        let used_event = crate::test_driver::AVAIL + 4 + 2 * u64::from(crate::test_driver::SIZE);
        guest.memory.put_u16(used_event, 2);
        for expected in [false, false, true, false] {
            guest.submit(T_FLUSH, 0, &[], 0, false);
            guest.notify(&mut model);
            assert_eq!(model.interrupt_line(), expected);
            guest.write(&mut model, INTERRUPT_ACK, 1);
        }
        // The model told the driver where it reads next (avail_event).
        let avail_event = crate::test_driver::USED + 4 + 8 * u64::from(crate::test_driver::SIZE);
        assert_eq!(guest.memory.get_u16(avail_event), 4);
        assert_eq!(guest.completions().len(), 4);
    }

    #[test]
    fn a_chain_without_header_or_status_needs_a_reset() {
        let mut model = crate::test_driver::model();
        let mut guest = Guest::new();
        guest.probe(&mut model, F_VERSION_1);
        let area = Guest::area(0);
        // An 8-byte header and a status.
        guest.descriptor(crate::test_driver::DESC, 0, area, 8, DESC_NEXT, 1);
        guest.descriptor(crate::test_driver::DESC, 1, area + 0x10, 1, DESC_WRITE, 0);
        guest.make_available(0);
        let fault = model.write(&mut guest.memory, crate::mmio::QUEUE_NOTIFY, 4, 0);
        let reason = "no room for the 16-byte request header";
        let malformed = DeviceFault::Malformed { head: 0, reason };
        assert_eq!(fault, Some(Fault::Queue { queue: 0, fault: malformed }));
        assert_ne!(model.status() & NEEDS_RESET, 0);
        // A header and no status.
        let mut model = crate::test_driver::model();
        let mut guest = Guest::new();
        guest.probe(&mut model, F_VERSION_1);
        guest.descriptor(crate::test_driver::DESC, 0, area, 16, 0, 0);
        guest.make_available(0);
        let fault = model.write(&mut guest.memory, crate::mmio::QUEUE_NOTIFY, 4, 0);
        let malformed = DeviceFault::Malformed { head: 0, reason: "no room for the status byte" };
        assert_eq!(fault, Some(Fault::Queue { queue: 0, fault: malformed }));
    }

    /// A read-only device offers `VIRTIO_BLK_F_RO`, fails writes with `IOERR` and leaves the
    /// disk alone, and still reads.
    #[test]
    fn a_read_only_disk_refuses_writes() {
        let disk = VecDisk(pattern(3, (SECTORS * 512) as usize));
        let mut model = Transport::new(Block::new(disk.clone(), ID).read_only());
        assert_ne!(model.device().features() & F_RO, 0);
        assert_eq!(crate::test_driver::model().device().features() & F_RO, 0);
        let mut guest = Guest::new();
        guest.probe(&mut model, u64::MAX);
        let head = guest.submit(T_OUT, 1, &[9; 512], 0, false);
        guest.notify(&mut model);
        assert_eq!(guest.completions(), [Completion { head, length: 1, status: S_IOERR }]);
        assert_eq!(model.device().disk(), &disk);
        let head = guest.submit(T_IN, 1, &[], 512, false);
        guest.notify(&mut model);
        assert_eq!(guest.completions(), [Completion { head, length: 513, status: S_OK }]);
        assert_eq!(guest.data(head, 512), &disk.0[512..1024]);
    }

    /// The slice disk refuses what runs past its end.
    #[test]
    fn slice_disk_bounds() {
        let mut bytes = [0u8; 1024];
        let mut disk = SliceDisk(&mut bytes);
        assert_eq!(disk.size(), 1024);
        assert_eq!(disk.write(1020, &[1; 4]), Ok(()));
        assert_eq!(disk.write(1021, &[1; 4]), Err(DiskError));
        assert_eq!(disk.write(u64::MAX, &[1]), Err(DiskError));
        let mut buffer = [0; 8];
        assert_eq!(disk.read(1016, &mut buffer), Ok(()));
        assert_eq!(buffer, [0, 0, 0, 0, 1, 1, 1, 1]);
        assert_eq!(disk.read(1017, &mut buffer), Err(DiskError));
    }

    const DESC_NEXT: u16 = crate::virtqueue::DESC_F_NEXT;
    const DESC_WRITE: u16 = crate::virtqueue::DESC_F_WRITE;
}
