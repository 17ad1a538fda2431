//! Host tests for the event-channel table: each operation's success and error paths, against
//! what Xen 4.17's `event_channel.c` returns, and a randomized sequence against a model.

use super::*;

const DOM_A: DomainId = 1;
const DOM_B: DomainId = 2;

/// Fresh `shared_info` bitmaps for one table (leaked: tests are short-lived).
fn bits(id: DomainId) -> Bitmaps<'static> {
    let words: &'static [[AtomicU64; BITMAP_WORDS]; 2] =
        Box::leak(Box::new(core::array::from_fn(|_| core::array::from_fn(|_| AtomicU64::new(0)))));
    Bitmaps::new(id, &words[0], &words[1])
}

fn new(id: DomainId, max_port: Port, vcpus: u32) -> Result<EventTable<'static>, XenError> {
    EventTable::new(id, bits(id), max_port, vcpus)
}

fn table(id: DomainId) -> EventTable<'static> {
    new(id, 63, 2).unwrap()
}

/// `EVTCHNOP_status` of `port`, as the guest gets it.
fn status_of(table: &EventTable, port: Port) -> Result<evtchn_status, XenError> {
    let mut op = evtchn_status { port, ..Default::default() };
    table.status(&mut op).map(|()| op)
}

/// Sets `port`'s mask bit, as the guest does (there is no hypercall for it).
fn set_mask(table: &EventTable, port: Port) {
    table.bits.mask[(port / 64) as usize].fetch_or(1 << (port % 64), Ordering::AcqRel);
}

fn state(table: &EventTable, port: Port) -> PortState {
    table.channel(port).unwrap().state
}

/// Delivers a send the way the core will: marks the target pending and returns the upcall.
fn deliver(
    local: &mut EventTable,
    remote: &mut EventTable,
    port: Port,
) -> Result<Option<u32>, XenError> {
    Ok(match local.send(port)? {
        SendTarget::Dropped => None,
        SendTarget::Local { port } => local.mark_pending(port),
        SendTarget::Remote { domain, port } => {
            assert_eq!(domain, remote.domain_id);
            remote.mark_pending(port)
        }
    })
}

#[test]
fn new_reserves_port_zero_and_checks_vcpus() {
    let t = table(DOM_A);
    assert_eq!(state(&t, 0), PortState::Reserved);
    assert_eq!(status_of(&t, 0).unwrap().status, EVTCHNSTAT_closed);
    assert_eq!(new(DOM_A, 10, 0).unwrap_err(), XenError::EINVAL);
    assert_eq!(new(DOM_A, 10, MAX_VCPUS as u32 + 1).unwrap_err(), XenError::EINVAL);
    assert_eq!(new(DOM_A, u32::MAX, 1).unwrap().max_port, MAX_PORTS as Port - 1);
}

#[test]
fn alloc_unbound_takes_lowest_free_port() {
    let mut t = table(DOM_A);
    assert_eq!(t.alloc_unbound(DOM_B), Ok(1));
    assert_eq!(t.alloc_unbound(DOM_B), Ok(2));
    assert_eq!(t.alloc_unbound(DOM_B), Ok(3));
    assert_eq!(t.close(2), Ok(Close::Done));
    assert_eq!(t.alloc_unbound(DOM_A), Ok(2));
    assert_eq!(state(&t, 2), PortState::Unbound { remote: DOM_A });
    let status = status_of(&t, 1).unwrap();
    assert_eq!((status.status, status.vcpu, status.unbound()), (EVTCHNSTAT_unbound, 0, DOM_B));
}

#[test]
fn port_exhaustion_at_max_port() {
    let mut t = new(DOM_A, 5, 1).unwrap();
    for port in 1..=5 {
        assert_eq!(t.alloc_unbound(DOM_B), Ok(port));
    }
    assert_eq!(t.alloc_unbound(DOM_B), Err(XenError::ENOSPC));
    assert_eq!(t.bind_ipi(0), Err(XenError::ENOSPC));
    assert_eq!(t.bind_virq(VIRQ_TIMER, 0), Err(XenError::ENOSPC));
    let mut other = table(DOM_B);
    let offered = other.alloc_unbound(DOM_A).unwrap();
    assert_eq!(t.bind_interdomain(Some(&mut other), offered), Err(XenError::ENOSPC));
    assert_eq!(state(&other, offered), PortState::Unbound { remote: DOM_A });
    // Ports above max_port but inside the first bucket are valid, and closed.
    assert_eq!(status_of(&t, 6).unwrap().status, EVTCHNSTAT_closed);
    assert_eq!(status_of(&t, EVTCHNS_PER_BUCKET).unwrap_err(), XenError::EINVAL);
}

