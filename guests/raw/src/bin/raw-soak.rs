//! raw-soak: opens and closes N sockets (argv[1], default 100000) in a bounded loop — TCP and
//! UDP, IPv4 and IPv6: created and dropped at once, bound, bound and streaming, listening, and
//! connected pairs over loopback (with one byte each way). The host checks that its fd count
//! and open-socket counter stay flat while this runs and are back at their baseline after.
//!
//! Every socket is dropped within the iteration that made it, so at most a handful are open
//! at once. Connected pairs close from the server side first, so the soak does not fill the
//! ephemeral port range with TIME_WAIT entries. The loop also stops at a time limit (argv[2] seconds, default 600) and fails if it
//! is reached before N sockets were opened.

use guest_support::{Deadline, check, fail, finish, start};
use raw::{
    IpAddressFamily as Family, Network, create_tcp_socket, create_udp_socket, instance_network, lo,
    local_addr_tcp, local_addr_udp, new_tcp, read_exact, read_to_closed, tcp_accept, tcp_bind,
    tcp_connect, tcp_listen, tcp_listener, udp_bind, write_all,
};

fn main() {
    start("raw-soak");
    let mut args = std::env::args().skip(1);
    let n: u64 = match args.next().map(|a| a.parse()) {
        None => 100_000,
        Some(Ok(n)) => n,
        Some(Err(_)) => fail("raw-soak: argument", "N must be a number"),
    };
    let secs: u64 = match args.next().map(|a| a.parse()) {
        None => 600,
        Some(Ok(s)) => s,
        Some(Err(_)) => fail("raw-soak: argument", "the time limit must be a number"),
    };
    let deadline = Deadline::secs(secs);
    let net = instance_network();
    // One listener per family that the connected pairs use, so that every pair costs one
    // ephemeral port, not two.
    let listeners = [
        tcp_listener("soak: listener v4", &net, Family::Ipv4),
        tcp_listener("soak: listener v6", &net, Family::Ipv6),
    ];
    let mut opened: u64 = 2;
    let mut i: u64 = 0;
    while opened < n {
        if deadline.expired() {
            fail(
                "soak: time limit",
                format!("only {opened} of {n} sockets within {secs} s"),
            );
        }
        let family = if i.is_multiple_of(2) {
            Family::Ipv4
        } else {
            Family::Ipv6
        };
        opened += match i % 8 {
            0 | 1 => create_and_drop(family),
            2 => bound_tcp(&net, family),
            3 | 4 => bound_udp(&net, family, i % 8 == 4),
            5 => listening(&net, family),
            _ => connected(&net, &listeners[(i % 2) as usize]),
        };
        i += 1;
    }
    check("soak: every socket opened", opened >= n, || {
        format!("{opened} < {n}")
    });
    drop(listeners);
    println!("raw-soak: opened {opened} sockets in {i} iterations");
    finish();
}

/// One TCP and one UDP socket, created and dropped without any other call.
fn create_and_drop(family: Family) -> u64 {
    match create_tcp_socket(family) {
        Ok(s) => drop(s),
        Err(e) => fail("soak: create-tcp-socket", format!("{e:?}")),
    }
    match create_udp_socket(family) {
        Ok(s) => drop(s),
        Err(e) => fail("soak: create-udp-socket", format!("{e:?}")),
    }
    2
}

fn bound_tcp(net: &Network, family: Family) -> u64 {
    let s = new_tcp("soak: bound tcp", family);
    if let Err(e) = tcp_bind("soak: bind tcp", &s, net, lo(family, 0)) {
        fail("soak: bind tcp", format!("{e:?}"));
    }
    local_addr_tcp("soak: bound tcp address", &s);
    1
}

/// A bound UDP socket, with a stream pair (to itself when `peer`) that sends one datagram.
fn bound_udp(net: &Network, family: Family, peer: bool) -> u64 {
    let s = match create_udp_socket(family) {
        Ok(s) => s,
        Err(e) => fail("soak: create-udp-socket", format!("{e:?}")),
    };
    if let Err(e) = udp_bind("soak: bind udp", &s, net, lo(family, 0)) {
        fail("soak: bind udp", format!("{e:?}"));
    }
    let me = local_addr_udp("soak: udp address", &s);
    let (incoming, outgoing) = match s.stream(peer.then_some(me)) {
        Ok(p) => p,
        Err(e) => fail("soak: udp stream", format!("{e:?}")),
    };
    if peer {
        match outgoing.check_send() {
            Ok(0) => {}
            Ok(_) => {
                if let Err(e) = outgoing.send(&[raw::dgram(b"x", None)]) {
                    fail("soak: udp send", format!("{e:?}"));
                }
            }
            Err(e) => fail("soak: check-send", format!("{e:?}")),
        }
    }
    drop((incoming, outgoing, s));
    1
}

fn listening(net: &Network, family: Family) -> u64 {
    let s = new_tcp("soak: listener", family);
    if let Err(e) = tcp_bind("soak: bind listener", &s, net, lo(family, 0)) {
        fail("soak: bind listener", format!("{e:?}"));
    }
    if let Err(e) = tcp_listen("soak: listen", &s) {
        fail("soak: listen", format!("{e:?}"));
    }
    1
}

/// A client connected to `listener` and the accepted socket: one byte each way.
fn connected(net: &Network, listener: &raw::TcpSocket) -> u64 {
    let addr = local_addr_tcp("soak: listener address", listener);
    let family = raw::family_of(&addr);
    let client = new_tcp("soak: client", family);
    let (cin, cout) = match tcp_connect("soak: connect", &client, net, addr) {
        Ok(s) => s,
        Err(e) => fail("soak: connect", format!("{e:?}")),
    };
    let (server, sin, sout) = match tcp_accept("soak: accept", listener) {
        Ok(s) => s,
        Err(e) => fail("soak: accept", format!("{e:?}")),
    };
    write_all("soak: client writes", &cout, b"q");
    read_exact("soak: server reads", &sin, 1);
    write_all("soak: server writes", &sout, b"a");
    read_exact("soak: client reads", &cin, 1);
    // The server side closes first and the client waits for the end of the stream, so the
    // TIME_WAIT entries stay on the listener's port and the client's ephemeral port is free
    // again at once (a long soak must not use up the ephemeral range).
    drop((sin, sout, server));
    read_to_closed("soak: client sees the end", &cin, 0);
    drop((cin, cout, client));
    2
}
