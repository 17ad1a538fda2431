//! The input-focus key sequence: three presses of the switch key in a row move input focus.
//!
//! Exists because one UART carries typed input for the hypervisor and every domain with a
//! console; the user moves focus with a key sequence, as Xen's `serial_rx`
//! (`xen/drivers/char/console.c`) does with `conswitch`.
//!
//! **The sequence is Ctrl-] (0x1d) three times.** Xen uses Ctrl-A three times, but under QEMU
//! `-nographic` Ctrl-A is the escape of QEMU's own character-device multiplexer: a single Ctrl-A
//! never reaches the guest and each one must be typed as Ctrl-A Ctrl-A. Ctrl-] is not bound by
//! QEMU's mux, is neither a Linux tty control character in the default termios (it is not INTR,
//! QUIT, SUSP, EOF, ERASE, KILL, START, STOP, LNEXT, WERASE or REPRINT) nor common in editors,
//! and it is the key `xl console` users already reach for to leave a console. Its one known clash
//! is `telnet`'s escape: over a telnet serial connection, send it with telnet's `send escape`.
//! The key is configurable ([`crate::Config::switch_key`]); the count, like Xen's, is three.
//!
//! As in Xen, switch keys are held while a sequence is incomplete; any other byte releases them
//! (the held keys, then the byte, go to the focused input unchanged), so a lone or double
//! Ctrl-] still reaches the guest.
//!
//! `xl console <domain>` at the control domain's console moves the focus too
//! ([`crate::request`]); while it stays there, **one** switch key gives it back to the control
//! domain, as one Ctrl-] leaves Xen's `xl console` (xenconsole's `ESCAPE_CHARACTER` 0x1d,
//! `tools/console/client/main.c`), and that key never reaches the domain
//! ([`crate::Console::request_focus`]). Otherwise the sequence of three moves it.
//!
//! # Invariants
//! - `held` is always below [`SWITCH_COUNT`]; it is part of the preserved state.
//! - Every byte fed in comes out exactly once, unless it completes a switch sequence, in which
//!   case the whole sequence ([`SWITCH_COUNT`] keys) is consumed, or it is the one switch key
//!   that leaves `xl console`; keys held when a focus request moves the focus are dropped.

use alloc::vec::Vec;

/// The default switch key: Ctrl-] (ASCII GS, 0x1d).
pub const DEFAULT_SWITCH_KEY: u8 = 0x1d;
/// Presses of the switch key in a row that move focus (Xen: "We eat CTRL-<switch_char> in
/// groups of 3 to switch console input").
pub const SWITCH_COUNT: u8 = 3;

/// What one input byte did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// The byte completed a switch sequence: move focus.
    Switch,
    /// The byte was held as part of a possible switch sequence.
    Held,
    /// Pass `held` switch keys, then `byte`, to the focused input.
    Pass {
        /// Switch keys released before `byte`.
        held: u8,
        /// The byte itself.
        byte: u8,
    },
}

/// Feeds one byte through the sequence detector whose held count is `held`.
pub fn feed(held: &mut u8, switch_key: u8, byte: u8) -> Key {
    if byte == switch_key {
        *held += 1;
        if *held >= SWITCH_COUNT {
            *held = 0;
            return Key::Switch;
        }
        return Key::Held;
    }
    let released = core::mem::take(held);
    Key::Pass { held: released, byte }
}

/// Appends what a [`Key::Pass`] releases to `out`.
pub fn release(out: &mut Vec<u8>, switch_key: u8, held: u8, byte: u8) {
    out.extend(core::iter::repeat_n(switch_key, usize::from(held)));
    out.push(byte);
}
