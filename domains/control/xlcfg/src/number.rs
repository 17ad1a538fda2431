//! C's `strtol`/`strtoul` as xl applies them to configuration text.
//!
//! libxlu keeps numbers as text; `xlu_cfg_get_bounded_long` (`tools/libs/util/libxlu_cfg.c`) converts
//! with `strtol(text, &ep, 0)` and refuses the value unless the whole text was used. Base 0 means a
//! `0x`/`0X` prefix is hexadecimal, a leading `0` octal, anything else decimal, after optional
//! leading white space and an optional sign; this is what xl.cfg(5) calls NUMBER.

/// Why a text is not a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumError {
    /// Not (entirely) a number in the base.
    Invalid,
    /// Outside the type's range (`ERANGE`).
    Range,
}

/// `strtol(text, &ep, base)` with `*ep == 0` required; `base` is 0, 10 or 16.
pub fn strtol(text: &str, base: u32) -> Result<i64, NumError> {
    let t = text.trim_start_matches([' ', '\t', '\n', '\r', '\u{b}', '\u{c}']);
    let (neg, t) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let has_hex_prefix = (t.starts_with("0x") || t.starts_with("0X"))
        && t[2..].starts_with(|c: char| c.is_ascii_hexdigit());
    let (radix, digits) = match base {
        0 if has_hex_prefix => (16, &t[2..]),
        0 if t.starts_with('0') => (8, t),
        0 => (10, t),
        16 if has_hex_prefix => (16, &t[2..]),
        b => (b, t),
    };
    if digits.is_empty() {
        return Err(NumError::Invalid);
    }
    let mut v: i128 = 0;
    for c in digits.chars() {
        let d = c.to_digit(radix).ok_or(NumError::Invalid)?;
        v = v * i128::from(radix) + i128::from(d);
        if v > i128::from(i64::MAX) + 1 {
            return Err(NumError::Range);
        }
    }
    let v = if neg { -v } else { v };
    i64::try_from(v).map_err(|_| NumError::Range)
}
