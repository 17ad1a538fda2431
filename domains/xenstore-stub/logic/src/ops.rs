//! The node requests: `READ`, `WRITE`, `MKDIR`, `RM`, `DIRECTORY`, `DIRECTORY_PART`,
//! `GET_PERMS`, `SET_PERMS`.
//!
//! Exists to encode Xen's handlers for them (`do_read()`, `do_write()`, `do_mkdir()`, `do_rm()`,
//! `send_directory()`, `send_directory_part()`, `do_get_perms()`, `do_set_perms()` in
//! `tools/xenstore/xenstored_core.c`), including the way Xen hides a node's existence: a request
//! that fails on a node answers `ENOENT` only if the nearest existing ancestor grants the right
//! asked for, and `EACCES` otherwise (`errno_from_parents()`).
//!
//! # Invariants
//! - A handler validates everything before its first change; only Xen's own half-way failures
//!   (a quota hit while writing inside a transaction) doom the transaction instead.
//! - New nodes inherit their parent's permissions, with the owner replaced by the creator when
//!   it is unprivileged (`construct_node()`); intermediate nodes are created the same way.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use xenolith_abi::xen::xs_wire::{msg, XENSTORE_PAYLOAD_MAX};

use crate::db::Db;
use crate::errno::Errno;
use crate::path;
use crate::perms::{self, Perm, Who};
use crate::quota::{self, Quotas};
use crate::store::{Reply, Store, INTRODUCE_DOMAIN, RELEASE_DOMAIN};
use crate::tree::Node;
use crate::wire;
use crate::DomId;

/// Xen's `onearg()`: the payload is exactly one NUL-terminated string.
pub(crate) fn onearg(payload: &[u8]) -> Option<&[u8]> {
    match payload.iter().position(|&byte| byte == 0) {
        Some(nul) if nul + 1 == payload.len() => payload.get(..nul),
        _ => None,
    }
}

/// C's `atoi()`: optional white space and sign, then decimal digits up to the first other byte;
/// 0 if none. Overflow wraps (C leaves it undefined).
pub(crate) fn atoi(text: &[u8]) -> i32 {
    let mut rest = text;
    while let [first, tail @ ..] = rest {
        if matches!(first, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
            rest = tail;
        } else {
            break;
        }
    }
    let negative = rest.first() == Some(&b'-');
    if matches!(rest.first(), Some(b'-' | b'+')) {
        rest = rest.get(1..).unwrap_or(&[]);
    }
    let mut value: i32 = 0;
    for &byte in rest.iter().take_while(|byte| byte.is_ascii_digit()) {
        value = value.wrapping_mul(10).wrapping_add(i32::from(byte - b'0'));
    }
    if negative {
        value.wrapping_neg()
    } else {
        value
    }
}

/// Canonicalizes and checks a request's path (`None`: the payload had no valid argument).
pub(crate) fn canonical(who: Who, name: Option<&[u8]>, quotas: &Quotas) -> Result<String, Errno> {
    let name = name.ok_or(Errno::Inval)?;
    let path = path::canonicalize(who.id, name);
    path::valid_str(&path, quota::limit(quotas.path_max)).map(String::from).ok_or(Errno::Inval)
}

/// Xen's `ask_parents()` + `errno_from_parents()`: `errnum` if the nearest existing ancestor
/// grants any of `perm`, else `EACCES`.
fn errno_from_parents(db: &mut Db<'_>, who: Who, path: &str, errnum: Errno, perm: u8) -> Errno {
    let mut name = path;
    loop {
        name = path::parent(name);
        match db.read(name) {
            Err(errno) => return errno,
            Ok(Some(node)) => {
                return if perms::rights(who, &node.perms) & perm != 0 {
                    errnum
                } else {
                    Errno::Acces
                };
            }
            Ok(None) if name == "/" => return Errno::Acces,
            Ok(None) => {}
        }
    }
}

/// Xen's `get_node()`: the node at `path` if `who` has all of `perm` on it.
fn get_node<'d>(db: &'d mut Db<'_>, who: Who, path: &str, perm: u8) -> Result<&'d Node, Errno> {
    let errnum = match db.read(path)? {
        Some(node) if perms::rights(who, &node.perms) & perm == perm => None,
        Some(_) => Some(Errno::Acces),
        None => Some(Errno::Noent),
    };
    match errnum {
        None => db.read(path)?.ok_or(Errno::Io),
        Some(errnum) => Err(errno_from_parents(db, who, path, errnum, perm)),
    }
}

