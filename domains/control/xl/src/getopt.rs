//! Splitting a typed line into words, and xl's option parsing.
//!
//! # Words (Xenolith's rule: there is no shell in front of the control domain's console)
//! Words are separated by blanks (space, tab, carriage return, newline). A double quote starts
//! a quoted part that runs to the next unescaped double quote and may hold blanks; inside it a
//! backslash keeps the next `"` or `\` literally. Quoted and unquoted parts next to each other
//! form one word (`a"b c"` is `ab c`), and `""` is an empty word. A quote left open is refused.
//!
//! # Options (Xen 4.17: `def_getopt` and `SWITCH_FOREACH_OPT` in `tools/xl/xl_utils.{c,h}`,
//! glibc's `getopt_long`)
//! - Every command takes `-h` and `--help` besides its own options; either prints the
//!   command's help, and the command does nothing else.
//! - GNU rules: options and arguments may be mixed (`destroy 3 -f`); `--` ends the options; `-`
//!   alone is an argument; short options may be grouped (`-lv`), and one that takes a value
//!   takes the rest of its group or else the next word, whatever it looks like; long options
//!   may be abbreviated to a unique prefix and take `--name=value` or `--name value`.
//! - An unknown option, a missing value, or a value given to a long option that takes none
//!   prints ``option `C' not supported.`` and exits with status 2, where C is the option's letter
//!   (for an unknown or ambiguous long option glibc reports letter 0, which prints as nothing).
//! - Fewer arguments than the command needs prints `'xl NAME' requires at least N argument(s).`,
//!   a blank line and the command's help, with status 2.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::commands::{command_help, spec_of};
use crate::error::XlError;

/// Splits `line` into words (see the module documentation).
pub fn split_words(line: &str) -> Result<Vec<String>, XlError> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                if in_word {
                    words.push(core::mem::take(&mut word));
                    in_word = false;
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        None => {
                            return Err(XlError::failure(
                                "xl: a double-quoted word is not closed\n",
                            ))
                        }
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\')) => word.push(e),
                            Some(other) => {
                                word.push('\\');
                                word.push(other);
                            }
                            None => word.push('\\'),
                        },
                        Some(other) => word.push(other),
                    }
                }
            }
            other => {
                in_word = true;
                word.push(other);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// A long option: its name, whether it takes a value, and the letter it stands for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LongOption {
    pub name: &'static str,
    pub takes_value: bool,
    pub letter: char,
}

pub(crate) const fn long(name: &'static str, takes_value: bool, letter: char) -> LongOption {
    LongOption { name, takes_value, letter }
}

/// What a command accepts: its short option letters (`"d:w:"`: a colon after a letter that
/// takes a value), its long options, and how many arguments it needs.
pub(crate) struct Options {
    pub command: &'static str,
    pub short: &'static str,
    pub long: &'static [LongOption],
    pub required: usize,
}

/// One step of option parsing, in the order of the words.
#[derive(Debug)]
pub(crate) enum Event {
    /// An option and its value.
    Option(char, Option<String>),
    /// `-h` or `--help`: xl prints the command's help and does nothing else.
    Help,
    /// An option xl refuses; parsing stopped here.
    Error(XlError),
}

/// The options met, in order (ending at the first `Help` or `Error`), and the other words.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub events: Vec<Event>,
    pub arguments: Vec<String>,
}

const HELP: LongOption = long("help", false, 'h');

/// ``option `C' not supported.``; `None` is glibc's letter 0 (an unknown long option).
fn unsupported(letter: Option<char>) -> XlError {
    let shown = letter.map(|c| c.to_string()).unwrap_or_default();
    XlError::usage(format!("option `{shown}' not supported.\n"))
}

/// Whether `letter` is a short option of `short` (with xl's `h`), and whether it takes a value.
fn short_option(short: &str, letter: char) -> Option<bool> {
    if letter == 'h' {
        return Some(false);
    }
    if letter == ':' {
        return None;
    }
    let mut chars = short.chars().peekable();
    while let Some(c) = chars.next() {
        let takes = chars.peek() == Some(&':');
        if takes {
            chars.next();
        }
        if c == letter {
            return Some(takes);
        }
    }
    None
}

