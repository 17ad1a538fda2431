//! The device model's configuration: what it serves, read from its own `/chosen/bootargs`,
//! which the host tool writes from the target's manifest entry.
//!
//! Keys (space separated among other arguments; numbers decimal or `0x` hexadecimal):
//! - `xenolith.dm.target=<domid>`: the one guest served (required);
//! - `xenolith.dm.ram=<base>:<size>`: its RAM, one bank, in bytes (required; page-aligned);
//! - `xenolith.dm.uart=<base>:<intid>`: an SBSA/PL011 UART, a 4 KiB window (optional);
//! - `xenolith.dm.blk=<base>:<intid>[:ro][,...]`: virtio-blk devices, each a virtio-mmio window
//!   of [`VIRTIO_MMIO_SIZE`] bytes (optional; up to [`MAX_BLK`] may be listed, but only one disk,
//!   the domain's initial ramdisk, exists, so more than one is refused);
//! - `xenolith.dm.net=<base>:<intid>[:mac=<aa-bb-cc-dd-ee-ff>]`: a virtio-net device looped back
//!   ([`crate::net`]), a virtio-mmio window of [`VIRTIO_MMIO_SIZE`] bytes (optional; one at
//!   most). The MAC address is six hexadecimal bytes joined by `-` (`:` separates fields
//!   here), unicast; [`crate::net::DEFAULT_MAC`] if absent.
//!
//! Any other `xenolith.dm.` key is refused (a misspelt key must not silently drop a device);
//! other arguments are not this module's. A refused configuration is a manifest bug: the
//! domain reports the [`ConfigError`] (which names the key) and crashes.
//!
//! # Invariants
//! - A parsed [`Config`] has a target, a page-aligned RAM bank that does not wrap, at least one
//!   device, device windows that neither overlap each other nor the RAM, each interrupt an SPI
//!   (INTID 32..=1019) used by one device only, at most one virtio-blk device and at most one
//!   virtio-net device with a unicast MAC address.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// The prefix of every key this module reads.
pub const PREFIX: &str = "xenolith.dm.";
/// A virtio-mmio device's window (Xen's `VIRTIO_MMIO_DEV_SIZE`, `tools/libs/light/libxl_arm.h`).
pub const VIRTIO_MMIO_SIZE: u64 = 0x200;
/// The UART's window (Xen's `GUEST_PL011_SIZE`, `xen/include/public/arch-arm.h`).
pub const UART_SIZE: u64 = crate::pl011::FRAME_SIZE;
/// virtio-blk devices `xenolith.dm.blk` may list.
pub const MAX_BLK: usize = 4;
/// The first SPI's INTID (GICv3: SPIs are INTIDs 32..=1019).
const FIRST_SPI: u32 = 32;
/// The last SPI's INTID.
const LAST_SPI: u32 = 1019;
/// The first domain id Xen reserves (`DOMID_FIRST_RESERVED`, `xen/include/public/xen.h`).
const DOMID_FIRST_RESERVED: u64 = 0x7ff0;
const PAGE: u64 = 4096;

/// A device window and its interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// The window's guest-physical base.
    pub base: u64,
    /// The SPI's INTID.
    pub intid: u32,
}

/// A virtio-blk device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Blk {
    /// Its virtio-mmio window and interrupt.
    pub window: Window,
    /// `:ro`: the guest may not write the disk.
    pub read_only: bool,
}

/// A virtio-net device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Net {
    /// Its virtio-mmio window and interrupt.
    pub window: Window,
    /// Its MAC address.
    pub mac: [u8; 6],
}

/// What the device model serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The target domain.
    pub target: u16,
    /// The target's RAM: base and size in bytes.
    pub ram: (u64, u64),
    /// The UART, if any.
    pub uart: Option<Window>,
    /// The virtio-blk devices (at most one).
    pub blk: Vec<Blk>,
    /// The virtio-net device, if any.
    pub net: Option<Net>,
}

