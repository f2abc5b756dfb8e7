//! raw-drop-order: resources dropped in every order the WIT allows, asserting what README
//! "Behaviour worth knowing" documents and that nothing traps:
//!
//! - a `tcp-socket` dropped before its streams and its pollable: the streams keep working, the
//!   pollable is ready, the connection closes when the streams go too;
//! - streams dropped before their socket: nothing is sent (no implicit shutdown), the socket
//!   still works (`shutdown`), and accepted bytes are delivered;
//! - a listener dropped with connections pending: its clients see the end of the stream;
//! - a socket dropped while its connect is in progress, between waits on its pollable;
//! - a `udp-socket` dropped before its datagram streams and their pollables;
//! - `stream` called again right after the old pair was dropped, and with the old pair alive;
//! - the `network` dropped before its sockets;
//! - a `resolve-address-stream` dropped before its pollable and before the lookup finished.
//!
//! A stream's pollable is a child of the stream (`wasi:io`): it is always dropped first here.

use guest_support::{check, check_eq, expect_err, expect_ok, fail, finish, start};
use raw::wasi::sockets::ip_name_lookup::resolve_addresses;
use raw::{
    ErrorCode as E, IpAddressFamily as Family, Network, ReadEnd, ShutdownType, WAIT_MS, dgram,
    instance_network, lo, local_addr_tcp, local_addr_udp, new_tcp, new_udp, read_exact,
    read_to_closed, read_up_to, ready_within, tcp_bind, tcp_connect, tcp_listen, tcp_listener,
    tcp_pair, udp_bind, udp_bound, udp_receive, udp_send, udp_streams, write_all,
};

fn main() {
    start("raw-drop-order");
    let net = instance_network();
    for family in [Family::Ipv4, Family::Ipv6] {
        socket_before_streams(&net, family);
        streams_before_socket(&net, family);
        unflushed_bytes_are_delivered(&net, family);
        listener_with_pending_connections(&net, family);
        connect_in_progress(&net, family);
        udp_socket_before_streams(&net, family);
        stream_again(&net, family);
    }
    network_before_sockets();
    lookup_before_pollable(&net);
    finish();
}

fn socket_before_streams(net: &Network, family: Family) {
    let c = &format!("socket before streams ({family:?})");
    let p = tcp_pair(c, net, family);
    let sock_poll = p.client.subscribe();
    let in_poll = p.client_in.subscribe();
    drop(p.client);
    check(
        &format!("{c}: the pollable of the dropped socket"),
        ready_within(&sock_poll, WAIT_MS),
        || "not ready".into(),
    );
    write_all(c, &p.client_out, b"after-drop");
    check_eq(
        &format!("{c}: the output stream still works"),
        read_exact(c, &p.server_in, 10),
        b"after-drop".to_vec(),
    );
    write_all(c, &p.server_out, b"back");
    check(
        &format!("{c}: the input stream's pollable"),
        ready_within(&in_poll, WAIT_MS),
        || "not ready".into(),
    );
    check_eq(
        &format!("{c}: the input stream still works"),
        read_exact(c, &p.client_in, 4),
        b"back".to_vec(),
    );
    drop(in_poll);
    drop(sock_poll);
    drop(p.client_in);
    // Socket and input gone, output still there: the connection stays open.
    quiet(
        &format!("{c}: no end of stream while the output stream lives"),
        &p.server_in,
    );
    drop(p.client_out);
    check_eq(
        &format!("{c}: end of stream once socket and both streams are gone"),
        read_to_closed(c, &p.server_in, 0),
        Vec::new(),
    );
    drop((p.server_in, p.server_out, p.server, p.listener));
}

/// After a bounded wait, `input` has neither data nor the end of the stream. (Its pollable
/// may be ready early: only what a read returns is checked.)
fn quiet(check_name: &str, input: &raw::InputStream) {
    {
        let p = input.subscribe();
        let _ = ready_within(&p, 100);
    }
    match input.read(1) {
        Ok(bytes) => check_eq(check_name, bytes, Vec::new()),
        Err(e) => fail(check_name, format!("read: {}", raw::describe(&e))),
    }
}

