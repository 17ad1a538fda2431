//! System manifests: `images/default.toml` loads, defaults apply, and every broken manifest under
//! `tests/bad/` fails with its exact `file:line:column` and message (after seL4 Microkit's broken
//! `.system` files). A file in `tests/bad/` is named after its error kind (`bad_name.toml`,
//! `bad_name_empty.toml`, ...); `every_bad_manifest_fails_with_the_kind_it_is_named_after` holds the
//! directory to that.
//!
//! Paths are relative: cargo runs integration tests in the package directory (`images/`).

use std::path::{Path, PathBuf};

use xenolith_images::manifest::{
    ErrorKind, Manifest, ManifestError, QemuSettings, DEFAULT_CPUS, DEFAULT_MEMORY_MIB,
};
use xenolith_kernel::cmdline::PARAMETERS;

const BAD: &str = "tests/bad";

/// Loads `tests/bad/<file>`, which must fail.
fn load_bad(file: &str) -> ManifestError {
    let path = Path::new(BAD).join(file);
    match Manifest::load(&path) {
        Ok(manifest) => panic!("{} loaded, but must fail: {manifest:?}", path.display()),
        Err(error) => error,
    }
}

/// `tests/bad/<file>` fails with `kind` at `line:column`, and its message contains `phrase`.
#[track_caller]
fn assert_bad(file: &str, kind: ErrorKind, line: usize, column: usize, phrase: &str) {
    let error = load_bad(file);
    let text = error.to_string();
    let location = format!("{BAD}/{file}:{line}:{column}: error: ");
    assert!(text.starts_with(&location), "expected {location}..., got: {text}");
    assert!(text.contains(phrase), "expected {phrase:?} in: {text}");
    assert_eq!(error.kind, kind, "{text}");
    assert_eq!((error.line, error.column), (line, column), "{text}");
}

/// A manifest given as text.
fn parse(text: &str) -> Result<Manifest, ManifestError> {
    Manifest::parse(Path::new("inline.toml"), text)
}

// ---- Good manifests --------------------------------------------------------------------------------

