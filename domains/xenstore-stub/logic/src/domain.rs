//! Connection-level requests (watches, transactions) and domain management.
//!
//! Exists to encode Xen's handlers for `WATCH`, `UNWATCH`, `RESET_WATCHES`
//! (`tools/xenstore/xenstored_watch.c`), `TRANSACTION_START`/`END`
//! (`xenstored_transaction.c`), `INTRODUCE`, `RELEASE`, `RESUME`, `SET_TARGET`,
//! `GET_DOMAIN_PATH`, `IS_DOMAIN_INTRODUCED` (`xenstored_domain.c`), and the binary's own domain
//! calls for shutdown and death (boot-time population is in `populate`).
//!
//! When a domain goes away (death or `RELEASE`) Xen removes every node it owns, with its
//! subtree, firing watches as for `RM` (`domain_tree_remove()`, and `docs/misc/xenstore.txt`:
//! "nodes owned by that domain will be removed together with all of those nodes' children"),
//! then fires `@releaseDomain`. The `/vm/<uuid>` written for it at boot goes too, as libxl's
//! `libxl__domain_destroy()` removes it.
//!
//! # Invariants
//! - `@introduceDomain` fires when a domain first gets a connection; `@releaseDomain` when a
//!   connected domain is released, dies, or shuts down (once until `RESUME`).
//! - A domain that goes away leaves no connection, no watch, no transaction, no owned node, no
//!   `/vm/<uuid>` of its own, and no effective permission entry (its entries are marked
//!   ignored).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use xenolith_abi::xen::hypercall::{DOMID_FIRST_RESERVED, DOMID_SELF};
use xenolith_abi::xen::xs_wire::XENSTORE_REL_PATH_MAX;

use crate::connection::Connection;
use crate::db::Db;
use crate::errno::Errno;
use crate::ops::{atoi, onearg, rm_node};
use crate::path;
use crate::perms::{self, Perm, Who};
use crate::quota;
use crate::store::{Effect, Reply, Ring, Store, INTRODUCE_DOMAIN, RELEASE_DOMAIN};
use crate::transaction::Transaction;
use crate::watch::Watch;
use crate::wire;
use crate::DomId;

/// A domid argument as Xen's `onearg_domain()` takes it: `atoi`, 0 refused (`EINVAL`), then
/// the domain must be connected (`ENOENT`).
fn connected_domain(store: &Store, payload: &[u8]) -> Result<DomId, Errno> {
    let domid = atoi(onearg(payload).ok_or(Errno::Inval)?);
    if domid == 0 {
        return Err(Errno::Inval);
    }
    DomId::try_from(domid)
        .ok()
        .filter(|domid| store.connections.contains_key(domid))
        .ok_or(Errno::Noent)
}

/// Parses a gfn as Xen's tools print it (decimal; negative or garbage refused).
fn parse_gfn(text: &[u8]) -> Option<u64> {
    let digits = text.trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    digits
        .iter()
        .try_fold(0u64, |value, &byte| value.checked_mul(10)?.checked_add(u64::from(byte - b'0')))
}

impl Store {
    /// `WATCH <wpath>|<token>|`.
    pub(crate) fn watch(&mut self, domid: DomId, who: Who, payload: &[u8]) -> Result<Reply, Errno> {
        let args: Vec<&[u8]> = wire::strings(payload).collect();
        let [name, token] = args[..] else { return Err(Errno::Inval) };
        let (node, relative) = if name.first() == Some(&b'@') {
            if name.len() > XENSTORE_REL_PATH_MAX {
                return Err(Errno::Inval);
            }
            (name.to_vec(), false)
        } else {
            let node = path::canonicalize(domid, name);
            if !path::is_valid(&node, quota::limit(self.quotas.path_max)) {
                return Err(Errno::Inval);
            }
            (node, name.first() != Some(&b'/'))
        };
        let conn = self.connections.get_mut(&domid).ok_or(Errno::Io)?;
        if conn.watches.iter().any(|watch| watch.node == node && watch.token == token) {
            return Err(Errno::Exist);
        }
        if !who.privileged && conn.watches.len() >= quota::limit(self.quotas.watches) {
            return Err(Errno::TooBig);
        }
        let watch = Watch { node, token: token.to_vec(), relative };
        let base = path::domain_path(u32::from(domid));
        let first = (watch.event_path(&watch.node, base.as_bytes()).to_vec(), watch.token.clone());
        conn.watches.push(watch);
        Ok(Reply { payload: b"OK\0".to_vec(), then_event: Some(first) })
    }