/// Xen's `write_node()` for an existing node: the `node-size` quota, then the write.
fn write_node(
    db: &mut Db<'_>,
    who: Who,
    quotas: &Quotas,
    path: &str,
    node: Node,
) -> Result<(), Errno> {
    if !who.privileged && node.record_size() >= quota::limit(quotas.node_size) {
        db.fail_transaction();
        return Err(Errno::Nospc);
    }
    db.write(path, node)
}

/// Xen's `create_node()`: creates `path` with `data`, and every missing ancestor, all or
/// nothing.
fn create_node(
    db: &mut Db<'_>,
    who: Who,
    quotas: &Quotas,
    owned: u32,
    path: &str,
    data: Vec<u8>,
) -> Result<(), Errno> {
    // Walk up to the nearest existing node (construct_node()).
    let mut missing: Vec<&str> = alloc::vec![path];
    let mut parent_path = path::parent(path);
    loop {
        if db.read(parent_path)?.is_some() {
            break;
        }
        if parent_path == "/" {
            return Err(Errno::Noent);
        }
        missing.push(parent_path);
        parent_path = path::parent(parent_path);
    }
    let mut parent = db.read(parent_path)?.cloned().ok_or(Errno::Io)?;
    // Build top-down; `writes` ends up bottom-up after the reverse below.
    let mut writes: Vec<(&str, Node, bool)> = Vec::with_capacity(missing.len() + 1);
    let mut parent_is_new = false;
    for &name in missing.iter().rev() {
        parent.add_child(path::basename(name));
        let mut node_perms = parent.perms.clone();
        if !who.privileged {
            if let Some(owner) = node_perms.first_mut() {
                owner.id = who.id;
            }
        }
        let child = Node::new(node_perms);
        writes.push((parent_path, core::mem::replace(&mut parent, child), parent_is_new));
        parent_path = name;
        parent_is_new = true;
    }
    parent.data = data;
    writes.push((path, parent, true));
    writes.reverse();
    db.note_created();
    // Check bottom-up as Xen writes (entry quota, then node size, per node).
    let in_tx = db.in_transaction();
    let mut created: u32 = 0;
    for (index, (_, node, new)) in writes.iter().enumerate() {
        if *new && !who.privileged {
            let count = if in_tx { owned } else { owned.saturating_add(created) };
            if count >= quotas.nodes {
                if index > 0 {
                    db.fail_transaction();
                }
                return Err(Errno::Nospc);
            }
            created += 1;
        }
        if !who.privileged && node.record_size() >= quota::limit(quotas.node_size) {
            db.fail_transaction();
            return Err(Errno::Nospc);
        }
    }
    for (name, node, _) in writes {
        db.write(name, node)?;
    }
    Ok(())
}

/// `WRITE <path>|<value|>`.
fn write(
    db: &mut Db<'_>,
    who: Who,
    quotas: &Quotas,
    owned: u32,
    payload: &[u8],
) -> Result<Reply, Errno> {
    let nul = payload.iter().position(|&byte| byte == 0).ok_or(Errno::Inval)?;
    let name = payload.get(..nul).ok_or(Errno::Inval)?;
    let value = payload.get(nul + 1..).unwrap_or(&[]);
    let path = canonical(who, Some(name), quotas)?;
    match get_node(db, who, &path, perms::WRITE) {
        Ok(node) => {
            let mut node = node.clone();
            node.data = value.to_vec();
            write_node(db, who, quotas, &path, node)?;
        }
        Err(Errno::Noent) => create_node(db, who, quotas, owned, &path, value.to_vec())?,
        Err(errno) => return Err(errno),
    }
    db.fire(&path, false, None, None);
    Ok(Reply::ok())
}

/// `MKDIR <path>|`.
fn mkdir(
    db: &mut Db<'_>,
    who: Who,
    quotas: &Quotas,
    owned: u32,
    payload: &[u8],
) -> Result<Reply, Errno> {
    let path = canonical(who, onearg(payload), quotas)?;
    match get_node(db, who, &path, perms::WRITE) {
        Ok(_) => {}
        Err(Errno::Noent) => {
            create_node(db, who, quotas, owned, &path, Vec::new())?;
            db.fire(&path, false, None, None);
        }
        Err(errno) => return Err(errno),
    }
    Ok(Reply::ok())
}

