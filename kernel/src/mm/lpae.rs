//! Armv8-A VMSAv8-64 translation tables (4 KiB granule), as pure data: building, walking, checking.
//!
//! The core's own EL2 stage-1 map is built here and the boot-time W^X check walks it here; the
//! hardware registers that point at the result are set in `arch/aarch64/mmu.rs`. Keeping the format
//! free of hardware access lets host tests build tables in fake memory and read them back.
//!
//! Format facts (Arm ARM D8.3, "Translation table descriptor formats", 4 KiB granule):
//! - 512 eight-byte entries per table; level 1 blocks map 1 GiB, level 2 blocks 2 MiB, level 3
//!   pages 4 KiB. Bits[1:0]: `0b11` table (levels 0-2) or page (level 3), `0b01` block.
//! - Stage-1 lower attributes: AttrIndx[4:2] (index into MAIR), AP[7:6], SH[9:8], AF[10].
//!   In a regime with one privilege level (non-VHE EL2) AP[1] is RES1, AP[2] set means read-only.
//! - Stage-1 upper attributes for EL2: XN at bit 54.
//! - Stage-2 lower attributes (D8.3.2): MemAttr[5:2] (0b1111 Normal write-back, 0b0001
//!   Device-nGnRE, with HCR_EL2.FWB clear), S2AP[7:6] (bit 6 read, bit 7 write), SH[9:8], AF[10];
//!   upper: XN at bit 54 (bit 53 stays clear: no FEAT_XNX distinction between EL1 and EL0).
//!
//! One walker serves both regimes; [`Regime`] supplies the leaf encoding.
//!
//! # Invariants
//! - A region is never mapped twice: `map` refuses an overlap instead of replacing a live entry.
//! - Every table frame comes zeroed from the caller's [`TableMemory`]; an all-zero entry is invalid,
//!   and every invalid entry is all zero.
//! - A table descriptor's count field holds the number of valid entries of the table it points to;
//!   a table whose count drops to zero is freed at once, through
//!   [`TableMemory::free_zeroed_table`]: all its entries are zero then, and the memory may hand it
//!   out again without zeroing it.
//! - Blocks are used only where virtual address, physical address and remaining size are all aligned
//!   to the block size, so no block maps memory the caller did not ask for.
//! - `unmap` splits a block only partly inside its range into smaller leaves with the same
//!   attributes first (break-before-make: the entry is invalidated and
//!   [`TableMemory::invalidate`] called before the table replaces it), so what stays mapped
//!   translates exactly as before.

/// Bytes in a translation granule and a page.
pub const PAGE_SIZE: u64 = 4096;
/// Entries in one table.
pub const ENTRIES: usize = 512;
/// Bits of virtual address the core's EL2 map covers (TCR_EL2.T0SZ = 64 - 39 = 25): 512 GiB,
/// enough for QEMU `virt` RAM, its devices and its high-memory redistributors.
pub const VA_BITS: u32 = 39;
/// The table level at which a walk of a [`VA_BITS`] space starts.
pub const ROOT_LEVEL: usize = 1;

const VALID: u64 = 1 << 0;
const TABLE_OR_PAGE: u64 = 1 << 1;
const ATTR_INDEX_SHIFT: u64 = 2;
const AP_RES1: u64 = 1 << 6;
const AP_READ_ONLY: u64 = 1 << 7;
const SH_INNER: u64 = 0b11 << 8;
const ACCESS_FLAG: u64 = 1 << 10;
const EXECUTE_NEVER: u64 = 1 << 54;
/// Stage 2: the leaf maps RAM its domain owns. Bits 58:55 of a descriptor are reserved for
/// software (Arm ARM D8.3.1); Xen keeps its p2m type there too (`p2m_ram_rw`,
/// `xen/arch/arm/include/asm/p2m.h`).
const OWNED: u64 = 1 << 55;
/// Stage-2 software bit: [`Attributes::lent`].
const LENT: u64 = 1 << 56;
const ADDRESS_MASK: u64 = 0x0000_FFFF_FFFF_F000;
/// Bits [11:2] of a table descriptor are ignored by the walker (Arm ARM D8.3.1, "Table
/// descriptor format"): there the core keeps how many valid entries the table it points to
/// holds, so an unmap frees a table it empties without reading the table through.
const COUNT_SHIFT: u32 = 2;
const COUNT_ONE: u64 = 1 << COUNT_SHIFT;
const COUNT_MASK: u64 = 0x3ff << COUNT_SHIFT;

/// MAIR_EL2 index of Device-nGnRE memory.
pub const MAIR_INDEX_DEVICE: u64 = 0;
/// MAIR_EL2 index of Normal, inner and outer write-back read/write-allocate memory.
pub const MAIR_INDEX_NORMAL: u64 = 1;
/// MAIR_EL2 value matching the two indices above (attr0 = 0x04 Device-nGnRE, attr1 = 0xFF).
pub const MAIR_VALUE: u64 = 0x04 | (0xFF << 8);

