//! Known frames (built, checksums included, by Scapy 2.8, an independent implementation)
//! with their checksums blanked and completed again, and one test per refusal.
use super::*;
use crate::test_rng::Xorshift;
use alloc::vec::Vec;

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

/// IPv4 TCP (DF, PSH|ACK) carrying an HTTP request; TCP checksum 0x57ad at byte 50.
const TCP4: &str = "00163e00000200163e0000010800450000431c46400040069b00c0a8010ac0a801149c40\
    0050123456789abcdef0501801f657ad0000474554202f20485454502f312e310d0a486f73743a20780d0a0d0a";
/// IPv4 UDP, 19 bytes of data; UDP checksum 0xa003 at byte 40.
const UDP4: &str = "00163e00000200163e00000108004500002f00010000401166bb0a0000010a00000214e9\
    0035001ba00368656c6c6f2c2078656e206e65746261636b21";
/// IPv4 UDP with an odd length (3 bytes of data); UDP checksum 0x11c0 at byte 40.
const UDP4_ODD: &str =
    "00163e00000200163e00000108004500001f00010000401166cb0a0000010a00000204d210e1000b11c0616263";
/// IPv6 TCP; checksum 0xddf1 at byte 70.
const TCP6: &str = "00163e00000200163e00000186dd6000000000210640fe8000000000000002163efffe00\
    000120010db80000000000000000000000020016c3500000000100000002501003e8ddf1000073736820646174\
    612068657265";
/// IPv6 with hop-by-hop and destination-options headers, then UDP; checksum 0x6209 at byte 76.
const UDP6_EXT: &str = "00163e00000200163e00000186dd60000000001e004020010db8000000000000000000\
    00000120010db80000000000000000000000023c00010400000000110001040000000002220223000e62096468\
    63707636";
/// An 802.1Q-tagged (VLAN 42) IPv4 UDP frame; checksum 0x189c at byte 44.
const VLAN_UDP4: &str = "00163e00000200163e0000018100002a08004500002a000100004011223eac100001ac\
    100063000700070016189c6563686f206563686f206563686f";

/// Blanks the checksum at `at`, completes it, and checks it is `want` again.
fn completes(frame: &str, at: usize, want: u16) {
    let mut bytes = hex(frame);
    assert_eq!(u16::from_be_bytes([bytes[at], bytes[at + 1]]), want, "the vector itself");
    let original = bytes.clone();
    bytes[at..at + 2].fill(0);
    assert_eq!(complete_checksum(&mut bytes), Ok(()));
    assert_eq!(bytes, original);
}

#[test]
fn ipv4_tcp_is_completed() {
    completes(TCP4, 50, 0x57ad);
}

#[test]
fn ipv4_udp_is_completed_with_odd_lengths_too() {
    completes(UDP4, 40, 0xa003);
    completes(UDP4_ODD, 40, 0x11c0);
}

#[test]
fn ipv6_tcp_and_udp_behind_extension_headers_are_completed() {
    completes(TCP6, 70, 0xddf1);
    completes(UDP6_EXT, 76, 0x6209);
}

#[test]
fn a_vlan_tag_is_skipped() {
    completes(VLAN_UDP4, 44, 0x189c);
}

#[test]
fn what_the_sender_left_in_the_field_and_ethernet_padding_are_ignored() {
    let want = hex(UDP4_ODD);
    let mut padded = want.clone();
    // Linux's sender leaves the pseudo-header sum there; any value is overwritten.
    padded[40..42].copy_from_slice(&[0x12, 0x34]);
    padded.resize(60, 0xee);
    assert_eq!(complete_checksum(&mut padded), Ok(()));
    assert_eq!(&padded[..want.len()], &want[..]);
}

#[test]
fn a_corrupted_byte_changes_the_checksum() {
    let original = hex(TCP4);
    // A data byte, a port, a source address byte (pseudo-header), the protocol's length.
    for at in [70, 34, 27] {
        let mut bytes = original.clone();
        bytes[at] ^= 0x01;
        complete_checksum(&mut bytes).unwrap();
        assert_ne!(bytes[50..52], original[50..52], "byte {at}");
    }
}

