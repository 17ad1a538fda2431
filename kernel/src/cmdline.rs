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
mod tests {
    use super::*;

    /// Applies `lines` in order onto the defaults, collecting the diagnostics.
    fn parse<'a>(lines: &[&'a str]) -> (Params<'a>, Vec<Diagnostic<'a>>) {
        let mut params = Params::default();
        let mut diagnostics = Vec::new();
        for line in lines {
            params.apply(line, &mut |d| diagnostics.push(d));
        }
        (params, diagnostics)
    }

    /// Parses one line that must produce no diagnostic.
    fn clean(line: &str) -> Params<'_> {
        let (params, diagnostics) = parse(&[line]);
        assert!(diagnostics.is_empty(), "{line:?} produced {diagnostics:?}");
        params
    }

    /// Parses one line that must be refused with exactly one diagnostic and change nothing.
    fn refused(line: &str) -> Diagnostic<'_> {
        let (params, diagnostics) = parse(&[line]);
        assert_eq!(params, Params::default(), "{line:?} changed a parameter");
        assert_eq!(diagnostics.len(), 1, "{line:?} produced {diagnostics:?}");
        diagnostics[0]
    }

    #[test]
    fn defaults() {
        let params = Params::default();
        assert_eq!(params, Params::new());
        assert_eq!(params.loglvl, LogLevel::Info);
        assert_eq!(params.sched, Scheduler::Credit2);
        assert_eq!(params.console, Console::Dtuart);
        assert_eq!(params.dtuart, None);
        assert_eq!(params.maxcpus, None);
        assert_eq!(params.heartbeat, 0);
        assert_eq!(params.on_panic, OnPanic::Halt);
        assert!(!params.test_wx_mapping);
        assert_eq!(params.test_fault, None);
    }

    #[test]
    fn empty_and_blank_lines_change_nothing() {
        for line in ["", " ", "\t", " \t \n  "] {
            assert_eq!(clean(line), Params::default());
        }
    }

    #[test]
    fn repeated_whitespace_and_tabs_separate_tokens() {
        let params = clean("  sched=null\t\tloglvl=debug \n heartbeat=5\t");
        assert_eq!(params.sched, Scheduler::Null);
        assert_eq!(params.loglvl, LogLevel::Debug);
        assert_eq!(params.heartbeat, 5);
    }

    #[test]
    fn loglvl_every_level_and_filter() {
        use log::LevelFilter;
        let filters = [
            LevelFilter::Off,
            LevelFilter::Error,
            LevelFilter::Warn,
            LevelFilter::Info,
            LevelFilter::Debug,
            LevelFilter::Trace,
        ];
        for (level, filter) in LogLevel::ALL.into_iter().zip(filters) {
            let line = format!("loglvl={}", level.name());
            assert_eq!(clean(&line).loglvl, level);
            assert_eq!(level.to_level_filter(), filter);
        }
    }

    #[test]
    fn loglvl_rate_limited_form_takes_the_first_level() {
        assert_eq!(clean("loglvl=all/warning").loglvl, LogLevel::All);
        assert_eq!(clean("loglvl=error/none").loglvl, LogLevel::Error);
        for line in ["loglvl=all/", "loglvl=all/loud", "loglvl=/info", "loglvl=loud/info"] {
            assert!(matches!(refused(line), Diagnostic::BadValue { name: "loglvl", .. }), "{line}");
        }
    }

    #[test]
    fn loglvl_bad_and_missing() {
        assert_eq!(
            refused("loglvl=verbose"),
            Diagnostic::BadValue { name: "loglvl", value: "verbose", expected: LOGLVL }
        );
        assert_eq!(
            refused("loglvl"),
            Diagnostic::MissingValue { name: "loglvl", expected: LOGLVL }
        );
        assert_eq!(
            refused("loglvl="),
            Diagnostic::MissingValue { name: "loglvl", expected: LOGLVL }
        );
        // Names are matched exactly: Xen's are lower case.
        assert!(matches!(refused("loglvl=INFO"), Diagnostic::BadValue { .. }));
    }

    #[test]
    fn sched_good_and_bad() {
        for sched in Scheduler::ALL {
            assert_eq!(clean(&format!("sched={}", sched.name())).sched, sched);
        }
        assert_eq!(
            refused("sched=foo"),
            Diagnostic::BadValue { name: "sched", value: "foo", expected: SCHED }
        );
        assert_eq!(refused("sched"), Diagnostic::MissingValue { name: "sched", expected: SCHED });
        // Xen's credit (v1) scheduler is not one of ours.
        assert!(matches!(refused("sched=credit"), Diagnostic::BadValue { .. }));
    }

    #[test]
    fn console_good_and_bad() {
        assert_eq!(clean("console=none").console, Console::None);
        assert_eq!(clean("console=none console=dtuart").console, Console::Dtuart);
        assert!(matches!(refused("console=vga"), Diagnostic::BadValue { name: "console", .. }));
        assert!(matches!(refused("console="), Diagnostic::MissingValue { name: "console", .. }));
    }

    #[test]
    fn dtuart_takes_any_path_or_alias() {
        assert_eq!(clean("dtuart=/pl011@9000000").dtuart, Some("/pl011@9000000"));
        assert_eq!(clean("dtuart=serial0").dtuart, Some("serial0"));
        // Everything after the first `=` is the value.
        assert_eq!(clean("dtuart=a=b").dtuart, Some("a=b"));
        assert_eq!(
            refused("dtuart"),
            Diagnostic::MissingValue { name: "dtuart", expected: DTUART }
        );
        assert!(matches!(refused("dtuart="), Diagnostic::MissingValue { .. }));
    }

    #[test]
    fn maxcpus_good_and_bad() {
        assert_eq!(clean("maxcpus=1").maxcpus, Some(1));
        assert_eq!(clean("maxcpus=4").maxcpus, Some(4));
        assert_eq!(clean("maxcpus=0x10").maxcpus, Some(16));
        assert_eq!(clean("maxcpus=4294967295").maxcpus, Some(u32::MAX));
        for value in ["0", "-1", "+2", "two", "4294967296", "0x", "1k", "0x1g"] {
            let line = format!("maxcpus={value}");
            let (params, diagnostics) = parse(&[&line]);
            assert_eq!(params.maxcpus, None, "{line}");
            assert!(
                matches!(diagnostics[..], [Diagnostic::BadValue { name: "maxcpus", .. }]),
                "{line}: {diagnostics:?}"
            );
        }
        assert!(matches!(refused("maxcpus"), Diagnostic::MissingValue { .. }));
    }

    #[test]
    fn heartbeat_good_and_bad() {
        assert_eq!(clean("heartbeat=0").heartbeat, 0);
        assert_eq!(clean("heartbeat=10").heartbeat, 10);
        assert_eq!(clean("heartbeat=3600").heartbeat, 3600);
        assert_eq!(
            refused("heartbeat=3601"),
            Diagnostic::BadValue { name: "heartbeat", value: "3601", expected: HEARTBEAT }
        );
        assert!(matches!(refused("heartbeat=1s"), Diagnostic::BadValue { .. }));
        assert!(matches!(refused("heartbeat"), Diagnostic::MissingValue { .. }));
    }

    #[test]
    fn on_panic_good_and_bad() {
        for action in OnPanic::ALL {
            assert_eq!(clean(&format!("on_panic={}", action.name())).on_panic, action);
        }
        assert!(matches!(refused("on_panic=explode"), Diagnostic::BadValue { .. }));
        assert!(matches!(refused("on_panic"), Diagnostic::MissingValue { .. }));
    }

    #[test]
    fn dashes_and_underscores_are_the_same() {
        assert_eq!(clean("on-panic=reboot").on_panic, OnPanic::Reboot);
        assert_eq!(clean("on_panic=reboot").on_panic, OnPanic::Reboot);
        // Only in names: values are matched exactly.
        assert!(matches!(refused("on-panic=power-off"), Diagnostic::BadValue { .. }));
    }

    #[test]
    fn later_values_win_within_and_across_lines() {
        let (params, diagnostics) =
            parse(&["sched=null loglvl=debug", "sched=rtds maxcpus=2", "loglvl=error"]);
        assert!(diagnostics.is_empty());
        assert_eq!(params.sched, Scheduler::Rtds);
        assert_eq!(params.loglvl, LogLevel::Error);
        assert_eq!(params.maxcpus, Some(2));
        assert_eq!(clean("heartbeat=1 heartbeat=2 heartbeat=3").heartbeat, 3);
    }

    #[test]
    fn a_refused_value_keeps_the_previous_one() {
        let (params, diagnostics) = parse(&["sched=null", "sched=bogus heartbeat=9999"]);
        assert_eq!(params.sched, Scheduler::Null);
        assert_eq!(params.heartbeat, 0);
        assert_eq!(diagnostics.len(), 2);
    }

    #[test]
    fn unknown_names_are_reported_and_the_rest_applied() {
        let (params, diagnostics) = parse(&["dom0_mem=512M sched=null noreboot =x"]);
        assert_eq!(params.sched, Scheduler::Null);
        assert_eq!(
            diagnostics,
            [
                Diagnostic::UnknownParameter { name: "dom0_mem" },
                Diagnostic::UnknownParameter { name: "noreboot" },
                Diagnostic::UnknownParameter { name: "" },
            ]
        );
        // `no-` applies to booleans only.
        assert_eq!(refused("no-sched"), Diagnostic::UnknownParameter { name: "no-sched" });
        assert_eq!(refused("no-sched=null"), Diagnostic::UnknownParameter { name: "no-sched" });
    }

    #[test]
    fn messages_say_what_was_refused_and_what_happens() {
        let bad = Diagnostic::BadValue { name: "sched", value: "foo", expected: SCHED };
        assert_eq!(
            bad.to_string(),
            "sched=foo: expected one of credit2, null, rtds; keeping the previous value"
        );
        let missing = Diagnostic::MissingValue { name: "maxcpus", expected: MAXCPUS };
        assert_eq!(
            missing.to_string(),
            "maxcpus: needs a value, a whole number of at least 1; keeping the previous value"
        );
        let unknown = Diagnostic::UnknownParameter { name: "dom0_mem" };
        assert!(unknown.to_string().starts_with("dom0_mem: unknown parameter; ignoring it"));
        let hook = Diagnostic::NotBuiltIn { name: "test_fault" };
        assert!(hook.to_string().contains("`test-hooks` feature"));
    }

    #[test]
    fn every_listed_parameter_is_accepted_and_every_accepted_one_listed() {
        let samples = [
            ("loglvl", "loglvl=all"),
            ("sched", "sched=null"),
            ("console", "console=none"),
            ("dtuart", "dtuart=serial0"),
            ("maxcpus", "maxcpus=2"),
            ("heartbeat", "heartbeat=1"),
            ("on_panic", "on_panic=reboot"),
            ("test_wx_mapping", "test_wx_mapping"),
            ("test_fault", "test_fault=el2-undefined"),
        ];
        for (name, _) in PARAMETERS {
            assert!(samples.iter().any(|(s, _)| s == name), "no sample for {name}");
        }
        for (name, line) in samples {
            let listed = PARAMETERS.iter().any(|(n, _)| *n == name);
            let (params, diagnostics) = parse(&[line]);
            assert_eq!(diagnostics.is_empty(), listed, "{line}: {diagnostics:?}");
            assert_eq!(params != Params::default(), listed, "{line}");
        }
        let built: Vec<&str> = Name::ALL
            .into_iter()
            .filter(|name| cfg!(feature = "test-hooks") || !name.is_test_hook())
            .map(Name::canonical)
            .collect();
        let listed: Vec<&str> = PARAMETERS.iter().map(|(name, _)| *name).collect();
        assert_eq!(listed, built);
        for (name, description) in PARAMETERS {
            assert!(!description.is_empty() && description.ends_with('.'), "{name}");
        }
    }

    #[cfg(feature = "test-hooks")]
    mod hooks {
        use super::*;

        #[test]
        fn booleans_in_every_xen_spelling() {
            for on in ["yes", "true", "on", "enable", "1"] {
                assert!(clean(&format!("test_wx_mapping={on}")).test_wx_mapping, "{on}");
                // Xen inverts an explicit value under `no-`.
                assert!(!clean(&format!("no-test_wx_mapping={on}")).test_wx_mapping, "{on}");
            }
            for off in ["no", "false", "off", "disable", "0"] {
                let line = format!("test_wx_mapping test_wx_mapping={off}");
                assert!(!clean(&line).test_wx_mapping, "{off}");
                assert!(clean(&format!("no-test_wx_mapping={off}")).test_wx_mapping, "{off}");
            }
            assert!(clean("test_wx_mapping").test_wx_mapping);
            assert!(clean("test-wx-mapping").test_wx_mapping);
            assert!(!clean("test_wx_mapping no-test_wx_mapping").test_wx_mapping);
            assert!(!clean("test_wx_mapping no-test-wx_mapping").test_wx_mapping);
            assert!(clean("no-test_wx_mapping test_wx_mapping").test_wx_mapping);
        }

        #[test]
        fn booleans_refuse_other_values() {
            for value in ["", "YES", "2", "y", "enabled", "maybe"] {
                let line = format!("test_wx_mapping={value}");
                let (params, diagnostics) = parse(&["test_wx_mapping", &line]);
                assert!(params.test_wx_mapping, "{line} changed the value");
                assert!(
                    matches!(diagnostics[..], [Diagnostic::BadValue { expected: BOOLEAN, .. }]),
                    "{line}: {diagnostics:?}"
                );
            }
            // Only Xen's `no-` prefix negates.
            assert!(matches!(refused("no_test_wx_mapping"), Diagnostic::UnknownParameter { .. }));
        }

        #[test]
        fn test_fault_good_and_bad() {
            for fault in TestFault::ALL {
                let line = format!("test-fault={}", fault.name());
                assert_eq!(clean(&line).test_fault, Some(fault));
            }
            assert!(matches!(refused("test_fault=el2_undefined"), Diagnostic::BadValue { .. }));
            assert!(matches!(refused("test_fault"), Diagnostic::MissingValue { .. }));
        }
    }

    #[cfg(not(feature = "test-hooks"))]
    #[test]
    fn test_hooks_are_refused_without_the_feature() {
        for line in ["test_wx_mapping", "no-test_wx_mapping", "test-fault=el2-undefined"] {
            assert!(matches!(refused(line), Diagnostic::NotBuiltIn { .. }), "{line}");
        }
        assert_eq!(refused("test_fault=bogus"), Diagnostic::NotBuiltIn { name: "test_fault" });
    }
}
