//! `CONTROL <command>|[<parameters>|]`: the administrator's commands (privileged only).
//!
//! Exists to answer the commands of Xen's `tools/xenstore/xenstored_control.c` that mean
//! something without a file system: `check`, `log on|off`, `print <string>`,
//! `quota [set <name> <value>|<domid>]` and `help`, with Xen's output formats. Unknown commands
//! and wrong parameter counts are `EINVAL`, as in Xen's `do_control()`.
//!
//! # Invariants
//! - A quota can only be set to a value of at least 1 (Xen's `quota_set()`).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::errno::Errno;
use crate::ops::atoi;
use crate::quota::ITEMS;
use crate::store::{Effect, Reply, Store};
use crate::wire;
use crate::DomId;

/// The commands and their parameter synopses, in `help`'s order.
const COMMANDS: [(&str, &str); 5] = [
    ("check", ""),
    ("log", "on|off"),
    ("print", "<string>"),
    ("quota", "[set <name> <val>|<domid>]"),
    ("help", ""),
];

/// A reply carrying `text` and its NUL.
fn text_reply(text: String) -> Reply {
    let mut payload = text.into_bytes();
    payload.push(0);
    Reply::bytes(payload)
}

impl Store {
    /// `CONTROL`.
    pub(crate) fn control(&mut self, payload: &[u8]) -> Result<Reply, Errno> {
        let args: Vec<&[u8]> = wire::strings(payload).collect();
        let [command, params @ ..] = &args[..] else { return Err(Errno::Inval) };
        match (*command, params) {
            (b"check", []) => match self.tree.check() {
                Ok(()) => Ok(Reply::ok()),
                Err(_) => Err(Errno::Io),
            },
            (b"log", [switch]) => {
                let enabled = match *switch {
                    b"on" => true,
                    b"off" => false,
                    _ => return Err(Errno::Inval),
                };
                self.logging = enabled;
                self.effects.push(Effect::Logging { enabled });
                Ok(Reply::ok())
            }
            (b"print", [text]) => {
                self.effects.push(Effect::Print { text: String::from_utf8_lossy(text).into() });
                Ok(Reply::ok())
            }
            (b"quota", []) => {
                let mut text = String::from("Quota settings:\n");
                for item in &ITEMS {
                    // Writing to a String cannot fail.
                    let _ = writeln!(
                        text,
                        "{:<17}: {:>8} {}",
                        item.name,
                        (item.get)(&self.quotas),
                        item.description
                    );
                }
                Ok(text_reply(text))
            }
            (b"quota", [set, name, value]) if *set == b"set" => {
                let value =
                    u32::try_from(atoi(value)).ok().filter(|&v| v >= 1).ok_or(Errno::Inval)?;
                let item =
                    ITEMS.iter().find(|item| item.name.as_bytes() == *name).ok_or(Errno::Inval)?;
                (item.set)(&mut self.quotas, value);
                Ok(Reply::ok())
            }
            (b"quota", [domid]) => self.quota_report(atoi(domid)),
            (b"help", []) => {
                let mut text = String::new();
                for (name, synopsis) in COMMANDS {
                    let _ = writeln!(text, "{name}\t{synopsis}");
                }
                Ok(text_reply(text))
            }
            _ => Err(Errno::Inval),
        }
    }

    /// `CONTROL quota <domid>`: the domain's usage (Xen's `domain_get_quota()`).
    fn quota_report(&self, domid: i32) -> Result<Reply, Errno> {
        let domid = DomId::try_from(domid).map_err(|_| Errno::Noent)?;
        let conn = self.connections.get(&domid);
        if conn.is_none() && !self.tree.owns_any(domid) {
            return Err(Errno::Noent);
        }
        let count = |f: fn(&crate::connection::Connection) -> usize| conn.map_or(0, f);
        let mut text = String::new();
        let _ = writeln!(text, "Domain {domid}:");
        for (name, value) in [
            ("nodes", self.tree.owned(domid) as usize),
            ("watches", count(|c| c.watches.len())),
            ("transactions", count(|c| c.transactions.len())),
            ("outstanding", count(|c| c.replies as usize)),
        ] {
            let _ = writeln!(text, "{name:<16}: {value:>8}");
        }
        Ok(text_reply(text))
    }
}
