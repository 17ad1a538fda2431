//! Reaching the calling guest's memory, as Xen's `copy_from_guest`/`copy_to_guest`
//! (`xen/include/xen/guest_access.h`): every hypercall family reads its arguments and writes its
//! results through here, and nowhere else.
//!
//! # Invariants
//! - Every guest address is translated through both stages of the caller's own translation
//!   (`arch::guest::translate_guest`), page by page; a bad address is `-EFAULT`, never a core
//!   fault, and a failed copy may have copied a prefix only.
//! - Only the caller's own memory is reached: a page another domain granted or lent it (a grant
//!   or foreign mapping) is `-EFAULT`, as Xen's `copy_from_guest` refuses pages the caller does
//!   not own.
//! - Called on the calling vCPU's pCPU, with its translation live.

use core::ops::Range;

use xenolith_abi::xen::errno::XenError;
use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::arch::guest;

/// The caller's memory, reached through its own stage-1 and stage-2 translation.
pub struct GuestMemory;

impl GuestMemory {
    /// Copies `out.len()` bytes from guest virtual address `va`.
    pub fn read(&self, va: u64, out: &mut [u8]) -> Result<(), XenError> {
        for_each_page(va, out.len(), false, |phys, range| {
            crate::mm::memory::copy_from_phys(phys, &mut out[range]);
        })
    }

    /// Copies `bytes` to guest virtual address `va`.
    pub fn write(&self, va: u64, bytes: &[u8]) -> Result<(), XenError> {
        for_each_page(va, bytes.len(), true, |phys, range| {
            crate::mm::memory::copy_to_phys(phys, &bytes[range]);
        })
    }
}

/// Walks `len` bytes at guest virtual address `va` a page at a time, translating each piece for a
/// read or (`write`) a write, and hands `copy` its physical address and its range within the
/// `len` bytes. The first address that does not translate stops the walk with `-EFAULT`.
fn for_each_page(
    va: u64,
    len: usize,
    write: bool,
    mut copy: impl FnMut(u64, Range<usize>),
) -> Result<(), XenError> {
    let mut done = 0usize;
    while done < len {
        let address = va.checked_add(done as u64).ok_or(XenError::EFAULT)?;
        let in_page = (4096 - (address & 0xfff)) as usize;
        let chunk = in_page.min(len - done);
        let phys = guest::translate_guest(address, write).ok_or(XenError::EFAULT)?;
        copy(phys, done..done + chunk);
        done += chunk;
    }
    Ok(())
}

/// The physical address of the `T` at guest virtual address `va` if it lies within one page
/// (most arguments do): one translation, and a copy of fixed size.
fn within_page<T>(va: u64, write: bool) -> Option<Result<u64, XenError>> {
    let fits = (va & 0xfff) + core::mem::size_of::<T>() as u64 <= 4096;
    fits.then(|| guest::translate_guest(va, write).ok_or(XenError::EFAULT))
}

/// Reads a `T` from guest virtual address `va`.
pub fn read_struct<T: FromBytes + IntoBytes>(va: u64) -> Result<T, XenError> {
    if let Some(phys) = within_page::<T>(va, false) {
        return Ok(crate::mm::memory::read_phys(phys?));
    }
    let mut value = T::new_zeroed();
    GuestMemory.read(va, value.as_mut_bytes())?;
    Ok(value)
}

/// Writes `value` to guest virtual address `va`.
pub fn write_struct<T: IntoBytes + Immutable>(va: u64, value: &T) -> Result<(), XenError> {
    if let Some(phys) = within_page::<T>(va, true) {
        crate::mm::memory::write_phys(phys?, value);
        return Ok(());
    }
    GuestMemory.write(va, value.as_bytes())
}

/// Reads element `index` of a guest array of `T` at `base`.
pub fn read_element<T: FromBytes + IntoBytes>(base: u64, index: u32) -> Result<T, XenError> {
    read_struct(base + u64::from(index) * core::mem::size_of::<T>() as u64)
}

/// Writes element `index` of a guest array of `T` at `base`.
pub fn write_element<T: IntoBytes + Immutable>(
    base: u64,
    index: u32,
    value: &T,
) -> Result<(), XenError> {
    write_struct(base + u64::from(index) * core::mem::size_of::<T>() as u64, value)
}
