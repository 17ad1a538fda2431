//! Each tool run end to end against the fake xenstored ([`crate::fake`]): what it asks, what
//! it prints where, its exit status, and how it takes errors and broken replies.

use std::io;

use xenolith_abi::xen::xs_wire::msg;

use crate::fake::{message, Fake};
use crate::{run, Environment};

/// What one run gave: exit status, standard output, standard error.
#[derive(Debug)]
struct Ran {
    status: u8,
    stdout: String,
    stderr: String,
}

fn run_with(fake: &Fake, environment: Environment, words: &[&str]) -> Ran {
    let argv: Vec<Vec<u8>> = words.iter().map(|word| word.as_bytes().to_vec()).collect();
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let status = run(&argv, environment, || Ok(fake.clone()), &mut stdout, &mut stderr);
    let stdout = String::from_utf8(stdout).unwrap();
    let stderr = String::from_utf8(stderr).unwrap();
    assert_eq!(fake.0.borrow().split_writes, 0, "every request went out in one write");
    Ran { status, stdout, stderr }
}

fn tool(fake: &Fake, words: &[&str]) -> Ran {
    run_with(fake, Environment::default(), words)
}

/// The transaction ids and payloads of the requests of `type_`.
fn requests(fake: &Fake, type_: u32) -> Vec<(u32, Vec<u8>)> {
    let state = fake.0.borrow();
    state.requests.iter().filter(|(t, ..)| *t == type_).map(|(_, tx, p)| (*tx, p.clone())).collect()
}

#[test]
fn read_prints_the_value_and_exits_0() {
    let fake = Fake::new();
    let ran = tool(&fake, &["/usr/bin/xenstore-read", "name"]);
    assert_eq!((ran.status, ran.stdout.as_str(), ran.stderr.as_str()), (0, "guest\n", ""));
    assert_eq!(fake.types(), [msg::XS_READ], "one key: no transaction");
    assert_eq!(requests(&fake, msg::XS_READ), [(0, b"name\0".to_vec())]);
}

#[test]
fn read_escapes_prefixes_and_reads_raw() {
    let fake = Fake::new();
    fake.set("/v", b"a\tb\\c\x01\xff");
    assert_eq!(tool(&fake, &["xenstore-read", "/v"]).stdout, "a\\tb\\\\c\\001\\xff\n");
    assert_eq!(tool(&fake, &["xenstore-read", "-p", "/v"]).stdout, "/v: a\\tb\\\\c\\001\\xff\n");
    fake.set("/w", b"raw\nvalue");
    let ran = tool(&fake, &["xenstore", "read", "-R", "/w"]);
    assert_eq!((ran.status, ran.stdout.as_str()), (0, "raw\nvalue"), "no newline added");
}

#[test]
fn read_of_a_missing_node_says_so_and_exits_1() {
    let fake = Fake::new();
    let ran = tool(&fake, &["/usr/bin/xenstore-read", "nothing"]);
    assert_eq!(ran.status, 1);
    assert_eq!(ran.stdout, "");
    assert_eq!(ran.stderr, "xenstore-read: couldn't read path nothing\n");
}

#[test]
fn read_of_a_forbidden_node_exits_1() {
    let fake = Fake::new();
    fake.set("/secret", b"x");
    fake.0.borrow_mut().errors.push((msg::XS_READ, b"/secret".to_vec(), "EACCES"));
    let ran = tool(&fake, &["xenstore-read", "/secret"]);
    assert_eq!(
        (ran.status, ran.stderr.as_str()),
        (1, "xenstore-read: couldn't read path /secret\n")
    );
}

#[test]
fn read_of_several_keys_is_one_transaction() {
    let fake = Fake::new();
    fake.set("/a", b"1");
    let ran = tool(&fake, &["xenstore-read", "/a", "name"]);
    assert_eq!((ran.status, ran.stdout.as_str()), (0, "1\nguest\n"));
    let types = fake.types();
    assert_eq!(types, [6, msg::XS_READ, msg::XS_READ, msg::XS_TRANSACTION_END]);
    assert!(requests(&fake, msg::XS_READ).iter().all(|(tx, _)| *tx == 1));
    assert_eq!(requests(&fake, msg::XS_TRANSACTION_END), [(1, b"T\0".to_vec())]);
}

