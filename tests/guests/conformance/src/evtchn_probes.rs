//! `event_channel_op` probes: every operation number with bad pointers, each operation on the
//! prober's own ports (ports printed relative to a marker port allocated just before), the
//! inter-domain channel with the peer (bind, send and its echo, status, close, rebind), and
//! last the FIFO ABI and `EVTCHNOP_reset`, which return the domain to the 2-level ABI. Every
//! probe closes the ports it opened and clears what it left pending.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;

use xenolith_runtime::events::Port;

use crate::guest::{PEER_PORT, PEER_PORT_OTHER};
use crate::runner::{evtchn, hc2, raw, yield_times, Cx, Page, Runner, UNMAPPED};
use crate::xen;

/// `evtchn_alloc_unbound`: dom @0, remote_dom @2, port @4.
pub fn alloc_unbound(dom: u16, remote: u16) -> (i64, u32) {
    let mut page = Page::new();
    page.w16(0, dom);
    page.w16(2, remote);
    let ret = evtchn(xen::EVTCHNOP_alloc_unbound, &mut page);
    (ret, page.r32(4))
}

/// `evtchn_bind_interdomain`: remote_dom @0, remote_port @4, local_port @8.
pub fn bind_interdomain(remote: u16, remote_port: u32) -> (i64, u32) {
    let mut page = Page::new();
    page.w16(0, remote);
    page.w32(4, remote_port);
    let ret = evtchn(xen::EVTCHNOP_bind_interdomain, &mut page);
    (ret, page.r32(8))
}

/// `evtchn_bind_virq`: virq @0, vcpu @4, port @8.
fn bind_virq(virq: u32, vcpu: u32) -> (i64, u32) {
    let mut page = Page::new();
    page.w32(0, virq);
    page.w32(4, vcpu);
    let ret = evtchn(xen::EVTCHNOP_bind_virq, &mut page);
    (ret, page.r32(8))
}

/// `evtchn_bind_ipi`: vcpu @0, port @4.
fn bind_ipi(vcpu: u32) -> (i64, u32) {
    let mut page = Page::new();
    page.w32(0, vcpu);
    let ret = evtchn(xen::EVTCHNOP_bind_ipi, &mut page);
    (ret, page.r32(4))
}

/// An operation whose request is one port (`close`, `send`, `unmask`).
pub fn port_op(cmd: u32, port: u32) -> i64 {
    let mut page = Page::new();
    page.w32(0, port);
    evtchn(cmd, &mut page)
}

/// `evtchn_bind_vcpu`: port @0, vcpu @4.
fn bind_vcpu(port: u32, vcpu: u32) -> i64 {
    let mut page = Page::new();
    page.w32(0, port);
    page.w32(4, vcpu);
    evtchn(xen::EVTCHNOP_bind_vcpu, &mut page)
}

/// `evtchn_status` (dom @0, port @4, status @8, vcpu @12, u @16), normalised: the state, the
/// vCPU, and for an unbound or inter-domain port the remote relative to the prober.
fn status(cx: &Cx, dom: u16, port: u32) -> String {
    let mut page = Page::new();
    page.w16(0, dom);
    page.w32(4, port);
    page.w32(8, 0x5a5a);
    let ret = evtchn(xen::EVTCHNOP_status, &mut page);
    if ret != 0 {
        return raw(ret);
    }
    let state = page.r32(8);
    let remote = |id: u16| {
        if id == cx.self_id {
            "self"
        } else if id == cx.peer_id {
            "peer"
        } else {
            "other"
        }
    };
    let detail = match state {
        1 => format!(" remote={}", remote(page.r16(16))),
        2 => format!(" remote={} rport={}", remote(page.r16(16)), page.r32(20)),
        4 => format!(" virq={}", page.r32(16)),
        _ => String::new(),
    };
    format!("0 st={state} vcpu={}{detail}", page.r32(12))
}

