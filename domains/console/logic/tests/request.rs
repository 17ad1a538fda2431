//! Focus requests (`xl console`): the key's value, the xenstore rounds that consume a request
//! exactly once (against a small store that can lose races, refuse and answer nonsense), and
//! what the console does with a request: the focus moves, one switch key gives it back.

mod common;

use common::page;
use xenolith_abi::xen::private::XENOLITH_CONSOLE_FOCUS_PATH as PATH;
use xenolith_abi::xen::xs_wire::msg;
use xenolith_console_logic::request::{BadRequest, Send, FOCUS_TOKEN};
use xenolith_console_logic::{
    region_size, Config, Console, Focus, FocusRequest, FocusWatch, Notice, RestoreError, Routed,
    UnknownDomain,
};

const SWITCH: &[u8] = b"\x1d\x1d\x1d";

fn announce(name: &str) -> Routed {
    Routed::Announce(format!("[console] input to {name}\n").into_bytes())
}

fn request(target: u16, requester: u16) -> FocusRequest {
    FocusRequest { target, requester }
}

#[test]
fn the_value_is_two_domain_ids() {
    assert_eq!(FocusRequest::parse(b"5 2"), Ok(Some(request(5, 2))));
    assert_eq!(FocusRequest::parse(b"0 0"), Ok(Some(request(0, 0))));
    assert_eq!(FocusRequest::parse(b"32751 7"), Ok(Some(request(32751, 7))));
    assert_eq!(FocusRequest::parse(b""), Ok(None), "empty: no request");
    for bad in [
        &b"5"[..],
        b"5 2 1",
        b"5  2",
        b" 5 2",
        b"5 2 ",
        b"5 2\n",
        b"5 2\0",
        b"+5 2",
        b"-1 2",
        b"0x5 2",
        b"five two",
        b"32752 2", // DOMID_FIRST_RESERVED
        b"65535 2", // DOMID_INVALID
        b"70000 2",
        b"000005 2",
        b"\xff\xfe",
    ] {
        let refused = FocusRequest::parse(bad);
        assert!(refused.is_err(), "{bad:?} parsed as {refused:?}");
    }
    // The log shows the value escaped and cut.
    let long = [b'x'; 100];
    let Err(bad) = FocusRequest::parse(&long) else { panic!("accepted") };
    assert_eq!(bad.0.len(), 40);
    let Err(bad) = FocusRequest::parse(b"a\x01\"") else { panic!("accepted") };
    assert_eq!(bad.to_string(), "\"a\\x01\\\"\" is not `<target domid> <requester domid>`");
}

/// A store with the one key, transactions that copy it, and failures on demand.
#[derive(Default)]
struct Store {
    value: Option<Vec<u8>>,
    /// The open transaction: its id and its view of the key.
    tx: Option<(u32, Option<Vec<u8>>)>,
    next_tx: u32,
    /// The key was written since the transaction started (its commit fails with EAGAIN).
    conflict: bool,
    /// Refuse the next request of this type with this error.
    refuse: Option<(u32, &'static str)>,
    /// Answer the next request with this type instead.
    lie: Option<u32>,
    /// Watch events the store fired and the client has not taken yet.
    events: usize,
    watching: bool,
    sent: Vec<u32>,
}

impl Store {
    fn with(value: &[u8]) -> Self {
        Self { value: Some(value.to_vec()), next_tx: 1, ..Self::default() }
    }

    /// A write of the key by someone else (the control domain).
    fn write(&mut self, value: &[u8]) {
        self.value = Some(value.to_vec());
        self.conflict = true;
        self.events += usize::from(self.watching);
    }

