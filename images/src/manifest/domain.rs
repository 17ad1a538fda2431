//! The `[[domain]]` tables of a manifest: one check per key, each pointing at the offending
//! value (split from `manifest.rs` to keep files short; the types and helpers are the parent's).

use super::*;

use xenolith_abi::xen::private::XENOLITH_BUNDLE_NAME_LEN;
use xenolith_xlcfg::Pos;

use super::xl::XlFile;

/// Where a domain's name is written: in the manifest, or in its xl.cfg file.
enum NameAt<'a> {
    Manifest(&'a Spanned<String>),
    Xl(&'a XlFile, Pos),
}

impl Source<'_> {
    /// Every `[[domain]]`: each on its own, then across domains (names, capability targets,
    /// `xenstore`). `None` if any error was pushed to `errors`; the domains' xl.cfg files' remarks
    /// go to `warnings`.
    pub(super) fn check_domains(
        &self,
        raws: &[Spanned<RawDomain>],
        errors: &mut Vec<ManifestError>,
        warnings: &mut Vec<ManifestWarning>,
    ) -> Option<Vec<Domain>> {
        let before = errors.len();
        // The xl.cfg files first: they give names the checks across domains need. `None`: no
        // `xl`; `Some(None)`: an `xl` whose file is refused (the error is in `errors`).
        let xls: Vec<Option<Option<XlFile>>> = raws
            .iter()
            .map(|raw| {
                let xl = raw.get_ref().xl.as_ref()?;
                Some(keep(errors, self.read_xl(xl, warnings)))
            })
            .collect();
        let domains: Vec<Option<Domain>> = raws
            .iter()
            .zip(&xls)
            .map(|(raw, xl)| self.check_domain(raw, xl.as_ref().map(Option::as_ref), errors))
            .collect();
        let names: Vec<Option<(&str, NameAt<'_>)>> = raws
            .iter()
            .zip(&xls)
            .map(|(raw, xl)| match xl {
                Some(xl) => {
                    let xl = xl.as_ref()?;
                    Some((xl.config.name.as_str(), NameAt::Xl(xl, xl.value_at("name"))))
                }
                None => {
                    let name = raw.get_ref().name.as_ref()?;
                    Some((name.get_ref().as_str(), NameAt::Manifest(name)))
                }
            })
            .collect();
        // A name that is not known (its file refused, or missing) could be any capability target.
        let every_name_known = names.iter().all(Option::is_some);
        let mut xenstore: Option<&str> = None;
        for (index, raw) in raws.iter().enumerate() {
            let raw = raw.get_ref();
            let Some((name, at)) = &names[index] else { continue };
            let earlier = names[..index].iter().flatten().find(|(first, _)| first == name);
            if let Some((_, first)) = earlier {
                let place = match (first, at) {
                    (NameAt::Manifest(first), NameAt::Manifest(_)) => {
                        format!("on line {}", line_column(self.text, first.span().start).0)
                    }
                    (NameAt::Manifest(first), NameAt::Xl(..)) => format!(
                        "on line {} of {}",
                        line_column(self.text, first.span().start).0,
                        self.path.display()
                    ),
                    (NameAt::Xl(xl, pos), _) => format!("in {}:{}", xl.path.display(), pos.line),
                };
                let message = format!(
                    "a domain named `{name}` is already defined {place}; give each domain its own \
                     name"
                );
                let error = match at {
                    NameAt::Manifest(value) => {
                        self.error_at(value.span().start, ErrorKind::DuplicateDomain, message)
                    }
                    NameAt::Xl(xl, pos) => {
                        xl.error(self.path, *pos, ErrorKind::DuplicateDomain, message)
                    }
                };
                errors.push(error);
            }
            for text in &raw.capabilities {
                let offset = text.span().start;
                match Capability::parse(text.get_ref()) {
                    Some(Capability::Xenstore) => {
                        if let Some(first) = xenstore {
                            let message = format!(
                                "domain `{name}` holds `xenstore`, but domain `{first}` already \
                                 does; a system has one xenstore domain"
                            );
                            errors.push(self.error_at(
                                offset,
                                ErrorKind::DuplicateXenstore,
                                message,
                            ));
                        } else {
                            xenstore = Some(name);
                        }
                    }
                    Some(capability) => {
                        let Some(target) = capability.target() else { continue };
                        let message = if target == *name {
                            format!(
                                "`{capability}` names domain `{name}` itself; a domain cannot hold \
                                 this over itself, so name another domain"
                            )
                        } else if every_name_known
                            && !names.iter().flatten().any(|(other, _)| *other == target)
                        {
                            let known: Vec<&str> =
                                names.iter().flatten().map(|(n, _)| *n).collect();
                            format!(
                                "`{capability}` names `{target}`, which is not a domain of this \
                                 manifest (domains: {}); correct the name",
                                known.join(", ")
                            )
                        } else {
                            continue;
                        };
                        errors.push(self.error_at(offset, ErrorKind::CapabilityTarget, message));
                    }
                    None => {} // Reported by check_domain.
                }
            }
        }
        if errors.len() > before {
            return None;
        }
        domains.into_iter().collect()
    }

    /// One `[[domain]]` on its own; `xl` is `None` without an `xl` key, `Some(None)` when its
    /// xl.cfg file was refused.
    fn check_domain(
        &self,
        raw: &Spanned<RawDomain>,
        xl: Option<Option<&XlFile>>,
        errors: &mut Vec<ManifestError>,
    ) -> Option<Domain> {
        let table = raw.span();
        let raw = raw.get_ref();
        if let Some(xl) = xl {
            return self.check_xl_domain(raw, xl?, errors);
        }
        let (Some(written_name), Some(memory)) = (&raw.name, &raw.memory) else {
            for (key, given) in [("`name`", raw.name.is_some()), ("`memory`", raw.memory.is_some())]
            {
                if !given {
                    errors.push(self.missing_key(table.clone(), key));
                }
            }
            return None;
        };
        let name = keep(errors, self.check_name("domain name", written_name));
        let source = keep(errors, self.check_source(raw, written_name.get_ref(), table.start));
        let memory_mib = keep(errors, self.check_domain_memory(memory));
        let vcpus = keep(errors, self.check_vcpus(raw.vcpus.as_ref()));
        let capabilities = keep(errors, self.check_capabilities(&raw.capabilities));
        let weight = keep(errors, self.check_weight(raw.weight.as_ref()));
        let cap = keep(errors, self.check_cap(raw.cap.as_ref(), vcpus.unwrap_or(MAX_VCPUS)));
        let hard_affinity = keep(errors, self.check_affinity("cpus", raw.cpus.as_ref()));
        let soft_affinity = keep(errors, self.check_affinity("cpus_soft", raw.cpus_soft.as_ref()));
        let on_shutdown = keep(errors, self.check_shutdown(raw));
        let preserved_kib = keep(errors, self.check_preserved(raw.preserved_kib.as_ref()));
        let ramdisk = keep(errors, self.check_ramdisk(raw.ramdisk.as_ref()));
        let cmdline = keep(errors, self.check_domain_cmdline(raw));
        let hardware = capabilities.as_ref().is_some_and(|capabilities| {
            capabilities.iter().any(|text| text.starts_with("hardware:"))
        });
        let boot = raw.boot.unwrap_or(true);
        let passthrough = keep(
            errors,
            self.check_passthrough(
                raw,
                hardware,
                boot,
                memory_mib.unwrap_or(DOMAIN_MEMORY_MAX_MIB),
            ),
        );
        let vifs = keep(errors, self.check_vifs(&raw.vif));
        let vuart = keep(errors, self.check_vuart(raw.vuart.as_ref()));
        let disks = keep(errors, self.check_disks(&raw.disk));
        let domain = Domain {
            name: name?,
            source: source?,
            memory_mib: memory_mib?,
            vcpus: vcpus?,
            capabilities: capabilities?,
            weight: weight?,
            cap: cap?,
            hard_affinity: hard_affinity?,
            soft_affinity: soft_affinity?,
            on_shutdown: on_shutdown?,
            preserved_kib: preserved_kib?,
            boot: raw.boot.unwrap_or(true),
            cmdline: cmdline?,
            ramdisk: ramdisk?,
            passthrough: passthrough?,
            vifs: vifs?,
            vuart: vuart?,
            disks: disks?,
            virtio_net: raw.virtio_net.unwrap_or(false),
        };
        self.check_run_time(raw, &domain, None, errors).then_some(domain)
    }

    /// A domain's `vif` entries: each must parse as xl.cfg's `NET_SPEC_STRING`, and an option
    /// xl would skip with "unrecognized argument" is refused (a typo would go unnoticed).
    fn check_vifs(&self, raw: &[Spanned<String>]) -> Result<Vec<String>, ManifestError> {
        raw.iter()
            .map(|spec| {
                let bad = |why: String| {
                    let message = format!("`vif` entry {:?}: {why}", spec.get_ref());
                    self.error_at(spec.span().start, ErrorKind::BadVif, message)
                };
                let (_, unknown) =
                    xenolith_xlcfg::devices::parse_vif(spec.get_ref()).map_err(bad)?;
                if let Some(first) = unknown.first() {
                    return Err(bad(format!("{first} (xl would skip it)")));
                }
                Ok(spec.get_ref().clone())
            })
            .collect()
    }

    /// For a domain with `boot = false`, that the control domain can build it from its xl.cfg
    /// text: each of [`run_time_problems`] goes to `errors` at the value at fault, in the domain's
    /// xl.cfg file `xl` for what the file gives. Whether there was none.
    pub(super) fn check_run_time(
        &self,
        raw: &RawDomain,
        domain: &Domain,
        xl: Option<&XlFile>,
        errors: &mut Vec<ManifestError>,
    ) -> bool {
        let problems = run_time_problems(domain);
        let none = problems.is_empty();
        for (key, kind, message) in problems {
            let file_key = match key {
                RunTimeKey::Name => Some("name"),
                RunTimeKey::Image if xl.is_some_and(|xl| xl.config.kernel.is_some()) => {
                    Some("kernel")
                }
                RunTimeKey::Ramdisk => Some("ramdisk"),
                RunTimeKey::Capabilities
                | RunTimeKey::PreservedKib
                | RunTimeKey::Image
                | RunTimeKey::Devices => None,
            };
            let error = match (xl, file_key) {
                (Some(xl), Some(file_key)) => {
                    xl.error(self.path, xl.value_at(file_key), kind, message)
                }
                _ => {
                    let value = match key {
                        RunTimeKey::Capabilities => raw.capabilities.first().map(Spanned::span),
                        RunTimeKey::PreservedKib => raw.preserved_kib.as_ref().map(Spanned::span),
                        RunTimeKey::Name => raw.name.as_ref().map(Spanned::span),
                        RunTimeKey::Image => [&raw.program, &raw.image, &raw.kernel]
                            .into_iter()
                            .flatten()
                            .next()
                            .map(Spanned::span),
                        RunTimeKey::Ramdisk => raw.ramdisk.as_ref().map(Spanned::span),
                        RunTimeKey::Devices => {
                            raw.vuart.as_ref().or(raw.disk.first()).map(Spanned::span)
                        }
                    };
                    // The value at fault is always written somewhere; 0 only as a fallback.
                    self.error_at(value.map_or(0, |span| span.start), kind, message)
                }
            };
            errors.push(error);
        }
        none
    }

    /// A domain's `program`, `image` or `kernel`, exactly one; `name` is the domain's, `table`
    /// where its `[[domain]]` starts.
    fn check_source(
        &self,
        raw: &RawDomain,
        name: &str,
        table: usize,
    ) -> Result<DomainSource, ManifestError> {
        let given: Vec<(&str, &Spanned<String>)> =
            [("program", &raw.program), ("image", &raw.image), ("kernel", &raw.kernel)]
                .into_iter()
                .filter_map(|(key, value)| Some((key, value.as_ref()?)))
                .collect();
        match given.as_slice() {
            [] => {
                let message = format!(
                    "domain `{name}` has none of `program`, `image` and `kernel`; add \
                     `program = \"<crate>\"` to build a crate of this workspace, or \
                     `image = \"<file>\"` (or `kernel = \"<file>\"`) for a prebuilt ELF file or \
                     arm64 Image, or `kernel = \"debian:linux-image-arm64\"` for Debian's Linux"
                );
                Err(self.error_at(table, ErrorKind::ProgramOrImage, message))
            }
            [("program", program)] => Ok(DomainSource::Program {
                name: self.check_name("program name", program)?,
                at: self.position(program.span().start),
            }),
            [(key, value)] => self.check_file_or_debian(key, value),
            [(first, _), .., (_, later)] => {
                let second = given[1].0;
                let message = format!(
                    "domain `{name}` has both `{first}` and `{second}`; keep only one of \
                     `program`, `image` and `kernel`"
                );
                Err(self.error_at(later.span().start, ErrorKind::ProgramOrImage, message))
            }
        }
    }

    /// A domain's `ramdisk`: a file or a `debian:` name.
    fn check_ramdisk(
        &self,
        ramdisk: Option<&Spanned<String>>,
    ) -> Result<Option<DomainSource>, ManifestError> {
        ramdisk.map(|value| self.check_file_or_debian("ramdisk", value)).transpose()
    }

    /// The value of `key` (`image`, `kernel` or `ramdisk`): a file that exists, relative to the
    /// manifest, or (for `kernel` and `ramdisk`) `debian:<name>` naming that key's artifact.
    fn check_file_or_debian(
        &self,
        key: &'static str,
        value: &Spanned<String>,
    ) -> Result<DomainSource, ManifestError> {
        let written = value.get_ref();
        let offset = value.span().start;
        let directory = self.path.parent().unwrap_or(Path::new(""));
        let at = self.position(offset);
        file_or_debian(key, written, directory, "the manifest file", written.clone(), at).map_err(
            |(index, kind, message)| {
                let offset = match index {
                    Some(index) => self.offset_in_string(value.span(), written, index),
                    None => offset,
                };
                self.error_at(offset, kind, message)
            },
        )
    }

    /// A domain's command line from `cmdline`, `root` and `extra`, as xl.cfg combines them (see
    /// the module doc); `cmdline` beside either of the others is refused.
    fn check_domain_cmdline(&self, raw: &RawDomain) -> Result<String, ManifestError> {
        let root = raw.root.as_ref().map(|root| root.get_ref());
        let extra = raw.extra.as_ref().map(|extra| extra.get_ref());
        if let Some(cmdline) = &raw.cmdline {
            let other = [("root", &raw.root), ("extra", &raw.extra)]
                .into_iter()
                .find_map(|(key, value)| Some((key, value.as_ref()?)));
            if let Some((key, value)) = other {
                let message = format!(
                    "`{key}` is given with `cmdline`, which is the whole command line (xl ignores \
                     `root` and `extra` then); move its text into `cmdline`, or replace \
                     `cmdline` by `extra`"
                );
                let offset = value.span().start.max(cmdline.span().start);
                return Err(self.error_at(offset, ErrorKind::CmdlineConflict, message));
            }
            return Ok(cmdline.get_ref().clone());
        }
        Ok(match (root, extra) {
            (Some(root), Some(extra)) => format!("root={root} {extra}"),
            (Some(root), None) => format!("root={root}"),
            (None, Some(extra)) => extra.clone(),
            (None, None) => String::new(),
        })
    }

    /// A domain's `memory`: a size in 1..=[`DOMAIN_MEMORY_MAX_MIB`] MiB.
    fn check_domain_memory(&self, memory: &Spanned<MemoryValue>) -> Result<u32, ManifestError> {
        let out_of_range = || {
            let message = format!(
                "`memory` is {}, outside the 1M to {DOMAIN_MEMORY_MAX_MIB}M a domain may have; \
                 choose a size in that range",
                memory.get_ref()
            );
            self.error_at(memory.span().start, ErrorKind::MemoryOutOfRange, message)
        };
        let mib = self.memory_size(memory, out_of_range)?;
        match u32::try_from(mib) {
            Ok(mib) if (1..=DOMAIN_MEMORY_MAX_MIB).contains(&mib) => Ok(mib),
            _ => Err(out_of_range()),
        }
    }

    /// A domain's `vcpus`: 1..=[`MAX_VCPUS`].
    fn check_vcpus(&self, vcpus: Option<&Spanned<CpuCount>>) -> Result<u32, ManifestError> {
        let Some(vcpus) = vcpus else {
            return Ok(DEFAULT_VCPUS);
        };
        match u32::try_from(vcpus.get_ref().0) {
            Ok(count) if (1..=MAX_VCPUS).contains(&count) => Ok(count),
            _ => {
                let message = format!(
                    "`vcpus` is {}, but a domain has 1 to {MAX_VCPUS} vCPUs; choose a number in \
                     that range",
                    vcpus.get_ref().0
                );
                Err(self.error_at(vcpus.span().start, ErrorKind::VcpusOutOfRange, message))
            }
        }
    }

    /// A domain's `capabilities`: each one parses and none is repeated. Targets are checked across
    /// domains, by [`Source::check_domains`].
    pub(super) fn check_capabilities(
        &self,
        list: &[Spanned<String>],
    ) -> Result<Vec<String>, ManifestError> {
        let mut seen: Vec<Capability<'_>> = Vec::new();
        for text in list {
            let offset = text.span().start;
            let Some(capability) = Capability::parse(text.get_ref()) else {
                let kind = text.get_ref().strip_suffix(':');
                if let Some(kind @ ("dm" | "introspect" | "hardware")) = kind {
                    let what = if kind == "hardware" { "device" } else { "domain" };
                    let message = format!("`{kind}:` names no {what}; write `{kind}:<{what}>`");
                    return Err(self.error_at(offset, ErrorKind::BadCapability, message));
                }
                let message = format!(
                    "{:?} is not a capability; write one of \"control\", \"xenstore\", \
                     \"console\", \"dm:<domain>\", \"hardware:<device>\" or \
                     \"introspect:<domain>\"",
                    text.get_ref()
                );
                return Err(self.error_at(offset, ErrorKind::BadCapability, message));
            };
            if seen.contains(&capability) {
                let message = format!("`{capability}` is listed twice; remove one");
                return Err(self.error_at(offset, ErrorKind::DuplicateCapability, message));
            }
            seen.push(capability);
        }
        Ok(list.iter().map(|text| text.get_ref().clone()).collect())
    }

    /// A domain's `weight`: 1..=65535.
    fn check_weight(&self, weight: Option<&Spanned<Integer>>) -> Result<u16, ManifestError> {
        let Some(weight) = weight else {
            return Ok(DEFAULT_WEIGHT);
        };
        match u16::try_from(weight.get_ref().0) {
            Ok(value) if value >= 1 => Ok(value),
            _ => {
                let message = format!(
                    "`weight` is {}, but a credit2 weight is 1 to {} (Xen's default is \
                     {DEFAULT_WEIGHT}); choose a weight in that range",
                    weight.get_ref().0,
                    u16::MAX
                );
                Err(self.error_at(weight.span().start, ErrorKind::WeightOutOfRange, message))
            }
        }
    }

    /// A domain's `preserved_kib`: 0 (none), or a multiple of 4 up to [`PRESERVED_MAX_KIB`].
    pub(super) fn check_preserved(
        &self,
        kib: Option<&Spanned<Integer>>,
    ) -> Result<u32, ManifestError> {
        let Some(kib) = kib else {
            return Ok(0);
        };
        match u32::try_from(kib.get_ref().0) {
            Ok(value) if value.is_multiple_of(4) && value <= PRESERVED_MAX_KIB => Ok(value),
            _ => {
                let message = format!(
                    "`preserved_kib` is {}, but a preserved region is a whole number of 4 KiB \
                     pages, 0 to {PRESERVED_MAX_KIB} KiB; choose a multiple of 4 in that range",
                    kib.get_ref().0
                );
                Err(self.error_at(kib.span().start, ErrorKind::BadPreserved, message))
            }
        }
    }

    /// A domain's `cap`: 0, or 1..=[`CAP_PERCENT_PER_VCPU`] × `vcpus`.
    fn check_cap(&self, cap: Option<&Spanned<Integer>>, vcpus: u32) -> Result<u16, ManifestError> {
        let Some(cap) = cap else {
            return Ok(0);
        };
        let most = CAP_PERCENT_PER_VCPU * vcpus;
        match u16::try_from(cap.get_ref().0) {
            Ok(value) if u32::from(value) <= most => Ok(value),
            _ => {
                let message = format!(
                    "`cap` is {}, but with {vcpus} vCPU{} a cap is 1 to {most} (percent of one \
                     CPU), or 0 for no cap; choose a value in that range",
                    cap.get_ref().0,
                    if vcpus == 1 { "" } else { "s" }
                );
                Err(self.error_at(cap.span().start, ErrorKind::CapOutOfRange, message))
            }
        }
    }

    /// A domain's `cpus` or `cpus_soft` (`key`): "all", or a non-empty list of distinct pCPU
    /// numbers below [`AFFINITY_CPUS`], as a bit mask.
    fn check_affinity(
        &self,
        key: &str,
        affinity: Option<&Spanned<Affinity>>,
    ) -> Result<u64, ManifestError> {
        let Some(affinity) = affinity else {
            return Ok(AFFINITY_ALL);
        };
        let error = |offset, message| self.error_at(offset, ErrorKind::BadAffinity, message);
        let list = match affinity.get_ref() {
            Affinity::Text(text) if text == "all" => return Ok(AFFINITY_ALL),
            Affinity::Text(text) => {
                let message = format!(
                    "`{key}` is {text:?}; write \"all\" or a list of CPU numbers, such as [0, 2]"
                );
                return Err(error(affinity.span().start, message));
            }
            Affinity::List(list) => list,
        };
        if list.is_empty() {
            let message = format!(
                "`{key}` is an empty list, which allows no CPU; list at least one CPU, or write \
                 \"all\""
            );
            return Err(error(affinity.span().start, message));
        }
        let mut mask = 0u64;
        for cpu in list {
            let number = cpu.get_ref().0;
            let bit = match u32::try_from(number) {
                Ok(number) if number < AFFINITY_CPUS => 1u64 << number,
                _ => {
                    let message = format!(
                        "CPU {number} in `{key}` is not a CPU number; they are 0 to {}",
                        AFFINITY_CPUS - 1
                    );
                    return Err(error(cpu.span().start, message));
                }
            };
            if mask & bit != 0 {
                let message = format!("CPU {number} is listed twice in `{key}`; remove one");
                return Err(error(cpu.span().start, message));
            }
            mask |= bit;
        }
        Ok(mask)
    }

    /// A domain's shutdown actions: xl's defaults, or all three from `restart` (one of
    /// [`RestartPolicy::ALL`]), then each `on_poweroff`, `on_reboot`, `on_crash` given (one of
    /// [`ShutdownAction::ALL`]) in its place.
    fn check_shutdown(&self, raw: &RawDomain) -> Result<ShutdownActions, ManifestError> {
        let mut actions = self.check_restart(raw)?;
        let keys = [
            ("on_poweroff", &raw.on_poweroff, &mut actions.poweroff),
            ("on_reboot", &raw.on_reboot, &mut actions.reboot),
            ("on_crash", &raw.on_crash, &mut actions.crash),
        ];
        for (key, value, action) in keys {
            let Some(value) = value else { continue };
            *action = ShutdownAction::parse(value.get_ref()).ok_or_else(|| {
                let message = bad_shutdown_action(key, value.get_ref());
                self.error_at(value.span().start, ErrorKind::BadShutdownAction, message)
            })?;
        }
        Ok(actions)
    }

    /// A domain's shutdown actions before its `on_*` keys: xl's defaults, or all three from
    /// `restart`.
    pub(super) fn check_restart(&self, raw: &RawDomain) -> Result<ShutdownActions, ManifestError> {
        let Some(restart) = &raw.restart else { return Ok(ShutdownActions::XL_DEFAULT) };
        let policy = RestartPolicy::parse(restart.get_ref()).ok_or_else(|| {
            let message = format!(
                "`restart` is {:?}; write \"never\", \"on-crash\" or \"always\"",
                restart.get_ref()
            );
            self.error_at(restart.span().start, ErrorKind::BadRestart, message)
        })?;
        Ok(policy.actions())
    }
}

/// The value `written` of `key` (`image`, `kernel` or `ramdisk`): a file that exists, relative to
/// `directory` (`relative_to` says what that is, for messages), or (for `kernel` and `ramdisk`)
/// `debian:<name>` naming that key's artifact. The source is named `module` (the file relative to
/// the manifest) and placed `at`. An error is the byte index in `written` it points at (`None`:
/// the whole value), its kind and its message.
pub(super) fn file_or_debian(
    key: &'static str,
    written: &str,
    directory: &Path,
    relative_to: &str,
    module: String,
    at: Position,
) -> Result<DomainSource, (Option<usize>, ErrorKind, String)> {
    if let Some(name) = written.strip_prefix(DebianArtifact::PREFIX).filter(|_| key != "image") {
        let known: Vec<String> = DebianArtifact::ALL
            .iter()
            .filter(|artifact| artifact.key() == key)
            .map(|artifact| format!("\"{}{}\"", DebianArtifact::PREFIX, artifact.name()))
            .collect();
        return match DebianArtifact::parse(name) {
            Some(artifact) if artifact.key() == key => Ok(DomainSource::Debian { artifact, at }),
            Some(artifact) => {
                let message = format!(
                    "`{written}` is a `{}`, not a `{key}`; write `{} = \"{written}\"`, and here {}",
                    artifact.key(),
                    artifact.key(),
                    known.join(" or ")
                );
                Err((None, ErrorKind::UnknownDebianArtifact, message))
            }
            None => {
                let message = format!(
                    "`{written}` names nothing this tool fetches from Debian; a `{key}` may be {} \
                     (or a file path without the `debian:` prefix)",
                    known.join(" or ")
                );
                Err((Some(DebianArtifact::PREFIX.len()), ErrorKind::UnknownDebianArtifact, message))
            }
        };
    }
    let path = directory.join(written);
    if !path.is_file() {
        let message = format!(
            "{key} file `{written}` not found (looked for {}); file paths are relative to \
             {relative_to}",
            path.display()
        );
        return Err((None, ErrorKind::ImageNotFound, message));
    }
    Ok(DomainSource::Image { key, written: module, path, at })
}

/// The message for `key` (`on_poweroff`, `on_reboot`, `on_crash`) set to `value`, which is not
/// one of [`ShutdownAction::ALL`].
pub(super) fn bad_shutdown_action(key: &str, value: &str) -> String {
    format!(
        "`{key}` is {value:?}; write \"destroy\", \"restart\" or \"preserve\" (xl's \
         rename-restart, coredump-destroy, coredump-restart and soft-reset need a toolstack and \
         are not offered)"
    )
}

/// The key whose value keeps the control domain from building a domain at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RunTimeKey {
    /// `capabilities`.
    Capabilities,
    /// `preserved_kib`.
    PreservedKib,
    /// `name`: the xl.cfg text's module is `<name>.cfg`.
    Name,
    /// `program`, `image` or `kernel`.
    Image,
    /// `ramdisk`.
    Ramdisk,
    /// `vuart` or `disk`.
    Devices,
}

