//! The target's RAM through foreign mappings (Xen allows them to the target's device model,
//! `dm:<target>`): [`ForeignRam`] implements the logic crate's `GuestMemory` over a
//! [`MapCache`] of chunks mapped lazily into [`WINDOW`] and kept until their slot is needed
//! again or the target's memory map changes (`IOREQ_TYPE_INVALIDATE`).
//!
//! # Invariants
//! - Every byte is copied with volatile accesses (`SharedPage::read_bytes`/`write_bytes`):
//!   the target's vCPUs change its RAM at any time, so no Rust reference to it is ever made.
//! - A write is preceded by a release fence and a read followed by an acquire fence, so the
//!   target sees this model's writes in program order (a used ring's entry before its index)
//!   and this model reads a ring's entries only after the index that published them.
//! - A piece is copied only while its slot holds its chunk: the cache remaps a slot only in
//!   a later [`MapCache::step`].

use core::cell::RefCell;
use core::sync::atomic::{fence, Ordering};

use xenolith_device_model_logic::mapcache::{MapCache, MapFailed, Mapper, Remap, PAGE};
use xenolith_device_model_logic::memory::{GuestMemory, OutsideRam};
use xenolith_runtime::dm;
use xenolith_runtime::grants::SharedPage;

/// Where the slots lie in this domain's space: in the runtime's normal-memory window above
/// every domain's RAM (1-4 GiB), clear of the shared-info page, the grant table and the grant
/// map area (0xF000_0000 up) and the control domain's build window (0xC000_0000).
pub const WINDOW: u64 = 0xE010_0000;
/// Bytes of one chunk (16 pages).
pub const CHUNK: u64 = 64 << 10;
/// Slots: 24 chunks, 384 foreign pages, under the core's 512 per domain (`MAX_FOREIGN`).
pub const SLOTS: usize = 24;

/// The target's RAM.
pub struct ForeignRam {
    target: u16,
    cache: RefCell<MapCache>,
}

impl ForeignRam {
    /// The RAM bank `ram` (base, size) of `target`, nothing mapped yet.
    pub fn new(target: u16, ram: (u64, u64)) -> Self {
        Self { target, cache: RefCell::new(MapCache::new(ram, WINDOW, CHUNK, SLOTS)) }
    }

    /// Where the window ends (for the start-up check against this domain's own RAM).
    pub const fn window_end() -> u64 {
        WINDOW + SLOTS as u64 * CHUNK
    }

    /// Unmaps every chunk (`IOREQ_TYPE_INVALIDATE`: the target's memory map changed).
    pub fn invalidate(&self) {
        for (local, pages) in self.cache.borrow_mut().clear() {
            for page in 0..pages {
                let _ = dm::unmap(local / PAGE + page);
            }
        }
    }

    /// Calls `each(local address, offset in the access, length)` for each piece of the
    /// `length` bytes at `address` (`MapCache::pieces`: every chunk mapped first).
    fn pieces(
        &self,
        address: u64,
        length: u64,
        each: impl FnMut(u64, usize, usize),
    ) -> Result<(), OutsideRam> {
        let mut mapper = Hypercalls { target: self.target };
        self.cache.borrow_mut().pieces(&mut mapper, address, length, each)
    }
}

/// Mappings made with foreign-mapping hypercalls.
struct Hypercalls {
    target: u16,
}

impl Mapper for Hypercalls {
    fn map(&mut self, remap: &Remap) -> Result<(), MapFailed> {
        let first = remap.local / PAGE;
        for page in 0..remap.unmap {
            let _ = dm::unmap(first + page);
        }
        if let Err(error) = dm::map_foreign(self.target, remap.first_gfn, first, remap.pages) {
            log::warn!(
                "device-model: mapping d{}'s frames {:#x}+{} failed: {error}",
                self.target,
                remap.first_gfn,
                remap.pages
            );
            for page in 0..remap.pages {
                let _ = dm::unmap(first + page);
            }
            return Err(MapFailed);
        }
        Ok(())
    }
}

/// The page holding `local`, and `local`'s offset in it.
fn page(local: u64) -> (SharedPage, usize) {
    // SAFETY: `local` lies in a slot of WINDOW that `pieces` has just mapped to the target's
    // frames (map_foreign succeeded) and that stays mapped until a later `step` evicts it,
    // after this piece is copied (module invariants); WINDOW is in the runtime's normal-memory
    // identity map (1-4 GiB). The page is only accessed through `SharedPage`'s volatile copies.
    let page = unsafe { SharedPage::at(local & !(PAGE - 1)) };
    (page, (local % PAGE) as usize)
}

impl GuestMemory for ForeignRam {
    fn read(&self, address: u64, buffer: &mut [u8]) -> Result<(), OutsideRam> {
        self.pieces(address, buffer.len() as u64, |local, offset, length| {
            let (page, within) = page(local);
            page.read_bytes(within, &mut buffer[offset..offset + length]);
        })?;
        fence(Ordering::Acquire);
        Ok(())
    }

    fn write(&mut self, address: u64, bytes: &[u8]) -> Result<(), OutsideRam> {
        fence(Ordering::Release);
        self.pieces(address, bytes.len() as u64, |local, offset, length| {
            let (page, within) = page(local);
            page.write_bytes(within, &bytes[offset..offset + length]);
        })
    }

    fn contains(&self, address: u64, length: u64) -> bool {
        self.cache.borrow().contains(address, length)
    }
}
