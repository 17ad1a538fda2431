//! The hypervisor command line, in Xen's syntax.
//!
//! Xenolith reads its options the way Xen does (`docs/misc/xen-command-line.pandoc`) so that a Xen
//! user's habits carry over: the line is a list of whitespace-separated tokens, each `name=value` or
//! a bare `name`; dashes and underscores in names are interchangeable; a boolean is enabled by its
//! bare name, disabled by a `no-` prefix, or set by `name=<yes|no|true|false|on|off|enable|disable|1|0>`.
//! Several lines (for instance the image's built-in line, then the DTB's `/chosen/bootargs`) are applied
//! in order onto one [`Params`]; for each parameter the last accepted value wins.
//!
//! The test hooks (`test_wx_mapping`, `test_fault=`, `test_guest_atomic_attempts=`) are accepted only when the core is built with the
//! `test-hooks` cargo feature; otherwise they are refused with [`Diagnostic::NotBuiltIn`], so a shipped
//! image cannot be talked into mapping a page W+X.
//!
//! # Invariants
//! - [`Params::apply`] never panics and never fails as a whole: each token is applied or refused on its
//!   own, and a refused token leaves every parameter as it was.
//! - Every name [`parameters`] lists is accepted by [`Params::apply`], and every name it accepts is
//!   listed (a test checks both directions).
//! - Values borrow from the line: nothing is copied and nothing is allocated.

use core::fmt;

