//! The snapshot: the whole store as bytes, and back, so the stub domain can restart without a
//! guest noticing more than `EAGAIN` on its open transactions.
//!
//! Exists because the binary keeps the store in a preserved memory region (ARCHITECTURE.md §5):
//! after each batch of requests it writes [`Store::encode`]'s output there, and after a restart
//! it calls [`Store::decode`] and [`Store::abort_transactions`].
//!
//! Format, version 2 (all integers little-endian; version 1 had no `/vm` UUID):
//! ```text
//! header:  magic "XLXSSNAP" (8) | version u32 | body length u32 | checksum u64 of the body
//! body:    varint = unsigned LEB128; bytes = varint length + bytes; perms = varint count +
//!          (varint domid, u8 bits) each
//!   quotas           9 varints (nodes, node-size, watches, transactions, outstanding,
//!                    transaction-nodes, path-max, permissions, watch-events)
//!   generation, root owner: varint; logging: u8
//!   @introduceDomain perms, @releaseDomain perms
//!   nodes            varint count, then in path order: varint shared-prefix length with the
//!                    previous path + bytes rest of path, varint generation, perms, bytes value,
//!                    bytes children
//!   connections      varint count, each: varint domid, u8 flags (1 privileged, 2 ignored,
//!                    4 shutdown, 8 target, 16 ring, 32 vm), [varint target], [varint gfn,
//!                    varint port], [16 bytes `/vm` UUID], varint req_cons, varint rsp_prod, varint next transaction id, bytes input,
//!                    varint count + (u8 event, bytes message) output, varint output offset,
//!                    varint count + (bytes path, bytes token, u8 relative) watches,
//!                    varint count + transactions
//!   transaction      varint id, u8 flags (1 node created, 2 failed, 4 doomed), varint next seq,
//!                    varint count, each: bytes path, varint seq, u8 flags (1 generation,
//!                    2 check, 4 modified, 8 node, 16 old perms, 32 fire, 64 exact),
//!                    [varint generation], [node as above without its path], [perms]
//!   effects          varint count, each: u8 tag + fields
//! ```
//! Encoding is O(size of the state) with no allocation but the output's growth: a 1,000-node
//! store encodes in tens of microseconds. Decoding checks the checksum, every length against
//! the bytes left, and then the store's invariants (tree links, message framing, watch paths),
//! so a decoded store is one the code could have produced.
//!
//! # Invariants
//! - `decode(encode(s)) == s` for every reachable `s`.
//! - `decode` never panics and never allocates more than a small multiple of its input.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use xenolith_abi::xen::hypercall::DOMID_FIRST_RESERVED;
use xenolith_abi::xen::xs_wire::{msg, XENSTORE_PAYLOAD_MAX};

use crate::connection::{Connection, Outgoing};
use crate::path;
use crate::perms::{self, Perm};
use crate::populate::Uuid;
use crate::quota::Quotas;
use crate::store::{Effect, Ring, Store, Transport};
use crate::transaction::{Accessed, Transaction};
use crate::tree::{Node, Tree};
use crate::watch::Watch;
use crate::wire;
use crate::DomId;

/// First bytes of every snapshot.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"XLXSSNAP";
/// The format [`Store::encode`] writes and [`Store::decode`] reads.
pub const SNAPSHOT_VERSION: u32 = 2;
/// Bytes of the header.
const HEADER: usize = 24;

/// Why [`Store::decode`] refused a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not a snapshot (wrong magic).
    Magic,
    /// A snapshot of another format version.
    Version(u32),
    /// The bytes end early (or the header's length disagrees with them).
    Truncated,
    /// The checksum does not match: the region was damaged.
    Checksum,
    /// Well-formed bytes describing a state the store cannot be in.
    Invalid(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Magic => f.write_str("not a xenstore snapshot (magic bytes differ)"),
            Self::Version(version) => write!(
                f,
                "snapshot format version {version}, this build reads version {SNAPSHOT_VERSION}"
            ),
            Self::Truncated => f.write_str("the snapshot ends before its declared length"),
            Self::Checksum => f.write_str("the snapshot checksum does not match its contents"),
            Self::Invalid(what) => write!(f, "the snapshot describes an impossible state: {what}"),
        }
    }
}

