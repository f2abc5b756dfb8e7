//! raw-policy: what a guest meets under a restrictive policy, and the spellings an attacker
//! would try. The host runs it under exactly this policy (tests/policy_attacks.rs):
//!
//! ```text
//! allow-outbound udp://127.0.0.1:*
//! deny-outbound  udp://127.0.0.2:*
//! allow-outbound tcp://echo.test:*          (name-bound)
//! allow-resolve  echo.test->127.0.0.1       (mapped: never asks a resolver)
//! deny-outbound  tcp://127.0.0.3:*
//! allow-inbound  tcp://127.0.0.1:* from 127.0.0.1
//! allow-inbound  udp://127.0.0.1:* from 127.0.0.1
//! ```
//!
//! The spec's argument checks come before the policy; a refused socket operation is
//! `access-denied`, a refused lookup `permanent-resolver-failure`.

use guest_support::{Deadline, check, check_eq, expect_err, expect_ok, finish, start};
use raw::wasi::sockets::ip_name_lookup::resolve_addresses;
use raw::{
    ErrorCode as E, IpAddress, IpAddressFamily as Family, IpSocketAddress, Network, dgram,
    instance_network, local_addr_tcp, local_addr_udp, new_tcp, new_udp, port_of, read_exact,
    tcp_accept, tcp_bind, tcp_connect, tcp_listener, udp_bind, udp_receive, udp_send, udp_streams,
    v4, v6, wait_ready, write_all,
};

fn main() {
    start("raw-policy");
    let net = instance_network();
    udp_batch_stops_at_the_denied_destination(&net);
    spec_checks_come_before_the_policy(&net);
    let listener = tcp_listener("name-bound: listener", &net, Family::Ipv4);
    let port = port_of(&local_addr_tcp("name-bound: listener address", &listener));
    name_bound_grant(&net, &listener, port);
    lookups(&net);
    refused_peer_is_reset(&net, &listener, port);
    refused_sender_is_dropped(&net);
    finish();
}

/// Resolves `name` to its addresses (bounded wait), or the resolver's error.
fn resolve(check: &str, net: &Network, name: &str) -> Result<Vec<IpAddress>, E> {
    let stream = resolve_addresses(net, name)?;
    let p = stream.subscribe();
    let deadline = Deadline::secs(10);
    let mut out = Vec::new();
    loop {
        match stream.resolve_next_address() {
            Ok(Some(ip)) => out.push(ip),
            Ok(None) => return Ok(out),
            Err(E::WouldBlock) if !deadline.expired() => wait_ready(check, &p, 5_000),
            Err(e) => return Err(e),
        }
    }
}

/// "`send` … sends each datagram until the first error occurred; if at least one was sent it
/// never returns an error": a denied destination inside a batch ends the batch there.
fn udp_batch_stops_at_the_denied_destination(net: &Network) {
    let rx = new_udp("batch: receiver", Family::Ipv4);
    expect_ok(
        "batch: bind receiver",
        udp_bind("batch", &rx, net, v4((127, 0, 0, 1), 0)),
    );
    let to = local_addr_udp("batch: receiver address", &rx);
    let (rx_in, _rx_out) = udp_streams("batch: receiver streams", &rx, None);
    let tx = new_udp("batch: sender", Family::Ipv4);
    expect_ok(
        "batch: bind sender",
        udp_bind("batch", &tx, net, v4((127, 0, 0, 1), 0)),
    );
    let (_tx_in, tx_out) = udp_streams("batch: sender streams", &tx, None);
    let denied = v4((127, 0, 0, 2), port_of(&to));
    let batch = [
        dgram(b"one", Some(to)),
        dgram(b"two", Some(to)),
        dgram(b"denied", Some(denied)),
        dgram(b"after", Some(to)),
    ];
    check_eq(
        "batch: sent until the denied one",
        udp_send("batch", &tx_out, &batch),
        Ok(2),
    );
    let got = udp_receive("batch: receiver gets the two", &rx_in, 2, 8);
    check_eq("batch: first", got[0].data.clone(), b"one".to_vec());
    check_eq("batch: second", got[1].data.clone(), b"two".to_vec());
    expect_err(
        "batch: a denied first datagram is the call's error",
        udp_send("batch", &tx_out, &[dgram(b"denied", Some(denied))]),
        E::AccessDenied,
    );
}

