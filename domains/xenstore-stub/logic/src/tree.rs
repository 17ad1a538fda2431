//! The committed tree: nodes by path, and how many nodes each domain owns.
//!
//! Exists to keep the node map and the per-owner counts (Xen's `nbentry`, the `nodes` quota) in
//! one place, so no code path can change one without the other. Nodes are kept as Xen keeps its
//! TDB records (`struct xs_tdb_record_hdr`, `tools/xenstore/utils.h`): value, permissions, and the
//! children as NUL-terminated names in creation order, so `DIRECTORY` is the record's bytes and
//! `DIRECTORY_PART` offsets mean what they mean in Xen.
//!
//! Complexity: lookups, inserts and removals are O(log n) path comparisons (a `BTreeMap`);
//! adding a child is O(1) amortized, removing one O(children bytes).
//!
//! # Invariants
//! - `owned[d]` is the number of nodes whose first permission names `d` (no zero entries).
//! - The tree holds `/` (the snapshot decoder checks this and the parent/child links).

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::perms::Perm;
use crate::DomId;

/// Bytes of Xen's record header: `u64` generation and three `u32` lengths, padded to 8.
const RECORD_HEADER: usize = 24;
/// Bytes of one `struct xs_permissions` in a record.
const RECORD_PERM: usize = 8;

/// One node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Node {
    /// The value (binary; usually text without a NUL).
    pub data: Vec<u8>,
    /// Permissions; the first entry is the owner.
    pub perms: Vec<Perm>,
    /// Children's names, each NUL-terminated, in creation order.
    pub children: Vec<u8>,
    /// The global generation count when the node was last written.
    pub generation: u64,
}

impl Node {
    /// An empty node with `perms`.
    pub(crate) fn new(perms: Vec<Perm>) -> Self {
        Self { data: Vec::new(), perms, children: Vec::new(), generation: 0 }
    }

    /// The owner (first permission entry).
    pub(crate) fn owner(&self) -> Option<DomId> {
        self.perms.first().map(|perm| perm.id)
    }

    /// Xen's record size, which the `node-size` quota limits (`write_node_raw()`).
    pub(crate) fn record_size(&self) -> usize {
        RECORD_HEADER + RECORD_PERM * self.perms.len() + self.data.len() + self.children.len()
    }

    /// The children's names, in order.
    pub(crate) fn child_names(&self) -> impl Iterator<Item = &[u8]> {
        let body = self.children.strip_suffix(&[0]).unwrap_or(&self.children);
        body.split(|&byte| byte == 0).filter(|_| !self.children.is_empty())
    }

    /// Xen's `add_child()`: appends `name`.
    pub(crate) fn add_child(&mut self, name: &str) {
        self.children.extend_from_slice(name.as_bytes());
        self.children.push(0);
    }

    /// Xen's `delete_child()`: removes `name`; false if it was not listed.
    pub(crate) fn remove_child(&mut self, name: &str) -> bool {
        let mut offset = 0;
        let mut found = None;
        for child in self.child_names() {
            if child == name.as_bytes() {
                found = Some(offset..offset + child.len() + 1);
                break;
            }
            offset += child.len() + 1;
        }
        match found {
            Some(range) => {
                self.children.drain(range);
                true
            }
            None => false,
        }
    }
}

/// The committed nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tree {
    nodes: BTreeMap<String, Node>,
    owned: BTreeMap<DomId, u32>,
}

impl Tree {
    /// Xen's initial tree (`setup_structure()`): `/`, `/tool` and `/tool/xenstored`, owned by
    /// `owner` with no rights for others.
    pub(crate) fn new(owner: DomId) -> Self {
        let mut tree = Self { nodes: BTreeMap::new(), owned: BTreeMap::new() };
        let perms = alloc::vec![Perm::new(owner, 0)];
        let mut root = Node::new(perms.clone());
        root.add_child("tool");
        let mut tool = Node::new(perms.clone());
        tool.add_child("xenstored");
        tree.insert("/", root);
        tree.insert("/tool", tool);
        tree.insert("/tool/xenstored", Node::new(perms));
        tree
    }

    /// An empty tree (for the snapshot decoder, which adds every node).
    pub(crate) fn empty() -> Self {
        Self { nodes: BTreeMap::new(), owned: BTreeMap::new() }
    }

