//! Conformance cases: Domain management, CONTROL, and the wire protocol (unknown types, framing, back-pressure).

use super::*;

pub(super) fn domain_cases() -> Vec<Case> {
    vec![
        case(
            "get_domain_path",
            vec![r(1, XS_GET_DOMAIN_PATH, 0, "5\0", reply("/local/domain/5\0"))],
        ),
        case(
            "get_domain_path takes any number",
            vec![r(1, XS_GET_DOMAIN_PATH, 0, "-1\0", reply("/local/domain/4294967295\0"))],
        ),
        case("get_domain_path without NUL", vec![r(1, XS_GET_DOMAIN_PATH, 0, "5", err("EINVAL"))]),
        case(
            "is_domain_introduced",
            vec![
                r(0, XS_IS_DOMAIN_INTRODUCED, 0, "1\0", reply("T\0")),
                r(0, XS_IS_DOMAIN_INTRODUCED, 0, "9\0", reply("F\0")),
                r(0, XS_IS_DOMAIN_INTRODUCED, 0, "32752\0", reply("T\0")),
                r(0, XS_IS_DOMAIN_INTRODUCED, 0, "1", err("EINVAL")),
            ],
        ),
        case(
            "is_domain_introduced is privileged",
            vec![r(1, XS_IS_DOMAIN_INTRODUCED, 0, "1\0", err("EACCES"))],
        ),
        case(
            "introduce makes a connection and asks the binary to map its ring",
            vec![
                r(0, XS_INTRODUCE, 0, "5\x004096\x007\0", ok()),
                effects(vec![Effect::Introduce { domid: 5, ring: Ring { gfn: 4096, port: 7 } }]),
                r(0, XS_IS_DOMAIN_INTRODUCED, 0, "5\0", reply("T\0")),
                r(5, XS_GET_DOMAIN_PATH, 0, "5\0", reply("/local/domain/5\0")),
                r(5, XS_WRITE, 0, "x\0v", err("EACCES")),
                r(0, XS_MKDIR, 0, "/local/domain/5\0", ok()),
                r(0, XS_SET_PERMS, 0, "/local/domain/5\0n5\0", ok()),
                r(5, XS_WRITE, 0, "x\0v", ok()),
            ],
        ),
        case(
            "introduce with two arguments",
            vec![r(0, XS_INTRODUCE, 0, "5\x004096\0", err("EINVAL"))],
        ),
        case("introduce with port 0", vec![r(0, XS_INTRODUCE, 0, "5\x001\x000\0", err("EINVAL"))]),
        case("introduce with a bad gfn", vec![r(0, XS_INTRODUCE, 0, "5\0x\x007\0", err("EINVAL"))]),
        case(
            "introduce of a reserved domid",
            vec![r(0, XS_INTRODUCE, 0, "32752\x001\x001\0", err("EINVAL"))],
        ),
        case(
            "introduce of the caller itself",
            vec![r(0, XS_INTRODUCE, 0, "0\x001\x001\0", err("EINVAL"))],
        ),
        case(
            "introduce is privileged",
            vec![r(1, XS_INTRODUCE, 0, "5\x001\x001\0", err("EACCES"))],
        ),
        case(
            "introducing a connected domain again resets its connection",
            vec![
                r(1, XS_WATCH, 0, "a\0t\0", ok()),
                ev(1, &["a|t"]),
                call(|s| s.set_transport(1, Transport { req_cons: 5, rsp_prod: 6 })),
                r(0, XS_INTRODUCE, 0, "1\x0099\x009\0", ok()),
                effects(vec![Effect::Introduce { domid: 1, ring: Ring { gfn: 99, port: 9 } }]),
                custom(|s, _| {
                    let ok = s.transport(1) == Some(Transport::default())
                        && s.ring(1) == Some(Ring { gfn: 99, port: 9 });
                    if ok {
                        Ok(())
                    } else {
                        Err("transport or ring not reset".into())
                    }
                }),
                r(1, XS_WRITE, 0, "a\0v", ok()),
                no_ev(1),
            ],
        ),
        case(
            "release drops the connection and the domain's nodes, and fires watches",
            vec![
                r(0, XS_WATCH, 0, "/local/domain\0w\0", ok()),
                ev(0, &["/local/domain|w"]),
                r(0, XS_RELEASE, 0, "1\0", ok()),
                effects(vec![Effect::Release { domid: 1 }]),
                ev(0, &["/local/domain/1|w"]),
                r(0, XS_READ, 0, "/local/domain/1/name\0", err("ENOENT")),
                r(0, XS_IS_DOMAIN_INTRODUCED, 0, "1\0", reply("F\0")),
                r(0, XS_RELEASE, 0, "1\0", err("ENOENT")),
            ],
        ),
        case(
            "release of domain 0 (or garbage, which atoi reads as 0)",
            vec![
                r(0, XS_RELEASE, 0, "0\0", err("EINVAL")),
                r(0, XS_RELEASE, 0, "abc\0", err("EINVAL")),
            ],
        ),
        case("release without NUL", vec![r(0, XS_RELEASE, 0, "1", err("EINVAL"))]),
        case("release is privileged", vec![r(1, XS_RELEASE, 0, "2\0", err("EACCES"))]),
        case(
            "resume",
            vec![
                r(0, XS_RESUME, 0, "2\0", ok()),
                effects(vec![Effect::Resume { domid: 2 }]),
                r(0, XS_RESUME, 0, "9\0", err("ENOENT")),
                r(0, XS_RESUME, 0, "0\0", err("EINVAL")),
            ],
        ),
        case("resume is privileged", vec![r(2, XS_RESUME, 0, "2\0", err("EACCES"))]),
        case(
            "set_target gives a device model its target's rights",
            vec![
                r(3, XS_READ, 0, "/local/domain/1/name\0", err("EACCES")),
                r(0, XS_SET_TARGET, 0, "3\x001\0", ok()),
                r(3, XS_READ, 0, "/local/domain/1/name\0", reply("guest1")),
                r(3, XS_WRITE, 0, "/local/domain/1/dm\0x", ok()),
                r(3, XS_GET_PERMS, 0, "/local/domain/1/dm\0", reply("n3\0")),
                r(2, XS_WRITE, 0, "x\0v", ok()),
                r(2, XS_SET_PERMS, 0, "x\0n2\0r1\0", ok()),
                r(3, XS_READ, 0, "/local/domain/2/x\0", reply("v")),
                r(3, XS_WRITE, 0, "/local/domain/2/x\0w", err("EACCES")),
            ],
        ),
        case(
            "set_target of an unknown domain",
            vec![
                r(0, XS_SET_TARGET, 0, "3\x009\0", err("ENOENT")),
                r(0, XS_SET_TARGET, 0, "9\x003\0", err("ENOENT")),
            ],
        ),
        case("set_target with one argument", vec![r(0, XS_SET_TARGET, 0, "3\0", err("EINVAL"))]),
        case("set_target is privileged", vec![r(1, XS_SET_TARGET, 0, "3\x001\0", err("EACCES"))]),
        case(
            "a dead domain's nodes go, and its permission entries stop applying",
            vec![
                r(0, XS_WRITE, 0, "/shared\0v", ok()),
                r(0, XS_SET_PERMS, 0, "/shared\0n0\0r2\0", ok()),
                r(2, XS_READ, 0, "/shared\0", reply("v")),
                call(|s| s.domain_gone(2)),
                custom(
                    |s, _| if s.is_connected(2) { Err("still connected".into()) } else { Ok(()) },
                ),
                r(0, XS_READ, 0, "/local/domain/2\0", err("ENOENT")),
                call(|s| s.add_domain(2, &NewDomain::new("reborn", 1, 1024)).unwrap()),
                r(2, XS_READ, 0, "/shared\0", err("EACCES")),
                r(0, XS_GET_PERMS, 0, "/shared\0", reply("n0\0r2\0")),
                r(2, XS_READ, 0, "name\0", reply("reborn")),
            ],
        ),
        case(
            "add_domain refuses a connected or reserved domid",
            vec![custom(|s, _| {
                let a = s.add_domain(1, &NewDomain::new("again", 1, 1024));
                let b = s.add_domain(0x7ff0, &NewDomain::new("reserved", 1, 1024));
                if a == Err(AddDomainError::Exists) && b == Err(AddDomainError::Reserved) {
                    Ok(())
                } else {
                    Err(format!("{a:?} {b:?}"))
                }
            })],
        ),
    ]
}

