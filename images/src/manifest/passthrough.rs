//! A boot domain's passed-through hardware: `iomem`, `irqs` and `direct_map` (split from
//! `manifest.rs`; the types and helpers are the parent's). The checks are `xenolith-abi`'s
//! [`Passthrough::check`] and [`Passthrough::shares`], which the core repeats, plus what only the
//! host knows: that the window lies in the RAM `[qemu] memory` gives.

use super::*;

use xenolith_abi::bundle::{FrameRange, Passthrough, PassthroughProblem};
use xenolith_abi::xen::arch_arm::GUEST_RAM0_BASE;
use xenolith_xlcfg::devices::parse_iomem;

/// Where QEMU virt's RAM starts (host-physical; `hw/arm/virt.c`'s `VIRT_MEM`).
const QEMU_RAM_BASE: u64 = GUEST_RAM0_BASE;

impl Source<'_> {
    /// A domain's `iomem` (xl.cfg's `IOMEM_START,NUM_PAGES[@GFN]`, hexadecimal page numbers; the
    /// guest frame, if given, must be the host frame), `irqs` (INTIDs) and `direct_map`
    /// (`START,NUM_PAGES` as `iomem`), checked on their own: the domain's `hardware`, `boot` and
    /// `memory_mib` are those already read.
    pub(super) fn check_passthrough(
        &self,
        raw: &RawDomain,
        hardware: bool,
        boot: bool,
        memory_mib: u32,
    ) -> Result<Passthrough, ManifestError> {
        let range = |text: &Spanned<String>, key: &str| {
            let bad = |why: String| {
                let message = format!("`{key}` entry {:?}: {why}", text.get_ref());
                self.error_at(text.span().start, ErrorKind::BadPassthrough, message)
            };
            let parsed = parse_iomem(text.get_ref()).map_err(bad)?;
            if parsed.gfn.is_some_and(|gfn| gfn != parsed.start) {
                return Err(bad("Xenolith maps passed-through frames 1:1: give no @GFN".into()));
            }
            Ok(FrameRange { first: parsed.start, count: parsed.pages })
        };
        let iomem = raw.iomem.iter().map(|text| range(text, "iomem")).collect::<Result<_, _>>()?;
        let direct_map =
            raw.direct_map.as_ref().map(|text| range(text, "direct_map")).transpose()?;
        let mut irqs = Vec::new();
        for irq in &raw.irqs {
            let intid = u32::try_from(irq.get_ref().0).map_err(|_| {
                let message =
                    format!("`irqs` entry {} is not an interrupt number", irq.get_ref().0);
                self.error_at(irq.span().start, ErrorKind::BadPassthrough, message)
            })?;
            irqs.push(intid);
        }
        let passthrough = Passthrough { iomem, irqs, direct_map };
        passthrough.check(hardware, boot, memory_mib).map_err(|problem| {
            let range_at = |iomem: Option<usize>| match iomem {
                Some(index) => raw.iomem.get(index).map(|value| value.span().start),
                None => raw.direct_map.as_ref().map(|value| value.span().start),
            };
            let at = match problem {
                PassthroughProblem::BadRange { iomem } | PassthroughProblem::Clash { iomem } => {
                    range_at(iomem)
                }
                PassthroughProblem::BadIrq { irq } => raw.irqs.get(irq).map(|v| v.span().start),
                _ => self.passthrough_at(raw),
            };
            let message = format!("{problem}");
            self.error_at(at.unwrap_or(0), ErrorKind::BadPassthrough, message)
        })?;
        Ok(passthrough)
    }

    /// Where the domain's first passthrough key's value starts.
    fn passthrough_at(&self, raw: &RawDomain) -> Option<usize> {
        let iomem = raw.iomem.first().map(|value| value.span().start);
        let irqs = raw.irqs.first().map(|value| value.span().start);
        let window = raw.direct_map.as_ref().map(|value| value.span().start);
        [iomem, irqs, window].into_iter().flatten().min()
    }

    /// Across domains: no two share a frame or an interrupt; each window lies in the RAM QEMU
    /// gives (`memory_mib` from `[qemu] memory`).
    pub(super) fn check_hardware_across(
        &self,
        raws: &[Spanned<RawDomain>],
        domains: &[Domain],
        memory_mib: u64,
        errors: &mut Vec<ManifestError>,
    ) {
        let ram = QEMU_RAM_BASE..QEMU_RAM_BASE + (memory_mib << 20);
        for (index, (raw, domain)) in raws.iter().zip(domains).enumerate() {
            let raw = raw.get_ref();
            let at = self.passthrough_at(raw).unwrap_or(0);
            if let Some(first) =
                domains[..index].iter().position(|d| d.passthrough.shares(&domain.passthrough))
            {
                let message = format!(
                    "domain {:?} is given a frame or interrupt that domain {:?} is given too",
                    domain.name, domains[first].name
                );
                errors.push(self.error_at(at, ErrorKind::BadPassthrough, message));
            }
            for (text, capability) in domain.capabilities.iter().zip(&raw.capabilities) {
                let Some(device) = text.strip_prefix("hardware:").and_then(crate::hardware::find)
                else {
                    continue;
                };
                let node = device.node;
                let covered = domain.passthrough.iomem.iter().any(|range| {
                    range.bytes().is_some_and(|bytes| {
                        bytes.start <= node.reg.0 && node.reg.0 + node.reg.1 <= bytes.end
                    })
                });
                if !covered || !domain.passthrough.irqs.contains(&node.intid) {
                    let message = format!(
                        "`{text}` is at {:#x} with interrupt {}: give the domain `iomem` covering \
                         that page ({:#x},1) and `irqs` with {}",
                        node.reg.0,
                        node.intid,
                        node.reg.0 >> 12,
                        node.intid
                    );
                    let at = capability.span().start;
                    errors.push(self.error_at(at, ErrorKind::BadPassthrough, message));
                }
            }
            let window = domain.passthrough.direct_map.and_then(|window| window.bytes());
            if let (Some(window), Some(text)) = (window, &raw.direct_map) {
                if window.start < ram.start || window.end > ram.end {
                    let message = format!(
                        "`direct_map` {:#x}-{:#x} is not inside the host RAM [qemu] memory gives \
                         ({:#x}-{:#x})",
                        window.start, window.end, ram.start, ram.end
                    );
                    errors.push(self.error_at(
                        text.span().start,
                        ErrorKind::BadPassthrough,
                        message,
                    ));
                }
            }
        }
    }
}
