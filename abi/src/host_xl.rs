//! xl from the host: how `cargo xtask xl <args>` on the host reaches the control domain and gets
//! xl's answer back, over the control domain's virtio console (QEMU's `virtconsole` on a host
//! unix socket; the domain's driver is `xenolith_runtime::virtio`). Both ends use this module:
//! the host tool's client (`xenolith_images::xl_client`) and the control domain's service.
//!
//! # The exchange
//! - A request is one line: the xl command line as typed at the control domain's console
//!   (`list`, `xl create linux3.cfg`), ended by `\n`; a `\r` just before it is dropped. At most
//!   [`MAX_REQUEST`] bytes come before the `\n`: a longer request is answered with an error.
//! - The answer is everything xl prints, then a [`Trailer`]: a NUL ([`TERMINATOR`], which the
//!   text never holds: the control domain writes every text byte through [`text_byte`]), xl's
//!   exit status in decimal (0 on success), a space, the request's id as 8 lowercase hex digits,
//!   and `\n`.
//! - A request's id is the CRC-32 of its bytes before the `\n` ([`request_id`]). It tells a
//!   client its own answer from the late answer to an earlier client's request (one that gave
//!   up waiting, or was interrupted, while its command still ran): a client skips answers
//!   whose id is not its request's.
//! - One request at a time: the control domain reads the next request only after answering.
//!
//! # Invariants
//! - Neither reader panics or grows on any input: [`RequestReader`] keeps at most
//!   [`MAX_REQUEST`] bytes, [`AnswerReader`] at most [`MAX_TRAILER`].

use crate::bundle::crc32_update;

/// The longest request, in bytes before its `\n`.
pub const MAX_REQUEST: usize = 4096;
/// The byte that ends an answer's text and starts its [`Trailer`].
pub const TERMINATOR: u8 = 0;
/// The longest trailer: NUL, three status digits, a space, eight hex digits, `\n`.
pub const MAX_TRAILER: usize = 14;

/// A request's id: the CRC-32 of its bytes before the `\n` (a `\r` included).
pub fn request_id(line: &[u8]) -> u32 {
    !crc32_update(!0, line)
}

/// The byte the control domain writes for `byte` of xl's text: `?` for the [`TERMINATOR`], the
/// byte itself otherwise.
pub fn text_byte(byte: u8) -> u8 {
    if byte == TERMINATOR {
        b'?'
    } else {
        byte
    }
}

/// A request, as [`RequestReader`] finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// A whole line, without its `\n` (nor a `\r` before it).
    Line {
        /// The command line.
        text: &'a [u8],
        /// Its id ([`request_id`] of the bytes before the `\n`).
        id: u32,
    },
    /// A line longer than [`MAX_REQUEST`]: only its length and id are kept.
    TooLong {
        /// Its bytes before the `\n`.
        length: usize,
        /// Its id.
        id: u32,
    },
}

/// The control domain's side: finds requests in the bytes that arrive.
#[derive(Clone, Debug)]
pub struct RequestReader {
    line: [u8; MAX_REQUEST],
    /// Bytes of the current line so far (it may pass [`MAX_REQUEST`]; only those are kept).
    length: usize,
    /// The running CRC-32 state of the current line.
    state: u32,
    /// The last byte ended a line: the next one starts another.
    finished: bool,
}

impl Default for RequestReader {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestReader {
    /// A reader at the start of a line.
    pub const fn new() -> Self {
        Self { line: [0; MAX_REQUEST], length: 0, state: !0, finished: false }
    }

    /// Takes the next byte; a request when it ends one.
    pub fn push(&mut self, byte: u8) -> Option<Request<'_>> {
        if self.finished {
            (self.length, self.state, self.finished) = (0, !0, false);
        }
        if byte == b'\n' {
            self.finished = true;
            let id = !self.state;
            if self.length > MAX_REQUEST {
                return Some(Request::TooLong { length: self.length, id });
            }
            let mut text = &self.line[..self.length];
            if let [before @ .., b'\r'] = text {
                text = before;
            }
            return Some(Request::Line { text, id });
        }
        self.state = crc32_update(self.state, &[byte]);
        if let Some(slot) = self.line.get_mut(self.length) {
            *slot = byte;
        }
        self.length = self.length.saturating_add(1);
        None
    }
}

/// What ends an answer: xl's exit status and the id of the request answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailer {
    /// xl's exit status (0 on success).
    pub status: u8,
    /// The id of the request this answers ([`request_id`]).
    pub id: u32,
}

impl Trailer {
    /// Its bytes: the [`TERMINATOR`], the status, a space, the id, `\n`; and how many are used.
    pub fn encode(self) -> ([u8; MAX_TRAILER], usize) {
        let mut bytes = [0u8; MAX_TRAILER];
        let mut length = 1; // bytes[0] is the terminator
        let status = self.status;
        for (divisor, always) in [(100, false), (10, false), (1, true)] {
            if status >= divisor || always {
                bytes[length] = b'0' + status / divisor % 10;
                length += 1;
            }
        }
        bytes[length] = b' ';
        length += 1;
        for shift in (0..8).rev() {
            bytes[length] = b"0123456789abcdef"[(self.id >> (shift * 4)) as usize & 0xf];
            length += 1;
        }
        bytes[length] = b'\n';
        (bytes, length + 1)
    }

    /// Reads the part between the terminator and the `\n`: `<status> <id>`.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        let text = core::str::from_utf8(bytes).ok()?;
        let (status, id) = text.split_once(' ')?;
        let digits =
            |word: &str, radix: u32| !word.is_empty() && word.chars().all(|c| c.is_digit(radix));
        if !digits(status, 10) || !digits(id, 16) || id.len() != 8 {
            return None;
        }
        Some(Self { status: status.parse().ok()?, id: u32::from_str_radix(id, 16).ok()? })
    }
}

/// One step of [`AnswerReader`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// A byte of xl's text.
    Text(u8),
    /// A byte of a trailer, not its last.
    Trailer,
    /// The end of an answer.
    Done(Trailer),
    /// A trailer that does not read as one (or is longer than [`MAX_TRAILER`]).
    Malformed,
}

/// The host's side: tells the text of answers from their trailers.
#[derive(Clone, Debug, Default)]
pub struct AnswerReader {
    /// Inside a trailer: its bytes after the terminator so far.
    trailer: Option<([u8; MAX_TRAILER], usize)>,
}

impl AnswerReader {
    /// Takes the next byte of the control domain's output.
    pub fn push(&mut self, byte: u8) -> Step {
        let Some((bytes, length)) = &mut self.trailer else {
            if byte == TERMINATOR {
                self.trailer = Some(([0; MAX_TRAILER], 0));
                return Step::Trailer;
            }
            return Step::Text(byte);
        };
        if byte == b'\n' {
            let trailer = Trailer::parse(&bytes[..*length]);
            self.trailer = None;
            return trailer.map_or(Step::Malformed, Step::Done);
        }
        // The terminator and the `\n` take two of the trailer's bytes.
        if *length + 2 >= MAX_TRAILER {
            self.trailer = None;
            return Step::Malformed;
        }
        bytes[*length] = byte;
        *length += 1;
        Step::Trailer
    }
}

#[cfg(test)]
mod tests;
