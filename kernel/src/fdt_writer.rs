//! A flattened device tree (DTB, version 17) writer into a caller-provided buffer.
//!
//! The core hands every Arm domain a device tree it builds itself (see [`crate::guest_dtb`]); it has
//! no heap for it, so this writer works in place, as libfdt's sequential-write mode does: the
//! header and memory reservation block at the front, the structure block growing forward after
//! them, the strings block growing backward from the end of the buffer. [`FdtWriter::finish`]
//! moves the strings behind the structure block, rewrites every property's name offset and writes
//! the header.
//!
//! The layout follows the Devicetree Specification v0.4, chapter 5 ("Flattened Devicetree (DTB)
//! Format").
//!
//! # Invariants
//! - Nothing panics: every shortage or misuse is an [`FdtError`], and a call that fails leaves the
//!   tree as it was before the call.
//! - The structure block is always 4-byte aligned and well formed: it only ever holds complete
//!   tokens, with properties before the child nodes of the same node.
//! - Each property name is stored once in the strings block (at most [`MAX_PROPERTY_NAMES`]
//!   distinct names).

/// The DTB magic number (`FDT_MAGIC`).
pub const FDT_MAGIC: u32 = 0xd00d_feed;
/// The version this writer produces.
pub const FDT_VERSION: u32 = 17;
/// The oldest version a reader must understand to read our output.
pub const FDT_LAST_COMPATIBLE_VERSION: u32 = 16;
/// Most distinct property names one tree may use. A guest tree uses about 25.
pub const MAX_PROPERTY_NAMES: usize = 64;

const FDT_BEGIN_NODE: u32 = 0x1;
const FDT_END_NODE: u32 = 0x2;
const FDT_PROP: u32 = 0x3;
const FDT_NOP: u32 = 0x4;
const FDT_END: u32 = 0x9;

const HEADER_SIZE: usize = 40;
const RESERVATION_ENTRY_SIZE: usize = 16;

/// Why a tree could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdtError {
    /// The buffer cannot hold the tree; nothing of the failed call was written.
    BufferTooSmall,
    /// `end_node` without an open node, a second root, a property outside the root, or `finish`
    /// with nodes still open or no root at all.
    UnbalancedNodes,
    /// A property followed a child node inside the same node (DTSpec 5.4.1: properties first).
    PropertyAfterChild,
    /// More than [`MAX_PROPERTY_NAMES`] distinct property names.
    TooManyStrings,
    /// A node or property name is empty (only the root's must be), contains a NUL, or is longer
    /// than the specification allows (31 characters).
    InvalidName,
    /// A string value contains a NUL byte.
    InvalidString,
    /// The writer found its own structure block malformed while finishing. A bug in this module.
    Internal,
}

/// A device tree being written. See the module documentation for the layout.
pub struct FdtWriter<'a> {
    /// The output; only its first `u32::MAX` bytes are used (a DTB's size is a `u32`).
    buffer: &'a mut [u8],
    /// Offset of the structure block (after header and reservations).
    struct_start: usize,
    /// End of the structure block written so far.
    struct_end: usize,
    /// Start of the strings block, which occupies `strings_start..buffer.len()`.
    strings_start: usize,
    /// Distance from the buffer's end to each distinct name, in order of first use.
    names: [u32; MAX_PROPERTY_NAMES],
    name_count: usize,
    /// Number of open nodes.
    depth: u32,
    /// Whether the innermost open node already has a child (so no more properties).
    has_children: bool,
    /// Whether the root node has been opened (and so may not be opened again).
    root_seen: bool,
    boot_cpuid_phys: u32,
}

impl<'a> FdtWriter<'a> {
    /// Starts a tree in `buffer` with the given memory reservations (`(address, size)`, written in
    /// this order) and boot CPU (`boot_cpuid_phys`, the `reg` of the boot CPU's node).
    pub fn new(
        buffer: &'a mut [u8],
        reservations: &[(u64, u64)],
        boot_cpuid_phys: u32,
    ) -> Result<Self, FdtError> {
        let usable = buffer.len().min(u32::MAX as usize);
        let buffer = &mut buffer[..usable];
        let struct_start = reservations
            .len()
            .checked_add(1)
            .and_then(|entries| entries.checked_mul(RESERVATION_ENTRY_SIZE))
            .and_then(|size| size.checked_add(HEADER_SIZE))
            .filter(|&end| end <= usable)
            .ok_or(FdtError::BufferTooSmall)?;
        buffer[..struct_start].fill(0);
        for (index, &(address, size)) in reservations.iter().enumerate() {
            let at = HEADER_SIZE + index * RESERVATION_ENTRY_SIZE;
            buffer[at..at + 8].copy_from_slice(&address.to_be_bytes());
            buffer[at + 8..at + 16].copy_from_slice(&size.to_be_bytes());
        }
        // The terminating all-zero entry is already there.
        Ok(Self {
            strings_start: usable,
            buffer,
            struct_start,
            struct_end: struct_start,
            names: [0; MAX_PROPERTY_NAMES],
            name_count: 0,
            depth: 0,
            has_children: false,
            root_seen: false,
            boot_cpuid_phys,
        })
    }