/// Unspecified, port 0 and IPv4-mapped destinations are `invalid-argument` whatever the policy.
fn spec_checks_come_before_the_policy(net: &Network) {
    let s4 = new_tcp("spec first: v4", Family::Ipv4);
    expect_err(
        "spec first: 0.0.0.0 as destination",
        s4.start_connect(net, v4((0, 0, 0, 0), 80)),
        E::InvalidArgument,
    );
    expect_err(
        "spec first: port 0",
        s4.start_connect(net, v4((127, 0, 0, 3), 0)),
        E::InvalidArgument,
    );
    expect_err(
        "policy: a denied address",
        s4.start_connect(net, v4((127, 0, 0, 3), 80)),
        E::AccessDenied,
    );
    let s6 = new_tcp("spec first: v6", Family::Ipv6);
    let mapped = v6((0, 0, 0, 0, 0, 0xffff, 0x7f00, 3), 80);
    expect_err(
        "spec first: IPv4-mapped",
        s6.start_connect(net, mapped),
        E::InvalidArgument,
    );
    expect_err(
        "spec first: :: as destination",
        s6.start_connect(net, v6((0, 0, 0, 0, 0, 0, 0, 0), 80)),
        E::InvalidArgument,
    );
    // IPv4-compatible `::127.0.0.3` is a valid v6 destination for the spec, and the policy
    // reads it as the denied 127.0.0.3.
    let compatible = v6((0, 0, 0, 0, 0, 0, 0x7f00, 3), 80);
    expect_err(
        "policy: IPv4-compatible spelling",
        s6.start_connect(net, compatible),
        E::AccessDenied,
    );
}

/// A name-bound grant opens exactly the addresses this instance's lookup returned.
fn name_bound_grant(net: &Network, listener: &raw::TcpSocket, port: u16) {
    let target = v4((127, 0, 0, 1), port);
    let before = new_tcp("name-bound: before the lookup", Family::Ipv4);
    expect_err(
        "name-bound: connect before resolving the name",
        before.start_connect(net, target),
        E::AccessDenied,
    );
    check_eq(
        "name-bound: the mapped name resolves",
        resolve("name-bound: resolve", net, "echo.test"),
        Ok(vec![IpAddress::Ipv4((127, 0, 0, 1))]),
    );
    let other = new_tcp("name-bound: an address not returned", Family::Ipv4);
    expect_err(
        "name-bound: connect to an address the lookup did not return",
        other.start_connect(net, v4((127, 0, 0, 2), port)),
        E::AccessDenied,
    );
    // The socket refused above is unchanged: it can still connect where it may.
    let (c_in, _c_out) = expect_ok(
        "name-bound: refused socket connects to a returned address",
        tcp_connect("name-bound: connect", &before, net, target),
    );
    let (_server, _srv_in, srv_out) = expect_ok(
        "name-bound: accept",
        tcp_accept("name-bound: accept", listener),
    );
    write_all("name-bound: server writes", &srv_out, b"granted");
    check_eq(
        "name-bound: the connection works",
        read_exact("name-bound: client reads", &c_in, 7),
        b"granted".to_vec(),
    );
}

/// Names are compared normalized; refused and malformed names never resolve.
fn lookups(net: &Network) {
    check_eq(
        "lookup: upper case and trailing dot",
        resolve("lookup: ECHO.test.", net, "ECHO.test."),
        Ok(vec![IpAddress::Ipv4((127, 0, 0, 1))]),
    );
    check_eq(
        "lookup: a name the policy refuses",
        resolve("lookup: refused", net, "other.test"),
        Err(E::PermanentResolverFailure),
    );
    for spelled in ["2130706433", "0x7f.1", "127.1"] {
        let r = resolve_addresses(net, spelled).map(drop);
        expect_err(
            &format!("lookup: numeric spelling {spelled}"),
            r,
            E::InvalidArgument,
        );
    }
    check_eq(
        "lookup: IP literals need no grant",
        resolve("lookup: literal", net, "127.0.0.3"),
        Ok(vec![IpAddress::Ipv4((127, 0, 0, 3))]),
    );
}

