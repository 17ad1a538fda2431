//! Boot steps every architecture shares: finding and checking the boot bundle, building the
//! command line, reserving memory, building the core's own address space and checking it.
//!
//! # Invariants
//! - Nothing from the bootloader (DTB, boot module, command line) is used before it is checked.
//! - The core's map has no mapping that is both writable and executable, or boot stops.

use xenolith_kernel::mm::frame::{ImageLayout, Region, RegionList, FRAME_SIZE};
use xenolith_kernel::mm::lpae::{AddressSpace, Attributes, MapError};
use xenolith_kernel::platform::Platform;

use crate::mm::memory::IdentityTables;

/// Regions no frame may be handed out from: the core's image, the DTB, the boot module, and what
/// the DTB reserves.
pub fn reserved_regions(platform: &Platform<'_>, image: Region) -> RegionList {
    let mut reserved = RegionList::new();
    let mut add = |region: Region| {
        if reserved.push(region.align_outward(FRAME_SIZE)).is_err() {
            panic!("more reserved memory regions than the core can track");
        }
    };
    add(image);
    add(platform.dtb);
    if let Some(initrd) = platform.initrd {
        add(initrd);
    }
    for region in platform.reserved.iter() {
        add(*region);
    }
    reserved
}

/// Builds the core's identity map: its image by section, all other RAM as data, and `devices`.
/// With `add_writable_executable` (a test hook) it also maps one page writable and executable,
/// which the W^X check must then refuse.
pub fn build_address_space(
    image: &ImageLayout,
    ram: &[Region],
    devices: &[Region],
    add_writable_executable: bool,
) -> Result<AddressSpace, MapError> {
    let mut space = AddressSpace::new(&mut IdentityTables)?;
    let map = |space: &mut AddressSpace, region: Region, attributes| {
        if region.is_empty() {
            return Ok(());
        }
        space.map(&mut IdentityTables, region.start, region.start, region.len(), attributes)
    };
    map(&mut space, image.text, Attributes::TEXT)?;
    map(&mut space, image.rodata, Attributes::RODATA)?;
    map(&mut space, image.data, Attributes::DATA)?;
    let whole = image.whole();
    for bank in ram {
        // RAM below and above the image (the image lies in one bank, or none).
        map(&mut space, Region::new(bank.start, bank.end.min(whole.start)), Attributes::DATA)?;
        map(&mut space, Region::new(bank.start.max(whole.end), bank.end), Attributes::DATA)?;
    }
    for device in devices {
        map(&mut space, device.align_outward(FRAME_SIZE), Attributes::DEVICE)?;
    }
    if add_writable_executable {
        let frame = crate::mm::memory::alloc_zeroed_frame().ok_or(MapError::OutOfMemory)?;
        // Outside RAM's 1:1 range so it does not collide with the data mapping of that frame.
        let virt = 0x40_0000_0000 - FRAME_SIZE * 16;
        let bad = Attributes { write: true, execute: true, ..Attributes::DATA };
        space.map(&mut IdentityTables, virt, frame, FRAME_SIZE, bad)?;
        log::warn!("test hook test_wx_mapping: mapped {virt:#x} writable and executable");
    }
    Ok(space)
}

/// The boot-time W^X check: walks the tables and stops the system at the first mapping that is
/// both writable and executable.
pub fn check_writable_xor_executable(space: &AddressSpace) {
    let tables = IdentityTables;
    let mut leaves = 0u64;
    let mut executable = 0u64;
    space.walk(&tables, &mut |leaf| {
        leaves += 1;
        if leaf.attributes.execute {
            executable += leaf.size;
        }
    });
    if let Some(bad) = space.find_writable_executable(&tables) {
        panic!(
            "W^X check failed: {:#x}..{:#x} -> {:#x} is writable and executable; refusing to continue",
            bad.virt,
            bad.virt + bad.size,
            bad.phys
        );
    }
    log::info!(
        "W^X check passed: {leaves} mappings, none writable and executable ({} KiB executable)",
        executable / 1024
    );
}