#[test]
fn a_failing_key_abandons_the_transaction_and_keeps_what_was_read() {
    let fake = Fake::new();
    fake.set("/a", b"1");
    let ran = tool(&fake, &["xenstore-read", "/a", "/missing", "name"]);
    assert_eq!((ran.status, ran.stdout.as_str()), (1, "1\n"));
    assert_eq!(ran.stderr, "xenstore-read: couldn't read path /missing\n");
    assert_eq!(requests(&fake, msg::XS_TRANSACTION_END), [(1, b"F\0".to_vec())]);
    assert_eq!(requests(&fake, msg::XS_READ).len(), 2, "stops at the failure");
}

#[test]
fn an_eagain_commit_runs_everything_again_and_prints_once() {
    let fake = Fake::new();
    fake.set("/a", b"1");
    fake.0.borrow_mut().eagain_commits = 2;
    let ran = tool(&fake, &["xenstore-read", "/a", "name"]);
    assert_eq!((ran.status, ran.stdout.as_str(), ran.stderr.as_str()), (0, "1\nguest\n", ""));
    assert_eq!(requests(&fake, msg::XS_TRANSACTION_START).len(), 3);
    assert_eq!(requests(&fake, msg::XS_READ).len(), 6);
}

#[test]
fn a_transaction_that_does_not_start_or_end_is_fatal() {
    let fake = Fake::new();
    fake.0.borrow_mut().errors.push((msg::XS_TRANSACTION_START, Vec::new(), "ENOSPC"));
    let ran = tool(&fake, &["xenstore-rm", "name"]);
    assert_eq!((ran.status, ran.stderr.as_str()), (1, "xenstore-rm: couldn't start transaction\n"));
    assert_eq!(fake.get("/local/domain/1/name").as_deref(), Some(&b"guest"[..]));

    let fake = Fake::new();
    fake.0.borrow_mut().errors.push((msg::XS_TRANSACTION_END, b"T".to_vec(), "EINVAL"));
    let ran = tool(&fake, &["xenstore-read", "name", "name"]);
    assert_eq!(ran.status, 1);
    assert_eq!(
        (ran.stdout.as_str(), ran.stderr.as_str()),
        ("", "xenstore-read: couldn't end transaction\n")
    );
}

#[test]
fn malformed_replies_fail_the_request_without_panicking() {
    let bad_replies: [(&str, Vec<u8>); 4] = [
        ("a reply of another type", message(msg::XS_WRITE, 0, b"OK\0")),
        ("a payload over 4096 bytes", message(msg::XS_READ, 0, &[b'x'; 4097])),
        ("a truncated header", message(msg::XS_READ, 0, b"guest")[..7].to_vec()),
        ("a truncated payload", message(msg::XS_READ, 0, b"guest")[..18].to_vec()),
    ];
    for (what, reply) in bad_replies {
        let fake = Fake::new();
        fake.0.borrow_mut().raw_replies.push_back(reply);
        let ran = tool(&fake, &["xenstore-read", "name"]);
        assert_eq!(ran.status, 1, "{what}");
        assert_eq!(ran.stderr, "xenstore-read: couldn't read path name\n", "{what}");
    }
    // After a broken reply the connection is closed: the transaction cannot end.
    let fake = Fake::new();
    fake.set("/a", b"1");
    fake.0.borrow_mut().raw_replies.extend([message(6, 0, b"1\0"), message(msg::XS_RM, 0, b"")]);
    let ran = tool(&fake, &["xenstore-read", "/a", "/a"]);
    assert_eq!(ran.status, 1);
    assert_eq!(
        ran.stderr,
        "xenstore-read: couldn't read path /a\nxenstore-read: couldn't end transaction\n"
    );
    assert_eq!(fake.types().len(), 2, "nothing is sent on a closed connection");
}