fn close(port: u32) -> i64 {
    port_op(xen::EVTCHNOP_close, port)
}

/// A fresh unbound port (for `DOMID_SELF`), the reference for the ports a probe prints.
fn marker() -> u32 {
    alloc_unbound(xen::DOMID_SELF, xen::DOMID_SELF).1
}

/// `port` relative to `marker`.
fn rel(marker: u32, port: u32) -> String {
    if port >= marker {
        format!("m+{}", port - marker)
    } else {
        format!("m-{}", marker - port)
    }
}

/// Clears `port`'s pending bit; whether it was set.
fn take(port: u32) -> bool {
    port < 4096 && Port(port).take_pending()
}

/// Waits (bounded) for `port` to become pending, then clears it.
fn wait_pending(port: u32) -> bool {
    for _ in 0..50_000 {
        if take(port) {
            return true;
        }
        yield_times(1);
    }
    false
}

const BAD_PORTS: [(&str, u32); 7] = [
    ("p0", 0),
    ("p1023", 1023),
    ("p4095", 4095),
    ("p4096", 4096),
    ("p131071", 131_071),
    ("p131072", 131_072),
    ("pmax", u32::MAX),
];

pub fn all(r: &mut Runner) {
    numbers(r);
    unbound(r);
    virq(r);
    ipi(r);
    port_ops(r);
    interdomain(r);
    fifo_and_reset(r);
}

fn numbers(r: &mut Runner) {
    for cmd in 0..=16u32 {
        r.probe(&format!("evtchn.{cmd}.null"), |_| {
            raw(hc2(xen::HC_event_channel_op, u64::from(cmd), 0))
        });
        r.probe(&format!("evtchn.{cmd}.unmapped"), |_| {
            raw(hc2(xen::HC_event_channel_op, u64::from(cmd), UNMAPPED))
        });
    }
    r.probe("evtchn.cmd_ffff.page", |_| {
        let mut page = Page::new();
        raw(evtchn(0xffff, &mut page))
    });
}

fn unbound(r: &mut Runner) {
    for dom in ["self", "selfid", "peer", "nonexistent", "io", "invalid"] {
        for remote in ["self", "selfid", "peer", "nonexistent", "io", "invalid"] {
            r.probe(&format!("evtchn.alloc_unbound.{dom}.{remote}"), |cx| {
                let m = marker();
                let (ret, port) = alloc_unbound(cx.domid(dom), cx.domid(remote));
                let answer = if ret == 0 {
                    let st = status(cx, xen::DOMID_SELF, port);
                    let closed = close(port);
                    format!("0 port={} status=[{st}] close={closed}", rel(m, port))
                } else {
                    raw(ret)
                };
                close(m);
                answer
            });
        }
    }
    r.probe("evtchn.alloc_unbound.three_in_a_row", |_| {
        let m = marker();
        let a = alloc_unbound(xen::DOMID_SELF, xen::DOMID_SELF).1;
        let b = alloc_unbound(xen::DOMID_SELF, xen::DOMID_SELF).1;
        let c = alloc_unbound(xen::DOMID_SELF, xen::DOMID_SELF).1;
        let answer = format!("{} {} {}", rel(m, a), rel(m, b), rel(m, c));
        for p in [a, b, c, m] {
            close(p);
        }
        answer
    });
    r.probe("evtchn.alloc_unbound.reuses_lowest", |_| {
        let m = marker();
        let a = alloc_unbound(xen::DOMID_SELF, xen::DOMID_SELF).1;
        let b = alloc_unbound(xen::DOMID_SELF, xen::DOMID_SELF).1;
        close(a);
        let c = alloc_unbound(xen::DOMID_SELF, xen::DOMID_SELF).1;
        let answer = format!("reused={}", rel(m, c));
        for p in [b, c, m] {
            close(p);
        }
        answer
    });
    r.probe("evtchn.alloc_unbound.unaligned_request", |_| {
        let mut page = Page::new();
        page.w16(1, xen::DOMID_SELF);
        page.w16(3, xen::DOMID_SELF);
        let ret =
            hc2(xen::HC_event_channel_op, u64::from(xen::EVTCHNOP_alloc_unbound), page.addr() + 1);
        let port = page.r32(5);
        if ret == 0 {
            close(port);
        }
        raw(ret)
    });
}