#[test]
fn full_size_table_grows_buckets() {
    let mut t = new(DOM_A, MAX_PORTS as Port, 1).unwrap();
    assert!(t.channel(EVTCHNS_PER_BUCKET).is_none());
    for port in 1..MAX_PORTS as Port {
        assert_eq!(t.bind_ipi(0), Ok(port));
        assert!(t.channel(port).is_some());
    }
    assert_eq!(t.bind_ipi(0), Err(XenError::ENOSPC));
    assert_eq!(status_of(&t, MAX_PORTS as Port).unwrap_err(), XenError::EINVAL);
}

#[test]
fn interdomain_round_trip() {
    let (mut a, mut b) = (table(DOM_A), table(DOM_B));
    let offered = b.alloc_unbound(DOM_A).unwrap();
    let bound = a.bind_interdomain(Some(&mut b), offered).unwrap();
    // Xen conservatively leaves the new local port pending (event_channel.c:447).
    assert_eq!(bound, Bound { port: 1, upcall: Some(0) });
    assert!(a.pending(bound.port));
    assert_eq!(state(&a, 1), PortState::Interdomain { remote: DOM_B, remote_port: offered });
    assert_eq!(state(&b, offered), PortState::Interdomain { remote: DOM_A, remote_port: 1 });
    let status = status_of(&a, 1).unwrap();
    assert_eq!((status.status, status.interdomain()), (EVTCHNSTAT_interdomain, (DOM_B, offered)));

    assert_eq!(a.send(1), Ok(SendTarget::Remote { domain: DOM_B, port: offered }));
    assert_eq!(deliver(&mut a, &mut b, 1), Ok(Some(0)));
    assert_eq!(deliver(&mut a, &mut b, 1), Ok(None), "already pending: no second upcall");
    b.bits.clear_pending(offered);
    b.bind_vcpu(offered, 1).unwrap();
    assert_eq!(deliver(&mut a, &mut b, 1), Ok(Some(1)));
    a.bits.clear_pending(1);
    assert_eq!(deliver(&mut b, &mut a, offered), Ok(Some(0)));
}

#[test]
fn bind_interdomain_errors() {
    let (mut a, mut b) = (table(DOM_A), table(DOM_B));
    let for_other = b.alloc_unbound(7).unwrap();
    // Offered to another domain, free, reserved, invalid: all -EINVAL, nothing allocated.
    for port in [for_other, 5, 0, EVTCHNS_PER_BUCKET, u32::MAX] {
        assert_eq!(a.bind_interdomain(Some(&mut b), port), Err(XenError::EINVAL));
    }
    assert_eq!(a.alloc_unbound(DOM_B), Ok(1), "a failed bind leaves the local port free");
    // Already connected: -EINVAL.
    let offered = b.alloc_unbound(DOM_A).unwrap();
    a.bind_interdomain(Some(&mut b), offered).unwrap();
    assert_eq!(a.bind_interdomain(Some(&mut b), offered), Err(XenError::EINVAL));
}

#[test]
fn loopback_channel_in_one_domain() {
    let mut a = table(DOM_A);
    let offered = a.alloc_unbound(DOM_A).unwrap();
    let bound = a.bind_interdomain(None, offered).unwrap();
    assert_eq!(bound.port, 2);
    assert_eq!(state(&a, 2), PortState::Interdomain { remote: DOM_A, remote_port: offered });
    assert_eq!(state(&a, offered), PortState::Interdomain { remote: DOM_A, remote_port: 2 });
    assert_eq!(a.send(2), Ok(SendTarget::Local { port: offered }));
    assert_eq!(a.mark_pending(offered), Some(0));
    // Not offered to this domain.
    let other = a.alloc_unbound(DOM_B).unwrap();
    assert_eq!(a.bind_interdomain(None, other), Err(XenError::EINVAL));
    // Closing one end of a loopback needs no peer.
    assert_eq!(a.close(offered), Ok(Close::Done));
    assert_eq!(state(&a, offered), PortState::Free);
    assert_eq!(state(&a, 2), PortState::Unbound { remote: DOM_A });
}

