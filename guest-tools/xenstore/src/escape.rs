//! How Xen's tools show values and read them from the command line
//! (`sanitise_value`/`unsanitise_value` in Xen 4.17's `tools/xenstore/xs_lib.c`).
//!
//! Shown: printable ASCII (space to `~`) stays, except the backslash; `\t`, `\n`, `\r` and
//! `\\` are written so; bytes below 8 (NUL among them) as three octal digits (`\000`), every
//! other byte as `\x` and two hex digits (`\x1b`, `\xff`).
//!
//! Read: the same escapes back, where `\x` takes up to two hex digits and `\` and an octal digit
//! up to three octal digits (the value kept modulo 256); `\` before any other character stands
//! for that character; a `\` at the very end stands for a NUL byte.
//!
//! # Invariants
//! - [`unsanitise`] of [`sanitise`] of any bytes gives the bytes back.
//! - [`sanitise`]'s output is printable ASCII.

/// `value` as Xen's tools print it.
pub fn sanitise(value: &[u8]) -> String {
    let mut text = String::with_capacity(value.len());
    for &byte in value {
        match byte {
            b'\\' => text.push_str("\\\\"),
            b' '..=b'~' => text.push(char::from(byte)),
            b'\t' => text.push_str("\\t"),
            b'\n' => text.push_str("\\n"),
            b'\r' => text.push_str("\\r"),
            0..=7 => text.push_str(&format!("\\{byte:03o}")),
            _ => text.push_str(&format!("\\x{byte:02x}")),
        }
    }
    text
}

/// The bytes a command-line `text` stands for.
pub fn unsanitise(text: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(text.len());
    let mut index = 0;
    while index < text.len() {
        let byte = text[index];
        index += 1;
        if byte != b'\\' {
            value.push(byte);
            continue;
        }
        let Some(&escaped) = text.get(index) else {
            // The C string's terminating NUL is what follows; Xen's loop stores it.
            value.push(0);
            break;
        };
        index += 1;
        let byte = match escaped {
            b't' => b'\t',
            b'n' => b'\n',
            b'r' => b'\r',
            b'x' => match digits(&text[index..], 16, 2) {
                Some((number, used)) => {
                    index += used;
                    number
                }
                None => b'x',
            },
            b'0'..=b'7' => {
                let (number, used) = digits(&text[index - 1..], 8, 3).unwrap_or((0, 1));
                index += used - 1;
                number
            }
            other => other,
        };
        value.push(byte);
    }
    value
}

/// The number in up to `width` leading digits of `radix` in `text`, modulo 256, and how many
/// digits it took; `None` without a digit.
fn digits(text: &[u8], radix: u32, width: usize) -> Option<(u8, usize)> {
    let mut number: u32 = 0;
    let mut used = 0;
    for &byte in text.iter().take(width) {
        let Some(digit) = char::from(byte).to_digit(radix) else { break };
        number = number * radix + digit;
        used += 1;
    }
    (used > 0).then_some(((number & 0xff) as u8, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_shown_as_xen_shows_them() {
        assert_eq!(sanitise(b"plain text ~"), "plain text ~");
        assert_eq!(sanitise(b"a\\b"), "a\\\\b");
        assert_eq!(sanitise(b"\t\n\r"), "\\t\\n\\r");
        assert_eq!(sanitise(b"\0\x07"), "\\000\\007");
        assert_eq!(sanitise(b"\x08\x1b\x7f\xff"), "\\x08\\x1b\\x7f\\xff");
    }

    #[test]
    fn command_line_escapes_are_read_as_xen_reads_them() {
        assert_eq!(unsanitise(b"plain"), b"plain");
        assert_eq!(unsanitise(b"\\t\\n\\r\\\\"), b"\t\n\r\\");
        assert_eq!(unsanitise(b"\\x41\\x4"), b"A\x04");
        assert_eq!(unsanitise(b"\\x4142"), b"A42", "two hex digits at most");
        assert_eq!(unsanitise(b"\\xg"), b"xg", "no digit: the x stays");
        assert_eq!(unsanitise(b"\\101\\0\\7"), b"A\0\x07");
        assert_eq!(unsanitise(b"\\1018"), b"A8", "three octal digits at most");
        assert_eq!(unsanitise(b"\\777"), b"\xff", "modulo 256");
        assert_eq!(unsanitise(b"\\q"), b"q");
        assert_eq!(unsanitise(b"end\\"), b"end\0");
    }

    #[test]
    fn every_byte_round_trips() {
        let all: Vec<u8> = (0..=255).collect();
        let shown = sanitise(&all);
        assert!(shown.bytes().all(|byte| (b' '..=b'~').contains(&byte)));
        assert_eq!(unsanitise(shown.as_bytes()), all);
    }
}
