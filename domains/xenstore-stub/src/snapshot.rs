//! The xenstore domain's preserved region: the store's encoding (`xenolith-xenstore`'s
//! `Store::encode`) in `xenolith-preserved`'s two checksummed slots under [`FORMAT`], so a
//! commit killed half-way leaves the last committed store readable.

use xenolith_preserved::{Format, HEADER_SIZE};

/// The slot format: magic `XLXSSNAP`, version 1.
pub const FORMAT: Format = Format::new(*b"XLXSSNAP", 1);
/// The smallest region the domain accepts: two headers and 4 KiB of payload each.
pub const MIN_REGION: usize = 2 * (HEADER_SIZE + 4096);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_region_holds_4_kib_a_slot_and_its_snapshots_are_xenstores() {
        assert_eq!(xenolith_preserved::capacity(MIN_REGION), 4096);
        let mut region = vec![0u8; MIN_REGION];
        assert_eq!(FORMAT.save(&mut region, b"store"), Ok(1));
        assert_eq!(&region[..8], b"XLXSSNAP");
        assert_eq!(FORMAT.latest(&region), Some((1, &b"store"[..])));
    }
}