#[test]
fn a_udp_checksum_of_zero_is_sent_as_all_ones() {
    // Choose the last data byte pair so that the sum comes to 0xffff: patch the data so the
    // checksum would be 0, by adding the current checksum into the data (ones' complement).
    let mut bytes = hex(UDP4);
    let checksum = u16::from_be_bytes([bytes[40], bytes[41]]);
    // Data starts at 42; add `checksum` to the word at 42..44 in ones' complement.
    let word = u16::from_be_bytes([bytes[42], bytes[43]]);
    let (sum, carry) = word.overflowing_add(checksum);
    bytes[42..44].copy_from_slice(&(sum + u16::from(carry)).to_be_bytes());
    complete_checksum(&mut bytes).unwrap();
    assert_eq!(bytes[40..42], [0xff, 0xff]);
}

#[test]
fn truncated_frames_are_refused_and_left_alone() {
    let whole = hex(TCP4);
    for len in [0, 13, 20, 33, 60, whole.len() - 1] {
        let mut bytes = whole[..len].to_vec();
        let before = bytes.clone();
        assert_eq!(complete_checksum(&mut bytes), Err(CsumError::Truncated), "{len} bytes");
        assert_eq!(bytes, before);
    }
    // An IPv6 extension header running past the payload.
    let mut bytes = hex(UDP6_EXT);
    bytes[63] = 200;
    assert_eq!(complete_checksum(&mut bytes), Err(CsumError::Truncated));
}

#[test]
fn non_ip_and_non_tcp_udp_are_refused() {
    let mut arp = hex(UDP4);
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    assert_eq!(complete_checksum(&mut arp), Err(CsumError::NotIp { ethertype: 0x0806 }));
    let mut icmp = hex(UDP4);
    icmp[23] = 1;
    assert_eq!(complete_checksum(&mut icmp), Err(CsumError::NotTcpUdp { protocol: 1 }));
}

#[test]
fn fragments_are_refused() {
    for flags in [[0x20, 0x00], [0x00, 0x10], [0x20, 0x10]] {
        let mut bytes = hex(UDP4);
        bytes[20..22].copy_from_slice(&flags);
        assert_eq!(complete_checksum(&mut bytes), Err(CsumError::Fragment));
    }
    // IPv6: the hop-by-hop header's next header made a fragment header.
    let mut bytes = hex(UDP6_EXT);
    bytes[54] = 44;
    assert_eq!(complete_checksum(&mut bytes), Err(CsumError::Fragment));
    // A routing header is not walked.
    bytes[54] = 43;
    assert_eq!(
        complete_checksum(&mut bytes),
        Err(CsumError::UnsupportedExtension { next_header: 43 })
    );
}

#[test]
fn inconsistent_headers_are_refused() {
    let bad = |edit: &dyn Fn(&mut Vec<u8>), frame: &str| {
        let mut bytes = hex(frame);
        edit(&mut bytes);
        complete_checksum(&mut bytes)
    };
    // IPv4: version 6 in an IPv4 frame; a header length below 20; a total below the header.
    assert_eq!(bad(&|b| b[14] = 0x65, UDP4), Err(CsumError::BadIpHeader));
    assert_eq!(bad(&|b| b[14] = 0x44, UDP4), Err(CsumError::BadIpHeader));
    assert_eq!(bad(&|b| b[16..18].copy_from_slice(&[0, 19]), UDP4), Err(CsumError::BadIpHeader));
    // A UDP length other than the IP payload's; a TCP segment shorter than its header.
    assert_eq!(bad(&|b| b[39] ^= 1, UDP4), Err(CsumError::BadTransportHeader));
    let short_tcp = |b: &mut Vec<u8>| {
        b[16..18].copy_from_slice(&(20u16 + 19).to_be_bytes());
    };
    assert_eq!(bad(&short_tcp, TCP4), Err(CsumError::BadTransportHeader));
}

#[test]
fn random_frames_never_panic_and_change_only_the_checksum() {
    let vectors = [TCP4, UDP4, TCP6, UDP6_EXT, VLAN_UDP4];
    let mut rng = Xorshift(0x1234_5678_9abc_def1);
    for round in 0..20_000 {
        let mut bytes = hex(vectors[round % vectors.len()]);
        rng.damage(&mut bytes, 3);
        let before = bytes.clone();
        match complete_checksum(&mut bytes) {
            Ok(()) => {
                let changed: Vec<usize> =
                    (0..bytes.len()).filter(|&i| bytes[i] != before[i]).collect();
                assert!(changed.len() <= 2, "{changed:?}");
            }
            Err(_) => assert_eq!(bytes, before),
        }
    }
}
