//! The preserved state: a [`Console`] as bytes and back, kept in the preserved region
//! (ARCHITECTURE.md §5) by `xenolith-preserved`'s two-slot scheme under [`FORMAT`] (magic
//! `XLCNSNAP`), so a killed console domain restarts where it stopped.
//!
//! Payload format, version 3 (fixed-width little-endian integers, so the largest payload has a
//! formula):
//! ```text
//! next_sequence u64 | focus u8 (0 core, 1 domain) | focus domid u16 | held u8 |
//! return u8 (0 none, 1 the switch key returns the focus) | return domid u16 |
//! domain count u16 |
//! pending u8 (0 none, 1 pending, 2 pending and flushed)
//!   [domid u16 | end u32 | seen u32 | first_sequence u64 | length u16 | bytes] |
//! each domain, in id order:
//!   domid u16 | name length u8 | name | out_cons u32 | out_seen u32 | in_prod u32 |
//!   in_seen u32 | continuation u8 | escape u8 | shown u16 | partial length u16 | partial |
//!   input length u16 | input
//! ```
//! The largest payload is [`PAYLOAD_FIXED`] + [`PENDING_FIXED`] + `round_budget` +
//! `max_domains` × [`DOMAIN_MAX`] (1,336 bytes a domain), and a region needs two slots of it:
//! [`region_size`]` = 2 × (64 + 38 + round_budget + 1339 × max_domains)`; with the defaults
//! (16 domains, 512-byte budget) 44,076 bytes. [`Console::save`] refuses a smaller region
//! rather than write past it.
//!
//! # Invariants
//! - `restore(save(c)) == c` for every reachable `c` (the configuration is the caller's).
//! - [`Console::restore`] never panics; it accepts only states the code could have produced
//!   (names valid, lengths within their maxima, ids ascending and unreserved, the pending batch
//!   of a present domain and exactly as long as its index span, focus on a present domain, a
//!   domain to return the focus to only if present and the focus is on another domain).

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use xenolith_abi::xen::hypercall::DOMID_FIRST_RESERVED;
use xenolith_preserved::{Format, SaveError, HEADER_SIZE};

use crate::console::{valid_name, Config, Console, Domain, Focus, Pending, INPUT_QUEUE, MAX_NAME};
use crate::focus::SWITCH_COUNT;
use crate::line::{is_kept, LineState, ESCAPE_CSI, MAX_LINE};
use crate::ring::{InCursor, OutCursor, IN_SIZE, OUT_SIZE};

/// The preserved region's slot format: magic `XLCNSNAP`, payload version 3 (below).
pub const FORMAT: Format = Format::new(*b"XLCNSNAP", 3);

/// Bytes of the payload's fixed part (sequence, focus, held, return, domain count, pending
/// flag).
pub const PAYLOAD_FIXED: usize = 8 + 1 + 2 + 1 + 1 + 2 + 2 + 1;
/// Bytes of a pending batch's fixed part (its bytes come on top, at most `round_budget`).
pub const PENDING_FIXED: usize = 2 + 4 + 4 + 8 + 2;
/// Bytes of one domain's fixed part.
pub const DOMAIN_FIXED: usize = 2 + 1 + 4 * 4 + 1 + 1 + 2 + 2 + 2;
/// Most bytes one domain takes in the payload.
pub const DOMAIN_MAX: usize = DOMAIN_FIXED + MAX_NAME + MAX_LINE + INPUT_QUEUE;

/// Bytes of preserved region a console with `config` needs: two slots, each a header and the
/// largest payload.
pub const fn region_size(config: &Config) -> usize {
    2 * (HEADER_SIZE
        + PAYLOAD_FIXED
        + PENDING_FIXED
        + config.round_budget as usize
        + config.max_domains * DOMAIN_MAX)
}

/// Why [`Console::restore`] refused the region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreError {
    /// The payload ends before its fields do.
    Truncated,
    /// Well-formed bytes describing a state the console cannot be in.
    Invalid(&'static str),
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("the console snapshot ends before its last field"),
            Self::Invalid(what) => {
                write!(f, "the console snapshot describes an impossible state: {what}")
            }
        }
    }
}

struct Writer<'a>(&'a mut Vec<u8>);