#[test]
fn unknown_error_names_read_as_einval() {
    let fake = Fake::new();
    fake.0.borrow_mut().errors.push((msg::XS_DIRECTORY, b"/x".to_vec(), "EWEIRD"));
    let ran = tool(&fake, &["xenstore-ls", "/x"]);
    assert_eq!(
        (ran.status, ran.stderr.as_str()),
        (1, "xenstore-ls: xs_directory (/x): Invalid argument\n")
    );
}

#[test]
fn short_reads_are_put_together() {
    let fake = Fake::new();
    fake.0.borrow_mut().chunk = 1;
    let ran = tool(&fake, &["xenstore-read", "name", "name"]);
    assert_eq!((ran.status, ran.stdout.as_str()), (0, "guest\nguest\n"));
}

#[test]
fn no_connection_is_xs_open_with_the_reason() {
    let argv = vec![b"/usr/bin/xenstore-read".to_vec(), b"name".to_vec()];
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let open = || Err::<Fake, _>(io::Error::from_raw_os_error(2));
    let status = run(&argv, Environment::default(), open, &mut stdout, &mut stderr);
    assert_eq!(status, 1);
    assert_eq!(
        String::from_utf8(stderr).unwrap(),
        "xenstore-read: xs_open: No such file or directory\n"
    );
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let never = || -> io::Result<Fake> { panic!("a usage error opens nothing") };
    let argv = vec![b"xenstore-read".to_vec()];
    assert_eq!(run(&argv, Environment::default(), never, &mut stdout, &mut stderr), 1);
}

#[test]
fn write_unescapes_values_and_writes_raw_with_r() {
    let fake = Fake::new();
    let ran = tool(&fake, &["xenstore-write", "data/xt", "a\\tb\\x41\\\\"]);
    assert_eq!((ran.status, ran.stdout.as_str(), ran.stderr.as_str()), (0, "", ""));
    assert_eq!(fake.get("/local/domain/1/data/xt").as_deref(), Some(&b"a\tbA\\"[..]));
    assert_eq!(fake.get("/local/domain/1/data").as_deref(), Some(&b""[..]));
    assert_eq!(requests(&fake, msg::XS_WRITE), [(0, b"data/xt\0a\tbA\\".to_vec())]);
    tool(&fake, &["xenstore-write", "-R", "data/xt", "a\\tb"]);
    assert_eq!(fake.get("/local/domain/1/data/xt").as_deref(), Some(&b"a\\tb"[..]));
}

#[test]
fn write_of_several_pairs_is_one_transaction_and_fails_whole() {
    let fake = Fake::new();
    assert_eq!(tool(&fake, &["xenstore-write", "/a", "1", "/b", "2"]).status, 0);
    assert_eq!((fake.get("/a"), fake.get("/b")), (Some(b"1".to_vec()), Some(b"2".to_vec())));
    assert!(requests(&fake, msg::XS_WRITE).iter().all(|(tx, _)| *tx == 1));

    let fake = Fake::new();
    fake.0.borrow_mut().errors.push((msg::XS_WRITE, b"/ro".to_vec(), "EACCES"));
    let ran = tool(&fake, &["xenstore-write", "/a", "1", "/ro", "2"]);
    assert_eq!(
        (ran.status, ran.stderr.as_str()),
        (1, "xenstore-write: could not write path /ro\n")
    );
    assert_eq!(fake.get("/a"), None, "the transaction was abandoned");
}

