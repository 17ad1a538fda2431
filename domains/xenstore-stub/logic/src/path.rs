//! Node paths: canonical form, validity, parents and children.
//!
//! Exists so that every handler applies the same rules as Xen's `canonicalize()` and
//! `is_valid_nodename()` (`tools/xenstore/xenstored_core.c`), stated in `docs/misc/xenstore.txt`:
//! paths are `/`-separated ASCII alphanumerics plus `-/_@`, start with `/`, contain no `//`,
//! end in `/` only if they are `/`, and relative paths are taken under
//! `/local/domain/<domid>`.
//!
//! # Invariants
//! - A path accepted by [`is_valid`] is ASCII, so its bytes are a valid `&str`.
//! - [`parent`] of `/` is `/`; of any other valid path, a strictly shorter valid path.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::DomId;

/// The base of relative paths: `/local/domain/<domid>` (Xen's `get_implicit_path()`).
pub(crate) fn domain_path(domid: u32) -> String {
    let mut path = String::with_capacity(20);
    // Writing to a String cannot fail.
    let _ = write!(path, "/local/domain/{domid}");
    path
}

/// Xen's `canonicalize()`: absolute paths and `@` names stay; anything else is taken relative to
/// the connection's `/local/domain/<domid>`.
pub(crate) fn canonicalize(domid: DomId, name: &[u8]) -> Vec<u8> {
    match name.first() {
        Some(b'/') | Some(b'@') => name.to_vec(),
        _ => {
            let base = domain_path(u32::from(domid));
            let mut path = Vec::with_capacity(base.len() + 1 + name.len());
            path.extend_from_slice(base.as_bytes());
            path.push(b'/');
            path.extend_from_slice(name);
            path
        }
    }
}

/// Xen's `valid_chars()`: ASCII alphanumerics and `-/_@`.
fn valid_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'/' | b'_' | b'@')
}

/// Length of a `/local/domain/<domid>/` prefix (1 to 5 digits, as Xen's `sscanf("%5u/")`), or 0.
fn local_prefix_len(path: &[u8]) -> usize {
    const LOCAL: &[u8] = b"/local/domain/";
    let Some(rest) = path.strip_prefix(LOCAL) else {
        return 0;
    };
    let digits = rest.iter().take(5).take_while(|byte| byte.is_ascii_digit()).count();
    if digits > 0 && rest.get(digits) == Some(&b'/') {
        LOCAL.len() + digits + 1
    } else {
        0
    }
}

/// Xen's `is_valid_nodename()`: `path_max` limits the length below `/local/domain/<domid>/`
/// (or of the whole path elsewhere), Xen's `quota_max_path_len` (default
/// `XENSTORE_REL_PATH_MAX`).
pub(crate) fn is_valid(path: &[u8], path_max: usize) -> bool {
    if path.first() != Some(&b'/') {
        return false;
    }
    if path.len() > 1 && path.last() == Some(&b'/') {
        return false;
    }
    if path.windows(2).any(|pair| pair == b"//") {
        return false;
    }
    if path.len() > local_prefix_len(path).saturating_add(path_max) {
        return false;
    }
    path.iter().all(|&byte| valid_char(byte))
}

/// Checks `path` as [`is_valid`] does and returns it as a `&str`.
pub(crate) fn valid_str(path: &[u8], path_max: usize) -> Option<&str> {
    if is_valid(path, path_max) {
        core::str::from_utf8(path).ok()
    } else {
        None
    }
}

/// Xen's `get_parent()`: everything before the last `/` (not counting a leading one), or `/`.
pub(crate) fn parent(path: &str) -> &str {
    match path.get(1..).and_then(|rest| rest.rfind('/')) {
        Some(index) => path.get(..index + 1).unwrap_or("/"),
        None => "/",
    }
}

/// The last component of `path` (Xen's `basename()`); empty for `/`.
pub(crate) fn basename(path: &str) -> &str {
    match path.rfind('/') {
        Some(index) => path.get(index + 1..).unwrap_or(""),
        None => path,
    }
}

/// Xen's `child_name()`: `parent/name`, without doubling the root's slash.
pub(crate) fn child(parent: &str, name: &[u8]) -> String {
    let mut path = String::with_capacity(parent.len() + 1 + name.len());
    path.push_str(parent);
    if parent != "/" {
        path.push('/');
    }
    // Child names come from children lists of valid paths, so they are ASCII; anything else
    // cannot name a node and is dropped rather than trusted.
    path.push_str(core::str::from_utf8(name).unwrap_or(""));
    path
}

/// Xen's `is_child()` (watch matching): `child` is `parent`, or below it; everything is below `/`.
pub(crate) fn is_child(child: &[u8], parent: &[u8]) -> bool {
    if parent == b"/" {
        return true;
    }
    match child.strip_prefix(parent) {
        Some(rest) => rest.is_empty() || rest.first() == Some(&b'/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 2048;

    #[test]
    fn validity() {
        assert!(is_valid(b"/", MAX));
        assert!(is_valid(b"/a-b_c@1/D", MAX));
        assert!(!is_valid(b"", MAX));
        assert!(!is_valid(b"a", MAX));
        assert!(!is_valid(b"/a/", MAX));
        assert!(!is_valid(b"/a//b", MAX));
        assert!(!is_valid(b"/a b", MAX));
        assert!(!is_valid(b"/a.b", MAX));
        let mut long = alloc::vec![b'/'];
        long.extend(core::iter::repeat_n(b'x', MAX - 1));
        assert!(is_valid(&long, MAX));
        long.push(b'x');
        assert!(!is_valid(&long, MAX));
        // Below /local/domain/<id>/ the limit counts from there.
        let mut local = b"/local/domain/7/".to_vec();
        local.extend(core::iter::repeat_n(b'x', MAX));
        assert!(is_valid(&local, MAX));
        local.push(b'x');
        assert!(!is_valid(&local, MAX));
    }

    #[test]
    fn parents_and_children() {
        assert_eq!(parent("/"), "/");
        assert_eq!(parent("/a"), "/");
        assert_eq!(parent("/a/b"), "/a");
        assert_eq!(basename("/a/b"), "b");
        assert_eq!(basename("/"), "");
        assert_eq!(child("/", b"a"), "/a");
        assert_eq!(child("/a", b"b"), "/a/b");
        assert!(is_child(b"/a/b", b"/a"));
        assert!(is_child(b"/a", b"/a"));
        assert!(!is_child(b"/ab", b"/a"));
        assert!(is_child(b"/x", b"/"));
        assert_eq!(canonicalize(3, b"x/y"), b"/local/domain/3/x/y");
        assert_eq!(canonicalize(3, b"/x"), b"/x");
        assert_eq!(canonicalize(3, b"@x"), b"@x");
    }
}
