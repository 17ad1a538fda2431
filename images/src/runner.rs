//! Running QEMU under supervision: serial lines read as they come, markers waited for with a
//! timeout, at most two emulators at once, and never an emulator left behind.
//!
//! # Invariants
//! - A [`Running`] owns its QEMU: dropping it (also while a test panics) kills and reaps it
//!   (and removes its virtio console's socket), and QEMU is started with a parent-death signal
//!   so a killed test process takes it along.
//! - At most [`MAX_PARALLEL`] QEMUs run per process: these machines have two cores.
//! - Every failure carries the last [`TAIL_LINES`] serial lines.
//! - A line with a forbidden pattern is a failure wherever it is read, except the line a
//!   [`Running::wait_for`] was waiting for: a wait fails on it at once, [`Running::next_line`]
//!   (which hands every line over) leaves it for [`Running::finish`] to report. Forbidden
//!   patterns are watched until `finish`, also after the last marker: a `Running` told to
//!   [`Running::finish_on_drop`] finishes when dropped, unless its thread is already panicking.

use std::collections::VecDeque;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::qemu::QemuConfig;

/// QEMUs running at once, at most.
pub const MAX_PARALLEL: usize = 2;
/// Serial lines shown with a failure.
pub const TAIL_LINES: usize = 50;

static SLOTS: Mutex<usize> = Mutex::new(0);
static SLOT_FREED: Condvar = Condvar::new();

struct Slot;

impl Slot {
    fn acquire() -> Self {
        let mut used = SLOTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while *used >= MAX_PARALLEL {
            used = SLOT_FREED.wait(used).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        *used += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut used = SLOTS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *used -= 1;
        SLOT_FREED.notify_one();
    }
}

/// Why waiting failed, with the serial tail.
#[derive(Debug)]
pub struct RunError {
    /// What happened.
    pub reason: String,
    /// The last serial lines.
    pub tail: Vec<String>,
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.reason)?;
        writeln!(f, "---- last {} serial lines ----", self.tail.len())?;
        for line in &self.tail {
            writeln!(f, "{line}")?;
        }
        write!(f, "---- end of serial output ----")
    }
}

impl std::error::Error for RunError {}

/// A supervised QEMU.
pub struct Running {
    child: Child,
    lines: Receiver<String>,
    /// The rest of the last matched line: the next wait looks there first, so two markers on
    /// one line are found in order.
    rest_of_line: Option<String>,
    tail: VecDeque<String>,
    forbidden: Vec<String>,
    /// Serial lines read so far.
    lines_read: u64,
    /// The first forbidden pattern [`Running::next_line`] passed over, and its line.
    passed_over: Option<(String, String)>,
    /// How long dropping this watches for forbidden patterns first; `None`: not at all.
    finish_on_drop: Option<Duration>,
    started: Instant,
    echo: bool,
    /// The virtio console's socket QEMU listens on, removed with QEMU (killed, it leaves it).
    socket: Option<std::path::PathBuf>,
    _slot: Slot,
}

impl Running {
    /// Starts QEMU as `config` says, serial on a pipe. Lines containing "PANIC" fail any wait
    /// unless [`Running::allow`] lifts that.
    pub fn start(config: &QemuConfig) -> Result<Self> {
        let mut running = Self::spawn(config.command())?;
        running.socket = config.xl_socket.clone();
        Ok(running)
    }

    /// Starts the QEMU command `qemu` (serial on its standard output), supervised as
    /// [`Running::start`] does.
    pub fn spawn(qemu: std::process::Command) -> Result<Self> {
        let slot = Slot::acquire();
        let mut command = std::process::Command::new("setpriv");
        command.args(["--pdeathsig", "KILL", "--"]).arg(qemu.get_program()).args(qemu.get_args());
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child =
            command.spawn().context("starting qemu-system-aarch64 (through setpriv)")?;
        let (sender, lines) = mpsc::channel();
        let stdout = child.stdout.take().context("QEMU stdout")?;
        let stderr = child.stderr.take().context("QEMU stderr")?;
        spawn_reader(stdout, sender.clone(), "");
        spawn_reader(stderr, sender, "qemu: ");
        Ok(Self {
            child,
            lines,
            rest_of_line: None,
            tail: VecDeque::new(),
            forbidden: vec!["PANIC".into()],
            lines_read: 0,
            passed_over: None,
            finish_on_drop: None,
            started: Instant::now(),
            echo: std::env::var_os("XENOLITH_ECHO_SERIAL").is_some(),
            socket: None,
            _slot: slot,
        })
    }

    /// Types `bytes` on the serial line (QEMU's standard input, which `-serial stdio` reads).
    pub fn type_input(&mut self, bytes: &[u8]) -> Result<()> {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().context("QEMU's standard input is closed")?;
        stdin.write_all(bytes).context("writing to QEMU's standard input")?;
        stdin.flush().context("writing to QEMU's standard input")
    }