#[test]
fn rm_removes_and_fails_with_exit_1() {
    let fake = Fake::new();
    fake.set("/local/domain/1/data/xt", b"v");
    let ran = tool(&fake, &["xenstore-rm", "data/xt"]);
    assert_eq!((ran.status, ran.stdout.as_str(), ran.stderr.as_str()), (0, "", ""));
    assert_eq!(fake.get("/local/domain/1/data/xt"), None);
    assert_eq!(fake.get("/local/domain/1/data"), Some(Vec::new()), "no -t: the parent stays");
    assert_eq!(fake.types(), [6, msg::XS_RM, msg::XS_TRANSACTION_END], "always a transaction");

    let ran = tool(&fake, &["xenstore-rm", "/no/such"]);
    assert_eq!(
        (ran.status, ran.stderr.as_str()),
        (1, "xenstore-rm: could not remove path /no/such\n")
    );
}

#[test]
fn rm_tidy_removes_parents_left_empty() {
    let fake = Fake::new();
    fake.set("/t/a/b/c", b"v");
    fake.set("/t/keep", b"");
    let ran = tool(&fake, &["xenstore-rm", "-t", "/t/a/b/c"]);
    assert_eq!(ran.status, 0);
    assert_eq!((fake.get("/t/a/b"), fake.get("/t/a")), (None, None));
    assert_eq!(fake.get("/t"), Some(Vec::new()), "a parent with a child stays");
    fake.set("/u/v", b"");
    fake.set("/u", b"value");
    tool(&fake, &["xenstore-rm", "-t", "/u/v"]);
    assert_eq!(fake.get("/u"), Some(b"value".to_vec()), "a parent with a value stays");
}

#[test]
fn exists_and_list() {
    let fake = Fake::new();
    fake.set("/d/one", b"1");
    fake.set("/d/two", b"2");
    let ran = tool(&fake, &["xenstore-exists", "/d"]);
    assert_eq!((ran.status, ran.stdout.as_str(), ran.stderr.as_str()), (0, "", ""));
    let ran = tool(&fake, &["xenstore-exists", "/nope"]);
    assert_eq!((ran.status, ran.stdout.as_str(), ran.stderr.as_str()), (1, "", ""));
    assert_eq!(tool(&fake, &["xenstore-list", "/d"]).stdout, "one\ntwo\n");
    assert_eq!(tool(&fake, &["xenstore-list", "-p", "/d"]).stdout, "/d/one\n/d/two\n");
    let ran = tool(&fake, &["xenstore-list", "/nope"]);
    assert_eq!(
        (ran.status, ran.stderr.as_str()),
        (1, "xenstore-list: could not list path /nope\n")
    );
}

/// A small tree under /t.
fn tree() -> Fake {
    let fake = Fake::new();
    fake.set("/t/a", b"1");
    fake.set("/t/a/deep", b"line\nbreak");
    fake.set("/t/b", b"");
    fake
}

#[test]
fn ls_prints_the_tree_indented_and_escaped() {
    let fake = tree();
    let ran = tool(&fake, &["xenstore-ls", "/t"]);
    assert_eq!(ran.status, 0);
    assert_eq!(ran.stdout, "a = \"1\"\n deep = \"line\\nbreak\"\nb = \"\"\n");
    let ran = tool(&fake, &["xenstore-ls", "-f", "/t"]);
    assert_eq!(ran.stdout, "/t/a = \"1\"\n/t/a/deep = \"line\\nbreak\"\n/t/b = \"\"\n");
    assert!(requests(&fake, msg::XS_READ).iter().all(|(tx, _)| *tx == 0), "no transaction");
}

#[test]
fn ls_without_a_path_lists_the_root_and_relative_paths_work() {
    let fake = tree();
    let ran = tool(&fake, &["xenstore-ls"]);
    assert!(
        ran.stdout.starts_with("local = \"\"\n domain = \"\"\n  1 = \"\"\n   name = \"guest\"\n"),
        "{}",
        ran.stdout
    );
    fake.set("/local/domain/1/data/xt", b"hello");
    assert_eq!(tool(&fake, &["xenstore-ls", "data"]).stdout, "xt = \"hello\"\n");
}