    /// Answers `send`: the reply's type and payload.
    fn answer(&mut self, send: &Send) -> (u32, Vec<u8>) {
        self.sent.push(send.kind);
        if let Some((_, error)) = self.refuse.filter(|(kind, _)| *kind == send.kind) {
            self.refuse = None;
            if send.kind == msg::XS_TRANSACTION_END || error == "EAGAIN" {
                self.tx = None;
            }
            return (msg::XS_ERROR, format!("{error}\0").into_bytes());
        }
        if let Some(kind) = self.lie.take() {
            return (kind, b"OK\0".to_vec());
        }
        let path = format!("{PATH}\0");
        match send.kind {
            msg::XS_WATCH => {
                assert_eq!(send.payload, format!("{PATH}\0{FOCUS_TOKEN}\0").as_bytes());
                self.watching = true;
                // Xen fires a new watch once, at once.
                self.events += 1;
                (msg::XS_WATCH, b"OK\0".to_vec())
            }
            msg::XS_TRANSACTION_START => {
                assert!(self.tx.is_none(), "a second transaction opened");
                let id = self.next_tx;
                self.next_tx += 1;
                self.tx = Some((id, self.value.clone()));
                self.conflict = false;
                (msg::XS_TRANSACTION_START, format!("{id}\0").into_bytes())
            }
            msg::XS_READ => {
                assert_eq!(send.payload, path.as_bytes());
                let (id, view) = self.tx.clone().expect("a read outside the transaction");
                assert_eq!(send.tx_id, id);
                match view {
                    Some(value) => (msg::XS_READ, value),
                    None => (msg::XS_ERROR, b"ENOENT\0".to_vec()),
                }
            }
            msg::XS_WRITE => {
                // Only ever an empty value, in the transaction.
                assert_eq!(send.payload, path.as_bytes());
                let (id, _) = self.tx.clone().expect("a write outside the transaction");
                assert_eq!(send.tx_id, id);
                self.tx = Some((id, Some(Vec::new())));
                (msg::XS_WRITE, b"OK\0".to_vec())
            }
            msg::XS_TRANSACTION_END => {
                let (id, view) = self.tx.take().expect("no transaction to end");
                assert_eq!(send.tx_id, id);
                if send.payload == b"T\0" {
                    if self.conflict {
                        return (msg::XS_ERROR, b"EAGAIN\0".to_vec());
                    }
                    if view != self.value {
                        self.value = view;
                        self.events += usize::from(self.watching);
                    }
                } else {
                    assert_eq!(send.payload, b"F\0");
                }
                (msg::XS_TRANSACTION_END, b"OK\0".to_vec())
            }
            other => panic!("unexpected request type {other}"),
        }
    }
}

/// Runs `watch` against `store` until nothing is outstanding and no event is left, starting
/// with `first` (if any): the requests acted on and the notices, in order.
fn run(
    watch: &mut FocusWatch,
    store: &mut Store,
    first: Option<Send>,
) -> (Vec<FocusRequest>, Vec<Notice>) {
    let (mut requests, mut notices) = (Vec::new(), Vec::new());
    let mut next = first;
    for _ in 0..1000 {
        if let Some(send) = next.take() {
            let (kind, payload) = store.answer(&send);
            let step = watch.reply(kind, &payload);
            requests.extend(step.request);
            notices.extend(step.notice);
            next = step.send;
            continue;
        }
        assert!(!watch.is_waiting() || watch.is_stopped(), "waiting with nothing sent");
        if store.events == 0 {
            return (requests, notices);
        }
        store.events -= 1;
        next = watch.event();
    }
    panic!("the watch never settles");
}

fn started(store: &mut Store) -> (FocusWatch, Vec<FocusRequest>, Vec<Notice>) {
    let (mut watch, first) = FocusWatch::start();
    let (requests, notices) = run(&mut watch, store, Some(first));
    (watch, requests, notices)
}

#[test]
fn a_request_is_consumed_once() {
    // No key yet (a first boot): nothing happens, nothing is logged.
    let mut store = Store { next_tx: 1, ..Store::default() };
    let (mut watch, requests, notices) = started(&mut store);
    assert!(requests.is_empty() && notices.is_empty(), "{requests:?} {notices:?}");
    assert_eq!(store.value, None, "nothing written where nobody asked");
    // A request: acted on once, and the key is empty afterwards.
    store.write(b"5 2");
    let (requests, notices) = run(&mut watch, &mut store, None);
    assert_eq!(requests, [request(5, 2)]);
    assert!(notices.is_empty(), "{notices:?}");
    assert_eq!(store.value.as_deref(), Some(&b""[..]));
    // The same request again is a new request.
    store.write(b"5 2");
    assert_eq!(run(&mut watch, &mut store, None).0, [request(5, 2)]);
    // A consumed request is not acted on again by a new watcher (a restarted console domain).
    let (_, requests, _) = started(&mut store);
    assert!(requests.is_empty(), "{requests:?}");
    // One left by a console domain killed before it consumed it is.
    store.value = Some(b"7 2".to_vec());
    let (_, requests, _) = started(&mut store);
    assert_eq!(requests, [request(7, 2)]);
}

#[test]
fn a_request_written_during_a_round_is_the_one_acted_on() {
    let mut store = Store::with(b"");
    let (mut watch, _, _) = started(&mut store);
    // A request arrives; the round reads it; before the commit a newer one is written.
    store.write(b"5 2");
    store.events -= 1;
    let mut next = watch.event();
    let mut requests = Vec::new();
    while let Some(send) = next.take() {
        let committing = send.kind == msg::XS_TRANSACTION_END && send.payload == b"T\0";
        if committing && store.value.as_deref() == Some(b"5 2") {
            // The control domain writes between the round's read and its commit.
            store.write(b"6 2");
            assert!(watch.event().is_none(), "a second round while one runs");
            store.events -= 1;
        }
        let (kind, payload) = store.answer(&send);
        let step = watch.reply(kind, &payload);
        requests.extend(step.request);
        next = step.send;
    }
    // The commit lost (EAGAIN), the round started again and read the newer request; the older
    // one is never acted on.
    assert_eq!(requests, [request(6, 2)]);
    assert_eq!(store.value.as_deref(), Some(&b""[..]));
    assert_eq!(run(&mut watch, &mut store, None).0, []);
}

#[test]
fn events_during_a_round_bring_one_more_round() {
    let mut store = Store::with(b"");
    let (mut watch, _, _) = started(&mut store);
    store.write(b"4 2");
    store.events -= 1;
    let first = watch.event().expect("a round starts");
    assert_eq!(first.kind, msg::XS_TRANSACTION_START);
    // Three more events before the first reply: one more round, not three.
    assert_eq!((watch.event(), watch.event(), watch.event()), (None, None, None));
    let (requests, _) = run(&mut watch, &mut store, Some(first));
    assert_eq!(requests, [request(4, 2)]);
    let starts = store.sent.iter().filter(|&&kind| kind == msg::XS_TRANSACTION_START).count();
    // The round after WATCH, the first firing's, this request's, the one more for the three
    // events, and the one for the firing of its own commit.
    assert_eq!(starts, 5, "{:?}", store.sent);
}

#[test]
fn garbage_is_cleared_logged_and_ignored() {
    let mut store = Store::with(b"rm -rf /");
    let (mut watch, requests, notices) = started(&mut store);
    assert!(requests.is_empty());
    assert_eq!(notices, [Notice::Garbage(BadRequest(b"rm -rf /".to_vec()))]);
    assert_eq!(store.value.as_deref(), Some(&b""[..]));
    assert!(notices[0].to_string().contains("cleared and ignored"), "{}", notices[0]);
    // Requests after it are served.
    store.write(b"3 2");
    assert_eq!(run(&mut watch, &mut store, None).0, [request(3, 2)]);
}

#[test]
fn refusals_end_the_round_and_the_next_event_tries_again() {
    let mut store = Store::with(b"");
    let (mut watch, _, _) = started(&mut store);
    // The console domain may not read the key (no key yet and an ancestor it may not read,
    // or its permissions were set for an earlier incarnation of it): no request, nothing
    // logged, the transaction discarded, the value left.
    store.refuse = Some((msg::XS_READ, "EACCES"));
    store.write(b"3 2");
    assert_eq!(run(&mut watch, &mut store, None), (vec![], vec![]));
    assert_eq!(store.value.as_deref(), Some(&b"3 2"[..]));
    assert!(store.tx.is_none(), "the transaction was left open");
    // Another refusal of the read is logged.
    store.refuse = Some((msg::XS_READ, "EIO"));
    store.write(b"3 2");
    let (requests, notices) = run(&mut watch, &mut store, None);
    assert!(requests.is_empty());
    assert_eq!(notices, [Notice::Refused { kind: msg::XS_READ, error: "EIO".into() }]);
    assert!(notices[0].to_string().contains("refused READ (EIO)"), "{}", notices[0]);
    assert_eq!(store.value.as_deref(), Some(&b"3 2"[..]));
    assert!(store.tx.is_none(), "the transaction was left open");
    // Refused writes and commits alike.
    for kind in [msg::XS_WRITE, msg::XS_TRANSACTION_END, msg::XS_TRANSACTION_START] {
        store.refuse = Some((kind, "ENOSPC"));
        store.write(b"3 2");
        let (requests, notices) = run(&mut watch, &mut store, None);
        assert!(requests.is_empty(), "{kind}: {requests:?}");
        assert_eq!(notices, [Notice::Refused { kind, error: "ENOSPC".into() }]);
        assert!(store.tx.is_none(), "{kind}: the transaction was left open");
    }
    // The store restarted under the round (its transactions end with EAGAIN): read again.
    store.refuse = Some((msg::XS_READ, "EAGAIN"));
    store.write(b"3 2");
    let (requests, notices) = run(&mut watch, &mut store, None);
    assert_eq!((requests, notices), (vec![request(3, 2)], vec![]));
    // Nonsense answers end the round too.
    store.lie = Some(msg::XS_DIRECTORY);
    store.write(b"8 2");
    let (requests, notices) = run(&mut watch, &mut store, None);
    assert!(requests.is_empty());
    assert_eq!(
        notices,
        [Notice::Unexpected { sent: msg::XS_TRANSACTION_START, got: msg::XS_DIRECTORY }]
    );
    store.write(b"8 2");
    assert_eq!(run(&mut watch, &mut store, None).0, [request(8, 2)]);
}

#[test]
fn a_refused_watch_stops_everything() {
    let mut store = Store::with(b"5 2");
    store.refuse = Some((msg::XS_WATCH, "ENOSPC"));
    let (mut watch, requests, notices) = started(&mut store);
    assert!(requests.is_empty());
    assert_eq!(notices, [Notice::WatchRefused("ENOSPC".into())]);
    assert!(watch.is_stopped() && !watch.is_waiting());
    assert_eq!(watch.event(), None);
    assert_eq!(watch.reply(msg::XS_READ, b"5 2").send, None);
    assert_eq!(store.sent, [msg::XS_WATCH]);
}

/// Control (2) asks for five (5); three (3) and nine (9) are there too.
fn console() -> Console {
    let mut console = Console::new(Config::default()).unwrap();
    for (id, name) in [(2, "control"), (3, "three"), (5, "five"), (9, "nine")] {
        console.add_domain(id, name, &page()).unwrap();
    }
    console.set_focus(Focus::Domain(2)).unwrap();
    console
}

#[test]
fn one_switch_key_gives_the_focus_back_to_the_requester() {
    let mut console = console();
    assert_eq!(console.request_focus(request(5, 2)), Ok(b"[console] input to five\n".to_vec()));
    assert_eq!((console.focus(), console.return_to()), (Focus::Domain(5), Some(2)));
    // Typing reaches five; one Ctrl-] leaves, and what follows goes to control.
    assert!(console.input(b"ping 1\n").is_empty());
    assert_eq!(console.queued_input(5), 7);
    assert_eq!(console.input(b"\x1dxl list\r"), vec![announce("control")]);
    assert_eq!((console.focus(), console.return_to()), (Focus::Domain(2), None));
    assert_eq!(console.queued_input(5), 7, "the switch key never reaches the domain");
    assert_eq!(console.queued_input(2), 8);
    // Back to three presses: one and two are held and pass through, three cycle.
    assert!(console.input(b"\x1d").is_empty());
    assert!(console.input(b"a").is_empty());
    assert_eq!(console.queued_input(2), 10);
    assert_eq!(console.input(SWITCH), vec![announce("three")]);
    // Three presses while `xl console` holds the focus: the first leaves, the other two are
    // an incomplete sequence at control's.
    console.request_focus(request(9, 2)).unwrap();
    assert_eq!(console.input(SWITCH), vec![announce("control")]);
    assert_eq!(console.input(b"\x1d"), vec![announce("three")]);
}

#[test]
fn requests_move_the_focus_wherever_it_is() {
    let mut console = console();
    console.input(SWITCH);
    assert_eq!(console.focus(), Focus::Domain(3));
    // A held half sequence is void: the request starts afresh.
    assert!(console.input(b"\x1d\x1d").is_empty());
    console.request_focus(request(9, 2)).unwrap();
    assert_eq!(console.input(b"x"), vec![]);
    assert_eq!(console.queued_input(9), 1, "the held keys were dropped");
    // A second request replaces the first; its requester gets the focus back.
    console.request_focus(request(5, 3)).unwrap();
    assert_eq!(console.input(b"\x1d"), vec![announce("three")]);
    // The requester itself: the focus moves there, the switch key works as usual.
    console.request_focus(request(2, 2)).unwrap();
    assert_eq!((console.focus(), console.return_to()), (Focus::Domain(2), None));
    assert!(console.input(b"\x1d").is_empty());
    // A domain with no console here (unknown, or the console domain itself) changes nothing.
    assert_eq!(console.request_focus(request(4, 2)), Err(UnknownDomain(4)));
    assert_eq!(console.request_focus(request(5, 4)), Err(UnknownDomain(4)));
    assert_eq!((console.focus(), console.return_to()), (Focus::Domain(2), None));
    // The core's focus (set directly) clears a return.
    console.request_focus(request(5, 2)).unwrap();
    console.set_focus(Focus::Core).unwrap();
    assert_eq!(console.return_to(), None);
}

#[test]
fn the_target_going_away_gives_the_focus_back() {
    let mut console = console();
    console.request_focus(request(5, 2)).unwrap();
    assert_eq!(console.remove_domain(3), Ok(None));
    assert_eq!(console.remove_domain(5), Ok(Some(b"[console] input to control\n".to_vec())));
    assert_eq!((console.focus(), console.return_to()), (Focus::Domain(2), None));
    // The requester going away (a restarted control domain is removed and added again) ends
    // the return: the switch key is three presses again.
    console.add_domain(5, "five", &page()).unwrap();
    console.request_focus(request(5, 2)).unwrap();
    assert_eq!(console.remove_domain(2), Ok(None));
    assert_eq!((console.focus(), console.return_to()), (Focus::Domain(5), None));
    assert!(console.input(b"\x1d").is_empty());
}

#[test]
fn the_return_survives_a_restart() {
    let mut console = console();
    console.request_focus(request(5, 2)).unwrap();
    let mut region = vec![0u8; region_size(console.config())];
    console.save(&mut region).unwrap();
    let mut restored = Console::restore(*console.config(), &region).unwrap().unwrap();
    assert_eq!(restored, console);
    assert_eq!(restored.input(b"\x1d"), vec![announce("control")]);
    // Impossible returns are refused: offset 12 (after sequence, focus, focus id, held).
    let mut payload = Vec::new();
    console.encode(&mut payload);
    assert_eq!(&payload[12..15], &[1, 2, 0]);
    let decode = |bytes: &[u8]| Console::decode(*console.config(), bytes);
    let bad = RestoreError::Invalid("the focus to return to an impossible domain");
    for (what, bytes) in [("absent", [1, 4, 0]), ("the focused one", [1, 5, 0])] {
        let mut edited = payload.clone();
        edited[12..15].copy_from_slice(&bytes);
        assert_eq!(decode(&edited), Err(bad), "{what}");
    }
    let mut edited = payload.clone();
    edited[12] = 2;
    assert_eq!(decode(&edited), Err(RestoreError::Invalid("an unknown return of the focus")));
    let mut edited = payload.clone();
    edited[12] = 0;
    assert!(decode(&edited).is_err(), "no return with an id");
    edited[13] = 0;
    assert_eq!(decode(&edited).map(|c| c.return_to()), Ok(None));
    // Focus on the core with a return.
    let mut core = console.clone();
    core.set_focus(Focus::Core).unwrap();
    let mut payload = Vec::new();
    core.encode(&mut payload);
    payload[12..15].copy_from_slice(&[1, 2, 0]);
    assert_eq!(decode(&payload), Err(bad));
}
