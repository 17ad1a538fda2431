//! virtio-net (virtio 1.2 §5.1; numbers from Linux's `include/uapi/linux/virtio_net.h`),
//! looped back: every frame the driver transmits is received by the same driver, as if its
//! port were cabled to itself. There is no switch and no other guest (issue 18's
//! "looped back" form).
//!
//! Queues: 0 is `receiveq1`, 1 is `transmitq1` (§5.1.2; no control queue, no multiqueue).
//! Each buffer, either way, starts with the 12-byte `struct virtio_net_hdr_mrg_rxbuf`
//! (`VIRTIO_F_VERSION_1` makes `num_buffers` part of the header even without
//! `VIRTIO_NET_F_MRG_RXBUF`, §5.1.6): `flags: u8`, `gso_type: u8`, `hdr_len`, `gso_size`,
//! `csum_start`, `csum_offset`, `num_buffers` (`le16` each). Framing across descriptors is free.
//!
//! Offered: `VIRTIO_F_VERSION_1`, `VIRTIO_F_INDIRECT_DESC`, `VIRTIO_F_EVENT_IDX`,
//! `VIRTIO_NET_F_MAC` and `VIRTIO_NET_F_STATUS` (the link always up). No checksum or
//! segmentation offload is offered, so the driver sends whole frames with checksums done and
//! a header of zeroes; the model ignores the transmitted header's fields. The configuration
//! space is `mac[6]` and `status: le16` (8 bytes; `max_virtqueue_pairs` and later fields
//! belong to features not offered).
//!
//! A notify of the transmit queue loops every available transmit chain back, in order: the
//! frame (the readable bytes after the header) goes into the next available receive chain
//! (its writable bytes: a header of zeroes with `num_buffers` 1, then the frame; the used
//! length is 12 + the frame's length), then the transmit chain is used (length 0). A frame is
//! dropped, and counted in [`Dropped`], when:
//! - it is shorter than an Ethernet header ([`ETH_HLEN`]) or longer than [`MAX_FRAME`];
//! - no receive chain is available (the driver has not posted one): the frame is lost, as a
//!   port with no buffers loses it; no receive chain is consumed;
//! - the receive chain popped for it is too small for header and frame: that chain is used
//!   with length 0 (nothing written; Linux counts it as a short frame and posts it again).
//!
//! A notify of the receive queue does nothing: receive chains wait for frames.
//!
//! Faults (the device needs a reset, [`DeviceFault`]): a chain the virtqueue rules refuse
//! ([`crate::virtqueue`]), on either queue; a transmit chain shorter than the header or with a
//! writable buffer; a receive chain with a readable buffer. A fault met on the receive queue
//! while serving a transmit notify is reported as the transmit queue's (the queue notified).
//!
//! Restart ([`crate::state`]'s rule): a transmit chain popped but not yet used when the model
//! was killed is done again by the new model, so its frame is looped back again. A kill
//! after the receive chain was used but before the transmit chain was can thus deliver one
//! frame twice; a frame is never lost by a restart. Ethernet promises neither order across
//! loss nor uniqueness, so a duplicate is within what a driver must expect. Receive chains are
//! used as soon as they are popped, so none is left half-done.
//!
//! # Invariants
//! - No chain content panics; every frame delivered is byte for byte the one transmitted,
//!   behind a header of zeroes with `num_buffers` 1.

use alloc::vec::Vec;

use crate::memory::{GuestMemory, OutsideRam};
use crate::mmio::{Device, DeviceFault, F_VERSION_1};
use crate::virtqueue::{Chain, Queue, F_EVENT_IDX, F_INDIRECT_DESC, MAX_QUEUE_SIZE};

/// virtio-net's device id (§5.1.1).
pub const DEVICE_ID: u32 = 1;
/// `mac` is valid (`VIRTIO_NET_F_MAC`, bit 5).
pub const F_MAC: u64 = 1 << 5;
/// `status` is valid (`VIRTIO_NET_F_STATUS`, bit 16).
pub const F_STATUS: u64 = 1 << 16;
/// The link is up (`VIRTIO_NET_S_LINK_UP`).
pub const S_LINK_UP: u16 = 1;
/// The header's length: `struct virtio_net_hdr_mrg_rxbuf` (§5.1.6; 12 with
/// `VIRTIO_F_VERSION_1`).
pub const HEADER: usize = 12;
/// The receive queue (`receiveq1`, §5.1.2).
pub const RECEIVEQ: u16 = 0;
/// The transmit queue (`transmitq1`, §5.1.2).
pub const TRANSMITQ: u16 = 1;
/// An Ethernet header's length (Linux's `ETH_HLEN`, `include/uapi/linux/if_ether.h`).
pub const ETH_HLEN: usize = 14;
/// The longest frame looped back: an Ethernet header, a VLAN tag and 1500 bytes of payload
/// (Linux virtio_net's `GOOD_PACKET_LEN`, `ETH_HLEN + VLAN_HLEN + ETH_DATA_LEN`, the size of
/// the receive buffers it posts without offloads), no frame check sequence.
pub const MAX_FRAME: usize = 1518;
/// The configuration space's length: `mac[6]` and `status`.
pub const CONFIG_LENGTH: usize = 8;
/// The MAC address when none is configured: locally administered, unicast (`02:58:4e`, "XN").
pub const DEFAULT_MAC: [u8; 6] = [0x02, 0x58, 0x4e, 0x00, 0x00, 0x01];