/// A 64-bit checksum: each 8-byte word goes through a bijective mix, so streams that differ in
/// one word always differ in the result.
fn checksum(bytes: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut hash = 0x9e37_79b9_7f4a_7c15_u64 ^ bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        let mut raw = [0u8; 8];
        raw.copy_from_slice(word);
        hash = (hash.rotate_left(5) ^ u64::from_le_bytes(raw)).wrapping_mul(K);
    }
    let mut raw = [0u8; 8];
    for (slot, byte) in raw.iter_mut().zip(words.remainder()) {
        *slot = *byte;
    }
    hash = (hash.rotate_left(5) ^ u64::from_le_bytes(raw)).wrapping_mul(K);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^ (hash >> 33)
}

/// Appends the encoding of values to a byte vector.
struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

impl Writer<'_> {
    fn u8(&mut self, value: u8) {
        self.out.push(value);
    }

    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.out.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.out.push(value as u8);
    }

    fn len(&mut self, value: usize) {
        self.varint(value as u64);
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.len(bytes.len());
        self.out.extend_from_slice(bytes);
    }

    fn perms(&mut self, perms: &[Perm]) {
        self.len(perms.len());
        for perm in perms {
            self.varint(u64::from(perm.id));
            self.u8(perm.bits);
        }
    }

    fn node(&mut self, node: &Node) {
        self.varint(node.generation);
        self.perms(&node.perms);
        self.bytes(&node.data);
        self.bytes(&node.children);
    }

    fn transaction(&mut self, id: u32, tx: &Transaction) {
        self.varint(u64::from(id));
        self.u8(u8::from(tx.node_created) | u8::from(tx.failed) << 1 | u8::from(tx.doomed) << 2);
        self.varint(u64::from(tx.next_seq));
        self.len(tx.accessed.len());
        for (path, entry) in &tx.accessed {
            self.bytes(path.as_bytes());
            self.varint(u64::from(entry.seq));
            let flags = u8::from(entry.generation.is_some())
                | u8::from(entry.check_generation) << 1
                | u8::from(entry.modified) << 2
                | u8::from(entry.node.is_some()) << 3
                | u8::from(entry.old_perms.is_some()) << 4
                | u8::from(entry.fire.is_some()) << 5
                | u8::from(entry.fire == Some(true)) << 6;
            self.u8(flags);
            if let Some(generation) = entry.generation {
                self.varint(generation);
            }
            if let Some(node) = &entry.node {
                self.node(node);
            }
            if let Some(old) = &entry.old_perms {
                self.perms(old);
            }
        }
    }

    fn connection(&mut self, domid: DomId, conn: &Connection) {
        self.varint(u64::from(domid));
        let flags = u8::from(conn.privileged)
            | u8::from(conn.ignored) << 1
            | u8::from(conn.shutdown) << 2
            | u8::from(conn.target.is_some()) << 3
            | u8::from(conn.ring.is_some()) << 4
            | u8::from(conn.vm.is_some()) << 5;
        self.u8(flags);
        if let Some(target) = conn.target {
            self.varint(u64::from(target));
        }
        if let Some(ring) = conn.ring {
            self.varint(ring.gfn);
            self.varint(u64::from(ring.port));
        }
        if let Some(uuid) = conn.vm {
            self.out.extend_from_slice(&uuid.0);
        }
        self.varint(u64::from(conn.transport.req_cons));
        self.varint(u64::from(conn.transport.rsp_prod));
        self.varint(u64::from(conn.next_transaction_id));
        self.bytes(&conn.input);
        self.len(conn.output.len());
        for queued in &conn.output {
            self.u8(u8::from(queued.event));
            self.bytes(&queued.bytes);
        }
        self.len(conn.output_offset);
        self.len(conn.watches.len());
        for watch in &conn.watches {
            self.bytes(&watch.node);
            self.bytes(&watch.token);
            self.u8(u8::from(watch.relative));
        }
        self.len(conn.transactions.len());
        for (&id, tx) in &conn.transactions {
            self.transaction(id, tx);
        }
    }

    fn effect(&mut self, effect: &Effect) {
        match effect {
            Effect::Introduce { domid, ring } => {
                self.u8(0);
                self.varint(u64::from(*domid));
                self.varint(ring.gfn);
                self.varint(u64::from(ring.port));
            }
            Effect::Release { domid } => {
                self.u8(1);
                self.varint(u64::from(*domid));
            }
            Effect::Resume { domid } => {
                self.u8(2);
                self.varint(u64::from(*domid));
            }
            Effect::Print { text } => {
                self.u8(3);
                self.bytes(text.as_bytes());
            }
            Effect::Logging { enabled } => {
                self.u8(4);
                self.u8(u8::from(*enabled));
            }
        }
    }
}

