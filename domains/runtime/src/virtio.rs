//! A virtio console passed through to this domain (the manifest's `hardware:virtio-console`:
//! QEMU's virtio-mmio transport, its interrupt, and a DMA window at guest-physical ==
//! host-physical): the bare-metal half of [`crate::virtio_wire`], which holds the driver's
//! logic.
//!
//! [`VirtioConsole::open`] takes the device and DMA pool the DTB names
//! ([`StartInfo::virtio_mmio`]), resets and starts the device, binds a wake port (an IPI event
//! channel of vCPU 0, masked) and enables the device's SPI in this domain's virtual distributor,
//! routed to vCPU 0. The domain's interrupt handler calls [`interrupt`], which acknowledges the
//! device (`InterruptACK`, so its line drops before the handler's EOI) and makes the wake port
//! pending. A `SCHEDOP_poll` naming [`VirtioConsole::port`] therefore ends for the device as for
//! any event, and an interrupt taken between a look at the queues and the poll is not lost: the
//! port stays pending until taken.
//!
//! # Invariants
//! - The register window is touched only with aligned 32-bit volatile accesses inside it, the
//!   pool only with volatile accesses inside it (both checked here, whatever the logic asks).
//! - At most one [`VirtioConsole`] is opened (`OPENED`); [`interrupt`] acts only once `DEVICE`
//!   and `WAKE_PORT` are set, which happens before the interrupt is enabled.

use core::arch::asm;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use alloc::vec::Vec;

use crate::events::{self, Port};
use crate::start_info::{StartInfo, VirtioMmio};
pub use crate::virtio_wire::Error;
use crate::virtio_wire::{acknowledge_interrupt, Console, DmaMemory, Registers};
use crate::{arch, irq, now_ns};

/// Whether a console was opened.
static OPENED: AtomicBool = AtomicBool::new(false);
/// The device's register window (0: none yet) and size, and its INTID, for [`interrupt`].
static DEVICE: AtomicU64 = AtomicU64::new(0);
static DEVICE_SIZE: AtomicU64 = AtomicU64::new(0);
static INTID: AtomicU32 = AtomicU32::new(0);
/// The wake port [`interrupt`] makes pending (0: none yet).
static WAKE_PORT: AtomicU32 = AtomicU32::new(0);
/// Interrupts [`interrupt`] took for the device (with a cause in `InterruptStatus`).
static INTERRUPTS: AtomicU64 = AtomicU64::new(0);

/// The device's registers: a window of device memory in the runtime's identity map.
#[derive(Clone, Copy, Debug)]
struct Mmio {
    base: u64,
    size: u64,
}

impl Mmio {
    fn at(self, offset: usize) -> Option<u64> {
        let offset = offset as u64;
        (offset.is_multiple_of(4) && offset + 4 <= self.size).then_some(self.base + offset)
    }
}

impl Registers for Mmio {
    fn read(&mut self, offset: usize) -> u32 {
        let Some(at) = self.at(offset) else { return 0 };
        // SAFETY: `at` is an aligned word inside the device's register window, which `open`
        // checked lies in the device memory of the runtime's identity map (the first GiB).
        unsafe { core::ptr::read_volatile(at as *const u32) }
    }

    fn write(&mut self, offset: usize, value: u32) {
        let Some(at) = self.at(offset) else { return };
        // Pool writes before the register write that tells the device about them (Linux's
        // `writel`: `__iowmb()` before the store).
        // SAFETY: a barrier only orders memory accesses.
        unsafe { asm!("dmb oshst", options(nostack, preserves_flags)) };
        // SAFETY: as in `read`: an aligned word of the device's register window.
        unsafe { core::ptr::write_volatile(at as *mut u32, value) };
    }
}

/// The DMA pool: normal memory of the runtime's identity map at guest-physical == bus address.
#[derive(Clone, Copy, Debug)]
struct Pool {
    base: u64,
    size: u64,
}

impl Pool {
    /// The address of `length` bytes at `offset`, aligned to `align`, if inside the pool.
    fn at(&self, offset: u64, length: usize, align: u64) -> Option<u64> {
        let end = offset.checked_add(length as u64)?;
        (end <= self.size && offset.is_multiple_of(align)).then_some(self.base + offset)
    }
}

