//! Node access for one request: the committed tree, or a transaction's view of it.
//!
//! Exists so that handlers are written once, as Xen's are (`read_node()`, `write_node()`,
//! `access_node()`, `fire_watches()` in `tools/xenstore/xenstored_*.c`), whether or not the
//! request runs in a transaction: [`Db`] records first accesses in the transaction, enforces the
//! `transaction-nodes` quota, hands out fresh generation counts, and either collects watch events
//! (outside a transaction) or queues them in the transaction until commit.
//!
//! # Invariants
//! - Outside a transaction every change goes straight to the tree (which keeps owner counts).
//! - Inside one, the tree is never changed; only the transaction is.
//! - A [`Fire`] carries the permissions Xen would look at when it fires (the node's, its
//!   parent's, and for `SET_PERMS` the old ones), taken at the moment Xen fires, so delivering it
//!   later gives the same answer.

use alloc::vec::Vec;

use crate::errno::Errno;
use crate::path;
use crate::perms::Perm;
use crate::transaction::Transaction;
use crate::tree::{Node, Tree};

/// What decides whether a watcher may see an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum FireKind {
    /// `@introduceDomain` / `@releaseDomain`: the special node's permissions decide.
    Special,
    /// A node event (Xen's `watch_permitted()`): readable old permissions, node or parent.
    Node {
        /// Permissions before a `SET_PERMS` or at a transaction's first access.
        old: Option<Vec<Perm>>,
        /// The node's permissions (`None`: it is gone).
        node: Option<Vec<Perm>>,
        /// The parent's permissions.
        parent: Option<Vec<Perm>>,
    },
}

/// One watch event to deliver to every matching watch (Xen's `fire_watches()` arguments).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fire {
    /// The changed path, or the special event's name.
    pub path: Vec<u8>,
    /// Only watches on exactly this path match (children of a removed subtree, special
    /// events); otherwise watches on the path or above it.
    pub exact: bool,
    /// Who may see it.
    pub kind: FireKind,
}

/// The store as one request sees it.
pub(crate) struct Db<'a> {
    /// The committed tree.
    pub tree: &'a mut Tree,
    /// The request's transaction, if any.
    pub tx: Option<&'a mut Transaction>,
    /// The global generation counter.
    pub generation: &'a mut u64,
    /// `transaction-nodes` for this connection (`None`: privileged, unlimited).
    pub tx_limit: Option<usize>,
    /// Events to deliver after the request (outside a transaction).
    pub fires: Vec<Fire>,
}

impl<'a> Db<'a> {
    /// A view of `tree`, through `tx` if given.
    pub(crate) fn new(
        tree: &'a mut Tree,
        tx: Option<&'a mut Transaction>,
        generation: &'a mut u64,
        tx_limit: Option<usize>,
    ) -> Self {
        Self { tree, tx, generation, tx_limit, fires: Vec::new() }
    }

    /// Whether the request runs in a transaction.
    pub(crate) fn in_transaction(&self) -> bool {
        self.tx.is_some()
    }

    /// Xen's `fail_transaction()`.
    pub(crate) fn fail_transaction(&mut self) {
        if let Some(tx) = self.tx.as_deref_mut() {
            tx.failed = true;
        }
    }

    /// Xen's `ta_node_created()`.
    pub(crate) fn note_created(&mut self) {
        if let Some(tx) = self.tx.as_deref_mut() {
            tx.node_created = true;
        }
    }

    /// Makes sure the transaction has an entry for `path` (`read`: recorded as a read, so
    /// commit checks it). Fails with `ENOSPC` past `transaction-nodes`, dooming the transaction.
    fn touch(&mut self, path: &str, read: bool) -> Result<(), Errno> {
        let Some(tx) = self.tx.as_deref_mut() else { return Ok(()) };
        if tx.accessed.contains_key(path) {
            return Ok(());
        }
        if self.tx_limit.is_some_and(|limit| tx.accessed.len() >= limit) {
            tx.failed = true;
            return Err(Errno::Nospc);
        }
        tx.record(path, self.tree.get(path), read);
        Ok(())
    }

    /// Xen's `read_node()`: the node at `path` in this request's view (`Ok(None)`: absent).
    pub(crate) fn read(&mut self, path: &str) -> Result<Option<&Node>, Errno> {
        self.touch(path, true)?;
        Ok(match self.tx.as_deref() {
            Some(tx) => tx.accessed.get(path).and_then(|entry| entry.node.as_ref()),
            None => self.tree.get(path),
        })
    }

    /// Xen's `write_node()` after its checks: stores `node` with a fresh generation.
    pub(crate) fn write(&mut self, path: &str, mut node: Node) -> Result<(), Errno> {
        self.touch(path, false)?;
        *self.generation = self.generation.wrapping_add(1);
        node.generation = *self.generation;
        match self.tx.as_deref_mut() {
            Some(tx) => {
                if let Some(entry) = tx.accessed.get_mut(path) {
                    entry.modified = true;
                    entry.node = Some(node);
                }
            }
            None => self.tree.insert(path, node),
        }
        Ok(())
    }

    /// Xen's `do_tdb_delete()` through `access_node(NODE_ACCESS_DELETE)`.
    pub(crate) fn delete(&mut self, path: &str) -> Result<(), Errno> {
        self.touch(path, false)?;
        *self.generation = self.generation.wrapping_add(1);
        match self.tx.as_deref_mut() {
            Some(tx) => {
                if let Some(entry) = tx.accessed.get_mut(path) {
                    entry.modified = true;
                    entry.node = None;
                }
            }
            None => {
                self.tree.remove(path);
            }
        }
        Ok(())
    }

    /// Xen's `fire_watches()` for a node: queued in the transaction, or collected with the
    /// permissions that decide who sees it (`node`: the node's, `None` to look it up; `old`:
    /// permissions before a change).
    pub(crate) fn fire(
        &mut self,
        path: &str,
        exact: bool,
        node: Option<Vec<Perm>>,
        old: Option<Vec<Perm>>,
    ) {
        if let Some(tx) = self.tx.as_deref_mut() {
            tx.queue_fire(path, exact);
            return;
        }
        let node = node.or_else(|| self.tree.get(path).map(|node| node.perms.clone()));
        let parent = self.tree.get(path::parent(path)).map(|node| node.perms.clone());
        self.fires.push(Fire {
            path: path.as_bytes().to_vec(),
            exact,
            kind: FireKind::Node { old, node, parent },
        });
    }
}
