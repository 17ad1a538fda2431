//! Focus requests: `xl console <domain>`, typed at the control domain's console, asks through
//! xenstore for the UART's input focus to move to that domain. The console domain is a
//! xenstore client for this, as Xen's xenconsoled is one (`tools/console/daemon/utils.c`
//! watches `@introduceDomain`; `io.c` each console's nodes).
//!
//! # The key
//! [`XENOLITH_CONSOLE_FOCUS_PATH`] (`/tool/xenolith/console/focus`) holds `<target>
//! <requester>`: two domain ids in decimal, one space between (see that constant's
//! documentation for its permissions). An empty value, or no key, is no request.
//!
//! # Consuming a request
//! As a Linux guest consumes `~/control/shutdown` (`docs/misc/xenstore-paths.pandoc`: "The
//! guest acknowledges a request by writing the empty string back"; `drivers/xen/manage.c`'s
//! `shutdown_handler` does it in a transaction): in one transaction the console domain reads
//! the key and writes it empty, and acts only on a request whose transaction committed. So a
//! request is acted on once, whatever restarts the console domain, the control domain or
//! xenstore go through: a committed request is gone from the key; one not committed is read
//! again by the next round; a transaction that lost a race (`EAGAIN`) starts again and reads
//! the newer request. A value that is not a request is cleared the same way and logged.
//!
//! # The sequence ([`FocusWatch`])
//! One request in flight at a time, never waited for: the binary sends what a step asks,
//! goes on serving the console, and feeds the reply in when it arrives (the store may be
//! away for as long as it likes meanwhile). `WATCH` first; each watch event starts a round
//! (`TRANSACTION_START`, `READ`, `WRITE ""`, `TRANSACTION_END`), or, if one is running,
//! another round after it. Any refusal ends the round (discarding its transaction); the next
//! event starts a new one.
//!
//! # Invariants
//! - At most one request is outstanding; a step returns a new one only in answer to the reply
//!   of the last (or to an event while idle).
//! - A [`FocusRequest`] is returned only after the transaction that emptied the key
//!   committed.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use xenolith_abi::xen::hypercall::DOMID_FIRST_RESERVED;
use xenolith_abi::xen::private::XENOLITH_CONSOLE_FOCUS_PATH;
use xenolith_abi::xen::xs_wire::msg;

use crate::DomId;

/// The token of the console domain's watch of [`XENOLITH_CONSOLE_FOCUS_PATH`].
pub const FOCUS_TOKEN: &str = "xenolith-console-focus";

/// Most bytes of a bad value a [`BadRequest`] keeps (for the log).
const SHOWN: usize = 40;

/// What the control domain asks: the focus to `target`, and back to `requester` on the switch
/// key ([`crate::Console::request_focus`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FocusRequest {
    /// The domain to give the input focus to.
    pub target: DomId,
    /// The control domain that asked.
    pub requester: DomId,
}

/// A value of the key that is not a request (its first bytes, for the log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadRequest(pub Vec<u8>);

impl fmt::Display for BadRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for &byte in &self.0 {
            write!(f, "{}", core::ascii::escape_default(byte))?;
        }
        f.write_str("\" is not `<target domid> <requester domid>`")
    }
}

/// A domain id as the key writes it: 1 to 5 decimal digits, below `DOMID_FIRST_RESERVED`
/// (`xen/include/public/xen.h`).
fn domid(word: &[u8]) -> Option<DomId> {
    if word.is_empty() || word.len() > 5 || !word.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = word.iter().fold(0u32, |value, &digit| value * 10 + u32::from(digit - b'0'));
    u16::try_from(value).ok().filter(|&id| id < DOMID_FIRST_RESERVED)
}

impl FocusRequest {
    /// Parses a value of the key: `None` for the empty value (no request).
    pub fn parse(value: &[u8]) -> Result<Option<Self>, BadRequest> {
        if value.is_empty() {
            return Ok(None);
        }
        let bad = || BadRequest(value.iter().copied().take(SHOWN).collect());
        let mut words = value.split(|&byte| byte == b' ');
        let (Some(target), Some(requester), None) = (words.next(), words.next(), words.next())
        else {
            return Err(bad());
        };
        match (domid(target), domid(requester)) {
            (Some(target), Some(requester)) => Ok(Some(Self { target, requester })),
            _ => Err(bad()),
        }
    }
}

/// One xenstore request for the binary to send: the message's type, transaction and payload
/// (as `xs_wire.h` encodes them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Send {
    /// `XS_*`.
    pub kind: u32,
    /// The transaction (0: none).
    pub tx_id: u32,
    /// The payload.
    pub payload: Vec<u8>,
}

