//! The command line of Xen 4.17's `xenstore_client.c`: which tool runs (the program's name
//! or its first argument), its options, parsed as glibc's `getopt_long` parses them, and the
//! usage texts.
//!
//! - Called `xenstore-<mode>`, the mode is the name's tail; called anything else, the first
//!   argument (`xenstore read key`). No mode: the general usage; an unknown mode:
//!   `unknown mode <mode>`. Both exit 1.
//! - Options (`-h -f -s -p -t -u -r -n NR -R` and `--help --flat --prefix --tidy --upto
//!   --recurse --number --raw`, long ones also abbreviated) may come before, between or after
//!   the operands (glibc permutes them); `--` ends them. `-s` is taken by every mode and
//!   changes nothing (it chose xenstored's socket in old Xen). An option the mode does not
//!   take, and `-h`, print the mode's usage and exit 1. An unknown option or a missing `-n`
//!   argument gets glibc's message on standard error and is then ignored, as Xen's tool
//!   ignores what `getopt_long` returns for it.
//! - Operand counts: every mode but `ls` needs one; `write` needs pairs.
//!
//! # Invariants
//! - Parsing writes only to standard error and never talks to xenstore.

use std::io::Write;

/// What the program does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `xenstore-chmod`.
    Chmod,
    /// `xenstore-exists`.
    Exists,
    /// `xenstore-list`.
    List,
    /// `xenstore-ls`.
    Ls,
    /// `xenstore-read`.
    Read,
    /// `xenstore-rm`.
    Rm,
    /// `xenstore-write`.
    Write,
    /// `xenstore-watch`.
    Watch,
}

impl Mode {
    /// Every mode, by its name.
    pub const ALL: [(&'static str, Mode); 8] = [
        ("chmod", Mode::Chmod),
        ("exists", Mode::Exists),
        ("list", Mode::List),
        ("ls", Mode::Ls),
        ("read", Mode::Read),
        ("rm", Mode::Rm),
        ("write", Mode::Write),
        ("watch", Mode::Watch),
    ];

    /// The mode called `name`.
    pub fn lookup(name: &[u8]) -> Option<Mode> {
        Mode::ALL.iter().find(|(known, _)| known.as_bytes() == name).map(|(_, mode)| *mode)
    }

    fn name(self) -> &'static str {
        Mode::ALL.iter().find(|(_, mode)| *mode == self).map_or("", |(name, _)| name)
    }

    /// The options after the program (and mode) in the usage text.
    fn usage_tail(self) -> &'static str {
        match self {
            Mode::Read => "[-h] [-p] [-s] [-R] key [...]",
            Mode::Write => "[-h] [-s] [-R] key value [...]",
            Mode::Rm => "[-h] [-s] [-t] key [...]",
            Mode::Exists | Mode::List => "[-h] [-p] [-s] key [...]",
            Mode::Ls => "[-h] [-f] [-p] [-s] [path]",
            Mode::Chmod => "[-h] [-u] [-r] [-s] key <mode [modes...]>",
            Mode::Watch => "[-h] [-n NR] key",
        }
    }
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The tool.
    pub mode: Mode,
    /// `-p`: read, list: the path before each line; ls: permissions.
    pub prefix: bool,
    /// `-t` (rm): remove parents left empty.
    pub tidy: bool,
    /// `-u` (chmod): also set the permissions of every parent.
    pub upto: bool,
    /// `-r` (chmod): also set the permissions of every descendant.
    pub recurse: bool,
    /// `-f` (ls): full paths, no width limit.
    pub flat: bool,
    /// `-R` (read, write): values as raw bytes, not escaped.
    pub raw: bool,
    /// `-n NR` (watch): stop after this many events; -1 (the default) never.
    pub events: i32,
    /// The operands, in order.
    pub operands: Vec<Vec<u8>>,
}

/// How the program was called, for messages: `program` is `argv[0]` as given (usage texts
/// show it), `short_name` its file name (the prefix of every message, as glibc's `err`
/// writes it).
#[derive(Clone, Debug)]
pub struct Names {
    /// `argv[0]`.
    pub program: Vec<u8>,
    /// The part of `argv[0]` after its last `/`.
    pub short_name: Vec<u8>,
}