impl Writer<'_> {
    fn u8(&mut self, value: u8) {
        self.0.push(value);
    }
    fn u16(&mut self, value: u16) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }
    fn u32(&mut self, value: u32) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }
    fn u64(&mut self, value: u64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }
    /// A length-prefixed byte string; every caller's bytes are bounded far below `u16::MAX`.
    fn bytes16(&mut self, bytes: impl ExactSizeIterator<Item = u8>) {
        self.u16(bytes.len() as u16);
        self.0.extend(bytes);
    }
}

struct Reader<'a>(&'a [u8]);

type Result<T> = core::result::Result<T, RestoreError>;

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Result<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(count).ok_or(RestoreError::Truncated)?;
        self.0 = rest;
        Ok(head)
    }
    fn int<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut raw = [0u8; N];
        raw.copy_from_slice(self.take(N)?);
        Ok(raw)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.int::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.int()?))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.int()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.int()?))
    }
    fn bytes16(&mut self, max: usize, what: &'static str) -> Result<&'a [u8]> {
        let length = usize::from(self.u16()?);
        if length > max {
            return Err(RestoreError::Invalid(what));
        }
        self.take(length)
    }
    fn flag(&mut self) -> Result<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(RestoreError::Invalid("a flag is neither 0 nor 1")),
        }
    }
}