/// Frames dropped, by reason (module doc); for the log and the tests, not saved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Shorter than [`ETH_HLEN`] or longer than [`MAX_FRAME`].
    pub size: u64,
    /// No receive chain available.
    pub no_buffer: u64,
    /// The receive chain too small for header and frame.
    pub did_not_fit: u64,
}

/// A looped-back virtio-net device.
#[derive(Debug)]
pub struct Net {
    config: [u8; CONFIG_LENGTH],
    frame: Vec<u8>,
    looped: u64,
    dropped: Dropped,
}

impl Net {
    /// A device with MAC address `mac`, link up.
    pub fn new(mac: [u8; 6]) -> Self {
        let mut config = [0; CONFIG_LENGTH];
        config[..6].copy_from_slice(&mac);
        config[6..8].copy_from_slice(&S_LINK_UP.to_le_bytes());
        Self {
            config,
            frame: alloc::vec![0; HEADER + MAX_FRAME],
            looped: 0,
            dropped: Dropped::default(),
        }
    }

    /// Frames looped back so far (this incarnation).
    pub fn looped(&self) -> u64 {
        self.looped
    }

    /// Frames dropped so far (this incarnation).
    pub fn dropped(&self) -> Dropped {
        self.dropped
    }

    /// Loops the frame of transmit chain `chain` back into the receive queue.
    fn loop_back<M: GuestMemory + ?Sized>(
        &mut self,
        memory: &mut M,
        chain: &Chain,
        receive: &mut Queue,
    ) -> Result<(), DeviceFault> {
        let ram =
            |error: OutsideRam| DeviceFault::Chain(crate::virtqueue::ChainError::OutsideRam(error));
        let malformed = |reason| DeviceFault::Malformed { head: chain.head, reason };
        if chain.length(true) != 0 {
            return Err(malformed("a writable buffer in a transmit chain"));
        }
        let readable = chain.length(false);
        if readable < HEADER as u64 {
            return Err(malformed("no room for the 12-byte virtio_net_hdr"));
        }
        let length = readable - HEADER as u64;
        if length < ETH_HLEN as u64 || length > MAX_FRAME as u64 {
            self.dropped.size += 1;
            return Ok(());
        }
        let length = length as usize;
        // The receive header: zeroes (no offloads, no checksum state) and num_buffers 1.
        self.frame[..HEADER].fill(0);
        self.frame[HEADER - 2..HEADER].copy_from_slice(&1u16.to_le_bytes());
        chain
            .read_at(memory, HEADER as u64, &mut self.frame[HEADER..HEADER + length])
            .map_err(ram)?;
        if !receive.ready {
            self.dropped.no_buffer += 1;
            return Ok(());
        }
        let Some(buffer) = receive.pop(memory).map_err(DeviceFault::Chain)? else {
            self.dropped.no_buffer += 1;
            return Ok(());
        };
        if buffer.length(false) != 0 {
            let reason = "a readable buffer in a receive chain";
            return Err(DeviceFault::Malformed { head: buffer.head, reason });
        }
        let total = HEADER + length;
        let written = if buffer.length(true) < total as u64 {
            self.dropped.did_not_fit += 1;
            0
        } else {
            buffer.write_at(memory, 0, &self.frame[..total]).map_err(ram)?;
            self.looped += 1;
            total as u32
        };
        receive.push(memory, buffer.head, written).map_err(DeviceFault::Chain)
    }
}

impl Device for Net {
    fn device_id(&self) -> u32 {
        DEVICE_ID
    }

    fn features(&self) -> u64 {
        F_VERSION_1 | F_INDIRECT_DESC | F_EVENT_IDX | F_MAC | F_STATUS
    }

    fn config(&self) -> &[u8] {
        &self.config
    }

    fn queue_count(&self) -> u16 {
        2
    }

    fn queue_max(&self) -> u16 {
        MAX_QUEUE_SIZE
    }

    fn process<M: GuestMemory + ?Sized>(
        &mut self,
        memory: &mut M,
        index: u16,
        queues: &mut [Queue],
    ) -> Result<(), DeviceFault> {
        let [receive, transmit] = queues else { return Ok(()) };
        if index != TRANSMITQ {
            return Ok(());
        }
        while let Some(chain) = transmit.pop(memory).map_err(DeviceFault::Chain)? {
            self.loop_back(memory, &chain, receive)?;
            transmit.push(memory, chain.head, 0).map_err(DeviceFault::Chain)?;
        }
        Ok(())
    }
}