/// Xen's `rm_node()`: removes `path` and its subtree (children first), firing exact events for
/// the children and a normal one for `path`, then unlinks it from its parent.
pub(crate) fn rm_node(db: &mut Db<'_>, path: &str) -> Result<(), Errno> {
    let parent_path = path::parent(path);
    let mut parent = match db.read(parent_path)? {
        Some(parent) => parent.clone(),
        None => return Err(Errno::Inval),
    };
    // Collect the subtree, children before parents (walk_node_tree() with an exit function).
    struct Frame {
        path: String,
        children: Vec<u8>,
        offset: usize,
        perms: Vec<Perm>,
    }
    let root = db.read(path)?.cloned().ok_or(Errno::Inval)?;
    let mut stack = alloc::vec![Frame {
        path: String::from(path),
        children: root.children,
        offset: 0,
        perms: root.perms,
    }];
    let mut removed: Vec<(String, Vec<Perm>)> = Vec::new();
    while let Some(top) = stack.last_mut() {
        let rest = top.children.get(top.offset..).unwrap_or(&[]);
        if let Some(len) = rest.iter().position(|&byte| byte == 0) {
            let child_path = path::child(&top.path, rest.get(..len).unwrap_or(&[]));
            top.offset += len + 1;
            let child = db.read(&child_path)?.cloned().ok_or(Errno::Io)?;
            stack.push(Frame {
                path: child_path,
                children: child.children,
                offset: 0,
                perms: child.perms,
            });
        } else if let Some(done) = stack.pop() {
            removed.push((done.path, done.perms));
        }
    }
    for (node_path, node_perms) in removed {
        db.delete(&node_path)?;
        let exact = node_path != path;
        db.fire(&node_path, exact, Some(node_perms), None);
    }
    if !parent.remove_child(path::basename(path)) {
        return Err(Errno::Io);
    }
    db.write(parent_path, parent)
}

/// `RM <path>|`.
fn rm(db: &mut Db<'_>, who: Who, quotas: &Quotas, payload: &[u8]) -> Result<Reply, Errno> {
    let path = canonical(who, onearg(payload), quotas)?;
    match get_node(db, who, &path, perms::WRITE) {
        Ok(_) => {}
        Err(Errno::Noent) => {
            return match db.read(path::parent(&path))? {
                Some(_) => Ok(Reply::ok()),
                None => Err(Errno::Noent),
            };
        }
        Err(errno) => return Err(errno),
    }
    if path == "/" {
        return Err(Errno::Inval);
    }
    rm_node(db, &path)?;
    Ok(Reply::ok())
}

/// `READ`, `DIRECTORY`, `GET_PERMS`: the node named by the one argument, if readable.
fn readable<'d>(
    db: &'d mut Db<'_>,
    who: Who,
    quotas: &Quotas,
    payload: &[u8],
) -> Result<&'d Node, Errno> {
    let path = canonical(who, onearg(payload), quotas)?;
    get_node(db, who, &path, perms::READ)
}

/// `DIRECTORY_PART <path>|<offset>|`: the generation, then the children from byte `offset`,
/// as many as fit; a final empty string marks the end (`send_directory_part()`).
fn directory_part(
    db: &mut Db<'_>,
    who: Who,
    quotas: &Quotas,
    payload: &[u8],
) -> Result<Reply, Errno> {
    let args: Vec<&[u8]> = wire::strings(payload).collect();
    let [name, offset] = args[..] else { return Err(Errno::Inval) };
    let path = canonical(who, Some(name), quotas)?;
    let node = get_node(db, who, &path, perms::READ)?;
    // Xen: `unsigned int off = atoi(...)`.
    let offset = atoi(offset) as u32 as usize;
    let mut reply = String::new();
    // Writing to a String cannot fail.
    let _ = write!(reply, "{}", node.generation);
    let mut reply = reply.into_bytes();
    reply.push(0);
    let children = &node.children;
    if offset >= children.len() {
        reply.push(0);
        return Ok(Reply::bytes(reply));
    }
    let max = XENSTORE_PAYLOAD_MAX - reply.len() - 1;
    let mut len = 0;
    loop {
        let rest = children.get(offset + len..).unwrap_or(&[]);
        let name_len = rest.iter().position(|&byte| byte == 0).unwrap_or(rest.len());
        if len + name_len >= max {
            break;
        }
        len += name_len + 1;
        if offset + len >= children.len() {
            break;
        }
    }
    let end = (offset + len).min(children.len());
    reply.extend_from_slice(children.get(offset..end).unwrap_or(&[]));
    if end == children.len() {
        reply.push(0);
    }
    Ok(Reply::bytes(reply))
}

/// `SET_PERMS <path>|<perm-as-string>|+`.
fn set_perms(
    db: &mut Db<'_>,
    who: Who,
    quotas: &Quotas,
    name: &[u8],
    new: Vec<Perm>,
) -> Result<Reply, Errno> {
    let path = canonical(who, Some(name), quotas)?;
    let mut node = get_node(db, who, &path, perms::WRITE | perms::OWNER)?.clone();
    if !who.privileged && new.first().map(|p| p.id) != node.owner() {
        return Err(Errno::Perm);
    }
    let old = core::mem::replace(&mut node.perms, new);
    write_node(db, who, quotas, &path, node)?;
    db.fire(&path, false, None, Some(old));
    Ok(Reply::ok())
}

