//! `cargo xtask xl <args>`: an xl command from the host, run by the control domain of the system
//! `cargo xtask run` boots, with xl's output and exit status coming back.
//!
//! The control domain's virtio console (a manifest domain with the capability
//! `hardware:virtio-console`) is QEMU's `virtconsole` on a unix socket ([`crate::qemu`]):
//! [`default_socket`] for `cargo xtask run`, a path of their own for tests. [`request`] connects,
//! sends one line and reads the answer as `xenolith_abi::host_xl` frames it, skipping the late
//! answers of requests other clients gave up on. The system tests call the same function.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use xenolith_abi::host_xl::{request_id, AnswerReader, Step, MAX_REQUEST};

use crate::workspace;

/// How long [`request`] waits for an answer unless told otherwise: an `xl create` of a Linux
/// guest (the control domain reads its 33 MB kernel from the boot bundle) takes seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Where `cargo xtask run` puts the control domain's virtio console.
pub fn default_socket() -> PathBuf {
    workspace::root().join("target").join("xenolith").join("xl.sock")
}

/// xl's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Everything xl printed (its standard output and error, in order).
    pub text: String,
    /// xl's exit status: 0 on success, 1 for a failure, 2 for a usage error.
    pub status: u8,
}

/// Why no answer came.
#[derive(Debug, thiserror::Error)]
pub enum XlClientError {
    /// Nothing listens on the socket.
    #[error(
        "no system with xl from the host is running: nothing listens on {path} (boot one with \
         `cargo xtask run`; its manifest's control domain needs the capability \
         hardware:virtio-console, as images/default.toml's has)"
    )]
    NotRunning {
        /// The socket.
        path: PathBuf,
        /// What connecting said.
        #[source]
        source: io::Error,
    },
    /// The request cannot be sent as one line.
    #[error("an xl argument holds a newline or a NUL byte, which a request line cannot carry")]
    Unsendable,
    /// The request is longer than the control domain reads.
    #[error("the request is {length} bytes long; the control domain reads at most {MAX_REQUEST}")]
    TooLong {
        /// Its length.
        length: usize,
    },
    /// No answer within the timeout.
    #[error(
        "no answer from the control domain within {} s (it may be busy with another request, \
         restarting, or stopped: look at the system's console)",
        .timeout.as_secs()
    )]
    Timeout {
        /// How long it waited.
        timeout: Duration,
    },
    /// The connection closed before the answer ended.
    #[error("the connection to {path} closed before xl's answer ended (did the system stop?)")]
    Closed {
        /// The socket.
        path: PathBuf,
    },
    /// The answer ended with a trailer that does not read as one.
    #[error("the control domain's answer ended with a malformed trailer")]
    Malformed,
    /// Reading or writing the socket failed.
    #[error("talking to the control domain over {path}")]
    Io {
        /// The socket.
        path: PathBuf,
        /// What failed.
        #[source]
        source: io::Error,
    },
}

/// The request line for xl's arguments `args`: joined with spaces, each word that xl's line
/// splitting would not read back as it is (`xenolith_xl`'s `split_words`: empty, or holding
/// blanks or a `"`) in double quotes with `"` and `\` escaped.
pub fn command_line(args: &[String]) -> Result<String, XlClientError> {
    let mut line = String::new();
    for (index, arg) in args.iter().enumerate() {
        if arg.contains(['\n', '\0']) {
            return Err(XlClientError::Unsendable);
        }
        if index > 0 {
            line.push(' ');
        }
        if arg.is_empty() || arg.contains([' ', '\t', '\r', '"']) {
            line.push('"');
            for c in arg.chars() {
                if matches!(c, '"' | '\\') {
                    line.push('\\');
                }
                line.push(c);
            }
            line.push('"');
        } else {
            line.push_str(arg);
        }
    }
    if line.len() > MAX_REQUEST {
        return Err(XlClientError::TooLong { length: line.len() });
    }
    Ok(line)
}

/// Sends `line` to the control domain listening on `socket` and waits up to `timeout` for its
/// answer.
pub fn request(socket: &Path, line: &str, timeout: Duration) -> Result<Answer, XlClientError> {
    if line.contains(['\n', '\0']) {
        return Err(XlClientError::Unsendable);
    }
    if line.len() > MAX_REQUEST {
        return Err(XlClientError::TooLong { length: line.len() });
    }
    let io = |source: io::Error| match source.kind() {
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => {
            XlClientError::Closed { path: socket.to_path_buf() }
        }
        _ => XlClientError::Io { path: socket.to_path_buf(), source },
    };
    let mut stream = UnixStream::connect(socket)
        .map_err(|source| XlClientError::NotRunning { path: socket.to_path_buf(), source })?;
    let deadline = Instant::now() + timeout;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    let mut bytes = line.as_bytes().to_vec();
    bytes.push(b'\n');
    stream.write_all(&bytes).map_err(|source| match source.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => XlClientError::Timeout { timeout },
        _ => io(source),
    })?;
    let id = request_id(line.as_bytes());
    let mut reader = AnswerReader::default();
    let mut text = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(XlClientError::Timeout { timeout });
        }
        stream.set_read_timeout(Some(left)).map_err(io)?;
        let count = match stream.read(&mut buffer) {
            Ok(0) => return Err(XlClientError::Closed { path: socket.to_path_buf() }),
            Ok(count) => count,
            Err(error)
                if matches!(error.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
            {
                return Err(XlClientError::Timeout { timeout })
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(io(error)),
        };
        for &byte in &buffer[..count] {
            match reader.push(byte) {
                Step::Text(byte) => text.push(byte),
                Step::Trailer => {}
                Step::Done(trailer) if trailer.id == id => {
                    let text = String::from_utf8_lossy(&text).into_owned();
                    return Ok(Answer { text, status: trailer.status });
                }
                // The late answer to another client's request.
                Step::Done(_) => text.clear(),
                Step::Malformed => return Err(XlClientError::Malformed),
            }
        }
    }
}

#[cfg(test)]
mod tests;
