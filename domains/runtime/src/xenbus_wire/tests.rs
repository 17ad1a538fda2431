//! Host tests of the xenstore client: the wire format, the rings on a plain array, and
//! [`Client`] against a small simulated store that runs whenever the client waits.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use xenolith_abi::xen::xs_wire::{
    XENSTORE_CONNECTED, XENSTORE_SERVER_FEATURE_ERROR, XENSTORE_SERVER_FEATURE_RECONNECTION,
    XS_CONNECTION, XS_ERROR_FIELD, XS_SERVER_FEATURES,
};

use super::*;

const PAGE_SIZE: usize = 4096;

/// A ring page in a plain array; ring data accesses must stay inside one ring.
struct FakePage {
    bytes: Vec<u8>,
}

impl FakePage {
    /// A page whose four indexes all start at `start`.
    fn at(start: u32) -> Self {
        let mut page = Self { bytes: vec![0xA5; PAGE_SIZE] };
        for offset in [XS_REQ_CONS, XS_REQ_PROD, XS_RSP_CONS, XS_RSP_PROD] {
            page.store(offset, start);
        }
        for offset in [XS_SERVER_FEATURES, XS_CONNECTION, XS_ERROR_FIELD] {
            page.store(offset, 0);
        }
        page
    }
}

fn check_data_access(offset: usize, len: usize) {
    let inside = |start: usize| offset >= start && offset + len <= start + XENSTORE_RING_SIZE;
    assert!(inside(0) || inside(XENSTORE_RING_SIZE), "access of {len} bytes at {offset}");
}

impl RingPage for FakePage {
    fn load(&self, offset: usize) -> u32 {
        u32::from_le_bytes(self.bytes[offset..offset + 4].try_into().unwrap())
    }
    fn store(&mut self, offset: usize, value: u32) {
        self.bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    }
    fn read(&self, offset: usize, out: &mut [u8]) {
        check_data_access(offset, out.len());
        out.copy_from_slice(&self.bytes[offset..offset + out.len()]);
    }
    fn write(&mut self, offset: usize, bytes: &[u8]) {
        check_data_access(offset, bytes.len());
        self.bytes[offset..offset + bytes.len()].copy_from_slice(bytes);
    }
    fn read_barrier(&self) {}
    fn write_barrier(&self) {}
    fn full_barrier(&self) {}
}

fn text(payload: &[u8]) -> String {
    String::from_utf8(payload.to_vec()).unwrap()
}

/// Xen's strings of a request payload (the last may lack its NUL).
fn args(payload: &[u8]) -> Vec<String> {
    split_strings(payload).unwrap()
}

/// A small xenstore: nodes, watches, transactions (with commits made to fail on demand),
/// directory parts; it writes at most `out_per_step` reply bytes per step.
struct Server {
    req_cons: u32,
    rsp_prod: u32,
    receiver: Receiver,
    out: VecDeque<u8>,
    nodes: BTreeMap<String, Vec<u8>>,
    perms: BTreeMap<String, Vec<Permission>>,
    watches: Vec<(String, String)>,
    transactions: BTreeMap<u32, BTreeMap<String, Option<Vec<u8>>>>,
    next_tx: u32,
    fail_commits: u32,
    ended: Vec<(u32, bool)>,
    generation: u64,
    /// `DIRECTORY` fails with `E2BIG` above this many bytes of names.
    directory_limit: usize,
    /// `DIRECTORY_PART` sends at most this many bytes of names per part.
    part_limit: usize,
    /// Bump the generation after the first part (the client must start again).
    bump_generation_once: bool,
    out_per_step: usize,
    requests: Vec<xsd_sockmsg>,
}

impl Server {
    fn at(start: u32) -> Self {
        Self {
            req_cons: start,
            rsp_prod: start,
            receiver: Receiver::default(),
            out: VecDeque::new(),
            nodes: BTreeMap::new(),
            perms: BTreeMap::new(),
            watches: Vec::new(),
            transactions: BTreeMap::new(),
            next_tx: 1,
            fail_commits: 0,
            ended: Vec::new(),
            generation: 7,
            directory_limit: usize::MAX,
            part_limit: 4000,
            bump_generation_once: false,
            out_per_step: usize::MAX,
            requests: Vec::new(),
        }
    }

    fn step(&mut self, page: &mut FakePage) {
        while let Some(message) =
            self.receiver.receive(page, REQUESTS, &mut self.req_cons).expect("request ring")
        {
            self.handle(message);
        }
        let chunk: Vec<u8> = self.out.iter().take(self.out_per_step).copied().collect();
        let written = REPLIES.produce(page, self.rsp_prod, &chunk).expect("reply ring");
        self.rsp_prod = self.rsp_prod.wrapping_add(written as u32);
        self.out.drain(..written);
    }

    fn send(&mut self, kind: u32, request: &xsd_sockmsg, payload: &[u8]) {
        self.out.extend(encode(kind, request.req_id, request.tx_id, payload));
    }

    fn error(&mut self, request: &xsd_sockmsg, name: &str) {
        self.send(msg::XS_ERROR, request, format!("{name}\0").as_bytes());
    }

    fn fire(&mut self, path: &str) {
        for (watched, token) in self.watches.clone() {
            if path == watched || path.starts_with(&format!("{watched}/")) {
                self.out.extend(encode(
                    msg::XS_WATCH_EVENT,
                    0,
                    0,
                    format!("{path}\0{token}\0").as_bytes(),
                ));
            }
        }
    }

