//! The preserved region: round trips of every part of the state, torn saves, damaged regions,
//! and the size bound.

mod common;

use common::{guest_write, page, Rng};
use xenolith_console_logic::line::MAX_LINE;
use xenolith_console_logic::{
    region_size, Config, Console, Focus, RestoreError, SaveError, INPUT_QUEUE, MAX_NAME,
};

const SWITCH: &[u8] = b"\x1d\x1d\x1d";

/// A console with something of everything: several domains, an unfinished (continued) line,
/// queued input, a held half switch sequence, focus on a domain, a pending batch.
fn busy() -> Console {
    let config = Config { max_domains: 5, round_budget: 300, ..Config::default() };
    let mut console = Console::new(config).unwrap();
    let mut pages = [page(), page(), page()];
    console.add_domain(1, "one", &pages[0]).unwrap();
    console.add_domain(5, "five", &pages[1]).unwrap();
    console.add_domain(6, "six", &pages[2]).unwrap();
    guest_write(&mut pages[0], &[b'a'; 280]);
    console.take(1, &pages[0]).unwrap().unwrap();
    console.commit(1, &mut pages[0]).unwrap();
    // Six stops inside an escape sequence (kept across the save).
    guest_write(&mut pages[2], b"x\x1b[1");
    console.take(6, &pages[2]).unwrap().unwrap();
    console.commit(6, &mut pages[2]).unwrap();
    console.input(SWITCH);
    console.input(SWITCH);
    console.input(b"typed\x1d\x1d");
    guest_write(&mut pages[1], b"first\nsecond\nthi");
    let batch = console.take(5, &pages[1]).unwrap().unwrap();
    // Two lines, and the focused domain's unfinished one shown as it is.
    assert_eq!(batch.lines.len(), 3);
    assert_eq!(batch.lines[2].text, b"five: thi");
    console
}

fn saved(console: &Console) -> Vec<u8> {
    let mut region = vec![0u8; region_size(console.config())];
    console.save(&mut region).unwrap();
    region
}

#[test]
fn a_round_trip_keeps_everything() {
    let console = busy();
    assert_eq!(console.focus(), Focus::Domain(5));
    assert_eq!(console.queued_input(5), 5);
    let region = saved(&console);
    let restored = Console::restore(*console.config(), &region).unwrap().unwrap();
    assert_eq!(restored, console);
    // It behaves the same afterwards: the pending batch, the held keys, the partial line.
    let (mut a, mut b) = (console, restored);
    assert_eq!(a.pending(), b.pending());
    assert_eq!(a.input(b"\x1d!"), b.input(b"\x1d!"));
    let (mut pa, mut pb) = (page(), page());
    guest_write(&mut pa, b"first\nsecond\nthi");
    guest_write(&mut pb, b"first\nsecond\nthi");
    a.commit(5, &mut pa).unwrap();
    b.commit(5, &mut pb).unwrap();
    guest_write(&mut pa, b"rd\n");
    guest_write(&mut pb, b"rd\n");
    let (la, lb) = (a.take(5, &pa).unwrap().unwrap(), b.take(5, &pb).unwrap().unwrap());
    assert_eq!(la, lb);
    assert_eq!(la.lines[0].text, b"rd\n", "the rest of the line shown before");
    assert_eq!(la.lines[0].sequence, 5, "after one cut line of one and three pieces of five");
    // An empty region is a first start.
    assert_eq!(Console::restore(Config::default(), &[0u8; 1000]), Ok(None));
}

#[test]
fn the_region_size_formula_is_the_bound() {
    assert_eq!(region_size(&Config::default()), 44_076);
    // The largest state: every domain with the longest name, a full partial line and a full
    // input queue, and a pending batch of the whole budget.
    let config = Config { max_domains: 3, round_budget: 2048, ..Config::default() };
    let mut console = Console::new(config).unwrap();
    let mut pages = [page(), page(), page()];
    for (index, id) in [10u16, 20, 30].into_iter().enumerate() {
        let name = "n".repeat(MAX_NAME - 1) + &index.to_string();
        console.add_domain(id, &name, &pages[index]).unwrap();
        guest_write(&mut pages[index], &[b'p'; MAX_LINE]);
        console.take(id, &pages[index]).unwrap().unwrap();
        console.commit(id, &mut pages[index]).unwrap();
        console.input(SWITCH);
        console.input(&vec![b'i'; INPUT_QUEUE + 10]);
        assert_eq!(console.queued_input(id), INPUT_QUEUE);
    }
    guest_write(&mut pages[2], &vec![b'q'; 2048]);
    console.take(30, &pages[2]).unwrap().unwrap();
    let mut payload = Vec::new();
    console.encode(&mut payload);
    let size = region_size(&config);
    assert_eq!(2 * (64 + payload.len()), size, "the formula is exact for the largest state");
    assert!(console.save(&mut vec![0u8; size]).is_ok());
    // One byte less is refused, and the region is left as it was.
    let mut small = vec![0u8; size - 2];
    assert_eq!(
        console.save(&mut small),
        Err(SaveError::TooLarge { bytes: payload.len(), capacity: size / 2 - 1 - 64 })
    );
    assert!(small.iter().all(|&b| b == 0));
    // A domain beyond the configured maximum is refused.
    assert!(console.add_domain(40, "extra", &page()).is_err());
}

