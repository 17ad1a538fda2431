//! The console service's state: the connected domains, their unfinished lines and queued input,
//! the input focus, and the output batch in flight.
//!
//! # The exactly-once protocol (output)
//! A service round for domain `d` is, in this order:
//! 1. [`Console::take`]: reads up to [`Config::round_budget`] bytes of `d`'s `out` ring, copies
//!    them into the state as the *pending batch* (with the `out_cons` they end at and the
//!    sequence number of its first line), and returns the lines they complete, each numbered.
//!    The page is not written.
//! 2. [`Console::save`] (phase one): the batch, its raw bytes and its sequence numbers are now
//!    durable.
//! 3. The caller writes each [`Line`] to the sink with its sequence number.
//! 4. [`Console::commit`]: publishes the new `out_cons` in the page, moves the unfinished line
//!    on, drops the pending batch.
//! 5. [`Console::save`] (phase two).
//!
//! Exactly once needs one property of the sink: **it drops a line whose sequence number is not
//! above the last one it accepted**, and that number survives this domain's restart (it lives
//! with the sink, e.g. in the core next to the hypervisor console). Without it, no protocol can
//! tell "killed just before the write" from "killed just after" (the write and the record of it
//! cannot be one atomic step), so a bare sink gets at most one batch repeated per kill; with it:
//! - killed before phase one completes: the region holds the state before the take; nothing
//!   was written (writes start after phase one), `out_cons` did not move; the restarted
//!   domain takes the same bytes again (and any newer ones) under the same sequence numbers;
//! - killed after phase one, anywhere in the writes, in commit, or before phase two: the region
//!   holds the pending batch; [`Console::pending`] re-derives its lines from the saved bytes
//!   (a pure function, never from the ring, which the guest may have rewritten), the caller
//!   writes them all again and the sink drops those it already has; commit publishes the same
//!   `out_cons` again (idempotent);
//! - killed after phase two: nothing is pending; the next take starts at the committed index.
//!
//! A kill therefore never loses a byte (`out_cons` only moves after the lines are written) and
//! never repeats a line (same numbers, dropped by the sink). [`Console::take`] refuses while a
//! batch is pending, so the restarted loop must finish it first ([`Console::pending`]).
//!
//! Input is exactly-once on the ring side through the page itself: see
//! [`ring::place_input`]. Typed bytes accepted after the last save and not yet placed are lost
//! with a kill (a UART cannot replay them); none is ever placed twice.
//!
//! # Invariants
//! - Only [`Console::commit`] writes `out_cons`, and only to the end of the pending batch, whose
//!   lines the caller has written.
//! - The pending batch's bytes are exactly the ring bytes between the domain's committed
//!   `out_cons` and the batch's end (at most [`Config::round_budget`] of them).
//! - `next_sequence` is above every sequence number ever handed out.
//! - A domain's input queue holds at most [`INPUT_QUEUE`] bytes; `focus` names a present domain
//!   or the core.
//! - `return_to`, when set, names a present domain, and the focus is on another domain (the
//!   one a [`FocusRequest`] gave it to).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Bound;

use xenolith_abi::xen::hypercall::DOMID_FIRST_RESERVED;

use crate::focus::{self, Key, DEFAULT_SWITCH_KEY};
use crate::line::{self, LineState};
use crate::request::FocusRequest;
use crate::ring::{self, InCursor, OutCursor, RingError, RingPage, IN_CONS_OFFSET};
use crate::ring::{IN_PROD_OFFSET, IN_SIZE, OUT_CONS_OFFSET, OUT_SIZE};
use crate::DomId;

/// The longest domain name, in bytes.
pub const MAX_NAME: usize = 32;
/// Typed bytes queued per domain before its ring takes them (one `in` ring's worth); further
/// input for a domain whose queue is full is dropped, as Xen drops serial input when its
/// buffer is full.
pub const INPUT_QUEUE: usize = IN_SIZE as usize;
/// The name announced when input goes to the hypervisor itself.
pub const CORE_NAME: &str = "xenolith";

/// The service's fixed parameters: constants of the binary, not part of the snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Most domains served at once (sizes the preserved region, see [`crate::region_size`]).
    pub max_domains: usize,
    /// Output bytes taken from one domain per [`Console::take`] (1..=2048): the flood cap that
    /// keeps one guest from starving the others.
    pub round_budget: u32,
    /// The focus switch key (pressed [`focus::SWITCH_COUNT`] times in a row).
    pub switch_key: u8,
}

