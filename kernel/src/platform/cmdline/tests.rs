//! Host tests of `cmdline`.

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
    for (&level, filter) in LogLevel::ALL.iter().zip(filters) {
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
    assert_eq!(refused("loglvl"), Diagnostic::MissingValue { name: "loglvl", expected: LOGLVL });
    assert_eq!(refused("loglvl="), Diagnostic::MissingValue { name: "loglvl", expected: LOGLVL });
    // Names are matched exactly: Xen's are lower case.
    assert!(matches!(refused("loglvl=INFO"), Diagnostic::BadValue { .. }));
}

#[test]
fn sched_good_and_bad() {
    for &sched in Scheduler::ALL {
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
    assert_eq!(refused("dtuart"), Diagnostic::MissingValue { name: "dtuart", expected: DTUART });
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
    for &action in OnPanic::ALL {
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
    for name in parameters() {
        assert!(samples.iter().any(|(s, _)| *s == name), "no sample for {name}");
    }
    for (name, line) in samples {
        let listed = parameters().any(|n| n == name);
        let (params, diagnostics) = parse(&[line]);
        assert_eq!(diagnostics.is_empty(), listed, "{line}: {diagnostics:?}");
        assert_eq!(params != Params::default(), listed, "{line}");
    }
    // Test hooks are listed only when built in.
    assert_eq!(parameters().count(), if cfg!(feature = "test-hooks") { 9 } else { 7 });
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
        for &fault in TestFault::ALL {
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
