//! raw-udp: drives every `wasi:sockets/udp` and `udp-create-socket` function per socket
//! state and asserts the exact result or error code required by the WIT doc comments
//! (wit/sockets.wit) and shared/spec/NOTES.md. Loopback only; every wait is bounded.
//!
//! The send-over-permit trap lives in its own guest, `raw-udp-trap`.

use guest_support::{check, check_eq, expect_err, expect_ok, fail, finish, pass, start};
use raw::{
    ErrorCode as E, IncomingDatagram, IpAddressFamily as Family, IpSocketAddress, Network, WAIT_MS,
    create_udp_socket, dgram, instance_network, lo, lo4, lo6, local_addr_udp, new_udp, port_of,
    udp_bind, udp_bound, udp_receive, udp_send, udp_streams, v4, v6, wait_ready, wait_send_permit,
};

fn main() {
    start("raw-udp");
    let net = instance_network();
    create();
    unbound_state();
    option_setters();
    bind_argument_errors(&net);
    bind_address_in_use_then_retry(&net);
    bound_state(&net);
    stream_argument_errors(&net);
    unconnected_streams(&net, Family::Ipv4);
    unconnected_streams(&net, Family::Ipv6);
    connected_streams_and_filtering(&net);
    send_argument_errors(&net);
    udp_buffer_sizes_round_trip();
    udp_edges(&net);
    connected_refusal_is_reported(&net);
    // Last: a host whose disconnect loses an ephemeral port fails these waits and stops.
    stream_is_connect(&net);
    reconnect(&net);
    finish();
}

/// `create-udp-socket` works for both families; `address-family` reports it.
fn create() {
    for family in [Family::Ipv4, Family::Ipv6] {
        let s = expect_ok(
            &format!("create-udp-socket({family:?})"),
            create_udp_socket(family),
        );
        check_eq(
            &format!("address-family of a new {family:?} socket"),
            s.address_family(),
            family,
        );
    }
}

/// Unbound: local-address `invalid-state` ("WASI is stricter and requires
/// `local-address` to return `invalid-state` when the socket hasn't been bound yet"),
/// remote-address `invalid-state`, `stream` `invalid-state` ("The socket is not bound"),
/// finish-bind `not-in-progress`, subscribe ready.
fn unbound_state() {
    let s = new_udp("unbound: create", Family::Ipv4);
    expect_err("unbound: local-address", s.local_address(), E::InvalidState);
    expect_err(
        "unbound: remote-address",
        s.remote_address(),
        E::InvalidState,
    );
    expect_err("unbound: stream(none)", s.stream(None), E::InvalidState);
    expect_err(
        "unbound: stream(some(127.0.0.1:9))",
        s.stream(Some(lo4(9))),
        E::InvalidState,
    );
    expect_err("unbound: finish-bind", s.finish_bind(), E::NotInProgress);
    check("unbound: subscribe is ready", s.subscribe().ready(), || {
        "pollable of an unbound socket is not ready".into()
    });
}

/// Setters: 0 is `invalid-argument` ("The TTL value must be 1 or higher" / "The provided
/// value was 0"); unicast-hop-limit reads back exactly; buffer sizes may be clamped.
fn option_setters() {
    for family in [Family::Ipv4, Family::Ipv6] {
        let s = new_udp("setters: create", family);
        let c = |what: &str| format!("setters({family:?}): {what}");
        let hops = expect_ok(&c("unicast-hop-limit default"), s.unicast_hop_limit());
        check(&c("unicast-hop-limit default > 0"), hops > 0, || {
            format!("{hops}")
        });
        expect_err(
            &c("set-unicast-hop-limit(0)"),
            s.set_unicast_hop_limit(0),
            E::InvalidArgument,
        );
        expect_ok(&c("set-unicast-hop-limit(33)"), s.set_unicast_hop_limit(33));
        check_eq(
            &c("unicast-hop-limit after 33"),
            s.unicast_hop_limit(),
            Ok(33),
        );

        expect_err(
            &c("set-receive-buffer-size(0)"),
            s.set_receive_buffer_size(0),
            E::InvalidArgument,
        );
        expect_ok(
            &c("set-receive-buffer-size(65536)"),
            s.set_receive_buffer_size(65536),
        );
        let rcv = expect_ok(&c("receive-buffer-size"), s.receive_buffer_size());
        check(&c("receive-buffer-size > 0"), rcv > 0, || format!("{rcv}"));

        expect_err(
            &c("set-send-buffer-size(0)"),
            s.set_send_buffer_size(0),
            E::InvalidArgument,
        );
        expect_ok(
            &c("set-send-buffer-size(65536)"),
            s.set_send_buffer_size(65536),
        );
        let snd = expect_ok(&c("send-buffer-size"), s.send_buffer_size());
        check(&c("send-buffer-size > 0"), snd > 0, || format!("{snd}"));
    }
}