fn find_long(options: &Options, name: &str) -> Option<LongOption> {
    let all = options.long.iter().chain(core::iter::once(&HELP));
    if let Some(exact) = all.clone().find(|o| o.name == name) {
        return Some(*exact);
    }
    let mut matches = all.filter(|o| o.name.starts_with(name));
    match (matches.next(), matches.next()) {
        (Some(one), None) => Some(*one),
        (Some(first), Some(second))
            if first.letter == second.letter && first.takes_value == second.takes_value =>
        {
            Some(*first)
        }
        _ => None,
    }
}

/// One option word (and the next word, if it supplies a value): its events, and how many
/// words after it were used.
fn option_word(options: &Options, word: &str, next: Option<&String>) -> (Vec<Event>, usize) {
    let mut events = Vec::new();
    if let Some(body) = word.strip_prefix("--") {
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(option) = find_long(options, name) else {
            events.push(Event::Error(unsupported(None)));
            return (events, 0);
        };
        let (event, used) = match (option.takes_value, inline, next) {
            _ if option.letter == 'h' => (Event::Help, 0),
            (true, Some(v), _) => (Event::Option(option.letter, Some(v)), 0),
            (true, None, Some(v)) => (Event::Option(option.letter, Some(v.clone())), 1),
            (false, None, _) => (Event::Option(option.letter, None), 0),
            (true, None, None) | (false, Some(_), _) => {
                (Event::Error(unsupported(Some(option.letter))), 0)
            }
        };
        events.push(event);
        return (events, used);
    }
    let group = &word[1..];
    for (at, letter) in group.char_indices() {
        let Some(takes_value) = short_option(options.short, letter) else {
            events.push(Event::Error(unsupported(Some(letter))));
            break;
        };
        if letter == 'h' {
            events.push(Event::Help);
            break;
        }
        if !takes_value {
            events.push(Event::Option(letter, None));
            continue;
        }
        let rest = &group[at + letter.len_utf8()..];
        if !rest.is_empty() {
            events.push(Event::Option(letter, Some(rest.to_string())));
            return (events, 0);
        }
        match next {
            Some(v) => {
                events.push(Event::Option(letter, Some(v.clone())));
                return (events, 1);
            }
            None => events.push(Event::Error(unsupported(Some(letter)))),
        }
        break;
    }
    (events, 0)
}

/// Splits `words` (the words after the command's name) into options and arguments as glibc's
/// `getopt_long` does for xl, stopping at the first `-h` or refused option.
pub(crate) fn getopt(options: &Options, words: &[String]) -> Parsed {
    let mut parsed = Parsed::default();
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        i += 1;
        if word == "--" {
            parsed.arguments.extend(words[i..].iter().cloned());
            break;
        }
        if !word.starts_with('-') || word == "-" {
            parsed.arguments.push(word.clone());
            continue;
        }
        let (events, used) = option_word(options, word, words.get(i));
        i += used;
        let stop = events.iter().any(|e| !matches!(e, Event::Option(..)));
        parsed.events.extend(events);
        if stop {
            break;
        }
    }
    parsed
}

/// What a command's option loop came to: its arguments, or `None` for `-h`.
pub(crate) type Walked = Option<Vec<String>>;

/// Runs xl's `SWITCH_FOREACH_OPT` loop: hands each option to `handle` in order, stops at `-h`
/// (returning `None`) or at a refused option, then checks the number of arguments.
pub(crate) fn walk(
    options: &Options,
    words: &[String],
    mut handle: impl FnMut(char, Option<String>) -> Result<(), XlError>,
) -> Result<Walked, XlError> {
    let parsed = getopt(options, words);
    for event in parsed.events {
        match event {
            Event::Option(letter, value) => handle(letter, value)?,
            Event::Help => return Ok(None),
            Event::Error(e) => return Err(e),
        }
    }
    if parsed.arguments.len() < options.required {
        return Err(requires(options.command, options.required));
    }
    Ok(Some(parsed.arguments))
}

/// `'xl NAME' requires at least N argument(s).`, a blank line and the command's help.
pub(crate) fn requires(command: &str, count: usize) -> XlError {
    XlError::usage(format!(
        "'xl {command}' requires at least {count} argument{}.\n\n{}",
        if count > 1 { "s" } else { "" },
        command_help(spec_of(command))
    ))
}