    /// Opens a node. The first node must be the root, named `""`; every other name is non-empty
    /// (`name@unit-address`, at most 31 characters before the `@`).
    pub fn begin_node(&mut self, name: &str) -> Result<(), FdtError> {
        if self.depth == 0 {
            if self.root_seen {
                return Err(FdtError::UnbalancedNodes);
            }
            if !name.is_empty() {
                return Err(FdtError::InvalidName);
            }
        } else {
            let base = name.split('@').next().unwrap_or("");
            if base.is_empty() || base.len() > 31 || name.contains('\0') {
                return Err(FdtError::InvalidName);
            }
        }
        let size = 4 + align4(name.len() + 1);
        let at = self.reserve_struct(size)?;
        let block = &mut self.buffer[at..at + size];
        block.fill(0);
        block[..4].copy_from_slice(&FDT_BEGIN_NODE.to_be_bytes());
        block[4..4 + name.len()].copy_from_slice(name.as_bytes());
        self.struct_end = at + size;
        self.depth += 1;
        self.has_children = false;
        self.root_seen = true;
        Ok(())
    }

    /// Closes the innermost open node.
    pub fn end_node(&mut self) -> Result<(), FdtError> {
        if self.depth == 0 {
            return Err(FdtError::UnbalancedNodes);
        }
        self.token(FDT_END_NODE)?;
        self.depth -= 1;
        // The parent now has a child.
        self.has_children = true;
        Ok(())
    }

    /// Adds a property with a raw value (empty for a boolean property such as
    /// `interrupt-controller`).
    pub fn property(&mut self, name: &str, value: &[u8]) -> Result<(), FdtError> {
        self.property_with(name, value.len(), |out| out.copy_from_slice(value))
    }

    /// Adds a property holding one big-endian 32-bit cell.
    pub fn property_u32(&mut self, name: &str, value: u32) -> Result<(), FdtError> {
        self.property(name, &value.to_be_bytes())
    }

    /// Adds a property holding a big-endian 64-bit value (two cells, high first).
    pub fn property_u64(&mut self, name: &str, value: u64) -> Result<(), FdtError> {
        self.property(name, &value.to_be_bytes())
    }

    /// Adds a property holding a list of big-endian 32-bit cells.
    pub fn property_cells(&mut self, name: &str, cells: &[u32]) -> Result<(), FdtError> {
        let length = cells.len().checked_mul(4).ok_or(FdtError::BufferTooSmall)?;
        self.property_with(name, length, |out| {
            for (chunk, cell) in out.chunks_exact_mut(4).zip(cells) {
                chunk.copy_from_slice(&cell.to_be_bytes());
            }
        })
    }

    /// Adds a NUL-terminated string property.
    pub fn property_str(&mut self, name: &str, value: &str) -> Result<(), FdtError> {
        self.property_strlist(name, &[value])
    }

    /// Adds a string-list property (`compatible = "a", "b"`): each string NUL-terminated, in order.
    pub fn property_strlist(&mut self, name: &str, values: &[&str]) -> Result<(), FdtError> {
        let mut length = 0usize;
        for value in values {
            if value.contains('\0') {
                return Err(FdtError::InvalidString);
            }
            length = length.checked_add(value.len() + 1).ok_or(FdtError::BufferTooSmall)?;
        }
        self.property_with(name, length, |out| {
            let mut at = 0;
            for value in values {
                out[at..at + value.len()].copy_from_slice(value.as_bytes());
                out[at + value.len()] = 0;
                at += value.len() + 1;
            }
        })
    }

    /// Ends the tree: checks every node is closed, lays out the strings block after the structure
    /// block and writes the header. Returns the size of the DTB at the start of the buffer.
    pub fn finish(mut self) -> Result<usize, FdtError> {
        if self.depth != 0 || !self.root_seen {
            return Err(FdtError::UnbalancedNodes);
        }
        self.token(FDT_END)?;
        let strings_size = self.buffer.len() - self.strings_start;
        self.fix_name_offsets(strings_size)?;
        let strings_offset = self.struct_end;
        self.buffer.copy_within(self.strings_start.., strings_offset);
        let total = strings_offset + strings_size;
        let header = [
            FDT_MAGIC,
            total as u32,
            self.struct_start as u32,
            strings_offset as u32,
            HEADER_SIZE as u32,
            FDT_VERSION,
            FDT_LAST_COMPATIBLE_VERSION,
            self.boot_cpuid_phys,
            strings_size as u32,
            (self.struct_end - self.struct_start) as u32,
        ];
        for (chunk, word) in self.buffer[..HEADER_SIZE].chunks_exact_mut(4).zip(header) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        Ok(total)
    }

