//! The control domain as a service (no batch argument on its command line, as
//! `images/default.toml` and `images/linux.toml` run it, with `restart = "always"`): xl's
//! commands typed at its console (the input focus of the console domain), and a toolstack that
//! keeps nothing it cannot rebuild.
//!
//! # What it keeps, and where
//! Nothing in its own memory outlives it. The core knows every domain (`getdomaininfolist`);
//! xenstore holds what libxl would keep there, written as libxl writes it:
//! - `/local/domain/<id>/name`, and the console's frontend and backend directories
//!   (`toolstack::console_device`), for a domain it created;
//! - `/libxl/<id>/cfg`: the bundle module the domain was created from (what `xl list -l` and a
//!   reboot read again);
//! - [`INTENT`] = `<id> <cfg> <building|built|built-paused>` while `xl create` runs: written
//!   before `XEN_DOMCTL_createdomain` (with that id), `built` once the domain and its records
//!   are complete, and removed when the command ends.
//!
//! - [`RESTART`] = `<cfg>` while a domain that shut down is being restarted from its
//!   configuration (xl's `on_reboot = "restart"` and the like: `Control::after_shutdowns`).
//!
//! # Restart
//! A new incarnation ([`Service::recover`]) reads [`INTENT`]: a domain still `building` there
//! (half-built) is destroyed, its frames go back and its records with it; one `built` (built
//! and recorded) is completed: unpaused, unless it was `xl create -p`. Then it serves. So a kill
//! at any point of `xl create` or `xl destroy` leaves no half-built domain and no leaked frame
//! (a destroy the kill cut short is finished by the core, which destroys a domain once asked;
//! its records go when `VIRQ_DOM_EXC` says it is gone). Then it creates the domain [`RESTART`]
//! names if none of its name exists, and applies the shutdown actions of the domains that
//! stopped while nobody served (the core keeps them, shut down, for the toolstack).
//!
//! # xl from the host
//! With a virtio console passed through (the manifest's `hardware:virtio-console`; QEMU's
//! `virtconsole` on a host socket, which `cargo xtask xl` talks to) it serves xl there too:
//! each request line runs as at its console, and the answer is what xl prints, then a trailer
//! with xl's exit status (`xenolith_abi::host_xl`). One request at a time, between the
//! console's lines. A device that misbehaves is reset and started again (a few times); without
//! one everything else works as before.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use xenolith_abi::host_xl::{self, Request, RequestReader, Trailer, MAX_REQUEST};
use xenolith_abi::xen::event_channel::VIRQ_DOM_EXC;
use xenolith_abi::xen::hypercall::DOMID_SELF;
use xenolith_runtime::events::{self, Port};
use xenolith_runtime::pvconsole::PvConsole;
use xenolith_runtime::virtio::{self, VirtioConsole};
use xenolith_runtime::xenbus::Xenbus;
use xenolith_runtime::{irq, now_ns, println, StartInfo};

use crate::toolstack::Control;

/// The record of a creation in progress: `<id> <cfg module>`.
pub const INTENT: &str = "/tool/xenolith/create";
/// The record of a restart in progress (`on_reboot = "restart"` and the like): the
/// configuration module to create again, written before the old domain is destroyed.
pub const RESTART: &str = "/tool/xenolith/restart";
/// How long the service sleeps without input or a domain event (ns).
const IDLE_NS: u64 = 100_000_000;
/// How long an answer to the host may take to leave (ns): the device holds every transmit
/// buffer only while QEMU writes them to the socket.
const ANSWER_NS: u64 = 5_000_000_000;
/// How many times a misbehaving virtio console is started again before it is given up.
const HOST_RESTARTS: u32 = 3;

/// The virtual counter (for the figures `cargo xtask bench xl` reads).
pub fn counter() -> u64 {
    let now: u64;
    // SAFETY: reading the virtual counter has no side effect; the ISB only orders it.
    unsafe {
        core::arch::asm!("isb", "mrs {0}, cntvct_el0", out(reg) now, options(nomem, nostack))
    };
    now
}

