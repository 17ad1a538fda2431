//! Conformance cases: Node requests: READ, WRITE, MKDIR, RM, DIRECTORY, DIRECTORY_PART, GET_PERMS, SET_PERMS, with
//! permissions, path rules and the node quotas.

use super::*;

pub(super) fn read_cases() -> Vec<Case> {
    vec![
        case("read relative", vec![r(1, XS_READ, 0, "name\0", reply("guest1"))]),
        case("read absolute", vec![r(1, XS_READ, 0, "/local/domain/1/domid\0", reply("1"))]),
        case("read missing in own directory", vec![r(1, XS_READ, 0, "nope\0", err("ENOENT"))]),
        case(
            "read another domain's node",
            vec![r(2, XS_READ, 0, "/local/domain/1/name\0", err("EACCES"))],
        ),
        case(
            "read missing node under an unreadable parent hides existence",
            vec![r(2, XS_READ, 0, "/local/domain/1/nope\0", err("EACCES"))],
        ),
        case("read the root as a guest", vec![r(1, XS_READ, 0, "/\0", err("EACCES"))]),
        case(
            "read a missing top-level node as a guest",
            vec![r(1, XS_READ, 0, "/nope\0", err("EACCES"))],
        ),
        case(
            "privileged reads anything",
            vec![r(0, XS_READ, 0, "/local/domain/1/name\0", reply("guest1"))],
        ),
        case("privileged read of a missing node", vec![r(0, XS_READ, 0, "/nope\0", err("ENOENT"))]),
        case("read without NUL", vec![r(1, XS_READ, 0, "name", err("EINVAL"))]),
        case("read with an empty payload", vec![r(1, XS_READ, 0, "", err("EINVAL"))]),
        case("read with two strings", vec![r(1, XS_READ, 0, "a\0b\0", err("EINVAL"))]),
        case("read with a double slash", vec![r(0, XS_READ, 0, "/a//b\0", err("EINVAL"))]),
        case("read with a trailing slash", vec![r(0, XS_READ, 0, "/local/\0", err("EINVAL"))]),
        case("read with a space", vec![r(0, XS_READ, 0, "/a b\0", err("EINVAL"))]),
        case("read with a dot", vec![r(1, XS_READ, 0, "x.y\0", err("EINVAL"))]),
        case("read of a special name", vec![r(0, XS_READ, 0, "@releaseDomain\0", err("EINVAL"))]),
        case("read of the empty relative path", vec![r(1, XS_READ, 0, "\0", err("EINVAL"))]),
        case(
            "path longer than path-max is invalid, even for the control domain",
            vec![r(0, XS_READ, 0, format!("/{}\0", xs(2048)), err("EINVAL"))],
        ),
        case(
            "path-max counts below /local/domain/<id>/",
            vec![
                r(1, XS_READ, 0, format!("{}\0", xs(2048)), err("ENOENT")),
                r(1, XS_READ, 0, format!("{}\0", xs(2049)), err("EINVAL")),
            ],
        ),
    ]
}