fn virq(r: &mut Runner) {
    let virqs = (0..=xen::NR_VIRQS + 1).chain([0xffff, u32::MAX]);
    for virq in virqs {
        for (vname, vcpu) in [("v0", 0u32), ("v1", 1), ("v2", 2), ("vmax", u32::MAX)] {
            r.probe(&format!("evtchn.bind_virq.{virq}.{vname}"), |cx| {
                let m = marker();
                let (ret, port) = bind_virq(virq, vcpu);
                let answer = if ret == 0 {
                    let st = status(cx, xen::DOMID_SELF, port);
                    let send = port_op(xen::EVTCHNOP_send, port);
                    let closed = close(port);
                    take(port);
                    format!("0 port={} status=[{st}] send={send} close={closed}", rel(m, port))
                } else {
                    raw(ret)
                };
                close(m);
                answer
            });
        }
    }
    for virq in [0u32, 1, 3, 11] {
        r.probe(&format!("evtchn.bind_virq.{virq}.twice"), |_| {
            let (r1, p1) = bind_virq(virq, 0);
            let (r2, p2) = bind_virq(virq, 0);
            if r2 == 0 {
                close(p2);
            }
            if r1 == 0 {
                close(p1);
            }
            format!("{r1} again={r2}")
        });
    }
}

fn ipi(r: &mut Runner) {
    for (vname, vcpu) in [("v0", 0u32), ("v1", 1), ("v2", 2), ("v255", 255), ("vmax", u32::MAX)] {
        r.probe(&format!("evtchn.bind_ipi.{vname}"), |cx| {
            let m = marker();
            let (ret, port) = bind_ipi(vcpu);
            let answer = if ret == 0 {
                let st = status(cx, xen::DOMID_SELF, port);
                let send = port_op(xen::EVTCHNOP_send, port);
                let pending = take(port);
                let closed = close(port);
                format!(
                    "0 port={} status=[{st}] send={send} pending={pending} close={closed}",
                    rel(m, port)
                )
            } else {
                raw(ret)
            };
            close(m);
            answer
        });
    }
    r.probe("evtchn.bind_ipi.masked_send_unmask", |_| {
        let (ret, port) = bind_ipi(0);
        if ret != 0 {
            return raw(ret);
        }
        Port(port).mask();
        let send = port_op(xen::EVTCHNOP_send, port);
        let pending = Port(port).is_pending();
        let unmask = port_op(xen::EVTCHNOP_unmask, port);
        let still = take(port);
        let closed = close(port);
        // Unmask the slot again for the ports that reuse it.
        port_op(xen::EVTCHNOP_unmask, port);
        format!("0 send={send} pending={pending} unmask={unmask} still={still} close={closed}")
    });
}

