//! The state each end of a split device writes to its `state` node in xenstore
//! (`xen/include/public/io/xenbus.h`, Xen 4.17: `enum xenbus_state`), and its text form.
//!
//! # Invariants
//! - Numbers are Xen 4.17's; there are no gaps (0 through 8).

/// `enum xenbus_state`: how far the connection of one end of a split device has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum XenbusState {
    /// `XenbusStateUnknown` (0): no state (also what a missing node means).
    Unknown = 0,
    /// `XenbusStateInitialising` (1).
    Initialising = 1,
    /// `XenbusStateInitWait` (2): early initialisation done, waiting for the peer's details.
    InitWait = 2,
    /// `XenbusStateInitialised` (3): waiting for a connection from the peer.
    Initialised = 3,
    /// `XenbusStateConnected` (4).
    Connected = 4,
    /// `XenbusStateClosing` (5): closing, after an error or an unplug.
    Closing = 5,
    /// `XenbusStateClosed` (6).
    Closed = 6,
    /// `XenbusStateReconfiguring` (7).
    Reconfiguring = 7,
    /// `XenbusStateReconfigured` (8).
    Reconfigured = 8,
}

impl XenbusState {
    /// The state numbered `value`, if there is one.
    pub const fn from_u32(value: u32) -> Option<Self> {
        Some(match value {
            0 => Self::Unknown,
            1 => Self::Initialising,
            2 => Self::InitWait,
            3 => Self::Initialised,
            4 => Self::Connected,
            5 => Self::Closing,
            6 => Self::Closed,
            7 => Self::Reconfiguring,
            8 => Self::Reconfigured,
            _ => return None,
        })
    }

    /// The state a `state` node's value names: a decimal number, as Linux's
    /// `xenbus_read_driver_state` reads it (surrounding whitespace and a trailing NUL are
    /// ignored). `None` if it is not one of the states.
    pub fn parse(text: &[u8]) -> Option<Self> {
        let text = core::str::from_utf8(text).ok()?;
        let text = text.trim_end_matches('\0').trim();
        if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        Self::from_u32(text.parse().ok()?)
    }

    /// The number, as written to a `state` node.
    pub const fn number(self) -> u32 {
        self as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_have_xenbus_h_numbers_and_parse_from_text() {
        assert_eq!(XenbusState::InitWait.number(), 2);
        assert_eq!(XenbusState::Connected.number(), 4);
        assert_eq!(XenbusState::Closed.number(), 6);
        for number in 0..=8 {
            let state = XenbusState::from_u32(number).expect("a state");
            assert_eq!(state.number(), number);
            let text = format!("{number}");
            assert_eq!(XenbusState::parse(text.as_bytes()), Some(state));
        }
        assert_eq!(XenbusState::parse(b"4\0"), Some(XenbusState::Connected));
        assert_eq!(XenbusState::parse(b" 5\n"), Some(XenbusState::Closing));
        for bad in [&b""[..], b"9", b"-1", b"+4", b"4x", b"0x4", b"99999999999999999999"] {
            assert_eq!(XenbusState::parse(bad), None, "{bad:?}");
        }
    }
}
