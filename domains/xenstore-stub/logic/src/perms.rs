//! Node permissions: Xen's `<r|w|b|n><domid>` lists and who gets which rights.
//!
//! Exists to hold Xen's one rule for access (`perm_for_conn()` in
//! `tools/xenstore/xenstored_core.c`, `docs/misc/xenstore.txt` "Permissions"): the first entry
//! names the owner and the rights of everyone not listed; the owner, the owner's device model
//! (`SET_TARGET`) and privileged connections have every right; otherwise the first later entry
//! naming the caller (or its target) decides.
//!
//! # Invariants
//! - A permission list on a node is never empty.
//! - Only entries after the first carry [`IGNORE`]; it is set when their domain goes away, so a
//!   later domain reusing the id does not inherit them (Xen does this with generation counts in
//!   `domain_adjust_node_perms()`).

use alloc::vec::Vec;
use core::fmt::Write;

use crate::DomId;

/// `XS_PERM_READ` (`tools/include/xenstore_lib.h`).
pub(crate) const READ: u8 = 0x01;
/// `XS_PERM_WRITE`.
pub(crate) const WRITE: u8 = 0x02;
/// `XS_PERM_OWNER` (internal: may change permissions).
pub(crate) const OWNER: u8 = 0x08;
/// `XS_PERM_IGNORE` (internal: entry of a domain that went away).
pub(crate) const IGNORE: u8 = 0x10;

/// One permission entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Perm {
    /// The domain the entry is about.
    pub id: DomId,
    /// [`READ`] | [`WRITE`], plus [`IGNORE`].
    pub bits: u8,
}

impl Perm {
    /// An entry with `bits` for `id`.
    pub(crate) fn new(id: DomId, bits: u8) -> Self {
        Self { id, bits }
    }
}

/// Who is asking: the rights-relevant facts of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Who {
    /// The connection's domain.
    pub id: DomId,
    /// The control domain: bypasses permission checks and quotas.
    pub privileged: bool,
    /// The domain this one acts for (`SET_TARGET`).
    pub target: Option<DomId>,
}

/// Xen's `perm_for_conn()`: the rights (`READ|WRITE|OWNER` bits) `who` has on a node with
/// `perms`.
pub(crate) fn rights(who: Who, perms: &[Perm]) -> u8 {
    const ALL: u8 = READ | WRITE | OWNER;
    let Some(owner) = perms.first() else {
        return if who.privileged { ALL } else { 0 };
    };
    let is_me = |id: DomId| id == who.id || who.target == Some(id);
    if who.privileged || is_me(owner.id) {
        return ALL;
    }
    for entry in perms.iter().skip(1) {
        if entry.bits & IGNORE == 0 && is_me(entry.id) {
            return entry.bits & ALL;
        }
    }
    owner.bits & ALL
}

/// Parses an unsigned number as C's `strtol(…, 0)` does for the values a domain id can take:
/// `0x` hex, leading-`0` octal or decimal, the whole string, at most 65535.
fn parse_domid(digits: &[u8]) -> Option<DomId> {
    let (radix, body) = match digits {
        [b'0', b'x' | b'X', rest @ ..] if !rest.is_empty() => (16, rest),
        [b'0', rest @ ..] if !rest.is_empty() => (8, rest),
        _ => (10, digits),
    };
    if body.is_empty() {
        return None;
    }
    let mut value: u32 = 0;
    for &byte in body {
        let digit = char::from(byte).to_digit(radix)?;
        value = value.checked_mul(radix)?.checked_add(digit)?;
        if value > u32::from(DomId::MAX) {
            return None;
        }
    }
    DomId::try_from(value).ok()
}

/// Parses one `<r|w|b|n><domid>` entry (Xen's `xs_strings_to_perms()`).
pub(crate) fn parse(entry: &[u8]) -> Option<Perm> {
    let (&letter, digits) = entry.split_first()?;
    let bits = match letter {
        b'r' => READ,
        b'w' => WRITE,
        b'b' => READ | WRITE,
        b'n' => 0,
        _ => return None,
    };
    Some(Perm::new(parse_domid(digits)?, bits))
}

/// Appends `perms` as Xen's `perms_to_strings()` does: each entry NUL-terminated.
pub(crate) fn format(perms: &[Perm], out: &mut Vec<u8>) {
    for entry in perms {
        let letter = match entry.bits & (READ | WRITE) {
            READ => 'r',
            WRITE => 'w',
            0 => 'n',
            _ => 'b',
        };
        let mut text = alloc::string::String::with_capacity(8);
        // Writing to a String cannot fail.
        let _ = write!(text, "{letter}{}", entry.id);
        out.extend_from_slice(text.as_bytes());
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(id: DomId) -> Who {
        Who { id, privileged: false, target: None }
    }

    #[test]
    fn parse_and_format() {
        assert_eq!(parse(b"r5"), Some(Perm::new(5, READ)));
        assert_eq!(parse(b"b0x10"), Some(Perm::new(16, READ | WRITE)));
        assert_eq!(parse(b"w010"), Some(Perm::new(8, WRITE)));
        assert_eq!(parse(b"n0"), Some(Perm::new(0, 0)));
        assert_eq!(parse(b"x1"), None);
        assert_eq!(parse(b"r"), None);
        assert_eq!(parse(b"r1a"), None);
        assert_eq!(parse(b"r65536"), None);
        assert_eq!(parse(b"r-1"), None);
        let mut out = Vec::new();
        format(&[Perm::new(1, 0), Perm::new(2, READ | WRITE | IGNORE)], &mut out);
        assert_eq!(out, b"n1\0b2\0");
    }

    #[test]
    fn rights_follow_xen() {
        let perms = [Perm::new(1, READ), Perm::new(2, WRITE), Perm::new(3, IGNORE | READ)];
        assert_eq!(rights(who(1), &perms), READ | WRITE | OWNER);
        assert_eq!(rights(who(2), &perms), WRITE);
        assert_eq!(rights(who(3), &perms), READ);
        assert_eq!(rights(who(4), &perms), READ);
        let device_model = Who { id: 9, privileged: false, target: Some(1) };
        assert_eq!(rights(device_model, &perms), READ | WRITE | OWNER);
        let control = Who { id: 7, privileged: true, target: None };
        assert_eq!(rights(control, &perms), READ | WRITE | OWNER);
    }
}