fn port_ops(r: &mut Runner) {
    for (name, port) in BAD_PORTS {
        r.probe(&format!("evtchn.status.{name}"), |cx| status(cx, xen::DOMID_SELF, port));
        r.probe(&format!("evtchn.close.{name}"), |_| raw(close(port)));
        r.probe(&format!("evtchn.send.{name}"), |_| raw(port_op(xen::EVTCHNOP_send, port)));
        r.probe(&format!("evtchn.unmask.{name}"), |_| raw(port_op(xen::EVTCHNOP_unmask, port)));
        r.probe(&format!("evtchn.bind_vcpu.{name}"), |_| raw(bind_vcpu(port, 0)));
    }
    for which in ["selfid", "peer", "nonexistent", "io", "invalid"] {
        r.probe(&format!("evtchn.status.dom_{which}"), |cx| {
            let (_, port) = alloc_unbound(xen::DOMID_SELF, xen::DOMID_SELF);
            let answer = status(cx, cx.domid(which), port);
            close(port);
            answer
        });
    }
    r.probe("evtchn.status.peer_port", |cx| status(cx, cx.peer_id, PEER_PORT));
    r.probe("evtchn.close.twice", |_| {
        let (_, port) = alloc_unbound(xen::DOMID_SELF, xen::DOMID_SELF);
        let first = close(port);
        let second = close(port);
        format!("{first} again={second}")
    });
    r.probe("evtchn.status.after_close", |cx| {
        let (_, port) = alloc_unbound(xen::DOMID_SELF, xen::DOMID_SELF);
        close(port);
        status(cx, xen::DOMID_SELF, port)
    });
    r.probe("evtchn.send.unbound", |_| {
        let (_, port) = alloc_unbound(xen::DOMID_SELF, xen::DOMID_SELF);
        let send = port_op(xen::EVTCHNOP_send, port);
        let pending = take(port);
        close(port);
        format!("{send} pending={pending}")
    });
    r.probe("evtchn.loopback.self", |cx| {
        let m = marker();
        let (_, a) = alloc_unbound(xen::DOMID_SELF, xen::DOMID_SELF);
        let (ret, b) = bind_interdomain(xen::DOMID_SELF, a);
        if ret != 0 {
            close(a);
            close(m);
            return raw(ret);
        }
        let sa = status(cx, xen::DOMID_SELF, a);
        let send_b = port_op(xen::EVTCHNOP_send, b);
        let a_pending = take(a);
        let b_pending = take(b);
        let send_a = port_op(xen::EVTCHNOP_send, a);
        let b_pending2 = take(b);
        let close_a = close(a);
        let sb = status(cx, xen::DOMID_SELF, b);
        let send_b2 = port_op(xen::EVTCHNOP_send, b);
        let close_b = close(b);
        close(m);
        format!(
            "0 b={} a=[{sa}] send={send_b} a_pend={a_pending} b_pend={b_pending} back={send_a},{b_pending2} close_a={close_a} b=[{sb}] send_b={send_b2} close_b={close_b}",
            rel(m, b)
        )
    });
    r.probe("evtchn.loopback.selfid", |cx| {
        let (_, a) = alloc_unbound(xen::DOMID_SELF, xen::DOMID_SELF);
        let (ret, b) = bind_interdomain(cx.self_id, a);
        let st = if ret == 0 { status(cx, xen::DOMID_SELF, b) } else { String::new() };
        if ret == 0 {
            close(b);
        }
        close(a);
        format!("{ret} status=[{st}]")
    });
    r.probe("evtchn.bind_interdomain.own_port_for_peer", |cx| {
        let (_, a) = alloc_unbound(xen::DOMID_SELF, cx.peer_id);
        let (ret, b) = bind_interdomain(xen::DOMID_SELF, a);
        if ret == 0 {
            close(b);
        }
        close(a);
        raw(ret)
    });
    r.probe("evtchn.bind_interdomain.own_bound_port", |_| {
        let (_, a) = alloc_unbound(xen::DOMID_SELF, xen::DOMID_SELF);
        let (_, b) = bind_interdomain(xen::DOMID_SELF, a);
        let (ret, c) = bind_interdomain(xen::DOMID_SELF, a);
        if ret == 0 {
            close(c);
        }
        close(b);
        close(a);
        raw(ret)
    });
    r.probe("evtchn.bind_interdomain.to_itself", |_| {
        let (_, a) = alloc_unbound(xen::DOMID_SELF, xen::DOMID_SELF);
        // The port that will be allocated next is `a + 1`: binding it to itself.
        let (ret, b) = bind_interdomain(xen::DOMID_SELF, a + 1);
        if ret == 0 {
            close(b);
        }
        close(a);
        raw(ret)
    });
    for (name, vcpu) in [("v0", 0u32), ("v1", 1), ("v2", 2), ("vmax", u32::MAX)] {
        r.probe(&format!("evtchn.bind_vcpu.unbound.{name}"), |cx| {
            let (_, port) = alloc_unbound(xen::DOMID_SELF, xen::DOMID_SELF);
            let ret = bind_vcpu(port, vcpu);
            let st = status(cx, xen::DOMID_SELF, port);
            close(port);
            format!("{ret} status=[{st}]")
        });
        r.probe(&format!("evtchn.bind_vcpu.ipi.{name}"), |_| {
            let (_, port) = bind_ipi(0);
            let ret = bind_vcpu(port, vcpu);
            close(port);
            raw(ret)
        });
        r.probe(&format!("evtchn.bind_vcpu.virq_timer.{name}"), |_| {
            let (bound, port) = bind_virq(0, 0);
            if bound != 0 {
                return format!("bind={bound}");
            }
            let ret = bind_vcpu(port, vcpu);
            close(port);
            raw(ret)
        });
        r.probe(&format!("evtchn.bind_vcpu.virq_global.{name}"), |_| {
            let (bound, port) = bind_virq(3, 0);
            if bound != 0 {
                return format!("bind={bound}");
            }
            let ret = bind_vcpu(port, vcpu);
            close(port);
            raw(ret)
        });
    }
    r.probe("evtchn.unmask.unbound", |_| {
        let (_, port) = alloc_unbound(xen::DOMID_SELF, xen::DOMID_SELF);
        let ret = port_op(xen::EVTCHNOP_unmask, port);
        close(port);
        raw(ret)
    });
    r.probe("evtchn.bind_pirq.zero", |_| {
        // evtchn_bind_pirq: pirq @0, flags @4, port @8.
        let mut page = Page::new();
        raw(evtchn(xen::EVTCHNOP_bind_pirq, &mut page))
    });
    r.probe("evtchn.bind_pirq.pirq1", |_| {
        let mut page = Page::new();
        page.w32(0, 1);
        page.w32(4, 1);
        raw(evtchn(xen::EVTCHNOP_bind_pirq, &mut page))
    });
}