fn streams_before_socket(net: &Network, family: Family) {
    let c = &format!("streams before socket ({family:?})");
    let p = tcp_pair(c, net, family);
    write_all(c, &p.client_out, b"x");
    drop(p.client_in);
    drop(p.client_out);
    check_eq(
        &format!("{c}: the byte written before the drop"),
        read_exact(c, &p.server_in, 1),
        b"x".to_vec(),
    );
    quiet(
        &format!("{c}: dropping the streams sends nothing (no implicit shutdown)"),
        &p.server_in,
    );
    expect_ok(
        &format!("{c}: the socket is still connected"),
        p.client.remote_address(),
    );
    expect_ok(
        &format!("{c}: shutdown works without streams"),
        p.client.shutdown(ShutdownType::Send),
    );
    check_eq(
        &format!("{c}: shutdown(send) ends the peer's stream"),
        read_to_closed(c, &p.server_in, 0),
        Vec::new(),
    );
    drop(p.client);
    drop((p.server_in, p.server_out, p.server, p.listener));
}

/// Bytes an output stream accepted are delivered even when everything is dropped unflushed.
fn unflushed_bytes_are_delivered(net: &Network, family: Family) {
    let c = &format!("unflushed bytes ({family:?})");
    let p = tcp_pair(c, net, family);
    let permit = match p.client_out.check_write() {
        Ok(n) => n.min(32 * 1024) as usize,
        Err(e) => fail(c, format!("check-write: {}", raw::describe(&e))),
    };
    check(&format!("{c}: check-write grants room"), permit > 0, || {
        "0".into()
    });
    let data: Vec<u8> = (0..permit).map(|i| (i % 251) as u8).collect();
    if let Err(e) = p.client_out.write(&data) {
        fail(c, format!("write: {}", raw::describe(&e)));
    }
    drop(p.client_out);
    drop(p.client_in);
    drop(p.client);
    let got = read_to_closed(c, &p.server_in, permit);
    check_eq(
        &format!("{c}: every accepted byte arrives"),
        got.len(),
        permit,
    );
    check(&format!("{c}: in order"), got == data, || {
        "bytes differ".into()
    });
    drop((p.server_in, p.server_out, p.server, p.listener));
}

fn listener_with_pending_connections(net: &Network, family: Family) {
    let c = &format!("listener with pending connections ({family:?})");
    let listener = tcp_listener(c, net, family);
    let addr = local_addr_tcp(c, &listener);
    let mut clients = Vec::new();
    for _ in 0..3 {
        let s = new_tcp(c, family);
        let streams = expect_ok(&format!("{c}: connect"), tcp_connect(c, &s, net, addr));
        clients.push((s, streams));
    }
    let p = listener.subscribe();
    check(
        &format!("{c}: a connection is pending"),
        ready_within(&p, WAIT_MS),
        || "listener pollable not ready".into(),
    );
    drop(listener);
    check(
        &format!("{c}: the listener's pollable after the drop"),
        ready_within(&p, WAIT_MS),
        || "not ready".into(),
    );
    drop(p);
    for (i, (s, (input, output))) in clients.into_iter().enumerate() {
        let (bytes, end) = read_up_to(c, &input, 1);
        // Closing a listener resets the connections still queued on it (Linux), so the read
        // fails (`connection-reset`) rather than ending cleanly.
        check(
            &format!("{c}: client {i} sees its connection reset"),
            bytes.is_empty() && matches!(end, ReadEnd::Failed(_)),
            || format!("{bytes:?} {end:?}"),
        );
        drop((input, output, s));
    }
    // The port is free again: a new listener can bind it.
    let again = new_tcp(c, family);
    expect_ok(
        &format!("{c}: the port is free after the drop"),
        tcp_bind(c, &again, net, addr),
    );
    drop(again);
}

