//! The console ring: the last [`RING_SIZE`] bytes the core's console printed, for
//! `XEN_SYSCTL_readconsole` (`xl dmesg`), as Xen's `conring` (`xen/drivers/char/console.c`).
//!
//! Xen puts everything its console prints into the ring (`__putstr` calls `conring_puts`): its
//! own lines and the guests' `(dN)` lines alike. Here that is the core's lines, the `(dN)` lines
//! of `CONSOLEIO_write`, and the lines the console domain writes for guests.
//!
//! # Invariants
//! - `producer` and `consumer` count bytes since boot, wrapping at 2^32 (Xen's `conringp` and
//!   `conringc`); `producer - consumer` (wrapping) never exceeds [`RING_SIZE`]: putting more
//!   drops the oldest bytes.
//! - A read copies at most [`RING_SIZE`] bytes, whatever count the caller asks for.

use xenolith_abi::xen::sysctl::xen_sysctl_readconsole;

/// Xen 4.17's `_CONRING_SIZE`: 16 KiB, the ring's size unless `conring_size=` asks for more
/// (`xen/drivers/char/console.c`). A power of two, so the counters may wrap.
pub const RING_SIZE: usize = 16 * 1024;

/// The ring's bytes and its two counters.
pub struct ConsoleRing {
    bytes: [u8; RING_SIZE],
    /// The first byte kept (Xen's `conringc`).
    consumer: u32,
    /// Bytes ever put (Xen's `conringp`).
    producer: u32,
}

impl ConsoleRing {
    /// An empty ring.
    pub const EMPTY: Self = Self { bytes: [0; RING_SIZE], consumer: 0, producer: 0 };

    /// Appends `text`, overwriting the oldest bytes once full (Xen's `conring_puts`).
    pub fn put(&mut self, text: &[u8]) {
        for &byte in text {
            self.bytes[self.producer as usize % RING_SIZE] = byte;
            self.producer = self.producer.wrapping_add(1);
        }
        let kept = self.producer.wrapping_sub(self.consumer).min(RING_SIZE as u32);
        self.consumer = self.producer.wrapping_sub(kept);
    }

    /// Xen's `read_console_ring`: hands `copy` (offset, bytes) pieces of at most `count` bytes
    /// from the oldest kept, or from `index` when `incremental` and it lies after the oldest and
    /// at most at the newest; then, with `clear`, drops what was read (and what was skipped).
    /// `count` becomes the bytes copied and `index` where the read ended. A failing `copy` ends
    /// the read with its error, the ring and `request` unchanged (Xen returns before clearing).
    pub fn read<E>(
        &mut self,
        request: &mut xen_sysctl_readconsole,
        mut copy: impl FnMut(u32, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let (mut at, end, mut done) = (self.consumer, self.producer, 0u32);
        let kept = end.wrapping_sub(at);
        if request.incremental != 0 && request.index.wrapping_sub(at).wrapping_sub(1) < kept {
            at = request.index;
        }
        while at != end && done < request.count {
            let start = at as usize % RING_SIZE;
            let length = (end.wrapping_sub(at) as usize).min(RING_SIZE - start);
            let length = length.min((request.count - done) as usize);
            copy(done, &self.bytes[start..start + length])?;
            (done, at) = (done + length as u32, at.wrapping_add(length as u32));
        }
        if request.clear != 0 {
            // Xen also guards against `at` having been overwritten meanwhile; under the lock
            // that holds this ring nothing is.
            self.consumer = at;
        }
        (request.count, request.index) = (done, at);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