/// A save cut off after any subset of its byte writes leaves a valid snapshot: the previous
/// one or the new one.
#[test]
fn a_torn_save_never_loses_the_last_snapshot() {
    let mut console = busy();
    let mut region = saved(&console);
    let before_state = console.clone();
    let mut before = region.clone();
    console.save(&mut before).unwrap(); // two slots in use
    region.copy_from_slice(&before);
    let mut pages = [page(), page()];
    guest_write(&mut pages[1], b"first\nsecond\nthi");
    console.commit(5, &mut pages[1]).unwrap();
    console.input(b"more input");
    let mut after = before.clone();
    console.save(&mut after).unwrap();
    let changed: Vec<usize> = (0..before.len()).filter(|&i| before[i] != after[i]).collect();
    assert!(changed.len() > 50);
    let mut orders = vec![changed.clone(), changed.iter().rev().copied().collect()];
    let mut shuffled = changed.clone();
    let mut rng = Rng(0x7042);
    for i in (1..shuffled.len()).rev() {
        shuffled.swap(i, rng.below(i + 1));
    }
    orders.push(shuffled);
    for order in orders {
        let mut torn = before.clone();
        for (count, &index) in order.iter().enumerate() {
            torn[index] = after[index];
            if count % 7 == 0 || count + 1 == order.len() {
                let restored = Console::restore(*console.config(), &torn).unwrap().unwrap();
                assert!(
                    restored == before_state || restored == console,
                    "after {count} of {} writes",
                    order.len()
                );
            }
        }
    }
}

#[test]
fn damage_is_detected_and_never_panics() {
    let console = busy();
    let mut region = saved(&console);
    let mut two = region.clone();
    console.save(&mut two).unwrap();
    // Flip any payload byte of the newest slot: the older slot is used.
    let half = two.len() / 2;
    two[half + 64 + 3] ^= 0x40;
    assert_eq!(Console::restore(*console.config(), &two).unwrap().unwrap(), console);
    // Random garbage anywhere never panics.
    let mut rng = Rng(99);
    for _ in 0..3000 {
        let index = rng.below(region.len());
        region[index] = rng.next() as u8;
        let _ = Console::restore(*console.config(), &region);
    }
    // Random payloads through the decoder directly never panic either.
    let mut payload = Vec::new();
    console.encode(&mut payload);
    for _ in 0..20_000 {
        let mut bytes = payload.clone();
        for _ in 0..1 + rng.below(4) {
            let index = rng.below(bytes.len());
            bytes[index] = rng.next() as u8;
        }
        bytes.truncate(rng.below(bytes.len() + 1).max(bytes.len() - rng.below(3)));
        let _ = Console::decode(*console.config(), &bytes);
    }
}

#[test]
fn impossible_states_are_refused() {
    let console = busy();
    let config = *console.config();
    let mut payload = Vec::new();
    console.encode(&mut payload);
    let decode = |bytes: &[u8]| Console::decode(config, bytes);
    assert_eq!(decode(&payload), Ok(console.clone()));
    assert_eq!(decode(&payload[..payload.len() - 1]), Err(RestoreError::Truncated));
    let mut extra = payload.clone();
    extra.push(0);
    assert!(matches!(decode(&extra), Err(RestoreError::Invalid(_))));
    // Held keys: offset 11 (after sequence u64, focus u8, focus id u16).
    let mut held = payload.clone();
    held[11] = 3;
    assert_eq!(decode(&held), Err(RestoreError::Invalid("a complete switch sequence held")));
    // Focus on an absent domain.
    let mut focus = payload.clone();
    focus[9..11].copy_from_slice(&2u16.to_le_bytes());
    assert_eq!(decode(&focus), Err(RestoreError::Invalid("focus on an absent domain")));
    // More domains than configured.
    let small = Config { max_domains: 2, ..config };
    assert_eq!(
        Console::decode(small, &payload),
        Err(RestoreError::Invalid("more domains than configured"))
    );
    // A pending batch over the configured budget.
    let tight = Config { round_budget: 10, ..config };
    assert_eq!(
        Console::decode(tight, &payload),
        Err(RestoreError::Invalid("a pending batch over budget"))
    );
    // The sequence number moved past the pending batch's lines.
    let mut sequence = payload.clone();
    sequence[0] += 1;
    assert!(matches!(decode(&sequence), Err(RestoreError::Invalid(_))));
}