fn interdomain(r: &mut Runner) {
    r.probe("evtchn.peer.bind_send_echo", |cx| {
        let m = marker();
        let (ret, port) = bind_interdomain(cx.peer_id, PEER_PORT);
        if ret != 0 {
            close(m);
            return raw(ret);
        }
        let st = status(cx, xen::DOMID_SELF, port);
        let send = port_op(xen::EVTCHNOP_send, port);
        let echo = wait_pending(port);
        let closed = close(port);
        close(m);
        format!("0 port={} status=[{st}] send={send} echo={echo} close={closed}", rel(m, port))
    });
    r.probe("evtchn.peer.bind_twice", |cx| {
        let (r1, p1) = bind_interdomain(cx.peer_id, PEER_PORT);
        let (r2, p2) = bind_interdomain(cx.peer_id, PEER_PORT);
        if r2 == 0 {
            close(p2);
        }
        if r1 == 0 {
            close(p1);
        }
        format!("{r1} again={r2}")
    });
    r.probe("evtchn.peer.rebind_after_close", |cx| {
        let (r1, p1) = bind_interdomain(cx.peer_id, PEER_PORT);
        let c1 = close(p1);
        let (r2, p2) = bind_interdomain(cx.peer_id, PEER_PORT);
        let send = port_op(xen::EVTCHNOP_send, p2);
        let echo = wait_pending(p2);
        let c2 = close(p2);
        format!("{r1} close={c1} rebind={r2} send={send} echo={echo} close={c2}")
    });
    r.probe("evtchn.peer.close_then_status", |cx| {
        let (ret, port) = bind_interdomain(cx.peer_id, PEER_PORT);
        if ret != 0 {
            return raw(ret);
        }
        let closed = close(port);
        let st = status(cx, xen::DOMID_SELF, port);
        let send = port_op(xen::EVTCHNOP_send, port);
        format!("0 close={closed} status=[{st}] send={send}")
    });
    r.probe("evtchn.peer.bind_vcpu1_echo", |cx| {
        let (ret, port) = bind_interdomain(cx.peer_id, PEER_PORT);
        if ret != 0 {
            return raw(ret);
        }
        let moved = bind_vcpu(port, 1);
        let st = status(cx, xen::DOMID_SELF, port);
        let send = port_op(xen::EVTCHNOP_send, port);
        let echo = wait_pending(port);
        let closed = close(port);
        format!("0 bind_vcpu={moved} status=[{st}] send={send} echo={echo} close={closed}")
    });
    r.probe("evtchn.peer.masked_echo_then_unmask", |cx| {
        let (ret, port) = bind_interdomain(cx.peer_id, PEER_PORT);
        if ret != 0 {
            return raw(ret);
        }
        Port(port).mask();
        let send = port_op(xen::EVTCHNOP_send, port);
        let echo = wait_pending(port);
        let unmask = port_op(xen::EVTCHNOP_unmask, port);
        let closed = close(port);
        port_op(xen::EVTCHNOP_unmask, port);
        format!("0 send={send} echo={echo} unmask={unmask} close={closed}")
    });
    r.probe("evtchn.peer.send_burst", |cx| {
        let (ret, port) = bind_interdomain(cx.peer_id, PEER_PORT);
        if ret != 0 {
            return raw(ret);
        }
        let mut sends = 0;
        for _ in 0..16 {
            if port_op(xen::EVTCHNOP_send, port) == 0 {
                sends += 1;
            }
        }
        let echo = wait_pending(port);
        // Let any later echo arrive, then clear it.
        yield_times(2000);
        take(port);
        let closed = close(port);
        format!("0 sends={sends} echo={echo} close={closed}")
    });
    for (name, port) in BAD_PORTS.iter().copied().chain([("other", PEER_PORT_OTHER), ("p3", 3)]) {
        r.probe(&format!("evtchn.peer.bind_bad.{name}"), |cx| {
            let (ret, local) = bind_interdomain(cx.peer_id, port);
            if ret == 0 {
                close(local);
            }
            raw(ret)
        });
    }
    for which in ["nonexistent", "io", "xen", "invalid"] {
        r.probe(&format!("evtchn.bind_interdomain.dom_{which}"), |cx| {
            let (ret, local) = bind_interdomain(cx.domid(which), 1);
            if ret == 0 {
                close(local);
            }
            raw(ret)
        });
    }
    r.probe("evtchn.peer.alloc_in_peer", |cx| {
        let (ret, port) = alloc_unbound(cx.peer_id, cx.self_id);
        let _ = port;
        raw(ret)
    });
}

