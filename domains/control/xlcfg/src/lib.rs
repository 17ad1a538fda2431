//! Xen's `xl.cfg(5)` domain configuration files, for Xenolith's control domain and host tools.
//!
//! What it parses: the text of an xl.cfg file, in two layers as Xen does it.
//! - [`syntax`]: libxlu's language (`KEY = VALUE` / `KEY += VALUE` separated by newlines or `;`,
//!   `#` comments, quoted strings with escapes, numbers, nested lists with a trailing comma).
//!   Sources: `tools/libs/util/libxlu_cfg_l.l` (tokens), `tools/libs/util/libxlu_cfg_y.y`
//!   (grammar), `tools/libs/util/libxlu_cfg.c` (escapes, `+=`, which setting wins, messages).
//! - [`domain`]: the keys `name`, `type`, `memory`, `maxmem`, `vcpus`, `maxvcpus`, `cpus`,
//!   `cpus_soft`, `kernel`, `ramdisk`, `extra`, `cmdline`, `root`, `on_poweroff`, `on_reboot`,
//!   `on_crash`, `cpu_weight` (the "weight"), `cap`, `vif`, `disk`, `iomem`, `irqs`,
//!   `dtdev`, with the meaning, defaults and ranges of `docs/man/xl.cfg.5.pod.in`,
//!   `docs/man/xl-disk-configuration.5.pod.in`, `tools/xl/xl_parse.c` and, for Arm guest types and
//!   memory defaults, `tools/libs/light/libxl_arm.c` and `libxl_create.c` (all Xen 4.17).
//!   [`devices`] holds the spec strings (CPU lists, vif, disk, iomem), [`number`] C's `strtol`.
//!
//! Errors are [`ParseError`]s with line, column and reason, shown as `config:LINE:COLUMN: reason`;
//! the reason uses Xen's own words where Xen has a message. Things xl accepts with a remark
//! (unknown keys, which xl ignores silently; `type = "pv"`, which libxl on Arm turns into PVH; vif
//! options xl does not recognise) come back as [`Warning`]s.
//!
//! Limits: the first error stops parsing (libxlu goes on to report more); libxlu's numeric string
//! escapes (`\x..`, `\NNN`) are refused because Xen's code for them never produces a character;
//! `type = "hvm"` is refused (Arm guests are PVH); CPU lists per vCPU and NUMA `node:` lists,
//! deprecated `format:target` disk specs and every key outside the list above are not
//! interpreted. Nothing here checks the host (free memory, existing names, files): that is the
//! caller's job.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod devices;
pub mod domain;
pub mod number;
pub mod syntax;

pub use domain::{parse_domain, Action, DomainConfig, DomainType, Parsed, Warning};
pub use syntax::{parse, Config, Op, ParseError, Pos, Setting, Value};
