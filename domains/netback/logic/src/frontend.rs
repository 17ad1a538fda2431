//! The xenbus side of a vif: what netback writes in its backend directory and what it reads,
//! and checks, in the frontend's, as `xen/include/public/io/netif.h` documents the keys and
//! Linux's netback reads them (`drivers/net/xen-netback/xenbus.c`: `netback_probe`,
//! `read_xenbus_vif_flags`, `connect`, `connect_data_rings`).
//!
//! - [`BACKEND_FEATURES`]: the keys netback writes before it enters `InitWait`.
//! - [`FrontendConfig::read`]: the frontend's keys once it is `Connected` (Linux's netfront
//!   writes them in one transaction, then switches to `Connected`): the queue count
//!   (`multi-queue-num-queues`, 1 when absent), per queue its two ring references and one
//!   event channel (`event-channel`) or two (`event-channel-tx`, `event-channel-rx`), at the
//!   top level for one queue and under `queue-N/` for more, and the frontend's features.
//!   `request-rx-copy` and `feature-rx-notify` are mandatory, as in Linux's netback (the
//!   flipping receive path is gone; netback needs the frontend's rx kicks).
//!
//! # Invariants
//! - Nothing the frontend wrote can make [`FrontendConfig::read`] panic: every value is
//!   parsed with its range checked, and an inconsistent set is an error naming the key.
//! - A config has 1 to [`MAX_QUEUES`] queues.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Queues a vif may have (this backend's `multi-queue-max-queues`; Linux's netback offers
/// the backend domain's CPU count).
pub const MAX_QUEUES: u32 = 4;

/// What netback writes in a vif's backend directory before `InitWait`, as Linux's
/// `netback_probe` does for the features this backend has: scatter-gather, TCPv4
/// segmentation offload, the copying receive path, split event channels and multiple queues.
/// (Not offered: `feature-gso-tcpv6`, `feature-ipv6-csum-offload`, multicast control, the
/// control ring and the hash extension.)
pub const BACKEND_FEATURES: &[(&str, &str)] = &[
    ("feature-sg", "1"),
    ("feature-gso-tcpv4", "1"),
    ("feature-rx-copy", "1"),
    ("feature-rx-flip", "0"),
    ("feature-split-event-channels", "1"),
    ("multi-queue-max-queues", "4"),
];

/// One queue's rings and event channels, as the frontend granted and allocated them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueConfig {
    /// The grant reference of the transmit ring's page.
    pub tx_ring_ref: u32,
    /// The grant reference of the receive ring's page.
    pub rx_ring_ref: u32,
    /// The frontend's port for transmit notifications (and receive ones when not split).
    pub tx_port: u32,
    /// The frontend's port for receive notifications; equal to `tx_port` when not split.
    pub rx_port: u32,
}

impl QueueConfig {
    /// Whether the queue uses one event channel per direction.
    pub fn split(&self) -> bool {
        self.tx_port != self.rx_port
    }
}

/// The frontend's features (`netif.h`), as netback serves them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// `feature-sg`: a received packet may span several slots.
    pub sg: bool,
    /// `feature-gso-tcpv4`: the frontend takes TCPv4 segmentation-offload packets.
    pub gso_tcpv4: bool,
    /// Not `feature-no-csum-offload`: the frontend takes packets whose checksum is blank.
    pub csum_offload: bool,
}

/// What a connecting frontend gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrontendConfig {
    /// Its queues, 1 to [`MAX_QUEUES`].
    pub queues: Vec<QueueConfig>,
    /// Its features.
    pub features: Features,
}