/// What kind of memory a mapping is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryType {
    /// RAM: cacheable, inner shareable.
    Normal,
    /// Device registers: Device-nGnRE, never executable.
    Device,
}

/// The attributes of one mapping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attributes {
    /// Normal memory or device.
    pub memory: MemoryType,
    /// Writable (else read-only).
    pub write: bool,
    /// Executable (else execute-never).
    pub execute: bool,
    /// Stage 2 only: RAM the domain owns (freed with it, given back by
    /// `XENMEM_decrease_reservation`), as opposed to a page lent by the core or another domain.
    pub owned: bool,
    /// Stage 2 only: another domain's page (a grant or foreign mapping), which hypercalls do not
    /// take as the caller's memory (Xen's `copy_from_guest` refuses pages it does not own).
    pub lent: bool,
}

impl Attributes {
    /// Code: read and execute.
    pub const TEXT: Self =
        Self { memory: MemoryType::Normal, write: false, execute: true, owned: false, lent: false };
    /// Constants: read only.
    pub const RODATA: Self = Self {
        memory: MemoryType::Normal,
        write: false,
        execute: false,
        owned: false,
        lent: false,
    };
    /// Data, stacks, heap and free RAM: read and write, never execute.
    pub const DATA: Self =
        Self { memory: MemoryType::Normal, write: true, execute: false, owned: false, lent: false };
    /// Device registers.
    pub const DEVICE: Self =
        Self { memory: MemoryType::Device, write: true, execute: false, owned: false, lent: false };
}

/// A translation regime's leaf-attribute encoding.
pub trait Regime: Copy + core::fmt::Debug + PartialEq + Eq {
    /// Leaf attribute bits for `attributes`.
    fn encode(attributes: Attributes) -> u64;
    /// The attributes a leaf descriptor grants.
    fn decode(descriptor: u64) -> Attributes;
}

/// The core's own map: non-VHE EL2 stage 1 (MAIR_EL2 indices [`MAIR_INDEX_DEVICE`],
/// [`MAIR_INDEX_NORMAL`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct El2Stage1;

impl Regime for El2Stage1 {
    fn encode(attributes: Attributes) -> u64 {
        let mut bits = ACCESS_FLAG | AP_RES1;
        bits |= match attributes.memory {
            MemoryType::Normal => (MAIR_INDEX_NORMAL << ATTR_INDEX_SHIFT) | SH_INNER,
            MemoryType::Device => MAIR_INDEX_DEVICE << ATTR_INDEX_SHIFT,
        };
        if !attributes.write {
            bits |= AP_READ_ONLY;
        }
        if !attributes.execute || attributes.memory == MemoryType::Device {
            bits |= EXECUTE_NEVER;
        }
        bits
    }

    fn decode(descriptor: u64) -> Attributes {
        let index = (descriptor >> ATTR_INDEX_SHIFT) & 0b111;
        Attributes {
            memory: if index == MAIR_INDEX_NORMAL {
                MemoryType::Normal
            } else {
                MemoryType::Device
            },
            write: descriptor & AP_READ_ONLY == 0,
            execute: descriptor & EXECUTE_NEVER == 0,
            owned: false,
            lent: false,
        }
    }
}

/// A domain's stage-2 (IPA to PA) map, for VTTBR_EL2 with VTCR_EL2.SL0 = 1 (start at level 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stage2;

const S2_MEMATTR_NORMAL_WB: u64 = 0b1111 << 2;
const S2_MEMATTR_DEVICE_NGNRE: u64 = 0b0001 << 2;
const S2AP_READ: u64 = 1 << 6;
const S2AP_WRITE: u64 = 1 << 7;

impl Regime for Stage2 {
    fn encode(attributes: Attributes) -> u64 {
        let mut bits = ACCESS_FLAG | S2AP_READ;
        bits |= match attributes.memory {
            MemoryType::Normal => S2_MEMATTR_NORMAL_WB | SH_INNER,
            MemoryType::Device => S2_MEMATTR_DEVICE_NGNRE,
        };
        if attributes.write {
            bits |= S2AP_WRITE;
        }
        if attributes.owned {
            bits |= OWNED;
        }
        if attributes.lent {
            bits |= LENT;
        }
        if !attributes.execute || attributes.memory == MemoryType::Device {
            bits |= EXECUTE_NEVER;
        }
        bits
    }

    fn decode(descriptor: u64) -> Attributes {
        Attributes {
            memory: if descriptor & (0b1111 << 2) == S2_MEMATTR_NORMAL_WB {
                MemoryType::Normal
            } else {
                MemoryType::Device
            },
            write: descriptor & S2AP_WRITE != 0,
            execute: descriptor & EXECUTE_NEVER == 0,
            owned: descriptor & OWNED != 0,
            lent: descriptor & LENT != 0,
        }
    }
}