#[test]
fn closing_either_end_leaves_peer_unbound_to_closer() {
    for close_local in [true, false] {
        let (mut a, mut b) = (table(DOM_A), table(DOM_B));
        let offered = b.alloc_unbound(DOM_A).unwrap();
        let port = a.bind_interdomain(Some(&mut b), offered).unwrap().port;
        b.mark_pending(offered);
        b.bind_vcpu(offered, 1).unwrap();
        let (closer, peer, closed, kept, closer_id) = if close_local {
            (&mut a, &mut b, port, offered, DOM_A)
        } else {
            (&mut b, &mut a, offered, port, DOM_B)
        };
        let peer_id = peer.domain_id;
        assert_eq!(closer.close(closed), Ok(Close::NeedsPeer { port: closed, peer: peer_id }));
        assert!(
            matches!(state(closer, closed), PortState::Interdomain { .. }),
            "NeedsPeer changes nothing"
        );
        closer.close_with_peer(Some(peer), closed).unwrap();
        let freed = closer.channel(closed).unwrap();
        assert_eq!(
            (freed.state, closer.pending(closed), freed.notify_vcpu),
            (PortState::Free, false, 0)
        );
        // The peer keeps its vCPU and pending bit, and can be bound again by the closer.
        assert_eq!(state(peer, kept), PortState::Unbound { remote: closer_id });
        assert_eq!(peer.send(kept), Ok(SendTarget::Dropped));
        assert_eq!(closer.close_with_peer(Some(peer), closed), Err(XenError::EINVAL));
        let again = closer.bind_interdomain(Some(peer), kept).unwrap().port;
        assert_eq!(
            state(peer, kept),
            PortState::Interdomain { remote: closer_id, remote_port: again }
        );
    }
}

#[test]
fn close_errors_and_close_with_wrong_peer() {
    let (mut a, mut b, mut c) = (table(DOM_A), table(DOM_B), table(3));
    assert_eq!(a.close(0), Err(XenError::EINVAL));
    assert_eq!(a.close(1), Err(XenError::EINVAL));
    assert_eq!(a.close(EVTCHNS_PER_BUCKET), Err(XenError::EINVAL));
    let offered = b.alloc_unbound(DOM_A).unwrap();
    let port = a.bind_interdomain(Some(&mut b), offered).unwrap().port;
    assert_eq!(a.close_with_peer(Some(&mut c), port), Err(XenError::EINVAL));
    let ipi = a.bind_ipi(0).unwrap();
    assert_eq!(a.close_with_peer(Some(&mut b), ipi), Err(XenError::EINVAL));
    assert_eq!(state(&a, port), PortState::Interdomain { remote: DOM_B, remote_port: offered });
}

#[test]
fn send_on_each_state() {
    let mut a = table(DOM_A);
    let unbound = a.alloc_unbound(DOM_B).unwrap();
    let ipi = a.bind_ipi(1).unwrap();
    let virq = a.bind_virq(VIRQ_TIMER, 0).unwrap();
    assert_eq!(a.send(unbound), Ok(SendTarget::Dropped));
    assert_eq!(a.send(ipi), Ok(SendTarget::Local { port: ipi }));
    assert_eq!(a.mark_pending(ipi), Some(1));
    for port in [0, 10, virq, EVTCHNS_PER_BUCKET, u32::MAX] {
        assert_eq!(a.send(port), Err(XenError::EINVAL), "port {port}");
    }
    a.close(ipi).unwrap();
    assert_eq!(a.send(ipi), Err(XenError::EINVAL), "closed port");
}

