//! The two-slot scheme: alternation, torn saves, damage, sizes, and that each service's
//! format reads only its own headers (the tests of the xenstore stub's and the console's
//! copies, merged).
use super::*;

const TEST: Format = Format::new(*b"XLTESTSN", 7);
/// The xenstore stub's and the console's formats, whose bytes must not change.
const XENSTORE: Format = Format::new(*b"XLXSSNAP", 1);
const CONSOLE: Format = Format::new(*b"XLCNSNAP", 3);
const REGION: usize = 2 * (HEADER_SIZE + 4096);

fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn an_empty_region_has_no_snapshot() {
    let region = vec![0u8; REGION];
    assert_eq!(TEST.latest(&region), None);
    assert_eq!(capacity(REGION), 4096);
}

#[test]
fn saves_alternate_and_the_newest_wins() {
    let mut region = vec![0u8; REGION];
    assert_eq!(TEST.save(&mut region, b"one"), Ok(1));
    assert_eq!(TEST.latest(&region), Some((1, &b"one"[..])));
    assert_eq!(TEST.save(&mut region, b"two"), Ok(2));
    assert_eq!(TEST.latest(&region), Some((2, &b"two"[..])));
    // The second went to the other half; the third overwrites the first's.
    assert_eq!(&region[REGION / 2 + HEADER_SIZE..][..3], b"two");
    assert_eq!(TEST.save(&mut region, b"three"), Ok(3));
    assert_eq!(&region[HEADER_SIZE..][..5], b"three");
    assert_eq!(TEST.latest(&region), Some((3, &b"three"[..])));
}

#[test]
fn a_payload_larger_than_a_slot_is_refused_and_nothing_written() {
    let mut region = vec![0u8; REGION];
    TEST.save(&mut region, b"three").unwrap();
    let before = region.clone();
    assert_eq!(
        TEST.save(&mut region, &[0; 4097]),
        Err(SaveError::TooLarge { bytes: 4097, capacity: 4096 })
    );
    assert_eq!(region, before);
    assert_eq!(TEST.save(&mut region, &[5; 4096]), Ok(2));
    // Regions too small for two headers hold nothing, not even an empty payload; odd lengths
    // leave the last byte unused.
    for len in [0, 1, 2 * HEADER_SIZE - 1] {
        let mut tiny = vec![0u8; len];
        assert_eq!(TEST.save(&mut tiny, b""), Err(SaveError::TooLarge { bytes: 0, capacity: 0 }));
        assert!(tiny.iter().all(|&b| b == 0));
        assert_eq!(TEST.latest(&tiny), None);
    }
    let mut odd = vec![0xaau8; 2 * HEADER_SIZE + 21];
    assert_eq!(capacity(odd.len()), 10);
    assert_eq!(TEST.save(&mut odd, &[1; 10]), Ok(1));
    assert_eq!(TEST.save(&mut odd, &[2; 10]), Ok(2));
    assert_eq!(odd[odd.len() - 1], 0xaa);
    assert_eq!(TEST.latest(&odd), Some((2, &[2u8; 10][..])));
}

#[test]
fn a_format_reads_only_its_own_magic_and_version() {
    let mut region = vec![0u8; REGION];
    XENSTORE.save(&mut region, b"store").unwrap();
    assert_eq!(CONSOLE.latest(&region), None);
    assert_eq!(Format::new(XENSTORE.magic, 2).latest(&region), None);
    assert_eq!(XENSTORE.latest(&region), Some((1, &b"store"[..])));
    // A save of another format does not count the foreign slot as its newest.
    CONSOLE.save(&mut region, b"console").unwrap();
    assert_eq!(CONSOLE.latest(&region), Some((1, &b"console"[..])));
    assert_eq!(XENSTORE.latest(&region), None, "slot 0 is the console's now");
}

/// The header's bytes, as the xenstore stub and the console domain wrote them before they
/// shared this crate (their preserved regions must read across the change).
#[test]
fn headers_keep_their_layout() {
    let mut region = vec![0u8; REGION];
    CONSOLE.save(&mut region, b"abc").unwrap();
    let header = &region[..HEADER_SIZE];
    assert_eq!(&header[..8], b"XLCNSNAP");
    assert_eq!(header[8..12], 3u32.to_le_bytes());
    assert_eq!(header[12..16], 64u32.to_le_bytes());
    assert_eq!(header[16..24], 1u64.to_le_bytes());
    assert_eq!(header[24..32], 3u64.to_le_bytes());
    assert_eq!(header[32..40], fnv1a(b"abc").to_le_bytes());
    assert_eq!(header[40..48], fnv1a(&header[..40]).to_le_bytes());
    assert_eq!(header[48..], [0; 16]);
    assert_eq!(&region[HEADER_SIZE..HEADER_SIZE + 3], b"abc");
    // FNV-1a 64's published test vectors.
    assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
}