#[test]
fn default_manifest_loads() {
    let manifest = Manifest::load(Path::new("default.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(manifest.path, PathBuf::from("default.toml"));
    assert_eq!(manifest.system.name, "default");
    assert_eq!(manifest.hypervisor.cmdline, "loglvl=info heartbeat=10");
    assert_eq!(manifest.qemu, QemuSettings { cpus: 4, memory_mib: 1024 });
}

#[test]
fn defaults_apply_when_hypervisor_and_qemu_are_absent() {
    let manifest = parse("[system]\nname = \"minimal\"\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(manifest.system.name, "minimal");
    assert_eq!(manifest.hypervisor.cmdline, "");
    assert_eq!(manifest.qemu, QemuSettings { cpus: DEFAULT_CPUS, memory_mib: DEFAULT_MEMORY_MIB });
    assert_eq!(manifest.qemu, QemuSettings { cpus: 2, memory_mib: 1024 });
}

#[test]
fn defaults_apply_to_empty_tables() {
    let manifest =
        parse("[system]\nname = \"x\"\n[hypervisor]\n[qemu]\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(manifest.hypervisor.cmdline, "");
    assert_eq!(manifest.qemu, QemuSettings::default());
}

#[test]
fn memory_sizes_parse() {
    for (memory, mib) in [
        ("\"512M\"", 512),
        ("\"1G\"", 1024),
        ("\"2048\"", 2048),
        ("2048", 2048),
        ("\"262144K\"", 256),
        ("\"64G\"", 64 * 1024),
        ("'3G'", 3 * 1024),
    ] {
        let text = format!("[system]\nname = \"x\"\n[qemu]\nmemory = {memory}\n");
        let manifest = parse(&text).unwrap_or_else(|e| panic!("memory = {memory}: {e}"));
        assert_eq!(manifest.qemu.memory_mib, mib, "memory = {memory}");
    }
}

#[test]
fn names_may_use_letters_digits_underscore_and_dash() {
    let name = format!("Ab_9-{}", "z".repeat(59)); // 64 characters
    let manifest =
        parse(&format!("[system]\nname = \"{name}\"\n")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(manifest.system.name, name);
}

#[test]
fn cpus_range_ends_are_accepted() {
    for cpus in [1, 16] {
        let text = format!("[system]\nname = \"x\"\n[qemu]\ncpus = {cpus}\n");
        assert_eq!(parse(&text).unwrap_or_else(|e| panic!("{e}")).qemu.cpus, cpus);
    }
}

// ---- One broken manifest per error kind -------------------------------------------------------------

#[test]
fn io_missing_file() {
    let path = Path::new(BAD).join("does-not-exist.toml");
    let error = Manifest::load(&path).expect_err("a missing file must fail");
    assert_eq!(error.kind, ErrorKind::Io);
    assert_eq!(
        error.to_string(),
        "tests/bad/does-not-exist.toml: error: cannot read the manifest; check that the file \
         exists and is readable UTF-8 text"
    );
    let source = std::error::Error::source(&error).expect("the I/O error is the source");
    let io = source.downcast_ref::<std::io::Error>().expect("an io::Error");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn syntax() {
    assert_bad("syntax.toml", ErrorKind::Syntax, 3, 16, "invalid TOML");
}

#[test]
fn syntax_duplicate_key() {
    assert_bad("syntax_duplicate_key.toml", ErrorKind::Syntax, 4, 1, "duplicate key `name`");
}

#[test]
fn unknown_key() {
    assert_bad(
        "unknown_key.toml",
        ErrorKind::UnknownKey,
        6,
        1,
        "unknown key `cpu` (expected `cpus`",
    );
}

#[test]
fn unknown_key_table() {
    assert_bad("unknown_key_table.toml", ErrorKind::UnknownKey, 5, 2, "unknown key `qemus`");
}

#[test]
fn missing_key() {
    assert_bad(
        "missing_key.toml",
        ErrorKind::MissingKey,
        2,
        1,
        "[system] is missing the required key `name`",
    );
}

#[test]
fn missing_key_table() {
    assert_bad("missing_key_table.toml", ErrorKind::MissingKey, 1, 1, "no [system] table");
}

#[test]
fn wrong_type() {
    assert_bad(
        "wrong_type.toml",
        ErrorKind::WrongType,
        6,
        8,
        "expected a whole number of CPUs (such as 4), found string \"4\"",
    );
}

#[test]
fn wrong_type_table() {
    assert_bad("wrong_type_table.toml", ErrorKind::WrongType, 2, 10, "expected a [system] table");
}

#[test]
fn bad_name() {
    // Points at the space itself.
    assert_bad("bad_name.toml", ErrorKind::BadName, 3, 11, "contains ' ', which is not allowed");
}

#[test]
fn bad_name_empty() {
    assert_bad("bad_name_empty.toml", ErrorKind::BadName, 3, 8, "the system name is empty");
}

#[test]
fn bad_name_too_long() {
    // Points at the 65th character.
    assert_bad("bad_name_too_long.toml", ErrorKind::BadName, 3, 73, "65 characters long");
}

#[test]
fn cpus_out_of_range() {
    assert_bad("cpus_out_of_range.toml", ErrorKind::CpusOutOfRange, 6, 8, "`cpus` is 17");
}

#[test]
fn cpus_out_of_range_zero() {
    assert_bad("cpus_out_of_range_zero.toml", ErrorKind::CpusOutOfRange, 6, 8, "1 to 16 CPUs");
}

#[test]
fn bad_memory_size() {
    assert_bad(
        "bad_memory_size.toml",
        ErrorKind::BadMemorySize,
        6,
        10,
        "\"1.5G\", which is not a size",
    );
}

#[test]
fn memory_not_whole_mib() {
    assert_bad(
        "memory_not_whole_mib.toml",
        ErrorKind::MemoryNotWholeMib,
        6,
        10,
        "not a whole number of MiB",
    );
}

#[test]
fn memory_out_of_range() {
    assert_bad(
        "memory_out_of_range.toml",
        ErrorKind::MemoryOutOfRange,
        6,
        10,
        "\"128M\", outside the supported 256M to 64G",
    );
}

#[test]
fn memory_out_of_range_mib() {
    assert_bad(
        "memory_out_of_range_mib.toml",
        ErrorKind::MemoryOutOfRange,
        6,
        10,
        "65537, outside",
    );
}

#[test]
fn bad_cmdline() {
    // Points at `frobnicate` inside the string.
    assert_bad(
        "bad_cmdline.toml",
        ErrorKind::BadCmdline,
        6,
        24,
        "`frobnicate` is not a hypervisor parameter",
    );
}

#[test]
fn bad_cmdline_value() {
    // Points at the value `loud` inside the string.
    assert_bad(
        "bad_cmdline_value.toml",
        ErrorKind::BadCmdline,
        6,
        32,
        "`loglvl` has the value `loud`",
    );
}

#[test]
fn bad_cmdline_missing_value() {
    assert_bad(
        "bad_cmdline_missing_value.toml",
        ErrorKind::BadCmdline,
        6,
        24,
        "`heartbeat` needs a value",
    );
}

/// Test hooks pass only if the core this crate is built against has them (cargo's feature
/// unification decides, so the test asks the core's own parameter list).
#[test]
fn cmdline_test_hooks_follow_the_core_build() {
    let text = "[system]\nname = \"x\"\n[hypervisor]\ncmdline = \"test_fault=el2-undefined\"\n";
    let hooks_built_in = PARAMETERS.iter().any(|&(name, _)| name == "test_fault");
    match parse(text) {
        Ok(manifest) => assert!(hooks_built_in, "accepted a test hook: {manifest:?}"),
        Err(error) => {
            assert!(!hooks_built_in, "refused a built-in test hook: {error}");
            assert_eq!((error.kind, error.line, error.column), (ErrorKind::BadCmdline, 4, 12));
            assert!(error.message.contains("is a test hook"), "{error}");
        }
    }
}

// ---- Across kinds -----------------------------------------------------------------------------------

/// `BadMemorySize` -> `bad_memory_size`.
fn snake_case(kind: ErrorKind) -> String {
    let mut name = String::new();
    for c in format!("{kind:?}").chars() {
        if c.is_ascii_uppercase() && !name.is_empty() {
            name.push('_');
        }
        name.push(c.to_ascii_lowercase());
    }
    name
}

#[test]
fn every_bad_manifest_fails_with_the_kind_it_is_named_after() {
    let mut count = 0;
    for entry in std::fs::read_dir(BAD).expect("tests/bad") {
        let path = entry.expect("directory entry").path();
        let file = path.file_name().and_then(|name| name.to_str()).expect("UTF-8 name").to_owned();
        if !file.ends_with(".toml") {
            continue;
        }
        let error = load_bad(&file);
        let kind = snake_case(error.kind);
        let stem = file.trim_end_matches(".toml");
        assert!(
            stem == kind || stem.starts_with(&format!("{kind}_")),
            "{file} fails as {kind}, not as its name says: {error}"
        );
        count += 1;
    }
    assert!(count >= 10, "only {count} broken manifests in {BAD}");
}

#[test]
fn parse_all_reports_every_value_error_in_file_order() {
    let text = "[qemu]\nmemory = \"1T\"\ncpus = 0\n[system]\nname = \"a b\"\n";
    let errors = Manifest::parse_all(Path::new("inline.toml"), text).expect_err("three errors");
    let found: Vec<_> = errors.iter().map(|e| (e.kind, e.line, e.column)).collect();
    assert_eq!(
        found,
        [
            (ErrorKind::BadMemorySize, 2, 10),
            (ErrorKind::CpusOutOfRange, 3, 8),
            (ErrorKind::BadName, 5, 10),
        ]
    );
    // `parse` returns the first of them.
    assert_eq!(parse(text).expect_err("fails").kind, ErrorKind::BadMemorySize);
}

#[test]
fn columns_count_characters_and_escaped_strings_point_at_the_string() {
    // "é" is two bytes but one column; the escape \u0020 (a space) means the column cannot be
    // mapped inside the string, so the error points at its opening quote.
    let text = "# é\n[system]\nname = \"a\\u0020b\" # é\n";
    let error = parse(text).expect_err("a space in the name");
    assert_eq!((error.kind, error.line, error.column), (ErrorKind::BadName, 3, 8));
    let text = "[system] # é\nname = \"é\"\n";
    let error = parse(text).expect_err("é in the name");
    assert_eq!((error.kind, error.line, error.column), (ErrorKind::BadName, 2, 9));
}