/// What is wrong with a key's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A required key is absent.
    Missing,
    /// The key is given twice.
    Repeated,
    /// A key this module does not know (its full name).
    Unknown(String),
    /// The value does not have the key's form (which is given).
    Form(&'static str),
    /// A number that does not parse or does not fit (its text).
    Number(String),
    /// A base or size not aligned as it must be (to this many bytes).
    Unaligned(u64),
    /// A range that runs past the end of the address space, or an empty one.
    Range,
    /// An interrupt that is not an SPI.
    NotSpi(u32),
    /// A domain id Xen reserves.
    ReservedDomain(u64),
    /// More entries than allowed (the limit).
    TooMany(usize),
    /// More than one virtio-blk device: only one disk (the initial ramdisk) exists.
    OneDisk,
    /// The window overlaps another device's or the RAM (what it overlaps).
    Overlaps(&'static str),
    /// The interrupt is another device's too.
    SharedInterrupt(u32),
    /// A MAC address that is not six `-`-joined hexadecimal bytes, or a multicast one.
    Mac(String),
    /// No device at all: nothing to serve.
    Nothing,
}

/// A refused configuration: the key and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The key, in full (`xenolith.dm.blk`).
    pub key: &'static str,
    /// What is wrong.
    pub problem: Problem,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.key;
        match &self.problem {
            Problem::Missing => write!(f, "`{key}` is missing from the bootargs"),
            Problem::Repeated => write!(f, "`{key}` is given more than once"),
            Problem::Unknown(name) => write!(
                f,
                "`{name}` is not a device-model key (`{TARGET}`, `{RAM}`, `{UART}`, `{BLK}`, \
                 `{NET}`)"
            ),
            Problem::Form(form) => write!(f, "`{key}` must be `{form}`"),
            Problem::Number(text) => write!(f, "`{key}`: `{text}` is not a number that fits"),
            Problem::Unaligned(to) => write!(f, "`{key}`: not aligned to {to:#x} bytes"),
            Problem::Range => write!(f, "`{key}`: an empty range or one past the address space"),
            Problem::NotSpi(intid) => write!(f, "`{key}`: INTID {intid} is not an SPI (32..=1019)"),
            Problem::ReservedDomain(id) => write!(f, "`{key}`: domain id {id:#x} is reserved"),
            Problem::TooMany(limit) => write!(f, "`{key}`: more than {limit} entries"),
            Problem::OneDisk => write!(
                f,
                "`{key}`: more than one virtio-blk device, but only one disk (the domain's \
                 initial ramdisk) is supported"
            ),
            Problem::Overlaps(other) => write!(f, "`{key}`: the window overlaps {other}"),
            Problem::SharedInterrupt(intid) => {
                write!(f, "`{key}`: INTID {intid} is another device's too")
            }
            Problem::Mac(text) => write!(
                f,
                "`{key}`: `{text}` is not a unicast MAC address of six `-`-joined hex bytes"
            ),
            Problem::Nothing => {
                write!(f, "`{key}`: no `{UART}`, `{BLK}` or `{NET}`: nothing to serve")
            }
        }
    }
}

const TARGET: &str = "xenolith.dm.target";
const RAM: &str = "xenolith.dm.ram";
const UART: &str = "xenolith.dm.uart";
const BLK: &str = "xenolith.dm.blk";
const NET: &str = "xenolith.dm.net";

/// A MAC address `aa-bb-cc-dd-ee-ff`, unicast (the group bit, bit 0 of the first byte, clear).
fn mac(text: &str) -> Result<[u8; 6], ConfigError> {
    let refused = || error(NET, Problem::Mac(text.into()));
    let mut mac = [0; 6];
    let mut bytes = text.split('-');
    for byte in &mut mac {
        let field = bytes.next().ok_or_else(refused)?;
        if field.len() != 2 {
            return Err(refused());
        }
        *byte = u8::from_str_radix(field, 16).map_err(|_| refused())?;
    }
    if bytes.next().is_some() || mac[0] & 1 != 0 {
        return Err(refused());
    }
    Ok(mac)
}

/// A number in decimal or `0x` hexadecimal.
fn number(key: &'static str, text: &str) -> Result<u64, ConfigError> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| ConfigError { key, problem: Problem::Number(text.into()) })
}

fn error(key: &'static str, problem: Problem) -> ConfigError {
    ConfigError { key, problem }
}

/// `<base>:<intid>` and the rest of the fields.
fn window<'a>(
    key: &'static str,
    text: &'a str,
    form: &'static str,
    align: u64,
) -> Result<(Window, Vec<&'a str>), ConfigError> {
    let mut fields = text.split(':');
    let (Some(base), Some(intid)) = (fields.next(), fields.next()) else {
        return Err(error(key, Problem::Form(form)));
    };
    let base = number(key, base)?;
    let intid = number(key, intid)?;
    if !base.is_multiple_of(align) {
        return Err(error(key, Problem::Unaligned(align)));
    }
    let intid =
        u32::try_from(intid).map_err(|_| error(key, Problem::Number(alloc::format!("{intid}"))))?;
    if !(FIRST_SPI..=LAST_SPI).contains(&intid) {
        return Err(error(key, Problem::NotSpi(intid)));
    }
    Ok((Window { base, intid }, fields.collect()))
}