#[test]
fn ls_with_p_pads_and_shows_permissions() {
    let fake = tree();
    fake.0.borrow_mut().nodes.get_mut(&b"/t/b"[..]).unwrap().permissions = b"n0\0r1\0".to_vec();
    let ran = tool(&fake, &["xenstore-ls", "-p", "/t"]);
    let lines: Vec<&str> = ran.stdout.lines().collect();
    let a = format!("a = \"1\" {}  (b0)", " .".repeat(26));
    assert_eq!(lines[0], a);
    assert_eq!(lines[0].find("  (b0)"), Some(60), "permissions start at column 60");
    assert!(
        lines[2].starts_with("b = \"\" .") && lines[2].ends_with(". .  (n0,r1)"),
        "{}",
        lines[2]
    );

    fake.0.borrow_mut().errors.push((msg::XS_GET_PERMS, b"/t/b".to_vec(), "EACCES"));
    let ran = tool(&fake, &["xenstore-ls", "-p", "/t"]);
    assert_eq!(ran.status, 0);
    assert_eq!(
        ran.stderr,
        "xenstore-ls: \ncould not access permissions for b: Permission denied\n"
    );
}

#[test]
fn ls_cuts_long_lines_to_the_width() {
    let fake = Fake::new();
    fake.set("/w/key", &[b'v'; 100]);
    let ran = tool(&fake, &["xenstore-ls", "/w"]);
    // 80 columns less the tag (8) and the name (3): 69 characters of the value.
    assert_eq!(ran.stdout, format!("key = \"{}\\...\"\n", "v".repeat(69)));
    let wide = run_with(&fake, Environment { columns: Some(200) }, &["xenstore-ls", "/w"]);
    assert_eq!(wide.stdout, format!("key = \"{}\"\n", "v".repeat(100)));
    let flat = tool(&fake, &["xenstore-ls", "-f", "/w"]);
    assert_eq!(flat.stdout, format!("/w/key = \"{}\"\n", "v".repeat(100)));
    let name = "n".repeat(90);
    fake.set(&format!("/x/{name}"), b"1");
    let ran = tool(&fake, &["xenstore-ls", "/x"]);
    assert_eq!(ran.stdout, format!("{} = \"\\...\"\n", "n".repeat(72)), "no room for the value");
}

#[test]
fn ls_fails_on_a_missing_path_and_shows_unreadable_nodes_with_a_colon() {
    let fake = tree();
    let ran = tool(&fake, &["xenstore-ls", "-f", "/"]);
    assert!(ran.stdout.starts_with("/local = \"\"\n/local/domain = \"\"\n"), "{}", ran.stdout);
    let fake = tree();
    let ran = tool(&fake, &["/usr/bin/xenstore-ls", "/nope"]);
    assert_eq!(ran.status, 1);
    assert_eq!(ran.stderr, "xenstore-ls: xs_directory (/nope): No such file or directory\n");
    fake.0.borrow_mut().errors.push((msg::XS_READ, b"/t/a".to_vec(), "EACCES"));
    let ran = tool(&fake, &["xenstore-ls", "/t"]);
    // Xen prints ":\n" and then the line's own newline.
    assert_eq!(
        (ran.status, ran.stdout.as_str()),
        (0, "a:\n\n deep = \"line\\nbreak\"\nb = \"\"\n")
    );
    // A node that vanishes below the top is skipped; other errors below the top are fatal.
    fake.0.borrow_mut().errors.push((msg::XS_DIRECTORY, b"/t/a".to_vec(), "ENOENT"));
    let ran = tool(&fake, &["xenstore-ls", "/t"]);
    assert_eq!((ran.status, ran.stdout.as_str()), (0, "a:\n\nb = \"\"\n"));
    fake.0.borrow_mut().errors.push((msg::XS_DIRECTORY, b"/t/b".to_vec(), "EACCES"));
    let ran = tool(&fake, &["xenstore-ls", "/t"]);
    assert_eq!(ran.status, 1);
    assert_eq!(ran.stderr, "xenstore-ls: xs_directory (/t/b): Permission denied\n");
}