    /// Stops treating lines with `pattern` as failures.
    pub fn allow(&mut self, pattern: &str) {
        self.forbidden.retain(|forbidden| forbidden != pattern);
    }

    /// Treats any line containing `pattern` as a failure from now on.
    pub fn forbid(&mut self, pattern: &str) {
        self.forbidden.push(pattern.into());
    }

    /// Makes dropping this `Running` (not while panicking) call [`Running::finish`] with
    /// `watch` and panic with its error, so every test watches its forbidden patterns to its end.
    pub fn finish_on_drop(&mut self, watch: Duration) {
        self.finish_on_drop = Some(watch);
    }

    /// The end of the run: reads on for `watch` (or until QEMU exits) and fails on the first
    /// line with a forbidden pattern, or at once if [`Running::next_line`] passed one over. Only
    /// the lines that arrive within `watch` are looked at; dropping the `Running` afterwards
    /// watches no more.
    pub fn finish(&mut self, watch: Duration) -> Result<(), RunError> {
        self.finish_on_drop = None;
        if let Some((pattern, line)) = self.passed_over.take() {
            return Err(self.fail(format!("unexpected {pattern:?} in a line read earlier: {line}")));
        }
        let deadline = Instant::now() + watch;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(line) = self.lines.recv_timeout(left) else {
                // Quiet until the deadline, or QEMU exited: nothing more to see.
                return Ok(());
            };
            self.record(line.clone());
            if let Some(pattern) = self.forbidden_in(&line) {
                return Err(self.fail(format!(
                    "unexpected {pattern:?} after the last marker (watched for {watch:?})"
                )));
            }
        }
        Ok(())
    }

    /// The first forbidden pattern in `line`.
    fn forbidden_in(&self, line: &str) -> Option<String> {
        self.forbidden.iter().find(|pattern| line.contains(pattern.as_str())).cloned()
    }

    /// Time since QEMU started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The last serial lines.
    pub fn tail(&self) -> Vec<String> {
        self.tail.iter().cloned().collect()
    }

    fn fail(&self, reason: String) -> RunError {
        RunError { reason, tail: self.tail() }
    }

    fn record(&mut self, line: String) {
        self.lines_read += 1;
        if self.echo {
            eprintln!("serial| {line}");
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }

    /// The next serial line, whatever it says, or `None` when none came within `timeout`. Fails
    /// when QEMU exits first. A forbidden pattern does not fail it: [`Running::finish`] reports
    /// the first one.
    pub fn next_line(&mut self, timeout: Duration) -> Result<Option<String>, RunError> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => {
                self.record(line.clone());
                if self.passed_over.is_none() {
                    self.passed_over =
                        self.forbidden_in(&line).map(|pattern| (pattern, line.clone()));
                }
                Ok(Some(line))
            }
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(self.fail("QEMU exited".into())),
        }
    }

    /// Waits until every one of `markers` has appeared, in any order, and returns the line each
    /// first appeared on (in `markers`' order). A marker named twice needs two lines. Fails as
    /// [`Running::wait_for`].
    pub fn wait_for_all(
        &mut self,
        markers: &[&str],
        timeout: Duration,
    ) -> Result<Vec<String>, RunError> {
        let found = self.wait_for_all_numbered(markers, timeout)?;
        Ok(found.into_iter().map(|(_, line)| line).collect())
    }

    /// [`Running::wait_for_all`], each line with its number (the first serial line is 1), so
    /// that a caller can check in which order the markers came.
    pub fn wait_for_all_numbered(
        &mut self,
        markers: &[&str],
        timeout: Duration,
    ) -> Result<Vec<(u64, String)>, RunError> {
        let deadline = Instant::now() + timeout;
        let mut found: Vec<Option<(u64, String)>> = vec![None; markers.len()];
        loop {
            let missing: Vec<&str> = markers
                .iter()
                .zip(&found)
                .filter(|(_, line)| line.is_none())
                .map(|(marker, _)| *marker)
                .collect();
            if missing.is_empty() {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(
                        self.fail(format!("timed out after {timeout:?} waiting for {missing:?}"))
                    );
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.fail(format!("QEMU exited before {missing:?} appeared")));
                }
            };
            self.record(line.clone());
            let mut matched: Vec<&str> = Vec::new();
            for (marker, slot) in markers.iter().zip(found.iter_mut()) {
                if slot.is_none() && !matched.contains(marker) && line.contains(marker) {
                    *slot = Some((self.lines_read, line.clone()));
                    matched.push(marker);
                }
            }
            if let Some(pattern) = self.forbidden_in(&line) {
                return Err(
                    self.fail(format!("unexpected {pattern:?} while waiting for {missing:?}"))
                );
            }
        }
        Ok(found.into_iter().flatten().collect())
    }

    /// Waits until a serial line contains `marker`, and returns that line. Fails on timeout, when
    /// QEMU exits first, or on a line with a forbidden pattern.
    pub fn wait_for(&mut self, marker: &str, timeout: Duration) -> Result<String, RunError> {
        if let Some(rest) = self.rest_of_line.take() {
            if let Some(position) = rest.find(marker) {
                self.rest_of_line = Some(rest[position + marker.len()..].to_string());
                return Ok(rest);
            }
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.record(line.clone());
                    if let Some(position) = line.find(marker) {
                        self.rest_of_line = Some(line[position + marker.len()..].to_string());
                        return Ok(line);
                    }
                    if let Some(pattern) = self.forbidden_in(&line) {
                        return Err(self
                            .fail(format!("unexpected {pattern:?} while waiting for {marker:?}")));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(
                        self.fail(format!("timed out after {timeout:?} waiting for {marker:?}"))
                    );
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().map(|status| status.to_string());
                    return Err(self.fail(format!(
                        "QEMU exited ({}) before {marker:?} appeared",
                        status.unwrap_or_else(|error| error.to_string())
                    )));
                }
            }
        }
    }

    /// Waits for QEMU to exit by itself (the core powered off), collecting its output. Fails on
    /// timeout or on a line with a forbidden pattern.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Result<ExitStatus, RunError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.record(line.clone());
                    if let Some(pattern) = self.forbidden_in(&line) {
                        return Err(self.fail(format!(
                            "unexpected {pattern:?} while waiting for QEMU to exit"
                        )));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(self.fail(format!("QEMU still running after {timeout:?}")));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return self.child.wait().map_err(|error| self.fail(error.to_string()));
                }
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // A test that already failed keeps its own message (a second panic would abort).
        let finished = match self.finish_on_drop {
            Some(watch) if !std::thread::panicking() => self.finish(watch),
            _ => Ok(()),
        };
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(socket) = &self.socket {
            let _ = std::fs::remove_file(socket);
        }
        if let Err(error) = finished {
            panic!("{error}");
        }
    }
}

