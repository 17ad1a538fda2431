//! Ring arithmetic and hostile guests: wrap-around of the free-running indexes, producers far
//! ahead or going backwards, consumers running ahead, floods.

mod common;

use common::{guest_read, guest_write, page, page_at, Sink};
use xenolith_console_logic::ring::{
    IN_CONS_OFFSET, IN_PROD_OFFSET, IN_SIZE, OUT_CONS_OFFSET, OUT_PROD_OFFSET, OUT_SIZE,
};
use xenolith_console_logic::{
    Config, Console, DeliverError, RingError, RingPage, Routed, TakeError,
};

fn console(budget: u32) -> Console {
    Console::new(Config { round_budget: budget, ..Config::default() }).unwrap()
}

/// Takes, writes and commits everything `domain` has, in as many batches as it takes.
fn drain(console: &mut Console, domain: u16, page: &mut common::Page, sink: &mut Sink) -> usize {
    let mut batches = 0;
    while let Some(batch) = console.take(domain, page).unwrap() {
        batch.lines.iter().for_each(|line| sink.write(line));
        console.commit(domain, page).unwrap();
        batches += 1;
    }
    batches
}

#[test]
fn output_wraps_the_u32_indexes() {
    for start in [0u32, OUT_SIZE - 3, u32::MAX - 5, u32::MAX - OUT_SIZE + 1] {
        let mut page = page_at(start);
        let mut console = console(OUT_SIZE);
        console.add_domain(3, "guest", &page).unwrap();
        let mut sink = Sink::default();
        for n in 0..40 {
            let line = format!("line {n} {}\n", "y".repeat(n * 5));
            assert_eq!(guest_write(&mut page, line.as_bytes()), line.len());
            drain(&mut console, 3, &mut page, &mut sink);
        }
        assert_eq!(sink.lines.len(), 40, "start {start:#x}");
        assert_eq!(sink.lines[39], format!("guest: line 39 {}\n", "y".repeat(195)).into_bytes());
        assert_eq!(page.read_index(OUT_CONS_OFFSET), page.read_index(OUT_PROD_OFFSET));
        assert_eq!(
            page.read_index(OUT_CONS_OFFSET),
            start.wrapping_add(
                (0..40)
                    .map(|n: usize| format!("line {n} {}\n", "y".repeat(n * 5)).len() as u32)
                    .sum()
            )
        );
    }
}

#[test]
fn a_full_ring_is_read_whole() {
    let mut page = page_at(u32::MAX - 100);
    let mut console = console(OUT_SIZE);
    console.add_domain(1, "guest", &page).unwrap();
    let text = vec![b'z'; OUT_SIZE as usize];
    assert_eq!(guest_write(&mut page, &text), OUT_SIZE as usize);
    assert_eq!(guest_write(&mut page, b"more"), 0, "the guest sees a full ring");
    let batch = console.take(1, &page).unwrap().unwrap();
    assert_eq!(batch.lines.len(), OUT_SIZE as usize / 256 - 1);
    console.commit(1, &mut page).unwrap();
    assert_eq!(guest_write(&mut page, b"\n"), 1);
}

#[test]
fn a_producer_far_ahead_breaks_the_ring() {
    for ahead in [OUT_SIZE + 1, 0x8000_0000, u32::MAX] {
        let mut page = page_at(500);
        let mut console = console(64);
        console.add_domain(2, "bad", &page).unwrap();
        page.write_index(OUT_PROD_OFFSET, 500u32.wrapping_add(ahead));
        assert_eq!(
            console.take(2, &page),
            Err(TakeError::Ring(RingError::OutputOverrun {
                consumer: 500,
                producer: 500u32.wrapping_add(ahead)
            }))
        );
    }
    // Exactly a full ring is fine.
    let mut page = page_at(500);
    let mut console = console(64);
    console.add_domain(2, "ok", &page).unwrap();
    page.write_index(OUT_PROD_OFFSET, 500 + OUT_SIZE);
    assert!(console.take(2, &page).unwrap().is_some());
}

#[test]
fn a_producer_going_backwards_breaks_the_ring() {
    let mut page = page();
    let mut console = console(4);
    console.add_domain(2, "bad", &page).unwrap();
    guest_write(&mut page, b"0123456789");
    let batch = console.take(2, &page).unwrap().unwrap();
    assert!(batch.lines.is_empty());
    console.commit(2, &mut page).unwrap();
    // The service saw out_prod = 10 and consumed 4; the guest pulls out_prod back to 8.
    page.write_index(OUT_PROD_OFFSET, 8);
    assert_eq!(
        console.take(2, &page),
        Err(TakeError::Ring(RingError::OutputBackwards { seen: 10, producer: 8 }))
    );
    // Behind the consumer itself reads as far ahead.
    page.write_index(OUT_PROD_OFFSET, 3);
    assert!(matches!(
        console.take(2, &page),
        Err(TakeError::Ring(RingError::OutputOverrun { consumer: 4, producer: 3 }))
    ));
    // The guest scribbling out_cons changes nothing: the service keeps its own.
    page.write_index(OUT_PROD_OFFSET, 10);
    page.write_index(OUT_CONS_OFFSET, 9999);
    let batch = console.take(2, &page).unwrap().unwrap();
    console.commit(2, &mut page).unwrap();
    assert!(batch.lines.is_empty());
    assert_eq!(page.read_index(OUT_CONS_OFFSET), 8);
}

