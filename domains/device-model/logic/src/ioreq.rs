//! One IOREQ record, from the model's side: checked, decoded into an [`Access`], dispatched on
//! a [`Bus`] of device ranges, and answered with a [`Completion`].
//!
//! # What Xen on Arm sends (4.17)
//! `xen/arch/arm/ioreq.c`, `try_fwd_ioserv`: a trapped data abort inside a range the server
//! mapped becomes one record in the vCPU's slot with `state` [`STATE_IOREQ_READY`], `type`
//! [`IOREQ_TYPE_COPY`], `count` 1, `data_is_ptr` 0, `df` 0, `size` `1 << dabt.size` (1, 2, 4 or
//! 8), `dir` [`IOREQ_READ`] or `IOREQ_WRITE`, and `data` the *whole* source register
//! (`get_user_reg`), not cut to the access size: a byte store of `x1 = 0x1234` carries 0x1234,
//! so the model cuts a write's data to `size` ([`Access::write`] holds only those bytes). The
//! only other request Arm sends synchronously is [`IOREQ_TYPE_INVALIDATE`] (`xen/common/ioreq.c`,
//! `ioreq_signal_mapcache_invalidate`, `ioreq_broadcast(.., false)`), which is answered like any
//! request so that the vCPU resumes.
//!
//! # What the model answers
//! Xen's side (`xen/common/ioreq.c`, `wait_for_io`) waits until the state moves on: a record
//! set to [`STATE_IORESP_READY`] completes the access (`arch_ioreq_complete_mmio` →
//! `handle_ioserv`, which always resumes the guest past the instruction), a state that goes
//! backwards or is not one of the four crashes the target. So an IOREQ server cannot inject a
//! data abort: every request the model refuses is still answered, or its vCPU waits forever.
//! - An access a device emulates: a read's `data` is the value cut to `size`; Xen's
//!   `handle_ioserv` writes `data` to the register after `sign_extend`, which expects the
//!   bits above the access size to be zero (`xen/arch/arm/include/asm/traps.h`).
//! - A read that nothing answers (no device holds the address, or the device refuses the
//!   width or register): all ones in the access's bytes; a write that nothing takes: ignored.
//!   That is x86 Xen's answer to an access no handler claims (`xen/arch/x86/hvm/emulate.c`,
//!   `null_read` gives `~0`, `null_write` drops) and the PCI master-abort convention. Xen on
//!   Arm does not do that for an address no server maps: `try_fwd_ioserv` returns
//!   `IO_UNHANDLED` and `do_trap_stage2_abort_guest` (`xen/arch/arm/traps.c`) injects a data
//!   abort, as its in-Xen handlers do for a register they refuse (`vpl011_mmio_read` returning
//!   0); an emulator has no such answer, hence all ones. Each such case carries a [`Note`].
//! - A record that is not a well-formed MMIO request ([`Refusal`]) but is `READY`: answered
//!   the same way (a read all ones in its `size` bytes, at most 8; `data` left as it was for a
//!   write or when `data_is_ptr`, since the model writes no guest memory), so the vCPU resumes.
//! - A record that is not `READY` is not ours to answer and is left untouched.
//!
//! # Invariants
//! - Nothing in a record (every field, every bit) can panic [`serve`]; it reads the record
//!   once, by value, so a record that changes under it cannot make it decide twice.
//! - [`Completion::data`] is cut to the access size for every emulated read.
//! - The bus's ranges never overlap; an access is dispatched only if all its bytes lie in one
//!   device's range (as `ioreq_server_select` checks its own ranges with
//!   `rangeset_contains_range`), at the offset from that range's start.

use alloc::vec::Vec;

use xenolith_abi::xen::ioreq::{
    ioreq, IOREQ_READ, IOREQ_TYPE_COPY, IOREQ_TYPE_INVALIDATE, STATE_IOREQ_READY,
    STATE_IORESP_READY,
};

/// The size of one MMIO access: `1 << dabt.size` bytes (`try_fwd_ioserv`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Width {
    /// 1 byte (`ldrb`/`strb`).
    Byte,
    /// 2 bytes (`ldrh`/`strh`).
    Half,
    /// 4 bytes (`ldr w`/`str w`).
    Word,
    /// 8 bytes (`ldr x`/`str x`).
    Double,
}