    /// `UNWATCH <wpath>|<token>|`.
    pub(crate) fn unwatch(&mut self, domid: DomId, payload: &[u8]) -> Result<Reply, Errno> {
        let args: Vec<&[u8]> = wire::strings(payload).collect();
        let [name, token] = args[..] else { return Err(Errno::Inval) };
        let node = path::canonicalize(domid, name);
        let conn = self.connections.get_mut(&domid).ok_or(Errno::Io)?;
        let index = conn
            .watches
            .iter()
            .position(|watch| watch.node == node && watch.token == token)
            .ok_or(Errno::Noent)?;
        conn.watches.remove(index);
        Ok(Reply::ok())
    }

    /// `RESET_WATCHES |`: drops the caller's watches and transactions.
    pub(crate) fn reset_watches(&mut self, domid: DomId) -> Result<Reply, Errno> {
        let conn = self.connections.get_mut(&domid).ok_or(Errno::Io)?;
        conn.watches.clear();
        conn.transactions.clear();
        Ok(Reply::ok())
    }

    /// `TRANSACTION_START |`: `<transid>|`.
    pub(crate) fn transaction_start(
        &mut self,
        domid: DomId,
        who: Who,
        tx_id: u32,
    ) -> Result<Reply, Errno> {
        if tx_id != 0 {
            return Err(Errno::Busy);
        }
        let conn = self.connections.get_mut(&domid).ok_or(Errno::Io)?;
        if !who.privileged && conn.transactions.len() >= quota::limit(self.quotas.transactions) {
            return Err(Errno::Nospc);
        }
        let id = loop {
            let id = conn.next_transaction_id;
            conn.next_transaction_id = id.wrapping_add(1);
            if id != 0 && !conn.transactions.contains_key(&id) {
                break id;
            }
        };
        conn.transactions.insert(id, Transaction::default());
        let mut reply = id.to_string().into_bytes();
        reply.push(0);
        Ok(Reply::bytes(reply))
    }

    /// `TRANSACTION_END T|` commits, `F|` aborts.
    pub(crate) fn transaction_end(
        &mut self,
        domid: DomId,
        who: Who,
        tx_id: u32,
        payload: &[u8],
    ) -> Result<Reply, Errno> {
        let commit = match onearg(payload) {
            Some(b"T") => true,
            Some(b"F") => false,
            _ => return Err(Errno::Inval),
        };
        if tx_id == 0 {
            return Err(Errno::Noent);
        }
        let conn = self.connections.get_mut(&domid).ok_or(Errno::Io)?;
        let tx = conn.transactions.remove(&tx_id).ok_or(Errno::Noent)?;
        if commit {
            let check = (!who.privileged).then_some(self.quotas.nodes);
            let connections = &self.connections;
            let privileged = |id: DomId| connections.get(&id).is_some_and(|conn| conn.privileged);
            let fires = tx.commit(&mut self.tree, &mut self.generation, check, privileged)?;
            self.deliver(&fires);
        }
        Ok(Reply::ok())
    }