/// Something for the log: why the watch or a round failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// The key held a value that is not a request; it was cleared.
    Garbage(BadRequest),
    /// The store refused the watch (the error it named): no request will be seen.
    WatchRefused(String),
    /// The store refused a step of a round (its request type, the error it named); the round
    /// ended, and a request in the key stays for the next one.
    Refused {
        /// The refused request's type (`XS_*`).
        kind: u32,
        /// The error's name (`EACCES`, ...).
        error: String,
    },
    /// A reply of type `got` to a request of type `sent`.
    Unexpected {
        /// The request's type.
        sent: u32,
        /// The reply's.
        got: u32,
    },
}

/// The name of a request type this module sends (`xs_wire.h`'s, without `XS_`).
fn kind_name(kind: u32) -> &'static str {
    match kind {
        msg::XS_WATCH => "WATCH",
        msg::XS_TRANSACTION_START => "TRANSACTION_START",
        msg::XS_READ => "READ",
        msg::XS_WRITE => "WRITE",
        msg::XS_TRANSACTION_END => "TRANSACTION_END",
        msg::XS_ERROR => "ERROR",
        msg::XS_WATCH_EVENT => "WATCH_EVENT",
        _ => "another type",
    }
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = XENOLITH_CONSOLE_FOCUS_PATH;
        match self {
            Self::Garbage(bad) => write!(f, "{path}: {bad}; cleared and ignored"),
            Self::WatchRefused(error) => {
                write!(
                    f,
                    "xenstore refused the watch of {path} ({error}): `xl console` is not served"
                )
            }
            Self::Refused { kind, error } => {
                write!(
                    f,
                    "{path}: xenstore refused {} ({error}); the key is left as it is",
                    kind_name(*kind)
                )
            }
            Self::Unexpected { sent, got } => write!(
                f,
                "{path}: xenstore answered {} ({got}) to {}",
                kind_name(*got),
                kind_name(*sent)
            ),
        }
    }
}

/// What a reply or an event leads to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// The next request to send.
    pub send: Option<Send>,
    /// A request consumed from the key: act on it.
    pub request: Option<FocusRequest>,
    /// Something to log.
    pub notice: Option<Notice>,
}

/// Where a [`FocusWatch`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// `WATCH` sent.
    Watching,
    /// Nothing outstanding.
    Idle,
    /// `TRANSACTION_START` sent.
    Starting,
    /// `READ` in the transaction sent.
    Reading(u32),
    /// `WRITE ""` in the transaction sent, after reading this request (`None`: a bad value).
    Clearing(u32, Option<FocusRequest>),
    /// `TRANSACTION_END` (commit) sent.
    Committing(Option<FocusRequest>),
    /// `TRANSACTION_END` (discard) sent.
    Discarding,
    /// The watch was refused: nothing more is sent.
    Stopped,
}

/// The console domain's side of focus requests, as a state machine over xenstore messages
/// (module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FocusWatch {
    state: State,
    /// An event came while a round ran: run another after it.
    again: bool,
}

fn path_payload() -> Vec<u8> {
    let mut payload = Vec::from(XENOLITH_CONSOLE_FOCUS_PATH.as_bytes());
    payload.push(0);
    payload
}

fn send(kind: u32, tx_id: u32, payload: Vec<u8>) -> Option<Send> {
    Some(Send { kind, tx_id, payload })
}

/// The error an `XS_ERROR` payload (`"EACCES\0"`) names.
fn error_name(payload: &[u8]) -> String {
    let name = payload.split(|&byte| byte == 0).next().unwrap_or_default();
    String::from_utf8_lossy(name).into_owned()
}

/// The transaction id of a `TRANSACTION_START` reply (`<id>|`).
fn transaction_id(payload: &[u8]) -> Option<u32> {
    let digits = payload.strip_suffix(&[0]).unwrap_or(payload);
    core::str::from_utf8(digits).ok()?.parse().ok().filter(|&id| id != 0)
}

impl FocusWatch {
    /// A watcher, and its first request: the `WATCH` of the key.
    pub fn start() -> (Self, Send) {
        let mut payload = path_payload();
        payload.extend_from_slice(FOCUS_TOKEN.as_bytes());
        payload.push(0);
        (
            Self { state: State::Watching, again: false },
            Send { kind: msg::XS_WATCH, tx_id: 0, payload },
        )
    }

    /// Whether the store acknowledged the watch (requests are seen from now on).
    pub fn is_watching(&self) -> bool {
        !matches!(self.state, State::Watching | State::Stopped)
    }

    /// Whether the store refused the watch (nothing more will be sent).
    pub fn is_stopped(&self) -> bool {
        self.state == State::Stopped
    }