impl Config {
    /// Reads the configuration from a command line.
    pub fn parse(bootargs: &str) -> Result<Self, ConfigError> {
        let mut values: [Option<&str>; 5] = [None; 5];
        let keys = [TARGET, RAM, UART, BLK, NET];
        for token in bootargs.split_ascii_whitespace() {
            let name = token.split_once('=').map_or(token, |(name, _)| name);
            if !name.starts_with(PREFIX) {
                continue;
            }
            let Some(index) = keys.iter().position(|key| *key == name) else {
                return Err(error("xenolith.dm.*", Problem::Unknown(name.into())));
            };
            let Some((_, value)) = token.split_once('=') else {
                return Err(error(keys[index], Problem::Form("key=value")));
            };
            if values[index].replace(value).is_some() {
                return Err(error(keys[index], Problem::Repeated));
            }
        }
        let [target, ram, uart, blk, net] = values;

        let target = number(TARGET, target.ok_or(error(TARGET, Problem::Missing))?)?;
        if target >= DOMID_FIRST_RESERVED {
            return Err(error(TARGET, Problem::ReservedDomain(target)));
        }

        let ram = ram.ok_or(error(RAM, Problem::Missing))?;
        let Some((base, size)) = ram.split_once(':') else {
            return Err(error(RAM, Problem::Form("<base>:<size>")));
        };
        let (base, size) = (number(RAM, base)?, number(RAM, size)?);
        if !base.is_multiple_of(PAGE) || !size.is_multiple_of(PAGE) {
            return Err(error(RAM, Problem::Unaligned(PAGE)));
        }
        if size == 0 || base.checked_add(size).is_none() {
            return Err(error(RAM, Problem::Range));
        }

        let uart = match uart {
            None => None,
            Some(text) => {
                let (window, rest) = window(UART, text, "<base>:<intid>", UART_SIZE)?;
                if !rest.is_empty() {
                    return Err(error(UART, Problem::Form("<base>:<intid>")));
                }
                Some(window)
            }
        };

        let mut blks = Vec::new();
        for entry in blk.into_iter().flat_map(|list| list.split(',')) {
            if blks.len() == MAX_BLK {
                return Err(error(BLK, Problem::TooMany(MAX_BLK)));
            }
            let form = "<base>:<intid>[:ro]";
            let (window, rest) = window(BLK, entry, form, VIRTIO_MMIO_SIZE)?;
            let read_only = match rest[..] {
                [] => false,
                ["ro"] => true,
                _ => return Err(error(BLK, Problem::Form(form))),
            };
            blks.push(Blk { window, read_only });
        }
        if blks.len() > 1 {
            return Err(error(BLK, Problem::OneDisk));
        }

        let net = match net {
            None => None,
            Some(text) => {
                let form = "<base>:<intid>[:mac=<aa-bb-cc-dd-ee-ff>]";
                if text.contains(',') {
                    return Err(error(NET, Problem::TooMany(1)));
                }
                let (window, rest) = window(NET, text, form, VIRTIO_MMIO_SIZE)?;
                let mac = match rest[..] {
                    [] => crate::net::DEFAULT_MAC,
                    [field] => match field.strip_prefix("mac=") {
                        Some(text) => mac(text)?,
                        None => return Err(error(NET, Problem::Form(form))),
                    },
                    _ => return Err(error(NET, Problem::Form(form))),
                };
                Some(Net { window, mac })
            }
        };

        let config = Self { target: target as u16, ram: (base, size), uart, blk: blks, net };
        config.check_windows()?;
        Ok(config)
    }