#[test]
fn a_flooding_guest_gets_its_budget_and_no_more() {
    let mut pages = [page(), page()];
    let mut console = console(100);
    console.add_domain(1, "flood", &pages[0]).unwrap();
    console.add_domain(2, "quiet", &pages[1]).unwrap();
    guest_write(&mut pages[0], &[b'f'; OUT_SIZE as usize]);
    guest_write(&mut pages[1], b"hello\n");
    let mut sink = Sink::default();
    // One round: each domain gets one take of at most the budget.
    for (index, id) in [(0, 1), (1, 2)] {
        let batch = console.take(id, &pages[index]).unwrap().unwrap();
        batch.lines.iter().for_each(|line| sink.write(line));
        console.commit(id, &mut pages[index]).unwrap();
    }
    assert_eq!(pages[0].read_index(OUT_CONS_OFFSET), 100);
    assert_eq!(sink.lines, vec![b"quiet: hello\n".to_vec()]);
    assert_eq!(console.config().round_budget, 100);
    assert_eq!(drain(&mut console, 1, &mut pages[0], &mut sink), 20, "2048 bytes in 100s");
}

#[test]
fn input_fills_only_the_free_space_and_wraps() {
    for start in [0u32, u32::MAX - 10] {
        let mut page = page_at(start);
        let mut console = console(64);
        console.add_domain(1, "guest", &page).unwrap();
        console.input(b"\x1d\x1d\x1d");
        let typed: Vec<u8> = (0..1500u32).map(|i| b'a' + (i % 26) as u8).collect();
        console.input(&typed);
        assert_eq!(console.queued_input(1), 1024, "the queue holds one ring's worth");
        assert_eq!(console.deliver(1, &mut page), Ok(1024));
        assert_eq!(console.deliver(1, &mut page), Ok(0), "the ring is full");
        console.input(&typed[1024..1100]);
        assert_eq!(console.deliver(1, &mut page), Ok(0));
        let read = guest_read(&mut page);
        assert_eq!(read, typed[..1024]);
        assert_eq!(console.deliver(1, &mut page), Ok(76));
        assert_eq!(guest_read(&mut page), typed[1024..1100]);
        assert_eq!(page.read_index(IN_PROD_OFFSET), start.wrapping_add(1100));
    }
}

#[test]
fn hostile_input_consumers_break_the_ring() {
    let mut page = page();
    let mut console = console(64);
    console.add_domain(1, "bad", &page).unwrap();
    console.input(b"\x1d\x1d\x1dabc");
    assert_eq!(console.deliver(1, &mut page), Ok(3));
    // in_cons past in_prod.
    page.write_index(IN_CONS_OFFSET, 4);
    assert_eq!(
        console.deliver(1, &mut page),
        Err(DeliverError::Ring(RingError::InputOverrun { producer: 3, consumer: 4 }))
    );
    // in_cons backwards after having consumed.
    page.write_index(IN_CONS_OFFSET, 3);
    assert_eq!(console.deliver(1, &mut page), Ok(0));
    page.write_index(IN_CONS_OFFSET, 1);
    assert_eq!(
        console.deliver(1, &mut page),
        Err(DeliverError::Ring(RingError::InputBackwards { seen: 3, consumer: 1 }))
    );
    // A broken domain is removed alone, its focus moving on.
    let mut other = common::page();
    console.add_domain(2, "good", &other).unwrap();
    assert_eq!(console.remove_domain(1), Ok(Some(b"[console] input to good\n".to_vec())));
    assert_eq!(console.input(b"x"), Vec::<Routed>::new());
    assert_eq!(console.deliver(2, &mut other), Ok(1));
}

#[test]
fn input_published_before_a_kill_is_not_placed_again() {
    let mut page = page();
    let mut console = console(64);
    console.add_domain(1, "guest", &page).unwrap();
    console.input(b"\x1d\x1d\x1dhello");
    let mut region = vec![0u8; xenolith_console_logic::region_size(console.config())];
    console.save(&mut region).unwrap();
    assert_eq!(console.deliver(1, &mut page), Ok(5));
    // Killed before saving: the restarted console still has "hello" queued.
    let mut restarted = Console::restore(*console.config(), &region).unwrap().unwrap();
    assert_eq!(restarted.queued_input(1), 5);
    assert_eq!(guest_read(&mut page), b"hello");
    assert_eq!(restarted.deliver(1, &mut page), Ok(5), "counted as already placed");
    assert_eq!(restarted.queued_input(1), 0);
    assert_eq!(guest_read(&mut page), b"");
    // A page in_prod more than a ring ahead cannot be an earlier incarnation's: it is the
    // guest's scribble, and the service's own index is written back over it.
    page.write_index(IN_PROD_OFFSET, 5 + IN_SIZE + 1);
    assert_eq!(restarted.deliver(1, &mut page), Ok(0));
    assert_eq!(page.read_index(IN_PROD_OFFSET), 5);
}