/// Why a frontend cannot be connected: its vif goes to `Closed` with this reason in its
/// backend's `error` node (Linux's `xenbus_dev_fatal`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// A key that must be there is not.
    Missing(String),
    /// A key's value is no number in range.
    Invalid {
        /// The key, relative to the frontend directory.
        key: String,
        /// What it held.
        value: String,
    },
    /// `multi-queue-num-queues` is 0 or more than [`MAX_QUEUES`].
    QueueCount(u32),
    /// `request-rx-copy` is not 1: the flipping receive path is not served.
    NoRxCopy,
    /// `feature-rx-notify` is not 1.
    NoRxNotify,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing(key) => write!(f, "reading {key}: missing"),
            Self::Invalid { key, value } => write!(f, "reading {key}: invalid value {value:?}"),
            Self::QueueCount(count) => {
                write!(f, "guest requested {count} queues, exceeding the maximum of {MAX_QUEUES}")
            }
            Self::NoRxCopy => write!(f, "request-rx-copy: the flipping receive path is not served"),
            Self::NoRxNotify => write!(f, "feature-rx-notify is mandatory"),
        }
    }
}

/// A key's value as a decimal `u32` (what `xenbus_scanf("%u")` accepts, without sign or
/// surrounding space).
fn number(key: &str, value: &str) -> Result<u32, ConfigError> {
    let valid = !value.is_empty() && value.len() <= 10 && value.bytes().all(|b| b.is_ascii_digit());
    valid
        .then(|| value.parse().ok())
        .flatten()
        .ok_or_else(|| ConfigError::Invalid { key: key.into(), value: value.into() })
}