/// Bind rules: the wrong family and an IPv4-mapped address are `invalid-argument`; a failed
/// bind may be retried. UDP's `start-bind`, unlike TCP's, lists no "not a unicast address"
/// error: a multicast group or the broadcast address binds (it is how a socket hears them).
fn bind_argument_errors(net: &Network) {
    let s4 = new_udp("bind args: create v4", Family::Ipv4);
    let check = "bind v4: IPv6 address on an IPv4 socket";
    expect_err(check, udp_bind(check, &s4, net, lo6(0)), E::InvalidArgument);
    expect_ok(
        "bind v4: retry after failed binds",
        udp_bind("bind v4 retry", &s4, net, lo4(0)),
    );
    for (what, addr) in [
        ("multicast group 224.0.0.1", v4((224, 0, 0, 1), 0)),
        ("broadcast 255.255.255.255", v4((255, 255, 255, 255), 0)),
    ] {
        let check = format!("bind v4: {what}");
        let s = new_udp(&check, Family::Ipv4);
        expect_ok(&check, udp_bind(&check, &s, net, addr));
    }

    let s6 = new_udp("bind args: create v6", Family::Ipv6);
    let bad6: [(&str, IpSocketAddress); 2] = [
        ("IPv4 address on an IPv6 socket", lo4(0)),
        (
            "IPv4-mapped ::ffff:127.0.0.1",
            v6((0, 0, 0, 0, 0, 0xffff, 0x7f00, 0x0001), 0),
        ),
    ];
    for (what, addr) in bad6 {
        let check = format!("bind v6: {what}");
        expect_err(&check, udp_bind(&check, &s6, net, addr), E::InvalidArgument);
    }
    expect_ok(
        "bind v6: retry after failed binds",
        udp_bind("bind v6 retry", &s6, net, lo6(0)),
    );
}

/// "`address-in-use`: Address is already in use." Then the bind is retried on port 0.
fn bind_address_in_use_then_retry(net: &Network) {
    let a = udp_bound("addr-in-use: first socket", net, Family::Ipv4);
    let port = port_of(&local_addr_udp("addr-in-use: first address", &a));
    let b = new_udp("addr-in-use: create", Family::Ipv4);
    expect_err(
        "bind: port already bound by another UDP socket",
        udp_bind("bind in use", &b, net, lo4(port)),
        E::AddressInUse,
    );
    expect_ok(
        "bind: retry on port 0 after address-in-use",
        udp_bind("bind retry", &b, net, lo4(0)),
    );
}

/// Bound: start-bind `invalid-state` ("The socket is already bound"), finish-bind
/// `not-in-progress`, local-address is the bound loopback address with a real port,
/// remote-address `invalid-state` (not streaming to a specific remote), subscribe ready.
fn bound_state(net: &Network) {
    let s = new_udp("bound: create", Family::Ipv4);
    expect_ok("bound: start-bind", s.start_bind(net, lo4(0)));
    let p = s.subscribe();
    expect_ok(
        "bound: finish-bind",
        raw::finish_wait("finish-bind", &p, || s.finish_bind()),
    );
    expect_err(
        "bound: finish-bind again",
        s.finish_bind(),
        E::NotInProgress,
    );
    expect_err(
        "bound: start-bind again",
        s.start_bind(net, lo4(0)),
        E::InvalidState,
    );
    let local = expect_ok("bound: local-address", s.local_address());
    check(
        "bound: local-address is 127.0.0.1",
        local == lo4(port_of(&local)),
        || format!("{local:?}"),
    );
    check("bound: local port is not 0", port_of(&local) != 0, || {
        format!("{local:?}")
    });
    expect_err("bound: remote-address", s.remote_address(), E::InvalidState);
    check("bound: subscribe is ready", p.ready(), || {
        "not ready".into()
    });
}