impl Console {
    /// Appends the state (format in the module documentation) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut w = Writer(out);
        w.u64(self.next_sequence);
        match self.focus {
            Focus::Core => {
                w.u8(0);
                w.u16(0);
            }
            Focus::Domain(id) => {
                w.u8(1);
                w.u16(id);
            }
        }
        w.u8(self.held);
        w.u8(u8::from(self.return_to.is_some()));
        w.u16(self.return_to.unwrap_or(0));
        w.u16(self.domains.len() as u16);
        match &self.pending {
            None => w.u8(0),
            Some(pending) => {
                w.u8(1 + u8::from(pending.flush));
                w.u16(pending.domain);
                w.u32(pending.out.consumer);
                w.u32(pending.out.seen);
                w.u64(pending.first_sequence);
                w.bytes16(pending.bytes.iter().copied());
            }
        }
        for (&id, domain) in &self.domains {
            w.u16(id);
            w.u8(domain.name.len() as u8);
            w.0.extend_from_slice(domain.name.as_bytes());
            w.u32(domain.out.consumer);
            w.u32(domain.out.seen);
            w.u32(domain.in_cursor.producer);
            w.u32(domain.in_cursor.seen);
            w.u8(u8::from(domain.line.continuation));
            w.u8(domain.line.escape);
            w.u16(domain.line.shown as u16);
            w.bytes16(domain.line.partial.iter().copied());
            w.bytes16(domain.input.iter().copied());
        }
    }

    /// Rebuilds a console from [`Console::encode`]'s output, checking every field.
    pub fn decode(config: Config, bytes: &[u8]) -> core::result::Result<Console, RestoreError> {
        let mut console =
            Console::new(config).map_err(|_| RestoreError::Invalid("the configuration"))?;
        let mut r = Reader(bytes);
        console.next_sequence = r.u64()?;
        let focus_kind = r.u8()?;
        let focus_id = r.u16()?;
        console.focus = match (focus_kind, focus_id) {
            (0, 0) => Focus::Core,
            (1, id) => Focus::Domain(id),
            _ => return Err(RestoreError::Invalid("an unknown focus")),
        };
        console.held = r.u8()?;
        if console.held >= SWITCH_COUNT {
            return Err(RestoreError::Invalid("a complete switch sequence held"));
        }
        let return_to = match (r.u8()?, r.u16()?) {
            (0, 0) => None,
            (1, id) => Some(id),
            _ => return Err(RestoreError::Invalid("an unknown return of the focus")),
        };
        let count = usize::from(r.u16()?);
        if count > config.max_domains {
            return Err(RestoreError::Invalid("more domains than configured"));
        }
        let pending_kind = r.u8()?;
        if pending_kind > 2 {
            return Err(RestoreError::Invalid("an unknown pending kind"));
        }
        let pending = if pending_kind > 0 {
            let domain = r.u16()?;
            let out = OutCursor { consumer: r.u32()?, seen: r.u32()? };
            let first_sequence = r.u64()?;
            let bytes = r.bytes16(config.round_budget as usize, "a pending batch over budget")?;
            let flush = pending_kind == 2;
            Some(Pending { domain, out, first_sequence, bytes: bytes.to_vec(), flush })
        } else {
            None
        };
        let mut domains = BTreeMap::new();
        for _ in 0..count {
            let id = r.u16()?;
            if id >= DOMID_FIRST_RESERVED
                || domains.keys().next_back().is_some_and(|&last| last >= id)
            {
                return Err(RestoreError::Invalid("domain ids not ascending or reserved"));
            }
            let name_length = usize::from(r.u8()?);
            let name = r.take(name_length)?;
            if !valid_name(name) {
                return Err(RestoreError::Invalid("an invalid name"));
            }
            let out = OutCursor { consumer: r.u32()?, seen: r.u32()? };
            if out.seen.wrapping_sub(out.consumer) > OUT_SIZE {
                return Err(RestoreError::Invalid("an output cursor past the ring"));
            }
            let in_cursor = InCursor { producer: r.u32()?, seen: r.u32()? };
            if in_cursor.producer.wrapping_sub(in_cursor.seen) > IN_SIZE {
                return Err(RestoreError::Invalid("an input cursor past the ring"));
            }
            let continuation = r.flag()?;
            let escape = r.u8()?;
            if escape > ESCAPE_CSI {
                return Err(RestoreError::Invalid("an unknown escape state"));
            }
            let shown = usize::from(r.u16()?);
            let partial = r.bytes16(MAX_LINE, "a partial line too long")?;
            if shown > partial.len() {
                return Err(RestoreError::Invalid("more of a partial line shown than it holds"));
            }
            if !partial.iter().all(|&b| is_kept(b)) {
                return Err(RestoreError::Invalid("a partial line with a dropped byte"));
            }
            let input = r.bytes16(INPUT_QUEUE, "an input queue too long")?;
            let domain = Domain {
                name: String::from_utf8_lossy(name).into_owned(),
                out,
                in_cursor,
                line: LineState { partial: partial.to_vec(), continuation, shown, escape },
                input: input.iter().copied().collect::<VecDeque<u8>>(),
            };
            domains.insert(id, domain);
        }
        if !r.0.is_empty() {
            return Err(RestoreError::Invalid("bytes after the last domain"));
        }
        if let Focus::Domain(id) = console.focus {
            if !domains.contains_key(&id) {
                return Err(RestoreError::Invalid("focus on an absent domain"));
            }
        }
        if let Some(requester) = return_to {
            if !domains.contains_key(&requester)
                || matches!(console.focus, Focus::Core)
                || console.focus == Focus::Domain(requester)
            {
                return Err(RestoreError::Invalid("the focus to return to an impossible domain"));
            }
        }
        console.return_to = return_to;
        if let Some(pending) = &pending {
            let domain = domains
                .get(&pending.domain)
                .ok_or(RestoreError::Invalid("a pending batch of an absent domain"))?;
            let span = pending.out.consumer.wrapping_sub(domain.out.consumer) as usize;
            if span != pending.bytes.len()
                || pending.bytes.is_empty()
                || pending.out.seen.wrapping_sub(domain.out.consumer) > OUT_SIZE
                || pending.out.seen.wrapping_sub(pending.out.consumer) > OUT_SIZE
            {
                return Err(RestoreError::Invalid("a pending batch that does not fit its ring"));
            }
        }
        console.domains = domains;
        console.pending = pending;
        // No batch is taken while one is pending, so the pending batch's lines are the last
        // ones numbered.
        if let Some(batch) = console.pending() {
            let next = batch.lines.len() as u64;
            let first = console.pending.as_ref().map_or(0, |p| p.first_sequence);
            if first.checked_add(next) != Some(console.next_sequence) {
                return Err(RestoreError::Invalid(
                    "a pending batch numbered apart from the sequence",
                ));
            }
        }
        Ok(console)
    }

    /// Saves the state into the preserved `region` (two slots; the last good snapshot survives
    /// a kill during the save). Returns the snapshot's sequence number.
    pub fn save(&self, region: &mut [u8]) -> core::result::Result<u64, SaveError> {
        let mut payload = Vec::new();
        self.encode(&mut payload);
        FORMAT.save(region, &payload)
    }

    /// The state saved last in `region`; `Ok(None)` if the region holds no valid snapshot (a
    /// first start).
    pub fn restore(
        config: Config,
        region: &[u8],
    ) -> core::result::Result<Option<Console>, RestoreError> {
        match FORMAT.latest(region) {
            None => Ok(None),
            Some((_, payload)) => Console::decode(config, payload).map(Some),
        }
    }
}