/// Reads values back, checking every length against what is left.
struct Reader<'a> {
    bytes: &'a [u8],
}

type Result<T> = core::result::Result<T, DecodeError>;

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Result<u8> {
        let (&first, rest) = self.bytes.split_first().ok_or(DecodeError::Truncated)?;
        self.bytes = rest;
        Ok(first)
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.u8()?;
            value |= u64::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::Invalid("a number is too long"))
    }

    fn u32(&mut self) -> Result<u32> {
        u32::try_from(self.varint()?)
            .map_err(|_| DecodeError::Invalid("a 32-bit number is too large"))
    }

    fn domid(&mut self) -> Result<DomId> {
        DomId::try_from(self.varint()?).map_err(|_| DecodeError::Invalid("a domid is too large"))
    }

    /// A count of items each at least `min` bytes long (so a count cannot promise more items
    /// than the bytes left could hold).
    fn count(&mut self, min: usize) -> Result<usize> {
        let count = usize::try_from(self.varint()?).map_err(|_| DecodeError::Truncated)?;
        if count.saturating_mul(min.max(1)) > self.bytes.len() {
            return Err(DecodeError::Truncated);
        }
        Ok(count)
    }

    fn flag(&mut self, allowed: u8) -> Result<u8> {
        let flags = self.u8()?;
        if flags & !allowed != 0 {
            return Err(DecodeError::Invalid("unknown flag bits"));
        }
        Ok(flags)
    }

    fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = self.count(1)?;
        let (head, rest) = self.bytes.split_at_checked(len).ok_or(DecodeError::Truncated)?;
        self.bytes = rest;
        Ok(head)
    }

    fn perms(&mut self, allow_empty: bool) -> Result<Vec<Perm>> {
        let count = self.count(2)?;
        if count == 0 && !allow_empty {
            return Err(DecodeError::Invalid("an empty permission list"));
        }
        let mut perms = Vec::with_capacity(count);
        for _ in 0..count {
            let id = self.domid()?;
            let bits = self.u8()?;
            if bits & !(perms::READ | perms::WRITE | perms::IGNORE) != 0 {
                return Err(DecodeError::Invalid("unknown permission bits"));
            }
            perms.push(Perm::new(id, bits));
        }
        Ok(perms)
    }

    fn node(&mut self) -> Result<Node> {
        let generation = self.varint()?;
        let perms = self.perms(false)?;
        let data = self.bytes()?.to_vec();
        let children = self.bytes()?.to_vec();
        if !children.is_empty() && children.last() != Some(&0) {
            return Err(DecodeError::Invalid("a children list is not NUL-terminated"));
        }
        Ok(Node { data, perms, children, generation })
    }

    fn path(&mut self) -> Result<String> {
        let raw = self.bytes()?;
        path::valid_str(raw, usize::MAX / 2)
            .map(String::from)
            .ok_or(DecodeError::Invalid("an invalid path"))
    }

    fn transaction(&mut self) -> Result<(u32, Transaction)> {
        let id = self.u32()?;
        if id == 0 {
            return Err(DecodeError::Invalid("transaction id 0"));
        }
        let flags = self.flag(0b111)?;
        let next_seq = self.u32()?;
        let count = self.count(3)?;
        let mut accessed = BTreeMap::new();
        for _ in 0..count {
            let path = self.path()?;
            let seq = self.u32()?;
            let bits = self.flag(0x7f)?;
            let generation = if bits & 1 != 0 { Some(self.varint()?) } else { None };
            let node = if bits & 8 != 0 { Some(self.node()?) } else { None };
            let old_perms = if bits & 16 != 0 { Some(self.perms(false)?) } else { None };
            let fire = (bits & 32 != 0).then_some(bits & 64 != 0);
            if path == "/" && node.is_none() {
                return Err(DecodeError::Invalid("a transaction deletes the root"));
            }
            let entry = Accessed {
                seq,
                generation,
                check_generation: bits & 2 != 0,
                modified: bits & 4 != 0,
                node,
                old_perms,
                fire,
            };
            if accessed.insert(path, entry).is_some() {
                return Err(DecodeError::Invalid("a transaction lists a node twice"));
            }
        }
        let tx = Transaction {
            accessed,
            next_seq,
            node_created: flags & 1 != 0,
            failed: flags & 2 != 0,
            doomed: flags & 4 != 0,
        };
        Ok((id, tx))
    }

    fn connection(&mut self) -> Result<(DomId, Connection)> {
        let domid = self.domid()?;
        if domid >= DOMID_FIRST_RESERVED {
            return Err(DecodeError::Invalid("a connection of a reserved domid"));
        }
        let flags = self.flag(0x3f)?;
        let mut conn = Connection::new(flags & 1 != 0, None);
        conn.ignored = flags & 2 != 0;
        conn.shutdown = flags & 4 != 0;
        if flags & 8 != 0 {
            conn.target = Some(self.domid()?);
        }
        if flags & 16 != 0 {
            conn.ring = Some(Ring { gfn: self.varint()?, port: self.u32()? });
        }
        if flags & 32 != 0 {
            let mut uuid = [0u8; 16];
            for byte in &mut uuid {
                *byte = self.u8()?;
            }
            conn.vm = Some(Uuid(uuid));
        }
        conn.transport = Transport { req_cons: self.u32()?, rsp_prod: self.u32()? };
        conn.next_transaction_id = self.u32()?;
        conn.input = self.bytes()?.to_vec();
        check_input(&conn.input)?;
        for _ in 0..self.count(wire::HEADER_SIZE)? {
            let event = self.flag(1)? != 0;
            let bytes = self.bytes()?.to_vec();
            check_output(&bytes, event)?;
            if event {
                conn.events += 1;
            } else {
                conn.replies += 1;
            }
            conn.output.push_back(Outgoing { bytes, event });
        }
        conn.output_offset = usize::try_from(self.varint()?).map_err(|_| DecodeError::Truncated)?;
        let first = conn.output.front().map_or(0, |first| first.bytes.len());
        if conn.output_offset > 0 && conn.output_offset >= first {
            return Err(DecodeError::Invalid("an output offset past the first message"));
        }
        let base = path::domain_path(u32::from(domid));
        for _ in 0..self.count(3)? {
            let node = self.bytes()?.to_vec();
            let token = self.bytes()?.to_vec();
            let relative = self.flag(1)? != 0;
            check_watch(&node, &token, relative, base.as_bytes())?;
            conn.watches.push(Watch { node, token, relative });
        }
        for _ in 0..self.count(3)? {
            let (id, tx) = self.transaction()?;
            if conn.transactions.insert(id, tx).is_some() {
                return Err(DecodeError::Invalid("a transaction id used twice"));
            }
        }
        let idle = conn.watches.is_empty()
            && conn.transactions.is_empty()
            && conn.input.is_empty()
            && conn.output.is_empty();
        if conn.ignored && !idle {
            return Err(DecodeError::Invalid("an ignored connection with state"));
        }
        Ok((domid, conn))
    }

    fn effect(&mut self) -> Result<Effect> {
        Ok(match self.u8()? {
            0 => Effect::Introduce {
                domid: self.domid()?,
                ring: Ring { gfn: self.varint()?, port: self.u32()? },
            },
            1 => Effect::Release { domid: self.domid()? },
            2 => Effect::Resume { domid: self.domid()? },
            3 => Effect::Print { text: String::from_utf8_lossy(self.bytes()?).into() },
            4 => Effect::Logging { enabled: self.flag(1)? != 0 },
            _ => return Err(DecodeError::Invalid("an unknown effect")),
        })
    }
}