pub(super) fn write_cases() -> Vec<Case> {
    vec![
        case(
            "write then read",
            vec![r(1, XS_WRITE, 0, "a\0hello", ok()), r(1, XS_READ, 0, "a\0", reply("hello"))],
        ),
        case(
            "write creates missing parents, owned by the writer, empty",
            vec![
                r(1, XS_WRITE, 0, "a/b/c\0v", ok()),
                r(1, XS_DIRECTORY, 0, "a\0", reply("b\0")),
                r(1, XS_GET_PERMS, 0, "a/b\0", reply("n1\0")),
                r(1, XS_READ, 0, "a/b\0", reply("")),
            ],
        ),
        case(
            "write keeps binary values",
            vec![
                r(1, XS_WRITE, 0, b"bin\0x\0y\xff", ok()),
                r(1, XS_READ, 0, "bin\0", reply(b"x\0y\xff")),
            ],
        ),
        case(
            "write an empty value",
            vec![r(1, XS_WRITE, 0, "e\0", ok()), r(1, XS_READ, 0, "e\0", reply(""))],
        ),
        case("write without NUL", vec![r(1, XS_WRITE, 0, "abc", err("EINVAL"))]),
        case("write with an empty path", vec![r(1, XS_WRITE, 0, "\0v", err("EINVAL"))]),
        case(
            "write into another domain's directory",
            vec![r(2, XS_WRITE, 0, "/local/domain/1/x\0v", err("EACCES"))],
        ),
        case("write at top level as a guest", vec![r(1, XS_WRITE, 0, "/foo\0v", err("EACCES"))]),
        case(
            "write over another domain's node",
            vec![r(2, XS_WRITE, 0, "/local/domain/1/name\0v", err("EACCES"))],
        ),
        case(
            "privileged writes keep the inherited owner",
            vec![
                r(0, XS_WRITE, 0, "/foo\0v", ok()),
                r(0, XS_GET_PERMS, 0, "/foo\0", reply("n0\0")),
                r(0, XS_WRITE, 0, "/local/domain/1/x\0v", ok()),
                r(0, XS_GET_PERMS, 0, "/local/domain/1/x\0", reply("n1\0")),
                r(1, XS_READ, 0, "x\0", reply("v")),
            ],
        ),
        case(
            "a guest creating in a writable directory owns what it creates",
            vec![
                r(0, XS_MKDIR, 0, "/local/domain/1/shared\0", ok()),
                r(0, XS_SET_PERMS, 0, "/local/domain/1/shared\0n1\0w2\0", ok()),
                r(2, XS_WRITE, 0, "/local/domain/1/shared/x\0v", ok()),
                r(2, XS_GET_PERMS, 0, "/local/domain/1/shared/x\0", reply("n2\0w2\0")),
                r(1, XS_READ, 0, "shared/x\0", err("EACCES")),
            ],
        ),
        case(
            "a read-only entry does not allow writing",
            vec![
                r(1, XS_WRITE, 0, "x\0v", ok()),
                r(1, XS_SET_PERMS, 0, "x\0n1\0r2\0", ok()),
                r(2, XS_WRITE, 0, "/local/domain/1/x\0w", err("EACCES")),
                r(2, XS_READ, 0, "/local/domain/1/x\0", reply("v")),
            ],
        ),
        case(
            "write replaces the value",
            vec![
                r(1, XS_WRITE, 0, "a\0one", ok()),
                r(1, XS_WRITE, 0, "a\0two", ok()),
                r(1, XS_READ, 0, "a\0", reply("two")),
            ],
        ),
        case(
            "node-size: a record of 2048 bytes or more is refused to a guest",
            vec![
                // 24-byte header + 8 per permission + value.
                r(1, XS_WRITE, 0, format!("a\0{}", xs(2015)), ok()),
                r(1, XS_WRITE, 0, format!("b\0{}", xs(2016)), err("ENOSPC")),
                r(1, XS_READ, 0, "b\0", err("ENOENT")),
                r(0, XS_WRITE, 0, format!("/local/domain/1/c\0{}", xs(3000)), ok()),
            ],
        ),
        case(
            "nodes quota: creating past it fails with ENOSPC, all or nothing",
            vec![
                r(0, XS_CONTROL, 0, format!("quota\0set\0nodes\0{}\0", GUEST_NODES + 2), ok()),
                r(1, XS_WRITE, 0, "a\0v", ok()),
                r(1, XS_WRITE, 0, "b\0v", ok()),
                r(1, XS_WRITE, 0, "c\0v", err("ENOSPC")),
                r(1, XS_WRITE, 0, "a\0again", ok()),
                r(1, XS_RM, 0, "b\0", ok()),
                r(1, XS_WRITE, 0, "x/y\0v", err("ENOSPC")),
                r(1, XS_READ, 0, "x\0", err("ENOENT")),
                r(0, XS_WRITE, 0, "/local/domain/1/p/q/r\0v", ok()),
            ],
        ),
    ]
}

