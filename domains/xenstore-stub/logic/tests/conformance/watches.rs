//! Conformance cases: Watches (including special ones, relative paths, RESET_WATCHES, event limits) and
//! transactions (commit, abort, conflicts, quotas, doomed after a restart).

use super::*;

pub(super) fn watch_cases() -> Vec<Case> {
    vec![
        case(
            "watch replies, then fires once with the watched path",
            vec![custom(|s, _| {
                let got = request(s, 1, XS_WATCH, 0, b"a\0tok\0");
                let ok = got.len() == 2
                    && !got[0].is_event()
                    && got[0].payload == b"OK\0"
                    && got[1].is_event()
                    && got[1].payload == b"a\0tok\0"
                    && got[1].header.req_id == 0
                    && got[1].header.tx_id == 0;
                if ok {
                    Ok(())
                } else {
                    Err(format!("{got:?}"))
                }
            })],
        ),
        case(
            "events a request causes come before its reply",
            vec![
                r(1, XS_WATCH, 0, "a\0t\0", ok()),
                no_ev(2),
                custom(|s, h| {
                    h.collect(s);
                    h.events.clear();
                    let got = request(s, 1, XS_WRITE, 0, b"a\0v");
                    if got.len() == 2 && got[0].is_event() && !got[1].is_event() {
                        Ok(())
                    } else {
                        Err(format!("{got:?}"))
                    }
                }),
            ],
        ),
        case(
            "relative watches report relative paths",
            vec![
                r(1, XS_WATCH, 0, "a\0tok\0", ok()),
                ev(1, &["a|tok"]),
                r(1, XS_WRITE, 0, "a/b\0v", ok()),
                ev(1, &["a/b|tok"]),
            ],
        ),
        case(
            "absolute watches report absolute paths",
            vec![
                r(1, XS_WATCH, 0, "/local/domain/1/a\0t\0", ok()),
                ev(1, &["/local/domain/1/a|t"]),
                r(1, XS_WRITE, 0, "a\0v", ok()),
                ev(1, &["/local/domain/1/a|t"]),
            ],
        ),
        case(
            "a watch does not match a sibling with a longer name",
            vec![
                r(1, XS_WATCH, 0, "a\0t\0", ok()),
                ev(1, &["a|t"]),
                r(1, XS_WRITE, 0, "ab\0v", ok()),
                no_ev(1),
            ],
        ),
        case(
            "a watch on an ancestor sees writes below it",
            vec![
                r(1, XS_WATCH, 0, "/local/domain/1\0t\0", ok()),
                ev(1, &["/local/domain/1|t"]),
                r(1, XS_WRITE, 0, "x/y\0v", ok()),
                ev(1, &["/local/domain/1/x/y|t"]),
            ],
        ),
        case(
            "a duplicate watch is EEXIST; another token is fine",
            vec![
                r(1, XS_WATCH, 0, "a\0t\0", ok()),
                r(1, XS_WATCH, 0, "a\0t\0", err("EEXIST")),
                r(1, XS_WATCH, 0, "/local/domain/1/a\0t\0", err("EEXIST")),
                r(1, XS_WATCH, 0, "a\0u\0", ok()),
                ev(1, &["a|t", "a|u"]),
                r(1, XS_WRITE, 0, "a\0v", ok()),
                ev(1, &["a|t", "a|u"]),
            ],
        ),
        case("watch with an invalid path", vec![r(1, XS_WATCH, 0, "a//b\0t\0", err("EINVAL"))]),
        case("watch without token", vec![r(1, XS_WATCH, 0, "a\0", err("EINVAL"))]),
        case(
            "watch with a depth (not in 4.17)",
            vec![r(1, XS_WATCH, 0, "a\0t\x001\0", err("EINVAL"))],
        ),
        case(
            "watches quota: a guest's watch past 128 is E2BIG; the control domain is exempt",
            vec![custom(|s, _| {
                // Under Miri, the same with a smaller quota (it is slow).
                let quota = if cfg!(miri) { 16 } else { 128 };
                if cfg!(miri) {
                    common::call(s, 0, XS_CONTROL, 0, b"quota\0set\0watches\x0016\0");
                }
                for i in 0..quota {
                    let (ty, _) = common::call(s, 1, XS_WATCH, 0, format!("w{i}\0t\0").as_bytes());
                    if ty != XS_WATCH {
                        return Err(format!("watch {i} failed"));
                    }
                }
                let (ty, payload) = common::call(s, 1, XS_WATCH, 0, b"last\0t\0");
                if ty != XS_ERROR || payload != b"E2BIG\0" {
                    return Err(format!("watch past the quota: {ty} {payload:?}"));
                }
                for i in 0..quota + 20 {
                    let (ty, _) = common::call(s, 0, XS_WATCH, 0, format!("/w{i}\0t\0").as_bytes());
                    if ty != XS_WATCH {
                        return Err(format!("privileged watch {i} failed"));
                    }
                }
                Ok(())
            })],
        ),
        case(
            "unwatch stops events",
            vec![
                r(1, XS_WATCH, 0, "a\0t\0", ok()),
                r(1, XS_UNWATCH, 0, "a\0t\0", ok()),
                ev(1, &["a|t"]),
                r(1, XS_WRITE, 0, "a\0v", ok()),
                no_ev(1),
            ],
        ),
        case("unwatch of an unknown watch", vec![r(1, XS_UNWATCH, 0, "a\0t\0", err("ENOENT"))]),
        case("unwatch with one string", vec![r(1, XS_UNWATCH, 0, "a\0", err("EINVAL"))]),
        case(
            "events only reach connections that may read the node or its parent",
            vec![
                r(2, XS_WATCH, 0, "/local/domain/1\0w\0", ok()),
                ev(2, &["/local/domain/1|w"]),
                r(1, XS_WRITE, 0, "x\0v", ok()),
                no_ev(2),
                r(1, XS_MKDIR, 0, "pub\0", ok()),
                r(1, XS_SET_PERMS, 0, "pub\0n1\0r2\0", ok()),
                ev(2, &["/local/domain/1/pub|w"]),
                r(1, XS_WRITE, 0, "pub/s\0v", ok()),
                r(1, XS_SET_PERMS, 0, "pub/s\0n1\0", ok()),
                ev(2, &["/local/domain/1/pub/s|w", "/local/domain/1/pub/s|w"]),
                r(1, XS_WRITE, 0, "pub/s\0w", ok()),
                ev(2, &["/local/domain/1/pub/s|w"]),
            ],
        ),
        case(
            "rm fires for the node (and watches above it) and exactly for each removed child",
            vec![
                r(1, XS_WRITE, 0, "a/b/c\0v", ok()),
                r(1, XS_WRITE, 0, "a/b/d\0v", ok()),
                r(1, XS_WATCH, 0, "a\0t1\0", ok()),
                r(1, XS_WATCH, 0, "a/b/c\0t2\0", ok()),
                r(1, XS_WATCH, 0, "a/b/zz\0t3\0", ok()),
                r(1, XS_WATCH, 0, "/local/domain/1\0t4\0", ok()),
                ev(1, &["a|t1", "a/b/c|t2", "a/b/zz|t3", "/local/domain/1|t4"]),
                r(1, XS_RM, 0, "a\0", ok()),
                ev(1, &["a/b/c|t2", "a|t1", "/local/domain/1/a|t4"]),
            ],
        ),
        case(
            "mkdir of an existing node fires nothing",
            vec![
                r(1, XS_MKDIR, 0, "d\0", ok()),
                r(1, XS_WATCH, 0, "d\0t\0", ok()),
                ev(1, &["d|t"]),
                r(1, XS_MKDIR, 0, "d\0", ok()),
                no_ev(1),
            ],
        ),
        case(
            "watch ignores tx_id and echoes it",
            vec![r(1, XS_WATCH, 99, "a\0t\0", ok()), r(1, XS_UNWATCH, 99, "a\0t\0", ok())],
        ),
        case(
            "@introduceDomain fires on INTRODUCE of a new domain only",
            vec![
                r(0, XS_WATCH, 0, "@introduceDomain\0i\0", ok()),
                ev(0, &["@introduceDomain|i"]),
                r(0, XS_INTRODUCE, 0, "5\x004096\x007\0", ok()),
                ev(0, &["@introduceDomain|i"]),
                r(0, XS_INTRODUCE, 0, "5\x004096\x007\0", ok()),
                no_ev(0),
            ],
        ),
        case(
            "@releaseDomain fires on RELEASE, death, and shutdown once until RESUME",
            vec![
                r(0, XS_WATCH, 0, "@releaseDomain\0r\0", ok()),
                ev(0, &["@releaseDomain|r"]),
                r(0, XS_RELEASE, 0, "1\0", ok()),
                ev(0, &["@releaseDomain|r"]),
                call(|s| s.domain_gone(2)),
                ev(0, &["@releaseDomain|r"]),
                call(|s| s.domain_shutdown(3)),
                ev(0, &["@releaseDomain|r"]),
                call(|s| s.domain_shutdown(3)),
                no_ev(0),
                r(0, XS_RESUME, 0, "3\0", ok()),
                call(|s| s.domain_shutdown(3)),
                ev(0, &["@releaseDomain|r"]),
            ],
        ),
        case(
            "special events need read permission on the special node",
            vec![
                r(1, XS_WATCH, 0, "@releaseDomain\0r\0", ok()),
                ev(1, &["@releaseDomain|r"]),
                call(|s| s.domain_gone(2)),
                no_ev(1),
            ],
        ),
        case(
            "reset_watches drops watches and transactions",
            vec![
                r(1, XS_WATCH, 0, "a\0t\0", ok()),
                r(1, XS_TRANSACTION_START, 0, "\0", reply("1\0")),
                r(1, XS_RESET_WATCHES, 0, "\0", ok()),
                ev(1, &["a|t"]),
                r(1, XS_WRITE, 0, "a\0v", ok()),
                no_ev(1),
                r(1, XS_TRANSACTION_END, 1, "T\0", err("ENOENT")),
            ],
        ),
        case(
            "identical queued events are sent once; special ones are not merged",
            vec![
                r(1, XS_WATCH, 0, "a\0t\0", ok()),
                r(0, XS_WATCH, 0, "@releaseDomain\0r\0", ok()),
                ev(1, &["a|t"]),
                ev(0, &["@releaseDomain|r"]),
                custom(|s, _| {
                    for value in [&b"a\0one"[..], b"a\0two"] {
                        let bytes = wire::encode_message(XS_WRITE, 1, 0, value);
                        s.receive(1, &bytes).map_err(|e| e.to_string())?;
                    }
                    s.domain_shutdown(2);
                    s.domain_shutdown(3);
                    Ok(())
                }),
                ev(1, &["a|t"]),
                ev(0, &["@releaseDomain|r", "@releaseDomain|r"]),
            ],
        ),
        case(
            "watch-events quota: events to a connection that does not read are dropped",
            vec![
                r(0, XS_CONTROL, 0, "quota\0set\0watch-events\x003\0", ok()),
                r(2, XS_WATCH, 0, "/local/domain/2\0t\0", ok()),
                ev(2, &["/local/domain/2|t"]),
                custom(|s, _| {
                    for i in 0..10 {
                        common::call(
                            s,
                            0,
                            XS_WRITE,
                            0,
                            format!("/local/domain/2/k{i}\0v").as_bytes(),
                        );
                    }
                    Ok(())
                }),
                ev(2, &["/local/domain/2/k0|t", "/local/domain/2/k1|t", "/local/domain/2/k2|t"]),
            ],
        ),
    ]
}

