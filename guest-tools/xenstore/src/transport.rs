//! Where the tools find xenstored, as libxenstore's `xs_open` looks (Xen 4.17,
//! `tools/libs/store/xs.c` and `tools/xenstore/xs_lib.c`):
//!
//! 1. the daemon's socket: `$XENSTORED_PATH`, else `$XENSTORED_RUNDIR/socket`, else
//!    `/var/run/xenstored/socket`;
//! 2. then the kernel's device: `$XENSTORED_PATH`, else `/dev/xen/xenbus` if it exists, else
//!    `/proc/xen/xenbus` (older kernels, xenfs mounted on `/proc/xen`).
//!
//! Each candidate is connected to as a Unix socket if it is one and opened read-write
//! otherwise. In a Linux guest only step 2 finds anything; the first failure's error is the
//! second's.
//!
//! # Invariants
//! - Opening touches nothing but the candidate paths.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// `XEN_RUN_STORED` of Debian's Xen 4.17 build.
pub const DEFAULT_RUNDIR: &str = "/var/run/xenstored";
/// The Linux device of `xenbus_dev_frontend`.
pub const XENBUS_DEVICE: &str = "/dev/xen/xenbus";
/// The same device where xenfs is mounted on `/proc/xen`.
pub const XENBUS_PROC: &str = "/proc/xen/xenbus";

/// The environment `xs_open` reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Locations {
    /// `XENSTORED_PATH`: the one place to look, socket or device.
    pub xenstored_path: Option<PathBuf>,
    /// `XENSTORED_RUNDIR`: where the socket lives.
    pub rundir: Option<PathBuf>,
}

impl Locations {
    /// From this process's environment.
    pub fn from_environment() -> Locations {
        Locations {
            xenstored_path: std::env::var_os("XENSTORED_PATH").map(PathBuf::from),
            rundir: std::env::var_os("XENSTORED_RUNDIR").map(PathBuf::from),
        }
    }

    /// Step 1's path.
    pub fn socket(&self) -> PathBuf {
        if let Some(path) = &self.xenstored_path {
            return path.clone();
        }
        let rundir = self.rundir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_RUNDIR));
        rundir.join("socket")
    }

    /// Step 2's path.
    pub fn device(&self) -> PathBuf {
        if let Some(path) = &self.xenstored_path {
            return path.clone();
        }
        if Path::new(XENBUS_DEVICE).exists() {
            PathBuf::from(XENBUS_DEVICE)
        } else {
            PathBuf::from(XENBUS_PROC)
        }
    }
}

/// An open connection to xenstored.
#[derive(Debug)]
pub enum Connection {
    /// xenstored's Unix socket (a control domain with xenstored running).
    Socket(UnixStream),
    /// The kernel's xenbus device.
    Device(File),
}

impl Read for Connection {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            Connection::Socket(stream) => stream.read(buffer),
            Connection::Device(file) => file.read(buffer),
        }
    }
}

impl Write for Connection {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Connection::Socket(stream) => stream.write(bytes),
            Connection::Device(file) => file.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Connection::Socket(stream) => stream.flush(),
            Connection::Device(file) => file.flush(),
        }
    }
}

/// `get_handle`: `path` as a socket if it is one, else as a device.
pub fn connect(path: &Path) -> io::Result<Connection> {
    if std::fs::metadata(path)?.file_type().is_socket() {
        Ok(Connection::Socket(UnixStream::connect(path)?))
    } else {
        Ok(Connection::Device(OpenOptions::new().read(true).write(true).open(path)?))
    }
}

/// `xs_open`: the socket, else the device.
pub fn open(locations: &Locations) -> io::Result<Connection> {
    connect(&locations.socket()).or_else(|_| connect(&locations.device()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_places_are_libxenstores() {
        let plain = Locations::default();
        assert_eq!(plain.socket(), Path::new("/var/run/xenstored/socket"));
        assert!([XENBUS_DEVICE, XENBUS_PROC].contains(&plain.device().to_str().unwrap()));
        let rundir = Locations { rundir: Some("/run/x".into()), ..Locations::default() };
        assert_eq!(rundir.socket(), Path::new("/run/x/socket"));
        let forced = Locations { xenstored_path: Some("/tmp/s".into()), rundir: Some("/r".into()) };
        assert_eq!((forced.socket(), forced.device()), ("/tmp/s".into(), "/tmp/s".into()));
    }

    #[test]
    fn a_socket_is_connected_to_and_a_file_opened() {
        let directory = std::env::temp_dir().join(format!("xenstore-tools-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let socket = directory.join("socket");
        let _ = std::fs::remove_file(&socket);
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let locations = Locations { xenstored_path: None, rundir: Some(directory.clone()) };
        let mut connection = open(&locations).unwrap();
        assert!(matches!(connection, Connection::Socket(_)));
        connection.write_all(b"ping").unwrap();
        let (mut peer, _) = listener.accept().unwrap();
        let mut received = [0; 4];
        peer.read_exact(&mut received).unwrap();
        assert_eq!(&received, b"ping");

        let device = directory.join("device");
        std::fs::write(&device, b"").unwrap();
        let forced = Locations { xenstored_path: Some(device.clone()), rundir: None };
        assert!(matches!(open(&forced).unwrap(), Connection::Device(_)));

        let missing = Locations { xenstored_path: Some(directory.join("none")), rundir: None };
        assert_eq!(open(&missing).unwrap_err().kind(), io::ErrorKind::NotFound);
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
