//! The differential conformance suite's runner (`docs/conformance.md`): boots the conformance
//! guest on Xen 4.17 and on Xenolith, collects the prober's answers, resumes after a probe that
//! ends it, and compares them against the documented deviations.
//!
//! # Invariants
//! - Every probe index below the guest's total has exactly one [`Outcome`] per run: an answer,
//!   or [`Outcome::Silent`] for the probe after which no answer came (the guest ended or hung).
//! - A difference is accepted only when a deviation names its probe and, if it says so,
//!   Xenolith's exact answer; a deviation that matches no difference is itself an error, so the
//!   file stays true.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;

use crate::runner::Running;

/// The domain whose lines carry the probes' answers.
pub const PROBER: &str = "(d1) ";
/// How long the first `XC-START` may take after QEMU starts (a hypervisor boot under TCG).
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long one probe may take before it counts as [`Outcome::Silent`].
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// What one probe gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// `XC <index> <name> <answer>`.
    Answered {
        /// The probe's name.
        name: String,
        /// The rest of the line.
        answer: String,
    },
    /// No answer: the guest ended or hung in it. `how` is what the hypervisor said, if anything.
    Silent {
        /// The hypervisor's last words about the prober (Xenolith logs a shutdown or crash), or
        /// the time waited.
        how: String,
    },
}

impl Outcome {
    /// What is compared: the answer, or `(no answer)` for either kind of silence.
    pub fn compared(&self) -> &str {
        match self {
            Outcome::Answered { answer, .. } => answer,
            Outcome::Silent { .. } => "(no answer)",
        }
    }
}

/// One hypervisor's run over the whole probe table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Run {
    /// Probes in the guest's table (from `XC-START ... total=T`).
    pub total: usize,
    /// Each probe's outcome, by index.
    pub outcomes: BTreeMap<usize, Outcome>,
    /// Boots it took (1 + the probes that silenced the guest).
    pub boots: usize,
}

/// A prober line's meaning.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// `XC-START role=prober from=N total=T`.
    Start {
        /// The table's size.
        total: usize,
    },
    /// `XC <index> <name> <answer>`.
    Probe {
        /// Its index.
        index: usize,
        /// Its name.
        name: String,
        /// The rest of the line.
        answer: String,
    },
    /// `XC-DONE`.
    Done,
}

/// Reads a serial line: the prober's protocol lines, `None` for anything else (the core's log,
/// the peer, a guest's other output). A prober line that breaks the protocol is an error.
pub fn parse_line(line: &str) -> Result<Option<Line>> {
    let Some(rest) = line.strip_prefix(PROBER) else { return Ok(None) };
    // The runtime may prefix a domain's lines with its name (`guest: `).
    let Some(at) = rest.find("XC") else { return Ok(None) };
    let text = &rest[at..];
    if text.starts_with("XC-DONE") {
        return Ok(Some(Line::Done));
    }
    if let Some(start) = text.strip_prefix("XC-START ") {
        let total = start
            .split_whitespace()
            .find_map(|word| word.strip_prefix("total="))
            .and_then(|value| value.parse().ok())
            .with_context(|| format!("an XC-START line without total=: {line:?}"))?;
        return Ok(Some(Line::Start { total }));
    }
    let Some(probe) = text.strip_prefix("XC ") else { return Ok(None) };
    let mut words = probe.splitn(3, ' ');
    let index = words.next().and_then(|word| word.parse().ok());
    let name = words.next().filter(|name| !name.is_empty());
    let (Some(index), Some(name)) = (index, name) else {
        bail!("a probe line without an index and a name: {line:?}");
    };
    let answer = words.next().unwrap_or("").trim_end().to_string();
    Ok(Some(Line::Probe { index, name: name.to_string(), answer }))
}