impl Width {
    /// The width of a record's `size`, if it is 1, 2, 4 or 8.
    pub const fn from_size(size: u32) -> Option<Self> {
        match size {
            1 => Some(Self::Byte),
            2 => Some(Self::Half),
            4 => Some(Self::Word),
            8 => Some(Self::Double),
            _ => None,
        }
    }

    /// The access size in bytes.
    pub const fn bytes(self) -> u32 {
        match self {
            Self::Byte => 1,
            Self::Half => 2,
            Self::Word => 4,
            Self::Double => 8,
        }
    }

    /// The bits an access of this width holds, from bit 0.
    pub const fn mask(self) -> u64 {
        ones(self.bytes())
    }
}

/// All ones in the low `size` bytes (all 64 bits from 8 up).
const fn ones(size: u32) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (size * 8)) - 1
    }
}

/// Something about an access that the domain should log: what was refused or lost. The access
/// is still answered (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Note {
    /// No device on the bus holds every byte of the access: a read answered all ones, a write
    /// ignored.
    Unclaimed,
    /// The device does not take accesses of this width here (the PL011: 8-byte accesses, as
    /// Xen's `vpl011_reg32_check_access`); read all ones, write ignored.
    BadWidth,
    /// No register at this offset (reserved, or not a register's first byte); read all ones,
    /// write ignored.
    NoRegister,
    /// A write to a read-only register, ignored.
    ReadOnly,
    /// A read of a write-only register; answered all ones.
    WriteOnly,
    /// A byte written to a full transmit FIFO, dropped (the guest did not wait for `TXFF` to
    /// clear).
    TransmitFull,
    /// A read of the data register with the receive FIFO empty, answered 0 (the guest did not
    /// wait for `RXFE` to clear).
    ReceiveEmpty,
}

/// What a device answers a read: the value (the bus cuts it to the access width) and anything
/// to log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reply {
    /// The value read.
    pub data: u64,
    /// Something to log, if anything.
    pub note: Option<Note>,
}

impl Reply {
    /// A value read without remark.
    pub const fn value(data: u64) -> Self {
        Self { data, note: None }
    }

    /// A read the device refuses: all ones, with the reason.
    pub const fn refused(note: Note) -> Self {
        Self { data: u64::MAX, note: Some(note) }
    }
}

/// A device behind the bus: register reads and writes at an offset from the start of its
/// range. Implementations must not panic on any offset, width or value.
pub trait MmioDevice {
    /// Reads `width` bytes at `offset`.
    fn read(&mut self, offset: u64, width: Width) -> Reply;
    /// Writes the low `width` bytes of `value` (the bits above are zero) at `offset`; returns
    /// anything to log.
    fn write(&mut self, offset: u64, width: Width, value: u64) -> Option<Note>;
}

/// One guest access, decoded from a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    /// Guest physical address of its first byte.
    pub addr: u64,
    /// Its width.
    pub size: Width,
    /// For a write, the value written, cut to `size`; `None` for a read.
    pub write: Option<u64>,
}

/// What a record asks of the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// An MMIO access to emulate.
    Access(Access),
    /// [`IOREQ_TYPE_INVALIDATE`]: drop every cached mapping of the target's memory.
    Invalidate,
}

/// Why a record is not served as an MMIO access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Its state is not [`STATE_IOREQ_READY`]: no request is waiting in it (or the model has
    /// taken it already). Left untouched, not answered.
    NotReady {
        /// The record's `state`.
        state: u8,
    },
    /// A `type` other than [`IOREQ_TYPE_COPY`] and [`IOREQ_TYPE_INVALIDATE`] (port I/O, PCI
    /// config and time-offset requests are x86's).
    Type {
        /// The record's `type`.
        r#type: u8,
    },
    /// `data_is_ptr` set: `data` is a guest address (x86 `rep` string instructions), which an
    /// Arm access never is.
    DataIsPointer,
    /// `count` other than 1 (x86 `rep`).
    Count {
        /// The record's `count`.
        count: u32,
    },
    /// `size` other than 1, 2, 4 or 8.
    Size {
        /// The record's `size`.
        size: u32,
    },
}