impl FrontendConfig {
    /// Reads the frontend's keys with `get(key)` (the value of `<frontend>/<key>`, `None` when
    /// absent or unreadable) as Linux's netback's `connect` does (module doc).
    pub fn read(mut get: impl FnMut(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut flag = |key: &str, default: bool| -> Result<bool, ConfigError> {
            match get(key) {
                None => Ok(default),
                Some(value) => Ok(number(key, &value)? != 0),
            }
        };
        if !flag("request-rx-copy", false)? {
            return Err(ConfigError::NoRxCopy);
        }
        if !flag("feature-rx-notify", false)? {
            return Err(ConfigError::NoRxNotify);
        }
        let features = Features {
            sg: flag("feature-sg", false)?,
            gso_tcpv4: flag("feature-gso-tcpv4", false)?,
            csum_offload: !flag("feature-no-csum-offload", false)?,
        };
        let count = match get("multi-queue-num-queues") {
            None => 1,
            Some(value) => number("multi-queue-num-queues", &value)?,
        };
        if count == 0 || count > MAX_QUEUES {
            return Err(ConfigError::QueueCount(count));
        }
        let mut queues = Vec::new();
        for index in 0..count {
            let prefix = if count == 1 { String::new() } else { format!("queue-{index}/") };
            let mut key = |name: &str| -> Result<u32, ConfigError> {
                let key = format!("{prefix}{name}");
                let value = get(&key).ok_or_else(|| ConfigError::Missing(key.clone()))?;
                number(&key, &value)
            };
            let tx_ring_ref = key("tx-ring-ref")?;
            let rx_ring_ref = key("rx-ring-ref")?;
            let (tx_port, rx_port) = match key("event-channel-tx") {
                Ok(tx) => (tx, key("event-channel-rx")?),
                Err(ConfigError::Missing(_)) => {
                    let port = key("event-channel")?;
                    (port, port)
                }
                Err(error) => return Err(error),
            };
            queues.push(QueueConfig { tx_ring_ref, rx_ring_ref, tx_port, rx_port });
        }
        Ok(Self { queues, features })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use alloc::string::ToString;

    fn keys(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn read(map: &BTreeMap<String, String>) -> Result<FrontendConfig, ConfigError> {
        FrontendConfig::read(|key| map.get(key).cloned())
    }

    /// What Linux's netfront writes for one queue and one event channel.
    fn linux_one_queue() -> BTreeMap<String, String> {
        keys(&[
            ("tx-ring-ref", "8"),
            ("rx-ring-ref", "9"),
            ("event-channel", "5"),
            ("request-rx-copy", "1"),
            ("feature-rx-notify", "1"),
            ("feature-sg", "1"),
            ("feature-gso-tcpv4", "1"),
            ("feature-gso-tcpv6", "1"),
            ("feature-ipv6-csum-offload", "1"),
            ("multi-queue-num-queues", "1"),
        ])
    }

    #[test]
    fn one_queue_at_the_top_level() {
        let config = read(&linux_one_queue()).unwrap();
        assert_eq!(
            config.queues,
            [QueueConfig { tx_ring_ref: 8, rx_ring_ref: 9, tx_port: 5, rx_port: 5 }]
        );
        assert!(!config.queues[0].split());
        assert_eq!(config.features, Features { sg: true, gso_tcpv4: true, csum_offload: true });
    }

    #[test]
    fn two_queues_with_split_channels_under_queue_n() {
        let mut map = linux_one_queue();
        for key in ["tx-ring-ref", "rx-ring-ref", "event-channel"] {
            map.remove(key);
        }
        map.insert("multi-queue-num-queues".into(), "2".into());
        for (queue, base) in [(0, 10), (1, 20)] {
            for (name, offset) in [
                ("tx-ring-ref", 0),
                ("rx-ring-ref", 1),
                ("event-channel-tx", 2),
                ("event-channel-rx", 3),
            ] {
                map.insert(format!("queue-{queue}/{name}"), format!("{}", base + offset));
            }
        }
        let config = read(&map).unwrap();
        assert_eq!(config.queues.len(), 2);
        assert_eq!(
            config.queues[1],
            QueueConfig { tx_ring_ref: 20, rx_ring_ref: 21, tx_port: 22, rx_port: 23 }
        );
        assert!(config.queues[1].split());
    }

    #[test]
    fn no_queue_count_is_one_queue_and_features_default_off() {
        let map = keys(&[
            ("tx-ring-ref", "1"),
            ("rx-ring-ref", "2"),
            ("event-channel", "3"),
            ("request-rx-copy", "1"),
            ("feature-rx-notify", "1"),
            ("feature-no-csum-offload", "1"),
        ]);
        let config = read(&map).unwrap();
        assert_eq!(config.queues.len(), 1);
        assert_eq!(config.features, Features::default());
    }

    #[test]
    fn mandatory_features_are_refused_when_absent() {
        let mut map = linux_one_queue();
        map.insert("request-rx-copy".into(), "0".into());
        assert_eq!(read(&map), Err(ConfigError::NoRxCopy));
        let mut map = linux_one_queue();
        map.remove("feature-rx-notify");
        assert_eq!(read(&map), Err(ConfigError::NoRxNotify));
    }

    #[test]
    fn queue_counts_out_of_range_are_refused() {
        for count in ["0", "5", "4294967295"] {
            let mut map = linux_one_queue();
            map.insert("multi-queue-num-queues".into(), count.into());
            assert!(matches!(read(&map), Err(ConfigError::QueueCount(_))), "{count}");
        }
    }

    #[test]
    fn bad_numbers_name_their_key() {
        for value in ["", "-1", "0x10", " 8", "99999999999", "8a"] {
            let mut map = linux_one_queue();
            map.insert("tx-ring-ref".into(), value.into());
            assert_eq!(
                read(&map),
                Err(ConfigError::Invalid { key: "tx-ring-ref".into(), value: value.into() }),
                "{value:?}"
            );
        }
    }

    #[test]
    fn missing_queue_keys_are_named() {
        let mut map = linux_one_queue();
        map.insert("multi-queue-num-queues".into(), "2".into());
        assert_eq!(read(&map), Err(ConfigError::Missing("queue-0/tx-ring-ref".into())));
        let mut map = linux_one_queue();
        map.remove("event-channel");
        assert_eq!(read(&map), Err(ConfigError::Missing("event-channel".into())));
        let mut map = linux_one_queue();
        map.insert("event-channel-tx".into(), "7".into());
        assert_eq!(read(&map), Err(ConfigError::Missing("event-channel-rx".into())));
    }

    #[test]
    fn the_advertised_queue_maximum_is_max_queues() {
        let advertised = BACKEND_FEATURES
            .iter()
            .find(|(key, _)| *key == "multi-queue-max-queues")
            .map(|(_, value)| *value);
        assert_eq!(advertised, Some(format!("{MAX_QUEUES}").as_str()));
    }
}
