//! The tools' behaviour: `main` and `perform` of Xen 4.17's `tools/xenstore/xenstore_client.c`,
//! what each mode asks xenstore, what it prints where, and its exit status.
//!
//! - **Transactions.** `read` of several keys, `write` of several pairs, and `rm`, `exists`,
//!   `list`, `chmod` always, run inside one transaction; a commit that fails with `EAGAIN` runs
//!   the whole mode again (without limit, as Xen does) and only the last run's output is
//!   printed. A mode that failed abandons the transaction and still prints what it had.
//!   `ls` and `watch` run outside any transaction.
//! - **Exit status.** 0 for success, 1 for everything else: a failed request (`read`: "couldn't
//!   read path P", `write`: "could not write path P", `rm`: "could not remove path P", `list`:
//!   "could not list path P"; `exists` says nothing), no connection ("xs_open: <strerror>"), a
//!   transaction that would not start or end, a usage error.
//! - **Output.** `read` and `list` collect their output and print it at the end; `ls` and
//!   `watch` print as they go (`watch` flushes every event line). Messages go to standard
//!   error, prefixed with the program's file name.
//!
//! # Invariants
//! - Nothing is printed on standard output for a run whose transaction is retried.
//! - The connection is opened only after the command line parsed.

use std::io::{self, Write};

use xenolith_abi::xen::xs_wire::XS_WATCH_PATH;

use crate::client::{Client, Permission, Transport, XBT_NULL};
use crate::command_line::{self, atoi, Invocation, Mode, Names};
use crate::errno::Errno;
use crate::escape::{sanitise, unsanitise};
use crate::ls::Layout;

/// What the tools learn from their surroundings besides the command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Environment {
    /// Standard output's terminal width in columns, if it is a terminal (`TIOCGWINSZ`).
    pub columns: Option<u16>,
}

/// The run stops here with exit status 1; its message is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Exit;

/// `chmod -r` builds child paths in a buffer of `MAX_PATH_LEN` (256) bytes: longer ones are cut.
const CHMOD_PATH_MAX: usize = 255;

/// Runs the tool `argv` asks for (the program's name first) over the connection `open`
/// makes, writing to `stdout` and `stderr`; returns the exit status.
pub fn run<T: Transport>(
    argv: &[Vec<u8>],
    environment: Environment,
    open: impl FnOnce() -> io::Result<T>,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
) -> u8 {
    let Ok((names, invocation)) = command_line::parse(argv, stderr) else { return 1 };
    let transport = match open() {
        Ok(transport) => transport,
        Err(error) => {
            let text = format!("xs_open: {}", Errno::from_io(&error));
            names.warn(stderr, text.as_bytes());
            return 1;
        }
    };
    let mut tool =
        Tool { names, invocation, environment, client: Client::new(transport), stdout, stderr };
    let status = tool.main().unwrap_or(1);
    let _ = tool.stdout.flush();
    status
}

/// One run: the command line, the connection and the output streams.
pub(crate) struct Tool<'a, T> {
    pub(crate) names: Names,
    pub(crate) invocation: Invocation,
    pub(crate) environment: Environment,
    pub(crate) client: Client<T>,
    pub(crate) stdout: &'a mut dyn Write,
    pub(crate) stderr: &'a mut dyn Write,
}