/// Declares an enum of the values a parameter takes, each with the name the command line uses for
/// it, and gives it `ALL` (every value, in order), `name` and `parse`.
macro_rules! named_values {
    (
        $(#[$attribute:meta])*
        pub enum $type:ident { $($(#[$variant_attribute:meta])* $variant:ident = $name:literal,)+ }
    ) => {
        $(#[$attribute])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $type {
            $($(#[$variant_attribute])* $variant,)+
        }

        impl $type {
            const ALL: &[Self] = &[$(Self::$variant),+];

            /// The name the command line uses for this value.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }

            /// The value whose name is exactly `value`.
            fn parse(value: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|item| item.name() == value)
            }
        }
    };
}

named_values! {
    /// How much the core logs (Xen's `loglvl=` names).
    #[derive(Default)]
    pub enum LogLevel {
        None = "none",
        Error = "error",
        Warning = "warning",
        #[default]
        Info = "info",
        Debug = "debug",
        All = "all",
    }
}

impl LogLevel {
    /// The `log` crate filter for this level (`All` lets `trace!` through too).
    pub fn to_level_filter(self) -> log::LevelFilter {
        match self {
            Self::None => log::LevelFilter::Off,
            Self::Error => log::LevelFilter::Error,
            Self::Warning => log::LevelFilter::Warn,
            Self::Info => log::LevelFilter::Info,
            Self::Debug => log::LevelFilter::Debug,
            Self::All => log::LevelFilter::Trace,
        }
    }
}

named_values! {
    /// Which scheduler runs the vCPUs (Xen's `sched=` names).
    #[derive(Default)]
    pub enum Scheduler {
        #[default]
        Credit2 = "credit2",
        Null = "null",
        Rtds = "rtds",
    }
}

named_values! {
    /// Where the core's own console goes.
    #[derive(Default)]
    pub enum Console {
        /// The UART the device tree names (see [`Params::dtuart`]).
        #[default]
        Dtuart = "dtuart",
        /// No console at all.
        None = "none",
    }
}

named_values! {
    /// What the core does after it panics (Xenolith's own parameter; Xen has none like it).
    #[derive(Default)]
    pub enum OnPanic {
        /// Stop every CPU and wait, so the log can be read.
        #[default]
        Halt = "halt",
        /// Ask the firmware to power the machine off (PSCI SYSTEM_OFF).
        Poweroff = "poweroff",
        /// Ask the firmware to reset the machine (PSCI SYSTEM_RESET).
        Reboot = "reboot",
    }
}

named_values! {
    /// A fault the core raises on itself at boot, so the system tests can check the EL2 fault dump.
    pub enum TestFault {
        /// A load from an unmapped address at EL2.
        El2DataAbort = "el2-data-abort",
        /// An undefined instruction at EL2.
        El2Undefined = "el2-undefined",
    }
}

/// Every option the core takes from its command line; the default is what applies when the command
/// line says nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Params<'a> {
    /// `loglvl=<level>[/<level>]`: how much the core logs.
    pub loglvl: LogLevel,
    /// `sched=<name>`: the vCPU scheduler.
    pub sched: Scheduler,
    /// `console=<dtuart|none>`: where the core's console goes.
    pub console: Console,
    /// `dtuart=<path or alias>`: the UART to use; `None` means `/chosen/stdout-path`.
    pub dtuart: Option<&'a str>,
    /// `maxcpus=<n>`: bring up at most this many CPUs; `None` means all of them.
    pub maxcpus: Option<u32>,
    /// `heartbeat=<seconds>`: print a tick-count line this often; 0 turns it off.
    pub heartbeat: u32,
    /// `on_panic=<halt|poweroff|reboot>`: what to do after a panic.
    pub on_panic: OnPanic,
    /// `test_wx_mapping` (test hook): map one page W+X so the W^X check must refuse it.
    pub test_wx_mapping: bool,
    /// `test_fault=<fault>` (test hook): raise this fault at EL2 once booted.
    pub test_fault: Option<TestFault>,
    /// `test_guest_atomic_attempts=<n>` (test hook): the bound on updates of guest-shared words
    /// (`mm::guest_atomic`), lowered so that a test can make a guest lose.
    pub test_guest_atomic_attempts: Option<u32>,
}

/// A token [`Params::apply`] refused. The parameter it named keeps its previous value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Diagnostic<'a> {
    /// No parameter has this name.
    UnknownParameter { name: &'a str },
    /// The value is not one this parameter takes.
    BadValue { name: &'a str, value: &'a str, expected: &'static str },
    /// The parameter needs a value and was given none (`name` or `name=`).
    MissingValue { name: &'a str, expected: &'static str },
    /// A test hook, and this build was made without the `test-hooks` feature.
    NotBuiltIn { name: &'a str },
}

impl fmt::Display for Diagnostic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownParameter { name } => write!(
                f,
                "{name}: unknown parameter; ignoring it (check the spelling against the parameter list)"
            ),
            Self::BadValue { name, value, expected } => {
                write!(f, "{name}={value}: expected {expected}; keeping the previous value")
            }
            Self::MissingValue { name, expected } => {
                write!(f, "{name}: needs a value, {expected}; keeping the previous value")
            }
            Self::NotBuiltIn { name } => write!(
                f,
                "{name}: a test hook, and this core was built without them; ignoring it \
                 (build with the `test-hooks` feature to use it)"
            ),
        }
    }
}

const BOOLEAN: &str = "a boolean: yes, no, true, false, on, off, enable, disable, 1 or 0";
const LOGLVL: &str =
    "one of none, error, warning, info, debug, all, optionally followed by /<rate-limited level>";
const SCHED: &str = "one of credit2, null, rtds";
const CONSOLE: &str = "one of dtuart, none";
const DTUART: &str = "a device-tree path such as /pl011@9000000 or an alias such as serial0";
const MAXCPUS: &str = "a whole number of at least 1";
const HEARTBEAT: &str = "a whole number of seconds from 0 (off) to 3600";
const ON_PANIC: &str = "one of halt, poweroff, reboot";
const TEST_FAULT: &str = "one of el2-data-abort, el2-undefined";

/// The longest heartbeat period, in seconds.
pub const MAX_HEARTBEAT_SECONDS: u32 = 3600;

/// Every parameter the parser knows, test hooks included; matched exhaustively below.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Name {
    Loglvl,
    Sched,
    Console,
    Dtuart,
    Maxcpus,
    Heartbeat,
    OnPanic,
    TestWxMapping,
    TestFault,
    TestGuestAtomicAttempts,
}

/// Each parameter's spelling with underscores and what a value must look like, for diagnostics.
const NAMES: [(Name, &str, &str); 10] = [
    (Name::Loglvl, "loglvl", LOGLVL),
    (Name::Sched, "sched", SCHED),
    (Name::Console, "console", CONSOLE),
    (Name::Dtuart, "dtuart", DTUART),
    (Name::Maxcpus, "maxcpus", MAXCPUS),
    (Name::Heartbeat, "heartbeat", HEARTBEAT),
    (Name::OnPanic, "on_panic", ON_PANIC),
    (Name::TestWxMapping, "test_wx_mapping", BOOLEAN),
    (Name::TestFault, "test_fault", TEST_FAULT),
    (Name::TestGuestAtomicAttempts, "test_guest_atomic_attempts", MAXCPUS),
];

/// Whether `parameter` exists only with the `test-hooks` feature.
fn is_test_hook(parameter: Name) -> bool {
    matches!(parameter, Name::TestWxMapping | Name::TestFault | Name::TestGuestAtomicAttempts)
}

/// Every parameter name this build knows (the test hooks only with the `test-hooks` feature), for
/// the host tool.
pub fn parameters() -> impl Iterator<Item = &'static str> {
    NAMES
        .into_iter()
        .filter(|&(parameter, _, _)| cfg!(feature = "test-hooks") || !is_test_hook(parameter))
        .map(|(_, name, _)| name)
}

/// The parameter `given` names, dashes matching underscores, and what its value must look like.
fn lookup(given: &str) -> Option<(Name, &'static str)> {
    let mut names = NAMES.into_iter();
    names.find(|&(_, name, _)| same_name(given, name)).map(|(name, _, expected)| (name, expected))
}

impl<'a> Params<'a> {
    /// Applies one command line on top of the current values, reporting every token it refuses.
    pub fn apply(&mut self, line: &'a str, report: &mut dyn FnMut(Diagnostic<'a>)) {
        for token in line.split_ascii_whitespace() {
            if let Err(diagnostic) = self.apply_token(token) {
                report(diagnostic);
            }
        }
    }

    fn apply_token(&mut self, token: &'a str) -> Result<(), Diagnostic<'a>> {
        let (name, value) = token.split_once('=').map_or((token, None), |(n, v)| (n, Some(v)));
        // The only boolean parameter.
        let is_boolean = |parameter| parameter == Name::TestWxMapping;
        let ((parameter, expected), negated) = match lookup(name) {
            Some(found) => (found, false),
            // Xen's rule: a `no-` prefix inverts a boolean.
            None => match name.strip_prefix("no-").and_then(lookup) {
                Some(found) if is_boolean(found.0) => (found, true),
                _ => return Err(Diagnostic::UnknownParameter { name }),
            },
        };
        if is_test_hook(parameter) && !cfg!(feature = "test-hooks") {
            return Err(Diagnostic::NotBuiltIn { name });
        }
        if is_boolean(parameter) {
            let bad = |value| Diagnostic::BadValue { name, value, expected };
            let enabled = value.map_or(Ok(true), |value| parse_bool(value).ok_or(bad(value)))?;
            self.test_wx_mapping = enabled != negated;
            return Ok(());
        }
        let Some(value) = value.filter(|value| !value.is_empty()) else {
            return Err(Diagnostic::MissingValue { name, expected });
        };
        let bad = Diagnostic::BadValue { name, value, expected };
        match parameter {
            Name::Loglvl => {
                let (level, rate_limited) =
                    value.split_once('/').map_or((value, None), |(l, r)| (l, Some(r)));
                // The rate-limited level must be well formed, but the core does not rate-limit.
                if rate_limited.is_some_and(|r| LogLevel::parse(r).is_none()) {
                    return Err(bad);
                }
                self.loglvl = LogLevel::parse(level).ok_or(bad)?;
            }
            Name::Sched => self.sched = Scheduler::parse(value).ok_or(bad)?,
            Name::Console => self.console = Console::parse(value).ok_or(bad)?,
            Name::Dtuart => self.dtuart = Some(value),
            Name::Maxcpus => self.maxcpus = Some(parse_u32(value).filter(|&n| n >= 1).ok_or(bad)?),
            Name::Heartbeat => {
                self.heartbeat =
                    parse_u32(value).filter(|&s| s <= MAX_HEARTBEAT_SECONDS).ok_or(bad)?;
            }
            Name::OnPanic => self.on_panic = OnPanic::parse(value).ok_or(bad)?,
            Name::TestFault => self.test_fault = Some(TestFault::parse(value).ok_or(bad)?),
            Name::TestGuestAtomicAttempts => {
                self.test_guest_atomic_attempts =
                    Some(parse_u32(value).filter(|&n| n >= 1).ok_or(bad)?);
            }
            // Set above, with the other booleans.
            Name::TestWxMapping => {}
        }
        Ok(())
    }
}

/// Compares parameter names the way Xen does: `-` and `_` are the same character.
fn same_name(given: &str, canonical: &str) -> bool {
    let fold = |b: u8| if b == b'-' { b'_' } else { b };
    given.len() == canonical.len()
        && given.bytes().zip(canonical.bytes()).all(|(g, c)| fold(g) == fold(c))
}

/// Xen's `parse_bool`: the ten spellings, nothing else (an empty value is refused).
fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "yes" | "true" | "on" | "enable" | "1" => Some(true),
        "no" | "false" | "off" | "disable" | "0" => Some(false),
        _ => None,
    }
}

/// A decimal or `0x`-prefixed hexadecimal number, digits only (no sign, no suffix).
fn parse_u32(value: &str) -> Option<u32> {
    let (digits, radix) = match value.strip_prefix("0x").or_else(|| value.strip_prefix("0X")) {
        Some(hex) => (hex, 16),
        None => (value, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

#[cfg(test)]
mod tests;
