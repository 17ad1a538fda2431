//! `xenstore`: Xen's xenstore tools in one binary; see the library ([`xenstore_tools`]).
#![forbid(unsafe_code)]

use std::io::Write;
use std::os::unix::ffi::OsStringExt;
use std::process::ExitCode;

use xenstore_tools::transport::{self, Locations};
use xenstore_tools::Environment;

fn main() -> ExitCode {
    let argv: Vec<Vec<u8>> = std::env::args_os().map(OsStringExt::into_vec).collect();
    let stdout = std::io::stdout();
    // TIOCGWINSZ on standard output; it fails unless that is a terminal.
    let columns = rustix::termios::tcgetwinsize(&stdout).ok().map(|size| size.ws_col);
    let environment = Environment { columns };
    let locations = Locations::from_environment();
    let mut stdout = stdout.lock();
    let mut stderr = std::io::stderr().lock();
    let status = xenstore_tools::run(
        &argv,
        environment,
        || transport::open(&locations),
        &mut stdout,
        &mut stderr,
    );
    let _ = stdout.flush();
    ExitCode::from(status)
}