/// stream(some(remote)): unspecified address, port 0 and wrong family are
/// `invalid-argument`; afterwards the socket is still unconnected and usable.
fn stream_argument_errors(net: &Network) {
    let s4 = udp_bound("stream args: v4 socket", net, Family::Ipv4);
    let bad4: [(&str, IpSocketAddress); 3] = [
        ("unspecified 0.0.0.0", v4((0, 0, 0, 0), 4242)),
        ("port 0", lo4(0)),
        ("IPv6 address on an IPv4 socket", lo6(4242)),
    ];
    for (what, addr) in bad4 {
        expect_err(
            &format!("stream v4: {what}"),
            s4.stream(Some(addr)),
            E::InvalidArgument,
        );
    }
    expect_err(
        "stream v4: still not connected after invalid-argument",
        s4.remote_address(),
        E::InvalidState,
    );
    let s6 = udp_bound("stream args: v6 socket", net, Family::Ipv6);
    let bad6: [(&str, IpSocketAddress); 3] = [
        ("unspecified ::", v6((0, 0, 0, 0, 0, 0, 0, 0), 4242)),
        ("port 0", lo6(0)),
        ("IPv4 address on an IPv6 socket", lo4(4242)),
    ];
    for (what, addr) in bad6 {
        expect_err(
            &format!("stream v6: {what}"),
            s6.stream(Some(addr)),
            E::InvalidArgument,
        );
    }
    let streams = s4.stream(None);
    expect_ok("stream v4: stream(none) after invalid-argument", streams);
}

/// stream(none): receive never blocks (empty list when nothing is there, or for
/// max 0), returns at most `max` datagrams; check-send > 0; send returns the count;
/// datagrams carry the sender's address.
fn unconnected_streams(net: &Network, family: Family) {
    let c = |what: &str| format!("unconnected({family:?}): {what}");
    let a = udp_bound(&c("socket a"), net, family);
    let b = udp_bound(&c("socket b"), net, family);
    let aaddr = local_addr_udp(&c("a address"), &a);
    let baddr = local_addr_udp(&c("b address"), &b);
    let (ain, aout) = udp_streams(&c("a stream(none)"), &a, None);
    let (bin, _bout) = udp_streams(&c("b stream(none)"), &b, None);
    expect_err(
        &c("remote-address after stream(none)"),
        a.remote_address(),
        E::InvalidState,
    );

    // "This function returns successfully with an empty list when either: `max-results`
    // is 0, or: `max-results` is greater than 0, but no results are immediately
    // available. This function never returns `error(would-block)`."
    check_eq(
        &c("receive(10) with nothing there"),
        ain.receive(10),
        Ok(vec![]),
    );
    check_eq(&c("receive(0)"), ain.receive(0), Ok(vec![]));

    wait_ready(
        &c("outgoing stream subscribe ready"),
        &aout.subscribe(),
        WAIT_MS,
    );
    let permit = expect_ok(&c("check-send"), aout.check_send());
    check(&c("check-send > 0"), permit > 0, || format!("{permit}"));
    check_eq(&c("send of an empty list"), aout.send(&[]), Ok(0));

    // Five datagrams in one send, if the permit allows; send returns how many were sent.
    let n = wait_send_permit(&c("check-send for 5"), &aout, 1).min(5) as usize;
    let batch: Vec<_> = (0..n)
        .map(|i| dgram(format!("d{i}").as_bytes(), Some(baddr)))
        .collect();
    check_eq(
        &c("send returns the count"),
        aout.send(&batch),
        Ok(n as u64),
    );
    wait_ready(
        &c("incoming stream subscribe ready"),
        &bin.subscribe(),
        WAIT_MS,
    );
    // udp_receive fails the check if any receive(2) returns more than 2.
    let got = udp_receive(&c("receive(2) returns at most 2"), &bin, n, 2);
    pass();
    check_eq(&c("received count"), got.len(), n);
    for (i, d) in got.iter().enumerate() {
        check_eq(
            &c("datagram payload in order"),
            d.data.clone(),
            format!("d{i}").into_bytes(),
        );
        check_eq(
            &c("datagram remote-address is the sender"),
            d.remote_address,
            aaddr,
        );
    }
    check_eq(
        &c("receive(10) after draining"),
        bin.receive(10),
        Ok(vec![]),
    );

    // "`datagram-too-large`: The datagram is too large. (EMSGSIZE)"
    let huge = vec![0u8; 70_000];
    check_eq(
        &c("send of a 70000 byte datagram"),
        udp_send(&c("check-send huge"), &aout, &[dgram(&huge, Some(baddr))]),
        Err(E::DatagramTooLarge),
    );
    // "If at least one datagram has been sent successfully, this function never returns
    // an error": a good datagram followed by a too-large one reports 1.
    wait_send_permit(&c("check-send for 2"), &aout, 2);
    check_eq(
        &c("send [ok, too large] returns 1"),
        aout.send(&[dgram(b"ok", Some(baddr)), dgram(&huge, Some(baddr))]),
        Ok(1),
    );
    let got = udp_receive(&c("receive after partial send"), &bin, 1, 1);
    check_eq(
        &c("partial send delivered the first"),
        got[0].data.clone(),
        b"ok".to_vec(),
    );
}