/// A point `1..=span` hypercalls ahead for an injected kill: xorshift64* of `seed` and the
/// restart count.
fn kill_point(seed: u64, restarts: u32, span: u64) -> u64 {
    let mut x = (seed ^ (u64::from(restarts) << 32)).max(1);
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    1 + x.wrapping_mul(0x2545_F491_4F6C_DD1D) % span.max(1)
}

/// xl from the host: the virtio console and the request being read.
struct Host {
    console: VirtioConsole,
    requests: Box<RequestReader>,
    /// Times the console was started again after an error.
    restarts: u32,
    /// Requests read so far.
    requests_read: u64,
    /// Restart testing (`host_kill=<k>`, `seed=<s>`, `span=<n>`): the first incarnation kills
    /// itself at a random one of the `n` hypercalls after it reads its `k`-th request.
    kill: Option<(u64, u64)>,
}

/// The service's connections.
pub struct Service {
    /// The toolstack (xenstore client and domain operations).
    pub control: Control,
    console: Option<PvConsole>,
    host: Option<Host>,
    dom_exc: Port,
}

impl Service {
    /// Connects to the event channels, xenstore, its console ring and, if the DTB names one,
    /// the virtio console.
    pub fn start(info: &StartInfo) -> Result<Self, String> {
        // (Connecting to xenstore maps the shared-info page for the event channels.)
        let store = Xenbus::connect().map_err(|error| format!("xenstore: {error:?}"))?;
        let dom_exc = events::bind_virq(VIRQ_DOM_EXC, 0)
            .map_err(|error| format!("VIRQ_DOM_EXC: {error:?}"))?;
        dom_exc.mask();
        let console = PvConsole::open().ok();
        if let Some(console) = &console {
            console.port().mask();
        }
        let host = Self::open_host(info);
        Ok(Self { control: Control::new(store), console, host, dom_exc })
    }

    /// The virtio console, if the DTB names one and it starts; its interrupt taken on vCPU 0.
    fn open_host(info: &StartInfo) -> Option<Host> {
        info.virtio_mmio?;
        irq::set_handler(virtio::interrupt);
        irq::init_distributor();
        irq::init_cpu(0, 0);
        let console = match VirtioConsole::open(info) {
            Ok(console) => console?,
            Err(error) => {
                println!("control: no xl from the host: {error}");
                return None;
            }
        };
        irq::enable();
        let number = |key: &str, default: u64| {
            info.bootarg(key).and_then(|value| value.parse::<u64>().ok()).unwrap_or(default)
        };
        let restarts =
            xenolith_runtime::hypercall::domain_info(DOMID_SELF).map_or(0, |i| i.restarts);
        let kill = info.bootarg("host_kill").and_then(|k| k.parse().ok()).filter(|_| restarts == 0);
        let kill = kill.map(|at| (at, kill_point(number("seed", 1), restarts, number("span", 50))));
        println!("control: xl from the host on the virtio console");
        Some(Host {
            console,
            requests: Box::new(RequestReader::new()),
            restarts: 0,
            requests_read: 0,
            kill,
        })
    }

    /// Completes or rolls back the creation a previous incarnation was in the middle of.
    pub fn recover(&mut self) {
        // Records of domains that went while nobody served, and the boot domains' vifs.
        self.control.domains_changed();
        self.control.boot_devices();
        self.finish_creation();
        // A restart cut short, then the domains that stopped while nobody served.
        self.control.restart_pending();
        self.control.after_shutdowns();
    }