impl Names {
    /// The names of `argv0`.
    pub fn new(argv0: &[u8]) -> Names {
        let start = argv0.iter().rposition(|&byte| byte == b'/').map_or(0, |slash| slash + 1);
        Names { program: argv0.to_vec(), short_name: argv0[start..].to_vec() }
    }

    /// `errx(3)`/`warnx(3)`: `<short name>: <message>` and a newline, on `stderr`.
    pub fn warn(&self, stderr: &mut dyn Write, message: &[u8]) {
        let mut line = self.short_name.clone();
        line.extend_from_slice(b": ");
        line.extend_from_slice(message);
        line.push(b'\n');
        // Nothing to do if standard error itself fails, as for C's stdio.
        let _ = stderr.write_all(&line);
    }
}

/// The command line did not ask for anything to run; the message is written and the exit
/// status is 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UsageError;

/// Xen's long options: name, whether it takes an argument, the short option it stands for.
const LONG_OPTIONS: [(&str, bool, u8); 8] = [
    ("help", false, b'h'),
    ("flat", false, b'f'),
    ("prefix", false, b'p'),
    ("tidy", false, b't'),
    ("upto", false, b'u'),
    ("recurse", false, b'r'),
    ("number", true, b'n'),
    ("raw", false, b'R'),
];

/// Xen's `getopt_long` option string, `"hfspturn:R"`: the short options, `n` with an argument.
const SHORT_OPTIONS: &[u8] = b"hfspturnR";

/// One result of the option scan, in command-line order.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Scanned {
    /// A known option and its argument.
    Option(u8, Option<Vec<u8>>),
    /// glibc's message for a bad option (without the trailing newline).
    Bad(Vec<u8>),
}

/// Scans `args` (the arguments after the program, or after the mode) as glibc's
/// `getopt_long` does in its default, permuting order. `name` is what glibc prefixes its
/// messages with (`argv[0]` of the vector it was given).
fn scan(args: &[Vec<u8>], name: &[u8]) -> (Vec<Scanned>, Vec<Vec<u8>>) {
    let mut scanned = Vec::new();
    let mut operands = Vec::new();
    let mut index = 0;
    let message = |parts: &[&[u8]]| {
        let mut text = name.to_vec();
        text.extend_from_slice(b": ");
        for part in parts {
            text.extend_from_slice(part);
        }
        Scanned::Bad(text)
    };
    while index < args.len() {
        let arg = &args[index];
        index += 1;
        if arg == b"--" {
            operands.extend(args[index..].iter().cloned());
            break;
        }
        if arg.len() < 2 || arg[0] != b'-' {
            operands.push(arg.clone());
            continue;
        }
        if let Some(long) = arg.strip_prefix(b"--") {
            let (given, value) = match long.iter().position(|&byte| byte == b'=') {
                Some(equals) => (&long[..equals], Some(long[equals + 1..].to_vec())),
                None => (long, None),
            };
            let exact = LONG_OPTIONS.iter().find(|(option, ..)| option.as_bytes() == given);
            let candidates: Vec<&(&str, bool, u8)> = LONG_OPTIONS
                .iter()
                .filter(|(option, ..)| option.as_bytes().starts_with(given))
                .collect();
            let found = match (exact, candidates.as_slice()) {
                (Some(option), _) | (None, &[option]) => *option,
                (None, []) => {
                    scanned.push(message(&[b"unrecognized option '--", long, b"'"]));
                    continue;
                }
                (None, several) => {
                    let mut text: Vec<u8> = b"option '--".to_vec();
                    text.extend_from_slice(long);
                    text.extend_from_slice(b"' is ambiguous; possibilities:");
                    for (option, ..) in several {
                        text.extend_from_slice(format!(" '--{option}'").as_bytes());
                    }
                    scanned.push(message(&[&text]));
                    continue;
                }
            };
            let (option, takes_argument, short) = found;
            match (takes_argument, value) {
                (false, Some(_)) => scanned.push(message(&[
                    b"option '--",
                    option.as_bytes(),
                    b"' doesn't allow an argument",
                ])),
                (false, None) => scanned.push(Scanned::Option(short, None)),
                (true, Some(value)) => scanned.push(Scanned::Option(short, Some(value))),
                (true, None) => match args.get(index) {
                    Some(value) => {
                        index += 1;
                        scanned.push(Scanned::Option(short, Some(value.clone())));
                    }
                    None => scanned.push(message(&[
                        b"option '--",
                        option.as_bytes(),
                        b"' requires an argument",
                    ])),
                },
            }
            continue;
        }
        let cluster = &arg[1..];
        for (position, &short) in cluster.iter().enumerate() {
            if !SHORT_OPTIONS.contains(&short) {
                scanned.push(message(&[b"invalid option -- '", &[short], b"'"]));
                continue;
            }
            if short != b'n' {
                scanned.push(Scanned::Option(short, None));
                continue;
            }
            let rest = &cluster[position + 1..];
            if !rest.is_empty() {
                scanned.push(Scanned::Option(short, Some(rest.to_vec())));
            } else if let Some(value) = args.get(index) {
                index += 1;
                scanned.push(Scanned::Option(short, Some(value.clone())));
            } else {
                scanned.push(message(&[b"option requires an argument -- 'n'"]));
            }
            break;
        }
    }
    (scanned, operands)
}