#[test]
fn bind_virq_rules() {
    let mut a = table(DOM_A);
    assert_eq!(a.bind_virq(NR_VIRQS as u32, 0), Err(XenError::EINVAL));
    assert_eq!(a.bind_virq(VIRQ_CONSOLE, 1), Err(XenError::EINVAL), "global VIRQ on vCPU 1");
    assert_eq!(a.bind_virq(VIRQ_TIMER, 2), Err(XenError::ENOENT));
    assert_eq!(a.bind_virq(VIRQ_CONSOLE, 2), Err(XenError::EINVAL), "EINVAL before ENOENT");
    let t0 = a.bind_virq(VIRQ_TIMER, 0).unwrap();
    let t1 = a.bind_virq(VIRQ_TIMER, 1).unwrap();
    let console = a.bind_virq(VIRQ_CONSOLE, 0).unwrap();
    assert_eq!(a.bind_virq(VIRQ_TIMER, 1), Err(XenError::EEXIST));
    assert_eq!(a.bind_virq(VIRQ_CONSOLE, 0), Err(XenError::EEXIST));
    assert_eq!(state(&a, t1), PortState::Virq { virq: VIRQ_TIMER, vcpu: 1 });
    let status = status_of(&a, t1).unwrap();
    assert_eq!((status.status, status.vcpu, status.virq()), (EVTCHNSTAT_virq, 1, VIRQ_TIMER));
    assert_eq!(a.virq_port(VIRQ_TIMER, 0), Some(t0));
    assert_eq!(a.virq_port(VIRQ_CONSOLE, 1), Some(console), "global VIRQs live on vCPU 0");
    // A global VIRQ may move; it is still found, and delivered to the new vCPU.
    a.bind_vcpu(console, 1).unwrap();
    let mut send_virq = |virq, vcpu| a.mark_pending(a.virq_port(virq, vcpu)?);
    assert_eq!(send_virq(VIRQ_CONSOLE, 0), Some(1));
    assert_eq!(send_virq(VIRQ_TIMER, 1), Some(1));
    assert_eq!(send_virq(VIRQ_DEBUG, 0), None, "unbound VIRQ");
    // Closing frees the VIRQ slot.
    a.close(t1).unwrap();
    a.close(console).unwrap();
    assert_eq!(a.virq_port(VIRQ_TIMER, 1), None);
    assert_eq!(a.bind_virq(VIRQ_TIMER, 1), Ok(t1));
    assert_eq!(a.bind_virq(VIRQ_CONSOLE, 0), Ok(console));
}

#[test]
fn bind_ipi_and_bind_vcpu_rules() {
    let (mut a, mut b) = (table(DOM_A), table(DOM_B));
    assert_eq!(a.bind_ipi(2), Err(XenError::ENOENT));
    let ipi = a.bind_ipi(1).unwrap();
    let status = status_of(&a, ipi).unwrap();
    assert_eq!((status.status, status.vcpu, status.u), (EVTCHNSTAT_ipi, 1, [0; 8]));
    let timer = a.bind_virq(VIRQ_TIMER, 0).unwrap();
    let unbound = a.alloc_unbound(DOM_B).unwrap();
    let offered = b.alloc_unbound(DOM_A).unwrap();
    let inter = a.bind_interdomain(Some(&mut b), offered).unwrap().port;
    assert_eq!(a.bind_vcpu(unbound, 2), Err(XenError::ENOENT));
    assert_eq!(a.bind_vcpu(EVTCHNS_PER_BUCKET, 2), Err(XenError::ENOENT), "ENOENT before EINVAL");
    assert_eq!(a.bind_vcpu(EVTCHNS_PER_BUCKET, 1), Err(XenError::EINVAL));
    for port in [0, 20, ipi, timer] {
        assert_eq!(a.bind_vcpu(port, 1), Err(XenError::EINVAL), "port {port}");
    }
    for port in [unbound, inter] {
        assert_eq!(a.bind_vcpu(port, 1), Ok(()));
        assert_eq!(status_of(&a, port).unwrap().vcpu, 1);
    }
}

#[test]
fn pending_mask_and_unmask_decide_upcalls() {
    let mut a = table(DOM_A);
    let port = a.bind_ipi(1).unwrap();
    assert_eq!(a.mark_pending(port), Some(1));
    assert_eq!(a.mark_pending(port), None, "already pending");
    assert_eq!(a.unmask(port), Ok(None), "not masked: nothing to deliver");
    a.bits.clear_pending(port);
    set_mask(&a, port);
    assert_eq!(a.mark_pending(port), None, "masked");
    assert!(a.pending(port));
    assert_eq!(a.unmask(port), Ok(Some(1)), "masked and pending: deliver on unmask");
    assert!(!a.bits.masked(port));
    a.bits.clear_pending(port);
    set_mask(&a, port);
    assert_eq!(a.unmask(port), Ok(None), "masked but not pending");
    assert_eq!(a.unmask(EVTCHNS_PER_BUCKET), Err(XenError::EINVAL));
    assert_eq!(a.unmask(30), Ok(None), "any valid port may be unmasked");
    assert_eq!(a.mark_pending(EVTCHNS_PER_BUCKET), None);
    // Closing clears pending but keeps the mask, as the shared_info bit is the guest's.
    set_mask(&a, port);
    a.mark_pending(port);
    a.close(port).unwrap();
    assert_eq!(state(&a, port), PortState::Free);
    assert!(!a.pending(port) && a.bits.masked(port));
}

