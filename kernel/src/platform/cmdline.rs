//! The hypervisor command line, in Xen's syntax.
//!
//! Xenolith reads its options the way Xen does (`docs/misc/xen-command-line.pandoc`) so that a Xen
//! user's habits carry over: the line is a list of whitespace-separated tokens, each `name=value` or
//! a bare `name`; dashes and underscores in names are interchangeable; a boolean is enabled by its
//! bare name, disabled by a `no-` prefix, or set by `name=<yes|no|true|false|on|off|enable|disable|1|0>`.
//! Several lines (for instance the image's built-in line, then the DTB's `/chosen/bootargs`) are applied
//! in order onto one [`Params`]; for each parameter the last accepted value wins.
//!
//! The test hooks (`test_wx_mapping`, `test_fault=`) are accepted only when the core is built with the
//! `test-hooks` cargo feature; otherwise they are refused with [`Diagnostic::NotBuiltIn`], so a shipped
//! image cannot be talked into mapping a page W+X.
//!
//! # Invariants
//! - [`Params::apply`] never panics and never fails as a whole: each token is applied or refused on its
//!   own, and a refused token leaves every parameter as it was.
//! - Every name in [`PARAMETERS`] is accepted by [`Params::apply`], and every name it accepts is listed
//!   (a test checks both directions).
//! - Values borrow from the line: nothing is copied and nothing is allocated.

use core::fmt;

/// How much the core logs (Xen's `loglvl=` names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogLevel {
    None,
    Error,
    Warning,
    #[default]
    Info,
    Debug,
    All,
}

impl LogLevel {
    const ALL: [Self; 6] =
        [Self::None, Self::Error, Self::Warning, Self::Info, Self::Debug, Self::All];

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

    /// The name the command line uses for this level.
    pub fn name(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::All => "all",
        }
    }
}

/// Which scheduler runs the vCPUs (Xen's `sched=` names).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scheduler {
    #[default]
    Credit2,
    Null,
    Rtds,
}

impl Scheduler {
    const ALL: [Self; 3] = [Self::Credit2, Self::Null, Self::Rtds];

    /// The name the command line uses for this scheduler.
    pub fn name(self) -> &'static str {
        match self {
            Self::Credit2 => "credit2",
            Self::Null => "null",
            Self::Rtds => "rtds",
        }
    }
}

/// Where the core's own console goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Console {
    /// The UART the device tree names (see [`Params::dtuart`]).
    #[default]
    Dtuart,
    /// No console at all.
    None,
}

impl Console {
    const ALL: [Self; 2] = [Self::Dtuart, Self::None];

    /// The name the command line uses for this console.
    pub fn name(self) -> &'static str {
        match self {
            Self::Dtuart => "dtuart",
            Self::None => "none",
        }
    }
}

/// What the core does after it panics (Xenolith's own parameter; Xen has none like it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OnPanic {
    /// Stop every CPU and wait, so the log can be read.
    #[default]
    Halt,
    /// Ask the firmware to power the machine off (PSCI SYSTEM_OFF).
    Poweroff,
    /// Ask the firmware to reset the machine (PSCI SYSTEM_RESET).
    Reboot,
}

impl OnPanic {
    const ALL: [Self; 3] = [Self::Halt, Self::Poweroff, Self::Reboot];

    /// The name the command line uses for this action.
    pub fn name(self) -> &'static str {
        match self {
            Self::Halt => "halt",
            Self::Poweroff => "poweroff",
            Self::Reboot => "reboot",
        }
    }
}

/// A fault the core raises on itself at boot, so the system tests can check the EL2 fault dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestFault {
    /// A load from an unmapped address at EL2.
    El2DataAbort,
    /// An undefined instruction at EL2.
    El2Undefined,
}

impl TestFault {
    const ALL: [Self; 2] = [Self::El2DataAbort, Self::El2Undefined];

    /// The name the command line uses for this fault.
    pub fn name(self) -> &'static str {
        match self {
            Self::El2DataAbort => "el2-data-abort",
            Self::El2Undefined => "el2-undefined",
        }
    }
}

/// Every option the core takes from its command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
}

impl Params<'_> {
    /// The values used when the command line says nothing.
    pub const fn new() -> Self {
        Self {
            loglvl: LogLevel::Info,
            sched: Scheduler::Credit2,
            console: Console::Dtuart,
            dtuart: None,
            maxcpus: None,
            heartbeat: 0,
            on_panic: OnPanic::Halt,
            test_wx_mapping: false,
            test_fault: None,
        }
    }
}

impl Default for Params<'_> {
    fn default() -> Self {
        Self::new()
    }
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

/// Lists the parameter table, with the test hooks appended when they are built in.
macro_rules! parameter_table {
    ($($hook:expr),* $(,)?) => {
        &[
            ("loglvl", "How much the core logs: none, error, warning, info (default), debug or all; \
                        Xen's `<level>/<rate-limited level>` form is accepted."),
            ("sched", "The vCPU scheduler: credit2 (default), null or rtds."),
            ("console", "Where the core's console goes: dtuart (default) or none."),
            ("dtuart", "The UART for the console, as a device-tree path or alias; default: \
                        /chosen/stdout-path."),
            ("maxcpus", "Bring up at most this many CPUs (at least 1); default: all."),
            ("heartbeat", "Print a tick-count line every this many seconds (0 to 3600); default 0, \
                           off."),
            ("on_panic", "What the core does after a panic: halt (default), poweroff or reboot."),
            $($hook),*
        ]
    };
}