/// Parses `SET_PERMS`' payload: the path and the permission list (Xen counts every NUL).
fn parse_set_perms<'p>(
    who: Who,
    quotas: &Quotas,
    payload: &'p [u8],
) -> Result<(&'p [u8], Vec<Perm>), Errno> {
    let args: Vec<&[u8]> = wire::strings(payload).collect();
    let [name, entries @ ..] = &args[..] else { return Err(Errno::Inval) };
    if entries.is_empty() {
        return Err(Errno::Inval);
    }
    if !who.privileged && entries.len() > quota::limit(quotas.permissions) {
        return Err(Errno::Nospc);
    }
    let parsed: Option<Vec<Perm>> = entries.iter().map(|entry| perms::parse(entry)).collect();
    Ok((name, parsed.ok_or(Errno::Inval)?))
}

impl Store {
    /// The node requests: runs `type_` through the transaction `tx_id` (0: none).
    pub(crate) fn node_op(
        &mut self,
        domid: DomId,
        who: Who,
        tx_id: u32,
        type_: u32,
        payload: &[u8],
    ) -> Result<Reply, Errno> {
        let quotas = self.quotas;
        let mut set_perms_args = None;
        if type_ == msg::XS_SET_PERMS {
            let (name, new) = parse_set_perms(who, &quotas, payload)?;
            if name.first() == Some(&b'@') {
                return self.set_perms_special(who, name, new);
            }
            set_perms_args = Some((name, new));
        }
        let owned = self.tree.owned(domid);
        let conn = self.connections.get_mut(&domid).ok_or(Errno::Io)?;
        let mut tx = match tx_id {
            0 => None,
            id => Some(conn.transactions.remove(&id).ok_or(Errno::Noent)?),
        };
        let tx_limit = (!who.privileged).then(|| quota::limit(quotas.transaction_nodes));
        let mut db = Db::new(&mut self.tree, tx.as_mut(), &mut self.generation, tx_limit);
        let db = &mut db;
        let result = match type_ {
            msg::XS_READ => {
                readable(db, who, &quotas, payload).map(|node| Reply::bytes(node.data.clone()))
            }
            msg::XS_DIRECTORY => {
                readable(db, who, &quotas, payload).map(|node| Reply::bytes(node.children.clone()))
            }
            msg::XS_GET_PERMS => readable(db, who, &quotas, payload).map(|node| {
                let mut reply = Vec::new();
                perms::format(&node.perms, &mut reply);
                Reply::bytes(reply)
            }),
            msg::XS_DIRECTORY_PART => directory_part(db, who, &quotas, payload),
            msg::XS_WRITE => write(db, who, &quotas, owned, payload),
            msg::XS_MKDIR => mkdir(db, who, &quotas, owned, payload),
            msg::XS_RM => rm(db, who, &quotas, payload),
            msg::XS_SET_PERMS => match set_perms_args {
                Some((name, new)) => set_perms(db, who, &quotas, name, new),
                None => Err(Errno::Inval),
            },
            _ => Err(Errno::Nosys),
        };
        let fires = core::mem::take(&mut db.fires);
        if let (Some(tx), Some(conn)) = (tx, self.connections.get_mut(&domid)) {
            conn.transactions.insert(tx_id, tx);
        }
        self.deliver(&fires);
        result
    }

    /// `SET_PERMS` on `@introduceDomain` / `@releaseDomain` (Xen's `set_perms_special()`).
    fn set_perms_special(&mut self, who: Who, name: &[u8], new: Vec<Perm>) -> Result<Reply, Errno> {
        let target = if name == INTRODUCE_DOMAIN.as_bytes() {
            &mut self.introduce_perms
        } else if name == RELEASE_DOMAIN.as_bytes() {
            &mut self.release_perms
        } else {
            return Err(Errno::Inval);
        };
        let needed = perms::WRITE | perms::OWNER;
        if perms::rights(who, target) & needed != needed {
            return Err(Errno::Acces);
        }
        *target = new;
        Ok(Reply::ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c_parsing() {
        assert_eq!(atoi(b" 42x"), 42);
        assert_eq!(atoi(b"-7"), -7);
        assert_eq!(atoi(b"+3"), 3);
        assert_eq!(atoi(b"x"), 0);
        assert_eq!(atoi(b""), 0);
        assert_eq!(onearg(b"a\0"), Some(&b"a"[..]));
        assert_eq!(onearg(b"a\0b\0"), None);
        assert_eq!(onearg(b"a"), None);
        assert_eq!(onearg(b""), None);
        assert_eq!(onearg(b"\0"), Some(&b""[..]));
    }
}
