//! Line assembly: a domain's output bytes become whole hypervisor-console lines, each prefixed
//! with the domain's name.
//!
//! Exists because guests write bytes, not lines, and several domains share one console: a line
//! must never be interleaved with another domain's. Xen prefixes a domain's output with
//! `(dN) ` and prints only what `isprint()` accepts plus `'\n'` and `'\t'`
//! (`xen/drivers/char/console.c`, `guest_console_write`); this module does the same with the
//! domain's name:
//!
//! - a line is printed as `<name>: <text>\n`;
//! - `'\n'` ends a line; every `'\r'` is ignored, so `"\r\n"` is one line end and a lone `'\r'`
//!   (a progress bar's carriage return) disappears;
//! - printable ASCII (0x20..=0x7e) and `'\t'` are kept, every other byte (control characters,
//!   bytes >= 0x80) is **dropped**, as Xen drops them; beyond Xen, a terminal escape sequence is
//!   dropped whole, not just its ESC: `ESC [` with its parameter and intermediate bytes up to
//!   its final byte (ECMA-48 CSI: colours, cursor moves, a shell's `ESC [6n` cursor query), or
//!   `ESC` and the one byte after it; a line end still ends the line inside one;
//! - a line longer than [`MAX_LINE`] bytes is cut every [`MAX_LINE`] bytes; each piece after the
//!   first is printed as `<name>+ <text>\n`, the `+` marking a continuation.
//!
//! The unfinished line ([`LineState`]) is part of the preserved state, so a line written in
//! several pieces, across service rounds or restarts, is printed once, whole.
//!
//! The domain holding the input focus is interactive: a shell's prompt or the echo of a typed
//! key is a line nobody has ended yet. For it the unfinished line is shown as it grows
//! ([`flush`]): the first piece with the prefix, later pieces and the line end bare, so the
//! console reads as one line; `shown` counts what of the partial line is already out.
//!
//! # Invariants
//! - `LineState::partial` holds at most [`MAX_LINE`] bytes, each printable ASCII or `'\t'`.
//! - [`assemble`] is a pure function of the state and the bytes: feeding the same bytes to the
//!   same state gives the same lines (the exactly-once protocol re-derives lines this way).

use alloc::vec::Vec;

/// The longest text of one printed line, in bytes (without prefix and newline).
pub const MAX_LINE: usize = 256;

/// A domain's unfinished line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LineState {
    /// Text received since the last line end (only kept bytes).
    pub partial: Vec<u8>,
    /// The partial text continues a line that was cut at [`MAX_LINE`].
    pub continuation: bool,
    /// Bytes of `partial` already printed by [`flush`] (at most its length).
    pub shown: usize,
    /// Inside a terminal escape sequence: [`ESCAPE_NONE`], [`ESCAPE_STARTED`] or
    /// [`ESCAPE_CSI`].
    pub escape: u8,
}

/// Not in an escape sequence.
pub const ESCAPE_NONE: u8 = 0;
/// After an ESC.
pub const ESCAPE_STARTED: u8 = 1;
/// After `ESC [`, before the sequence's final byte.
pub const ESCAPE_CSI: u8 = 2;

/// Whether `byte`, in escape state `escape`, belongs to the sequence (and is dropped with it);
/// moves the state on.
fn in_escape(escape: &mut u8, byte: u8) -> bool {
    match (*escape, byte) {
        (_, 0x1b) => *escape = ESCAPE_STARTED,
        (ESCAPE_STARTED, b'[') => *escape = ESCAPE_CSI,
        (ESCAPE_STARTED, _) => *escape = ESCAPE_NONE,
        // Parameter (0x30..=0x3f) and intermediate (0x20..=0x2f) bytes, then the final byte.
        (ESCAPE_CSI, 0x20..=0x3f) => {}
        (ESCAPE_CSI, 0x40..=0x7e) => *escape = ESCAPE_NONE,
        (ESCAPE_CSI, _) => {
            *escape = ESCAPE_NONE;
            return false;
        }
        _ => return false,
    }
    true
}

/// Whether `byte` is kept in a line: Xen's `isprint(c) || c == '\t'` (newline is handled apart).
pub fn is_kept(byte: u8) -> bool {
    byte == b'\t' || (0x20..=0x7e).contains(&byte)
}

/// One printed line: `<name>: <text>\n` or, for a continuation, `<name>+ <text>\n`.
pub fn format_line(name: &str, text: &[u8], continuation: bool) -> Vec<u8> {
    let mut line = prefix(name, continuation);
    line.extend_from_slice(text);
    line.push(b'\n');
    line
}

fn prefix(name: &str, continuation: bool) -> Vec<u8> {
    let mut line = Vec::with_capacity(name.len() + MAX_LINE + 3);
    line.extend_from_slice(name.as_bytes());
    line.extend_from_slice(if continuation { b"+ " } else { b": " });
    line
}

/// Ends the partial line: the whole line, or the rest of one [`flush`] began.
fn end_line(name: &str, state: &mut LineState, emit: &mut impl FnMut(Vec<u8>)) {
    if state.shown == 0 {
        emit(format_line(name, &state.partial, state.continuation));
    } else {
        let mut rest = state.partial[state.shown.min(state.partial.len())..].to_vec();
        rest.push(b'\n');
        emit(rest);
    }
    state.partial.clear();
    state.shown = 0;
}