/// "A denied accept resets that connection and keeps listening."
fn refused_peer_is_reset(net: &Network, listener: &raw::TcpSocket, port: u16) {
    let target = v4((127, 0, 0, 1), port);
    let stranger = new_tcp("reset: stranger", Family::Ipv4);
    expect_ok(
        "reset: stranger binds 127.0.0.5",
        tcp_bind("reset", &stranger, net, v4((127, 0, 0, 5), 0)),
    );
    let (s_in, _s_out) = expect_ok(
        "reset: stranger connects",
        tcp_connect("reset", &stranger, net, target),
    );
    let friend = new_tcp("reset: friend", Family::Ipv4);
    let (f_in, f_out) = expect_ok(
        "reset: friend connects",
        tcp_connect("reset", &friend, net, target),
    );
    // The stranger's connection is refused and reset; the friend's is accepted.
    let (server, srv_in, srv_out) =
        expect_ok("reset: accept", tcp_accept("reset: accept", listener));
    let peer = expect_ok("reset: accepted peer", server.remote_address());
    check(
        "reset: the accepted peer is the friend",
        !matches!(peer, IpSocketAddress::Ipv4(a) if a.address == (127, 0, 0, 5)),
        || format!("{peer:?}"),
    );
    write_all("reset: friend writes", &f_out, b"hi");
    check_eq(
        "reset: server reads",
        read_exact("reset", &srv_in, 2),
        b"hi".to_vec(),
    );
    write_all("reset: server writes", &srv_out, b"ok");
    check_eq(
        "reset: friend reads",
        read_exact("reset", &f_in, 2),
        b"ok".to_vec(),
    );
    let stranger_end = raw::read_up_to("reset: stranger reads", &s_in, 1);
    check(
        "reset: the stranger's connection ended",
        stranger_end.0.is_empty(),
        || format!("{stranger_end:?}"),
    );
}

/// A datagram from a sender outside the inbound rule's `from` is dropped.
fn refused_sender_is_dropped(net: &Network) {
    let rx = new_udp("drop: receiver", Family::Ipv4);
    expect_ok(
        "drop: bind receiver",
        udp_bind("drop", &rx, net, v4((127, 0, 0, 1), 0)),
    );
    let to = local_addr_udp("drop: receiver address", &rx);
    let (rx_in, _rx_out) = udp_streams("drop: receiver streams", &rx, None);
    let stranger = new_udp("drop: stranger", Family::Ipv4);
    expect_ok(
        "drop: stranger binds 127.0.0.6",
        udp_bind("drop", &stranger, net, v4((127, 0, 0, 6), 0)),
    );
    let (_i, s_out) = udp_streams("drop: stranger streams", &stranger, None);
    let friend = new_udp("drop: friend", Family::Ipv4);
    expect_ok(
        "drop: friend binds",
        udp_bind("drop", &friend, net, v4((127, 0, 0, 1), 0)),
    );
    let (_j, f_out) = udp_streams("drop: friend streams", &friend, None);
    check_eq(
        "drop: stranger sends",
        udp_send("drop", &s_out, &[dgram(b"stranger", Some(to))]),
        Ok(1),
    );
    check_eq(
        "drop: friend sends",
        udp_send("drop", &f_out, &[dgram(b"friend", Some(to))]),
        Ok(1),
    );
    let got = udp_receive("drop: receiver gets the friend's", &rx_in, 1, 8);
    check_eq(
        "drop: only the friend's datagram",
        got[0].data.clone(),
        b"friend".to_vec(),
    );
    check_eq(
        "drop: nothing else",
        expect_ok("drop: receive", rx_in.receive(8)).len(),
        0,
    );
}