#[test]
fn a_directory_too_large_for_one_reply_is_read_in_parts() {
    let fake = Fake::new();
    for name in ["alpha", "beta", "gamma", "delta"] {
        fake.set(&format!("/big/{name}"), b"");
    }
    fake.0.borrow_mut().directory_part_size = Some(4);
    let ran = tool(&fake, &["xenstore-list", "/big"]);
    assert_eq!((ran.status, ran.stdout.as_str()), (0, "alpha\nbeta\ndelta\ngamma\n"));
    assert_eq!(requests(&fake, msg::XS_DIRECTORY_PART).len(), 4, "one name a part");
}

#[test]
fn watch_prints_each_events_path_until_n() {
    let fake = Fake::new();
    fake.0.borrow_mut().idle_events.extend([b"/a/x\0/a\0".to_vec(), b"/b\0/b\0".to_vec()]);
    let ran = tool(&fake, &["xenstore-watch", "-n", "4", "/a", "/b"]);
    assert_eq!(ran.status, 0);
    assert_eq!(ran.stdout, "/a\n/b\n/a/x\n/b\n", "the path only, first events first");
    assert_eq!(
        requests(&fake, msg::XS_WATCH),
        [(0, b"/a\0/a\0".to_vec()), (0, b"/b\0/b\0".to_vec())]
    );
}

#[test]
fn watch_events_that_come_before_a_reply_are_kept() {
    let fake = Fake::new();
    fake.0.borrow_mut().event_before_watch_reply = true;
    let ran = tool(&fake, &["xenstore", "watch", "-n2", "a", "b"]);
    assert_eq!((ran.status, ran.stdout.as_str()), (0, "a\nb\n"));
}

#[test]
fn watch_ends_when_the_connection_does() {
    let fake = Fake::new();
    let ran = tool(&fake, &["xenstore-watch", "-n", "5", "/a"]);
    assert_eq!((ran.status, ran.stdout.as_str()), (0, "/a\n"), "with -n: as if the count ran out");
    let ran = tool(&fake, &["xenstore-watch", "/a"]);
    assert_eq!((ran.status, ran.stdout.as_str()), (1, "/a\n"));
    assert_eq!(ran.stderr, "xenstore-watch: xs_read_watch: Bad file descriptor\n");
    let ran = tool(&fake, &["xenstore-watch", "-n", "0", "/a"]);
    assert_eq!((ran.status, ran.stdout.as_str()), (0, ""));
}

#[test]
fn a_refused_watch_is_fatal() {
    let fake = Fake::new();
    fake.0.borrow_mut().errors.push((msg::XS_WATCH, b"/x".to_vec(), "EACCES"));
    let ran = tool(&fake, &["xenstore-watch", "/x"]);
    assert_eq!(
        (ran.status, ran.stderr.as_str()),
        (1, "xenstore-watch: Unable to add watch on /x\n\n")
    );
}

#[test]
fn chmod_sets_permissions_up_and_down() {
    let fake = Fake::new();
    fake.set("/c/d/e", b"");
    let ran = tool(&fake, &["xenstore-chmod", "-r", "/c", "n0", "r5"]);
    assert_eq!((ran.status, ran.stderr.as_str()), (0, ""));
    let permissions = |path: &str| fake.0.borrow().nodes[path.as_bytes()].permissions.clone();
    assert_eq!(permissions("/c/d/e"), b"n0\0r5\0");
    tool(&fake, &["xenstore-chmod", "-u", "/c/d", "b1"]);
    assert_eq!((permissions("/c/d"), permissions("/c")), (b"b1\0".to_vec(), b"b1\0".to_vec()));
    let ran = tool(&fake, &["xenstore-chmod", "/c", "x1"]);
    assert_eq!(
        (ran.status, ran.stderr.as_str()),
        (1, "xenstore-chmod: Invalid permission specification: 'x'\n")
    );
    let ran = tool(&fake, &["xenstore-chmod", "/none", "b0"]);
    assert_eq!(ran.status, 1);
    assert_eq!(ran.stderr, "xenstore-chmod: Error occurred setting permissions on '/none': No such file or directory\n");
}