/// Every parameter name this build knows, with a one-line description (for docs and the host tool).
#[cfg(feature = "test-hooks")]
pub const PARAMETERS: &[(&str, &str)] = parameter_table!(
    (
        "test_wx_mapping",
        "Test hook (boolean): map one page writable and executable, which the W^X check must refuse."
    ),
    ("test_fault", "Test hook: raise el2-data-abort or el2-undefined at EL2 once booted."),
);

/// Every parameter name this build knows, with a one-line description (for docs and the host tool).
#[cfg(not(feature = "test-hooks"))]
pub const PARAMETERS: &[(&str, &str)] = parameter_table!();

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
}

impl Name {
    const ALL: [Self; 9] = [
        Self::Loglvl,
        Self::Sched,
        Self::Console,
        Self::Dtuart,
        Self::Maxcpus,
        Self::Heartbeat,
        Self::OnPanic,
        Self::TestWxMapping,
        Self::TestFault,
    ];

    /// The spelling with underscores, as [`PARAMETERS`] lists it.
    fn canonical(self) -> &'static str {
        match self {
            Self::Loglvl => "loglvl",
            Self::Sched => "sched",
            Self::Console => "console",
            Self::Dtuart => "dtuart",
            Self::Maxcpus => "maxcpus",
            Self::Heartbeat => "heartbeat",
            Self::OnPanic => "on_panic",
            Self::TestWxMapping => "test_wx_mapping",
            Self::TestFault => "test_fault",
        }
    }

    /// What a value must look like, for diagnostics.
    fn expected(self) -> &'static str {
        match self {
            Self::Loglvl => LOGLVL,
            Self::Sched => SCHED,
            Self::Console => CONSOLE,
            Self::Dtuart => DTUART,
            Self::Maxcpus => MAXCPUS,
            Self::Heartbeat => HEARTBEAT,
            Self::OnPanic => ON_PANIC,
            Self::TestWxMapping => BOOLEAN,
            Self::TestFault => TEST_FAULT,
        }
    }

    fn is_boolean(self) -> bool {
        self == Self::TestWxMapping
    }

    /// Whether it exists only with the `test-hooks` feature.
    fn is_test_hook(self) -> bool {
        matches!(self, Self::TestWxMapping | Self::TestFault)
    }

    /// The parameter `given` names, dashes matching underscores.
    fn lookup(given: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|name| same_name(given, name.canonical()))
    }
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
        let (name, value) = match token.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (token, None),
        };
        let (parameter, negated) = match Name::lookup(name) {
            Some(parameter) => (parameter, false),
            // Xen's rule: a `no-` prefix inverts a boolean.
            None => match name.strip_prefix("no-").and_then(Name::lookup) {
                Some(parameter) if parameter.is_boolean() => (parameter, true),
                _ => return Err(Diagnostic::UnknownParameter { name }),
            },
        };
        if parameter.is_test_hook() && !cfg!(feature = "test-hooks") {
            return Err(Diagnostic::NotBuiltIn { name });
        }
        let expected = parameter.expected();
        if parameter.is_boolean() {
            let enabled = match value {
                None => true,
                Some(value) => {
                    parse_bool(value).ok_or(Diagnostic::BadValue { name, value, expected })?
                }
            };
            self.test_wx_mapping = enabled != negated;
            return Ok(());
        }
        let value = match value {
            Some(value) if !value.is_empty() => value,
            _ => return Err(Diagnostic::MissingValue { name, expected }),
        };
        let bad = Diagnostic::BadValue { name, value, expected };
        match parameter {
            Name::Loglvl => {
                let (level, rate_limited) = match value.split_once('/') {
                    Some((level, rate_limited)) => (level, Some(rate_limited)),
                    None => (value, None),
                };
                // The rate-limited level must be well formed, but the core does not rate-limit.
                if rate_limited.is_some_and(|r| pick(&LogLevel::ALL, LogLevel::name, r).is_none()) {
                    return Err(bad);
                }
                self.loglvl = pick(&LogLevel::ALL, LogLevel::name, level).ok_or(bad)?;
            }
            Name::Sched => self.sched = pick(&Scheduler::ALL, Scheduler::name, value).ok_or(bad)?,
            Name::Console => self.console = pick(&Console::ALL, Console::name, value).ok_or(bad)?,
            Name::Dtuart => self.dtuart = Some(value),
            Name::Maxcpus => {
                self.maxcpus = Some(parse_u32(value).filter(|&n| n >= 1).ok_or(bad)?);
            }
            Name::Heartbeat => {
                self.heartbeat =
                    parse_u32(value).filter(|&s| s <= MAX_HEARTBEAT_SECONDS).ok_or(bad)?;
            }
            Name::OnPanic => {
                self.on_panic = pick(&OnPanic::ALL, OnPanic::name, value).ok_or(bad)?
            }
            Name::TestFault => {
                self.test_fault = Some(pick(&TestFault::ALL, TestFault::name, value).ok_or(bad)?);
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

/// The variant of `all` whose name is exactly `value`.
fn pick<T: Copy>(all: &[T], name: fn(T) -> &'static str, value: &str) -> Option<T> {
    all.iter().copied().find(|&item| name(item) == value)
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
