//! Watches: which changes a connection asked to hear about, and the path it hears.
//!
//! Exists to hold Xen's watch rules (`tools/xenstore/xenstored_watch.c`, `docs/misc/xenstore.txt`
//! "Watches"): a watch on `P` matches a change to `P` or below it (an exact event matches only
//! `P` itself); relative watches report paths relative to `/local/domain/<domid>`; `@` names
//! match only the special events of that exact name; an event reaches a connection only if it
//! may read the node, its parent, or (after `SET_PERMS`) the node as it was.
//!
//! # Invariants
//! - `Watch::node` is canonical: an absolute valid path or an `@` name (never relative).
//! - A relative watch's `node` starts with its connection's `/local/domain/<domid>/`.

use alloc::vec::Vec;

use crate::db::{Fire, FireKind};
use crate::path;
use crate::perms::{self, Perm, Who};

/// One watch (Xen's `struct watch`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Watch {
    /// The watched path (canonical) or special name.
    pub node: Vec<u8>,
    /// The client's token, echoed in every event.
    pub token: Vec<u8>,
    /// Given as a relative path: events report relative paths.
    pub relative: bool,
}

impl Watch {
    /// Whether an event on `changed` matches this watch (Xen's `fire_watches()` loop).
    pub(crate) fn matches(&self, changed: &[u8], exact: bool) -> bool {
        if exact {
            self.node == changed
        } else {
            path::is_child(changed, &self.node)
        }
    }

    /// Xen's `get_watch_path()`: the path the event reports (`base` is the connection's
    /// `/local/domain/<domid>`).
    pub(crate) fn event_path<'p>(&self, changed: &'p [u8], base: &[u8]) -> &'p [u8] {
        if !self.relative {
            return changed;
        }
        match changed.strip_prefix(base) {
            Some(rest) => rest.strip_prefix(b"/").unwrap_or(rest),
            None => changed,
        }
    }
}

/// Xen's `watch_permitted()` (node events) or `check_perms_special()` (special events, whose
/// permissions are `special`): whether `who` may see `fire`.
pub(crate) fn permitted(who: Who, fire: &Fire, special: Option<&[Perm]>) -> bool {
    let readable = |perms: &[Perm]| perms::rights(who, perms) & perms::READ != 0;
    match &fire.kind {
        FireKind::Special => special.is_some_and(readable),
        FireKind::Node { old, node, parent } => {
            if old.as_deref().is_some_and(readable) {
                return true;
            }
            match node {
                None => false,
                Some(node) => readable(node) || parent.as_deref().is_some_and(readable),
            }
        }
    }
}

/// Payload of an `XS_WATCH_EVENT`: `<path>|<token>|`.
pub(crate) fn event_payload(path: &[u8], token: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(path.len() + token.len() + 2);
    payload.extend_from_slice(path);
    payload.push(0);
    payload.extend_from_slice(token);
    payload.push(0);
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_and_relative_paths() {
        let watch =
            Watch { node: b"/local/domain/3/a".to_vec(), token: b"t".to_vec(), relative: true };
        assert!(watch.matches(b"/local/domain/3/a/b", false));
        assert!(!watch.matches(b"/local/domain/3/a/b", true));
        assert!(!watch.matches(b"/local/domain/3/ab", false));
        assert_eq!(watch.event_path(b"/local/domain/3/a/b", b"/local/domain/3"), b"a/b");
        let absolute = Watch { relative: false, ..watch };
        assert_eq!(
            absolute.event_path(b"/local/domain/3/a", b"/local/domain/3"),
            b"/local/domain/3/a"
        );
    }
}