/// stream(some(remote)): "`send` can only be used to send to this destination";
/// "`receive` will only return datagrams sent from the provided `remote-address`".
fn connected_streams_and_filtering(net: &Network) {
    let a = udp_bound("connected: socket a", net, Family::Ipv4);
    let b = udp_bound("connected: socket b", net, Family::Ipv4);
    let c = udp_bound("connected: socket c", net, Family::Ipv4);
    let aaddr = local_addr_udp("connected: a address", &a);
    let baddr = local_addr_udp("connected: b address", &b);
    let caddr = local_addr_udp("connected: c address", &c);
    let (bin, bout) = udp_streams("connected: b streams", &b, None);
    let (_cin, cout) = udp_streams("connected: c streams", &c, None);

    let (ain, aout) = udp_streams("connected: a stream(some(b))", &a, Some(baddr));
    check_eq("connected: remote-address", a.remote_address(), Ok(baddr));
    check_eq(
        "connected: local-address unchanged",
        a.local_address(),
        Ok(aaddr),
    );
    // Without an address: goes to the connected peer.
    check_eq(
        "connected: send without address",
        udp_send("send none", &aout, &[dgram(b"to-b-1", None)]),
        Ok(1),
    );
    // With the matching address: allowed ("must be None or match ... exactly").
    check_eq(
        "connected: send to the connected address",
        udp_send("send match", &aout, &[dgram(b"to-b-2", Some(baddr))]),
        Ok(1),
    );
    // "`invalid-argument`: The socket is in "connected" mode and `remote-address` is
    // `some` value that does not match the address passed to `stream`."
    check_eq(
        "connected: send to another address",
        udp_send("send mismatch", &aout, &[dgram(b"to-c", Some(caddr))]),
        Err(E::InvalidArgument),
    );
    let got = udp_receive("connected: b receives", &bin, 2, 8);
    check_eq(
        "connected: first datagram",
        got[0].data.clone(),
        b"to-b-1".to_vec(),
    );
    check_eq(
        "connected: second datagram",
        got[1].data.clone(),
        b"to-b-2".to_vec(),
    );
    check_eq("connected: sender address", got[0].remote_address, aaddr);

    // Filtering: c sends first, then b; a must only ever see b's datagrams.
    check_eq(
        "filtering: c sends to a",
        udp_send("c send", &cout, &[dgram(b"from-c", Some(aaddr))]),
        Ok(1),
    );
    check_eq(
        "filtering: b sends to a",
        udp_send("b send", &bout, &[dgram(b"from-b", Some(aaddr))]),
        Ok(1),
    );
    let got = udp_receive("filtering: a receives b's datagram", &ain, 1, 8);
    check_only_from(&got, baddr, b"from-b");
    // Anything else that shows up later must also be from b.
    check_eq(
        "filtering: c sends again",
        udp_send("c send", &cout, &[dgram(b"from-c", Some(aaddr))]),
        Ok(1),
    );
    check_eq(
        "filtering: b sends again",
        udp_send("b send", &bout, &[dgram(b"from-b", Some(aaddr))]),
        Ok(1),
    );
    let got = udp_receive("filtering: a receives b's second datagram", &ain, 1, 8);
    check_only_from(&got, baddr, b"from-b");
}