    fn value(&self, tx: u32, path: &str) -> Option<Vec<u8>> {
        match self.transactions.get(&tx).and_then(|overlay| overlay.get(path)) {
            Some(value) => value.clone(),
            None => self.nodes.get(path).cloned(),
        }
    }

    fn children(&self, path: &str) -> Vec<u8> {
        let mut names: Vec<String> = Vec::new();
        for key in self.nodes.keys() {
            if let Some(rest) = key.strip_prefix(&format!("{path}/")) {
                let name = rest.split('/').next().unwrap().to_string();
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names.iter().flat_map(|name| format!("{name}\0").into_bytes()).collect()
    }

    fn set(&mut self, tx: u32, path: &str, value: Option<Vec<u8>>) {
        if tx == 0 {
            match value {
                Some(value) => self.nodes.insert(path.to_string(), value),
                None => self.nodes.remove(path),
            };
            self.fire(path);
        } else {
            self.transactions.get_mut(&tx).unwrap().insert(path.to_string(), value);
        }
    }

    fn handle(&mut self, message: Message) {
        let header = message.header;
        self.requests.push(header);
        let payload = &message.payload;
        if header.tx_id != 0 && !self.transactions.contains_key(&header.tx_id) {
            return self.error(&header, "ENOENT");
        }
        let tx = header.tx_id;
        match header.type_ {
            msg::XS_READ => match self.value(tx, &args(payload)[0]) {
                Some(value) => self.send(msg::XS_READ, &header, &value),
                None => self.error(&header, "ENOENT"),
            },
            msg::XS_WRITE => {
                let split = payload.iter().position(|&byte| byte == 0).unwrap();
                let path = text(&payload[..split]);
                if path.contains("forbidden") {
                    return self.error(&header, "EACCES");
                }
                self.set(tx, &path, Some(payload[split + 1..].to_vec()));
                self.send(msg::XS_WRITE, &header, b"OK\0");
            }
            msg::XS_MKDIR => {
                let path = args(payload)[0].clone();
                if self.value(tx, &path).is_none() {
                    self.set(tx, &path, Some(Vec::new()));
                }
                self.send(msg::XS_MKDIR, &header, b"OK\0");
            }
            msg::XS_RM => {
                let path = args(payload)[0].clone();
                self.set(tx, &path, None);
                self.send(msg::XS_RM, &header, b"OK\0");
            }
            msg::XS_DIRECTORY => {
                let children = self.children(&args(payload)[0]);
                if children.len() > self.directory_limit {
                    return self.error(&header, "E2BIG");
                }
                self.send(msg::XS_DIRECTORY, &header, &children);
            }
            msg::XS_DIRECTORY_PART => self.directory_part(&header, payload),
            msg::XS_GET_PERMS => {
                let perms = self.perms.get(&args(payload)[0]).cloned().unwrap_or_default();
                let texts: Vec<String> = perms.iter().map(|perm| perm.to_wire()).collect();
                let parts: Vec<&[u8]> = texts.iter().map(|text| text.as_bytes()).collect();
                self.send(msg::XS_GET_PERMS, &header, &strings(&parts).unwrap());
            }
            msg::XS_SET_PERMS => {
                let parts = args(payload);
                let perms = parts[1..].iter().map(|text| Permission::from_wire(text).unwrap());
                self.perms.insert(parts[0].clone(), perms.collect());
                self.send(msg::XS_SET_PERMS, &header, b"OK\0");
            }
            msg::XS_WATCH => {
                let parts = args(payload);
                self.watches.push((parts[0].clone(), parts[1].clone()));
                self.send(msg::XS_WATCH, &header, b"OK\0");
                let event = format!("{}\0{}\0", parts[0], parts[1]);
                self.out.extend(encode(msg::XS_WATCH_EVENT, 0, 0, event.as_bytes()));
            }
            msg::XS_UNWATCH => {
                let parts = args(payload);
                self.watches.retain(|watch| *watch != (parts[0].clone(), parts[1].clone()));
                self.send(msg::XS_UNWATCH, &header, b"OK\0");
            }
            msg::XS_RESET_WATCHES => {
                self.watches.clear();
                self.transactions.clear();
                self.send(msg::XS_RESET_WATCHES, &header, b"OK\0");
            }
            msg::XS_TRANSACTION_START => {
                let id = self.next_tx;
                self.next_tx += 1;
                self.transactions.insert(id, BTreeMap::new());
                self.send(msg::XS_TRANSACTION_START, &header, format!("{id}\0").as_bytes());
            }
            msg::XS_TRANSACTION_END => {
                let commit = payload == b"T\0";
                self.ended.push((tx, commit));
                let overlay = self.transactions.remove(&tx).unwrap();
                if commit && self.fail_commits > 0 {
                    self.fail_commits -= 1;
                    return self.error(&header, "EAGAIN");
                }
                if commit {
                    for (path, value) in overlay {
                        self.set(0, &path, value);
                    }
                }
                self.send(msg::XS_TRANSACTION_END, &header, b"OK\0");
            }
            msg::XS_GET_DOMAIN_PATH => {
                let path = format!("/local/domain/{}\0", args(payload)[0]);
                self.send(msg::XS_GET_DOMAIN_PATH, &header, path.as_bytes());
            }
            _ => self.error(&header, "ENOSYS"),
        }
    }

    /// Xen's `send_directory_part`, with `part_limit` for `XENSTORE_PAYLOAD_MAX`.
    fn directory_part(&mut self, header: &xsd_sockmsg, payload: &[u8]) {
        let parts = args(payload);
        let children = self.children(&parts[0]);
        let offset: usize = parts[1].parse().unwrap();
        let mut reply = format!("{}\0", self.generation).into_bytes();
        if self.bump_generation_once {
            self.bump_generation_once = false;
            self.generation += 1;
        }
        if offset >= children.len() {
            reply.push(0);
            return self.send(msg::XS_DIRECTORY_PART, header, &reply);
        }
        let mut length = 0;
        for name in children[offset..].split_inclusive(|&byte| byte == 0) {
            if length + name.len() > self.part_limit {
                break;
            }
            length += name.len();
        }
        reply.extend_from_slice(&children[offset..offset + length]);
        if offset + length == children.len() {
            reply.push(0);
        }
        self.send(msg::XS_DIRECTORY_PART, header, &reply);
    }
}

/// Runs at every wait with the page and the number of waits so far.
type WaitHook = Box<dyn FnMut(&mut FakePage, u32)>;

/// The client's side: the page, the server (which runs whenever the client waits, unless it
/// is "dead" for `dead_waits` more waits), and a clock that advances 1 ms per wait.
struct Fake {
    page: FakePage,
    server: Server,
    clock: u64,
    dead_waits: u32,
    notifies: u32,
    waits: u32,
    /// Runs at every wait, before the server (to change the page under the client).
    on_wait: Option<WaitHook>,
}

impl Fake {
    fn at(start: u32) -> Self {
        Self {
            page: FakePage::at(start),
            server: Server::at(start),
            clock: 0,
            dead_waits: 0,
            notifies: 0,
            waits: 0,
            on_wait: None,
        }
    }
}

impl RingPage for Fake {
    fn load(&self, offset: usize) -> u32 {
        self.page.load(offset)
    }
    fn store(&mut self, offset: usize, value: u32) {
        self.page.store(offset, value);
    }
    fn read(&self, offset: usize, out: &mut [u8]) {
        self.page.read(offset, out);
    }
    fn write(&mut self, offset: usize, bytes: &[u8]) {
        self.page.write(offset, bytes);
    }
    fn read_barrier(&self) {}
    fn write_barrier(&self) {}
    fn full_barrier(&self) {}
}

impl Transport for Fake {
    fn notify(&mut self) {
        self.notifies += 1;
    }
    fn wait(&mut self, _deadline: Option<u64>) -> bool {
        self.waits += 1;
        self.clock += 1_000_000;
        assert!(self.waits < 1_000_000, "the client waits forever");
        if let Some(hook) = &mut self.on_wait {
            hook(&mut self.page, self.waits);
        }
        if self.dead_waits > 0 {
            self.dead_waits -= 1;
            return false;
        }
        let before = (self.server.req_cons, self.server.rsp_prod);
        self.server.step(&mut self.page);
        before != (self.server.req_cons, self.server.rsp_prod)
    }
    fn now(&self) -> u64 {
        self.clock
    }
}

fn client() -> Client<Fake> {
    Client::new(Fake::at(0))
}

#[test]
fn errno_names_are_xens() {
    let all = [
        Errno::EINVAL,
        Errno::EACCES,
        Errno::EEXIST,
        Errno::EISDIR,
        Errno::ENOENT,
        Errno::ENOMEM,
        Errno::ENOSPC,
        Errno::EIO,
        Errno::ENOTEMPTY,
        Errno::ENOSYS,
        Errno::EROFS,
        Errno::EBUSY,
        Errno::EAGAIN,
        Errno::EISCONN,
        Errno::E2BIG,
        Errno::EPERM,
    ];
    for (errno, (number, name)) in all.iter().zip(XSD_ERRORS) {
        assert_eq!((errno.number, errno.name), (number, name));
        assert_eq!(Errno::from_name(name.as_bytes()), Some(*errno));
        let payload = format!("{name}\0");
        assert_eq!(error_from_payload(payload.as_bytes()), XsError::Errno(*errno));
    }
    assert_eq!((Errno::EACCES.number, Errno::EAGAIN.number, Errno::E2BIG.number), (13, 11, 7));
    assert_eq!(error_from_payload(b"EWHATEVER\0"), XsError::UnknownErrno);
    assert_eq!(error_from_payload(b""), XsError::UnknownErrno);
    // Without its NUL, a name still counts; anything after the NUL does not.
    assert_eq!(error_from_payload(b"ENOENT"), XsError::ENOENT);
    assert_eq!(error_from_payload(b"EACCES\0junk"), XsError::EACCES);
    assert!(matches!(XsError::EAGAIN, XsError::Errno(Errno::EAGAIN)));
    assert_eq!(XsError::EACCES.errno(), Some(Errno::EACCES));
    assert_eq!(XsError::TimedOut.errno(), None);
}

#[test]
fn messages_encode_and_replies_decode() {
    let bytes = encode(msg::XS_READ, 0x0102_0304, 9, b"/a\0");
    assert_eq!(&bytes[..4], &2u32.to_le_bytes());
    assert_eq!(&bytes[4..8], &[4, 3, 2, 1]);
    assert_eq!(&bytes[8..12], &9u32.to_le_bytes());
    assert_eq!(&bytes[12..16], &3u32.to_le_bytes());
    assert_eq!(&bytes[16..], b"/a\0");

    let reply = |kind, payload: &[u8]| Message {
        header: xsd_sockmsg { type_: kind, req_id: 1, tx_id: 0, len: payload.len() as u32 },
        payload: payload.to_vec(),
    };
    assert_eq!(reply(msg::XS_READ, b"v").into_result(msg::XS_READ), Ok(b"v".to_vec()));
    assert_eq!(reply(msg::XS_ERROR, b"EACCES\0").into_result(msg::XS_READ), Err(XsError::EACCES));
    assert_eq!(
        reply(msg::XS_WRITE, b"OK\0").into_result(msg::XS_READ),
        Err(XsError::Protocol(ProtocolError::UnexpectedType {
            expected: msg::XS_READ,
            got: msg::XS_WRITE
        }))
    );

    assert_eq!(strings(&[b"/a", b"tok"]), Ok(b"/a\0tok\0".to_vec()));
    assert_eq!(strings(&[b"/a\0b"]), Err(XsError::InvalidArgument));
    assert_eq!(write_payload("/a", b"x\0y"), Ok(b"/a\0x\0y".to_vec()));
    assert_eq!(expect_ok(b"OK\0"), Ok(()));
    assert!(expect_ok(b"OK").is_err());
    assert_eq!(parse_transaction_id(b"42\0"), Ok(42));
    assert!(parse_transaction_id(b"x\0").is_err());
    assert_eq!(single_string(b"/local/domain/3\0"), Ok("/local/domain/3".to_string()));
    assert!(single_string(b"a\0b\0").is_err());
    assert_eq!(split_strings(b""), Ok(vec![]));
    assert_eq!(split_strings(b"a\0bc\0"), Ok(vec!["a".to_string(), "bc".to_string()]));
    assert_eq!(split_strings(b"a\0bc"), Ok(vec!["a".to_string(), "bc".to_string()]));
    assert_eq!(split_strings(b"\0"), Ok(vec![String::new()]));
    assert!(split_strings(b"\xff\0").is_err());
}

#[test]
fn watch_events_parse() {
    assert_eq!(
        parse_watch_event(b"/local/domain/1/x\0tok\0"),
        Ok(WatchEvent { path: "/local/domain/1/x".into(), token: "tok".into() })
    );
    assert_eq!(parse_watch_event(b"x\0\0"), Ok(WatchEvent { path: "x".into(), token: "".into() }));
    assert!(parse_watch_event(b"/only-a-path\0").is_err());
    assert!(parse_watch_event(b"").is_err());
}

#[test]
fn permissions_round_trip() {
    let perms = [
        Permission { domid: 3, access: Access::None },
        Permission { domid: 5, access: Access::Both },
        Permission { domid: 0, access: Access::Read },
        Permission { domid: 65535, access: Access::Write },
    ];
    let wire: Vec<String> = perms.iter().map(|perm| perm.to_wire()).collect();
    assert_eq!(wire, ["n3", "b5", "r0", "w65535"]);
    let payload = set_permissions_payload("/p", &perms).unwrap();
    assert_eq!(payload, b"/p\0n3\0b5\0r0\0w65535\0");
    assert_eq!(parse_permissions(&payload[3..]), Ok(perms.to_vec()));
    for bad in [&b"x3\0"[..], b"r\0", b"r70000\0", b"", b"b-1\0"] {
        assert!(parse_permissions(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn directory_parts_parse_as_xen_sends_them() {
    // Offset past the list: the generation and an empty name.
    assert_eq!(
        parse_directory_part(b"12\0\0"),
        Ok(DirectoryPart { generation: "12".into(), children: vec![], length: 0, last: true })
    );
    assert_eq!(
        parse_directory_part(b"12\0a\0bb\0\0"),
        Ok(DirectoryPart {
            generation: "12".into(),
            children: vec!["a".into(), "bb".into()],
            length: 5,
            last: true
        })
    );
    assert_eq!(
        parse_directory_part(b"12\0a\0bb\0"),
        Ok(DirectoryPart {
            generation: "12".into(),
            children: vec!["a".into(), "bb".into()],
            length: 5,
            last: false
        })
    );
    assert!(parse_directory_part(b"12").is_err());
    assert!(parse_directory_part(b"12\0a").is_err());
    assert!(parse_directory_part(b"12\0").is_err());
}

#[test]
fn rings_wrap_fill_and_refuse_bad_indexes() {
    for start in [0u32, 1000, u32::MAX - 10] {
        let mut page = FakePage::at(start);
        let data: Vec<u8> = (0..3000u32).map(|index| (index * 7) as u8).collect();
        // Fill the ring: exactly 1024 bytes fit.
        let mut producer = start;
        let written = REQUESTS.produce(&mut page, producer, &data).unwrap();
        assert_eq!(written, XENSTORE_RING_SIZE);
        producer = producer.wrapping_add(written as u32);
        assert_eq!(page.load(XS_REQ_PROD), producer);
        assert_eq!(REQUESTS.produce(&mut page, producer, &data[written..]), Ok(0));
        // Consume in odd pieces, producing more as room appears: the stream stays in order.
        let mut consumer = start;
        let mut got = Vec::new();
        let mut sent = written;
        while got.len() < data.len() {
            let mut out = [0u8; 333];
            let read = REQUESTS.consume(&mut page, consumer, &mut out).unwrap();
            consumer = consumer.wrapping_add(read as u32);
            got.extend_from_slice(&out[..read]);
            assert_eq!(page.load(XS_REQ_CONS), consumer);
            let more = REQUESTS.produce(&mut page, producer, &data[sent..]).unwrap();
            producer = producer.wrapping_add(more as u32);
            sent += more;
        }
        assert_eq!(got, data);
    }
    // A producer more than a ring ahead of the consumer, either way round.
    let mut page = FakePage::at(5);
    page.store(XS_RSP_PROD, 5 + 1025);
    assert_eq!(
        REPLIES.consume(&mut page, 5, &mut [0; 16]),
        Err(RingError::BadIndex { producer: 1030, consumer: 5 })
    );
    page.store(XS_REQ_CONS, 100);
    assert_eq!(
        REQUESTS.produce(&mut page, 5, b"x"),
        Err(RingError::BadIndex { producer: 5, consumer: 100 })
    );
    assert_eq!(page.load(XS_REQ_PROD), 5, "nothing published after a bad index");
}

#[test]
fn receiver_reassembles_messages_split_anywhere() {
    let messages: Vec<Vec<u8>> = vec![
        encode(msg::XS_READ, 1, 0, b"value"),
        encode(msg::XS_WATCH_EVENT, 0, 0, b"/a\0t\0"),
        encode(msg::XS_WRITE, 2, 3, &[]),
        encode(msg::XS_READ, 3, 0, &vec![0x5A; XENSTORE_PAYLOAD_MAX]),
    ];
    let stream: Vec<u8> = messages.concat();
    for piece in [1usize, 3, 16, 17, 100, 1024] {
        let mut page = FakePage::at(u32::MAX - 20);
        let mut producer = u32::MAX - 20;
        let mut consumer = producer;
        let mut receiver = Receiver::default();
        let mut got = Vec::new();
        let mut sent = 0;
        while got.len() < messages.len() {
            let end = (sent + piece).min(stream.len());
            let written = REPLIES.produce(&mut page, producer, &stream[sent..end]).unwrap();
            producer = producer.wrapping_add(written as u32);
            sent += written;
            while let Some(message) = receiver.receive(&mut page, REPLIES, &mut consumer).unwrap() {
                got.push(encode(
                    message.header.type_,
                    message.header.req_id,
                    message.header.tx_id,
                    &message.payload,
                ));
                assert_eq!(message.header.len as usize, message.payload.len());
            }
        }
        assert_eq!(got, messages, "pieces of {piece}");
        assert!(!receiver.is_partial());
    }
    // A header announcing more than XENSTORE_PAYLOAD_MAX is refused.
    let mut page = FakePage::at(0);
    let header = encode(msg::XS_READ, 1, 0, &[]);
    let mut bad = header.clone();
    bad[12..16].copy_from_slice(&4097u32.to_le_bytes());
    REPLIES.produce(&mut page, 0, &bad).unwrap();
    let mut consumer = 0;
    assert_eq!(
        Receiver::default().receive(&mut page, REPLIES, &mut consumer),
        Err(RingError::PayloadTooLong(4097))
    );
}

#[test]
fn basic_operations_against_the_store() {
    let mut bus = client();
    bus.write("/local/domain/1/name", b"guest").unwrap();
    assert_eq!(bus.read("/local/domain/1/name"), Ok(b"guest".to_vec()));
    assert_eq!(bus.read_string("/local/domain/1/name"), Ok("guest".to_string()));
    assert_eq!(bus.read("/nowhere"), Err(XsError::ENOENT));
    assert_eq!(bus.write("/forbidden", b"x"), Err(XsError::EACCES));
    bus.mkdir("/local/domain/1/dir").unwrap();
    bus.write("/local/domain/1/dir/a", b"").unwrap();
    bus.write("/local/domain/1/dir/b/c", b"1").unwrap();
    assert_eq!(bus.directory("/local/domain/1/dir"), Ok(vec!["a".to_string(), "b".to_string()]));
    assert_eq!(bus.directory("/local/domain/1/dir/a"), Ok(vec![]));
    bus.rm("/local/domain/1/dir/a").unwrap();
    assert_eq!(bus.read("/local/domain/1/dir/a"), Err(XsError::ENOENT));
    let perms = [
        Permission { domid: 1, access: Access::None },
        Permission { domid: 2, access: Access::Both },
    ];
    bus.set_perms("/local/domain/1/dir", &perms).unwrap();
    assert_eq!(bus.get_perms("/local/domain/1/dir"), Ok(perms.to_vec()));
    assert_eq!(bus.get_domain_path(7), Ok("/local/domain/7".to_string()));
    // Unknown types get the store's error, returned as it is by `raw`.
    let reply = bus.raw(msg::XS_TYPE_COUNT, 0, b"").unwrap();
    assert_eq!(reply.kind(), msg::XS_ERROR);
    assert_eq!(reply.into_result(msg::XS_TYPE_COUNT), Err(XsError::Errno(Errno::ENOSYS)));
    // Paths with NULs and oversized payloads never reach the ring.
    let requests = bus.transport().server.requests.len();
    assert_eq!(bus.read("/a\0b"), Err(XsError::InvalidArgument));
    let huge = vec![b'x'; XENSTORE_PAYLOAD_MAX];
    assert_eq!(bus.write("/big", &huge), Err(XsError::TooLarge(XENSTORE_PAYLOAD_MAX + 5)));
    assert_eq!(bus.transport().server.requests.len(), requests);
    assert_eq!(bus.stats().stray_replies, 0);
}

#[test]
fn messages_larger_than_the_ring_go_both_ways() {
    for start in [0, u32::MAX - 100] {
        let mut fake = Fake::at(start);
        fake.server.out_per_step = 300;
        let mut bus = Client::new(fake);
        let value: Vec<u8> = (0..XENSTORE_PAYLOAD_MAX - 10).map(|index| index as u8).collect();
        bus.write("/big", &value).unwrap();
        assert_eq!(bus.read("/big"), Ok(value));
        // Every request id was fresh and each reply matched.
        let ids: Vec<u32> = bus.transport().server.requests.iter().map(|h| h.req_id).collect();
        assert_eq!(ids, [1, 2]);
        assert!(!bus.transport().server.receiver.is_partial());
    }
}

#[test]
fn a_store_that_stops_for_a_while_costs_only_a_pause() {
    let mut fake = Fake::at(0);
    fake.dead_waits = 50;
    let mut bus = Client::new(fake);
    bus.write("/x", b"1").unwrap();
    assert_eq!(bus.read("/x"), Ok(b"1".to_vec()));
    // Each wait the store did not end re-sent the notification.
    assert_eq!(bus.stats().nudges, 50);
}

#[test]
fn bounded_waits_time_out_and_late_replies_are_dropped() {
    let mut bus = client();
    bus.transport_mut().dead_waits = 10;
    let deadline = bus.transport().now() + 3_000_000;
    assert_eq!(bus.raw_until(msg::XS_READ, 0, b"/x\0", Some(deadline)), Err(XsError::TimedOut));
    // The store answers the abandoned request later; the next call skips that reply.
    bus.write("/x", b"v").unwrap();
    assert_eq!(bus.read("/x"), Ok(b"v".to_vec()));
    assert_eq!(bus.stats().stray_replies, 1);
    // try_receive returns whatever reply is there, without waiting.
    assert_eq!(bus.try_receive(), Ok(None));
}

#[test]
fn raw_bytes_split_into_tiny_writes_make_one_request() {
    let mut bus = client();
    let req_id = bus.next_request_id();
    let message = encode(msg::XS_WRITE, req_id, 0, b"/tiny\0split");
    for byte in &message {
        bus.send_bytes(core::slice::from_ref(byte), None).unwrap();
        // Let the store look at every partial message.
        bus.transport_mut().wait(None);
    }
    let reply = bus.wait_reply(req_id, None).unwrap();
    assert_eq!(reply.into_result(msg::XS_WRITE), Ok(b"OK\0".to_vec()));
    assert_eq!(bus.read("/tiny"), Ok(b"split".to_vec()));
    assert!(bus.transport().notifies >= message.len() as u32);
}

#[test]
fn watches_dispatch_only_when_asked() {
    let mut bus = client();
    let seen = Rc::new(RefCell::new(Vec::new()));
    let record = seen.clone();
    bus.watch("/w", "tok", move |event| record.borrow_mut().push(event.clone())).unwrap();
    let other = Rc::new(RefCell::new(0));
    let count = other.clone();
    bus.watch("/v", "other", move |_| *count.borrow_mut() += 1).unwrap();
    assert_eq!(bus.watch("/elsewhere", "tok", |_| {}), Err(XsError::TokenInUse));
    bus.write("/w/a", b"1").unwrap();
    bus.write("/w", b"2").unwrap();
    bus.write("/unwatched", b"3").unwrap();
    // Events read while waiting for replies are queued, not dispatched.
    assert!(seen.borrow().is_empty());
    assert_eq!(bus.poll_watches(), Ok(4));
    let paths: Vec<String> = seen.borrow().iter().map(|event| event.path.clone()).collect();
    assert_eq!(paths, ["/w", "/w/a", "/w"]);
    assert!(seen.borrow().iter().all(|event| event.token == "tok"));
    assert_eq!(*other.borrow(), 1);
    // Nothing pending: poll returns at once, wait gives up at its deadline.
    assert_eq!(bus.poll_watches(), Ok(0));
    let deadline = bus.transport().now() + 5_000_000;
    assert_eq!(bus.wait_watches(Some(deadline)), Ok(0));
    // An event the store sends on its own is waited for.
    bus.transport_mut().server.fire("/w/late");
    assert_eq!(bus.wait_watches(None), Ok(1));
    assert_eq!(seen.borrow().last().unwrap().path, "/w/late");
    // After unwatch, the store sends nothing more; events still queued for it are dropped.
    bus.transport_mut().server.fire("/w/queued");
    bus.write("/x", b"").unwrap();
    bus.unwatch("/w", "tok").unwrap();
    bus.write("/w/after", b"").unwrap();
    assert_eq!(bus.poll_watches(), Ok(0));
    assert_eq!(bus.stats().unmatched_events, 1);
    assert_eq!(seen.borrow().len(), 4);
    // Reset drops every watch on both sides.
    bus.reset_watches().unwrap();
    assert!(bus.transport().server.watches.is_empty());
    bus.watch("/w", "tok", |_| {}).unwrap();
}

#[test]
fn malformed_watch_events_are_counted_and_dropped() {
    let mut bus = client();
    bus.transport_mut().server.out.extend(encode(msg::XS_WATCH_EVENT, 0, 0, b"/no-token"));
    bus.write("/x", b"").unwrap();
    assert_eq!(bus.poll_watches(), Ok(0));
    assert_eq!(bus.stats().malformed_events, 1);
}

#[test]
fn transactions_commit_and_retry_on_eagain() {
    let mut bus = client();
    bus.write("/count", b"0").unwrap();
    bus.transport_mut().server.fail_commits = 3;
    let mut runs = 0;
    let result = bus.transaction(|tx| {
        runs += 1;
        let count: u32 = tx.read_string("/count")?.parse().unwrap();
        tx.write("/count", format!("{}", count + 1).as_bytes())?;
        tx.write(&format!("/k{count}"), b"v")?;
        Ok(count + 1)
    });
    assert_eq!(result, Ok(1));
    assert_eq!(runs, 4);
    assert_eq!(bus.stats().transaction_retries, 3);
    assert_eq!(bus.read("/count"), Ok(b"1".to_vec()));
    assert_eq!(bus.read("/k0"), Ok(b"v".to_vec()));
    // Reads and writes carried the transaction's id.
    let server = &bus.transport().server;
    assert!(server.requests.iter().any(|h| h.type_ == msg::XS_WRITE && h.tx_id == 4));
    assert_eq!(server.ended, [(1, true), (2, true), (3, true), (4, true)]);
}

#[test]
fn transactions_give_up_after_the_bound_and_abort_on_errors() {
    let mut bus = client();
    bus.transport_mut().server.fail_commits = u32::MAX;
    assert_eq!(bus.transaction(|tx| tx.write("/x", b"1")), Err(XsError::EAGAIN));
    assert_eq!(bus.stats().transaction_retries, u64::from(MAX_TRANSACTION_ATTEMPTS) - 1);
    assert_eq!(bus.read("/x"), Err(XsError::ENOENT));

    let mut bus = client();
    let result: Result<(), XsError> = bus.transaction(|tx| {
        tx.write("/y", b"1")?;
        tx.read("/missing").map(|_| ())
    });
    assert_eq!(result, Err(XsError::ENOENT));
    assert_eq!(bus.transport().server.ended, [(1, false)]);
    assert_eq!(bus.read("/y"), Err(XsError::ENOENT));

    // EAGAIN from the body discards and retries too.
    let mut bus = client();
    let mut runs = 0;
    let result = bus.transaction(|tx| {
        runs += 1;
        if runs < 3 {
            return Err(XsError::EAGAIN);
        }
        tx.write("/z", b"1")
    });
    assert_eq!(result, Ok(()));
    assert_eq!(bus.transport().server.ended, [(1, false), (2, false), (3, true)]);
    assert_eq!(bus.stats().transaction_retries, 2);

    // A request naming a transaction the store does not know.
    let reply = bus.raw(msg::XS_READ, 0xdead, b"/z\0").unwrap();
    assert_eq!(reply.into_result(msg::XS_READ), Err(XsError::ENOENT));
}

#[test]
fn long_directories_come_in_parts() {
    let mut bus = client();
    for index in 0..300 {
        bus.write(&format!("/d/child-{index:04}"), b"").unwrap();
    }
    let expected: Vec<String> = (0..300).map(|index| format!("child-{index:04}")).collect();
    bus.transport_mut().server.directory_limit = 100;
    bus.transport_mut().server.part_limit = 250;
    assert_eq!(bus.directory("/d"), Ok(expected.clone()));
    let parts = |bus: &Client<Fake>| {
        bus.transport().server.requests.iter().filter(|h| h.type_ == msg::XS_DIRECTORY_PART).count()
    };
    assert_eq!(parts(&bus), 300 * 11 / 250 + 1);
    // The node changed between parts: the client starts over.
    bus.transport_mut().server.bump_generation_once = true;
    let before = parts(&bus);
    assert_eq!(bus.directory("/d"), Ok(expected));
    // (The change shows in the second part; then all 14 again.)
    assert_eq!(parts(&bus) - before, 2 + 300 * 11 / 250 + 1);
}

#[test]
fn a_broken_ring_or_a_dropped_connection_is_reported() {
    // The store's producer runs more than a ring ahead of our consumer.
    let mut bus = client();
    bus.transport_mut().dead_waits = u32::MAX;
    bus.transport_mut().on_wait = Some(Box::new(|page, _| page.store(XS_RSP_PROD, 2000)));
    let broken = XsError::Ring(RingError::BadIndex { producer: 2000, consumer: 0 });
    assert_eq!(bus.read("/x"), Err(broken));
    assert_eq!(bus.read("/x"), Err(broken), "the rings stay broken");

    // The store announces an oversized payload.
    let mut bus = client();
    let mut header = encode(msg::XS_READ, 1, 0, &[]);
    header[12..16].copy_from_slice(&5000u32.to_le_bytes());
    bus.transport_mut().server.out.extend(header);
    assert_eq!(bus.read("/x"), Err(XsError::Ring(RingError::PayloadTooLong(5000))));

    // The error field counts only once the store offers the feature.
    let mut bus = client();
    bus.transport_mut().page.store(XS_ERROR_FIELD, 3);
    bus.write("/x", b"").unwrap();
    bus.transport_mut().page.store(XS_SERVER_FEATURES, XENSTORE_SERVER_FEATURE_ERROR);
    assert_eq!(bus.error_field(), 3);
    assert_eq!(bus.read("/x"), Err(XsError::Disconnected(3)));

    // Set while a reply is awaited, it ends the wait.
    let mut fake = Fake::at(0);
    fake.dead_waits = u32::MAX;
    fake.page.store(XS_SERVER_FEATURES, XENSTORE_SERVER_FEATURE_ERROR);
    fake.on_wait = Some(Box::new(|page, waits| {
        if waits == 5 {
            page.store(XS_ERROR_FIELD, 1);
        }
    }));
    let mut bus = Client::new(fake);
    assert_eq!(bus.read("/x"), Err(XsError::Disconnected(1)));
}

#[test]
fn a_reconnection_in_progress_is_waited_out() {
    let mut fake = Fake::at(77);
    fake.page.store(XS_SERVER_FEATURES, XENSTORE_SERVER_FEATURE_RECONNECTION);
    fake.page.store(XS_CONNECTION, 1);
    fake.on_wait = Some(Box::new(|page, waits| {
        if waits == 4 {
            page.store(XS_CONNECTION, XENSTORE_CONNECTED);
        }
    }));
    let mut bus = Client::new(fake);
    assert_eq!(bus.transport().waits, 4);
    bus.write("/x", b"1").unwrap();
    assert_eq!(bus.read("/x"), Ok(b"1".to_vec()));
}

#[test]
fn request_ids_skip_zero_when_they_wrap() {
    let mut bus = client();
    bus.next_req_id = u32::MAX;
    assert_eq!(bus.next_request_id(), u32::MAX);
    assert_eq!(bus.next_request_id(), 1);
}

/// Runs the simulated store once, as if it had been scheduled (the non-blocking calls never
/// wait, so the store runs only when the test says).
fn store_runs(bus: &mut Client<Fake>) {
    let fake = bus.transport_mut();
    fake.server.step(&mut fake.page);
}

#[test]
fn requests_sent_without_waiting_are_answered_by_polling() {
    let mut bus = client();
    let watch = bus.send_request(msg::XS_WATCH, 0, b"/tool/focus\0tok\0").unwrap();
    // Nothing has run yet: no reply, no event, and the client never waited.
    assert_eq!(bus.try_receive(), Ok(None));
    assert_eq!(bus.next_event(), Ok(None));
    store_runs(&mut bus);
    let reply = bus.try_receive().unwrap().expect("the watch's reply");
    assert_eq!((reply.header.req_id, reply.kind()), (watch, msg::XS_WATCH));
    // The store fires a new watch once; the event comes raw, whatever its token.
    let event = bus.next_event().unwrap().expect("the first firing");
    assert_eq!(event, WatchEvent { path: "/tool/focus".into(), token: "tok".into() });
    let read = bus.send_request(msg::XS_READ, 0, b"/tool/focus\0").unwrap();
    assert_ne!(read, watch);
    store_runs(&mut bus);
    let reply = bus.try_receive().unwrap().expect("the read's reply");
    assert_eq!(reply.header.req_id, read);
    assert_eq!(reply.into_result(msg::XS_READ), Err(XsError::ENOENT));
    assert_eq!(bus.transport().waits, 0, "a non-blocking call waited");
    // A store that is away: the request sits in the ring; a nudge re-signals it.
    let notifies = bus.transport().notifies;
    let write = bus.send_request(msg::XS_WRITE, 0, b"/tool/focus\x003 1").unwrap();
    bus.nudge();
    assert_eq!(bus.transport().notifies, notifies + 2);
    assert_eq!(bus.stats().nudges, 1);
    assert_eq!(bus.try_receive(), Ok(None));
    store_runs(&mut bus);
    assert_eq!(bus.try_receive().unwrap().map(|reply| reply.header.req_id), Some(write));
    assert_eq!(bus.next_event().unwrap().map(|event| event.path), Some("/tool/focus".into()));
}

#[test]
fn a_request_that_does_not_fit_is_not_sent_at_all() {
    let mut bus = client();
    // The store is away: requests pile up in the ring until one does not fit.
    let payload = [&b"/p\0"[..], &[b'x'; 297]].concat();
    let mut sent = 0;
    loop {
        match bus.send_request(msg::XS_WRITE, 0, &payload) {
            Ok(_) => sent += 1,
            Err(error) => {
                assert_eq!(error, XsError::RingFull);
                break;
            }
        }
    }
    assert_eq!(sent, XENSTORE_RING_SIZE / (XSD_SOCKMSG_SIZE + 300));
    let used = bus.transport().load(XS_REQ_PROD);
    assert_eq!(used as usize, sent * (XSD_SOCKMSG_SIZE + 300), "a partial message was written");
    // Once the store has run, there is room again, and every request is answered in order.
    store_runs(&mut bus);
    assert!(bus.send_request(msg::XS_READ, 0, b"/x\0").is_ok());
    store_runs(&mut bus);
    let mut answered = 0;
    while let Some(reply) = bus.try_receive().unwrap() {
        answered += 1;
        assert_eq!(reply.header.req_id, answered);
    }
    assert_eq!(answered as usize, sent + 1);
    // Too large is refused before anything else.
    let huge = vec![b'y'; XENSTORE_PAYLOAD_MAX + 1];
    assert_eq!(bus.send_request(msg::XS_WRITE, 0, &huge), Err(XsError::TooLarge(huge.len())));
}