    /// `INTRODUCE <domid>|<gfn>|<evtchn>|?`.
    pub(crate) fn introduce(&mut self, caller: DomId, payload: &[u8]) -> Result<Reply, Errno> {
        let args: Vec<&[u8]> = wire::strings(payload).take(3).collect();
        let [domid, gfn, port] = args[..] else { return Err(Errno::Inval) };
        let port = u32::try_from(atoi(port)).ok().filter(|&port| port > 0).ok_or(Errno::Inval)?;
        let domid = DomId::try_from(atoi(domid))
            .ok()
            .filter(|&domid| domid < DOMID_FIRST_RESERVED && domid != caller)
            .ok_or(Errno::Inval)?;
        let ring = Ring { gfn: parse_gfn(gfn).ok_or(Errno::Inval)?, port };
        match self.connections.get_mut(&domid) {
            Some(conn) => {
                conn.reset();
                conn.ignored = false;
                conn.transport = Default::default();
                conn.ring = Some(ring);
            }
            None => {
                self.connections.insert(domid, Connection::new(false, Some(ring)));
                self.fire_special(INTRODUCE_DOMAIN);
            }
        }
        self.effects.push(Effect::Introduce { domid, ring });
        Ok(Reply::ok())
    }

    /// `RELEASE <domid>|`.
    pub(crate) fn release(&mut self, caller: DomId, payload: &[u8]) -> Result<Reply, Errno> {
        let domid = connected_domain(self, payload)?;
        if domid == caller || self.connections.get(&domid).is_some_and(|conn| conn.privileged) {
            return Err(Errno::Inval);
        }
        self.domain_gone(domid);
        self.effects.push(Effect::Release { domid });
        Ok(Reply::ok())
    }

    /// `RESUME <domid>|`.
    pub(crate) fn resume(&mut self, payload: &[u8]) -> Result<Reply, Errno> {
        let domid = connected_domain(self, payload)?;
        if let Some(conn) = self.connections.get_mut(&domid) {
            conn.shutdown = false;
        }
        self.effects.push(Effect::Resume { domid });
        Ok(Reply::ok())
    }

    /// `SET_TARGET <domid>|<tdomid>|`.
    pub(crate) fn set_target(&mut self, payload: &[u8]) -> Result<Reply, Errno> {
        let args: Vec<&[u8]> = wire::strings(payload).take(2).collect();
        let [domid, target] = args[..] else { return Err(Errno::Inval) };
        let lookup = |text: &[u8]| {
            DomId::try_from(atoi(text))
                .ok()
                .filter(|id| self.connections.contains_key(id))
                .ok_or(Errno::Noent)
        };
        let (domid, target) = (lookup(domid)?, lookup(target)?);
        if let Some(conn) = self.connections.get_mut(&domid) {
            conn.target = Some(target);
        }
        Ok(Reply::ok())
    }

    /// `GET_DOMAIN_PATH <domid>|`: `/local/domain/<domid>|` (any number, as Xen).
    pub(crate) fn get_domain_path(&mut self, payload: &[u8]) -> Result<Reply, Errno> {
        let domid = atoi(onearg(payload).ok_or(Errno::Inval)?) as u32;
        let mut reply = path::domain_path(domid).into_bytes();
        reply.push(0);
        Ok(Reply::bytes(reply))
    }

    /// `IS_DOMAIN_INTRODUCED <domid>|`: `T|` or `F|`.
    pub(crate) fn is_domain_introduced(&mut self, payload: &[u8]) -> Result<Reply, Errno> {
        let domid = atoi(onearg(payload).ok_or(Errno::Inval)?);
        let known = domid == i32::from(DOMID_SELF)
            || DomId::try_from(domid).is_ok_and(|id| self.connections.contains_key(&id));
        Ok(Reply::bytes(if known { b"T\0".to_vec() } else { b"F\0".to_vec() }))
    }

    /// The binary saw `domid` shut down or crash: fires `@releaseDomain` once (until `RESUME`),
    /// as Xen's `check_domains()` does.
    pub fn domain_shutdown(&mut self, domid: DomId) {
        let Some(conn) = self.connections.get_mut(&domid) else { return };
        if conn.shutdown {
            return;
        }
        conn.shutdown = true;
        self.fire_special(RELEASE_DOMAIN);
    }