pub(super) fn control_cases() -> Vec<Case> {
    vec![
        case(
            "control help",
            vec![r(0, XS_CONTROL, 0, "help\0", reply("check\t\nlog\ton|off\nprint\t<string>\nquota\t[set <name> <val>|<domid>]\nhelp\t\n\0"))],
        ),
        case("control is privileged", vec![r(1, XS_CONTROL, 0, "help\0", err("EACCES"))]),
        case(
            "control log",
            vec![
                r(0, XS_CONTROL, 0, "log\0on\0", ok()),
                effects(vec![Effect::Logging { enabled: true }]),
                custom(|s, _| if s.logging() { Ok(()) } else { Err("logging off".into()) }),
                r(0, XS_CONTROL, 0, "log\0maybe\0", err("EINVAL")),
                r(0, XS_CONTROL, 0, "log\0", err("EINVAL")),
            ],
        ),
        case(
            "control quota shows the settings",
            vec![r(0, XS_CONTROL, 0, "quota\0", Exp::Check(|p| p.starts_with(b"Quota settings:\nnodes            :     1000 Nodes per domain\nwatches          :      128 ")))],
        ),
        case(
            "control quota set",
            vec![
                r(0, XS_CONTROL, 0, "quota\0set\0watches\x002\0", ok()),
                r(1, XS_WATCH, 0, "a\0t\0", ok()),
                r(1, XS_WATCH, 0, "b\0t\0", ok()),
                r(1, XS_WATCH, 0, "c\0t\0", err("E2BIG")),
                r(0, XS_CONTROL, 0, "quota\0set\0nope\x002\0", err("EINVAL")),
                r(0, XS_CONTROL, 0, "quota\0set\0nodes\x000\0", err("EINVAL")),
                r(0, XS_CONTROL, 0, "quota\0set\0nodes\0", err("EINVAL")),
            ],
        ),
        case(
            "control quota of a domain",
            vec![
                r(1, XS_WATCH, 0, "a\0t\0", ok()),
                r(
                    0,
                    XS_CONTROL,
                    0,
                    "quota\x001\0",
                    reply("Domain 1:\nnodes           :       32\nwatches         :        1\ntransactions    :        0\noutstanding     :        0\n\0"),
                ),
                r(0, XS_CONTROL, 0, "quota\x009\0", err("ENOENT")),
            ],
        ),
        case("control with an unknown command", vec![r(0, XS_CONTROL, 0, "frob\0", err("EINVAL"))]),
        case("control without NUL", vec![r(0, XS_CONTROL, 0, "help", err("EINVAL")), r(0, XS_CONTROL, 0, "", err("EINVAL"))]),
        case("control check", vec![r(0, XS_CONTROL, 0, "check\0", ok()), r(0, XS_CONTROL, 0, "check\0x\0", err("EINVAL"))]),
        case(
            "control print",
            vec![r(0, XS_CONTROL, 0, "print\0hello\0", ok()), effects(vec![Effect::Print { text: "hello".into() }])],
        ),
    ]
}

