//! Transactions: a private view of the nodes a transaction touched, committed all at once unless
//! one of them changed meanwhile.
//!
//! Exists to give Xen's optimistic transactions (`tools/xenstore/xenstored_transaction.c`,
//! `docs/misc/xenstore.txt` "Transactions") one home. As in Xen, the first access to a node
//! copies it into the transaction (with its generation count, or "absent"); later accesses see
//! the copy. `TRANSACTION_END` with `T` fails with `EAGAIN` if any node the transaction read has
//! a different generation now (or appeared or vanished), else writes every modified node with a
//! fresh generation and fires the watch events queued while the transaction ran.
//!
//! Complexity: the first access to a node is O(log k) (k nodes touched); commit is O(k log n).
//!
//! # Invariants
//! - Every node a transaction writes or deletes was read by it first (the handlers read before
//!   they write), so its entry has `check_generation` and a conflict on it is detected.
//! - A `failed` transaction cannot commit (Xen's `fail_transaction()`: `ENOMEM`); a `doomed` one
//!   (the store restarted under it) answers `EAGAIN` to everything.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use crate::db::{Fire, FireKind};
use crate::errno::Errno;
use crate::path;
use crate::perms::Perm;
use crate::tree::{Node, Tree};
use crate::DomId;

/// What a transaction knows about one node it touched (Xen's `struct accessed_node`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Accessed {
    /// Order of first access (commit writes and fires in this order).
    pub seq: u32,
    /// Generation at first read; `None`: the node did not exist (Xen's `NO_GENERATION`).
    pub generation: Option<u64>,
    /// Whether commit must compare `generation` (the first access was a read).
    pub check_generation: bool,
    /// Whether the transaction wrote or deleted the node.
    pub modified: bool,
    /// The transaction's view: `None` if the node does not exist in it.
    pub node: Option<Node>,
    /// Permissions at first access, for watch permission checks at commit.
    pub old_perms: Option<Vec<Perm>>,
    /// A queued watch event: `Some(exact)`.
    pub fire: Option<bool>,
}

/// One open transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Transaction {
    /// The nodes touched, by path.
    pub accessed: BTreeMap<String, Accessed>,
    /// Next `Accessed::seq`.
    pub next_seq: u32,
    /// A node was created (commit then checks the `nodes` quota, as Xen's `node_created`).
    pub node_created: bool,
    /// An operation failed half-way; commit answers `ENOMEM` (Xen's `trans->fail`).
    pub failed: bool,
    /// The store restarted while the transaction was open: everything answers `EAGAIN`.
    pub doomed: bool,
}

impl Transaction {
    /// Records the first access to `path`, whose committed state is `node`.
    pub(crate) fn record(&mut self, path: &str, node: Option<&Node>, read: bool) -> &mut Accessed {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.accessed.entry(String::from(path)).or_insert_with(|| Accessed {
            seq,
            generation: node.filter(|_| read).map(|node| node.generation),
            check_generation: read,
            modified: false,
            node: node.cloned(),
            old_perms: node.map(|node| node.perms.clone()),
            fire: None,
        })
    }

    /// Xen's `queue_watches()`: remembers an event for commit; an unknown path fails the
    /// transaction.
    pub(crate) fn queue_fire(&mut self, path: &str, exact: bool) {
        match self.accessed.get_mut(path) {
            Some(entry) => {
                entry.fire = Some(match entry.fire {
                    None => exact,
                    Some(queued) => queued && exact,
                })
            }
            None => self.failed = true,
        }
    }

    /// Xen's `do_transaction_end()` with `T`: checks, then applies the transaction to `tree`.
    ///
    /// `check_nodes` is the `nodes` quota to enforce (`None` for a privileged committer or if no
    /// node was created), with `privileged_domain` telling which owners are exempt. Returns the
    /// watch events to deliver.
    pub(crate) fn commit(
        self,
        tree: &mut Tree,
        generation: &mut u64,
        check_nodes: Option<u32>,
        privileged_domain: impl Fn(DomId) -> bool,
    ) -> Result<Vec<Fire>, Errno> {
        if self.failed {
            return Err(Errno::Nomem);
        }
        if let Some(limit) = check_nodes.filter(|_| self.node_created) {
            let mut delta: BTreeMap<DomId, i64> = BTreeMap::new();
            for (path, entry) in self.accessed.iter().filter(|(_, entry)| entry.modified) {
                if let Some(owner) = tree.get(path).and_then(Node::owner) {
                    *delta.entry(owner).or_insert(0) -= 1;
                }
                if let Some(owner) = entry.node.as_ref().and_then(Node::owner) {
                    *delta.entry(owner).or_insert(0) += 1;
                }
            }
            for (&domid, &change) in &delta {
                let after = i64::from(tree.owned(domid)) + change;
                if change > 0 && !privileged_domain(domid) && after > i64::from(limit) {
                    return Err(Errno::Nospc);
                }
            }
        }
        for (path, entry) in &self.accessed {
            if entry.check_generation
                && tree.get(path).map(|node| node.generation) != entry.generation
            {
                return Err(Errno::Again);
            }
        }
        let mut order: Vec<(String, Accessed)> =
            self.accessed.into_iter().filter(|(_, entry)| entry.modified).collect();
        order.sort_by_key(|(_, entry)| entry.seq);
        let mut fires = Vec::new();
        for (path, entry) in order {
            match entry.node {
                Some(mut node) => {
                    *generation = generation.wrapping_add(1);
                    node.generation = *generation;
                    tree.insert(&path, node);
                }
                None => {
                    tree.remove(&path);
                }
            }
            if let Some(exact) = entry.fire {
                let node = tree.get(&path).map(|node| node.perms.clone());
                let parent = tree.get(path::parent(&path)).map(|node| node.perms.clone());
                fires.push(Fire {
                    path: path.into_bytes(),
                    exact,
                    kind: FireKind::Node { old: entry.old_perms, node, parent },
                });
            }
        }
        Ok(fires)
    }
}
