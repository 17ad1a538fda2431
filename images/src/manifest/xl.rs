//! A `[[domain]]` whose settings come from an xl.cfg(5) file (`xl = "<file>"`; the rules are in
//! the parent's module doc, "Domains from xl.cfg files").
//!
//! The file is read with `xenolith-xlcfg`, the parser the control domain will use: its syntax
//! layer for where each key is written, its typed layer for what the keys mean (xl's defaults and
//! refusals included). This module then holds those values to the manifest's own limits, and
//! refuses what a boot domain cannot honour, each error at the file's line and column.
//!
//! # Sources (Xen 4.17)
//! - `kernel`/`ramdisk`: `tools/xl/xl_parse.c` copies the strings unchanged
//!   (`xlu_cfg_replace_string`) and libxl opens them, so xl reads them relative to its working
//!   directory; here they are relative to the xl.cfg file.
//! - `maxmem` above `memory` starts the guest "pre-ballooned" and `maxvcpus` above `vcpus`
//!   creates the rest of the vCPUs offline (`docs/man/xl.cfg.5.pod.in`); a Xenolith boot domain
//!   has neither, so both are warnings.
//!
//! # Invariants
//! - A [`Domain`] built here passes the same checks as one written in the manifest.
//! - Every error about the file's content is located in the file and names the manifest's `xl`
//!   key ([`ManifestError::xl_key`]); errors about the manifest's own keys are located there.

use xenolith_xlcfg::devices::{CpuList, MAX_CPU};
use xenolith_xlcfg::{parse, parse_domain, Config, DomainConfig, Pos, Value};

use super::domain::{bad_shutdown_action, file_or_debian};
use super::*;

/// A domain's xl.cfg file, read and parsed.
pub(super) struct XlFile {
    /// The `xl` value as written, relative to the manifest.
    pub(super) written: String,
    /// It joined to the manifest's directory.
    pub(super) path: PathBuf,
    /// Where the manifest gives `xl`.
    pub(super) at: Position,
    /// The file's settings: where each key and value is written.
    settings: Config,
    /// What the file says, with xl's defaults.
    pub(super) config: DomainConfig,
}

/// A manifest key, where its value is written (if it is), and xl.cfg's words for it.
type KeyWords = (&'static str, Option<Range<usize>>, &'static [&'static str]);

/// The xl.cfg words for the command line.
const CMDLINE_WORDS: &[&str] = &["cmdline", "root", "extra"];

/// The xl.cfg keys asking for what a boot domain cannot have yet, and why.
const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "disk",
        "no block backend (blkback), nor virtio disks from xl.cfg files (a manifest \
         `[[domain]]` without `xl` may have a virtio `disk`)",
    ),
    (
        "vuart",
        "no emulated UART for a domain from an xl.cfg file (a manifest `[[domain]]` without `xl` \
         may have `vuart`)",
    ),
    ("iomem", "passthrough is the manifest's, for boot domains"),
    ("irqs", "passthrough is the manifest's, for boot domains"),
    ("dtdev", "passthrough is the manifest's, for boot domains"),
];

/// An error at `pos` of the xl.cfg file `path`, named by the `xl` value at `at` of `manifest`.
fn error_in(
    path: &Path,
    manifest: &Path,
    at: Position,
    pos: Pos,
    kind: ErrorKind,
    message: String,
) -> ManifestError {
    ManifestError {
        path: path.to_path_buf(),
        line: pos.line as usize,
        column: pos.column as usize,
        kind,
        message,
        xl_key: Some((manifest.to_path_buf(), at)),
        source: None,
    }
}

impl XlFile {
    /// An error at `pos` of this file, read for `manifest`.
    pub(super) fn error(
        &self,
        manifest: &Path,
        pos: Pos,
        kind: ErrorKind,
        message: String,
    ) -> ManifestError {
        error_in(&self.path, manifest, self.at, pos, kind, message)
    }