/// Where table frames come from and how they are read and written. The core implements it over
/// identity-mapped physical memory; tests implement it over a `Vec`.
pub trait TableMemory {
    /// A zeroed, page-aligned frame for a new table, by physical address.
    fn alloc_table(&mut self) -> Option<u64>;
    /// Reads entry `index` of the table at physical address `table`.
    fn read(&self, table: u64, index: usize) -> u64;
    /// Writes entry `index` of the table at physical address `table`.
    fn write(&mut self, table: u64, index: usize, value: u64);
    /// Takes back a table frame that [`TableMemory::alloc_table`] handed out.
    fn free_table(&mut self, table: u64);
    /// Takes back a table frame whose entries are all zero (an emptied one), which may be
    /// handed out again without zeroing.
    fn free_zeroed_table(&mut self, table: u64) {
        self.free_table(table);
    }
    /// Drops cached translations after a live entry was invalidated, before it is replaced
    /// (break-before-make). Nothing to do where no walker caches entries.
    fn invalidate(&mut self) {}
}

/// Why a mapping was refused. Nothing was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapError {
    /// Address or size not page-aligned.
    Misaligned { virt: u64, phys: u64, size: u64 },
    /// Beyond the [`VA_BITS`] space or the 48-bit output address space.
    OutOfRange { virt: u64, size: u64 },
    /// Part of the range is mapped already.
    AlreadyMapped { virt: u64 },
    /// No frame for a table.
    OutOfMemory,
    /// Nothing is mapped there.
    NotMapped { virt: u64 },
}

/// One leaf of a walk: a block or page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Virtual (input) address.
    pub virt: u64,
    /// Physical (output) address.
    pub phys: u64,
    /// Bytes mapped by this leaf.
    pub size: u64,
    /// Its attributes.
    pub attributes: Attributes,
}

/// An address space rooted in a level-1 table: the core's EL2 stage 1 by default, or a
/// domain's stage 2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressSpace<R: Regime = El2Stage1> {
    root: u64,
    regime: core::marker::PhantomData<R>,
}

fn level_shift(level: usize) -> u32 {
    12 + 9 * (3 - level as u32)
}

fn index_at(virt: u64, level: usize) -> usize {
    ((virt >> level_shift(level)) & (ENTRIES as u64 - 1)) as usize
}

impl<R: Regime> AddressSpace<R> {
    /// A new, empty address space.
    pub fn new(memory: &mut impl TableMemory) -> Result<Self, MapError> {
        Ok(Self {
            root: memory.alloc_table().ok_or(MapError::OutOfMemory)?,
            regime: core::marker::PhantomData,
        })
    }

    /// The address space rooted at `root`, to read one whose owner holds it (a live VTTBR_EL2).
    pub fn from_root(root: u64) -> Self {
        Self { root, regime: core::marker::PhantomData }
    }

    /// Physical address of the root table (the value for TTBR0_EL2).
    pub fn root(&self) -> u64 {
        self.root
    }

    /// Maps `size` bytes at `virt` to `phys`, with the largest blocks alignment allows.
    /// Checks the whole range first: on error nothing is mapped.
    pub fn map(
        &mut self,
        memory: &mut impl TableMemory,
        virt: u64,
        phys: u64,
        size: u64,
        attributes: Attributes,
    ) -> Result<(), MapError> {
        if !virt.is_multiple_of(PAGE_SIZE)
            || !phys.is_multiple_of(PAGE_SIZE)
            || !size.is_multiple_of(PAGE_SIZE)
            || size == 0
        {
            return Err(MapError::Misaligned { virt, phys, size });
        }
        let in_range = |base: u64, limit_bits: u32| {
            base.checked_add(size).is_some_and(|end| end <= 1u64 << limit_bits)
        };
        if !in_range(virt, VA_BITS) || !in_range(phys, 48) {
            return Err(MapError::OutOfRange { virt, size });
        }
        let mut offset = 0;
        while offset < size {
            let step = self.leaf_size_for(virt + offset, phys + offset, size - offset);
            if self.is_mapped_anywhere(memory, virt + offset, step) {
                return Err(MapError::AlreadyMapped { virt: virt + offset });
            }
            offset += step;
        }
        let mut offset = 0;
        while offset < size {
            let step = self.leaf_size_for(virt + offset, phys + offset, size - offset);
            self.map_leaf(memory, virt + offset, phys + offset, step, attributes)?;
            offset += step;
        }
        Ok(())
    }

    fn leaf_size_for(&self, virt: u64, phys: u64, remaining: u64) -> u64 {
        for level in ROOT_LEVEL..3 {
            let block = 1u64 << level_shift(level);
            if virt.is_multiple_of(block) && phys.is_multiple_of(block) && remaining >= block {
                return block;
            }
        }
        PAGE_SIZE
    }