    /// The part of [`Service::recover`] that finishes or undoes an `xl create` ([`INTENT`]).
    fn finish_creation(&mut self) {
        let Ok(intent) = self.control.store.read(INTENT) else { return };
        let intent = String::from_utf8_lossy(&intent).into_owned();
        let mut words = intent.split(' ');
        let id = words.next().and_then(|word| word.parse::<u16>().ok());
        let cfg = words.next().unwrap_or("");
        let state = words.next().unwrap_or("building");
        match id {
            Some(id) if self.control.exists(id) && state.starts_with("built") => {
                // Built and recorded: what is left of `xl create` is the unpause (not for -p).
                println!("control: completing domain {id} (from {cfg}), built before the restart");
                if state == "built" && self.control.is_paused(id) {
                    let (result, _) = crate::xl::domctl(
                        xenolith_abi::xen::domctl::XEN_DOMCTL_unpausedomain,
                        id,
                        crate::xl::empty(),
                    );
                    if result != 0 {
                        println!("control: FAIL unpausing domain {id}: {result}");
                    }
                }
            }
            Some(id) if self.control.exists(id) => {
                println!("control: rolling back domain {id} (from {cfg}), left half-built");
                self.control.remove(id);
            }
            _ => println!("control: the creation of {cfg} had not begun: nothing to undo"),
        }
        let _ = self.control.store.rm(INTENT);
    }

    /// Restart testing (`loop=<cfg>`, `kills=<k>`, `seed=<s>`, `rounds=<r>`): `xl list`, then
    /// create and destroy the domain of `cfg` round after round. While the core has restarted
    /// this domain fewer than `k` times, a crash is injected at a random hypercall of the next
    /// ~1.5 rounds (`hypercall::crash_after`, seeded by `s` and the restart count): a kill at a
    /// random point of the loop. Each round prints the free pages after the destroy; after `r`
    /// rounds of an incarnation that is not to be killed it prints `loop done` and serves.
    pub fn create_destroy_loop(&mut self, cfg: &str, info: &xenolith_runtime::StartInfo) {
        let number = |key: &str, default: u64| {
            info.bootarg(key).and_then(|value| value.parse().ok()).unwrap_or(default)
        };
        let (kills, seed, rounds, span) =
            (number("kills", 10), number("seed", 1), number("rounds", 3), number("span", 3000));
        crate::toolstack::execute(&mut self.control, "xl list");
        let restarts =
            xenolith_runtime::hypercall::domain_info(DOMID_SELF).map_or(0, |i| i.restarts);
        let killed = u64::from(restarts) < kills;
        if killed {
            let at = kill_point(seed, restarts, span);
            println!("control: restart {restarts}: a kill is injected {at} hypercalls from now");
            xenolith_runtime::hypercall::crash_after(at);
        }
        let name = cfg.trim_end_matches(".cfg");
        for round in 0.. {
            let before = xenolith_runtime::hypercall::calls();
            // A domain left by a creation the last incarnation finished goes first.
            if self.control.id_of(name).is_some() {
                crate::toolstack::execute(&mut self.control, &format!("xl destroy {name}"));
            }
            println!("control: loop round {round}: xl create at counter {}", counter());
            crate::toolstack::execute(&mut self.control, &format!("xl create {cfg}"));
            // It runs before it goes (its first instruction is a figure of `bench xl`).
            let created = self.control.id_of(name);
            for _ in 0..100_000 {
                let ran =
                    created.and_then(|id| xenolith_runtime::hypercall::getdomaininfo(id).ok());
                if ran.is_none_or(|info| info.cpu_time > 0) {
                    break;
                }
                xenolith_runtime::hypercall::sched_op(xenolith_abi::xen::sched::SCHEDOP_yield, 0);
            }
            crate::toolstack::execute(&mut self.control, &format!("xl destroy {name}"));
            let calls = xenolith_runtime::hypercall::calls() - before;
            // The service domains let go of the destroyed domain's pages (the console domain
            // its ring's mapping, and the stage-2 table that held it) when `VIRQ_DOM_EXC` reaches
            // them: count once the free pages hold still for 50 ms.
            let mut free = crate::xl::free_pages();
            for _ in 0..40 {
                let _ = events::poll(&[], now_ns() + 50_000_000);
                let now = crate::xl::free_pages();
                if now == free {
                    break;
                }
                free = now;
            }
            println!("control: loop round {round}: {calls} hypercalls, {free} pages free");
            if !killed && round + 1 >= rounds {
                println!("control: loop done after {restarts} restarts");
                return;
            }
        }
    }