/// A half-received request: less than one whole message, with a valid header if complete.
fn check_input(input: &[u8]) -> Result<()> {
    match wire::parse_header(input) {
        None => Ok(()),
        Some(header) => {
            let len = header.len as usize;
            if len > XENSTORE_PAYLOAD_MAX || input.len() >= wire::HEADER_SIZE + len {
                Err(DecodeError::Invalid("a partial request that is not partial"))
            } else {
                Ok(())
            }
        }
    }
}

/// A queued message: exactly one well-framed message; events are `XS_WATCH_EVENT`s.
fn check_output(bytes: &[u8], event: bool) -> Result<()> {
    match wire::split_message(bytes) {
        Ok(Some((message, rest)))
            if rest.is_empty() && (message.header.type_ == msg::XS_WATCH_EVENT) == event =>
        {
            Ok(())
        }
        _ => Err(DecodeError::Invalid("a queued message is not well framed")),
    }
}

/// A watch: canonical path or `@` name, NUL-free token, relative ones under the domain's base.
fn check_watch(node: &[u8], token: &[u8], relative: bool, base: &[u8]) -> Result<()> {
    let special = node.first() == Some(&b'@') && !node.contains(&0) && !relative;
    let valid = special || path::is_valid(node, usize::MAX / 2);
    let under_base =
        !relative || node.strip_prefix(base).is_some_and(|rest| rest.first() == Some(&b'/'));
    if valid && under_base && !token.contains(&0) {
        Ok(())
    } else {
        Err(DecodeError::Invalid("an invalid watch"))
    }
}