    /// Whether any part of `[virt, virt + size)` is mapped (size is a leaf size at virt's alignment).
    fn is_mapped_anywhere(&self, memory: &impl TableMemory, virt: u64, size: u64) -> bool {
        if size == PAGE_SIZE {
            return self.leaf_at(memory, virt).is_some();
        }
        let mut found = false;
        self.walk_range(memory, virt, size, &mut |_| found = true);
        found
    }

    fn map_leaf(
        &mut self,
        memory: &mut impl TableMemory,
        virt: u64,
        phys: u64,
        size: u64,
        attributes: Attributes,
    ) -> Result<(), MapError> {
        let mut table = self.root;
        let mut level = ROOT_LEVEL;
        // The descriptor pointing at `table` (none for the root), whose count a new entry raises.
        let mut parent = None;
        while 1u64 << level_shift(level) != size {
            let index = index_at(virt, level);
            let entry = memory.read(table, index);
            let next = if entry & VALID == 0 {
                let next = memory.alloc_table().ok_or(MapError::OutOfMemory)?;
                memory.write(table, index, next | TABLE_OR_PAGE | VALID);
                count_up(memory, parent);
                next
            } else {
                // The overlap check ran first, so a valid entry here is a table, never a block.
                entry & ADDRESS_MASK
            };
            (parent, table, level) = (Some((table, index)), next, level + 1);
        }
        let kind = if level == 3 { TABLE_OR_PAGE } else { 0 };
        memory.write(table, index_at(virt, level), phys | R::encode(attributes) | kind | VALID);
        count_up(memory, parent);
        Ok(())
    }

    /// Removes the leaves covering exactly `[virt, virt + size)`. A block only partly inside the
    /// range is split first, so the rest of it stays mapped as it was; without a frame for that
    /// ([`MapError::OutOfMemory`]) or with nothing mapped in the range ([`MapError::NotMapped`])
    /// nothing is removed. The caller invalidates the TLB.
    pub fn unmap(
        &mut self,
        memory: &mut impl TableMemory,
        virt: u64,
        size: u64,
    ) -> Result<(), MapError> {
        if !virt.is_multiple_of(PAGE_SIZE) || !size.is_multiple_of(PAGE_SIZE) || size == 0 {
            return Err(MapError::Misaligned { virt, phys: 0, size });
        }
        let end = virt.checked_add(size).ok_or(MapError::OutOfRange { virt, size })?;
        if !self.is_mapped_anywhere(memory, virt, size) {
            return Err(MapError::NotMapped { virt });
        }
        // A leaf covering an edge of the range but starting before it straddles that edge.
        for edge in [virt, end] {
            while let Some(leaf) = self.leaf_at(memory, edge).filter(|leaf| leaf.0 < edge) {
                self.split(memory, leaf)?;
            }
        }
        clear_range(memory, self.root, ROOT_LEVEL, 0, virt, end);
        Ok(())
    }

    /// The leaf covering `virt`: its start, its table, its index there and its level.
    fn leaf_at(&self, memory: &impl TableMemory, virt: u64) -> Option<(u64, u64, usize, usize)> {
        if virt >> VA_BITS != 0 {
            return None;
        }
        let (mut table, mut level) = (self.root, ROOT_LEVEL);
        loop {
            let index = index_at(virt, level);
            let entry = memory.read(table, index);
            if entry & VALID == 0 {
                return None;
            }
            if level == 3 || entry & TABLE_OR_PAGE == 0 {
                return Some((virt & !((1 << level_shift(level)) - 1), table, index, level));
            }
            (table, level) = (entry & ADDRESS_MASK, level + 1);
        }
    }

    /// Replaces block `leaf` (from [`Self::leaf_at`]) by a table of the next level mapping the
    /// same memory with the same attributes.
    fn split(
        &mut self,
        memory: &mut impl TableMemory,
        (_, table, index, level): (u64, u64, usize, usize),
    ) -> Result<(), MapError> {
        let block = memory.read(table, index);
        let next = memory.alloc_table().ok_or(MapError::OutOfMemory)?;
        let span = 1u64 << level_shift(level + 1);
        let kind = if level + 1 == 3 { TABLE_OR_PAGE } else { 0 };
        let attributes = block & !ADDRESS_MASK & !TABLE_OR_PAGE;
        for child in 0..ENTRIES {
            let phys = (block & ADDRESS_MASK) + child as u64 * span;
            memory.write(next, child, phys | attributes | kind);
        }
        memory.write(table, index, 0);
        memory.invalidate();
        memory.write(table, index, next | TABLE_OR_PAGE | VALID | (ENTRIES as u64 * COUNT_ONE));
        Ok(())
    }

    /// Frees every table frame of this address space (not the memory it maps).
    pub fn destroy(self, memory: &mut impl TableMemory) {
        free_tables(memory, self.root, ROOT_LEVEL);
    }

    /// Calls `visit` for every leaf, in address order.
    pub fn walk(&self, memory: &impl TableMemory, visit: &mut dyn FnMut(Mapping)) {
        self.walk_range(memory, 0, 1 << VA_BITS, visit);
    }