pub(super) fn transaction_cases() -> Vec<Case> {
    let start =
        |dom: u16, id: &str| r(dom, XS_TRANSACTION_START, 0, "\0", reply(format!("{id}\0")));
    vec![
        case("transaction ids count from 1", vec![start(1, "1"), start(1, "2"), start(2, "1")]),
        case(
            "a transaction sees its writes; others see them after commit",
            vec![
                start(1, "1"),
                r(1, XS_WRITE, 1, "t\0v", ok()),
                r(1, XS_READ, 0, "t\0", err("ENOENT")),
                r(1, XS_READ, 1, "t\0", reply("v")),
                r(1, XS_DIRECTORY, 1, "/local/domain/1\0", reply(format!("{HOME_CHILDREN}t\0"))),
                r(1, XS_TRANSACTION_END, 1, "T\0", ok()),
                r(1, XS_READ, 0, "t\0", reply("v")),
            ],
        ),
        case(
            "watch events fire at commit, not before",
            vec![
                r(1, XS_WATCH, 0, "t\0tok\0", ok()),
                ev(1, &["t|tok"]),
                start(1, "1"),
                r(1, XS_WRITE, 1, "t\0v", ok()),
                no_ev(1),
                r(1, XS_TRANSACTION_END, 1, "T\0", ok()),
                ev(1, &["t|tok"]),
            ],
        ),
        case(
            "abort discards",
            vec![
                r(1, XS_WATCH, 0, "t\0tok\0", ok()),
                start(1, "1"),
                r(1, XS_WRITE, 1, "t\0v", ok()),
                r(1, XS_TRANSACTION_END, 1, "F\0", ok()),
                r(1, XS_READ, 0, "t\0", err("ENOENT")),
                ev(1, &["t|tok"]),
            ],
        ),
        case(
            "a node read in the transaction and changed outside: EAGAIN",
            vec![
                r(1, XS_WRITE, 0, "x\0a", ok()),
                start(1, "1"),
                r(1, XS_READ, 1, "x\0", reply("a")),
                r(0, XS_WRITE, 0, "/local/domain/1/x\0b", ok()),
                r(1, XS_READ, 1, "x\0", reply("a")),
                r(1, XS_WRITE, 1, "x\0c", ok()),
                r(1, XS_TRANSACTION_END, 1, "T\0", err("EAGAIN")),
                r(1, XS_READ, 0, "x\0", reply("b")),
                r(1, XS_TRANSACTION_END, 1, "T\0", err("ENOENT")),
            ],
        ),
        case(
            "a node found missing in the transaction and created outside: EAGAIN",
            vec![
                start(1, "1"),
                r(1, XS_READ, 1, "y\0", err("ENOENT")),
                r(0, XS_WRITE, 0, "/local/domain/1/y\0v", ok()),
                r(1, XS_TRANSACTION_END, 1, "T\0", err("EAGAIN")),
            ],
        ),
        case(
            "unrelated changes do not conflict",
            vec![
                start(1, "1"),
                r(1, XS_WRITE, 1, "p\0v", ok()),
                r(0, XS_WRITE, 0, "/foo\0v", ok()),
                r(2, XS_WRITE, 0, "q\0v", ok()),
                r(1, XS_TRANSACTION_END, 1, "T\0", ok()),
                r(1, XS_READ, 0, "p\0", reply("v")),
            ],
        ),
        case(
            "transaction_end without a transaction",
            vec![r(1, XS_TRANSACTION_END, 0, "T\0", err("ENOENT"))],
        ),
        case(
            "transaction_end with a bad argument keeps the transaction",
            vec![
                start(1, "1"),
                r(1, XS_TRANSACTION_END, 1, "X\0", err("EINVAL")),
                r(1, XS_TRANSACTION_END, 1, "T", err("EINVAL")),
                r(1, XS_TRANSACTION_END, 1, "T\0", ok()),
            ],
        ),
        case(
            "a request in an unknown transaction",
            vec![r(1, XS_READ, 42, "name\0", err("ENOENT"))],
        ),
        case(
            "another connection's transaction id is unknown",
            vec![start(1, "1"), r(2, XS_READ, 1, "name\0", err("ENOENT"))],
        ),
        case(
            "transaction_start inside a transaction",
            vec![start(1, "1"), r(1, XS_TRANSACTION_START, 1, "\0", err("EBUSY"))],
        ),
        case("transactions quota: the eleventh is ENOSPC for a guest", {
            let mut steps: Vec<Step> = (1..=10).map(|i| start(1, &i.to_string())).collect();
            steps.push(r(1, XS_TRANSACTION_START, 0, "\0", err("ENOSPC")));
            steps.push(r(1, XS_TRANSACTION_END, 3, "F\0", ok()));
            steps.push(start(1, "11"));
            steps.extend((1..=12).map(|i| start(0, &i.to_string())));
            steps
        }),
        case(
            "after a restart open transactions are doomed: EAGAIN, then the id is gone",
            vec![
                start(1, "1"),
                r(1, XS_WRITE, 1, "t\0v", ok()),
                call(|s| s.abort_transactions()),
                r(1, XS_READ, 1, "name\0", err("EAGAIN")),
                r(1, XS_WATCH, 1, "a\0t\0", ok()),
                r(1, XS_TRANSACTION_END, 1, "T\0", err("EAGAIN")),
                r(1, XS_TRANSACTION_END, 1, "T\0", err("ENOENT")),
                r(1, XS_READ, 0, "t\0", err("ENOENT")),
                start(1, "2"),
            ],
        ),
        case(
            "transaction-nodes quota: ENOSPC, and the transaction cannot commit (ENOMEM)",
            vec![
                r(0, XS_CONTROL, 0, "quota\0set\0transaction-nodes\x003\0", ok()),
                start(1, "1"),
                r(1, XS_READ, 1, "a\0", err("ENOENT")),
                r(1, XS_READ, 1, "b\0", err("ENOENT")),
                r(1, XS_READ, 1, "c\0", err("ENOSPC")),
                r(1, XS_TRANSACTION_END, 1, "T\0", err("ENOMEM")),
            ],
        ),
        case(
            "nodes quota is checked again at commit",
            vec![
                r(0, XS_CONTROL, 0, format!("quota\0set\0nodes\0{}\0", GUEST_NODES + 2), ok()),
                start(1, "1"),
                r(1, XS_WRITE, 1, "a\0v", ok()),
                r(1, XS_WRITE, 1, "b\0v", ok()),
                r(1, XS_WRITE, 1, "c\0v", ok()),
                r(1, XS_TRANSACTION_END, 1, "T\0", err("ENOSPC")),
                r(1, XS_READ, 0, "a\0", err("ENOENT")),
            ],
        ),
        case(
            "a quota hit while writing in a transaction dooms it (ENOMEM at commit)",
            vec![
                start(1, "1"),
                r(1, XS_WRITE, 1, format!("big\0{}", xs(2100)), err("ENOSPC")),
                r(1, XS_TRANSACTION_END, 1, "T\0", err("ENOMEM")),
            ],
        ),
        case(
            "rm in a transaction: invisible until commit, events at commit",
            vec![
                r(1, XS_WRITE, 0, "a/b\0v", ok()),
                r(1, XS_WATCH, 0, "a\0t\0", ok()),
                ev(1, &["a|t"]),
                start(1, "1"),
                r(1, XS_RM, 1, "a\0", ok()),
                r(1, XS_READ, 1, "a/b\0", err("ENOENT")),
                r(1, XS_READ, 0, "a/b\0", reply("v")),
                no_ev(1),
                r(1, XS_TRANSACTION_END, 1, "T\0", ok()),
                ev(1, &["a|t"]),
                r(1, XS_READ, 0, "a\0", err("ENOENT")),
            ],
        ),
        case(
            "set_perms in a transaction is seen by the transaction only",
            vec![
                r(1, XS_WRITE, 0, "x\0v", ok()),
                start(1, "1"),
                r(1, XS_SET_PERMS, 1, "x\0n1\0r2\0", ok()),
                r(1, XS_GET_PERMS, 1, "x\0", reply("n1\0r2\0")),
                r(1, XS_GET_PERMS, 0, "x\0", reply("n1\0")),
                r(1, XS_TRANSACTION_END, 1, "T\0", ok()),
                r(2, XS_READ, 0, "/local/domain/1/x\0", reply("v")),
            ],
        ),
    ]
}
