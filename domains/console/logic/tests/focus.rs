//! The focus key sequence: full sequences cycle core -> domains in id order -> core, partial
//! sequences pass through, domains leaving while focused hand focus on.

mod common;

use common::{guest_read, guest_write, page};
use xenolith_console_logic::{Config, Console, Focus, Routed};

const SWITCH: &[u8] = b"\x1d\x1d\x1d";

fn announce(name: &str) -> Routed {
    Routed::Announce(format!("[console] input to {name}\n").into_bytes())
}

fn three_domains() -> (Console, Vec<common::Page>) {
    let mut console = Console::new(Config::default()).unwrap();
    let pages = vec![page(), page(), page()];
    // Added out of order: focus follows ids, not arrival.
    console.add_domain(9, "nine", &pages[2]).unwrap();
    console.add_domain(1, "one", &pages[0]).unwrap();
    console.add_domain(4, "four", &pages[1]).unwrap();
    (console, pages)
}

#[test]
fn full_sequences_cycle_in_id_order() {
    let (mut console, _) = three_domains();
    assert_eq!(console.focus(), Focus::Core);
    assert_eq!(console.input(SWITCH), vec![announce("one")]);
    assert_eq!(console.input(SWITCH), vec![announce("four")]);
    assert_eq!(console.input(SWITCH), vec![announce("nine")]);
    assert_eq!(console.input(SWITCH), vec![announce("xenolith")]);
    assert_eq!(console.focus(), Focus::Core);
    // Byte by byte, and two switches in one write.
    assert!(console.input(b"\x1d").is_empty());
    assert!(console.input(b"\x1d").is_empty());
    assert_eq!(console.input(b"\x1d"), vec![announce("one")]);
    assert_eq!(console.input(&[SWITCH, SWITCH].concat()), vec![announce("four"), announce("nine")]);
    // No domains: the sequence stays on the core.
    let mut empty = Console::new(Config::default()).unwrap();
    assert_eq!(empty.input(SWITCH), vec![announce("xenolith")]);
}

#[test]
fn input_goes_to_the_focused_domain_only() {
    let (mut console, mut pages) = three_domains();
    assert_eq!(console.input(b"ls\n"), vec![Routed::Core(b"ls\n".to_vec())]);
    let routed = console.input(&[SWITCH, b"hi\r", SWITCH, b"x"].concat());
    assert_eq!(routed, vec![announce("one"), announce("four")]);
    assert_eq!(console.deliver(1, &mut pages[0]), Ok(3));
    assert_eq!(console.deliver(4, &mut pages[1]), Ok(1));
    assert_eq!(console.deliver(9, &mut pages[2]), Ok(0));
    assert_eq!(guest_read(&mut pages[0]), b"hi\r");
    assert_eq!(guest_read(&mut pages[1]), b"x");
    // Core bytes and announcements keep their order.
    let routed = console.input(&[SWITCH, SWITCH, b"q", SWITCH, b"w"].concat());
    assert_eq!(
        routed,
        vec![announce("nine"), announce("xenolith"), Routed::Core(b"q".to_vec()), announce("one")]
    );
}

#[test]
fn partial_sequences_pass_through_unchanged() {
    let (mut console, _) = three_domains();
    assert_eq!(console.input(b"\x1da"), vec![Routed::Core(b"\x1da".to_vec())]);
    assert_eq!(console.input(b"\x1d\x1db"), vec![Routed::Core(b"\x1d\x1db".to_vec())]);
    // Held across calls, released by the next other byte.
    assert!(console.input(b"\x1d\x1d").is_empty());
    assert_eq!(console.input(b"\n"), vec![Routed::Core(b"\x1d\x1d\n".to_vec())]);
    // Four in a row: three switch, the fourth starts a new sequence.
    assert_eq!(console.input(b"\x1d\x1d\x1d\x1d"), vec![announce("one")]);
    assert_eq!(console.queued_input(1), 0);
    console.input(b"z");
    assert_eq!(console.queued_input(1), 2, "the held fourth key and z reach the guest");
    // The switch key is configurable.
    let mut other = Console::new(Config { switch_key: 0x1e, ..Config::default() }).unwrap();
    assert_eq!(other.input(SWITCH), vec![Routed::Core(SWITCH.to_vec())]);
    assert_eq!(other.input(b"\x1e\x1e\x1e"), vec![announce("xenolith")]);
}

#[test]
fn a_domain_leaving_while_focused_hands_focus_on() {
    let (mut console, pages) = three_domains();
    console.input(SWITCH);
    console.input(SWITCH);
    assert_eq!(console.focus(), Focus::Domain(4));
    assert_eq!(console.remove_domain(4), Ok(Some(b"[console] input to nine\n".to_vec())));
    assert_eq!(console.focus(), Focus::Domain(9));
    assert_eq!(console.remove_domain(1), Ok(None), "not focused: no announcement");
    assert_eq!(console.remove_domain(9), Ok(Some(b"[console] input to xenolith\n".to_vec())));
    assert_eq!(console.focus(), Focus::Core);
    assert!(console.remove_domain(9).is_err());
    // A domain that comes back joins the cycle.
    console.add_domain(4, "four", &pages[1]).unwrap();
    assert_eq!(console.input(SWITCH), vec![announce("four")]);
}

/// The focused domain's unfinished line is shown once its ring is drained (a prompt), but not
/// where the round budget cuts a batch: the rest of the line is in the ring already, and a line
/// shown in pieces lets other console output land inside it.
#[test]
fn only_a_drained_ring_shows_the_focused_unfinished_line() {
    let mut console = Console::new(Config { round_budget: 8, ..Config::default() }).unwrap();
    let mut page = page();
    console.add_domain(1, "one", &page).unwrap();
    assert_eq!(console.input(SWITCH), vec![announce("one")]);
    guest_write(&mut page, b"hello world\n$ ");
    let cut = console.take(1, &page).unwrap().unwrap();
    assert!(cut.lines.is_empty(), "a piece of a line shown: {:?}", cut.lines);
    console.commit(1, &mut page).unwrap();
    let drained = console.take(1, &page).unwrap().unwrap();
    let texts: Vec<&[u8]> = drained.lines.iter().map(|line| line.text.as_slice()).collect();
    assert_eq!(texts, [b"one: hello world\n".as_slice(), b"one: $ "]);
}