    /// Every device's window (base, size) and interrupt, with its key: the UART first, then
    /// the virtio-blk devices in order, then the virtio-net device.
    pub fn windows(&self) -> impl Iterator<Item = (&'static str, u64, u64, u32)> + '_ {
        let uart = self.uart.map(|w| (UART, w.base, UART_SIZE, w.intid));
        let blk = self.blk.iter().map(|b| (BLK, b.window.base, VIRTIO_MMIO_SIZE, b.window.intid));
        let net = self.net.map(|n| (NET, n.window.base, VIRTIO_MMIO_SIZE, n.window.intid));
        uart.into_iter().chain(blk).chain(net)
    }

    /// No window wraps, overlaps another or the RAM; no interrupt is shared; something is served.
    fn check_windows(&self) -> Result<(), ConfigError> {
        let windows: Vec<_> = self.windows().collect();
        if windows.is_empty() {
            return Err(error(TARGET, Problem::Nothing));
        }
        let overlaps = |a: u64, a_size: u64, b: u64, b_size: u64| a < b + b_size && b < a + a_size;
        let (ram_base, ram_size) = self.ram;
        for (index, &(key, base, size, intid)) in windows.iter().enumerate() {
            if base.checked_add(size).is_none() {
                return Err(error(key, Problem::Range));
            }
            if overlaps(base, size, ram_base, ram_size) {
                return Err(error(key, Problem::Overlaps("the target's RAM")));
            }
            for &(other, other_base, other_size, other_intid) in &windows[..index] {
                if overlaps(base, size, other_base, other_size) {
                    return Err(error(key, Problem::Overlaps(other)));
                }
                if intid == other_intid {
                    return Err(error(key, Problem::SharedInterrupt(intid)));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "console=hvc0 xenolith.dm.target=3 xenolith.dm.ram=0x40000000:0x8000000 \
                        xenolith.dm.uart=0x22000000:37 xenolith.dm.blk=0x2000000:40:ro";

    #[test]
    fn a_full_configuration() {
        let config = Config::parse(GOOD).unwrap();
        assert_eq!(
            config,
            Config {
                target: 3,
                ram: (0x4000_0000, 0x800_0000),
                uart: Some(Window { base: 0x2200_0000, intid: 37 }),
                blk: alloc::vec![Blk {
                    window: Window { base: 0x200_0000, intid: 40 },
                    read_only: true
                }],
                net: None,
            }
        );
        let windows: Vec<_> = config.windows().collect();
        assert_eq!(windows, [(UART, 0x2200_0000, 0x1000, 37), (BLK, 0x200_0000, 0x200, 40)]);
        // Decimal, a blk alone, writable.
        let config = Config::parse(
            "xenolith.dm.target=1 xenolith.dm.ram=1073741824:4096 xenolith.dm.blk=33554944:41",
        )
        .unwrap();
        assert_eq!(config.uart, None);
        assert_eq!(config.ram, (0x4000_0000, 0x1000));
        assert_eq!(
            config.blk,
            [Blk { window: Window { base: 0x200_0200, intid: 41 }, read_only: false }]
        );
    }

    fn refused(bootargs: &str) -> ConfigError {
        Config::parse(bootargs).unwrap_err()
    }

    fn with(key_value: &str) -> String {
        let key = key_value.split('=').next().unwrap();
        let mut tokens: Vec<&str> =
            GOOD.split_ascii_whitespace().filter(|t| !t.starts_with(key)).collect();
        tokens.push(key_value);
        tokens.join(" ")
    }

    /// One case per problem, each naming its key.
    #[test]
    fn each_problem_names_its_key() {
        let cases: [(String, &str, Problem); 29] = [
            (GOOD.replace("xenolith.dm.target=3 ", ""), TARGET, Problem::Missing),
            (GOOD.replace("xenolith.dm.ram=0x40000000:0x8000000 ", ""), RAM, Problem::Missing),
            (alloc::format!("{GOOD} xenolith.dm.uart=0x23000000:38"), UART, Problem::Repeated),
            (
                alloc::format!("{GOOD} xenolith.dm.disk=1"),
                "xenolith.dm.*",
                Problem::Unknown("xenolith.dm.disk".into()),
            ),
            (alloc::format!("{GOOD} xenolith.dm.blk"), BLK, Problem::Form("key=value")),
            (with("xenolith.dm.target=three"), TARGET, Problem::Number("three".into())),
            (with("xenolith.dm.target=0x7ff0"), TARGET, Problem::ReservedDomain(0x7ff0)),
            (with("xenolith.dm.ram=0x40000000"), RAM, Problem::Form("<base>:<size>")),
            (with("xenolith.dm.ram=0x40000800:0x1000"), RAM, Problem::Unaligned(4096)),
            (with("xenolith.dm.ram=0x40000000:0"), RAM, Problem::Range),
            (with("xenolith.dm.ram=0xfffffffffffff000:0x2000"), RAM, Problem::Range),
            (with("xenolith.dm.uart=0x22000000"), UART, Problem::Form("<base>:<intid>")),
            (with("xenolith.dm.uart=0x22000000:37:ro"), UART, Problem::Form("<base>:<intid>")),
            (with("xenolith.dm.uart=0x22000100:37"), UART, Problem::Unaligned(0x1000)),
            (with("xenolith.dm.uart=0x22000000:31"), UART, Problem::NotSpi(31)),
            (with("xenolith.dm.blk=0x2000100:40"), BLK, Problem::Unaligned(0x200)),
            (with("xenolith.dm.blk=0x2000000:40:rw"), BLK, Problem::Form("<base>:<intid>[:ro]")),
            (with("xenolith.dm.blk=0x2000000:1020"), BLK, Problem::NotSpi(1020)),
            (with("xenolith.dm.blk=0x2000000:40,0x2000200:41"), BLK, Problem::OneDisk),
            (
                with("xenolith.dm.blk=0x2000000:40,0x2000200:41,0x2000400:42,0x2000600:43,0x2000800:44"),
                BLK,
                Problem::TooMany(4),
            ),
            (with("xenolith.dm.blk=0x40001000:40"), BLK, Problem::Overlaps("the target's RAM")),
            (with("xenolith.dm.blk=0x22000e00:40"), BLK, Problem::Overlaps(UART)),
            (with("xenolith.dm.net=0x2000000:41"), NET, Problem::Overlaps(BLK)),
            (with("xenolith.dm.net=0x2000200:40"), NET, Problem::SharedInterrupt(40)),
            (with("xenolith.dm.net=0x2000200:41,0x2000400:42"), NET, Problem::TooMany(1)),
            (
                with("xenolith.dm.net=0x2000200:41:02-00-00-00-00-01"),
                NET,
                Problem::Form("<base>:<intid>[:mac=<aa-bb-cc-dd-ee-ff>]"),
            ),
            (
                with("xenolith.dm.net=0x2000200:41:mac=03-00-00-00-00-01"),
                NET,
                Problem::Mac("03-00-00-00-00-01".into()),
            ),
            (
                with("xenolith.dm.net=0x2000200:41:mac=02-00-00-00-00"),
                NET,
                Problem::Mac("02-00-00-00-00".into()),
            ),
            (
                with("xenolith.dm.net=0x2000200:41:mac=02-00-00-00-00-1g"),
                NET,
                Problem::Mac("02-00-00-00-00-1g".into()),
            ),
        ];
        for (bootargs, key, problem) in cases {
            let named = match &problem {
                Problem::Unknown(name) => name.clone(),
                _ => key.into(),
            };
            let error = refused(&bootargs);
            assert_eq!(error, ConfigError { key, problem }, "{bootargs}");
            assert!(alloc::format!("{error}").contains(&named), "{error}");
        }
        let shared = refused(&with("xenolith.dm.blk=0x2000000:37"));
        assert_eq!(shared, ConfigError { key: BLK, problem: Problem::SharedInterrupt(37) });
        let nothing = "xenolith.dm.target=3 xenolith.dm.ram=0x40000000:0x1000";
        assert_eq!(refused(nothing), ConfigError { key: TARGET, problem: Problem::Nothing });
        let wraps = "xenolith.dm.target=3 xenolith.dm.ram=0x40000000:0x1000 \
                     xenolith.dm.uart=0xfffffffffffff000:40";
        assert_eq!(refused(wraps), ConfigError { key: UART, problem: Problem::Range });
    }

    #[test]
    fn a_net_device() {
        let config = Config::parse(&with("xenolith.dm.net=0x2000200:41")).unwrap();
        let window = Window { base: 0x200_0200, intid: 41 };
        assert_eq!(config.net, Some(Net { window, mac: crate::net::DEFAULT_MAC }));
        let windows: Vec<_> = config.windows().collect();
        assert_eq!(windows[2], (NET, 0x200_0200, 0x200, 41));
        let alone = "xenolith.dm.target=1 xenolith.dm.ram=0x40000000:0x1000 \
                     xenolith.dm.net=0x2000000:33:mac=52-54-00-aB-cd-EF";
        let config = Config::parse(alone).unwrap();
        let window = Window { base: 0x200_0000, intid: 33 };
        let mac = [0x52, 0x54, 0x00, 0xab, 0xcd, 0xef];
        assert_eq!(config.net, Some(Net { window, mac }));
        assert!(config.blk.is_empty() && config.uart.is_none());
    }

    /// Other arguments, and keys merely sharing the prefix's start, are not ours.
    #[test]
    fn other_arguments_are_ignored() {
        let config = Config::parse(&alloc::format!("xenolith.dmx=1 dm.target=9 {GOOD} quiet"));
        assert_eq!(config.unwrap().target, 3);
    }
}