    /// Writes a property whose `length`-byte value `fill` produces. All checks and the space for
    /// name and value come first, so a failure writes nothing.
    fn property_with(
        &mut self,
        name: &str,
        length: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), FdtError> {
        if self.depth == 0 {
            return Err(FdtError::UnbalancedNodes);
        }
        if self.has_children {
            return Err(FdtError::PropertyAfterChild);
        }
        if name.is_empty() || name.len() > 31 || name.contains('\0') {
            return Err(FdtError::InvalidName);
        }
        let existing = self.find_name(name);
        let new_string = if existing.is_some() { 0 } else { name.len() + 1 };
        if existing.is_none() && self.name_count == MAX_PROPERTY_NAMES {
            return Err(FdtError::TooManyStrings);
        }
        let size = align4(length).checked_add(12).ok_or(FdtError::BufferTooSmall)?;
        let free = self.strings_start - self.struct_end;
        if size.checked_add(new_string).is_none_or(|needed| needed > free) {
            return Err(FdtError::BufferTooSmall);
        }
        let distance = match existing {
            Some(distance) => distance,
            None => {
                self.strings_start -= new_string;
                let at = self.strings_start;
                self.buffer[at..at + name.len()].copy_from_slice(name.as_bytes());
                self.buffer[at + name.len()] = 0;
                let distance = (self.buffer.len() - at) as u32;
                self.names[self.name_count] = distance;
                self.name_count += 1;
                distance
            }
        };
        let at = self.struct_end;
        let block = &mut self.buffer[at..at + size];
        block[..4].copy_from_slice(&FDT_PROP.to_be_bytes());
        block[4..8].copy_from_slice(&(length as u32).to_be_bytes());
        // Provisional: the distance from the buffer's end; `finish` turns it into an offset.
        block[8..12].copy_from_slice(&distance.to_be_bytes());
        let (value, padding) = block[12..].split_at_mut(length);
        fill(value);
        padding.fill(0);
        self.struct_end = at + size;
        Ok(())
    }

    /// The stored distance of `name` if the strings block already holds it.
    fn find_name(&self, name: &str) -> Option<u32> {
        let end = self.buffer.len();
        self.names[..self.name_count].iter().copied().find(|&distance| {
            let at = end - distance as usize;
            self.buffer.get(at..at + name.len()) == Some(name.as_bytes())
                && self.buffer.get(at + name.len()) == Some(&0)
        })
    }

    /// Appends a bare token.
    fn token(&mut self, token: u32) -> Result<(), FdtError> {
        let at = self.reserve_struct(4)?;
        self.buffer[at..at + 4].copy_from_slice(&token.to_be_bytes());
        self.struct_end = at + 4;
        Ok(())
    }

    /// Checks that `size` more bytes fit in the structure block; returns where they go. Does not
    /// advance `struct_end` (the caller does once it has written them).
    fn reserve_struct(&self, size: usize) -> Result<usize, FdtError> {
        match self.struct_end.checked_add(size) {
            Some(end) if end <= self.strings_start => Ok(self.struct_end),
            _ => Err(FdtError::BufferTooSmall),
        }
    }

    /// Rewrites each property's provisional name distance into an offset within a strings block of
    /// `strings_size` bytes, by walking the structure block.
    fn fix_name_offsets(&mut self, strings_size: usize) -> Result<(), FdtError> {
        let mut at = self.struct_start;
        loop {
            let token = self.read_u32(at)?;
            at += 4;
            match token {
                FDT_BEGIN_NODE => {
                    let name = self.buffer.get(at..self.struct_end).ok_or(FdtError::Internal)?;
                    let length = name.iter().position(|&b| b == 0).ok_or(FdtError::Internal)?;
                    at += align4(length + 1);
                }
                FDT_PROP => {
                    let length = self.read_u32(at)? as usize;
                    let distance = self.read_u32(at + 4)? as usize;
                    let offset = strings_size.checked_sub(distance).ok_or(FdtError::Internal)?;
                    self.buffer[at + 4..at + 8].copy_from_slice(&(offset as u32).to_be_bytes());
                    at += 8 + align4(length);
                }
                FDT_END_NODE | FDT_NOP => {}
                FDT_END => return Ok(()),
                _ => return Err(FdtError::Internal),
            }
        }
    }

    fn read_u32(&self, at: usize) -> Result<u32, FdtError> {
        let bytes = self.buffer.get(at..at.wrapping_add(4)).ok_or(FdtError::Internal)?;
        let bytes: [u8; 4] = bytes.try_into().map_err(|_| FdtError::Internal)?;
        Ok(u32::from_be_bytes(bytes))
    }
}

/// `size` rounded up to a multiple of 4 (saturating: a size that large never fits anyway).
const fn align4(size: usize) -> usize {
    size.saturating_add(3) & !3
}

#[cfg(test)]
mod tests;