    /// The binary saw the core restart `domid` under its id by the domain's restart policy (a
    /// service domain's new incarnation; Xenolith's, Xen has no such thing): its connection
    /// goes as at death (watches, transactions, queued output) and so does its `/vm/<uuid>`
    /// (the new incarnation gets its own when it is added again), but the nodes it owns stay,
    /// as the state it serves others through (a backend's directories) outlives an
    /// incarnation; no `@releaseDomain` fires, as the domain lives on.
    pub fn domain_restarted(&mut self, domid: DomId) {
        if let Some(uuid) = self.connections.remove(&domid).and_then(|conn| conn.vm) {
            self.remove_subtree(&uuid.vm_path());
        }
    }

    /// The binary saw `domid` die (or `RELEASE` named it): drops its connection (watches,
    /// transactions, queued output), removes the nodes it owns with their subtrees and its
    /// `/vm/<uuid>` (firing watches), marks its permission entries ignored, and fires
    /// `@releaseDomain` if it was connected.
    pub fn domain_gone(&mut self, domid: DomId) {
        let gone = self.connections.remove(&domid);
        let was_connected = gone.is_some();
        for conn in self.connections.values_mut() {
            if conn.target == Some(domid) {
                conn.target = None;
            }
        }
        self.remove_owned_nodes(domid);
        if let Some(uuid) = gone.and_then(|conn| conn.vm) {
            self.remove_subtree(&uuid.vm_path());
        }
        let ignore = |perms: &mut Vec<Perm>| {
            for entry in perms.iter_mut().skip(1).filter(|entry| entry.id == domid) {
                entry.bits |= perms::IGNORE;
            }
        };
        self.tree.perms_mut().for_each(ignore);
        for conn in self.connections.values_mut() {
            for tx in conn.transactions.values_mut() {
                for entry in tx.accessed.values_mut() {
                    if let Some(node) = entry.node.as_mut() {
                        ignore(&mut node.perms);
                    }
                }
            }
        }
        // Xen's remove_domid_from_perm() for the special nodes.
        for special in [&mut self.introduce_perms, &mut self.release_perms] {
            if let Some(owner) = special.first_mut().filter(|owner| owner.id == domid) {
                owner.id = self.root_owner;
            }
            let mut index = 0;
            special.retain(|entry| {
                index += 1;
                index == 1 || entry.id != domid
            });
        }
        if was_connected {
            self.fire_special(RELEASE_DOMAIN);
        }
    }

    /// Xen's `domain_tree_remove()`: walks the tree from `/` (parents first) and removes every
    /// node `domid` owns, with its subtree.
    fn remove_owned_nodes(&mut self, domid: DomId) {
        if !self.tree.owns_any(domid) {
            return;
        }
        let mut doomed: Vec<String> = Vec::new();
        let mut stack: Vec<String> = alloc::vec![String::from("/")];
        while let Some(node_path) = stack.pop() {
            let Some(node) = self.tree.get(&node_path) else { continue };
            if node_path != "/" && node.owner() == Some(domid) {
                doomed.push(node_path);
                continue;
            }
            let children: Vec<String> =
                node.child_names().map(|name| path::child(&node_path, name)).collect();
            stack.extend(children.into_iter().rev());
        }
        for node_path in doomed {
            self.remove_subtree(&node_path);
        }
    }

    /// Removes `node_path` with its subtree, if it exists, firing watches as `RM` does.
    fn remove_subtree(&mut self, node_path: &str) {
        if self.tree.get(node_path).is_none() {
            return;
        }
        let mut db = Db::new(&mut self.tree, None, &mut self.generation, None);
        // A subtree that cannot be removed (an inconsistent tree) is left in place.
        let _ = rm_node(&mut db, node_path);
        let fires = core::mem::take(&mut db.fires);
        self.deliver(&fires);
    }
}