/// Runs the whole table: `boot(from)` starts the system with `xc.from=from`; `silenced(line)`
/// says whether a serial line is the hypervisor reporting that the prober ended (so the runner
/// need not wait out [`PROBE_TIMEOUT`]). `log` gets progress lines.
pub fn collect(
    mut boot: impl FnMut(usize) -> Result<Running>,
    silenced: impl Fn(&str) -> bool,
    mut log: impl FnMut(&str),
) -> Result<Run> {
    let mut run = Run::default();
    let mut from = 0;
    loop {
        let mut running = boot(from)?;
        run.boots += 1;
        let mut started = false;
        let mut expected = from;
        let mut deadline = Instant::now() + BOOT_TIMEOUT;
        let mut silence: Option<String> = None;
        let done = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match running.next_line(left) {
                Ok(Some(line)) => line,
                Ok(None) => break false,
                Err(error) => {
                    silence = Some(error.reason);
                    break false;
                }
            };
            if silenced(&line) {
                silence = Some(line.trim().to_string());
                break false;
            }
            match parse_line(&line)? {
                Some(Line::Start { total }) => {
                    ensure!(
                        run.total == 0 || run.total == total,
                        "the guest's table changed size between boots ({} then {total})",
                        run.total
                    );
                    run.total = total;
                    started = true;
                    deadline = Instant::now() + PROBE_TIMEOUT;
                }
                Some(Line::Probe { index, name, answer }) => {
                    ensure!(started, "a probe line before XC-START: {line:?}");
                    ensure!(
                        index == expected,
                        "probe {index} answered where {expected} was expected: {line:?}"
                    );
                    run.outcomes.insert(index, Outcome::Answered { name, answer });
                    expected += 1;
                    deadline = Instant::now() + PROBE_TIMEOUT;
                }
                Some(Line::Done) => break true,
                None => {}
            }
        };
        if done {
            ensure!(expected == run.total, "XC-DONE after {expected} probes of {}", run.total);
            return Ok(run);
        }
        if !started {
            let tail = running.tail().join("\n");
            bail!("the conformance guest never started (from={from}); last lines:\n{tail}");
        }
        let how = silence.unwrap_or_else(|| format!("no answer within {PROBE_TIMEOUT:?}"));
        log(&format!(
            "probe {expected} silenced the prober ({how}); booting again from {}",
            expected + 1
        ));
        run.outcomes.insert(expected, Outcome::Silent { how });
        from = expected + 1;
        if from >= run.total {
            return Ok(run);
        }
    }
}

/// The deviations file: differences from Xen that are known and meant.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeviationsFile {
    #[serde(default)]
    deviation: Vec<toml::Spanned<Deviation>>,
}

/// One documented deviation.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Deviation {
    /// Probe names; a name ending in `*` covers every probe starting with what comes before.
    pub probes: Vec<String>,
    /// Xenolith's answer, when it is one answer for all of them (checked when given).
    #[serde(default)]
    pub xenolith: Option<String>,
    /// Why Xenolith answers otherwise.
    pub reason: String,
    /// The line it starts on in the file (filled in when read).
    #[serde(skip)]
    pub line: usize,
}

impl Deviation {
    /// Whether it covers `name`.
    pub fn covers(&self, name: &str) -> bool {
        self.probes.iter().any(|pattern| match pattern.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == pattern,
        })
    }
}

/// Reads the deviations file; errors name the file and line.
pub fn read_deviations(path: &Path) -> Result<Vec<Deviation>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_deviations(&text).map_err(|error| anyhow::anyhow!("{}:{error}", path.display()))
}

/// [`read_deviations`] on text; errors start with `line: `.
pub fn parse_deviations(text: &str) -> Result<Vec<Deviation>, String> {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let file: DeviationsFile = toml::from_str(text).map_err(|error| {
        let line = error.span().map(|span| line_of(span.start)).unwrap_or(1);
        format!("{line}: {}", error.message())
    })?;
    let mut deviations = Vec::new();
    for spanned in file.deviation {
        let line = line_of(spanned.span().start);
        let mut deviation = spanned.into_inner();
        deviation.line = line;
        if deviation.probes.is_empty() {
            return Err(format!("{line}: a deviation names no probes"));
        }
        if deviation.reason.trim().len() < 10 {
            return Err(format!("{line}: a deviation needs a reason (a sentence)"));
        }
        if let Some(bad) =
            deviation.probes.iter().find(|name| name.contains(' ') || name.is_empty())
        {
            return Err(format!("{line}: {bad:?} is not a probe name"));
        }
        deviations.push(deviation);
    }
    Ok(deviations)
}