impl DmaMemory for Pool {
    fn bus_address(&self) -> u64 {
        self.base
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn read_u16(&self, offset: u64) -> u16 {
        let Some(at) = self.at(offset, 2, 2) else { return 0 };
        // SAFETY: an aligned `u16` inside the pool, which `open` checked lies in the normal
        // memory of the runtime's identity map and which nothing else of this domain uses;
        // volatile, as the device may write it.
        unsafe { core::ptr::read_volatile(at as *const u16) }
    }

    fn read_u32(&self, offset: u64) -> u32 {
        let Some(at) = self.at(offset, 4, 4) else { return 0 };
        // SAFETY: as in `read_u16`, for an aligned `u32`.
        unsafe { core::ptr::read_volatile(at as *const u32) }
    }

    fn write_u16(&mut self, offset: u64, value: u16) {
        let Some(at) = self.at(offset, 2, 2) else { return };
        // SAFETY: as in `read_u16`; volatile, as the device may read it.
        unsafe { core::ptr::write_volatile(at as *mut u16, value) }
    }

    fn write_u32(&mut self, offset: u64, value: u32) {
        let Some(at) = self.at(offset, 4, 4) else { return };
        // SAFETY: as in `write_u16`, for an aligned `u32`.
        unsafe { core::ptr::write_volatile(at as *mut u32, value) }
    }

    fn write_u64(&mut self, offset: u64, value: u64) {
        let Some(at) = self.at(offset, 8, 8) else { return };
        // SAFETY: as in `write_u16`, for an aligned `u64`.
        unsafe { core::ptr::write_volatile(at as *mut u64, value) }
    }

    fn read_bytes(&self, offset: u64, into: &mut [u8]) {
        let Some(at) = self.at(offset, into.len(), 1) else { return };
        for (index, byte) in into.iter_mut().enumerate() {
            // SAFETY: byte `index` of the `into.len()` bytes at `at`, inside the pool (as in
            // `read_u16`).
            *byte = unsafe { core::ptr::read_volatile((at + index as u64) as *const u8) };
        }
    }

    fn write_bytes(&mut self, offset: u64, bytes: &[u8]) {
        let Some(at) = self.at(offset, bytes.len(), 1) else { return };
        for (index, &byte) in bytes.iter().enumerate() {
            // SAFETY: as in `read_bytes`, written.
            unsafe { core::ptr::write_volatile((at + index as u64) as *mut u8, byte) };
        }
    }

    // The device is another agent of the inner-shareable domain (QEMU, or a hypervisor's
    // backend), as Linux's virtio-mmio assumes (`weak_barriers`): `virt_rmb`, `virt_wmb`,
    // `virt_mb`.
    fn read_barrier(&self) {
        // SAFETY: a barrier only orders memory accesses.
        unsafe { asm!("dmb ishld", options(nostack, preserves_flags)) };
    }

    fn write_barrier(&self) {
        // SAFETY: as above.
        unsafe { asm!("dmb ishst", options(nostack, preserves_flags)) };
    }

    fn full_barrier(&self) {
        // SAFETY: as above.
        unsafe { asm!("dmb ish", options(nostack, preserves_flags)) };
    }
}

/// Why [`VirtioConsole::open`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// The device has no `interrupts`.
    NoInterrupt,
    /// The device names no `shared-dma-pool`.
    NoDmaPool,
    /// The registers are not device memory, or the pool not normal memory apart from this
    /// domain's RAM, in the runtime's identity map.
    BadWindow,
    /// A console was opened already.
    AlreadyOpen,
    /// The wake port could not be bound.
    NoPort,
    /// The device refused to start.
    Device(Error),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoInterrupt => write!(f, "the virtio-mmio node has no interrupt"),
            Self::NoDmaPool => write!(f, "the virtio-mmio node names no shared-dma-pool"),
            Self::BadWindow => write!(
                f,
                "the registers must lie in the first GiB, the DMA pool in 1-4 GiB outside the domain's RAM"
            ),
            Self::AlreadyOpen => write!(f, "the virtio console is open already"),
            Self::NoPort => write!(f, "no event channel for its wake-ups"),
            Self::Device(error) => write!(f, "{error}"),
        }
    }
}

/// This domain's virtio console (port 0).
pub struct VirtioConsole {
    console: Console<Mmio, Pool>,
    device: Mmio,
    pool: Pool,
    port: Port,
}