impl Default for Config {
    fn default() -> Self {
        Self { max_domains: 16, round_budget: 512, switch_key: DEFAULT_SWITCH_KEY }
    }
}

/// Largest [`Config::max_domains`]: every domain id below `DOMID_FIRST_RESERVED`.
const MAX_DOMAINS: usize = DOMID_FIRST_RESERVED as usize;

/// A configuration [`Console::new`] refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// `round_budget` is 0 or more than the `out` ring holds.
    RoundBudget(u32),
    /// `max_domains` is 0 or more than there are domain ids.
    MaxDomains(usize),
    /// The switch key is a line end or the NUL byte.
    SwitchKey(u8),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::RoundBudget(value) => {
                write!(f, "round budget {value} is outside 1..={OUT_SIZE}")
            }
            Self::MaxDomains(value) => {
                write!(f, "max domains {value} is outside 1..={MAX_DOMAINS}")
            }
            Self::SwitchKey(value) => write!(f, "switch key {value:#04x} cannot be a switch key"),
        }
    }
}

impl Config {
    fn check(&self) -> Result<(), ConfigError> {
        if self.round_budget == 0 || self.round_budget > OUT_SIZE {
            return Err(ConfigError::RoundBudget(self.round_budget));
        }
        if self.max_domains == 0 || self.max_domains > MAX_DOMAINS {
            return Err(ConfigError::MaxDomains(self.max_domains));
        }
        if matches!(self.switch_key, 0 | b'\n' | b'\r') {
            return Err(ConfigError::SwitchKey(self.switch_key));
        }
        Ok(())
    }
}

/// Where typed input goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    /// The hypervisor (its key handlers).
    Core,
    /// A domain's `in` ring.
    Domain(DomId),
}

/// One line of a domain's output, ready for the sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// The line's number: strictly increasing over all lines ever written.
    pub sequence: u64,
    /// `<name>: <text>\n` (see [`line`](mod@crate::line)).
    pub text: Vec<u8>,
}

/// The lines of one taken batch of output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Whose output.
    pub domain: DomId,
    /// The complete lines, in order (possibly none: the bytes only extended the unfinished
    /// line; the batch must still be committed).
    pub lines: Vec<Line>,
}

/// What typed input produced, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Routed {
    /// Bytes for the hypervisor's own input (focus on the core).
    Core(Vec<u8>),
    /// A focus change: print this line (`[console] input to <name>\n`) on the console.
    Announce(Vec<u8>),
}

/// The domain is not connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownDomain(pub DomId);

impl fmt::Display for UnknownDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "domain {} has no console here", self.0)
    }
}

/// Why [`Console::add_domain`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddError {
    /// [`Config::max_domains`] domains are already served.
    Full,
    /// The domain is already connected.
    Duplicate(DomId),
    /// A reserved id (`DOMID_FIRST_RESERVED` and above, `xen/include/public/xen.h`).
    ReservedId(DomId),
    /// The name is empty, longer than [`MAX_NAME`], or holds a byte that is not printable,
    /// non-space ASCII.
    BadName,
}

impl fmt::Display for AddError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Full => f.write_str("every console slot is in use"),
            Self::Duplicate(id) => write!(f, "domain {id} already has a console"),
            Self::ReservedId(id) => write!(f, "domain id {id:#x} is reserved"),
            Self::BadName => write!(f, "a console name is 1..={MAX_NAME} printable ASCII bytes"),
        }
    }
}

/// Why [`Console::take`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TakeError {
    /// The domain is not connected.
    Unknown(UnknownDomain),
    /// A batch of this or another domain is pending: finish it ([`Console::pending`]) first.
    Pending(DomId),
    /// The domain broke its ring: disconnect it ([`Console::remove_domain`]).
    Ring(RingError),
}

impl fmt::Display for TakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(unknown) => unknown.fmt(f),
            Self::Pending(id) => write!(f, "domain {id}'s output batch is not committed yet"),
            Self::Ring(error) => write!(f, "broken console ring: {error}"),
        }
    }
}

/// Why [`Console::commit`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitError {
    /// No batch of this domain is pending.
    NothingPending(DomId),
}

impl fmt::Display for CommitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NothingPending(id) => write!(f, "domain {id} has no output batch to commit"),
        }
    }
}

/// Why [`Console::deliver`] refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliverError {
    /// The domain is not connected.
    Unknown(UnknownDomain),
    /// The domain broke its ring: disconnect it ([`Console::remove_domain`]).
    Ring(RingError),
}