fn spawn_reader(
    stream: impl Read + Send + 'static,
    sender: mpsc::Sender<String>,
    prefix: &'static str,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buffer = Vec::new();
        loop {
            buffer.clear();
            match reader.read_until(b'\n', &mut buffer) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&buffer);
                    let line = format!("{prefix}{}", text.trim_end_matches(['\r', '\n']));
                    if sender.send(line).is_err() {
                        return;
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long enough for any of these stand-ins to print its lines.
    const WAIT: Duration = Duration::from_secs(10);

    /// A stand-in for QEMU: a shell running `script` (its output as the serial line), then
    /// staying up until it is killed, as QEMU does.
    fn fake_qemu(script: &str) -> Running {
        let mut command = std::process::Command::new("sh");
        command.args(["-c", &format!("{script}; exec sleep 60")]);
        Running::spawn(command).expect("starting sh through setpriv")
    }

    #[test]
    fn a_forbidden_line_after_the_last_marker_fails_finish() {
        let mut running = fake_qemu("echo 'guest: PASS'; sleep 0.3; echo 'guest: FAIL late'");
        running.forbid("FAIL");
        running.wait_for("guest: PASS", WAIT).expect("the last marker");
        let error = running.finish(WAIT).expect_err("the FAIL after the last marker");
        assert!(error.reason.starts_with("unexpected \"FAIL\" after the last marker"), "{error}");
        assert_eq!(error.tail.last().map(String::as_str), Some("guest: FAIL late"));
    }

    #[test]
    fn a_quiet_end_passes_finish_once_its_watch_is_over() {
        let mut running = fake_qemu("echo 'guest: PASS'; echo 'guest: progress 1'");
        running.forbid("FAIL");
        running.wait_for("guest: PASS", WAIT).expect("the last marker");
        let started = Instant::now();
        running.finish(Duration::from_millis(300)).expect("nothing forbidden");
        assert!(started.elapsed() < WAIT, "finish watched for {:?}", started.elapsed());
        assert_eq!(running.tail().last().map(String::as_str), Some("guest: progress 1"));
    }

    #[test]
    fn dropping_a_running_set_to_finish_on_drop_fails_on_a_late_forbidden_line() {
        let dropped = std::panic::catch_unwind(|| {
            let mut running = fake_qemu("echo 'Xenolith ready'; sleep 0.3; echo 'PANIC on CPU0'");
            running.finish_on_drop(WAIT);
            running.wait_for("Xenolith ready", WAIT).expect("the last marker");
        });
        let panic = dropped.expect_err("dropping it must fail the test");
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(message.starts_with("unexpected \"PANIC\" after the last marker"), "{message}");
    }

    #[test]
    fn a_forbidden_line_read_by_next_line_fails_finish() {
        let mut running = fake_qemu("echo 'guest: FAIL early'; echo 'guest: done'");
        running.forbid("FAIL");
        let first = running.next_line(WAIT).expect("a line");
        assert_eq!(first.as_deref(), Some("guest: FAIL early"), "next_line hands it over");
        running.wait_for("guest: done", WAIT).expect("the last marker");
        let error = running.finish(WAIT).expect_err("the FAIL next_line passed over");
        assert!(error.reason.contains("guest: FAIL early"), "{error}");
    }
}