/// A probe whose outcomes differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// Its index.
    pub index: usize,
    /// Its name (from whichever run answered).
    pub name: String,
    /// Xen's outcome.
    pub xen: Outcome,
    /// Xenolith's outcome.
    pub xenolith: Outcome,
    /// The line of the deviation that documents it, if any.
    pub documented_at: Option<usize>,
}

/// The comparison.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Probes compared.
    pub probes: usize,
    /// Identical outcomes.
    pub identical: usize,
    /// Every difference, documented or not.
    pub differences: Vec<Difference>,
    /// Deviations (by line) that no difference matched: the file is out of date.
    pub stale: Vec<usize>,
}

impl Report {
    /// Differences no deviation documents.
    pub fn undocumented(&self) -> impl Iterator<Item = &Difference> {
        self.differences.iter().filter(|difference| difference.documented_at.is_none())
    }

    /// The summary line CI prints.
    pub fn summary(&self) -> String {
        let documented = self.differences.len() - self.undocumented().count();
        format!(
            "conformance: {} probes, {} identical, {documented} documented deviations, {} undocumented",
            self.probes,
            self.identical,
            self.undocumented().count()
        )
    }

    /// Every difference, one line each, then the stale deviations.
    pub fn details(&self) -> String {
        let mut text = String::new();
        for difference in &self.differences {
            let tag = match difference.documented_at {
                Some(line) => format!("documented (line {line})"),
                None => "UNDOCUMENTED".to_string(),
            };
            let _ = writeln!(
                text,
                "{tag}: #{} {}: Xen {:?}, Xenolith {:?}",
                difference.index,
                difference.name,
                describe(&difference.xen),
                describe(&difference.xenolith)
            );
        }
        for line in &self.stale {
            let _ = writeln!(
                text,
                "STALE: the deviation at line {line} matches no difference any more"
            );
        }
        text
    }
}

fn describe(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Answered { answer, .. } => answer.clone(),
        Outcome::Silent { how } => format!("(no answer: {how})"),
    }
}

/// Compares the two runs probe by probe.
pub fn compare(xen: &Run, xenolith: &Run, deviations: &[Deviation]) -> Result<Report> {
    ensure!(
        xen.total == xenolith.total,
        "the two runs have tables of different sizes ({} on Xen, {} on Xenolith)",
        xen.total,
        xenolith.total
    );
    let mut report = Report { probes: xen.total, ..Report::default() };
    let mut used = vec![false; deviations.len()];
    for index in 0..xen.total {
        let silent = Outcome::Silent { how: "never reached".into() };
        let on_xen = xen.outcomes.get(&index).unwrap_or(&silent);
        let on_xenolith = xenolith.outcomes.get(&index).unwrap_or(&silent);
        let name = [on_xen, on_xenolith]
            .iter()
            .find_map(|outcome| match outcome {
                Outcome::Answered { name, .. } => Some(name.clone()),
                Outcome::Silent { .. } => None,
            })
            .unwrap_or_else(|| format!("#{index}"));
        if let (Outcome::Answered { name: a, .. }, Outcome::Answered { name: b, .. }) =
            (on_xen, on_xenolith)
        {
            ensure!(a == b, "probe {index} is {a} on Xen but {b} on Xenolith: not the same guest");
        }
        if on_xen.compared() == on_xenolith.compared() {
            report.identical += 1;
            continue;
        }
        let documented = deviations.iter().position(|deviation| {
            deviation.covers(&name)
                && deviation
                    .xenolith
                    .as_deref()
                    .is_none_or(|answer| answer == on_xenolith.compared())
        });
        if let Some(position) = documented {
            used[position] = true;
        }
        report.differences.push(Difference {
            index,
            name,
            xen: on_xen.clone(),
            xenolith: on_xenolith.clone(),
            documented_at: documented.map(|position| deviations[position].line),
        });
    }
    report.stale = deviations
        .iter()
        .zip(&used)
        .filter(|(_, used)| !**used)
        .map(|(deviation, _)| deviation.line)
        .collect();
    Ok(report)
}