/// Clients whose connects cannot complete at once (the listener's queue is full), dropped
/// between waits on their pollables: the pollable is ready once its socket is gone.
fn connect_in_progress(net: &Network, family: Family) {
    let c = &format!("connect in progress ({family:?})");
    let listener = new_tcp(c, family);
    expect_ok(c, tcp_bind(c, &listener, net, lo(family, 0)));
    expect_ok(c, listener.set_listen_backlog_size(1));
    expect_ok(c, tcp_listen(c, &listener));
    let addr = local_addr_tcp(c, &listener);
    for i in 0..4 {
        let s = new_tcp(c, family);
        expect_ok(
            &format!("{c}: start-connect {i}"),
            s.start_connect(net, addr),
        );
        let p = s.subscribe();
        // Whatever this first wait finds, the socket is dropped with its pollable alive.
        let _ = ready_within(&p, 20);
        drop(s);
        check(
            &format!("{c}: pollable {i} is ready after its socket was dropped"),
            ready_within(&p, WAIT_MS),
            || "not ready".into(),
        );
        drop(p);
    }
    // The same with the socket dropped right after start-connect, before any wait.
    let s = new_tcp(c, family);
    expect_ok(c, s.start_connect(net, addr));
    let p = s.subscribe();
    drop(s);
    check(
        &format!("{c}: pollable ready at once"),
        ready_within(&p, WAIT_MS),
        || "not ready".into(),
    );
    drop(p);
    drop(listener);
}

fn udp_socket_before_streams(net: &Network, family: Family) {
    let c = &format!("udp socket before streams ({family:?})");
    let a = udp_bound(c, net, family);
    let b = udp_bound(c, net, family);
    let a_addr = local_addr_udp(c, &a);
    let b_addr = local_addr_udp(c, &b);
    let (a_in, a_out) = udp_streams(c, &a, Some(b_addr));
    let (b_in, b_out) = udp_streams(c, &b, None);
    let a_poll = a.subscribe();
    let a_in_poll = a_in.subscribe();
    let a_out_poll = a_out.subscribe();
    drop(a);
    check(
        &format!("{c}: socket pollable ready"),
        ready_within(&a_poll, WAIT_MS),
        || "not ready".into(),
    );
    check(
        &format!("{c}: outgoing pollable ready"),
        ready_within(&a_out_poll, WAIT_MS),
        || "not ready".into(),
    );
    check_eq(
        &format!("{c}: send after the socket was dropped"),
        udp_send(c, &a_out, &[dgram(b"ping", None)]),
        Ok(1),
    );
    let got = udp_receive(c, &b_in, 1, 4);
    check_eq(
        &format!("{c}: the peer receives it"),
        got[0].data.clone(),
        b"ping".to_vec(),
    );
    check_eq(
        &format!("{c}: from the dropped socket's address"),
        got[0].remote_address,
        a_addr,
    );
    check_eq(
        &format!("{c}: reply"),
        udp_send(c, &b_out, &[dgram(b"pong", Some(a_addr))]),
        Ok(1),
    );
    check(
        &format!("{c}: incoming pollable ready"),
        ready_within(&a_in_poll, WAIT_MS),
        || "not ready".into(),
    );
    let got = udp_receive(c, &a_in, 1, 4);
    check_eq(
        &format!("{c}: receive after the socket was dropped"),
        got[0].data.clone(),
        b"pong".to_vec(),
    );
    drop(a_in_poll);
    drop(a_in);
    drop(a_out_poll);
    drop(a_out);
    drop(a_poll);
    // Everything of `a` is gone: its port is free again.
    let again = new_udp(c, family);
    expect_ok(
        &format!("{c}: the port is free after the last stream was dropped"),
        udp_bind(c, &again, net, a_addr),
    );
    drop((again, b_in, b_out, b));
}

