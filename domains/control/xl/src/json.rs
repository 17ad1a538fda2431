//! JSON text laid out as libxl's generator lays it out, for `xl list -l`.
//!
//! libxl writes JSON with yajl 2 in "beautify" mode (`libxl_yajl_gen_alloc` in
//! `tools/include/libxl_json.h`), whose layout (yajl's `src/yajl_gen.c`, `src/yajl_encode.c`)
//! is:
//! - an indent of four spaces per level;
//! - `{`/`[` then a newline; members separated by `,` and a newline; `"key": value`;
//! - a closing bracket on its own line: a newline, the indent, then `}`/`]`, so an empty map is
//!   `{`, newline, newline, indent, `}`;
//! - a newline after the outermost value;
//! - in strings, `"` `\` and the control characters escaped (`\r \n \t \f \b`, others as
//!   `\u00XX` with capital hex digits); `/` and non-ASCII characters as they are.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    MapStart,
    MapKey,
    MapValue,
    ArrayStart,
    InArray,
    Complete,
}

/// A JSON writer with yajl's beautified layout. The caller keeps keys and values in order.
pub struct Json {
    out: String,
    states: Vec<State>,
}

impl Default for Json {
    fn default() -> Self {
        Self::new()
    }
}

impl Json {
    /// An empty document.
    pub fn new() -> Self {
        Self { out: String::new(), states: alloc::vec![State::Start] }
    }

    fn state(&self) -> State {
        *self.states.last().unwrap_or(&State::Complete)
    }

    fn set_state(&mut self, state: State) {
        if let Some(s) = self.states.last_mut() {
            *s = state;
        }
    }

    fn depth(&self) -> usize {
        self.states.len() - 1
    }

    fn separator(&mut self) {
        match self.state() {
            State::MapKey | State::InArray => self.out.push_str(",\n"),
            State::MapValue => self.out.push_str(": "),
            _ => {}
        }
    }

    fn indent(&mut self) {
        if self.state() != State::MapValue {
            for _ in 0..self.depth() {
                self.out.push_str("    ");
            }
        }
    }

    fn appended(&mut self) {
        let next = match self.state() {
            State::Start => State::Complete,
            State::MapStart | State::MapKey => State::MapValue,
            State::ArrayStart => State::InArray,
            State::MapValue => State::MapKey,
            other => other,
        };
        self.set_state(next);
    }

    fn final_newline(&mut self) {
        if self.state() == State::Complete {
            self.out.push('\n');
        }
    }

    fn atom(&mut self, text: &str) {
        self.separator();
        self.indent();
        self.out.push_str(text);
        self.appended();
        self.final_newline();
    }

    /// A string (a key, inside a map, or a value).
    pub fn string(&mut self, s: &str) {
        self.separator();
        self.indent();
        self.out.push('"');
        for c in s.chars() {
            match c {
                '\r' => self.out.push_str("\\r"),
                '\n' => self.out.push_str("\\n"),
                '\\' => self.out.push_str("\\\\"),
                '"' => self.out.push_str("\\\""),
                '\x0c' => self.out.push_str("\\f"),
                '\x08' => self.out.push_str("\\b"),
                '\t' => self.out.push_str("\\t"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(self.out, "\\u00{:02X}", c as u32);
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
        self.appended();
        self.final_newline();
    }

    /// An integer.
    pub fn integer(&mut self, n: i64) {
        let mut text = String::new();
        let _ = write!(text, "{n}");
        self.atom(&text);
    }

    /// An unsigned number (libxl writes `MemKB` values with `%PRIu64`).
    pub fn unsigned(&mut self, n: u64) {
        let mut text = String::new();
        let _ = write!(text, "{n}");
        self.atom(&text);
    }

    /// `null`.
    pub fn null(&mut self) {
        self.atom("null");
    }

    /// A key and a string value.
    pub fn key_string(&mut self, key: &str, value: &str) {
        self.string(key);
        self.string(value);
    }

    fn open(&mut self, bracket: char, state: State) {
        self.separator();
        self.indent();
        self.states.push(state);
        self.out.push(bracket);
        self.out.push('\n');
    }

    fn close(&mut self, bracket: char) {
        self.states.pop();
        self.out.push('\n');
        self.appended();
        self.indent();
        self.out.push(bracket);
        self.final_newline();
    }

    /// `{`.
    pub fn map_open(&mut self) {
        self.open('{', State::MapStart);
    }

    /// `}`.
    pub fn map_close(&mut self) {
        self.close('}');
    }

    /// `[`.
    pub fn array_open(&mut self) {
        self.open('[', State::ArrayStart);
    }

    /// `]`.
    pub fn array_close(&mut self) {
        self.close(']');
    }

    /// The text written so far.
    pub fn finish(self) -> String {
        self.out
    }
}