/// A run as text, one line per probe (`index name answer`, or `index - (no answer: how)`), for
/// the files the runner leaves under `target/conformance/`.
pub fn listing(run: &Run) -> String {
    let mut text = String::new();
    for (index, outcome) in &run.outcomes {
        let _ = match outcome {
            Outcome::Answered { name, answer } => writeln!(text, "{index} {name} {answer}"),
            Outcome::Silent { how } => writeln!(text, "{index} - (no answer: {how})"),
        };
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(name: &str, answer: &str) -> Outcome {
        Outcome::Answered { name: name.into(), answer: answer.into() }
    }

    fn run(outcomes: Vec<Outcome>) -> Run {
        Run {
            total: outcomes.len(),
            outcomes: outcomes.into_iter().enumerate().collect(),
            boots: 1,
        }
    }

    #[test]
    fn prober_lines_are_read_and_others_ignored() {
        assert_eq!(
            parse_line("(d1) guest: XC-START role=prober from=0 total=12").unwrap(),
            Some(Line::Start { total: 12 })
        );
        assert_eq!(
            parse_line("(d1) XC 3 evtchn.close.port0 -22 extra=1").unwrap(),
            Some(Line::Probe {
                index: 3,
                name: "evtchn.close.port0".into(),
                answer: "-22 extra=1".into()
            })
        );
        assert_eq!(parse_line("(d1) XC-DONE").unwrap(), Some(Line::Done));
        assert_eq!(parse_line("(d2) XC 3 a 0").unwrap(), None);
        assert_eq!(parse_line("[ 1.0] (cpu0) INFO XC 3").unwrap(), None);
        assert!(parse_line("(d1) XC x").is_err());
        assert!(parse_line("(d1) XC-START role=prober").is_err());
    }

    #[test]
    fn differences_are_documented_only_by_a_matching_deviation() {
        let xen = run(vec![answered("a.x", "0"), answered("a.y", "-22"), answered("b.z", "0")]);
        let xenolith = run(vec![
            answered("a.x", "0"),
            answered("a.y", "-38"),
            Outcome::Silent { how: "hung".into() },
        ]);
        let deviations = parse_deviations(
            "[[deviation]]\nprobes = [\"a.*\"]\nxenolith = \"-38\"\nreason = \"not implemented here\"\n",
        )
        .unwrap();
        let report = compare(&xen, &xenolith, &deviations).unwrap();
        assert_eq!(report.identical, 1);
        assert_eq!(report.differences.len(), 2);
        assert_eq!(report.differences[0].documented_at, Some(1));
        assert_eq!(report.undocumented().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["b.z"]);
        assert!(report.stale.is_empty());
        assert_eq!(
            report.summary(),
            "conformance: 3 probes, 1 identical, 1 documented deviations, 1 undocumented"
        );
        // Another answer from Xenolith is not what the deviation documents.
        let other = run(vec![answered("a.x", "0"), answered("a.y", "-1"), answered("b.z", "0")]);
        let report = compare(&xen, &other, &deviations).unwrap();
        assert_eq!(report.undocumented().count(), 1);
        assert_eq!(report.stale, [1]);
    }

    #[test]
    fn two_silences_are_identical() {
        let xen = run(vec![Outcome::Silent { how: "ended".into() }]);
        let xenolith = run(vec![Outcome::Silent { how: "domain 1 shut down".into() }]);
        assert_eq!(compare(&xen, &xenolith, &[]).unwrap().identical, 1);
    }

    #[test]
    fn bad_deviation_files_name_the_line() {
        let error =
            parse_deviations("[[deviation]]\nprobes = []\nreason = \"long enough reason\"\n")
                .unwrap_err();
        assert!(error.starts_with("1: "), "{error}");
        let error =
            parse_deviations("\n[[deviation]]\nprobes = [\"a\"]\nreason = \"x\"\n").unwrap_err();
        assert!(error.starts_with("2: ") && error.contains("reason"), "{error}");
        let error = parse_deviations("[[deviation]]\nprobes = [\"a\"]\nwhy = 1\n").unwrap_err();
        assert!(error.contains("why"), "{error}");
    }
}