/// `evtchn_init_control`: control_gfn @0, offset @8, vcpu @12, link_bits @16.
fn init_control(gfn: u64, offset: u32, vcpu: u32) -> (i64, u8) {
    let mut page = Page::new();
    page.w64(0, gfn);
    page.w32(8, offset);
    page.w32(12, vcpu);
    page.w8(16, 0x5a);
    let ret = evtchn(xen::EVTCHNOP_init_control, &mut page);
    (ret, page.0[16])
}

fn leaked_gfn() -> u64 {
    Box::leak(Page::new()).gfn()
}

fn fifo_and_reset(r: &mut Runner) {
    r.probe("evtchn.expand_array.before_init", |_| {
        let mut page = Page::new();
        page.w64(0, leaked_gfn());
        raw(evtchn(xen::EVTCHNOP_expand_array, &mut page))
    });
    r.probe("evtchn.set_priority.before_init", |_| {
        let (_, port) = alloc_unbound(xen::DOMID_SELF, xen::DOMID_SELF);
        let mut page = Page::new();
        page.w32(0, port);
        page.w32(4, 5);
        let ret = evtchn(xen::EVTCHNOP_set_priority, &mut page);
        close(port);
        raw(ret)
    });
    for (name, which, offset, vcpu) in [
        ("unmapped_gfn", 0u8, 0u32, 0u32),
        ("offset4096", 1, 4096, 0),
        ("offset_unaligned", 1, 1, 0),
        ("offset4088", 1, 4088, 0),
        ("vcpu2", 1, 0, 2),
        ("vcpu_max", 1, 0, u32::MAX),
    ] {
        r.probe(&format!("evtchn.init_control.{name}"), |_| {
            let gfn = if which == 0 { UNMAPPED >> 12 } else { leaked_gfn() };
            let (ret, link_bits) = init_control(gfn, offset, vcpu);
            format!("{ret} link_bits={link_bits}")
        });
    }
    r.probe("evtchn.init_control.valid_v0", |_| {
        let (ret, link_bits) = init_control(leaked_gfn(), 0, 0);
        format!("{ret} link_bits={link_bits}")
    });
    r.probe("evtchn.init_control.again_v0", |_| {
        let (ret, link_bits) = init_control(leaked_gfn(), 0, 0);
        format!("{ret} link_bits={link_bits}")
    });
    r.probe("evtchn.init_control.valid_v1", |_| {
        let (ret, link_bits) = init_control(leaked_gfn(), 64, 1);
        format!("{ret} link_bits={link_bits}")
    });
    r.probe("evtchn.expand_array.valid", |_| {
        let mut page = Page::new();
        page.w64(0, leaked_gfn());
        raw(evtchn(xen::EVTCHNOP_expand_array, &mut page))
    });
    r.probe("evtchn.expand_array.unmapped", |_| {
        let mut page = Page::new();
        page.w64(0, UNMAPPED >> 12);
        raw(evtchn(xen::EVTCHNOP_expand_array, &mut page))
    });
    for priority in [0u32, 7, 15, 16, u32::MAX] {
        r.probe(&format!("evtchn.set_priority.{priority:#x}"), |_| {
            let (_, port) = alloc_unbound(xen::DOMID_SELF, xen::DOMID_SELF);
            let mut page = Page::new();
            page.w32(0, port);
            page.w32(4, priority);
            let ret = evtchn(xen::EVTCHNOP_set_priority, &mut page);
            close(port);
            raw(ret)
        });
    }
    r.probe("evtchn.set_priority.bad_port", |_| {
        let mut page = Page::new();
        page.w32(0, 4000);
        raw(evtchn(xen::EVTCHNOP_set_priority, &mut page))
    });
    r.probe("evtchn.fifo.alloc_status", |cx| {
        let m = marker();
        let (ret, port) = alloc_unbound(xen::DOMID_SELF, xen::DOMID_SELF);
        let st = status(cx, xen::DOMID_SELF, port);
        close(port);
        close(m);
        format!("{ret} port={} status=[{st}]", rel(m, port))
    });
    for which in ["peer", "nonexistent", "selfid", "self"] {
        r.probe(&format!("evtchn.reset.{which}"), |cx| {
            let mut page = Page::new();
            page.w16(0, cx.domid(which));
            raw(evtchn(xen::EVTCHNOP_reset, &mut page))
        });
    }
    r.probe("evtchn.reset_cont.self", |_| {
        let mut page = Page::new();
        page.w16(0, xen::DOMID_SELF);
        raw(evtchn(xen::EVTCHNOP_reset_cont, &mut page))
    });
    r.probe("evtchn.after_reset.two_level", |cx| {
        let m = marker();
        let (ret, port) = bind_ipi(0);
        let send = port_op(xen::EVTCHNOP_send, port);
        let pending = take(port);
        let st = status(cx, xen::DOMID_SELF, port);
        close(port);
        close(m);
        format!("{ret} port={} send={send} pending={pending} status=[{st}]", rel(m, port))
    });
}