    /// Whether a request is outstanding (its reply not yet fed to [`reply`](Self::reply)).
    pub fn is_waiting(&self) -> bool {
        !matches!(self.state, State::Idle | State::Stopped)
    }

    /// A watch event of [`FOCUS_TOKEN`]: the request that starts a round if none runs (else a
    /// round follows the running one).
    pub fn event(&mut self) -> Option<Send> {
        match self.state {
            State::Idle => self.begin(),
            State::Stopped => None,
            _ => {
                self.again = true;
                None
            }
        }
    }

    /// A round: a transaction first. It reads the newest value, so earlier events are served.
    fn begin(&mut self) -> Option<Send> {
        self.again = false;
        self.state = State::Starting;
        send(msg::XS_TRANSACTION_START, 0, alloc::vec![0])
    }

    /// The end of a round: the next one if an event came meanwhile.
    fn finish(&mut self) -> Option<Send> {
        if self.again {
            return self.begin();
        }
        self.state = State::Idle;
        None
    }

    /// Ends the round's transaction `tx` without committing it.
    fn discard(&mut self, tx: u32) -> Option<Send> {
        self.state = State::Discarding;
        send(msg::XS_TRANSACTION_END, tx, b"F\0".to_vec())
    }

    /// The reply to the request last sent: its type (`XS_ERROR` for a refusal) and payload.
    pub fn reply(&mut self, kind: u32, payload: &[u8]) -> Step {
        let mut step = Step::default();
        let error = (kind == msg::XS_ERROR).then(|| error_name(payload));
        let lost = error.as_deref() == Some("EAGAIN");
        let (sent, tx) = match self.state {
            State::Watching => (msg::XS_WATCH, None),
            State::Idle | State::Stopped => return step,
            State::Starting => (msg::XS_TRANSACTION_START, None),
            State::Reading(tx) => (msg::XS_READ, Some(tx)),
            State::Clearing(tx, _) => (msg::XS_WRITE, Some(tx)),
            State::Committing(_) => (msg::XS_TRANSACTION_END, None),
            State::Discarding => (msg::XS_TRANSACTION_END, None),
        };
        if let Some(error) = error {
            step.send = match self.state {
                State::Watching => {
                    self.state = State::Stopped;
                    step.notice = Some(Notice::WatchRefused(error));
                    None
                }
                // The transaction is over (lost a race, or the store restarted): read again.
                _ if lost && self.state != State::Discarding => self.begin(),
                // No request to read: no key yet (nobody asked since boot; xenstore answers
                // `EACCES` rather than `ENOENT` for a missing node whose nearest ancestor this
                // domain may not read, as Xen's `get_node` does), or the permission entry
                // naming this domain is void (this domain was restarted since the request;
                // the next one names it again). A request it may not read fires no event.
                State::Reading(tx) if error == "ENOENT" || error == "EACCES" => self.discard(tx),
                State::Discarding => self.finish(),
                _ => {
                    step.notice = Some(Notice::Refused { kind: sent, error });
                    match tx {
                        Some(tx) => self.discard(tx),
                        None => self.finish(),
                    }
                }
            };
            return step;
        }
        if kind != sent {
            step.notice = Some(Notice::Unexpected { sent, got: kind });
            step.send = match tx {
                Some(tx) => self.discard(tx),
                None if self.state == State::Watching => {
                    self.state = State::Stopped;
                    None
                }
                None => self.finish(),
            };
            return step;
        }
        step.send = match self.state {
            // Whatever the key holds now is read by a first round.
            State::Watching => self.begin(),
            State::Starting => match transaction_id(payload) {
                Some(tx) => {
                    self.state = State::Reading(tx);
                    send(msg::XS_READ, tx, path_payload())
                }
                None => {
                    step.notice = Some(Notice::Unexpected { sent, got: kind });
                    self.finish()
                }
            },
            State::Reading(tx) => match FocusRequest::parse(payload) {
                Ok(None) => self.discard(tx),
                parsed => {
                    let request = parsed.unwrap_or_else(|bad| {
                        step.notice = Some(Notice::Garbage(bad));
                        None
                    });
                    self.state = State::Clearing(tx, request);
                    send(msg::XS_WRITE, tx, path_payload())
                }
            },
            State::Clearing(tx, request) => {
                self.state = State::Committing(request);
                send(msg::XS_TRANSACTION_END, tx, b"T\0".to_vec())
            }
            State::Committing(request) => {
                step.request = request;
                self.finish()
            }
            State::Discarding => self.finish(),
            State::Idle | State::Stopped => None,
        };
        step
    }
}