    /// The node at `path`.
    pub(crate) fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Stores `node` at `path`, replacing what was there.
    pub(crate) fn insert(&mut self, path: &str, node: Node) {
        let new_owner = node.owner();
        let old_owner = match self.nodes.get_mut(path) {
            Some(slot) => core::mem::replace(slot, node).owner(),
            None => {
                self.nodes.insert(path.to_string(), node);
                None
            }
        };
        self.count(old_owner, -1);
        self.count(new_owner, 1);
    }

    /// Removes the node at `path`.
    pub(crate) fn remove(&mut self, path: &str) -> Option<Node> {
        let node = self.nodes.remove(path)?;
        self.count(node.owner(), -1);
        Some(node)
    }

    fn count(&mut self, owner: Option<DomId>, delta: i32) {
        let Some(owner) = owner else { return };
        let count = self.owned.entry(owner).or_insert(0);
        *count = count.saturating_add_signed(delta);
        if *count == 0 {
            self.owned.remove(&owner);
        }
    }

    /// Nodes owned by `domid`.
    pub(crate) fn owned(&self, domid: DomId) -> u32 {
        self.owned.get(&domid).copied().unwrap_or(0)
    }

    /// Whether `domid` owns any node.
    pub(crate) fn owns_any(&self, domid: DomId) -> bool {
        self.owned.contains_key(&domid)
    }

    /// Number of nodes.
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// All nodes, in path order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &Node)> {
        self.nodes.iter()
    }

    /// Checks the invariants: `/` exists, paths are well-formed, permission lists non-empty,
    /// children lists well-formed without duplicates, every listed child exists, and every node
    /// but `/` is listed by its parent (Xen's `check_store()`, without the repairs). Returns
    /// what is wrong.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        if !self.nodes.contains_key("/") {
            return Err("the tree has no root");
        }
        let mut listed: usize = 0;
        let mut names: Vec<&[u8]> = Vec::new();
        for (path, node) in &self.nodes {
            if !crate::path::is_valid(path.as_bytes(), usize::MAX / 2) {
                return Err("a node has an invalid path");
            }
            if node.perms.is_empty() {
                return Err("a node has no permissions");
            }
            if !node.children.is_empty() && node.children.last() != Some(&0) {
                return Err("a children list is not NUL-terminated");
            }
            names.clear();
            names.extend(node.child_names());
            for name in &names {
                if name.is_empty()
                    || !name.iter().all(|&b| b.is_ascii_alphanumeric() || b"-_@".contains(&b))
                {
                    return Err("a children list holds an invalid name");
                }
                if !self.nodes.contains_key(&crate::path::child(path, name)) {
                    return Err("a listed child does not exist");
                }
            }
            names.sort_unstable();
            if names.windows(2).any(|pair| pair[0] == pair[1]) {
                return Err("a children list names a child twice");
            }
            listed += names.len();
        }
        if listed + 1 != self.nodes.len() {
            return Err("a node is not listed by its parent");
        }
        Ok(())
    }

    /// Recomputes the owner counts (after the snapshot decoder filled the map).
    pub(crate) fn recount(&mut self) {
        self.owned.clear();
        let owners: Vec<Option<DomId>> = self.nodes.values().map(Node::owner).collect();
        for owner in owners {
            self.count(owner, 1);
        }
    }

    /// Adds a node without touching the counts (snapshot decoder; call [`Tree::recount`]).
    pub(crate) fn insert_raw(&mut self, path: String, node: Node) -> bool {
        self.nodes.insert(path, node).is_none()
    }

    /// All nodes, mutably (permissions only may change through this: owners stay).
    pub(crate) fn perms_mut(&mut self) -> impl Iterator<Item = &mut Vec<Perm>> {
        self.nodes.values_mut().map(|node| &mut node.perms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_and_counts() {
        let mut tree = Tree::new(0);
        assert_eq!(tree.owned(0), 3);
        let mut node = Node::new(alloc::vec![Perm::new(4, 0)]);
        node.add_child("a");
        node.add_child("bb");
        node.add_child("c");
        assert_eq!(node.child_names().collect::<Vec<_>>(), [&b"a"[..], b"bb", b"c"]);
        assert!(node.remove_child("bb"));
        assert!(!node.remove_child("b"));
        assert_eq!(node.children, b"a\0c\0");
        tree.insert("/x", node.clone());
        assert_eq!(tree.owned(4), 1);
        node.perms[0].id = 5;
        tree.insert("/x", node);
        assert_eq!((tree.owned(4), tree.owned(5)), (0, 1));
        assert!(!tree.owns_any(4));
        tree.remove("/x");
        assert_eq!(tree.owned(5), 0);
        assert_eq!(Node::new(alloc::vec![]).child_names().count(), 0);
    }
}