impl Refusal {
    /// Whether [`serve`] answers a record refused for this reason (it does unless the record
    /// was not `READY`).
    pub const fn answered(self) -> bool {
        !matches!(self, Self::NotReady { .. })
    }
}

/// Checks and decodes a record (see the module documentation for what is accepted). `df` and
/// the padding bits are ignored: with `count` 1 the direction flag means nothing.
pub fn decode(record: &ioreq) -> Result<Request, Refusal> {
    if record.state() != STATE_IOREQ_READY {
        return Err(Refusal::NotReady { state: record.state() });
    }
    match record.r#type {
        IOREQ_TYPE_COPY => {}
        IOREQ_TYPE_INVALIDATE => return Ok(Request::Invalidate),
        r#type => return Err(Refusal::Type { r#type }),
    }
    if record.data_is_ptr() {
        return Err(Refusal::DataIsPointer);
    }
    if record.count != 1 {
        return Err(Refusal::Count { count: record.count });
    }
    let size = Width::from_size(record.size).ok_or(Refusal::Size { size: record.size })?;
    let write = (record.dir() != IOREQ_READ).then_some(record.data & size.mask());
    Ok(Request::Access(Access { addr: record.addr, size, write }))
}

/// The answer to write back into a record's slot: `data`, then (after a write barrier, so
/// that Xen never sees the state before the data) the bit-field byte, whose state is
/// [`STATE_IORESP_READY`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The record's new `data`.
    pub data: u64,
    /// The record's new bit-field byte (`state` [`STATE_IORESP_READY`], the other bits as
    /// they were).
    pub bitfield: u8,
}

impl Completion {
    /// The answer to `record`, whose read (if it is one) returned `read`.
    fn for_record(record: &ioreq, read: Option<u64>) -> Self {
        let mut answered = *record;
        answered.set_state(STATE_IORESP_READY);
        Self { data: read.unwrap_or(record.data), bitfield: answered.bitfield }
    }

    /// Writes the answer into `record` (for tests and for a domain that copies the record
    /// back whole; the shared slot itself needs the ordered writes described above).
    pub fn apply(self, record: &mut ioreq) {
        record.data = self.data;
        record.bitfield = self.bitfield;
    }
}

/// What [`serve`] did with a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An access emulated (or answered for nobody: see the note).
    Emulated {
        /// The access.
        access: Access,
        /// Anything to log about it.
        note: Option<Note>,
    },
    /// An [`IOREQ_TYPE_INVALIDATE`] answered: the domain drops any mapping of the target's
    /// memory it caches before it serves another request.
    Invalidate,
    /// A record refused (answered unless [`Refusal::answered`] says otherwise).
    Refused(Refusal),
}

/// [`serve`]'s result: what happened and the answer to write, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Served {
    /// What happened.
    pub outcome: Outcome,
    /// The answer to write into the slot; `None` only for a record that was not `READY`.
    pub completion: Option<Completion>,
}

/// Serves one vCPU's record against `bus`: decodes it, performs the access on the device that
/// holds it, and returns the answer. `record` is a copy of the slot, read once.
pub fn serve<D: MmioDevice>(bus: &mut Bus<D>, record: &ioreq) -> Served {
    serve_with(record, |access| match access.write {
        Some(value) => Reply { data: 0, note: bus.write(access.addr, access.size, value) },
        None => bus.read(access.addr, access.size),
    })
}

/// As [`serve`], with `perform` doing a decoded access instead of a [`Bus`]: it returns a
/// read's value (cut to the access size here; ignored for a write) and anything to log. The
/// domain's devices need the target's memory for some writes (a virtqueue notify), which a
/// [`MmioDevice`] is not given.
pub fn serve_with(record: &ioreq, perform: impl FnOnce(Access) -> Reply) -> Served {
    let record = *record;
    match decode(&record) {
        Ok(Request::Access(access)) => {
            let mask = access.size.mask();
            let reply = perform(access);
            let (read, note) = match access.write {
                Some(_) => (None, reply.note),
                None => (Some(reply.data & mask), reply.note),
            };
            Served {
                outcome: Outcome::Emulated { access, note },
                completion: Some(Completion::for_record(&record, read)),
            }
        }
        Ok(Request::Invalidate) => Served {
            outcome: Outcome::Invalidate,
            completion: Some(Completion::for_record(&record, None)),
        },
        Err(refusal) => {
            let read = record.dir() == IOREQ_READ && !record.data_is_ptr();
            let completion = refusal
                .answered()
                .then(|| Completion::for_record(&record, read.then(|| ones(record.size))));
            Served { outcome: Outcome::Refused(refusal), completion }
        }
    }
}