fn check_only_from(got: &[IncomingDatagram], from: IpSocketAddress, data: &[u8]) {
    for d in got {
        if d.remote_address != from || d.data != data {
            fail(
                "filtering: connected stream only returns the peer's datagrams",
                format!(
                    "got {:?} from {:?}, want only {:?} from {from:?}",
                    String::from_utf8_lossy(&d.data),
                    d.remote_address,
                    String::from_utf8_lossy(data)
                ),
            );
        }
    }
    pass();
}

/// "This method may be called multiple times on the same socket to change its
/// association, but only the most recently returned pair of streams will be
/// operational." After dropping the old pair, a new stream(none) / stream(some) pair
/// works at once.
fn reconnect(net: &Network) {
    let a = udp_bound("reconnect: socket a", net, Family::Ipv4);
    let b = udp_bound("reconnect: socket b", net, Family::Ipv4);
    let c = udp_bound("reconnect: socket c", net, Family::Ipv4);
    let aaddr = local_addr_udp("reconnect: a address", &a);
    let baddr = local_addr_udp("reconnect: b address", &b);
    let caddr = local_addr_udp("reconnect: c address", &c);
    let (bin, bout) = udp_streams("reconnect: b streams", &b, None);
    let (cin, cout) = udp_streams("reconnect: c streams", &c, None);

    let pair = udp_streams("reconnect: a stream(some(b))", &a, Some(baddr));
    check_eq("reconnect: connected to b", a.remote_address(), Ok(baddr));
    drop(pair);

    // Disconnect: stream(none).
    let (ain, aout) = udp_streams("reconnect: a stream(none)", &a, None);
    expect_err(
        "reconnect: remote-address after stream(none)",
        a.remote_address(),
        E::InvalidState,
    );
    check_eq(
        "reconnect: c sends to a",
        udp_send("c send", &cout, &[dgram(b"from-c", Some(aaddr))]),
        Ok(1),
    );
    let got = udp_receive("reconnect: unconnected a receives from c", &ain, 1, 8);
    check_eq("reconnect: datagram from c", got[0].remote_address, caddr);
    check_eq(
        "reconnect: unconnected send without address",
        udp_send("send none", &aout, &[dgram(b"x", None)]),
        Err(E::InvalidArgument),
    );
    drop((ain, aout));

    // Connect to c: works at once.
    let (ain, aout) = udp_streams("reconnect: a stream(some(c))", &a, Some(caddr));
    check_eq(
        "reconnect: remote-address is c",
        a.remote_address(),
        Ok(caddr),
    );
    let permit = expect_ok("reconnect: check-send at once", aout.check_send());
    check("reconnect: check-send > 0 at once", permit > 0, || {
        format!("{permit}")
    });
    check_eq(
        "reconnect: send to c",
        aout.send(&[dgram(b"to-c", None)]),
        Ok(1),
    );
    let got = udp_receive("reconnect: c receives", &cin, 1, 8);
    check_eq(
        "reconnect: c got the datagram",
        got[0].data.clone(),
        b"to-c".to_vec(),
    );
    check_eq(
        "reconnect: b sends to a",
        udp_send("b send", &bout, &[dgram(b"from-b", Some(aaddr))]),
        Ok(1),
    );
    check_eq(
        "reconnect: c sends to a",
        udp_send("c send", &cout, &[dgram(b"from-c", Some(aaddr))]),
        Ok(1),
    );
    let got = udp_receive("reconnect: a receives from c", &ain, 1, 8);
    check_only_from(&got, caddr, b"from-c");
    drop(bin);
}

/// send on an unconnected stream: no address, unspecified address, port 0 and the wrong
/// family are `invalid-argument` (the datagram's `remote-address` "is required" when
/// the stream has no remote address).
fn send_argument_errors(net: &Network) {
    for family in [Family::Ipv4, Family::Ipv6] {
        let c = |what: &str| format!("send args({family:?}): {what}");
        let a = udp_bound(&c("socket"), net, family);
        let port = port_of(&local_addr_udp(&c("address"), &a));
        let (_ain, aout) = udp_streams(&c("stream(none)"), &a, None);
        let (unspecified, other_family) = match family {
            Family::Ipv4 => (v4((0, 0, 0, 0), port), lo6(port)),
            Family::Ipv6 => (v6((0, 0, 0, 0, 0, 0, 0, 0), port), lo4(port)),
        };
        let bad: [(&str, Option<IpSocketAddress>); 4] = [
            ("no address on an unconnected stream", None),
            ("unspecified address", Some(unspecified)),
            ("port 0", Some(lo(family, 0))),
            ("wrong address family", Some(other_family)),
        ];
        for (what, to) in bad {
            check_eq(
                &c(what),
                udp_send(&c(what), &aout, &[dgram(b"x", to)]),
                Err(E::InvalidArgument),
            );
        }
        // The stream still works after those errors (sending to itself).
        check_eq(
            &c("send to itself after errors"),
            udp_send(
                &c("send to self"),
                &aout,
                &[dgram(b"self", Some(lo(family, port)))],
            ),
            Ok(1),
        );
    }
}