/// A save cut off after any number of its byte writes leaves the last saved snapshot
/// readable: simulated by replaying a save's writes into a copy and stopping early.
#[test]
fn a_torn_save_never_loses_the_last_snapshot() {
    let mut region = vec![0u8; REGION];
    TEST.save(&mut region, &[7u8; 1000]).unwrap();
    TEST.save(&mut region, &[8u8; 1200]).unwrap();
    let before = region.clone();
    let mut after = before.clone();
    TEST.save(&mut after, &[9u8; 3000]).unwrap();
    let changed: Vec<usize> = (0..before.len()).filter(|&i| before[i] != after[i]).collect();
    // Any subset of the changed bytes, in any order a compiler might pick, must leave a valid
    // snapshot: the old one or the new one. Prefixes in both orders and a shuffled order.
    let mut orders = vec![changed.clone(), changed.iter().rev().copied().collect::<Vec<_>>()];
    let mut shuffled = changed.clone();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(i, (xorshift(&mut seed) % (i as u64 + 1)) as usize);
    }
    orders.push(shuffled);
    for order in orders {
        let mut torn = before.clone();
        for (count, &index) in order.iter().enumerate() {
            torn[index] = after[index];
            if count % 97 == 0 || count + 1 == order.len() {
                let (sequence, payload) = TEST.latest(&torn).expect("a valid snapshot");
                match sequence {
                    2 => assert_eq!(payload, &[8u8; 1200][..]),
                    3 => assert_eq!(payload, &[9u8; 3000][..]),
                    other => panic!("sequence {other}"),
                }
            }
        }
    }
}

#[test]
fn damage_is_detected_and_never_panics() {
    let mut region = vec![0u8; REGION];
    TEST.save(&mut region, b"first").unwrap();
    TEST.save(&mut region, b"second").unwrap();
    // Slot 1 holds "second": flip a payload byte, then a header byte.
    let half = REGION / 2;
    region[half + HEADER_SIZE] ^= 1;
    assert_eq!(TEST.latest(&region), Some((1, &b"first"[..])));
    region[half + HEADER_SIZE] ^= 1;
    region[half + 16] ^= 1;
    assert_eq!(TEST.latest(&region), Some((1, &b"first"[..])));
    // A huge length in an otherwise valid-looking header is refused, not followed.
    region[half + 16] ^= 1;
    region[half + 24..half + 32].copy_from_slice(&u64::MAX.to_le_bytes());
    let check = fnv1a(&region[half..half + 40]);
    region[half + 40..half + 48].copy_from_slice(&check.to_le_bytes());
    assert_eq!(TEST.latest(&region), Some((1, &b"first"[..])));
    // The next save goes to the damaged slot, never over the good one.
    assert_eq!(TEST.save(&mut region, b"third"), Ok(2));
    assert_eq!(&region[HEADER_SIZE..HEADER_SIZE + 5], b"first");
    // Random garbage anywhere, and regions of any length, never panic.
    let mut seed = 1u64;
    for round in 0..4000 {
        let index = (xorshift(&mut seed) % region.len() as u64) as usize;
        region[index] = (seed >> 32) as u8;
        let _ = TEST.latest(&region);
        let cut = (xorshift(&mut seed) % region.len() as u64) as usize;
        let _ = TEST.latest(&region[..cut]);
        if round % 100 == 0 {
            let mut copy = region[..cut].to_vec();
            let _ = TEST.save(&mut copy, b"payload");
        }
    }
}

#[test]
fn save_after_alternates_as_save_does_without_reading_the_region() {
    let (mut told, mut read) = (vec![0u8; REGION], vec![0u8; REGION]);
    TEST.save(&mut told, b"from an earlier incarnation").expect("saved");
    TEST.save(&mut read, b"from an earlier incarnation").expect("saved");
    let mut newest = TEST.newest_slot(&told);
    assert_eq!(newest, Some((0, 1)));
    for round in 0..5u8 {
        let payload = [round; 40];
        newest = Some(TEST.save_after(&mut told, &payload, newest).expect("saved"));
        TEST.save(&mut read, &payload).expect("saved");
        assert_eq!(told, read, "round {round}: the same bytes as save writes");
        assert_eq!(TEST.latest(&told), Some((u64::from(round) + 2, &payload[..])));
    }
    assert_eq!(
        TEST.save_after(&mut told, &[0; 5000], newest),
        Err(SaveError::TooLarge { bytes: 5000, capacity: 4096 })
    );
}