/// A device's handle on a [`Bus`]: the order of registration, from 0.
pub type DeviceId = usize;

/// Why [`Bus::register`] refused a range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusError {
    /// The range is empty.
    Empty,
    /// The range runs past the end of the address space.
    Wraps,
    /// The range overlaps the one of this device.
    Overlaps(DeviceId),
}

/// One device and the guest physical range it answers.
#[derive(Debug)]
struct Region<D> {
    start: u64,
    /// Last byte, inclusive (a range may end at `u64::MAX`).
    last: u64,
    device: D,
}

/// The devices of one target and their non-overlapping guest physical ranges. `D` is a device
/// type, an enum of the domain's devices, or `Box<dyn MmioDevice>`.
#[derive(Debug)]
pub struct Bus<D> {
    regions: Vec<Region<D>>,
}

impl<D> Default for Bus<D> {
    fn default() -> Self {
        Self { regions: Vec::new() }
    }
}

impl<D> Bus<D> {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `device` answering the `len` bytes from `start`; refuses an empty range, one
    /// past the end of the address space, or one that overlaps a device's already there.
    pub fn register(&mut self, start: u64, len: u64, device: D) -> Result<DeviceId, BusError> {
        let last = start.checked_add(len.checked_sub(1).ok_or(BusError::Empty)?);
        let last = last.ok_or(BusError::Wraps)?;
        if let Some(id) = self.regions.iter().position(|r| start <= r.last && r.start <= last) {
            return Err(BusError::Overlaps(id));
        }
        self.regions.push(Region { start, last, device });
        Ok(self.regions.len() - 1)
    }

    /// The device registered as `id`.
    pub fn device(&self, id: DeviceId) -> Option<&D> {
        self.regions.get(id).map(|r| &r.device)
    }

    /// The device registered as `id`, to feed it input or take its output.
    pub fn device_mut(&mut self, id: DeviceId) -> Option<&mut D> {
        self.regions.get_mut(id).map(|r| &mut r.device)
    }

    /// The device holding every byte of an access of `width` at `addr`, and the offset of the
    /// access in its range.
    pub fn route(&self, addr: u64, width: Width) -> Option<(DeviceId, u64)> {
        let last = addr.checked_add(u64::from(width.bytes()) - 1)?;
        let id = self.regions.iter().position(|r| r.start <= addr && last <= r.last)?;
        Some((id, addr - self.regions[id].start))
    }

    /// Every device with its range's start and length, in registration order.
    pub fn devices(&self) -> impl Iterator<Item = (u64, u64, &D)> {
        self.regions.iter().map(|r| (r.start, r.last - r.start + 1, &r.device))
    }
}

impl<D: MmioDevice> Bus<D> {
    /// Reads `width` bytes at `addr`: the device's answer, or all ones if none holds it.
    pub fn read(&mut self, addr: u64, width: Width) -> Reply {
        match self.route(addr, width) {
            Some((id, offset)) => self.regions[id].device.read(offset, width),
            None => Reply::refused(Note::Unclaimed),
        }
    }

