//! The client against small servers on a unix socket, each playing a control domain.

use std::os::unix::net::UnixListener;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;

use xenolith_abi::host_xl::Trailer;

use super::*;

/// A fresh socket path under the system's temporary directory.
fn socket_path() -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name =
        format!("xl-client-{}-{}.sock", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let path = std::env::temp_dir().join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// A server that reads one line, then writes what `answer` makes of it.
fn serve(
    answer: impl FnOnce(String) -> Vec<u8> + Send + 'static,
) -> (PathBuf, thread::JoinHandle<()>) {
    let path = socket_path();
    let listener = UnixListener::bind(&path).unwrap();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut line = Vec::new();
        let mut byte = [0u8];
        while stream.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
            line.push(byte[0]);
        }
        let bytes = answer(String::from_utf8(line).unwrap());
        let _ = stream.write_all(&bytes);
        // Hold the connection open a little, as QEMU does.
        thread::sleep(Duration::from_millis(300));
    });
    (path, server)
}

fn framed(text: &str, status: u8, line: &str) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    let (trailer, length) = Trailer { status, id: request_id(line.as_bytes()) }.encode();
    bytes.extend_from_slice(&trailer[..length]);
    bytes
}

#[test]
fn an_answer_comes_back_with_its_status() {
    let (path, server) = serve(|line| framed(&format!("ran {line}\n"), 0, &line));
    let answer = request(&path, "list", Duration::from_secs(5)).unwrap();
    assert_eq!(answer, Answer { text: "ran list\n".into(), status: 0 });
    server.join().unwrap();
    let (path, server) = serve(|line| framed("xl: command not implemented\n", 1, &line));
    let answer = request(&path, "bogus", Duration::from_secs(5)).unwrap();
    assert_eq!(answer.status, 1);
    assert_eq!(answer.text, "xl: command not implemented\n");
    server.join().unwrap();
    let _ = std::fs::remove_file(path);
}

#[test]
fn the_late_answer_to_another_request_is_skipped() {
    let (path, server) = serve(|line| {
        let mut bytes = framed("Parsing config from made.cfg\n", 0, "create made.cfg");
        bytes.extend(framed("Name ID\n", 0, &line));
        bytes
    });
    let answer = request(&path, "list", Duration::from_secs(5)).unwrap();
    assert_eq!(answer.text, "Name ID\n");
    server.join().unwrap();
}

#[test]
fn silence_is_a_timeout_and_a_cut_answer_a_closed_connection() {
    let (path, server) = serve(|_| Vec::new());
    let started = Instant::now();
    let error = request(&path, "list", Duration::from_millis(100)).unwrap_err();
    assert!(matches!(error, XlClientError::Timeout { .. }), "{error}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(error.to_string().contains("no answer from the control domain within 0 s"), "{error}");
    server.join().unwrap();
    let path2 = socket_path();
    let listener = UnixListener::bind(&path2).unwrap();
    let server = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.write_all(b"half an answer").unwrap();
    });
    let error = request(&path2, "list", Duration::from_secs(5)).unwrap_err();
    assert!(matches!(error, XlClientError::Closed { .. }), "{error}");
    server.join().unwrap();
    let _ = (std::fs::remove_file(path), std::fs::remove_file(path2));
}

#[test]
fn a_malformed_trailer_is_an_error() {
    let (path, server) = serve(|_| b"text\0zero 1234\n".to_vec());
    let error = request(&path, "list", Duration::from_secs(5)).unwrap_err();
    assert!(matches!(error, XlClientError::Malformed), "{error}");
    server.join().unwrap();
}

#[test]
fn no_listener_is_a_clear_error() {
    let missing = socket_path();
    let error = request(&missing, "list", Duration::from_secs(1)).unwrap_err();
    assert!(matches!(error, XlClientError::NotRunning { .. }), "{error}");
    assert!(error.to_string().contains("cargo xtask run"), "{error}");
    // A socket file left by a QEMU that is gone: connection refused.
    let stale = socket_path();
    drop(UnixListener::bind(&stale).unwrap());
    let error = request(&stale, "list", Duration::from_secs(1)).unwrap_err();
    assert!(matches!(error, XlClientError::NotRunning { .. }), "{error}");
    let _ = std::fs::remove_file(stale);
}

#[test]
fn requests_that_cannot_be_one_line_are_refused_before_sending() {
    let nowhere = Path::new("/nonexistent/xl.sock");
    assert!(matches!(
        request(nowhere, "list\nlist", DEFAULT_TIMEOUT),
        Err(XlClientError::Unsendable)
    ));
    assert!(matches!(request(nowhere, "li\0st", DEFAULT_TIMEOUT), Err(XlClientError::Unsendable)));
    let long = "x".repeat(MAX_REQUEST + 1);
    assert!(matches!(request(nowhere, &long, DEFAULT_TIMEOUT), Err(XlClientError::TooLong { .. })));
    let args = vec!["a\nb".to_string()];
    assert!(matches!(command_line(&args), Err(XlClientError::Unsendable)));
}

#[test]
fn command_lines_split_back_into_the_arguments() {
    let cases: [&[&str]; 5] = [
        &["list"],
        &["create", "made.cfg", "memory=64"],
        &["create", "made.cfg", "name=\"two words\"", ""],
        &["sched-credit2", "-d", "a\\b", "tab\there", "quote\"and\\slash"],
        &["xl", "-v", "info"],
    ];
    for args in cases {
        let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
        let line = command_line(&args).unwrap();
        assert_eq!(xenolith_xl::split_words(&line).unwrap(), args, "{line}");
    }
    assert_eq!(command_line(&["list".into(), "-l".into()]).unwrap(), "list -l");
}