    /// Serves forever: runs each line typed at its console, and each request from the host,
    /// as an xl command.
    pub fn serve(&mut self) -> ! {
        loop {
            let host = self.host.as_ref().map(|host| host.console.port());
            let ports: Vec<Port> = (self.console.iter().map(PvConsole::port))
                .chain(host)
                .chain([self.dom_exc])
                .collect();
            let _ = events::poll(&ports, now_ns() + IDLE_NS);
            if self.dom_exc.take_pending() {
                self.control.domains_changed();
                self.control.after_shutdowns();
            }
            self.serve_host();
            let Some(console) = &mut self.console else { continue };
            console.port().take_pending();
            while let Some(line) = console.read_line() {
                let line = line.trim();
                if !line.is_empty() {
                    crate::toolstack::execute(&mut self.control, line);
                }
                println!("control: xl> ");
            }
        }
    }

    /// Runs every whole request the host has sent, answering each.
    fn serve_host(&mut self) {
        let Some(host) = &mut self.host else { return };
        host.console.port().take_pending();
        let mut bytes = Vec::new();
        if let Err(error) = host.console.receive(&mut bytes) {
            return self.host_failed(error);
        }
        for byte in bytes {
            let Some(host) = &mut self.host else { return };
            let (line, id) = match host.requests.push(byte) {
                None => continue,
                Some(Request::Line { text, id }) => {
                    (Ok(String::from_utf8_lossy(text).into_owned()), id)
                }
                Some(Request::TooLong { length, id }) => (Err(length), id),
            };
            host.requests_read += 1;
            if let Some((at, point)) = host.kill.filter(|&(at, _)| at == host.requests_read) {
                println!("control: request {at} from the host: a kill is injected {point} hypercalls from now");
                xenolith_runtime::hypercall::crash_after(point);
            }
            self.answer_host(line, id);
        }
    }

    /// Runs `line` (or refuses a request of that many bytes) and sends the host xl's output and
    /// the trailer for request `id`.
    fn answer_host(&mut self, line: Result<String, usize>, id: u32) {
        let (text, status) = match &line {
            Ok(line) => crate::toolstack::run(&mut self.control, line),
            Err(length) => {
                (format!("xl: a request of {length} bytes; at most {MAX_REQUEST} are read\n"), 1)
            }
        };
        let shown: String = match &line {
            Ok(line) => line.chars().take(60).collect(),
            Err(length) => format!("<{length} bytes>"),
        };
        let interrupts = virtio::interrupts();
        println!("control: xl from the host: {shown} (exit status {status}; {interrupts} device interrupts so far)");
        let mut bytes: Vec<u8> = text.bytes().map(host_xl::text_byte).collect();
        let (trailer, length) = Trailer { status, id }.encode();
        bytes.extend_from_slice(&trailer[..length]);
        let Some(host) = &mut self.host else { return };
        match host.console.send_all(&bytes, now_ns() + ANSWER_NS) {
            Ok(true) => {}
            Ok(false) => println!("control: the host's virtio console took no answer for 5 s"),
            Err(error) => self.host_failed(error),
        }
    }

    /// The virtio console misbehaved: start it again (what it held is lost), or give it up.
    fn host_failed(&mut self, error: virtio::Error) {
        let Some(host) = &mut self.host else { return };
        println!("control: the host's virtio console: {error}");
        *host.requests = RequestReader::new();
        while host.restarts < HOST_RESTARTS {
            host.restarts += 1;
            match host.console.restart() {
                Ok(()) => return println!("control: the host's virtio console started again"),
                Err(error) => println!("control: the host's virtio console: {error}"),
            }
        }
        println!("control: no more xl from the host after {HOST_RESTARTS} restarts");
        self.host = None;
    }
}