    /// Where the value of `key` starts; past the file's end if the file does not set it.
    pub(super) fn value_at(&self, key: &str) -> Pos {
        self.settings.get(key).map_or(self.settings.end, |setting| setting.value.pos())
    }

    /// `key`'s value as the file writes it, if it is a single value.
    fn text(&self, key: &str) -> Option<&str> {
        match &self.settings.get(key)?.value {
            Value::Atom(text, _) => Some(text),
            Value::List(..) => None,
        }
    }

    /// A remark at `pos` of this file.
    fn warning(&self, pos: Pos, message: String) -> ManifestWarning {
        ManifestWarning {
            path: self.path.clone(),
            line: pos.line as usize,
            column: pos.column as usize,
            message,
        }
    }
}

impl Source<'_> {
    /// Reads and parses the xl.cfg file that `xl` names; its remarks go to `warnings`.
    pub(super) fn read_xl(
        &self,
        xl: &Spanned<String>,
        warnings: &mut Vec<ManifestWarning>,
    ) -> Result<XlFile, ManifestError> {
        let written = xl.get_ref();
        let offset = xl.span().start;
        let at = self.position(offset);
        let path = self.path.parent().unwrap_or(Path::new("")).join(written);
        let text = std::fs::read_to_string(&path).map_err(|error| {
            let message = if error.kind() == std::io::ErrorKind::NotFound {
                format!(
                    "xl.cfg file `{written}` not found (looked for {}); `xl` is relative to the \
                     manifest file",
                    path.display()
                )
            } else {
                format!(
                    "xl.cfg file `{written}` cannot be read ({error}); it must be readable UTF-8 \
                     text"
                )
            };
            self.error_at(offset, ErrorKind::XlNotFound, message)
        })?;
        let refused = |error: xenolith_xlcfg::ParseError| {
            let pos = Pos { line: error.line, column: error.column };
            error_in(&path, self.path, at, pos, ErrorKind::BadXlConfig, error.message)
        };
        let parsed = parse_domain(&text).map_err(refused)?;
        let settings = parse(&text).map_err(refused)?;
        let file = XlFile { written: written.clone(), path, at, settings, config: parsed.config };

        let mut remarks: Vec<ManifestWarning> = parsed
            .warnings
            .into_iter()
            .map(|w| file.warning(Pos { line: w.line, column: w.column }, w.message))
            .collect();
        let config = &file.config;
        if config.maxmem_mib > config.memory_mib {
            let message = format!(
                "`maxmem` is {} MiB, above `memory` ({} MiB): a Xenolith boot domain keeps the \
                 memory it is built with and cannot balloon up, so it has {} MiB",
                config.maxmem_mib, config.memory_mib, config.memory_mib
            );
            remarks.push(file.warning(file.value_at("maxmem"), message));
        }
        if config.maxvcpus > config.vcpus {
            let message = format!(
                "`maxvcpus` is {}, above `vcpus` ({}): Xenolith has no vCPU hot-plug, so the \
                 domain has {} vCPUs",
                config.maxvcpus, config.vcpus, config.vcpus
            );
            remarks.push(file.warning(file.value_at("maxvcpus"), message));
        }
        remarks.sort_by_key(|w| (w.line, w.column));
        warnings.extend(remarks);
        Ok(file)
    }

    /// A `[[domain]]` with `xl`: its settings from the file `xl`, the manifest-only keys from
    /// `raw`.
    pub(super) fn check_xl_domain(
        &self,
        raw: &RawDomain,
        xl: &XlFile,
        errors: &mut Vec<ManifestError>,
    ) -> Option<Domain> {
        let before = errors.len();
        self.check_xl_conflicts(raw, xl, errors);
        let config = &xl.config;
        let in_file =
            |key: &str, kind, message| xl.error(self.path, xl.value_at(key), kind, message);
        for (key, why) in UNSUPPORTED {
            if xl.settings.get(key).is_some_and(|setting| match &setting.value {
                Value::List(items, _) => !items.is_empty(),
                Value::Atom(..) => true,
            }) {
                let message = format!(
                    "`{key}` cannot be honoured: Xenolith has {why} yet; remove it (the guest would \
                     boot without what it asks for)"
                );
                errors.push(in_file(key, ErrorKind::XlUnsupported, message));
            }
        }

        let name = match name_problem("domain name", &config.name) {
            None => Some(config.name.clone()),
            Some((_, message)) => {
                errors.push(in_file("name", ErrorKind::BadName, message));
                None
            }
        };
        let source = keep(errors, self.xl_source(raw, xl));
        let memory_mib = match u32::try_from(config.memory_mib) {
            Ok(mib) if (1..=DOMAIN_MEMORY_MAX_MIB).contains(&mib) => Some(mib),
            _ => {
                let message = format!(
                    "`memory` is {} (MiB), outside the 1 to {DOMAIN_MEMORY_MAX_MIB} MiB a domain \
                     may have; choose a size in that range",
                    config.memory_mib
                );
                errors.push(in_file("memory", ErrorKind::MemoryOutOfRange, message));
                None
            }
        };
        let vcpus = if (1..=MAX_VCPUS).contains(&config.vcpus) {
            Some(config.vcpus)
        } else {
            let message = format!(
                "`vcpus` is {}, but a domain has 1 to {MAX_VCPUS} vCPUs; choose a number in that \
                 range",
                config.vcpus
            );
            errors.push(in_file("vcpus", ErrorKind::VcpusOutOfRange, message));
            None
        };
        let most = CAP_PERCENT_PER_VCPU * vcpus.unwrap_or(MAX_VCPUS);
        let cap = match u16::try_from(config.cap) {
            Ok(cap) if u32::from(cap) <= most => Some(cap),
            _ => {
                let message = format!(
                    "`cap` is {}, but with {} vCPUs a cap is 1 to {most} (percent of one CPU), or \
                     0 for no cap; choose a value in that range",
                    config.cap,
                    most / CAP_PERCENT_PER_VCPU
                );
                errors.push(in_file("cap", ErrorKind::CapOutOfRange, message));
                None
            }
        };
        let hard_affinity = keep(errors, self.xl_affinity(xl, "cpus", config.cpus.as_ref()));
        let soft_affinity =
            keep(errors, self.xl_affinity(xl, "cpus_soft", config.cpus_soft.as_ref()));
        let on_shutdown = keep(errors, self.xl_shutdown(raw, xl));
        let ramdisk = match &config.ramdisk {
            None => Some(None),
            Some(ramdisk) => keep(errors, self.xl_file(xl, "ramdisk", ramdisk)).map(Some),
        };
        let capabilities = keep(errors, self.check_capabilities(&raw.capabilities));
        let preserved_kib = keep(errors, self.check_preserved(raw.preserved_kib.as_ref()));
        let hardware = capabilities.as_ref().is_some_and(|capabilities| {
            capabilities.iter().any(|text| text.starts_with("hardware:"))
        });
        let boot = raw.boot.unwrap_or(true);
        let memory = memory_mib.unwrap_or(DOMAIN_MEMORY_MAX_MIB);
        let passthrough = keep(errors, self.check_passthrough(raw, hardware, boot, memory));
        if errors.len() > before {
            return None;
        }
        let domain = Domain {
            name: name?,
            source: source?,
            memory_mib: memory_mib?,
            vcpus: vcpus?,
            capabilities: capabilities?,
            weight: config.weight,
            cap: cap?,
            hard_affinity: hard_affinity?,
            soft_affinity: soft_affinity?,
            on_shutdown: on_shutdown?,
            preserved_kib: preserved_kib?,
            boot: raw.boot.unwrap_or(true),
            cmdline: config.cmdline.clone().unwrap_or_default(),
            ramdisk: ramdisk?,
            passthrough: passthrough?,
            vifs: config.vifs.iter().map(|vif| vif.spec()).collect(),
            vuart: false,
            disks: Vec::new(),
            virtio_net: false,
        };
        self.check_run_time(raw, &domain, Some(xl), errors).then_some(domain)
    }

    /// Refuses every manifest key beside `xl` that the file gives or should give, naming the
    /// file's place when it gives it too.
    fn check_xl_conflicts(&self, raw: &RawDomain, xl: &XlFile, errors: &mut Vec<ManifestError>) {
        fn span<T>(value: &Option<Spanned<T>>) -> Option<Range<usize>> {
            value.as_ref().map(Spanned::span)
        }
        // Each manifest key xl.cfg has a word for, with its words (`program` is apart: it is
        // allowed when the file has no `kernel`).
        let keys: [KeyWords; 17] = [
            ("name", span(&raw.name), &["name"]),
            ("memory", span(&raw.memory), &["memory"]),
            ("vcpus", span(&raw.vcpus), &["vcpus"]),
            ("cpus", span(&raw.cpus), &["cpus"]),
            ("cpus_soft", span(&raw.cpus_soft), &["cpus_soft"]),
            ("image", span(&raw.image), &["kernel"]),
            ("kernel", span(&raw.kernel), &["kernel"]),
            ("ramdisk", span(&raw.ramdisk), &["ramdisk"]),
            ("cmdline", span(&raw.cmdline), CMDLINE_WORDS),
            ("root", span(&raw.root), CMDLINE_WORDS),
            ("extra", span(&raw.extra), CMDLINE_WORDS),
            ("on_poweroff", span(&raw.on_poweroff), &["on_poweroff"]),
            ("on_reboot", span(&raw.on_reboot), &["on_reboot"]),
            ("on_crash", span(&raw.on_crash), &["on_crash"]),
            ("weight", span(&raw.weight), &["cpu_weight"]),
            ("cap", span(&raw.cap), &["cap"]),
            ("vif", raw.vif.first().map(Spanned::span), &["vif"]),
        ];
        let file = xl.path.display();
        for (key, span, words) in keys {
            let Some(span) = span else { continue };
            let given = words.iter().find_map(|word| Some((*word, xl.settings.get(word)?.key_pos)));
            let message = match given {
                Some((word, pos)) => {
                    let spelled = if word == key { String::new() } else { format!(" as `{word}`") };
                    format!(
                        "`{key}` is given here and{spelled} in the xl.cfg file at {file}:{}:{}; a \
                         domain with `xl` takes it from the file, so remove it here",
                        pos.line, pos.column
                    )
                }
                None => format!(
                    "`{key}` is given beside `xl`, but a domain with `xl` takes it from its xl.cfg \
                     file `{}` (as `{}`); move it there",
                    xl.written, words[0]
                ),
            };
            errors.push(self.error_at(span.start, ErrorKind::XlConflict, message));
        }
        for (key, span) in
            [("vuart", span(&raw.vuart)), ("disk", raw.disk.first().map(Spanned::span))]
        {
            let Some(span) = span else { continue };
            let message = format!(
                "`{key}` is given beside `xl`, but a domain from an xl.cfg file has no emulated \
                 devices yet (Xenolith reads neither `vuart` nor `disk` from xl.cfg files); \
                 describe the domain in the manifest without `xl`"
            );
            errors.push(self.error_at(span.start, ErrorKind::XlConflict, message));
        }
        if let (Some(program), Some(kernel)) = (&raw.program, xl.settings.get("kernel")) {
            let message = format!(
                "`program` is given here and the xl.cfg file gives `kernel` at {file}:{}:{}; keep \
                 one: `program` for a crate of this workspace, `kernel` for a file",
                kernel.key_pos.line, kernel.key_pos.column
            );
            errors.push(self.error_at(program.span().start, ErrorKind::XlConflict, message));
        }
    }

    /// The domain's image: the file's `kernel`, else the manifest's `program`.
    fn xl_source(&self, raw: &RawDomain, xl: &XlFile) -> Result<DomainSource, ManifestError> {
        match (&xl.config.kernel, &raw.program) {
            (Some(kernel), _) => self.xl_file(xl, "kernel", kernel),
            (None, Some(program)) => Ok(DomainSource::Program {
                name: self.check_name("program name", program)?,
                at: self.position(program.span().start),
            }),
            (None, None) => {
                let message = format!(
                    "domain `{}` has no image: its xl.cfg file `{}` has no `kernel`; add \
                     `kernel = \"<file>\"` to the file (relative to it), or `program = \
                     \"<crate>\"` beside `xl` for a crate of this workspace",
                    xl.config.name, xl.written
                );
                let offset = raw.xl.as_ref().map_or(0, |value| value.span().start);
                Err(self.error_at(offset, ErrorKind::ProgramOrImage, message))
            }
        }
    }

    /// The file's `kernel` or `ramdisk` (`key`), `written` relative to the file, or a `debian:`
    /// name. Its module is named by its path relative to the manifest; the build's errors about
    /// it point at the `xl` key.
    fn xl_file(
        &self,
        xl: &XlFile,
        key: &'static str,
        written: &str,
    ) -> Result<DomainSource, ManifestError> {
        let directory = xl.path.parent().unwrap_or(Path::new(""));
        let module = Path::new(&xl.written).parent().unwrap_or(Path::new("")).join(written);
        let module = module.to_string_lossy().into_owned();
        file_or_debian(key, written, directory, "the xl.cfg file", module, xl.at)
            .map_err(|(_, kind, message)| xl.error(self.path, xl.value_at(key), kind, message))
    }

    /// The file's `cpus` or `cpus_soft` (`key`) as a mask of pCPUs 0..[`AFFINITY_CPUS`].
    ///
    /// xl's `"all"` inside a list (`"all,^0"`) names every CPU up to the parser's [`MAX_CPU`];
    /// those past the 64 an affinity can name do not exist here and are dropped. Any other CPU
    /// number from 64 up is refused, as is a list that leaves no CPU.
    fn xl_affinity(
        &self,
        xl: &XlFile,
        key: &str,
        list: Option<&CpuList>,
    ) -> Result<u64, ManifestError> {
        let cpus = match list {
            None | Some(CpuList::All) => return Ok(AFFINITY_ALL),
            Some(CpuList::Cpus(cpus)) => cpus,
        };
        let error =
            |message| xl.error(self.path, xl.value_at(key), ErrorKind::BadAffinity, message);
        let from_all = (AFFINITY_CPUS..=MAX_CPU).all(|cpu| cpus.contains(&cpu));
        let mut mask = 0u64;
        for &cpu in cpus {
            if cpu < AFFINITY_CPUS {
                mask |= 1 << cpu;
            } else if !from_all {
                return Err(error(format!(
                    "CPU {cpu} in `{key}` is not a CPU number; they are 0 to {}",
                    AFFINITY_CPUS - 1
                )));
            }
        }
        if mask == 0 {
            return Err(error(format!(
                "`{key}` allows no CPU; name at least one of CPUs 0 to {}, or write \"all\"",
                AFFINITY_CPUS - 1
            )));
        }
        Ok(mask)
    }

    /// The shutdown actions: the manifest's `restart` (or xl's defaults), then each `on_*` the
    /// file sets, which must be one of [`ShutdownAction::ALL`].
    fn xl_shutdown(&self, raw: &RawDomain, xl: &XlFile) -> Result<ShutdownActions, ManifestError> {
        let mut actions = self.check_restart(raw)?;
        let keys = [
            ("on_poweroff", &mut actions.poweroff),
            ("on_reboot", &mut actions.reboot),
            ("on_crash", &mut actions.crash),
        ];
        for (key, action) in keys {
            // The typed layer has accepted it: one of xl's seven actions.
            let Some(text) = xl.text(key) else { continue };
            *action = ShutdownAction::parse(text).ok_or_else(|| {
                let message = bad_shutdown_action(key, text);
                xl.error(self.path, xl.value_at(key), ErrorKind::BadShutdownAction, message)
            })?;
        }
        Ok(actions)
    }
}