/// Feeds `bytes` into `state`, calling `emit` with every line they complete, in order.
pub fn assemble(name: &str, state: &mut LineState, bytes: &[u8], emit: &mut impl FnMut(Vec<u8>)) {
    for &byte in bytes {
        if byte == b'\n' {
            end_line(name, state, emit);
            state.continuation = false;
            state.escape = ESCAPE_NONE;
        } else if in_escape(&mut state.escape, byte) {
        } else if is_kept(byte) {
            if state.partial.len() >= MAX_LINE {
                end_line(name, state, emit);
                state.continuation = true;
            }
            state.partial.push(byte);
        }
    }
}

/// Emits what of the unfinished line is not shown yet (with the prefix if none of it is), so
/// an interactive domain's prompt and echo appear before their line ends.
pub fn flush(name: &str, state: &mut LineState, emit: &mut impl FnMut(Vec<u8>)) {
    if state.partial.len() <= state.shown {
        return;
    }
    let mut piece = if state.shown == 0 { prefix(name, state.continuation) } else { Vec::new() };
    piece.extend_from_slice(&state.partial[state.shown..]);
    emit(piece);
    state.shown = state.partial.len();
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn run(state: &mut LineState, bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        assemble("guest", state, bytes, &mut |line| lines.push(line));
        lines
    }

    #[test]
    fn split_writes_make_one_line() {
        let mut state = LineState::default();
        assert!(run(&mut state, b"hel").is_empty());
        assert!(run(&mut state, b"lo wo").is_empty());
        assert_eq!(run(&mut state, b"rld\nnext"), vec![b"guest: hello world\n".to_vec()]);
        assert_eq!(state.partial, b"next");
    }

    #[test]
    fn carriage_returns_are_ignored() {
        let mut state = LineState::default();
        let lines = run(&mut state, b"a\r\nb\rc\n\r\n\n");
        assert_eq!(
            lines,
            vec![
                b"guest: a\n".to_vec(),
                b"guest: bc\n".to_vec(),
                b"guest: \n".to_vec(),
                b"guest: \n".to_vec()
            ]
        );
        // `\r` and `\n` in separate writes still make one line end.
        assert!(run(&mut state, b"x\r").is_empty());
        assert_eq!(run(&mut state, b"\n"), vec![b"guest: x\n".to_vec()]);
    }

    #[test]
    fn non_printables_are_dropped_tabs_kept() {
        let mut state = LineState::default();
        let lines = run(&mut state, b"\x1b[1mbold\x1b[0m\tx\x00\x7f\xff\xc3\xa9!\n");
        assert_eq!(lines, vec![b"guest: bold\tx!\n".to_vec()]);
    }

    #[test]
    fn escape_sequences_are_dropped_whole_across_writes() {
        let mut state = LineState::default();
        // A prompt's cursor query, split over writes; ESC 7 (two bytes); an unfinished CSI
        // cut by a control byte; a line end inside a sequence.
        assert!(run(&mut state, b"/ # \x1b[").is_empty());
        assert_eq!(state.escape, ESCAPE_CSI);
        assert!(run(&mut state, b"6nls\x1b7x\x1b[1\x07y").is_empty());
        assert_eq!(
            run(&mut state, b"\x1b[3\nz\n"),
            vec![b"guest: / # lsxy\n".to_vec(), b"guest: z\n".to_vec()]
        );
        assert_eq!(state, LineState::default());
    }

    #[test]
    fn a_flushed_line_is_shown_as_it_grows_and_ended_bare() {
        let mut state = LineState::default();
        let mut lines = Vec::new();
        assemble("guest", &mut state, b"/ # ", &mut |line| lines.push(line));
        flush("guest", &mut state, &mut |line| lines.push(line));
        flush("guest", &mut state, &mut |line| lines.push(line));
        assemble("guest", &mut state, b"ec\x07ho", &mut |line| lines.push(line));
        flush("guest", &mut state, &mut |line| lines.push(line));
        assemble("guest", &mut state, b"\r\nnext\n", &mut |line| lines.push(line));
        let expected: [&[u8]; 4] = [b"guest: / # ", b"echo", b"\n", b"guest: next\n"];
        assert_eq!(lines, expected.map(<[u8]>::to_vec));
        assert_eq!(state, LineState::default());
        // A flushed line that reaches the cut ends bare and goes on marked.
        let mut lines = Vec::new();
        assemble("guest", &mut state, b"ab", &mut |line| lines.push(line));
        flush("guest", &mut state, &mut |line| lines.push(line));
        assemble("guest", &mut state, &vec![b'c'; MAX_LINE - 1], &mut |line| lines.push(line));
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].len(), MAX_LINE - 2 + 1);
        assert!(state.continuation && state.partial == b"c" && state.shown == 0);
    }

    #[test]
    fn long_lines_are_cut_and_marked() {
        let mut state = LineState::default();
        let text = vec![b'a'; MAX_LINE * 2 + 10];
        let mut bytes = text.clone();
        bytes.push(b'\n');
        let lines = run(&mut state, &bytes);
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], format_line("guest", &text[..MAX_LINE], false));
        assert_eq!(lines[1], format_line("guest", &text[..MAX_LINE], true));
        assert_eq!(lines[2], format_line("guest", &text[..10], true));
        assert!(lines[1].starts_with(b"guest+ "));
        assert_eq!(state, LineState::default());
        // Exactly MAX_LINE bytes then a newline is one unmarked line.
        let mut exact = vec![b'b'; MAX_LINE];
        exact.push(b'\n');
        assert_eq!(run(&mut state, &exact), vec![format_line("guest", &exact[..MAX_LINE], false)]);
        // The cut happens in a later write too, and the state stays bounded.
        assert!(run(&mut state, &vec![b'c'; MAX_LINE]).is_empty());
        assert_eq!(run(&mut state, b"d").len(), 1);
        assert!(state.continuation);
        assert_eq!(state.partial, b"d");
    }
}