pub(super) fn protocol_cases() -> Vec<Case> {
    vec![
        case(
            "unknown and output-only types are ENOSYS",
            vec![
                r(1, 99, 0, "", err("ENOSYS")),
                r(1, XS_WATCH_EVENT, 0, "a\0t\0", err("ENOSYS")),
                r(1, XS_ERROR, 0, "EINVAL\0", err("ENOSYS")),
                r(1, 20, 0, "", err("ENOSYS")),
                r(1, XS_TYPE_COUNT, 0, "", err("ENOSYS")),
                r(1, 99, 42, "", err("ENOSYS")),
            ],
        ),
        case(
            "checks in Xen's order: privilege before transaction id",
            vec![
                r(1, XS_INTRODUCE, 42, "5\x001\x001\0", err("EACCES")),
                r(0, XS_CONTROL, 42, "help\0", err("ENOENT")),
            ],
        ),
        case(
            "a header announcing more than 4096 bytes: the connection is dropped, others go on",
            vec![
                r(1, XS_WATCH, 0, "a\0t\0", ok()),
                custom(|s, _| {
                    let mut bytes = wire::encode_message(XS_READ, 1, 0, b"");
                    bytes[12..16].copy_from_slice(&4097u32.to_le_bytes());
                    let result = s.receive(1, &bytes);
                    if result != Err(ProtocolError::PayloadTooLong { len: 4097 }) {
                        return Err(format!("{result:?}"));
                    }
                    let after = s.receive(1, &wire::encode_message(XS_READ, 2, 0, b"name\0"));
                    let ok = result.unwrap_err().ring_error() == 3
                        && !s.is_connected(1)
                        && s.is_ignored(1)
                        && after == Ok(0)
                        && s.output(1).is_empty()
                        && !s.connections().any(|d| d == 1);
                    if ok {
                        Ok(())
                    } else {
                        Err("connection still served".into())
                    }
                }),
                r(2, XS_READ, 0, "name\0", reply("guest2")),
                r(0, XS_IS_DOMAIN_INTRODUCED, 0, "1\0", reply("T\0")),
                r(0, XS_INTRODUCE, 0, "1\x001\x001\0", ok()),
                r(1, XS_READ, 0, "name\0", reply("guest1")),
            ],
        ),
        case(
            "a request split across many receives",
            vec![custom(|s, _| {
                let bytes = wire::encode_message(XS_READ, 5, 0, b"name\0");
                for byte in &bytes[..bytes.len() - 1] {
                    if s.receive(1, std::slice::from_ref(byte)) != Ok(1) || !s.output(1).is_empty()
                    {
                        return Err("early reply".into());
                    }
                }
                s.receive(1, &bytes[bytes.len() - 1..]).map_err(|e| e.to_string())?;
                let got = common::drain_chunked(s, 1, 3);
                if got.len() == 1 && got[0].payload == b"guest1" {
                    Ok(())
                } else {
                    Err(format!("{got:?}"))
                }
            })],
        ),
        case(
            "outstanding: input is not consumed while 20 replies wait",
            vec![custom(|s, _| {
                let one = wire::encode_message(XS_READ, 1, 0, b"name\0");
                let many: Vec<u8> = one.iter().copied().cycle().take(one.len() * 25).collect();
                let used = s.receive(1, &many).map_err(|e| e.to_string())?;
                if used != one.len() * 20 {
                    return Err(format!("consumed {used}"));
                }
                if s.receive(1, &many[used..]) != Ok(0) {
                    return Err("consumed past the quota".into());
                }
                let first = common::drain(s, 1);
                let used2 = s.receive(1, &many[used..]).map_err(|e| e.to_string())?;
                let second = common::drain(s, 1);
                if first.len() == 20 && used2 == one.len() * 5 && second.len() == 5 {
                    Ok(())
                } else {
                    Err(format!("{} {used2} {}", first.len(), second.len()))
                }
            })],
        ),
        case(
            "the control domain is throttled the same way",
            vec![custom(|s, _| {
                let one = wire::encode_message(XS_READ, 1, 0, b"/local\0");
                let many: Vec<u8> = one.iter().copied().cycle().take(one.len() * 30).collect();
                let used = s.receive(0, &many).map_err(|e| e.to_string())?;
                if used == one.len() * 20 {
                    Ok(())
                } else {
                    Err(format!("consumed {used}"))
                }
            })],
        ),
        case(
            "receive for an unknown domain consumes nothing",
            vec![custom(|s, _| {
                if s.receive(9, b"abc") == Ok(0) {
                    Ok(())
                } else {
                    Err("consumed".into())
                }
            })],
        ),
        case(
            "stats count nodes, connections, watches, transactions",
            vec![
                r(1, XS_WATCH, 0, "a\0t\0", ok()),
                r(1, XS_TRANSACTION_START, 0, "\0", reply("1\0")),
                custom(|s, _| {
                    let stats = s.stats();
                    // /, /tool, /tool/xenstored, /vm, /local, /local/domain; the control
                    // domain's 25 + 2 for its vCPU, each guest's GUEST_NODES; 4 under each
                    // /vm/<uuid>.
                    let nodes = 6 + 27 + 3 * GUEST_NODES as usize + 4 * 4;
                    let ok = stats.nodes == nodes
                        && stats.connections == 4
                        && stats.watches == 1
                        && stats.transactions == 1;
                    if ok {
                        Ok(())
                    } else {
                        Err(format!("{stats:?}"))
                    }
                }),
            ],
        ),
    ]
}