/// What keeps the control domain from building `domain`, which is not built at boot, from its
/// `<name>.cfg` module (`xl_write.rs`): a setting xl.cfg has no word for, or a module name longer
/// than the [`XENOLITH_BUNDLE_NAME_LEN`] bytes the control domain can look a module up by
/// (`XENOLITH_DOMCTL_BUNDLE_INFO` cuts longer names). Each with its key, its kind and its message;
/// nothing for a boot domain.
pub(super) fn run_time_problems(domain: &Domain) -> Vec<(RunTimeKey, ErrorKind, String)> {
    if domain.boot {
        return Vec::new();
    }
    let name = &domain.name;
    let run_time = format!(
        "domain `{name}` has `boot = false`, so the control domain creates it at run time from \
         its xl.cfg text (module `{name}.cfg`)"
    );
    let mut problems = Vec::new();
    if !domain.capabilities.is_empty() {
        let message = format!(
            "{run_time}, and xl.cfg has no word for capabilities: the control domain creates only \
             plain guests; remove `capabilities`, or build the domain at boot"
        );
        problems.push((RunTimeKey::Capabilities, ErrorKind::RunTimeSetting, message));
    }
    if domain.preserved_kib != 0 {
        let message = format!(
            "{run_time}, and xl.cfg has no word for a preserved region; remove `preserved_kib`, \
             or build the domain at boot"
        );
        problems.push((RunTimeKey::PreservedKib, ErrorKind::RunTimeSetting, message));
    }
    if domain.vuart || !domain.disks.is_empty() {
        let message = format!(
            "{run_time}, and its emulated devices (`vuart`, `disk`) need a device-model domain \
             that serves a boot domain (its `dm:` target's id is known at boot only); remove \
             them, or build the domain at boot"
        );
        problems.push((RunTimeKey::Devices, ErrorKind::RunTimeSetting, message));
    }
    let most = XENOLITH_BUNDLE_NAME_LEN;
    let modules = [
        (RunTimeKey::Name, "its xl.cfg text", Some(domain.xl_cfg_module_name())),
        (RunTimeKey::Image, "its image", Some(domain.source.module_name())),
        (
            RunTimeKey::Ramdisk,
            "its ramdisk",
            domain.ramdisk.as_ref().map(DomainSource::module_name),
        ),
    ];
    for (key, what, module) in modules {
        let Some(module) = module.filter(|module| module.len() > most) else { continue };
        let fix = match key {
            RunTimeKey::Name => {
                format!("shorten the domain's name to at most {} characters", most - ".cfg".len())
            }
            _ => "give it a shorter path or name".to_owned(),
        };
        let message = format!(
            "domain `{name}` has `boot = false`, so the control domain looks {what} up by module \
             name, but `{module}` is {} bytes, more than the {most} it can look up; {fix}",
            module.len()
        );
        problems.push((key, ErrorKind::RunTimeModuleName, message));
    }
    problems
}