impl Store {
    /// Appends the whole state to `out` (format in the module documentation).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&SNAPSHOT_MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        out.extend_from_slice(&[0; 12]);
        let mut w = Writer { out };
        let q = &self.quotas;
        for value in [
            q.nodes,
            q.node_size,
            q.watches,
            q.transactions,
            q.outstanding,
            q.transaction_nodes,
            q.path_max,
            q.permissions,
            q.watch_events,
        ] {
            w.varint(u64::from(value));
        }
        w.varint(self.generation);
        w.varint(u64::from(self.root_owner));
        w.u8(u8::from(self.logging));
        w.perms(&self.introduce_perms);
        w.perms(&self.release_perms);
        w.len(self.tree.len());
        let mut previous: &[u8] = b"";
        for (path, node) in self.tree.iter() {
            let path = path.as_bytes();
            let shared = previous.iter().zip(path).take_while(|(a, b)| a == b).count();
            w.len(shared);
            w.bytes(path.get(shared..).unwrap_or(&[]));
            w.node(node);
            previous = path;
        }
        w.len(self.connections.len());
        for (&domid, conn) in &self.connections {
            w.connection(domid, conn);
        }
        w.len(self.effects.len());
        for effect in &self.effects {
            w.effect(effect);
        }
        let body_start = start + HEADER;
        let body = out.get(body_start..).unwrap_or(&[]);
        let length = u32::try_from(body.len()).unwrap_or(u32::MAX);
        let sum = checksum(body);
        if let Some(header) = out.get_mut(start + 12..body_start) {
            header[..4].copy_from_slice(&length.to_le_bytes());
            header[4..].copy_from_slice(&sum.to_le_bytes());
        }
    }

    /// Rebuilds a store from [`Store::encode`]'s output (trailing bytes after the declared body
    /// are ignored, so a fixed-size region can be passed whole). Never panics.
    pub fn decode(bytes: &[u8]) -> core::result::Result<Store, DecodeError> {
        Self::decode_inner(bytes, true)
    }

    /// [`Store::decode`] without the checksum check, so fuzzers and randomized tests reach the
    /// body's parser with bytes they made up. Not for restoring real snapshots.
    #[doc(hidden)]
    pub fn decode_unchecked(bytes: &[u8]) -> core::result::Result<Store, DecodeError> {
        Self::decode_inner(bytes, false)
    }

    fn decode_inner(bytes: &[u8], verify: bool) -> core::result::Result<Store, DecodeError> {
        let header = bytes.get(..HEADER).ok_or(DecodeError::Truncated)?;
        if header.get(..8) != Some(&SNAPSHOT_MAGIC[..]) {
            return Err(DecodeError::Magic);
        }
        let word = |range: core::ops::Range<usize>| -> u64 {
            let mut raw = [0u8; 8];
            for (slot, byte) in raw.iter_mut().zip(header.get(range).unwrap_or(&[])) {
                *slot = *byte;
            }
            u64::from_le_bytes(raw)
        };
        let version = word(8..12) as u32;
        if version != SNAPSHOT_VERSION {
            return Err(DecodeError::Version(version));
        }
        let length = usize::try_from(word(12..16)).map_err(|_| DecodeError::Truncated)?;
        let body = bytes
            .get(HEADER..)
            .and_then(|rest| rest.get(..length))
            .ok_or(DecodeError::Truncated)?;
        if verify && checksum(body) != word(16..24) {
            return Err(DecodeError::Checksum);
        }
        let mut r = Reader { bytes: body };
        let mut values = [0u32; 9];
        for value in &mut values {
            *value = r.u32()?;
        }
        let [nodes, node_size, watches, transactions, outstanding, transaction_nodes, path_max, permissions, watch_events] =
            values;
        let quotas = Quotas {
            nodes,
            node_size,
            watches,
            transactions,
            outstanding,
            transaction_nodes,
            path_max,
            permissions,
            watch_events,
        };
        let generation = r.varint()?;
        let root_owner = r.domid()?;
        let logging = r.flag(1)? != 0;
        let introduce_perms = r.perms(false)?;
        let release_perms = r.perms(false)?;
        let mut tree = Tree::empty();
        let mut previous: Vec<u8> = Vec::new();
        for _ in 0..r.count(4)? {
            let shared = usize::try_from(r.varint()?).map_err(|_| DecodeError::Truncated)?;
            let rest = r.bytes()?;
            let mut raw =
                previous.get(..shared).ok_or(DecodeError::Invalid("a path prefix"))?.to_vec();
            raw.extend_from_slice(rest);
            let path = path::valid_str(&raw, usize::MAX / 2)
                .ok_or(DecodeError::Invalid("an invalid path"))?;
            let node = r.node()?;
            if !tree.insert_raw(String::from(path), node) {
                return Err(DecodeError::Invalid("a node listed twice"));
            }
            previous = raw;
        }
        tree.check().map_err(DecodeError::Invalid)?;
        tree.recount();
        let mut connections = BTreeMap::new();
        for _ in 0..r.count(8)? {
            let (domid, conn) = r.connection()?;
            if connections.insert(domid, conn).is_some() {
                return Err(DecodeError::Invalid("a domain connected twice"));
            }
        }
        let mut effects = Vec::new();
        for _ in 0..r.count(2)? {
            effects.push(r.effect()?);
        }
        if !r.bytes.is_empty() {
            return Err(DecodeError::Invalid("bytes after the last section"));
        }
        Ok(Store {
            quotas,
            tree,
            generation,
            root_owner,
            introduce_perms,
            release_perms,
            connections,
            effects,
            logging,
        })
    }
}