pub(super) fn mkdir_rm_cases() -> Vec<Case> {
    vec![
        case(
            "mkdir creates an empty node",
            vec![r(1, XS_MKDIR, 0, "d\0", ok()), r(1, XS_READ, 0, "d\0", reply(""))],
        ),
        case(
            "mkdir of an existing node keeps its value",
            vec![
                r(1, XS_WRITE, 0, "d\0v", ok()),
                r(1, XS_MKDIR, 0, "d\0", ok()),
                r(1, XS_READ, 0, "d\0", reply("v")),
            ],
        ),
        case(
            "mkdir without permission",
            vec![r(2, XS_MKDIR, 0, "/local/domain/1/d\0", err("EACCES"))],
        ),
        case("mkdir with two strings", vec![r(1, XS_MKDIR, 0, "a\0b\0", err("EINVAL"))]),
        case(
            "mkdir creates parents",
            vec![r(1, XS_MKDIR, 0, "p/q/r\0", ok()), r(1, XS_DIRECTORY, 0, "p/q\0", reply("r\0"))],
        ),
        case(
            "rm removes the subtree and the parent's entry",
            vec![
                r(1, XS_WRITE, 0, "a/b/c\0v", ok()),
                r(1, XS_RM, 0, "a\0", ok()),
                r(1, XS_READ, 0, "a/b/c\0", err("ENOENT")),
                r(1, XS_READ, 0, "a\0", err("ENOENT")),
                r(1, XS_DIRECTORY, 0, "/local/domain/1\0", reply(HOME_CHILDREN)),
            ],
        ),
        case("rm of a missing node whose parent exists", vec![r(1, XS_RM, 0, "nope\0", ok())]),
        case(
            "rm of a missing node whose parent is missing",
            vec![r(1, XS_RM, 0, "nope/deeper\0", err("ENOENT"))],
        ),
        case("rm of the root", vec![r(0, XS_RM, 0, "/\0", err("EINVAL"))]),
        case(
            "rm of another domain's node",
            vec![r(2, XS_RM, 0, "/local/domain/1/name\0", err("EACCES"))],
        ),
        case(
            "rm of a missing node under an unwritable parent",
            vec![r(2, XS_RM, 0, "/local/domain/1/nope\0", err("EACCES"))],
        ),
        case("rm without NUL", vec![r(1, XS_RM, 0, "x", err("EINVAL"))]),
        case(
            "nodes removed by rm are no longer counted",
            vec![
                r(0, XS_CONTROL, 0, format!("quota\0set\0nodes\0{}\0", GUEST_NODES + 1), ok()),
                r(1, XS_WRITE, 0, "a\0v", ok()),
                r(1, XS_WRITE, 0, "b\0v", err("ENOSPC")),
                r(1, XS_RM, 0, "a\0", ok()),
                r(1, XS_WRITE, 0, "b\0v", ok()),
            ],
        ),
    ]
}

pub(super) fn directory_cases() -> Vec<Case> {
    vec![
        case(
            "directory lists children in creation order",
            vec![r(1, XS_DIRECTORY, 0, "/local/domain/1\0", reply(HOME_CHILDREN))],
        ),
        case(
            "directory of the root",
            vec![r(0, XS_DIRECTORY, 0, "/\0", reply("tool\0vm\0local\0"))],
        ),
        case(
            "directory of a leaf is empty",
            vec![r(1, XS_MKDIR, 0, "e\0", ok()), r(1, XS_DIRECTORY, 0, "e\0", reply(""))],
        ),
        case("directory of a missing node", vec![r(1, XS_DIRECTORY, 0, "nope\0", err("ENOENT"))]),
        case(
            "directory of an unreadable node",
            vec![r(2, XS_DIRECTORY, 0, "/local/domain/1\0", err("EACCES"))],
        ),
        case("directory with two strings", vec![r(1, XS_DIRECTORY, 0, "a\0b\0", err("EINVAL"))]),
        case(
            "directory longer than the payload limit is E2BIG; DIRECTORY_PART pages it",
            vec![
                custom(|s, _| {
                    for i in 0..20 {
                        let payload = format!("/big/{i:02}{}\0v", xs(248));
                        common::call(s, 0, XS_WRITE, 0, payload.as_bytes());
                    }
                    Ok(())
                }),
                r(0, XS_DIRECTORY, 0, "/big\0", err("E2BIG")),
                custom(|s, _| {
                    let mut all = Vec::new();
                    let mut generation = None;
                    loop {
                        let request = format!("/big\0{}\0", all.len());
                        let (ty, payload) =
                            common::call(s, 0, XS_DIRECTORY_PART, 0, request.as_bytes());
                        if ty != XS_DIRECTORY_PART || payload.len() > 4096 {
                            return Err(format!("bad page {ty} {}", payload.len()));
                        }
                        let nul = payload.iter().position(|&b| b == 0).unwrap();
                        let gen = payload[..nul].to_vec();
                        if *generation.get_or_insert(gen.clone()) != gen {
                            return Err("generation changed".into());
                        }
                        let body = &payload[nul + 1..];
                        if body.ends_with(b"\0\0") || body == b"\0" {
                            all.extend_from_slice(&body[..body.len() - 1]);
                            break;
                        }
                        all.extend_from_slice(body);
                    }
                    let names: Vec<&[u8]> = wire::strings(&all).collect();
                    if names.len() != 20 || names[19] != format!("19{}", xs(248)).as_bytes() {
                        return Err(format!("paged {} names", names.len()));
                    }
                    Ok(())
                }),
            ],
        ),
        case(
            "directory_part from offset 0",
            vec![r(
                1,
                XS_DIRECTORY_PART,
                0,
                "/local/domain/1\x000\0",
                Exp::Check(|p| is_generation_then(p, format!("{HOME_CHILDREN}\0").as_bytes())),
            )],
        ),
        case(
            "directory_part from the second child",
            vec![r(
                1,
                XS_DIRECTORY_PART,
                0,
                "/local/domain/1\x003\0",
                // After "vm\0".
                Exp::Check(|p| {
                    is_generation_then(p, format!("{}\0", &HOME_CHILDREN[3..]).as_bytes())
                }),
            )],
        ),
        case(
            "directory_part past the end",
            vec![r(
                1,
                XS_DIRECTORY_PART,
                0,
                "/local/domain/1\x00100\0",
                Exp::Check(|p| generation_then(b"\0")(p)),
            )],
        ),
        case(
            "directory_part with a negative offset (unsigned in Xen)",
            vec![r(
                1,
                XS_DIRECTORY_PART,
                0,
                "/local/domain/1\0-1\0",
                Exp::Check(|p| generation_then(b"\0")(p)),
            )],
        ),
        case(
            "directory_part without offset",
            vec![r(1, XS_DIRECTORY_PART, 0, "/local/domain/1\0", err("EINVAL"))],
        ),
        case(
            "directory_part with three strings",
            vec![r(1, XS_DIRECTORY_PART, 0, "a\x000\0x\0", err("EINVAL"))],
        ),
        case(
            "directory_part of an unreadable node",
            vec![r(2, XS_DIRECTORY_PART, 0, "/local/domain/1\x000\0", err("EACCES"))],
        ),
        case(
            "directory_part generation is stable, then changes with the children",
            vec![custom(|s, _| {
                let first = dir_part_gen(s, 1, "/local/domain/1");
                let again = dir_part_gen(s, 1, "/local/domain/1");
                common::call(s, 1, XS_WRITE, 0, b"new\0v");
                let after = dir_part_gen(s, 1, "/local/domain/1");
                if first == again && first != after {
                    Ok(())
                } else {
                    Err(format!("{first:?} {again:?} {after:?}"))
                }
            })],
        ),
    ]
}

