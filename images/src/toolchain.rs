//! The Rust toolchain's targets: every target `rust-toolchain.toml` lists is installed before
//! anything is built for it.
//!
//! rustup installs the targets of `rust-toolchain.toml` only when it installs the toolchain
//! itself. Where a toolchain of that name already exists (for example `1.95.0` linked to an
//! installed stable), they are missing and every bare-metal build fails with "can't find crate
//! for `core`". So the host tool asks rustup which targets the toolchain in use has
//! (`rustup target list --installed`, run in the workspace so the pinned toolchain answers) and
//! adds the missing ones (`rustup target add`), as it installs QEMU and Miri.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The `targets` list of `rust-toolchain.toml` in `root`.
pub fn pinned_targets(root: &Path) -> Result<Vec<String>> {
    let path = root.join("rust-toolchain.toml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    parse_targets(&text).with_context(|| format!("in {}", path.display()))
}

/// The `[toolchain] targets` array of a `rust-toolchain.toml` text (empty when absent).
pub fn parse_targets(text: &str) -> Result<Vec<String>> {
    let value: toml::Table = toml::from_str(text).context("not a TOML table")?;
    let Some(targets) = value.get("toolchain").and_then(|toolchain| toolchain.get("targets"))
    else {
        return Ok(Vec::new());
    };
    let Some(list) = targets.as_array() else {
        bail!("`toolchain.targets` must be an array of target names");
    };
    list.iter()
        .map(|target| {
            target.as_str().map(String::from).context("`toolchain.targets` holds a non-string")
        })
        .collect()
}

/// The targets in `wanted` that are not in `installed` (one target name a line, as
/// `rustup target list --installed` prints them).
pub fn missing_targets<'a>(wanted: &'a [String], installed: &str) -> Vec<&'a str> {
    wanted
        .iter()
        .map(String::as_str)
        .filter(|target| !installed.lines().any(|line| line.trim() == *target))
        .collect()
}

fn rustup(root: &Path, args: &[&str]) -> Result<std::process::Output> {
    Command::new("rustup")
        .args(args)
        .current_dir(root)
        .output()
        .with_context(|| format!("running `rustup {}` (is rustup installed?)", args.join(" ")))
}

/// Adds every target of `rust-toolchain.toml` that the toolchain in use lacks.
pub fn ensure_targets(root: &Path) -> Result<()> {
    let wanted = pinned_targets(root)?;
    let listed = rustup(root, &["target", "list", "--installed"])?;
    if !listed.status.success() {
        bail!(
            "`rustup target list --installed` failed: {}",
            String::from_utf8_lossy(&listed.stderr).trim()
        );
    }
    let installed = String::from_utf8_lossy(&listed.stdout);
    let missing = missing_targets(&wanted, &installed);
    if missing.is_empty() {
        return Ok(());
    }
    let mut args = vec!["target", "add"];
    args.extend(&missing);
    eprintln!(
        "xtask: the toolchain lacks {}; running `rustup {}`",
        missing.join(", "),
        args.join(" ")
    );
    let added = rustup(root, &args)?;
    if !added.status.success() {
        bail!(
            "`rustup {}` failed: {}; run it by hand and try again",
            args.join(" "),
            String::from_utf8_lossy(&added.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_of_the_workspace_file() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let targets = pinned_targets(root).unwrap();
        assert!(targets.iter().any(|target| target == "aarch64-unknown-none"));
        assert!(targets.iter().any(|target| target == "aarch64-unknown-none-softfloat"));
    }

    #[test]
    fn parse_and_compare() {
        let text = "[toolchain]\nchannel = \"1.95.0\"\ntargets = [\"a\", \"b\", \"c\"]\n";
        let wanted = parse_targets(text).unwrap();
        assert_eq!(wanted, ["a", "b", "c"]);
        assert_eq!(missing_targets(&wanted, "x86_64-unknown-linux-gnu\nb\n"), ["a", "c"]);
        assert!(missing_targets(&wanted, "a\nb\nc\n").is_empty());
        assert!(parse_targets("[toolchain]\nchannel = \"x\"\n").unwrap().is_empty());
        assert!(parse_targets("[toolchain]\ntargets = \"a\"\n").is_err());
        assert!(parse_targets("[toolchain]\ntargets = [1]\n").is_err());
        assert!(parse_targets("not toml [").is_err());
    }
}