#[test]
fn reset_closes_everything_asking_for_peers() {
    let (mut a, mut b) = (table(DOM_A), table(DOM_B));
    a.bind_ipi(0).unwrap();
    a.bind_virq(VIRQ_TIMER, 1).unwrap();
    let offered = b.alloc_unbound(DOM_A).unwrap();
    let inter = a.bind_interdomain(Some(&mut b), offered).unwrap().port;
    a.alloc_unbound(DOM_B).unwrap();
    let own = a.alloc_unbound(DOM_A).unwrap();
    a.bind_interdomain(None, own).unwrap();
    assert_eq!(a.reset(), Close::NeedsPeer { port: inter, peer: DOM_B });
    a.close_with_peer(Some(&mut b), inter).unwrap();
    assert_eq!(a.reset(), Close::Done);
    for port in 1..EVTCHNS_PER_BUCKET {
        assert_eq!(state(&a, port), PortState::Free, "port {port}");
    }
    assert_eq!(state(&a, 0), PortState::Reserved);
    assert_eq!(a.virq_port(VIRQ_TIMER, 1), None);
    assert_eq!(state(&b, offered), PortState::Unbound { remote: DOM_A });
}

use crate::test_rng::Rng;

/// Two distinct tables out of `tables`.
fn pair<'t, 'a>(
    tables: &'t mut [EventTable<'a>],
    i: usize,
    j: usize,
) -> (&'t mut EventTable<'a>, &'t mut EventTable<'a>) {
    assert_ne!(i, j);
    if i < j {
        let (low, high) = tables.split_at_mut(j);
        (&mut low[i], &mut high[0])
    } else {
        let (low, high) = tables.split_at_mut(i);
        (&mut high[0], &mut low[j])
    }
}