pub(super) fn perms_cases() -> Vec<Case> {
    let with_x = |steps: Vec<Step>| {
        let mut all = vec![r(1, XS_WRITE, 0, "x\0v", ok())];
        all.extend(steps);
        all
    };
    vec![
        case(
            "get_perms of an own node",
            vec![
                r(1, XS_WRITE, 0, "mine\0v", ok()),
                r(1, XS_GET_PERMS, 0, "mine\0", reply("n1\0")),
                r(1, XS_GET_PERMS, 0, "name\0", reply("n1\0r0\0")),
            ],
        ),
        case(
            "get_perms of an unreadable node",
            vec![r(2, XS_GET_PERMS, 0, "/local/domain/1/name\0", err("EACCES"))],
        ),
        case("get_perms without NUL", vec![r(1, XS_GET_PERMS, 0, "name", err("EINVAL"))]),
        case(
            "set_perms grants read to another domain",
            with_x(vec![
                r(1, XS_SET_PERMS, 0, "x\0n1\0r2\0", ok()),
                r(2, XS_READ, 0, "/local/domain/1/x\0", reply("v")),
                r(2, XS_WRITE, 0, "/local/domain/1/x\0w", err("EACCES")),
                r(3, XS_READ, 0, "/local/domain/1/x\0", err("EACCES")),
                r(1, XS_GET_PERMS, 0, "x\0", reply("n1\0r2\0")),
            ]),
        ),
        case(
            "a guest cannot give its node away",
            with_x(vec![r(1, XS_SET_PERMS, 0, "x\0n2\0", err("EPERM"))]),
        ),
        case(
            "the control domain can change the owner",
            with_x(vec![
                r(0, XS_SET_PERMS, 0, "/local/domain/1/x\0n2\0", ok()),
                r(1, XS_READ, 0, "x\0", err("EACCES")),
                r(2, XS_READ, 0, "/local/domain/1/x\0", reply("v")),
                r(2, XS_SET_PERMS, 0, "/local/domain/1/x\0n2\0r1\0", ok()),
                r(1, XS_READ, 0, "x\0", reply("v")),
            ]),
        ),
        case(
            "write permission does not allow set_perms",
            with_x(vec![
                r(1, XS_SET_PERMS, 0, "x\0n1\0w2\0", ok()),
                r(2, XS_SET_PERMS, 0, "/local/domain/1/x\0n1\0b2\0", err("EACCES")),
            ]),
        ),
        case(
            "set_perms with a bad letter",
            with_x(vec![r(1, XS_SET_PERMS, 0, "x\0q1\0", err("EINVAL"))]),
        ),
        case(
            "set_perms without entries",
            with_x(vec![r(1, XS_SET_PERMS, 0, "x\0", err("EINVAL"))]),
        ),
        case(
            "set_perms with an entry without domid",
            with_x(vec![r(1, XS_SET_PERMS, 0, "x\0r\0", err("EINVAL"))]),
        ),
        case(
            "set_perms with a domid out of range",
            with_x(vec![r(1, XS_SET_PERMS, 0, "x\0n1\0r70000\0", err("EINVAL"))]),
        ),
        case(
            "permissions quota: six entries are refused to a guest, not to the control domain",
            with_x(vec![
                r(1, XS_SET_PERMS, 0, "x\0n1\0r2\0r3\0r4\0r5\0r6\0", err("ENOSPC")),
                r(1, XS_SET_PERMS, 0, "x\0n1\0r2\0r3\0r4\0r5\0", ok()),
                r(0, XS_SET_PERMS, 0, "/local/domain/1/x\0n1\0r2\0r3\0r4\0r5\0r6\0", ok()),
            ]),
        ),
        case(
            "set_perms of a missing node",
            vec![r(1, XS_SET_PERMS, 0, "nope\0n1\0", err("ENOENT"))],
        ),
        case(
            "b grants read and write",
            with_x(vec![
                r(1, XS_SET_PERMS, 0, "x\0n1\0b2\0", ok()),
                r(2, XS_WRITE, 0, "/local/domain/1/x\0w", ok()),
                r(2, XS_READ, 0, "/local/domain/1/x\0", reply("w")),
            ]),
        ),
        case(
            "a per-domain entry overrides the default",
            with_x(vec![
                r(1, XS_SET_PERMS, 0, "x\0r1\0n2\0", ok()),
                r(3, XS_READ, 0, "/local/domain/1/x\0", reply("v")),
                r(2, XS_READ, 0, "/local/domain/1/x\0", err("EACCES")),
            ]),
        ),
        case(
            "w grants write without read",
            with_x(vec![
                r(1, XS_SET_PERMS, 0, "x\0n1\0w2\0", ok()),
                r(2, XS_WRITE, 0, "/local/domain/1/x\0w", ok()),
                r(2, XS_READ, 0, "/local/domain/1/x\0", err("EACCES")),
            ]),
        ),
        case(
            "the owner keeps every right whatever its entry says",
            with_x(vec![
                r(1, XS_SET_PERMS, 0, "x\0n1\0", ok()),
                r(1, XS_READ, 0, "x\0", reply("v")),
            ]),
        ),
        case(
            "domids in hex and octal, as strtol",
            with_x(vec![
                r(1, XS_SET_PERMS, 0, "x\0n1\0r0x2\0w010\0", ok()),
                r(1, XS_GET_PERMS, 0, "x\0", reply("n1\0r2\0w8\0")),
            ]),
        ),
        case(
            "existence is told when the parent is readable",
            vec![
                r(1, XS_MKDIR, 0, "pub\0", ok()),
                r(1, XS_SET_PERMS, 0, "pub\0n1\0r2\0", ok()),
                r(2, XS_READ, 0, "/local/domain/1/pub/missing\0", err("ENOENT")),
                r(2, XS_WRITE, 0, "/local/domain/1/pub/new\0v", err("EACCES")),
            ],
        ),
        case(
            "set_perms on @releaseDomain by a guest",
            vec![r(1, XS_SET_PERMS, 0, "@releaseDomain\0n1\0", err("EACCES"))],
        ),
        case(
            "set_perms on an unknown special name",
            vec![r(0, XS_SET_PERMS, 0, "@foo\0n0\0", err("EINVAL"))],
        ),
        case(
            "set_perms on @releaseDomain lets a guest see it",
            vec![
                r(0, XS_SET_PERMS, 0, "@releaseDomain\0n0\0r1\0", ok()),
                r(1, XS_WATCH, 0, "@releaseDomain\0rel\0", ok()),
                ev(1, &["@releaseDomain|rel"]),
                call(|s| s.domain_gone(2)),
                ev(1, &["@releaseDomain|rel"]),
            ],
        ),
        case(
            "set_perms fires watches for watchers that could read the old permissions",
            with_x(vec![
                r(1, XS_SET_PERMS, 0, "x\0n1\0r2\0", ok()),
                r(2, XS_WATCH, 0, "/local/domain/1/x\0w\0", ok()),
                ev(2, &["/local/domain/1/x|w"]),
                r(1, XS_SET_PERMS, 0, "x\0n1\0", ok()),
                ev(2, &["/local/domain/1/x|w"]),
                r(1, XS_WRITE, 0, "x\0again", ok()),
                no_ev(2),
            ]),
        ),
    ]
}