    /// Calls `visit` for every leaf overlapping `[virt, virt + size)`.
    pub fn walk_range(
        &self,
        memory: &impl TableMemory,
        virt: u64,
        size: u64,
        visit: &mut dyn FnMut(Mapping),
    ) {
        walk_table::<R>(memory, self.root, ROOT_LEVEL, 0, virt, virt + size, visit);
    }

    /// The physical address and attributes `virt` translates to, if mapped: one descent, a
    /// read per level.
    pub fn translate(&self, memory: &impl TableMemory, virt: u64) -> Option<(u64, Attributes)> {
        let (start, table, index, _) = self.leaf_at(memory, virt)?;
        let entry = memory.read(table, index);
        Some(((entry & ADDRESS_MASK) + (virt - start), R::decode(entry)))
    }

    /// The first leaf that is both writable and executable, if any.
    pub fn find_writable_executable(&self, memory: &impl TableMemory) -> Option<Mapping> {
        let mut found = None;
        self.walk(memory, &mut |leaf| {
            if found.is_none() && leaf.attributes.write && leaf.attributes.execute {
                found = Some(leaf);
            }
        });
        found
    }
}

/// The indexes of a level-`level` table starting at `base` whose entries overlap
/// `[start, end)` (`end` past `start`), and the span of one entry: a walk visits only those.
fn overlapping(level: usize, base: u64, start: u64, end: u64) -> (core::ops::Range<usize>, u64) {
    let span = 1u64 << level_shift(level);
    if end <= start {
        return (0..0, span);
    }
    let first = start.saturating_sub(base) / span;
    let last = (end - 1).saturating_sub(base) / span;
    let entries = ENTRIES as u64;
    (first.min(entries) as usize..(last + 1).min(entries) as usize, span)
}

fn walk_table<R: Regime>(
    memory: &impl TableMemory,
    table: u64,
    level: usize,
    base: u64,
    start: u64,
    end: u64,
    visit: &mut dyn FnMut(Mapping),
) {
    let (indexes, span) = overlapping(level, base, start, end);
    for index in indexes {
        let virt = base + index as u64 * span;
        let entry = memory.read(table, index);
        if entry & VALID == 0 {
            continue;
        }
        if level < 3 && entry & TABLE_OR_PAGE != 0 {
            walk_table::<R>(memory, entry & ADDRESS_MASK, level + 1, virt, start, end, visit);
        } else {
            let attributes = R::decode(entry);
            visit(Mapping { virt, phys: entry & ADDRESS_MASK, size: span, attributes });
        }
    }
}

/// Raises the count in table descriptor `at` (none: the root, which has no descriptor).
fn count_up(memory: &mut impl TableMemory, at: Option<(u64, usize)>) {
    if let Some((table, index)) = at {
        let descriptor = memory.read(table, index);
        memory.write(table, index, descriptor + COUNT_ONE);
    }
}

/// Clears the leaves of `table` (at `level`, mapping from `base`) inside `[start, end)`, freeing
/// the tables below it that it empties: how many valid entries of `table` it cleared.
fn clear_range(
    memory: &mut impl TableMemory,
    table: u64,
    level: usize,
    base: u64,
    start: u64,
    end: u64,
) -> u64 {
    let (indexes, span) = overlapping(level, base, start, end);
    let mut cleared = 0;
    for index in indexes {
        let virt = base + index as u64 * span;
        let entry = memory.read(table, index);
        if entry & VALID == 0 {
            continue;
        }
        if level < 3 && entry & TABLE_OR_PAGE != 0 {
            let child = entry & ADDRESS_MASK;
            let gone = clear_range(memory, child, level + 1, virt, start, end);
            let left = ((entry & COUNT_MASK) >> COUNT_SHIFT).saturating_sub(gone);
            if left != 0 {
                memory.write(table, index, entry - gone * COUNT_ONE);
                continue;
            }
            memory.write(table, index, 0);
            memory.free_zeroed_table(child);
        } else {
            memory.write(table, index, 0);
        }
        cleared += 1;
    }
    cleared
}