/// The unspecified address of `family` with `port`.
fn any(family: Family, port: u16) -> IpSocketAddress {
    match family {
        Family::Ipv4 => v4((0, 0, 0, 0), port),
        Family::Ipv6 => v6((0, 0, 0, 0, 0, 0, 0, 0), port),
    }
}

/// `stream(some(peer))` is POSIX `connect`: "The `local-address` may be updated as well,
/// based on the best network path to `remote-address`" — a socket bound to the unspecified
/// address reports the loopback source. `stream(none)` dissolves it, and the socket keeps
/// its port ("bound" stays bound): the address widens back, the port is the same, and a
/// third socket's datagrams still reach it; again after a second connect.
fn stream_is_connect(net: &Network) {
    for family in [Family::Ipv4, Family::Ipv6] {
        let c = |what: &str| format!("connect({family:?}): {what}");
        let a = new_udp(&c("create"), family);
        expect_ok(
            &c("bind unspecified:0"),
            udp_bind("bind", &a, net, any(family, 0)),
        );
        let port = port_of(&local_addr_udp(&c("bound address"), &a));
        check_eq(
            &c("bound to unspecified"),
            a.local_address(),
            Ok(any(family, port)),
        );
        let b = udp_bound(&c("peer"), net, family);
        let baddr = local_addr_udp(&c("peer address"), &b);
        let (bin, bout) = udp_streams(&c("peer streams"), &b, None);
        for round in 1..=2 {
            let r = |what: &str| c(&format!("round {round}: {what}"));
            let (ain, aout) = udp_streams(&r("stream(some(peer))"), &a, Some(baddr));
            check_eq(
                &r("local-address narrows to loopback"),
                a.local_address(),
                Ok(lo(family, port)),
            );
            check_eq(
                &r("send to the peer"),
                udp_send(&r("send"), &aout, &[dgram(b"hi", None)]),
                Ok(1),
            );
            let got = udp_receive(&r("peer receives"), &bin, 1, 4);
            check_eq(
                &r("from the narrowed address"),
                got[0].remote_address,
                lo(family, port),
            );
            drop((ain, aout));
            let (ain, _aout) = udp_streams(&r("stream(none)"), &a, None);
            check_eq(
                &r("stream(none): local-address keeps its port"),
                a.local_address(),
                Ok(any(family, port)),
            );
            check_eq(
                &r("peer sends to the kept port"),
                udp_send(
                    &r("peer send"),
                    &bout,
                    &[dgram(b"back", Some(lo(family, port)))],
                ),
                Ok(1),
            );
            let got = udp_receive(&r("received on the kept port"), &ain, 1, 4);
            check_eq(&r("datagram from the peer"), got[0].remote_address, baddr);
        }
    }
}

