//! Completing a TCP or UDP checksum that the sender left blank, for a vif that cannot take
//! the packet otherwise.
//!
//! A frontend may send with `NETTXF_csum_blank` (`xen/include/public/io/netif.h`: "the
//! protocol checksum field is blank"); the backend then passes the packet on saying so
//! (`NETRXF_csum_blank`). A receiving frontend that wrote `feature-no-csum-offload` = 1 cannot
//! take that, so netback fills the checksum in first (Linux: `skb_checksum_setup(skb, true)`
//! in `xenvif_tx_submit`, then the stack's `skb_checksum_help` before delivery). What Linux's
//! sender leaves in the field (the pseudo-header sum, `CHECKSUM_PARTIAL`) is ignored here: the
//! field is zeroed and the whole checksum computed.
//!
//! What it parses: Ethernet II with up to two VLAN tags (802.1Q `0x8100`, 802.1ad `0x88a8`);
//! IPv4 (options allowed; not a fragment); IPv6 with hop-by-hop and destination-options
//! extension headers (a fragment header, a routing header, whose final destination would
//! change the pseudo-header, or any other is refused); TCP (RFC 793 §3.1) or UDP (RFC 768,
//! RFC 8200 §8.1 for IPv6). The checksum is the ones' complement of the ones' complement sum
//! of the pseudo-header (source, destination, protocol, upper-layer length) and the segment;
//! a UDP checksum that computes to 0 is sent as `0xffff` (0 means "none" in UDP over IPv4 and
//! is forbidden over IPv6). Bytes after the IP packet's length (Ethernet padding) are not
//! summed.
//!
//! # Invariants
//! - Only the two checksum bytes change, and only on success.
//! - Nothing outside `frame` is read; no input panics.

/// Why a frame's checksum could not be completed (the caller drops it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsumError {
    /// The frame ends before a header or the length its IP header states.
    Truncated,
    /// The Ethernet type is neither IPv4 nor IPv6.
    NotIp {
        /// The Ethernet type.
        ethertype: u16,
    },
    /// An IP header that contradicts itself (version, header length, total length).
    BadIpHeader,
    /// A fragment: its checksum covers bytes this frame does not hold.
    Fragment,
    /// An IPv6 extension header this does not walk.
    UnsupportedExtension {
        /// Its next-header number.
        next_header: u8,
    },
    /// Neither TCP nor UDP.
    NotTcpUdp {
        /// The IP protocol.
        protocol: u8,
    },
    /// A TCP header shorter than 20 bytes or a UDP length that is not the IP payload's.
    BadTransportHeader,
}

const ETH_HLEN: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const PROTOCOL_TCP: u8 = 6;
const PROTOCOL_UDP: u8 = 17;
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_DESTINATION_OPTIONS: u8 = 60;
const IPV6_FRAGMENT: u8 = 44;
/// Where the checksum field lies in a TCP header (RFC 793) and a UDP header (RFC 768).
const TCP_CHECKSUM: usize = 16;
const UDP_CHECKSUM: usize = 6;

fn be16(bytes: &[u8], at: usize) -> Result<u16, CsumError> {
    let pair = bytes.get(at..at + 2).ok_or(CsumError::Truncated)?;
    Ok(u16::from_be_bytes([pair[0], pair[1]]))
}

