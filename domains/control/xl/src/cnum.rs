//! C's number conversions as xl applies them to command-line words.
//!
//! xl reads numbers with `strtol`, `strtoul`, `strtoll` (all base 10) and `atoi`, usually
//! without checking for text after the digits: `sched-credit2 -w 12x` sets weight 12, and
//! `-w x` sets weight 0. These functions reproduce C's results so Xenolith accepts and refuses
//! what xl does.
//!
//! # Rules (ISO C 7.22.1.4, glibc on LP64, where `long` and `long long` are 64 bits)
//! - Leading white space (`isspace`: space, `\t`, `\n`, `\v`, `\f`, `\r`) is skipped, then an
//!   optional `+` or `-`, then the longest run of decimal digits.
//! - No digits: the value is 0 and the end is the start of the text (nothing consumed).
//! - `strtol`/`strtoll` saturate at `LONG_MAX`/`LONG_MIN` when out of range; `strtoul` saturates
//!   at `ULONG_MAX` and negates in unsigned arithmetic (`"-1"` is `ULONG_MAX`).
//! - `atoi` is `(int)strtol(text, NULL, 10)`; the conversion to `int` keeps the low 32 bits.

/// The sign, the digits' value (saturated past `u64::MAX`) and the bytes consumed.
fn scan(text: &str) -> (bool, u64, bool, usize) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() && matches!(bytes[i], b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r') {
        i += 1;
    }
    let negative = match bytes.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let start = i;
    let mut value: u64 = 0;
    let mut overflow = false;
    while let Some(d) = bytes.get(i).filter(|b| b.is_ascii_digit()) {
        match value.checked_mul(10).and_then(|v| v.checked_add(u64::from(d - b'0'))) {
            Some(v) => value = v,
            None => overflow = true,
        }
        i += 1;
    }
    if i == start {
        return (false, 0, false, 0);
    }
    (negative, value, overflow, i)
}

/// `strtol(text, &end, 10)`: the value and how many bytes were consumed (0: no number).
pub fn strtol(text: &str) -> (i64, usize) {
    let (negative, magnitude, overflow, end) = scan(text);
    let value = if negative {
        if overflow || magnitude > i64::MIN.unsigned_abs() {
            i64::MIN
        } else {
            0i64.wrapping_sub_unsigned(magnitude)
        }
    } else if overflow || magnitude > i64::MAX as u64 {
        i64::MAX
    } else {
        magnitude as i64
    };
    (value, end)
}

/// `strtoll(text, &end, 10)`: the same as [`strtol`] where `long long` and `long` are 64 bits.
pub fn strtoll(text: &str) -> (i64, usize) {
    strtol(text)
}

/// `strtoul(text, &end, 10)`: the value and how many bytes were consumed (0: no number).
pub fn strtoul(text: &str) -> (u64, usize) {
    let (negative, magnitude, overflow, end) = scan(text);
    let value = if overflow {
        u64::MAX
    } else if negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    };
    (value, end)
}

/// `atoi(text)`.
pub fn atoi(text: &str) -> i32 {
    strtol(text).0 as i32
}