/// `receive` and `send` list "`connection-refused`: The connection was refused.
/// (ECONNREFUSED)": a connected socket whose datagram reached a port nobody listens on
/// learns it (ICMP) — the incoming stream's pollable fires and the next `receive` reports
/// it; reported once, the stream goes on. The same for a `send` after the refusal.
fn connected_refusal_is_reported(net: &Network) {
    for family in [Family::Ipv4, Family::Ipv6] {
        let c = |what: &str| format!("refused({family:?}): {what}");
        let dead = {
            let d = udp_bound(&c("probe"), net, family);
            port_of(&local_addr_udp(&c("probe address"), &d))
        };
        let a = udp_bound(&c("socket"), net, family);
        let (ain, aout) = udp_streams(&c("stream(some(closed port))"), &a, Some(lo(family, dead)));
        check_eq(
            &c("first send goes"),
            udp_send(&c("send"), &aout, &[dgram(b"anyone?", None)]),
            Ok(1),
        );
        wait_ready(&c("incoming pollable fires"), &ain.subscribe(), WAIT_MS);
        check_eq(
            &c("receive reports it"),
            ain.receive(4).map(|d| d.len()),
            Err(E::ConnectionRefused),
        );
        check_eq(
            &c("then receive goes on"),
            ain.receive(4).map(|d| d.len()),
            Ok(0),
        );

        check_eq(
            &c("second send goes"),
            udp_send(&c("send 2"), &aout, &[dgram(b"again?", None)]),
            Ok(1),
        );
        wait_ready(
            &c("incoming pollable fires again"),
            &ain.subscribe(),
            WAIT_MS,
        );
        // The error is the socket's, reported once, by whichever call comes first: a send
        // here, or the receive after it if the host's receive path took it already.
        let by_send = udp_send(&c("send 3"), &aout, &[dgram(b"and?", None)]);
        let reported = match by_send {
            Err(E::ConnectionRefused) => true,
            Ok(1) => ain.receive(4).map(|d| d.len()) == Err(E::ConnectionRefused),
            _ => false,
        };
        check(&c("the next send or receive reports it"), reported, || {
            format!("send gave {by_send:?}")
        });
    }
}

/// Buffer sizes round-trip: a size the kernel accepts reads back as set ("The value may be
/// clamped or rounded" — Linux's internal doubling is not the guest's).
fn udp_buffer_sizes_round_trip() {
    for family in [Family::Ipv4, Family::Ipv6] {
        let c = |what: &str| format!("buffers({family:?}): {what}");
        let s = new_udp(&c("create"), family);
        for size in [16 * 1024, 100_000] {
            raw::option_round_trip(
                &c(""),
                "receive-buffer-size",
                size,
                |n| s.set_receive_buffer_size(n),
                || s.receive_buffer_size(),
            );
            raw::option_round_trip(
                &c(""),
                "send-buffer-size",
                size,
                |n| s.set_send_buffer_size(n),
                || s.send_buffer_size(),
            );
        }
    }
}

/// Edges real programs meet: an empty datagram goes and arrives empty ("`data`: The payload"
/// has no lower bound); `stream(some(X))` twice in a row to the same peer works; options
/// can be set in every state (bound, streaming).
fn udp_edges(net: &Network) {
    for family in [Family::Ipv4, Family::Ipv6] {
        let c = |what: &str| format!("edges({family:?}): {what}");
        let a = udp_bound(&c("a"), net, family);
        let b = udp_bound(&c("b"), net, family);
        let baddr = local_addr_udp(&c("b address"), &b);
        let aaddr = local_addr_udp(&c("a address"), &a);
        let (bin, _bout) = udp_streams(&c("b streams"), &b, None);
        expect_ok(
            &c("bound: set-unicast-hop-limit"),
            a.set_unicast_hop_limit(9),
        );
        expect_ok(
            &c("bound: set-receive-buffer-size"),
            a.set_receive_buffer_size(32 * 1024),
        );
        drop(udp_streams(&c("stream(some(b))"), &a, Some(baddr)));
        let (_ain, aout) = udp_streams(&c("stream(some(b)) again"), &a, Some(baddr));
        check_eq(
            &c("remote-address after the second"),
            a.remote_address(),
            Ok(baddr),
        );
        expect_ok(
            &c("streaming: set-unicast-hop-limit"),
            a.set_unicast_hop_limit(10),
        );
        check_eq(
            &c("streaming: hop limit reads back"),
            a.unicast_hop_limit(),
            Ok(10),
        );
        expect_ok(
            &c("streaming: set-send-buffer-size"),
            a.set_send_buffer_size(32 * 1024),
        );
        check_eq(
            &c("send an empty datagram and one with data"),
            udp_send(
                &c("send"),
                &aout,
                &[dgram(b"", None), dgram(b"x", Some(baddr))],
            ),
            Ok(2),
        );
        let got = udp_receive(&c("b receives both"), &bin, 2, 4);
        check_eq(
            &c("the empty one arrives empty"),
            got[0].data.clone(),
            Vec::<u8>::new(),
        );
        check_eq(&c("then the other"), got[1].data.clone(), b"x".to_vec());
        check_eq(&c("both from a"), got[0].remote_address, aaddr);
    }
}