impl fmt::Display for DeliverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(unknown) => unknown.fmt(f),
            Self::Ring(error) => write!(f, "broken console ring: {error}"),
        }
    }
}

/// One connected domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Domain {
    pub(crate) name: String,
    pub(crate) out: OutCursor,
    pub(crate) in_cursor: InCursor,
    pub(crate) line: LineState,
    pub(crate) input: VecDeque<u8>,
}

/// The batch taken and not yet committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) domain: DomId,
    /// The cursor once committed (`consumer` = the batch's end).
    pub(crate) out: OutCursor,
    pub(crate) first_sequence: u64,
    pub(crate) bytes: Vec<u8>,
    /// The domain held the input focus when taken and the batch drained its ring: its
    /// unfinished line is shown too.
    pub(crate) flush: bool,
}

/// The console service's whole state (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Console {
    pub(crate) config: Config,
    pub(crate) domains: BTreeMap<DomId, Domain>,
    pub(crate) focus: Focus,
    /// The domain that asked for the focus with a [`FocusRequest`] (`xl console`), while the
    /// focus is where it asked: the switch key gives the focus back to it.
    pub(crate) return_to: Option<DomId>,
    pub(crate) held: u8,
    pub(crate) next_sequence: u64,
    pub(crate) pending: Option<Pending>,
}

/// Whether `name` is a valid console name.
pub(crate) fn valid_name(name: &[u8]) -> bool {
    (1..=MAX_NAME).contains(&name.len()) && name.iter().all(|b| (0x21..=0x7e).contains(b))
}