/// Checks the module's invariants across all tables, and that each port's kind matches the
/// model (`None`: free).
fn check(tables: &[EventTable<'_>], model: &[Vec<Option<char>>]) {
    for (index, table) in tables.iter().enumerate() {
        let mut bound = 0;
        for port in 0..MAX_PORTS as Port {
            let Some(channel) = table.channel(port) else { continue };
            let kind = match channel.state {
                PortState::Free => {
                    assert!(!table.pending(port) && channel.notify_vcpu == 0);
                    None
                }
                PortState::Reserved => {
                    assert_eq!(port, 0);
                    continue;
                }
                PortState::Unbound { .. } => Some('u'),
                PortState::Ipi { .. } => Some('p'),
                PortState::Virq { virq, vcpu } => {
                    assert_eq!(table.virq_port(virq, vcpu), Some(port));
                    Some('v')
                }
                PortState::Interdomain { remote, remote_port } => {
                    let peer = &tables[usize::from(remote)];
                    let expected =
                        PortState::Interdomain { remote: table.domain_id, remote_port: port };
                    assert_eq!(peer.channel(remote_port).unwrap().state, expected);
                    Some('i')
                }
            };
            assert!(port == 0 || port <= table.max_port || kind.is_none());
            assert_eq!(kind, model[index][port as usize], "domain {index} port {port}");
            bound += usize::from(kind.is_some());
        }
        assert_eq!(bound, model[index].iter().filter(|kind| kind.is_some()).count());
    }
}

#[test]
fn randomized_sequence_keeps_invariants() {
    const DOMAINS: usize = 3;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut tables: Vec<EventTable> =
        (0..DOMAINS as DomainId).map(|id| new(id, 12 + 60 * Port::from(id), 2).unwrap()).collect();
    let mut model = vec![vec![None; MAX_PORTS]; DOMAINS];
    let lowest_free = |model: &[Option<char>], table: &EventTable| {
        (1..=table.max_port).find(|&port| model[port as usize].is_none()).ok_or(XenError::ENOSPC)
    };
    // Successful cross-domain binds, loopback binds, closes needing a peer, resets.
    let mut seen = [0usize; 4];
    for _ in 0..20_000 {
        let d = rng.below(DOMAINS as u64) as usize;
        let other = rng.below(DOMAINS as u64) as usize;
        let port = rng.below(80);
        let vcpu = rng.below(3);
        match rng.below(9) {
            0 => {
                let expected = lowest_free(&model[d], &tables[d]);
                let got = tables[d].alloc_unbound(other as DomainId);
                assert_eq!(got, expected);
                if let Ok(port) = got {
                    model[d][port as usize] = Some('u');
                }
            }
            1 => {
                let expected = lowest_free(&model[d], &tables[d]).and_then(|local| {
                    match tables[other].channel(port).map(|channel| channel.state) {
                        Some(PortState::Unbound { remote }) if usize::from(remote) == d => {
                            Ok(local)
                        }
                        _ => Err(XenError::EINVAL),
                    }
                });
                let got = if d == other {
                    tables[d].bind_interdomain(None, port)
                } else {
                    let (local, remote) = pair(&mut tables, d, other);
                    local.bind_interdomain(Some(remote), port)
                };
                assert_eq!(got.map(|bound| bound.port), expected);
                if let Ok(local) = expected {
                    seen[usize::from(d == other)] += 1;
                    model[d][local as usize] = Some('i');
                    model[other][port as usize] = Some('i');
                }
            }
            2 => {
                let virq = [VIRQ_TIMER, VIRQ_CONSOLE, VIRQ_DEBUG][rng.below(3) as usize];
                let expected = if virq == VIRQ_CONSOLE && vcpu != 0 {
                    Err(XenError::EINVAL)
                } else if vcpu >= 2 {
                    Err(XenError::ENOENT)
                } else if tables[d].virq_port(virq, vcpu).is_some() {
                    Err(XenError::EEXIST)
                } else {
                    lowest_free(&model[d], &tables[d])
                };
                let got = tables[d].bind_virq(virq, vcpu);
                assert_eq!(got, expected);
                if let Ok(port) = got {
                    model[d][port as usize] = Some('v');
                }
            }
            3 => {
                let got = tables[d].bind_ipi(vcpu);
                let expected = if vcpu >= 2 {
                    Err(XenError::ENOENT)
                } else {
                    lowest_free(&model[d], &tables[d])
                };
                assert_eq!(got, expected);
                if let Ok(port) = got {
                    model[d][port as usize] = Some('p');
                }
            }
            4 | 5 => match (tables[d].channel(port).map(|c| c.state), tables[d].close(port)) {
                (before, Ok(Close::Done)) => {
                    // A loopback's other end (checked to point back by `check`) is now unbound.
                    if let Some(PortState::Interdomain { remote_port, .. }) = before {
                        model[d][remote_port as usize] = Some('u');
                    }
                    model[d][port as usize] = None;
                }
                (_, Ok(Close::NeedsPeer { port, peer })) => {
                    let peer = usize::from(peer);
                    let PortState::Interdomain { remote_port, .. } =
                        tables[d].channel(port).unwrap().state
                    else {
                        panic!("NeedsPeer on a port that is not interdomain");
                    };
                    let (local, remote) = pair(&mut tables, d, peer);
                    local.close_with_peer(Some(remote), port).unwrap();
                    seen[2] += 1;
                    model[d][port as usize] = None;
                    model[peer][remote_port as usize] = Some('u');
                }
                (_, Err(error)) => {
                    assert_eq!(error, XenError::EINVAL);
                    assert!(port == 0 || model[d].get(port as usize).copied().flatten().is_none());
                }
            },
            6 => {
                let result = tables[d].send(port);
                let kind = model[d].get(port as usize).copied().flatten();
                assert_eq!(
                    result.is_ok(),
                    matches!(kind, Some('u' | 'i' | 'p')),
                    "send on {kind:?}"
                );
                if let Ok(SendTarget::Remote { domain, port }) = result {
                    tables[usize::from(domain)].mark_pending(port);
                } else if let Ok(SendTarget::Local { port }) = result {
                    tables[d].mark_pending(port);
                }
            }
            7 => {
                let _ = tables[d].bind_vcpu(port, vcpu);
                if rng.below(2) == 0 {
                    set_mask(&tables[d], port);
                } else {
                    let _ = tables[d].unmask(port);
                }
            }
            _ => {
                if rng.below(20) == 0 {
                    let peers: Vec<(usize, Port)> = (1..MAX_PORTS as Port)
                        .filter_map(|port| match tables[d].channel(port)?.state {
                            PortState::Interdomain { remote, remote_port } => {
                                Some((usize::from(remote), remote_port))
                            }
                            _ => None,
                        })
                        .collect();
                    while let Close::NeedsPeer { port, peer } = tables[d].reset() {
                        let (local, remote) = pair(&mut tables, d, usize::from(peer));
                        local.close_with_peer(Some(remote), port).unwrap();
                    }
                    for (peer, remote_port) in peers {
                        model[peer][remote_port as usize] = Some('u');
                    }
                    for kind in &mut model[d][1..] {
                        *kind = None;
                    }
                    seen[3] += 1;
                }
            }
        }
        check(&tables, &model);
    }
    assert!(seen.iter().all(|&count| count > 10), "the sequence exercised too little: {seen:?}");
}