impl VirtioConsole {
    /// The console the DTB names, started (`Ok(None)`: the DTB names no virtio device). Call on
    /// vCPU 0 after `events::init` (which `Xenbus::connect` does); the domain's interrupt handler
    /// must call [`interrupt`], and the domain enables its distributor, CPU interface and IRQs.
    pub fn open(info: &StartInfo) -> Result<Option<Self>, OpenError> {
        let Some(VirtioMmio { registers, intid, dma_pool }) = info.virtio_mmio else {
            return Ok(None);
        };
        let intid = intid.ok_or(OpenError::NoInterrupt)?;
        let (pool_base, pool_size) = dma_pool.ok_or(OpenError::NoDmaPool)?;
        let device_memory = |address: u64| !arch::is_normal(address);
        let registers_ok = registers.1 >= 0x100
            && device_memory(registers.0)
            && device_memory(registers.0 + registers.1 - 1);
        let overlaps =
            |&(base, size): &(u64, u64)| pool_base < base + size && base < pool_base + pool_size;
        let pool_ok = pool_size > 0
            && arch::is_normal(pool_base)
            && arch::is_normal(pool_base + pool_size - 1)
            && !arch::NORMAL_IN_FIRST_GIB.iter().any(overlaps)
            && !info.ram[..info.ram_banks].iter().any(overlaps);
        if !registers_ok || !pool_ok {
            return Err(OpenError::BadWindow);
        }
        if OPENED.swap(true, Ordering::AcqRel) {
            return Err(OpenError::AlreadyOpen);
        }
        let device = Mmio { base: registers.0, size: registers.1 };
        let pool = Pool { base: pool_base, size: pool_size };
        let console = Console::start(device, pool).map_err(OpenError::Device)?;
        let port = events::bind_ipi(0).map_err(|_| OpenError::NoPort)?;
        port.mask();
        WAKE_PORT.store(port.0, Ordering::Release);
        INTID.store(intid, Ordering::Release);
        DEVICE_SIZE.store(device.size, Ordering::Release);
        DEVICE.store(device.base, Ordering::Release);
        irq::enable_spi(intid);
        Ok(Some(Self { console, device, pool, port }))
    }

    /// The port that is pending when the device interrupted (to poll on; take its pending bit
    /// before looking at the queues).
    pub fn port(&self) -> Port {
        self.port
    }

    /// Appends what the host sent to `into`; how many bytes.
    pub fn receive(&mut self, into: &mut Vec<u8>) -> Result<usize, Error> {
        self.console.receive(into)
    }

    /// Sends all of `bytes`, waiting while the device holds every transmit buffer, until
    /// `deadline` (system time, ns). `Ok(false)`: the deadline passed first.
    pub fn send_all(&mut self, bytes: &[u8], deadline: u64) -> Result<bool, Error> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let sent = self.console.send(rest)?;
            rest = &rest[sent..];
            if sent == 0 {
                if now_ns() >= deadline {
                    return Ok(false);
                }
                // Transmit completions raise no interrupt: look again in a millisecond.
                let _ = events::poll(&[self.port], now_ns() + 1_000_000);
            }
        }
        Ok(true)
    }

    /// Resets the device and starts it again (after an [`Error`]: what the device held is
    /// dropped).
    pub fn restart(&mut self) -> Result<(), Error> {
        self.console = Console::start(self.device, self.pool)?;
        Ok(())
    }
}

/// For the domain's interrupt handler: if `intid` is the virtio console's, acknowledges the
/// device's interrupt and makes the wake port pending.
pub fn interrupt(intid: u32) {
    let base = DEVICE.load(Ordering::Acquire);
    if base == 0 || intid != INTID.load(Ordering::Acquire) {
        return;
    }
    let mut device = Mmio { base, size: DEVICE_SIZE.load(Ordering::Acquire) };
    if acknowledge_interrupt(&mut device) != 0 {
        INTERRUPTS.fetch_add(1, Ordering::Relaxed);
    }
    let _ = Port(WAKE_PORT.load(Ordering::Acquire)).send();
}

/// How many interrupts of the device [`interrupt`] has taken (that had a cause).
pub fn interrupts() -> u64 {
    INTERRUPTS.load(Ordering::Relaxed)
}