impl Console {
    /// An empty console: no domains, focus on the core, first sequence number 1.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        config.check()?;
        Ok(Self {
            config,
            domains: BTreeMap::new(),
            focus: Focus::Core,
            return_to: None,
            held: 0,
            next_sequence: 1,
            pending: None,
        })
    }

    /// Numbers the next line above `last`, the highest number the sink has written (asked of
    /// it after a start without a snapshot, so that no new line is taken for a repeat).
    /// Ignored while a batch is pending: its numbers are fixed.
    pub fn continue_after(&mut self, last: u64) {
        if self.pending.is_none() {
            self.next_sequence = self.next_sequence.max(last.saturating_add(1));
        }
    }

    /// Moves the input focus to `focus` (a present domain, or the core) and returns the
    /// announcement to print. The switch key works as usual afterwards (three presses).
    pub fn set_focus(&mut self, focus: Focus) -> Result<Vec<u8>, UnknownDomain> {
        if let Focus::Domain(id) = focus {
            if !self.domains.contains_key(&id) {
                return Err(UnknownDomain(id));
            }
        }
        self.focus = focus;
        self.return_to = None;
        Ok(self.announce())
    }

    /// Does what `request` asks (`xl console`, see [`crate::request`]): the focus moves to its
    /// target and is announced as a switch announces it; until it moves again, **one** press
    /// of the switch key gives it back to the requester (announced too), as xenconsole's
    /// escape character (Ctrl-], `tools/console/client/main.c`) leaves for dom0's shell; the
    /// target going away gives it back as well. A request naming the requester itself just
    /// moves the focus there. A partial switch sequence held is void. Refused (nothing
    /// changes) if the target or the requester has no console here.
    pub fn request_focus(&mut self, request: FocusRequest) -> Result<Vec<u8>, UnknownDomain> {
        for id in [request.target, request.requester] {
            if !self.domains.contains_key(&id) {
                return Err(UnknownDomain(id));
            }
        }
        self.held = 0;
        self.focus = Focus::Domain(request.target);
        self.return_to = (request.target != request.requester).then_some(request.requester);
        Ok(self.announce())
    }

    /// The domain the switch key gives the focus back to, if the focus is where a
    /// [`FocusRequest`] put it.
    pub fn return_to(&self) -> Option<DomId> {
        self.return_to
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where typed input goes now.
    pub fn focus(&self) -> Focus {
        self.focus
    }

    /// The connected domains, in id order.
    pub fn domains(&self) -> impl Iterator<Item = DomId> + '_ {
        self.domains.keys().copied()
    }

    /// A connected domain's name.
    pub fn name(&self, domain: DomId) -> Option<&str> {
        self.domains.get(&domain).map(|d| d.name.as_str())
    }

    /// Typed bytes queued for `domain` and not yet in its ring.
    pub fn queued_input(&self, domain: DomId) -> usize {
        self.domains.get(&domain).map_or(0, |d| d.input.len())
    }

    /// Serves `domain`'s console from now on. Its ring indexes start where the page has them
    /// (zero on a fresh page; where a previous backend left them otherwise).
    pub fn add_domain(
        &mut self,
        domain: DomId,
        name: &str,
        page: &impl RingPage,
    ) -> Result<(), AddError> {
        if domain >= DOMID_FIRST_RESERVED {
            return Err(AddError::ReservedId(domain));
        }
        if !valid_name(name.as_bytes()) {
            return Err(AddError::BadName);
        }
        if self.domains.contains_key(&domain) {
            return Err(AddError::Duplicate(domain));
        }
        if self.domains.len() >= self.config.max_domains {
            return Err(AddError::Full);
        }
        let out_cons = page.read_index(OUT_CONS_OFFSET);
        let in_prod = page.read_index(IN_PROD_OFFSET);
        let in_cons = page.read_index(IN_CONS_OFFSET);
        let record = Domain {
            name: String::from(name),
            out: OutCursor { consumer: out_cons, seen: out_cons },
            in_cursor: InCursor { producer: in_prod, seen: in_cons },
            line: LineState::default(),
            input: VecDeque::new(),
        };
        self.domains.insert(domain, record);
        Ok(())
    }

    /// Stops serving `domain` (it died, or broke its ring). Its unfinished line, queued input
    /// and pending batch are dropped. If it held the focus, focus moves back to the domain
    /// whose [`FocusRequest`] put it there, else to the next domain in id order (or the core),
    /// and the announcement is returned. If it had asked for the focus, the switch key no
    /// longer gives it back (three presses move it again).
    pub fn remove_domain(&mut self, domain: DomId) -> Result<Option<Vec<u8>>, UnknownDomain> {
        self.domains.remove(&domain).ok_or(UnknownDomain(domain))?;
        if self.pending.as_ref().is_some_and(|p| p.domain == domain) {
            self.pending = None;
        }
        if self.return_to == Some(domain) {
            self.return_to = None;
        }
        if self.focus == Focus::Domain(domain) {
            self.focus = match self.return_to.take() {
                Some(requester) => Focus::Domain(requester),
                None => self.next_focus(domain),
            };
            return Ok(Some(self.announce()));
        }
        Ok(None)
    }

    /// Takes the next batch of `domain`'s output (at most [`Config::round_budget`] bytes) and
    /// returns its lines; `None` if the ring is empty. The batch stays pending until
    /// [`Console::commit`] (protocol in the module documentation).
    pub fn take(
        &mut self,
        domain: DomId,
        page: &impl RingPage,
    ) -> Result<Option<Batch>, TakeError> {
        if let Some(pending) = &self.pending {
            return Err(TakeError::Pending(pending.domain));
        }
        let record = self.domains.get(&domain).ok_or(TakeError::Unknown(UnknownDomain(domain)))?;
        let mut bytes = Vec::new();
        let out = ring::read_output(page, record.out, self.config.round_budget, &mut bytes)
            .map_err(TakeError::Ring)?;
        if bytes.is_empty() {
            // Remember the producer index seen, so it cannot go back later unnoticed.
            if let Some(record) = self.domains.get_mut(&domain) {
                record.out = out;
            }
            return Ok(None);
        }
        // The focused domain's unfinished line is shown (a prompt) once its ring is drained; not
        // where the round budget cuts the batch, as the rest of that line is in the ring already
        // (and other console output could land inside a line shown in pieces).
        let flush = self.focus == Focus::Domain(domain) && out.consumer == out.seen;
        let pending = Pending { domain, out, first_sequence: self.next_sequence, bytes, flush };
        let (lines, _) = self.derive(&pending);
        self.next_sequence += lines.len() as u64;
        self.pending = Some(pending);
        Ok(Some(Batch { domain, lines }))
    }

    /// The pending batch's lines, numbered as when taken: after a restart, write them all
    /// again (the sink drops those it has) and commit.
    pub fn pending(&self) -> Option<Batch> {
        let pending = self.pending.as_ref()?;
        Some(Batch { domain: pending.domain, lines: self.derive(pending).0 })
    }

    /// The lines a pending batch completes and the unfinished line after it.
    fn derive(&self, pending: &Pending) -> (Vec<Line>, LineState) {
        let Some(record) = self.domains.get(&pending.domain) else {
            return (Vec::new(), LineState::default());
        };
        let mut state = record.line.clone();
        let mut lines = Vec::new();
        let mut sequence = pending.first_sequence;
        let mut emit = |text| {
            lines.push(Line { sequence, text });
            sequence += 1;
        };
        line::assemble(&record.name, &mut state, &pending.bytes, &mut emit);
        if pending.flush {
            line::flush(&record.name, &mut state, &mut emit);
        }
        (lines, state)
    }

    /// Marks `domain`'s pending batch as written: publishes its end as `out_cons` in `page` and
    /// keeps the unfinished line. Call only after every line of the batch reached the sink.
    pub fn commit(&mut self, domain: DomId, page: &mut impl RingPage) -> Result<(), CommitError> {
        let pending = match &self.pending {
            Some(pending) if pending.domain == domain => pending,
            _ => return Err(CommitError::NothingPending(domain)),
        };
        let (_, state) = self.derive(pending);
        let out = pending.out;
        ring::publish_output(page, out.consumer);
        if let Some(record) = self.domains.get_mut(&domain) {
            record.line = state;
            record.out = out;
        }
        self.pending = None;
        Ok(())
    }

    /// Routes bytes typed on the UART: switch sequences move focus (announced), other bytes go
    /// to the core (returned) or are queued for the focused domain ([`Console::deliver`]).
    /// While the focus is where a [`FocusRequest`] put it, one switch key gives it back to the
    /// requester ([`Console::request_focus`]).
    pub fn input(&mut self, bytes: &[u8]) -> Vec<Routed> {
        let mut routed = Vec::new();
        let mut released = Vec::new();
        for &byte in bytes {
            if byte == self.config.switch_key {
                if let Some(requester) = self.return_to.take() {
                    // Nothing is held here: `request_focus` voided what was, and any switch
                    // key since came through this branch.
                    self.focus = Focus::Domain(requester);
                    routed.push(Routed::Announce(self.announce()));
                    continue;
                }
            }
            match focus::feed(&mut self.held, self.config.switch_key, byte) {
                Key::Held => {}
                Key::Switch => {
                    self.focus = match self.focus {
                        Focus::Core => self.first_focus(),
                        Focus::Domain(id) => self.next_focus(id),
                    };
                    routed.push(Routed::Announce(self.announce()));
                }
                Key::Pass { held, byte } => {
                    released.clear();
                    focus::release(&mut released, self.config.switch_key, held, byte);
                    self.route(&released, &mut routed);
                }
            }
        }
        routed
    }

    fn route(&mut self, bytes: &[u8], routed: &mut Vec<Routed>) {
        match self.focus {
            Focus::Core => match routed.last_mut() {
                Some(Routed::Core(to_core)) => to_core.extend_from_slice(bytes),
                _ => routed.push(Routed::Core(bytes.to_vec())),
            },
            Focus::Domain(id) => {
                if let Some(record) = self.domains.get_mut(&id) {
                    let room = INPUT_QUEUE.saturating_sub(record.input.len());
                    record.input.extend(bytes.iter().take(room));
                }
            }
        }
    }

    /// The first domain in id order, or the core if there is none.
    fn first_focus(&self) -> Focus {
        self.domains.keys().next().map_or(Focus::Core, |&id| Focus::Domain(id))
    }

    /// The domain after `after` in id order (present or not), or the core.
    fn next_focus(&self, after: DomId) -> Focus {
        self.domains
            .range((Bound::Excluded(after), Bound::Unbounded))
            .next()
            .map_or(Focus::Core, |(&id, _)| Focus::Domain(id))
    }

    /// `[console] input to <name>\n` for the current focus.
    fn announce(&self) -> Vec<u8> {
        let name = match self.focus {
            Focus::Core => CORE_NAME,
            Focus::Domain(id) => self.name(id).unwrap_or(CORE_NAME),
        };
        let mut text = Vec::from(&b"[console] input to "[..]);
        text.extend_from_slice(name.as_bytes());
        text.push(b'\n');
        text
    }

    /// Moves as much of `domain`'s queued input as its `in` ring has room for into the ring;
    /// returns how many bytes the guest now has.
    pub fn deliver(
        &mut self,
        domain: DomId,
        page: &mut impl RingPage,
    ) -> Result<usize, DeliverError> {
        let record =
            self.domains.get_mut(&domain).ok_or(DeliverError::Unknown(UnknownDomain(domain)))?;
        let queued = record.input.make_contiguous();
        let (placed, cursor) =
            ring::place_input(page, record.in_cursor, queued).map_err(DeliverError::Ring)?;
        record.in_cursor = cursor;
        record.input.drain(..placed.min(record.input.len()));
        Ok(placed)
    }
}