/// Adds `bytes` as big-endian 16-bit words (a last odd byte padded with zero) to `sum`.
fn add(mut sum: u64, bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(2);
    for word in &mut words {
        sum += u64::from(u16::from_be_bytes([word[0], word[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// The ones' complement of the folded sum.
fn finish(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Where a frame's IP packet lies and what the pseudo-header sums to.
struct Transport {
    /// Start of the TCP/UDP header in the frame.
    start: usize,
    /// Bytes of the TCP/UDP header and data.
    len: usize,
    protocol: u8,
    /// The sum of the pseudo-header's addresses (the length and protocol are added later).
    addresses: u64,
}

fn ipv4(frame: &[u8], at: usize) -> Result<Transport, CsumError> {
    let header = frame.get(at..at + 20).ok_or(CsumError::Truncated)?;
    let ihl = usize::from(header[0] & 0x0f) * 4;
    if header[0] >> 4 != 4 || ihl < 20 {
        return Err(CsumError::BadIpHeader);
    }
    let total = usize::from(be16(header, 2)?);
    if total < ihl {
        return Err(CsumError::BadIpHeader);
    }
    if at + total > frame.len() {
        return Err(CsumError::Truncated);
    }
    // More fragments, or a fragment offset.
    if be16(header, 6)? & 0x3fff != 0 {
        return Err(CsumError::Fragment);
    }
    Ok(Transport {
        start: at + ihl,
        len: total - ihl,
        protocol: header[9],
        addresses: add(0, &header[12..20]),
    })
}

fn ipv6(frame: &[u8], at: usize) -> Result<Transport, CsumError> {
    let header = frame.get(at..at + 40).ok_or(CsumError::Truncated)?;
    if header[0] >> 4 != 6 {
        return Err(CsumError::BadIpHeader);
    }
    let end = at + 40 + usize::from(be16(header, 4)?);
    if end > frame.len() {
        return Err(CsumError::Truncated);
    }
    let mut next = header[6];
    let mut start = at + 40;
    loop {
        match next {
            PROTOCOL_TCP | PROTOCOL_UDP => break,
            IPV6_HOP_BY_HOP | IPV6_DESTINATION_OPTIONS => {
                let extension = frame.get(start..start + 2).filter(|_| start + 2 <= end);
                let extension = extension.ok_or(CsumError::Truncated)?;
                next = extension[0];
                start += (usize::from(extension[1]) + 1) * 8;
                if start > end {
                    return Err(CsumError::Truncated);
                }
            }
            IPV6_FRAGMENT => return Err(CsumError::Fragment),
            other => return Err(CsumError::UnsupportedExtension { next_header: other }),
        }
    }
    Ok(Transport { start, len: end - start, protocol: next, addresses: add(0, &header[8..40]) })
}

/// Computes and stores the TCP or UDP checksum of `frame` (an Ethernet frame whose checksum
/// its sender left blank).
pub fn complete_checksum(frame: &mut [u8]) -> Result<(), CsumError> {
    let mut at = ETH_HLEN;
    let mut ethertype = be16(frame, 12)?;
    for _ in 0..2 {
        if ethertype != ETHERTYPE_VLAN && ethertype != ETHERTYPE_QINQ {
            break;
        }
        ethertype = be16(frame, at + 2)?;
        at += 4;
    }
    let transport = match ethertype {
        ETHERTYPE_IPV4 => ipv4(frame, at)?,
        ETHERTYPE_IPV6 => ipv6(frame, at)?,
        other => return Err(CsumError::NotIp { ethertype: other }),
    };
    let field = match transport.protocol {
        PROTOCOL_TCP if transport.len >= 20 => TCP_CHECKSUM,
        PROTOCOL_UDP
            if transport.len >= 8
                && usize::from(be16(frame, transport.start + 4)?) == transport.len =>
        {
            UDP_CHECKSUM
        }
        PROTOCOL_TCP | PROTOCOL_UDP => return Err(CsumError::BadTransportHeader),
        other => return Err(CsumError::NotTcpUdp { protocol: other }),
    };
    let segment = frame
        .get_mut(transport.start..transport.start + transport.len)
        .ok_or(CsumError::Truncated)?;
    segment[field..field + 2].fill(0);
    let length = transport.len as u64;
    let pseudo = transport.addresses + (length >> 16) + (length & 0xffff);
    let mut checksum = finish(add(pseudo + u64::from(transport.protocol), segment));
    if checksum == 0 && transport.protocol == PROTOCOL_UDP {
        checksum = 0xffff;
    }
    segment[field..field + 2].copy_from_slice(&checksum.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests;