    /// Writes the low `width` bytes of `value` at `addr`; ignored if no device holds it.
    pub fn write(&mut self, addr: u64, width: Width, value: u64) -> Option<Note> {
        match self.route(addr, width) {
            Some((id, offset)) => {
                self.regions[id].device.write(offset, width, value & width.mask())
            }
            None => Some(Note::Unclaimed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pl011::{self, Pl011, DR, FR, FR_RXFE, FR_TXFE, IMSC, INT_RT};
    use xenolith_abi::xen::arch_arm::GUEST_PL011_BASE;
    use xenolith_abi::xen::ioreq::{
        IOREQ_DATA_IS_PTR, IOREQ_DF, IOREQ_PAD1, IOREQ_STATE_MASK, IOREQ_TYPE_PCI_CONFIG,
        IOREQ_TYPE_PIO, IOREQ_TYPE_TIMEOFFSET, IOREQ_WRITE, STATE_IOREQ_INPROCESS,
        STATE_IOREQ_NONE,
    };

    use crate::test_rng::Xorshift;

    /// A device that remembers the last access and answers reads with a pattern.
    #[derive(Debug, Default)]
    struct Probe {
        last: Option<(u64, Width, Option<u64>)>,
    }

    impl MmioDevice for Probe {
        fn read(&mut self, offset: u64, width: Width) -> Reply {
            self.last = Some((offset, width, None));
            Reply::value(0x8877_6655_4433_2211)
        }

        fn write(&mut self, offset: u64, width: Width, value: u64) -> Option<Note> {
            self.last = Some((offset, width, Some(value)));
            None
        }
    }

    /// The domain's devices, as the domain would list them.
    #[derive(Debug)]
    enum Device {
        Uart(Pl011),
        Probe(Probe),
    }

    impl MmioDevice for Device {
        fn read(&mut self, offset: u64, width: Width) -> Reply {
            match self {
                Self::Uart(uart) => uart.read(offset, width),
                Self::Probe(probe) => probe.read(offset, width),
            }
        }

        fn write(&mut self, offset: u64, width: Width, value: u64) -> Option<Note> {
            match self {
                Self::Uart(uart) => uart.write(offset, width, value),
                Self::Probe(probe) => probe.write(offset, width, value),
            }
        }
    }

    const PROBE_BASE: u64 = 0x1000_0000;

    /// A bus with the UART at Xen's `GUEST_PL011_BASE` (device 0) and a probe at
    /// [`PROBE_BASE`], 0x100 bytes (device 1).
    fn bus() -> Bus<Device> {
        let mut bus = Bus::new();
        let uart = Device::Uart(Pl011::new());
        assert_eq!(bus.register(GUEST_PL011_BASE, pl011::FRAME_SIZE, uart), Ok(0));
        assert_eq!(bus.register(PROBE_BASE, 0x100, Device::Probe(Probe::default())), Ok(1));
        bus
    }

    fn uart(bus: &mut Bus<Device>) -> &mut Pl011 {
        match bus.device_mut(0) {
            Some(Device::Uart(uart)) => uart,
            _ => unreachable!(),
        }
    }

    fn probe(bus: &Bus<Device>) -> &Probe {
        match bus.device(1) {
            Some(Device::Probe(probe)) => probe,
            _ => unreachable!(),
        }
    }

    /// A record as `try_fwd_ioserv` writes it.
    fn record(addr: u64, size: u32, dir: u8, data: u64) -> ioreq {
        ioreq {
            addr,
            data,
            count: 1,
            size,
            vp_eport: 7,
            _pad0: 0,
            bitfield: ioreq::bitfield_of(STATE_IOREQ_READY, false, dir, false),
            r#type: IOREQ_TYPE_COPY,
        }
    }

    /// Serves `request` and writes the answer back, as the domain does.
    fn served(bus: &mut Bus<Device>, request: &mut ioreq) -> Outcome {
        let served = serve(bus, request);
        if let Some(completion) = served.completion {
            completion.apply(request);
        }
        served.outcome
    }

    #[test]
    fn decodes_reads_and_writes() {
        let read = record(0x2200_0018, 4, IOREQ_READ, 0xdead);
        let access = Access { addr: 0x2200_0018, size: Width::Word, write: None };
        assert_eq!(decode(&read), Ok(Request::Access(access)));
        // `get_user_reg` gives the whole register: a byte store keeps only its byte.
        let write = record(0x2200_0000, 1, IOREQ_WRITE, 0xffff_ffff_ffff_1241);
        let access = Access { addr: 0x2200_0000, size: Width::Byte, write: Some(0x41) };
        assert_eq!(decode(&write), Ok(Request::Access(access)));
        for (size, width) in [(2, Width::Half), (8, Width::Double)] {
            let Ok(Request::Access(access)) = decode(&record(0, size, IOREQ_WRITE, u64::MAX))
            else {
                panic!("size {size} refused");
            };
            assert_eq!((access.size, access.write), (width, Some(width.mask())));
        }
        // `df` and `_pad1` are ignored.
        let mut odd = read;
        odd.bitfield |= IOREQ_PAD1 | IOREQ_DF;
        assert_eq!(decode(&odd), decode(&read));
    }

    /// A read reaches the device at its offset, the answer is cut to the access size and the
    /// record goes to `IORESP_READY` with its other bits kept; a write reaches the device cut
    /// to its size and leaves `data` as it was.
    #[test]
    fn serves_and_completes() {
        let mut bus = bus();
        let mut read = record(PROBE_BASE + 0x10, 2, IOREQ_READ, 0);
        let outcome = served(&mut bus, &mut read);
        let access = Access { addr: PROBE_BASE + 0x10, size: Width::Half, write: None };
        assert_eq!(outcome, Outcome::Emulated { access, note: None });
        assert_eq!(probe(&bus).last, Some((0x10, Width::Half, None)));
        assert_eq!(read.data, 0x2211);
        assert_eq!(
            (read.state(), read.dir(), read.bitfield),
            (STATE_IORESP_READY, IOREQ_READ, 0x23)
        );

        let mut write = record(PROBE_BASE + 0xfc, 4, IOREQ_WRITE, 0x1_2345_6789);
        served(&mut bus, &mut write);
        assert_eq!(probe(&bus).last, Some((0xfc, Width::Word, Some(0x2345_6789))));
        assert_eq!((write.state(), write.data), (STATE_IORESP_READY, 0x1_2345_6789));
    }

    /// The PL011 through records: a byte store to DR comes out of the console, a 32-bit read
    /// of FR shows the FIFOs, input raises the line once IMSC enables it.
    #[test]
    fn uart_through_records() {
        let mut bus = bus();
        let mut store = record(GUEST_PL011_BASE + DR, 1, IOREQ_WRITE, 0x7f00_0000_0000_0a68);
        served(&mut bus, &mut store);
        let mut out = Vec::new();
        uart(&mut bus).transmit(|byte| {
            out.push(byte);
            true
        });
        assert_eq!(out, b"h");
        let mut flags = record(GUEST_PL011_BASE + FR, 4, IOREQ_READ, u64::MAX);
        served(&mut bus, &mut flags);
        assert_eq!(flags.data, u64::from(FR_TXFE | FR_RXFE));
        let mut mask = record(GUEST_PL011_BASE + IMSC, 4, IOREQ_WRITE, u64::from(INT_RT));
        served(&mut bus, &mut mask);
        assert_eq!(uart(&mut bus).receive(b"!"), 1);
        assert_eq!(uart(&mut bus).level_change(), Some(true));
        let mut data = record(GUEST_PL011_BASE + DR, 4, IOREQ_READ, 0);
        served(&mut bus, &mut data);
        assert_eq!(data.data, u64::from(b'!'));
        assert_eq!(uart(&mut bus).level_change(), Some(false));

        // A 64-bit read of FR is refused: all ones, noted.
        let mut wide = record(GUEST_PL011_BASE + FR, 8, IOREQ_READ, 0);
        let outcome = served(&mut bus, &mut wide);
        assert!(matches!(outcome, Outcome::Emulated { note: Some(Note::BadWidth), .. }));
        assert_eq!((wide.data, wide.state()), (u64::MAX, STATE_IORESP_READY));
    }

    /// Addresses no device holds, wholly: a read answers all ones in its size, a write is
    /// ignored; both are answered and noted. An access running off a device's end is not
    /// the device's.
    #[test]
    fn unclaimed_accesses() {
        let mut bus = bus();
        for (addr, size) in [(0, 4), (PROBE_BASE - 1, 1), (PROBE_BASE + 0xfe, 4), (u64::MAX, 8)] {
            let mut read = record(addr, size, IOREQ_READ, 0x55);
            let outcome = served(&mut bus, &mut read);
            assert!(matches!(outcome, Outcome::Emulated { note: Some(Note::Unclaimed), .. }));
            assert_eq!((read.data, read.state()), (ones(size), STATE_IORESP_READY));
            let mut write = record(addr, size, IOREQ_WRITE, 0x55);
            let outcome = served(&mut bus, &mut write);
            assert!(matches!(outcome, Outcome::Emulated { note: Some(Note::Unclaimed), .. }));
            assert_eq!((write.data, write.state()), (0x55, STATE_IORESP_READY));
        }
        assert_eq!(probe(&bus).last, None);
        assert_eq!(bus.route(PROBE_BASE + 0xfc, Width::Word), Some((1, 0xfc)));
        assert_eq!(bus.route(PROBE_BASE + 0xfd, Width::Word), None);
    }

    /// Each refusal: a record that is not `READY` is left alone; one that is `READY` but not a
    /// well-formed MMIO access is answered (a read all ones in its size, `data` kept for a
    /// write or a pointer) and never reaches a device.
    #[test]
    fn refusals() {
        let mut bus = bus();
        let good = record(PROBE_BASE, 4, IOREQ_READ, 0x1234);
        for state in [STATE_IOREQ_NONE, STATE_IOREQ_INPROCESS, STATE_IORESP_READY, 4, 0xf] {
            let mut request = good;
            request.set_state(state);
            let served = serve(&mut bus, &request);
            assert_eq!(served.outcome, Outcome::Refused(Refusal::NotReady { state }));
            assert_eq!(served.completion, None);
        }
        let mut cases = Vec::new();
        for r#type in [IOREQ_TYPE_PIO, IOREQ_TYPE_PCI_CONFIG, IOREQ_TYPE_TIMEOFFSET, 3, 0xff] {
            cases.push((ioreq { r#type, ..good }, Refusal::Type { r#type }, 0xffff_ffff));
        }
        let mut pointer = good;
        pointer.bitfield |= IOREQ_DATA_IS_PTR;
        cases.push((pointer, Refusal::DataIsPointer, 0x1234));
        for count in [0, 2, u32::MAX] {
            cases.push((ioreq { count, ..good }, Refusal::Count { count }, 0xffff_ffff));
        }
        for (size, answer) in [(0, 0), (3, 0xff_ffff), (16, u64::MAX), (u32::MAX, u64::MAX)] {
            cases.push((ioreq { size, ..good }, Refusal::Size { size }, answer));
        }
        for (mut request, refusal, answer) in cases {
            assert!(refusal.answered());
            assert_eq!(served(&mut bus, &mut request), Outcome::Refused(refusal));
            assert_eq!((request.state(), request.data), (STATE_IORESP_READY, answer));
            let mut write = request;
            write.bitfield = ioreq::bitfield_of(STATE_IOREQ_READY, false, IOREQ_WRITE, false)
                | (request.bitfield & IOREQ_DATA_IS_PTR);
            write.data = 0x1234;
            assert_eq!(served(&mut bus, &mut write), Outcome::Refused(refusal));
            assert_eq!((write.state(), write.data), (STATE_IORESP_READY, 0x1234));
        }
        assert_eq!(probe(&bus).last, None);
    }

    /// `ioreq_signal_mapcache_invalidate`'s record is answered and reaches no device.
    #[test]
    fn invalidate() {
        let mut bus = bus();
        let mut request = record(0, 4, IOREQ_WRITE, u64::MAX);
        request.r#type = IOREQ_TYPE_INVALIDATE;
        assert_eq!(served(&mut bus, &mut request), Outcome::Invalidate);
        assert_eq!((request.state(), request.data), (STATE_IORESP_READY, u64::MAX));
        assert_eq!(probe(&bus).last, None);
    }

    /// Ranges: empty, wrapping and overlapping ones are refused; a range may end at the top
    /// of the address space; ids follow registration.
    #[test]
    fn bus_registration() {
        let mut bus = bus();
        let probe = || Device::Probe(Probe::default());
        assert_eq!(bus.register(0, 0, probe()), Err(BusError::Empty));
        assert_eq!(bus.register(u64::MAX, 2, probe()), Err(BusError::Wraps));
        assert_eq!(bus.register(GUEST_PL011_BASE + 0xfff, 1, probe()), Err(BusError::Overlaps(0)));
        assert_eq!(bus.register(PROBE_BASE - 1, 2, probe()), Err(BusError::Overlaps(1)));
        assert_eq!(bus.register(0, u64::MAX, probe()), Err(BusError::Overlaps(0)));
        assert_eq!(bus.register(PROBE_BASE - 1, 1, probe()), Ok(2));
        assert_eq!(bus.register(PROBE_BASE + 0x100, 1, probe()), Ok(3));
        assert_eq!(bus.register(u64::MAX, 1, probe()), Ok(4));
        assert_eq!(bus.route(u64::MAX, Width::Byte), Some((4, 0)));
        assert_eq!(bus.register(u64::MAX - 1, 1, probe()), Ok(5));
        assert_eq!(bus.route(u64::MAX - 1, Width::Half), None);
        assert!(bus.device(6).is_none());
    }

    /// Seeded random records against the bus, and random register traffic, console input
    /// and output against the UART directly: nothing panics; a record gets an answer exactly
    /// when it is `READY`, always `IORESP_READY`; an emulated read's data fits its size; FR
    /// matches the FIFOs and the line is always RIS & IMSC.
    #[test]
    fn random_records_and_registers_never_panic() {
        let mut rng = Xorshift(0x5eed_0018_dead_beef);
        let mut bus = bus();
        let mut seen = [0u32; 4];
        for round in 0..200_000 {
            let addr = match rng.next() % 4 {
                0 => GUEST_PL011_BASE + rng.next() % 0x1010,
                1 => GUEST_PL011_BASE + ((rng.next() % 0x50) & !3),
                2 => PROBE_BASE - 8 + rng.next() % 0x110,
                _ => rng.next(),
            };
            let odd = |rng: &mut Xorshift| rng.next().is_multiple_of(8);
            let mut request = ioreq {
                addr,
                data: rng.next(),
                count: if odd(&mut rng) { rng.next() as u32 } else { 1 },
                size: match rng.next() % 8 {
                    0 => rng.next() as u32,
                    n => 1u32 << (n % 4),
                },
                vp_eport: rng.next() as u32,
                _pad0: rng.next() as u16,
                bitfield: rng.next() as u8,
                r#type: if odd(&mut rng) { rng.next() as u8 } else { IOREQ_TYPE_COPY },
            };
            if !rng.next().is_multiple_of(4) {
                request.set_state(STATE_IOREQ_READY);
                request.bitfield &= !IOREQ_DATA_IS_PTR;
            }
            let served = serve(&mut bus, &request);
            seen[match served.outcome {
                Outcome::Emulated { note: None, .. } => 0,
                Outcome::Emulated { note: Some(_), .. } => 1,
                Outcome::Refused(refusal) if refusal.answered() => 2,
                _ => 3,
            }] += 1;
            let ready = request.state() == STATE_IOREQ_READY;
            assert_eq!(served.completion.is_some(), ready, "round {round}: {request:?}");
            if let Some(completion) = served.completion {
                let mut answered = request;
                completion.apply(&mut answered);
                assert_eq!(answered.state(), STATE_IORESP_READY);
                assert_eq!(
                    answered.bitfield & !IOREQ_STATE_MASK,
                    request.bitfield & !IOREQ_STATE_MASK
                );
                if let Outcome::Emulated { access, .. } = served.outcome {
                    if access.write.is_none() {
                        assert_eq!(completion.data & !access.size.mask(), 0, "round {round}");
                    }
                }
            }
            let device = uart(&mut bus);
            match rng.next() % 8 {
                0 => {
                    let input = rng.next().to_le_bytes();
                    let len = (rng.next() % 9) as usize;
                    let room = device.input_room();
                    assert_eq!(device.receive(&input[..len]), len.min(room));
                }
                1 => {
                    let mut budget = rng.next() % 40;
                    device.transmit(|_| {
                        let take = budget > 0;
                        budget = budget.saturating_sub(1);
                        take
                    });
                }
                _ => {}
            }
            let flags = device.flags();
            assert_eq!(flags & FR_TXFE != 0, device.pending_output() == 0);
            assert_eq!(flags & FR_RXFE != 0, device.input_room() == pl011::FIFO_SIZE);
            let imsc = device.read(IMSC, Width::Word).data as u32;
            assert_eq!(device.level(), device.raw_interrupts() & imsc != 0);
            device.level_change();
        }
        assert!(seen.iter().all(|&count| count > 1000), "{seen:?}");
    }
}