fn stream_again(net: &Network, family: Family) {
    let c = &format!("stream again ({family:?})");
    let s = udp_bound(c, net, family);
    let peer = udp_bound(c, net, family);
    let peer_addr = local_addr_udp(c, &peer);
    let (i1, o1) = udp_streams(c, &s, None);
    drop(i1);
    drop(o1);
    let (i2, o2) = udp_streams(c, &s, Some(peer_addr));
    let (peer_in, peer_out) = udp_streams(c, &peer, None);
    check_eq(
        &format!("{c}: the new pair works"),
        udp_send(c, &o2, &[dgram(b"one", None)]),
        Ok(1),
    );
    check_eq(
        &format!("{c}: delivered"),
        udp_receive(c, &peer_in, 1, 1)[0].data.clone(),
        b"one".to_vec(),
    );
    // A third call with the second pair alive: the second pair answers invalid-state.
    let (i3, o3) = udp_streams(c, &s, Some(peer_addr));
    expect_err(
        &format!("{c}: older outgoing stream"),
        o2.check_send(),
        E::InvalidState,
    );
    expect_err(
        &format!("{c}: older incoming stream"),
        i2.receive(1),
        E::InvalidState,
    );
    drop((i2, o2));
    check_eq(
        &format!("{c}: the newest pair works"),
        udp_send(c, &o3, &[dgram(b"two", None)]),
        Ok(1),
    );
    check_eq(
        &format!("{c}: delivered again"),
        udp_receive(c, &peer_in, 1, 1)[0].data.clone(),
        b"two".to_vec(),
    );
    drop((i3, o3, s, peer_in, peer_out, peer));
}

fn network_before_sockets() {
    let c = "network before sockets";
    let net = instance_network();
    let listener = new_tcp(c, Family::Ipv4);
    expect_ok(c, tcp_bind(c, &listener, &net, lo(Family::Ipv4, 0)));
    let client = new_tcp(c, Family::Ipv4);
    expect_ok(c, tcp_bind(c, &client, &net, lo(Family::Ipv4, 0)));
    let u = new_udp(c, Family::Ipv6);
    expect_ok(c, udp_bind(c, &u, &net, lo(Family::Ipv6, 0)));
    drop(net);
    expect_ok(&format!("{c}: listen"), tcp_listen(c, &listener));
    let addr = local_addr_tcp(c, &listener);
    // Another handle from instance-network names the same network as the bind's.
    let net2 = instance_network();
    let (cin, cout) = expect_ok(
        &format!("{c}: connect with a new network handle"),
        tcp_connect(c, &client, &net2, addr),
    );
    drop(net2);
    let (server, sin, sout) = expect_ok(&format!("{c}: accept"), raw::tcp_accept(c, &listener));
    write_all(c, &cout, b"net");
    check_eq(
        &format!("{c}: data flows"),
        read_exact(c, &sin, 3),
        b"net".to_vec(),
    );
    let u_addr = local_addr_udp(c, &u);
    let (ui, uo) = udp_streams(c, &u, Some(u_addr));
    check_eq(
        &format!("{c}: udp send to itself"),
        udp_send(c, &uo, &[dgram(b"u", None)]),
        Ok(1),
    );
    check_eq(
        &format!("{c}: udp receive"),
        udp_receive(c, &ui, 1, 1)[0].data.clone(),
        b"u".to_vec(),
    );
    drop((ui, uo, u, cin, cout, client, server, sin, sout, listener));
}

fn lookup_before_pollable(net: &Network) {
    let c = "resolve-address-stream before its pollable";
    for name in ["localhost", "127.0.0.1", "::1"] {
        let stream = expect_ok(
            &format!("{c}: resolve {name}"),
            resolve_addresses(net, name),
        );
        let p = stream.subscribe();
        // Dropped at once: for `localhost` before the lookup can have finished.
        drop(stream);
        check(
            &format!("{c}: pollable of {name} becomes ready"),
            ready_within(&p, 10_000),
            || "not ready".into(),
        );
        drop(p);
    }
    // A lookup dropped before it finished, with no pollable at all.
    let stream = expect_ok(c, resolve_addresses(net, "localhost"));
    drop(stream);
    // Lookups still work afterwards.
    let stream = expect_ok(c, resolve_addresses(net, "localhost"));
    let p = stream.subscribe();
    check(
        &format!("{c}: a later lookup resolves"),
        ready_within(&p, 10_000),
        || "not ready".into(),
    );
    let first = stream.resolve_next_address();
    check(
        &format!("{c}: and answers"),
        matches!(first, Ok(Some(_))),
        || format!("{first:?}"),
    );
    drop(p);
    drop(stream);
}