impl<T: Transport> Tool<'_, T> {
    /// `warnx`: the program's name and `message`.
    pub(crate) fn warnx(&mut self, message: &[u8]) {
        self.names.warn(self.stderr, message);
    }

    /// `err`/`warn`: the program's name, `message` and `errno`'s text.
    pub(crate) fn warn_errno(&mut self, message: &[u8], errno: Errno) {
        let mut text = message.to_vec();
        text.extend_from_slice(format!(": {errno}").as_bytes());
        self.warnx(&text);
    }

    /// Writes to standard output; a failure is ignored, as C's stdio ignores it.
    pub(crate) fn print(&mut self, bytes: &[u8]) {
        let _ = self.stdout.write_all(bytes);
    }

    /// `main` after the connection is open: the transaction loop around [`Tool::perform`].
    fn main(&mut self) -> Result<u8, Exit> {
        let count = self.invocation.operands.len();
        let transaction = match self.invocation.mode {
            Mode::Read => count > 1,
            Mode::Write => count > 2,
            Mode::Ls | Mode::Watch => false,
            Mode::Rm | Mode::Exists | Mode::List | Mode::Chmod => true,
        };
        loop {
            let tx_id = if transaction {
                match self.client.transaction_start() {
                    Ok(tx_id) => tx_id,
                    Err(_) => {
                        self.warnx(b"couldn't start transaction");
                        return Err(Exit);
                    }
                }
            } else {
                XBT_NULL
            };
            let mut output = Vec::new();
            let status = self.perform(tx_id, &mut output)?;
            if transaction {
                match self.client.transaction_end(tx_id, status != 0) {
                    Ok(()) => {}
                    Err(Errno::EAGAIN) if status == 0 => continue,
                    Err(_) => {
                        self.warnx(b"couldn't end transaction");
                        return Err(Exit);
                    }
                }
            }
            self.print(&output);
            return Ok(status);
        }
    }

    /// `perform`: the mode's requests for every operand; 1 at the first failure. `read` and
    /// `list` put their output into `output`.
    fn perform(&mut self, tx_id: u32, output: &mut Vec<u8>) -> Result<u8, Exit> {
        let operands = self.invocation.operands.clone();
        match self.invocation.mode {
            Mode::Read => {
                for path in &operands {
                    let Ok(value) = self.client.read(tx_id, path) else {
                        self.warnx(&[b"couldn't read path ", path.as_slice()].concat());
                        return Ok(1);
                    };
                    if self.invocation.prefix {
                        output.extend_from_slice(&[path.as_slice(), b": "].concat());
                    }
                    if self.invocation.raw {
                        output.extend_from_slice(&value);
                    } else {
                        output.extend_from_slice(sanitise(&value).as_bytes());
                        output.push(b'\n');
                    }
                }
            }
            Mode::Write => {
                for pair in operands.chunks_exact(2) {
                    let (path, text) = (&pair[0], &pair[1]);
                    let value = if self.invocation.raw { text.clone() } else { unsanitise(text) };
                    if self.client.write(tx_id, path, &value).is_err() {
                        self.warnx(&[b"could not write path ", path.as_slice()].concat());
                        return Ok(1);
                    }
                }
            }
            Mode::Rm => {
                for path in &operands {
                    if self.rm(tx_id, path) != 0 {
                        return Ok(1);
                    }
                }
            }
            Mode::Exists => {
                for path in &operands {
                    if self.client.read(tx_id, path).is_err() {
                        return Ok(1);
                    }
                }
            }
            Mode::List => {
                for path in &operands {
                    let Ok(names) = self.client.directory(tx_id, path) else {
                        self.warnx(&[b"could not list path ", path.as_slice()].concat());
                        return Ok(1);
                    };
                    for name in names {
                        if self.invocation.prefix {
                            output.extend_from_slice(&[path.as_slice(), b"/"].concat());
                        }
                        output.extend_from_slice(&name);
                        output.push(b'\n');
                    }
                }
            }
            Mode::Ls => {
                let layout = Layout::new(self.invocation.flat, self.environment.columns);
                let paths = if operands.is_empty() { vec![b"/".to_vec()] } else { operands };
                for path in &paths {
                    self.ls(path, 0, self.invocation.prefix, &layout)?;
                }
            }
            Mode::Chmod => {
                let (path, modes) = operands.split_first().expect("chmod has a path");
                let mut permissions = Vec::new();
                for mode in modes {
                    let access = mode.first().copied().unwrap_or(0);
                    if !matches!(access, b'n' | b'r' | b'w' | b'b') {
                        let text = [b"Invalid permission specification: '", &[access][..], b"'"];
                        self.warnx(&text.concat());
                        return Err(Exit);
                    }
                    let domain = atoi(mode.get(1..).unwrap_or_default()) as u32;
                    permissions.push(Permission { access, domain });
                }
                let (upto, recurse) = (self.invocation.upto, self.invocation.recurse);
                self.chmod(tx_id, path, &permissions, upto, recurse)?;
            }
            Mode::Watch => {
                for path in &operands {
                    if self.client.watch(path, path).is_err() {
                        self.warnx(&[b"Unable to add watch on ", path.as_slice(), b"\n"].concat());
                        return Err(Exit);
                    }
                }
                return self.watch();
            }
        }
        Ok(0)
    }

    /// `rm` of one operand: with `-t`, then each parent that is left with an empty value
    /// and no children, up the path.
    fn rm(&mut self, tx_id: u32, path: &[u8]) -> u8 {
        let mut path = path.to_vec();
        loop {
            if self.client.rm(tx_id, &path).is_err() {
                self.warnx(&[b"could not remove path ", path.as_slice()].concat());
                return 1;
            }
            if !self.invocation.tidy {
                return 0;
            }
            let Some(slash) = path.iter().rposition(|&byte| byte == b'/') else { return 0 };
            path.truncate(slash);
            let empty = self.client.read(tx_id, &path).is_ok_and(|value| value.is_empty())
                && self.client.directory(tx_id, &path).is_ok_and(|names| names.is_empty());
            if !empty {
                return 0;
            }
        }
    }

    /// `do_chmod`: sets `path`'s permissions, then with `upto` its parents', with `recurse`
    /// its descendants'.
    fn chmod(
        &mut self,
        tx_id: u32,
        path: &[u8],
        permissions: &[Permission],
        upto: bool,
        recurse: bool,
    ) -> Result<(), Exit> {
        if path.is_empty() {
            return Ok(());
        }
        if let Err(errno) = self.client.set_permissions(tx_id, path, permissions) {
            let text = [b"Error occurred setting permissions on '", path, b"'"].concat();
            self.warn_errno(&text, errno);
            return Err(Exit);
        }
        if upto {
            let Some(slash) = path.iter().rposition(|&byte| byte == b'/') else {
                let text = [b"Unable to locate path separator '/' in '", path, b"'"].concat();
                self.warnx(&text);
                return Err(Exit);
            };
            self.chmod(tx_id, &path[..slash], permissions, true, false)?;
        }
        if recurse {
            if let Ok(names) = self.client.directory(tx_id, path) {
                for name in names {
                    let mut child = [path, b"/", name.as_slice()].concat();
                    child.truncate(CHMOD_PATH_MAX);
                    self.chmod(tx_id, &child, permissions, false, true)?;
                }
            }
        }
        Ok(())
    }

    /// `do_watch`: prints the path of each event, one a line, flushed, until `-n` events have
    /// been counted (never without `-n`). Once the connection is gone no event can come:
    /// with `-n` that ends the run with status 0, as Xen's count runs out; without, with a
    /// message and status 1 (Xen's tool would wait forever).
    fn watch(&mut self) -> Result<u8, Exit> {
        let limit = self.invocation.events;
        let mut count: i32 = 0;
        while limit == -1 || count < limit {
            match self.client.read_watch() {
                Ok(strings) => {
                    let path = strings.into_iter().nth(XS_WATCH_PATH).unwrap_or_default();
                    self.print(&[path.as_slice(), b"\n"].concat());
                    let _ = self.stdout.flush();
                }
                Err(_) if limit != -1 => return Ok(0),
                Err(errno) => {
                    self.warn_errno(b"xs_read_watch", errno);
                    return Err(Exit);
                }
            }
            count += 1;
        }
        Ok(0)
    }
}