/// C's `atoi` as glibc has it (`(int) strtol(text, NULL, 10)`): leading blanks, a sign,
/// decimal digits up to the first other character; nothing is 0.
pub fn atoi(text: &[u8]) -> i32 {
    let text = text.trim_ascii_start();
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    let mut value: i64 = 0;
    for &byte in digits.iter().take_while(|byte| byte.is_ascii_digit()) {
        value = value.saturating_mul(10).saturating_add(i64::from(byte - b'0'));
    }
    (if negative { value.saturating_neg() } else { value }) as i32
}

/// Writes the usage of `mode` (`None`: the general one) and fails.
fn usage(names: &Names, mode: Option<Mode>, with_mode: bool, stderr: &mut dyn Write) -> UsageError {
    let mut text = b"Usage: ".to_vec();
    text.extend_from_slice(&names.program);
    match mode {
        None => text.extend_from_slice(b" <mode> [-h] [...]"),
        Some(mode) => {
            text.push(b' ');
            if with_mode {
                text.extend_from_slice(mode.name().as_bytes());
                text.push(b' ');
            }
            text.extend_from_slice(mode.usage_tail().as_bytes());
        }
    }
    names.warn(stderr, &text);
    UsageError
}

/// Parses `argv` (the program's name first) into what to run, writing any message to
/// `stderr`.
pub fn parse(argv: &[Vec<u8>], stderr: &mut dyn Write) -> Result<(Names, Invocation), UsageError> {
    let names = Names::new(argv.first().map_or(&b"xenstore"[..], Vec::as_slice));
    let (mode_name, skip) = match names.short_name.strip_prefix(b"xenstore-") {
        Some(tail) => (tail.to_vec(), 0),
        None if argv.len() < 2 => return Err(usage(&names, None, false, stderr)),
        None => (argv[1].clone(), 1),
    };
    let Some(mode) = Mode::lookup(&mode_name) else {
        let mut text = b"unknown mode ".to_vec();
        text.extend_from_slice(&mode_name);
        text.push(b'\n');
        names.warn(stderr, &text);
        return Err(UsageError);
    };
    let with_mode = skip == 1;
    let getopt_name = &argv[skip];
    let (scanned, operands) = scan(&argv[skip + 1..], getopt_name);
    let mut invocation = Invocation {
        mode,
        prefix: false,
        tidy: false,
        upto: false,
        recurse: false,
        flat: false,
        raw: false,
        events: -1,
        operands,
    };
    for item in scanned {
        let (option, value) = match item {
            Scanned::Option(option, value) => (option, value),
            Scanned::Bad(mut text) => {
                text.push(b'\n');
                let _ = stderr.write_all(&text);
                continue;
            }
        };
        let allowed = match option {
            b's' => true,
            b'f' => mode == Mode::Ls,
            b'p' => matches!(mode, Mode::Read | Mode::List | Mode::Ls),
            b't' => mode == Mode::Rm,
            b'u' | b'r' => mode == Mode::Chmod,
            b'n' => mode == Mode::Watch,
            b'R' => matches!(mode, Mode::Read | Mode::Write),
            _ => false, // -h
        };
        if !allowed {
            return Err(usage(&names, Some(mode), with_mode, stderr));
        }
        match option {
            b'f' => invocation.flat = true,
            b'p' => invocation.prefix = true,
            b't' => invocation.tidy = true,
            b'u' => invocation.upto = true,
            b'r' => invocation.recurse = true,
            b'n' => invocation.events = atoi(&value.unwrap_or_default()),
            b'R' => invocation.raw = true,
            _ => {}
        }
    }
    let count = invocation.operands.len();
    let enough = match mode {
        Mode::Ls => true,
        Mode::Write => count > 0 && count.is_multiple_of(2),
        _ => count > 0,
    };
    if !enough {
        return Err(usage(&names, Some(mode), with_mode, stderr));
    }
    Ok((names, invocation))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<Vec<u8>> {
        words.iter().map(|word| word.as_bytes().to_vec()).collect()
    }

    /// The invocation, or the message.
    fn parsed(words: &[&str]) -> Result<Invocation, String> {
        let mut stderr = Vec::new();
        let result = parse(&argv(words), &mut stderr);
        let stderr = String::from_utf8(stderr).unwrap();
        match result {
            Ok((_, invocation)) => {
                assert_eq!(stderr, "", "no message on success");
                Ok(invocation)
            }
            Err(UsageError) => Err(stderr),
        }
    }

    #[test]
    fn the_mode_comes_from_the_name_or_the_first_argument() {
        let invocation = parsed(&["/usr/bin/xenstore-read", "name"]).unwrap();
        assert_eq!((invocation.mode, invocation.operands), (Mode::Read, argv(&["name"])));
        let invocation = parsed(&["xenstore", "write", "a", "1"]).unwrap();
        assert_eq!((invocation.mode, invocation.operands), (Mode::Write, argv(&["a", "1"])));
        assert_eq!(
            parsed(&["/usr/bin/xenstore"]).unwrap_err(),
            "xenstore: Usage: /usr/bin/xenstore <mode> [-h] [...]\n"
        );
        assert_eq!(parsed(&["xenstore", "-h"]).unwrap_err(), "xenstore: unknown mode -h\n\n");
        assert_eq!(
            parsed(&["xenstore-frob", "x"]).unwrap_err(),
            "xenstore-frob: unknown mode frob\n\n"
        );
    }

    #[test]
    fn usage_texts_name_the_program_as_called() {
        assert_eq!(
            parsed(&["/usr/bin/xenstore-read", "-h"]).unwrap_err(),
            "xenstore-read: Usage: /usr/bin/xenstore-read [-h] [-p] [-s] [-R] key [...]\n"
        );
        assert_eq!(
            parsed(&["xenstore", "watch", "--help"]).unwrap_err(),
            "xenstore: Usage: xenstore watch [-h] [-n NR] key\n"
        );
        assert_eq!(
            parsed(&["xenstore-rm"]).unwrap_err(),
            "xenstore-rm: Usage: xenstore-rm [-h] [-s] [-t] key [...]\n"
        );
        assert_eq!(
            parsed(&["xenstore-write", "a", "1", "b"]).unwrap_err(),
            "xenstore-write: Usage: xenstore-write [-h] [-s] [-R] key value [...]\n"
        );
        assert_eq!(
            parsed(&["xenstore-ls", "-t"]).unwrap_err(),
            "xenstore-ls: Usage: xenstore-ls [-h] [-f] [-p] [-s] [path]\n"
        );
        for mode in ["chmod", "exists", "list"] {
            assert!(parsed(&["xenstore", mode]).unwrap_err().contains("Usage"), "{mode}");
        }
    }

    #[test]
    fn options_are_those_of_each_mode_in_any_position() {
        let invocation = parsed(&["xenstore-read", "a", "-pR", "b", "-s"]).unwrap();
        assert!(invocation.prefix && invocation.raw);
        assert_eq!(invocation.operands, argv(&["a", "b"]));
        let invocation = parsed(&["xenstore-ls"]).unwrap();
        assert!(invocation.operands.is_empty());
        assert!(parsed(&["xenstore-ls", "--flat", "--pre", "/"]).unwrap().flat);
        assert!(parsed(&["xenstore-rm", "-t", "a"]).unwrap().tidy);
        let chmod = parsed(&["xenstore-chmod", "-u", "--recurse", "a", "b0"]).unwrap();
        assert!(chmod.upto && chmod.recurse);
        assert_eq!(parsed(&["xenstore-watch", "-n", "3", "a"]).unwrap().events, 3);
        assert_eq!(parsed(&["xenstore-watch", "-n5", "a"]).unwrap().events, 5);
        assert_eq!(parsed(&["xenstore-watch", "--number=7", "a"]).unwrap().events, 7);
        assert_eq!(parsed(&["xenstore-watch", "--num", "-2", "a"]).unwrap().events, -2);
        assert_eq!(parsed(&["xenstore-watch", "a"]).unwrap().events, -1);
        let invocation = parsed(&["xenstore-write", "--", "-a", "-1"]).unwrap();
        assert_eq!(invocation.operands, argv(&["-a", "-1"]));
        assert_eq!(parsed(&["xenstore-read", "-"]).unwrap().operands, argv(&["-"]));
        assert!(parsed(&["xenstore-read", "-f", "a"]).unwrap_err().contains("Usage"));
        assert!(parsed(&["xenstore-write", "-p", "a", "b"]).unwrap_err().contains("Usage"));
    }

    #[test]
    fn bad_options_get_glibcs_message_and_are_ignored() {
        let mut stderr = Vec::new();
        let (_, invocation) = parse(&argv(&["xenstore-read", "-x", "a"]), &mut stderr).unwrap();
        assert_eq!(invocation.operands, argv(&["a"]));
        assert_eq!(String::from_utf8(stderr).unwrap(), "xenstore-read: invalid option -- 'x'\n");
        let mut stderr = Vec::new();
        parse(&argv(&["xenstore", "read", "--bogus=1", "a"]), &mut stderr).unwrap();
        assert_eq!(String::from_utf8(stderr).unwrap(), "read: unrecognized option '--bogus=1'\n");
        let mut stderr = Vec::new();
        parse(&argv(&["xenstore-read", "--r", "a"]), &mut stderr).unwrap();
        let text = String::from_utf8(stderr).unwrap();
        assert!(
            text.starts_with(
                "xenstore-read: option '--r' is ambiguous; possibilities: '--recurse' '--raw'\n"
            ),
            "{text}"
        );
        let mut stderr = Vec::new();
        let (_, invocation) = parse(&argv(&["xenstore-watch", "a", "-n"]), &mut stderr).unwrap();
        assert_eq!(invocation.events, -1);
        assert_eq!(
            String::from_utf8(stderr).unwrap(),
            "xenstore-watch: option requires an argument -- 'n'\n"
        );
        let mut stderr = Vec::new();
        parse(&argv(&["xenstore-read", "--prefix=1", "a"]), &mut stderr).unwrap();
        assert_eq!(
            String::from_utf8(stderr).unwrap(),
            "xenstore-read: option '--prefix' doesn't allow an argument\n"
        );
    }

    #[test]
    fn atoi_is_cs() {
        assert_eq!(atoi(b"12"), 12);
        assert_eq!(atoi(b" -3x"), -3);
        assert_eq!(atoi(b"x"), 0);
        assert_eq!(atoi(b""), 0);
    }
}