fn free_tables(memory: &mut impl TableMemory, table: u64, level: usize) {
    if level < 3 {
        for index in 0..ENTRIES {
            let entry = memory.read(table, index);
            if entry & VALID != 0 && entry & TABLE_OR_PAGE != 0 {
                free_tables(memory, entry & ADDRESS_MASK, level + 1);
            }
        }
    }
    memory.free_table(table);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Tables in a map from frame address to 512 entries.
    #[derive(Default)]
    struct FakeMemory {
        tables: BTreeMap<u64, Vec<u64>>,
        next: u64,
        limit: Option<usize>,
        zeroed_frees: usize,
    }

    impl TableMemory for FakeMemory {
        fn alloc_table(&mut self) -> Option<u64> {
            if self.limit.is_some_and(|limit| self.tables.len() >= limit) {
                return None;
            }
            self.next += PAGE_SIZE;
            let address = 0x1000_0000 + self.next;
            self.tables.insert(address, vec![0; ENTRIES]);
            Some(address)
        }
        fn read(&self, table: u64, index: usize) -> u64 {
            self.tables[&table][index]
        }
        fn write(&mut self, table: u64, index: usize, value: u64) {
            self.tables.get_mut(&table).unwrap()[index] = value;
        }
        fn free_table(&mut self, table: u64) {
            assert!(self.tables.remove(&table).is_some(), "freed a table twice");
        }
        fn free_zeroed_table(&mut self, table: u64) {
            assert!(
                self.tables[&table].iter().all(|&entry| entry == 0),
                "freed as zeroed: {table:#x}"
            );
            self.zeroed_frees += 1;
            self.free_table(table);
        }
    }

    fn leaves<R: Regime>(space: &AddressSpace<R>, memory: &FakeMemory) -> Vec<Mapping> {
        let mut all = Vec::new();
        space.walk(memory, &mut |leaf| all.push(leaf));
        all
    }

    #[test]
    fn descriptor_bits_match_the_arm_arm() {
        // Normal RW XN: AttrIndx 1, AP[1] RES1, SH inner, AF, XN.
        assert_eq!(
            El2Stage1::encode(Attributes::DATA),
            (1 << 2) | (1 << 6) | (3 << 8) | (1 << 10) | (1 << 54)
        );
        // Text: read-only, executable.
        assert_eq!(
            El2Stage1::encode(Attributes::TEXT),
            (1 << 2) | (1 << 6) | (1 << 7) | (3 << 8) | (1 << 10)
        );
        // Device: index 0, never executable even if asked.
        let device = Attributes { execute: true, ..Attributes::DEVICE };
        assert_eq!(El2Stage1::encode(device), (1 << 6) | (1 << 10) | (1 << 54));
        for attributes in
            [Attributes::TEXT, Attributes::RODATA, Attributes::DATA, Attributes::DEVICE]
        {
            assert_eq!(El2Stage1::decode(El2Stage1::encode(attributes)), attributes);
            assert_eq!(Stage2::decode(Stage2::encode(attributes)), attributes);
        }
    }

    #[test]
    fn uses_largest_aligned_blocks() {
        let mut memory = FakeMemory::default();
        let mut space = AddressSpace::<El2Stage1>::new(&mut memory).unwrap();
        // 4 KiB short of 2 MiB alignment, then a 2 MiB block, then 1 GiB, then a tail page.
        let start = 0x4000_0000 - 0x20_0000 - 0x1000;
        let size = 0x1000 + 0x20_0000 + 0x4000_0000 + 0x1000;
        space.map(&mut memory, start, start, size, Attributes::DATA).unwrap();
        let sizes: Vec<u64> = leaves(&space, &memory).iter().map(|leaf| leaf.size).collect();
        assert_eq!(sizes, vec![0x1000, 0x20_0000, 0x4000_0000, 0x1000]);
        assert_eq!(space.translate(&memory, start + 0x1234).unwrap().0, start + 0x1234);
        assert_eq!(space.translate(&memory, start + size), None);
        assert_eq!(space.translate(&memory, start - 1), None);
    }

    #[test]
    fn refuses_overlap_and_changes_nothing() {
        let mut memory = FakeMemory::default();
        let mut space = AddressSpace::<El2Stage1>::new(&mut memory).unwrap();
        space.map(&mut memory, 0x4020_0000, 0x4020_0000, 0x3000, Attributes::TEXT).unwrap();
        let before = leaves(&space, &memory);
        let error = space.map(&mut memory, 0x4000_0000, 0x4000_0000, 0x40_0000, Attributes::DATA);
        assert_eq!(error, Err(MapError::AlreadyMapped { virt: 0x4020_0000 }));
        assert_eq!(leaves(&space, &memory), before);
        // Adjacent is fine.
        space.map(&mut memory, 0x4020_3000, 0x4020_3000, 0x1000, Attributes::DATA).unwrap();
        // A block over a range with a table below it is refused too.
        let error = space.map(&mut memory, 0x4020_0000, 0x4020_0000, 0x20_0000, Attributes::DATA);
        assert!(matches!(error, Err(MapError::AlreadyMapped { .. })));
    }

    #[test]
    fn refuses_bad_arguments() {
        let mut memory = FakeMemory::default();
        let mut space = AddressSpace::<El2Stage1>::new(&mut memory).unwrap();
        let data = Attributes::DATA;
        assert!(matches!(
            space.map(&mut memory, 1, 0, 0x1000, data),
            Err(MapError::Misaligned { .. })
        ));
        assert!(matches!(space.map(&mut memory, 0, 0, 0, data), Err(MapError::Misaligned { .. })));
        let top = 1u64 << VA_BITS;
        assert!(matches!(
            space.map(&mut memory, top - 0x1000, 0, 0x2000, data),
            Err(MapError::OutOfRange { .. })
        ));
        assert!(matches!(
            space.map(&mut memory, u64::MAX - 0xfff, 0, 0x1000, data),
            Err(MapError::OutOfRange { .. })
        ));
        let mut tight = FakeMemory { limit: Some(2), ..FakeMemory::default() };
        let mut space = AddressSpace::<El2Stage1>::new(&mut tight).unwrap();
        assert_eq!(space.map(&mut tight, 0, 0, 0x1000, data), Err(MapError::OutOfMemory));
    }

    #[test]
    fn finds_writable_executable_leaf() {
        let mut memory = FakeMemory::default();
        let mut space = AddressSpace::<El2Stage1>::new(&mut memory).unwrap();
        space.map(&mut memory, 0x4020_0000, 0x4020_0000, 0x1000, Attributes::TEXT).unwrap();
        space.map(&mut memory, 0x4020_1000, 0x4020_1000, 0x1000, Attributes::DATA).unwrap();
        space.map(&mut memory, 0x0900_0000, 0x0900_0000, 0x1000, Attributes::DEVICE).unwrap();
        assert_eq!(space.find_writable_executable(&memory), None);
        let bad = Attributes {
            memory: MemoryType::Normal,
            write: true,
            execute: true,
            owned: false,
            lent: false,
        };
        space.map(&mut memory, 0x5000_0000, 0x6000_0000, 0x1000, bad).unwrap();
        let found = space.find_writable_executable(&memory).unwrap();
        assert_eq!((found.virt, found.phys, found.size), (0x5000_0000, 0x6000_0000, 0x1000));
    }

    #[test]
    fn stage2_descriptor_bits() {
        // Normal RW, executable: MemAttr 0b1111, S2AP read+write, SH inner, AF.
        let guest_ram = Attributes {
            memory: MemoryType::Normal,
            write: true,
            execute: true,
            owned: false,
            lent: false,
        };
        assert_eq!(
            Stage2::encode(guest_ram),
            (0b1111 << 2) | (0b11 << 6) | (0b11 << 8) | (1 << 10)
        );
        // Device read-only: MemAttr 0b0001, S2AP read, AF, XN.
        let device = Attributes {
            memory: MemoryType::Device,
            write: false,
            execute: false,
            owned: false,
            lent: false,
        };
        assert_eq!(Stage2::encode(device), (0b0001 << 2) | (1 << 6) | (1 << 10) | (1 << 54));
    }

    #[test]
    fn unmap_and_destroy() {
        let mut memory = FakeMemory::default();
        let mut space = AddressSpace::<Stage2>::new(&mut memory).unwrap();
        let ram = Attributes {
            memory: MemoryType::Normal,
            write: true,
            execute: true,
            owned: true,
            lent: false,
        };
        space.map(&mut memory, 0x4000_0000, 0x8000_0000, 0x40_0000, ram).unwrap();
        space.map(&mut memory, 0x4040_0000, 0x9000_0000, 0x3000, ram).unwrap();
        // The first half of a 2 MiB block: the block is split, its second half stays as it was.
        space.unmap(&mut memory, 0x4000_0000, 0x10_0000).unwrap();
        assert_eq!(space.translate(&memory, 0x400f_f000), None);
        assert_eq!(space.translate(&memory, 0x4010_0000), Some((0x8010_0000, ram)));
        assert_eq!(space.translate(&memory, 0x4020_0000), Some((0x8020_0000, ram)));
        space.map(&mut memory, 0x4000_0000, 0x8000_0000, 0x10_0000, ram).unwrap();
        assert_eq!(
            space.unmap(&mut memory, 0x5000_0000, 0x1000),
            Err(MapError::NotMapped { virt: 0x5000_0000 })
        );
        space.unmap(&mut memory, 0x4040_1000, 0x1000).unwrap();
        assert_eq!(space.translate(&memory, 0x4040_1000), None);
        assert_eq!(space.translate(&memory, 0x4040_2000).unwrap().0, 0x9000_2000);
        space.unmap(&mut memory, 0x4000_0000, 0x40_0000).unwrap();
        assert_eq!(space.translate(&memory, 0x4000_0000), None);
        space.unmap(&mut memory, 0x4040_0000, 0x1000).unwrap();
        space.unmap(&mut memory, 0x4040_2000, 0x1000).unwrap();
        assert_eq!(memory.tables.len(), 1, "emptied tables are freed; only the root is left");
        // Remapping the freed range works.
        space.map(&mut memory, 0x4000_0000, 0x8000_0000, 0x1000, ram).unwrap();
        space.destroy(&mut memory);
        assert!(memory.tables.is_empty(), "every table frame is freed");
    }

    /// Every table descriptor's count equals the valid entries of the table it points to.
    fn assert_counts(memory: &FakeMemory, table: u64, level: usize) {
        for index in 0..ENTRIES {
            let entry = memory.read(table, index);
            if level < 3 && entry & VALID != 0 && entry & TABLE_OR_PAGE != 0 {
                let child = entry & ADDRESS_MASK;
                let valid = (0..ENTRIES).filter(|&i| memory.read(child, i) & VALID != 0).count();
                assert_eq!((entry & COUNT_MASK) >> COUNT_SHIFT, valid as u64, "table {child:#x}");
                assert_counts(memory, child, level + 1);
            }
        }
    }

    #[test]
    fn counts_follow_maps_splits_and_unmaps_and_emptied_tables_are_freed_zeroed() {
        let mut memory = FakeMemory::default();
        let mut space = AddressSpace::<Stage2>::new(&mut memory).unwrap();
        let page = Attributes {
            memory: MemoryType::Normal,
            write: true,
            execute: false,
            owned: false,
            lent: true,
        };
        // Pages scattered over three 2 MiB regions of two gigabytes, and a block split later.
        let pages: Vec<u64> = (0..40u64)
            .map(|i| 0x4000_0000 + (i % 3) * 0x4020_0000 + (i * 7 % 40) * 0x1000)
            .collect();
        for (i, &virt) in pages.iter().enumerate() {
            space.map(&mut memory, virt, 0x8000_0000 + i as u64 * 0x1000, 0x1000, page).unwrap();
            assert_counts(&memory, space.root, ROOT_LEVEL);
        }
        space.map(&mut memory, 0x1_0000_0000, 0x9000_0000, 0x20_0000, page).unwrap();
        space.unmap(&mut memory, 0x1_0000_3000, 0x2000).unwrap();
        assert_counts(&memory, space.root, ROOT_LEVEL);
        for &virt in pages.iter().rev().step_by(2).chain(pages.iter().step_by(2)) {
            if space.translate(&memory, virt).is_some() {
                space.unmap(&mut memory, virt, 0x1000).unwrap();
                assert_counts(&memory, space.root, ROOT_LEVEL);
            }
        }
        space.unmap(&mut memory, 0x1_0000_0000, 0x20_0000).unwrap();
        assert_counts(&memory, space.root, ROOT_LEVEL);
        assert_eq!(memory.tables.len(), 1, "only the root is left");
        assert!(memory.zeroed_frees > 0, "emptied tables go back as zeroed");
        space.destroy(&mut memory);
        assert!(memory.tables.is_empty(), "every table frame is freed");
    }

    #[test]
    fn unmapping_one_page_of_a_gigabyte_block_splits_it_twice_and_keeps_the_rest() {
        let mut memory = FakeMemory::default();
        let mut space = AddressSpace::<Stage2>::new(&mut memory).unwrap();
        let ram = Attributes {
            memory: MemoryType::Normal,
            write: true,
            execute: false,
            owned: true,
            lent: false,
        };
        space.map(&mut memory, 0x4000_0000, 0x8000_0000, 0x4000_0000, ram).unwrap();
        assert_eq!(leaves(&space, &memory).len(), 1);
        // No frame for the first split: refused, nothing changed.
        memory.limit = Some(memory.tables.len());
        let before = leaves(&space, &memory);
        assert_eq!(space.unmap(&mut memory, 0x4123_4000, 0x1000), Err(MapError::OutOfMemory));
        assert_eq!(leaves(&space, &memory), before);
        memory.limit = None;
        space.unmap(&mut memory, 0x4123_4000, 0x1000).unwrap();
        assert_eq!(space.translate(&memory, 0x4123_4000), None);
        let all = leaves(&space, &memory);
        // 511 blocks of 2 MiB and 511 pages: all the rest, each where it was, still owned.
        assert_eq!(all.len(), 511 + 511);
        assert_eq!(all.iter().map(|leaf| leaf.size).sum::<u64>(), 0x4000_0000 - 0x1000);
        for leaf in &all {
            assert_eq!(leaf.phys - leaf.virt, 0x4000_0000);
            assert_eq!(leaf.attributes, ram);
        }
        // Unmapping a range that ends inside a block splits at its end as well.
        space.unmap(&mut memory, 0x4000_0000, 0x30_1000).unwrap();
        assert_eq!(space.translate(&memory, 0x4030_1000), Some((0x8030_1000, ram)));
        assert_eq!(space.translate(&memory, 0x4030_0000), None);
    }

    #[test]
    fn the_owned_bit_is_a_software_bit_of_stage_2_only() {
        let ram = Attributes { owned: true, ..Attributes::DATA };
        assert_eq!(Stage2::encode(ram), Stage2::encode(Attributes::DATA) | (1 << 55));
        assert_eq!(Stage2::decode(Stage2::encode(ram)), ram);
        assert_eq!(El2Stage1::encode(ram), El2Stage1::encode(Attributes::DATA));
    }
}
