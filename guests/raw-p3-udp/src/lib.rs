//! raw-p3-udp: drives every `udp-socket` function of `wasi:sockets/types@0.3.0` in every state
//! the WIT distinguishes (unbound, bound, connected, disconnected again) and asserts the exact
//! result or error code its doc comments require (guests/wit/0.3.0/sockets.wit). Where the WIT
//! allows more than one answer the check says so. Loopback only; every wait is bounded by a
//! timeout. The toolchain and the entry point (`wasi:cli/run@0.3.0`, a cdylib) are explained in
//! guests/raw-p3/src/lib.rs.

use guest_support::{check, check_eq, expect_err, expect_ok, finish, start};
use raw_p3::{
    ErrorCode as E, IpAddressFamily as Family, IpSocketAddress, UdpSocket, WAIT_MS, family_of,
    is_loopback, lo, lo_other, new_udp, poll_once, port_of, timeout, udp_bound, udp_local_addr,
    udp_receive, udp_receive_within, udp_send, unspecified, v4, v6, within,
};

/// The `wasi:cli/run@0.3.0` entry point.
struct Run;

impl raw_p3::exports::wasi::cli::run::Guest for Run {
    async fn run() -> Result<(), ()> {
        checks().await;
        Ok(())
    }
}

raw_p3::export!(Run with_types_in raw_p3);

async fn checks() {
    start("raw-p3-udp");
    for family in FAMILIES {
        create(family);
        unbound_state(family).await;
        option_setters(family);
        bind_argument_errors(family);
        bind_in_use_and_not_bindable(family);
        bound_state(family).await;
        connect_argument_errors(family);
        connect_binds_implicitly(family).await;
        reconnect(family).await;
        disconnect(family).await;
        send_argument_errors(family).await;
        send_binds_implicitly(family).await;
        connected_send(family).await;
        receive(family).await;
        connected_receive_filters(family).await;
        large_datagrams(family).await;
        round_trips(family).await;
    }
    finish();
}

const FAMILIES: [Family; 2] = [Family::Ipv4, Family::Ipv6];

/// How long a check waits for a datagram that must not come, in milliseconds.
const QUIET_MS: u64 = 300;

/// A check name with the family in front: `v4: what`.
fn name(family: Family, what: &str) -> String {
    let f = match family {
        Family::Ipv4 => "v4",
        Family::Ipv6 => "v6",
    };
    format!("{f}: {what}")
}

/// `addr` with another port.
fn with_port(addr: IpSocketAddress, port: u16) -> IpSocketAddress {
    match addr {
        IpSocketAddress::Ipv4(mut a) => {
            a.port = port;
            IpSocketAddress::Ipv4(a)
        }
        IpSocketAddress::Ipv6(mut a) => {
            a.port = port;
            IpSocketAddress::Ipv6(a)
        }
    }
}

/// Whether `addr` is the unspecified address of its family (any port).
fn is_unspecified(addr: &IpSocketAddress) -> bool {
    match addr {
        IpSocketAddress::Ipv4(a) => a.address == (0, 0, 0, 0),
        IpSocketAddress::Ipv6(a) => a.address == (0, 0, 0, 0, 0, 0, 0, 0),
    }
}

/// The next datagram of `s` must be `data` from `from`, within [`WAIT_MS`] (`None` when
/// nothing came: a failed check the guest goes on after). The record shows `true` or `false` (the mismatch goes to stderr), the same on every run.
async fn expect_datagram(name: &str, s: &UdpSocket, data: &[u8], from: IpSocketAddress) {
    let got = timeout(WAIT_MS, s.receive()).await;
    let want = Some(Ok((data.to_vec(), from)));
    check(name, got == want, || format!("got {got:?}, want {want:?}"));
}

/// Nothing may arrive at `s` within [`QUIET_MS`] (the pending receive is then cancelled).
async fn expect_nothing(name: &str, s: &UdpSocket) {
    let got = udp_receive_within(QUIET_MS, s).await;
    check(name, got.is_none(), || {
        format!("received {got:?} within {QUIET_MS} ms")
    });
}

/// "Create a new UDP socket." — both families; `get-address-family` is "the value passed to
/// the constructor".
fn create(family: Family) {
    let s = expect_ok(&name(family, "create"), UdpSocket::create(family));
    check_eq(
        &name(family, "new socket: get-address-family"),
        s.get_address_family(),
        family,
    );
}

/// `unbound`: "WASI is stricter and requires `get-local-address` to return `invalid-state` when
/// the socket hasn't been bound yet"; `get-remote-address` "`invalid-state`: The socket is not
/// "connected" to a specific remote address"; `disconnect` "`invalid-state`: The socket is not
/// connected"; `receive` "`invalid-state`: The socket has not been bound yet". None of it
/// changes the state, so a bind still works afterwards.
async fn unbound_state(family: Family) {
    let c = |what: &str| name(family, &format!("unbound: {what}"));
    let s = new_udp(&c("create"), family);
    expect_err(
        &c("get-local-address"),
        s.get_local_address(),
        E::InvalidState,
    );
    expect_err(
        &c("get-remote-address"),
        s.get_remote_address(),
        E::InvalidState,
    );
    expect_err(&c("disconnect"), s.disconnect(), E::InvalidState);
    expect_err(
        &c("receive"),
        udp_receive(&c("receive"), &s).await,
        E::InvalidState,
    );
    check_eq(&c("get-address-family"), s.get_address_family(), family);
    expect_ok(&c("bind after the failed calls"), s.bind(lo(family, 0)));
    let addr = udp_local_addr(&c("local address"), &s);
    check(
        &c("bound to loopback with a port"),
        is_loopback(&addr) && port_of(&addr) != 0,
        || format!("{addr:?}"),
    );
}

/// The option setters in each state (unbound, bound, connected): 0 is `invalid-argument`
/// ("If the provided value is 0, an `invalid-argument` error is returned"; "`invalid-argument`:
/// (set) The TTL value must be 1 or higher"); other values are accepted, and read back exactly
/// for the hop limit (the WIT allows no clamping there), else as some non-zero value ("may be
/// clamped or rounded").
fn option_setters(family: Family) {
    let (_peer, peer_addr) = udp_bound(&name(family, "options: peer"), family);
    let unbound = new_udp(&name(family, "options: unbound"), family);
    let (bound, _) = udp_bound(&name(family, "options: bound"), family);
    let (connected, _) = udp_bound(&name(family, "options: connected"), family);
    expect_ok(
        &name(family, "options: connect"),
        connected.connect(peer_addr),
    );
    for (state, s, hops) in [
        ("unbound", &unbound, 42),
        ("bound", &bound, 43),
        ("connected", &connected, 44),
    ] {
        let c = |what: &str| name(family, &format!("options: {state}: {what}"));
        expect_err(
            &c("set-unicast-hop-limit(0)"),
            s.set_unicast_hop_limit(0),
            E::InvalidArgument,
        );
        expect_ok(
            &c("set-unicast-hop-limit(n)"),
            s.set_unicast_hop_limit(hops),
        );
        check_eq(
            &c("get-unicast-hop-limit reads n back"),
            s.get_unicast_hop_limit(),
            Ok(hops),
        );
        expect_err(
            &c("set-receive-buffer-size(0)"),
            s.set_receive_buffer_size(0),
            E::InvalidArgument,
        );
        expect_ok(
            &c("set-receive-buffer-size(64 KiB)"),
            s.set_receive_buffer_size(65536),
        );
        let rcv = expect_ok(&c("get-receive-buffer-size"), s.get_receive_buffer_size());
        check(&c("receive-buffer-size > 0"), rcv > 0, || format!("{rcv}"));
        expect_err(
            &c("set-send-buffer-size(0)"),
            s.set_send_buffer_size(0),
            E::InvalidArgument,
        );
        expect_ok(
            &c("set-send-buffer-size(64 KiB)"),
            s.set_send_buffer_size(65536),
        );
        let snd = expect_ok(&c("get-send-buffer-size"), s.get_send_buffer_size());
        check(&c("send-buffer-size > 0"), snd > 0, || format!("{snd}"));
        check_eq(&c("get-address-family"), s.get_address_family(), family);
    }
}

/// `bind`: "`invalid-argument`: The `local-address` has the wrong address family"; a failed
/// bind leaves the socket unbound, so it may be retried; once it succeeded, "`invalid-state`:
/// The socket is already bound". (UDP's `bind` lists no "not a unicast address" error: a
/// multicast group may be bound, so that is not asserted.)
fn bind_argument_errors(family: Family) {
    let c = |what: &str| name(family, &format!("bind: {what}"));
    let s = new_udp(&c("create"), family);
    expect_err(
        &c("wrong family"),
        s.bind(lo_other(family, 0)),
        E::InvalidArgument,
    );
    expect_err(
        &c("get-local-address after the failed bind"),
        s.get_local_address(),
        E::InvalidState,
    );
    expect_ok(&c("retry after the failed bind"), s.bind(lo(family, 0)));
    let got = udp_local_addr(&c("local address"), &s);
    check(
        &c("get-local-address is loopback with a port"),
        is_loopback(&got) && family_of(&got) == family && port_of(&got) != 0,
        || format!("{got:?}"),
    );
    expect_err(
        &c("again on port 0"),
        s.bind(lo(family, 0)),
        E::InvalidState,
    );
    expect_err(&c("again on its own address"), s.bind(got), E::InvalidState);
    expect_err(
        &c("again, wrong family"),
        s.bind(lo_other(family, 0)),
        E::InvalidState,
    );
    check_eq(
        &c("the binding did not change"),
        s.get_local_address(),
        Ok(got),
    );
}

/// "`address-in-use`: Address is already in use" (the port of another bound UDP socket) and
/// "`address-not-bindable`: `local-address` is not an address that can be bound to" (a
/// documentation address on no local interface); both failed binds may be retried.
fn bind_in_use_and_not_bindable(family: Family) {
    let c = |what: &str| name(family, &format!("bind: {what}"));
    let (_taken, taken_addr) = udp_bound(&c("first socket"), family);
    let s = new_udp(&c("create"), family);
    let nowhere = match family {
        Family::Ipv4 => v4((192, 0, 2, 1), 0),
        Family::Ipv6 => v6((0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 0),
    };
    expect_err(
        &c("an address on no local interface"),
        s.bind(nowhere),
        E::AddressNotBindable,
    );
    expect_err(
        &c("the address of another bound socket"),
        s.bind(taken_addr),
        E::AddressInUse,
    );
    expect_ok(
        &c("retry on port 0 after address-in-use"),
        s.bind(lo(family, 0)),
    );
    let got = port_of(&udp_local_addr(&c("retried address"), &s));
    check(
        &c("retried bind got another port"),
        got != 0 && got != port_of(&taken_addr),
        || format!("{got} (taken {})", port_of(&taken_addr)),
    );
}

/// `bound`: the local address is the bound one, there is no remote address and nothing to
/// disconnect; a `receive` waits for a datagram (it is not an error); `bind` "`invalid-state`:
/// The socket is already bound".
async fn bound_state(family: Family) {
    let c = |what: &str| name(family, &format!("bound: {what}"));
    let s = new_udp(&c("create"), family);
    let want = lo(family, 0);
    expect_ok(&c("bind"), s.bind(want));
    let addr = udp_local_addr(&c("local address"), &s);
    check_eq(
        &c("get-local-address is the bound address with its port"),
        addr,
        with_port(want, port_of(&addr)),
    );
    expect_err(
        &c("get-remote-address"),
        s.get_remote_address(),
        E::InvalidState,
    );
    expect_err(&c("disconnect"), s.disconnect(), E::InvalidState);
    check_eq(&c("get-address-family"), s.get_address_family(), family);
    expect_nothing(&c("receive waits for a datagram"), &s).await;
    expect_err(&c("bind"), s.bind(lo(family, 0)), E::InvalidState);
    check_eq(
        &c("local address unchanged"),
        s.get_local_address(),
        Ok(addr),
    );
}

/// `connect`'s argument errors, each `invalid-argument`: "The `remote-address` has the wrong
/// address family", "The IP address in `remote-address` is set to INADDR_ANY (`0.0.0.0` /
/// `::`)", "The port in `remote-address` is set to 0". None connects the socket ("On success,
/// the `remote-address` of the socket is updated").
fn connect_argument_errors(family: Family) {
    let c = |what: &str| name(family, &format!("connect: {what}"));
    // A real peer, so that only the argument is wrong.
    let (_peer, peer_addr) = udp_bound(&c("peer"), family);
    let port = port_of(&peer_addr);
    let bad: [(&str, IpSocketAddress); 3] = [
        ("wrong family", lo_other(family, port)),
        ("unspecified address", unspecified(family, port)),
        ("port 0", lo(family, 0)),
    ];
    let unbound = new_udp(&c("unbound socket"), family);
    let (bound, _) = udp_bound(&c("bound socket"), family);
    for (state, s) in [("unbound", &unbound), ("bound", &bound)] {
        for (what, addr) in bad {
            expect_err(
                &c(&format!("{state}: {what}")),
                s.connect(addr),
                E::InvalidArgument,
            );
        }
        expect_err(
            &c(&format!(
                "{state}: get-remote-address after the failed connects"
            )),
            s.get_remote_address(),
            E::InvalidState,
        );
    }
}

/// `connect` on an unbound socket: "If the socket was not already explicitly bound, this
/// function will implicitly bind the socket to a random free port"; "the `remote-address` of
/// the socket is updated"; "The `local-address` may be updated as well, based on the best
/// network path" (so the loopback or the unspecified address). The connected pair talks both
/// ways: "`send` can only be used to send to this destination" — with no address given it
/// goes there; the peer sees the implicitly bound port.
async fn connect_binds_implicitly(family: Family) {
    let c = |what: &str| name(family, &format!("connect: implicit bind: {what}"));
    let (peer, peer_addr) = udp_bound(&c("peer"), family);
    let s = new_udp(&c("create"), family);
    expect_ok(&c("connect"), s.connect(peer_addr));
    check_eq(
        &c("get-remote-address"),
        s.get_remote_address(),
        Ok(peer_addr),
    );
    let local = expect_ok(&c("get-local-address"), s.get_local_address());
    check(
        &c("local address: the family, loopback or unspecified, a port"),
        family_of(&local) == family
            && (is_loopback(&local) || is_unspecified(&local))
            && port_of(&local) != 0,
        || format!("{local:?}"),
    );
    let from = lo(family, port_of(&local));
    check_eq(
        &c("send without an address"),
        udp_send(&c("send"), &s, b"implicit", None).await,
        Ok(()),
    );
    expect_datagram(
        &c("the peer receives it from the implicit port"),
        &peer,
        b"implicit",
        from,
    )
    .await;
    check_eq(
        &c("the peer replies"),
        udp_send(&c("reply"), &peer, b"reply", Some(from)).await,
        Ok(()),
    );
    expect_datagram(&c("the reply arrives"), &s, b"reply", peer_addr).await;
}

/// "This method may be called multiple times on the same socket to change its association,
/// but only the most recent one will be effective": after `connect(b)` then `connect(c)` the
/// remote address is c's, datagrams go to c only, and only c's are received. The binding
/// stays. Connecting again to the same peer works too.
async fn reconnect(family: Family) {
    let c = |what: &str| name(family, &format!("reconnect: {what}"));
    let (b, baddr) = udp_bound(&c("b"), family);
    let (cc, caddr) = udp_bound(&c("c"), family);
    let (a, aaddr) = udp_bound(&c("a"), family);
    expect_ok(&c("connect to b"), a.connect(baddr));
    check_eq(
        &c("get-remote-address is b"),
        a.get_remote_address(),
        Ok(baddr),
    );
    expect_ok(&c("connect to c"), a.connect(caddr));
    check_eq(
        &c("get-remote-address is c"),
        a.get_remote_address(),
        Ok(caddr),
    );
    check_eq(
        &c("get-local-address unchanged"),
        a.get_local_address(),
        Ok(aaddr),
    );
    check_eq(
        &c("send without an address"),
        udp_send(&c("send"), &a, b"to c", None).await,
        Ok(()),
    );
    expect_datagram(&c("c receives it"), &cc, b"to c", aaddr).await;
    expect_nothing(&c("b receives nothing"), &b).await;
    // b first, then c: a host that still let b's datagrams in would return b's.
    check_eq(
        &c("b sends to a"),
        udp_send(&c("b send"), &b, b"from b", Some(aaddr)).await,
        Ok(()),
    );
    check_eq(
        &c("c sends to a"),
        udp_send(&c("c send"), &cc, b"from c", Some(aaddr)).await,
        Ok(()),
    );
    expect_datagram(&c("a receives c's datagram, not b's"), &a, b"from c", caddr).await;
    expect_ok(&c("connect to c again"), a.connect(caddr));
    check_eq(
        &c("get-remote-address still c"),
        a.get_remote_address(),
        Ok(caddr),
    );
    check_eq(
        &c("send after connecting again"),
        udp_send(&c("send"), &a, b"again", None).await,
        Ok(()),
    );
    expect_datagram(&c("c receives it again"), &cc, b"again", aaddr).await;
}

/// `disconnect`: "After calling this method, `send` & `receive` are free to communicate with
/// any remote address again"; afterwards there is no remote address (`get-remote-address`
/// "`invalid-state`: The socket is not "connected" to a specific remote address"), a second
/// `disconnect` is "`invalid-state`: The socket is not connected", and `send` without an
/// address is "`invalid-argument`: The socket is not "connected" and no value for
/// `remote-address` was provided". The socket stays bound to its address; it may connect
/// again.
async fn disconnect(family: Family) {
    let c = |what: &str| name(family, &format!("disconnect: {what}"));
    let (b, baddr) = udp_bound(&c("b"), family);
    let (cc, caddr) = udp_bound(&c("c"), family);
    let (a, aaddr) = udp_bound(&c("a"), family);
    expect_ok(&c("connect to b"), a.connect(baddr));
    expect_ok(&c("disconnect"), a.disconnect());
    expect_err(
        &c("get-remote-address"),
        a.get_remote_address(),
        E::InvalidState,
    );
    expect_err(&c("disconnect again"), a.disconnect(), E::InvalidState);
    let local = a.get_local_address();
    check(
        &c("get-local-address unchanged"),
        local == Ok(aaddr),
        || format!("got {local:?}, want Ok({aaddr:?})"),
    );
    expect_err(
        &c("send without an address"),
        udp_send(&c("send"), &a, b"nowhere", None).await,
        E::InvalidArgument,
    );
    check_eq(
        &c("send to c"),
        udp_send(&c("send to c"), &a, b"to c", Some(caddr)).await,
        Ok(()),
    );
    expect_datagram(&c("c receives it"), &cc, b"to c", aaddr).await;
    check_eq(
        &c("c sends to a"),
        udp_send(&c("c send"), &cc, b"from c", Some(aaddr)).await,
        Ok(()),
    );
    expect_datagram(&c("a receives from c"), &a, b"from c", caddr).await;
    check_eq(
        &c("b sends to a"),
        udp_send(&c("b send"), &b, b"from b", Some(aaddr)).await,
        Ok(()),
    );
    expect_datagram(&c("a receives from b"), &a, b"from b", baddr).await;
    expect_ok(&c("connect again, to c"), a.connect(caddr));
    check_eq(
        &c("get-remote-address after connecting again"),
        a.get_remote_address(),
        Ok(caddr),
    );
}

/// `send`'s argument errors on a bound, unconnected socket, each `invalid-argument`: "The socket
/// is not "connected" and no value for `remote-address` was provided", "The `remote-address`
/// has the wrong address family", "The IP address in `remote-address` is set to INADDR_ANY",
/// "The port in `remote-address` is set to 0". None of them sends anything: the peer's next
/// datagram is the good one sent after them. An unbound socket without an address: the same.
async fn send_argument_errors(family: Family) {
    let c = |what: &str| name(family, &format!("send: {what}"));
    let (peer, peer_addr) = udp_bound(&c("peer"), family);
    let port = port_of(&peer_addr);
    let (s, saddr) = udp_bound(&c("socket"), family);
    let bad: [(&str, Option<IpSocketAddress>); 4] = [
        ("no address, not connected", None),
        ("wrong family", Some(lo_other(family, port))),
        ("unspecified address", Some(unspecified(family, port))),
        ("port 0", Some(lo(family, 0))),
    ];
    for (what, to) in bad {
        expect_err(
            &c(what),
            udp_send(&c(what), &s, b"bad", to).await,
            E::InvalidArgument,
        );
    }
    check_eq(
        &c("then a good one"),
        udp_send(&c("good send"), &s, b"good", Some(peer_addr)).await,
        Ok(()),
    );
    expect_datagram(
        &c("the peer's first datagram is the good one"),
        &peer,
        b"good",
        saddr,
    )
    .await;
    let unbound = new_udp(&c("unbound socket"), family);
    expect_err(
        &c("unbound: no address"),
        udp_send(&c("unbound send"), &unbound, b"bad", None).await,
        E::InvalidArgument,
    );
}

/// "If the socket has not been explicitly bound, it will be implicitly bound to a random free
/// port": after a `send` the socket has a local address, the peer sees that port, and the
/// socket receives the reply (`receive` no longer "has not been bound yet").
async fn send_binds_implicitly(family: Family) {
    let c = |what: &str| name(family, &format!("send: implicit bind: {what}"));
    let (peer, peer_addr) = udp_bound(&c("peer"), family);
    let s = new_udp(&c("create"), family);
    check_eq(
        &c("send to the peer"),
        udp_send(&c("send"), &s, b"hello", Some(peer_addr)).await,
        Ok(()),
    );
    let local = expect_ok(&c("get-local-address"), s.get_local_address());
    check(
        &c("local address: the family and a port"),
        family_of(&local) == family && port_of(&local) != 0,
        || format!("{local:?}"),
    );
    let from = lo(family, port_of(&local));
    expect_datagram(
        &c("the peer receives it from that port"),
        &peer,
        b"hello",
        from,
    )
    .await;
    check_eq(
        &c("the peer replies"),
        udp_send(&c("reply"), &peer, b"world", Some(from)).await,
        Ok(()),
    );
    expect_datagram(&c("the reply arrives"), &s, b"world", peer_addr).await;
    expect_err(&c("bind"), s.bind(lo(family, 0)), E::InvalidState);
}

/// `send` on a connected socket: "if the socket is connected, a `remote-address` argument _may_
/// be provided but then it must be identical to the address passed to `connect`" — the same
/// address goes; another one is "`invalid-argument`: The socket is in "connected" mode and
/// `remote-address` is `some` value that does not match the address passed to `connect`", and
/// is not sent.
async fn connected_send(family: Family) {
    let c = |what: &str| name(family, &format!("connected send: {what}"));
    let (b, baddr) = udp_bound(&c("b"), family);
    let (cc, caddr) = udp_bound(&c("c"), family);
    let (a, aaddr) = udp_bound(&c("a"), family);
    expect_ok(&c("connect to b"), a.connect(baddr));
    expect_err(
        &c("to another address"),
        udp_send(&c("send to c"), &a, b"to c", Some(caddr)).await,
        E::InvalidArgument,
    );
    expect_err(
        &c("to the peer's address, another port"),
        udp_send(
            &c("send to b's address, c's port"),
            &a,
            b"to b?",
            Some(with_port(baddr, port_of(&caddr))),
        )
        .await,
        E::InvalidArgument,
    );
    expect_err(
        &c("wrong family"),
        udp_send(
            &c("send"),
            &a,
            b"x",
            Some(lo_other(family, port_of(&baddr))),
        )
        .await,
        E::InvalidArgument,
    );
    check_eq(
        &c("to the connected address"),
        udp_send(&c("send to b"), &a, b"same", Some(baddr)).await,
        Ok(()),
    );
    expect_datagram(&c("b receives it"), &b, b"same", aaddr).await;
    check_eq(
        &c("without an address"),
        udp_send(&c("send"), &a, b"none", None).await,
        Ok(()),
    );
    expect_datagram(&c("b receives that too"), &b, b"none", aaddr).await;
    expect_nothing(&c("c receives nothing"), &cc).await;
}

/// `receive`: "the return value contains a tuple of the received data and the address of the
/// sender" — exact, in order, an empty datagram too; a `receive` waiting before the datagram
/// is sent returns it.
async fn receive(family: Family) {
    let c = |what: &str| name(family, &format!("receive: {what}"));
    let (a, aaddr) = udp_bound(&c("a"), family);
    let (b, baddr) = udp_bound(&c("b"), family);
    let mut waiting = Box::pin(a.receive());
    let early = poll_once(&mut waiting).await;
    check(
        &c("a receive with nothing sent waits"),
        early.is_none(),
        || format!("returned {early:?}"),
    );
    check_eq(
        &c("b sends to a"),
        udp_send(&c("send"), &b, b"wake", Some(aaddr)).await,
        Ok(()),
    );
    check_eq(
        &c("the waiting receive returns it"),
        within(&c("waiting receive"), waiting).await,
        Ok((b"wake".to_vec(), baddr)),
    );
    for data in [&b"d0"[..], b"d1", b"d2"] {
        if let Err(e) = udp_send(&c("send"), &b, data, Some(aaddr)).await {
            guest_support::fail(&c("send"), format!("{e:?}"));
        }
    }
    for (i, data) in [&b"d0"[..], b"d1", b"d2"].into_iter().enumerate() {
        expect_datagram(&c(&format!("datagram {i} in order")), &a, data, baddr).await;
    }
    check_eq(
        &c("an empty datagram"),
        udp_send(&c("send"), &b, b"", Some(aaddr)).await,
        Ok(()),
    );
    expect_datagram(&c("arrives empty"), &a, b"", baddr).await;
}

/// A connected socket: "`receive` will only return datagrams sent from the provided
/// `remote-address`"; "If the socket is connected, the sender address is guaranteed to match
/// the remote address passed to `connect`". A third socket's datagram, sent first, is not
/// returned.
async fn connected_receive_filters(family: Family) {
    let c = |what: &str| name(family, &format!("connected receive: {what}"));
    let (a, aaddr) = udp_bound(&c("a"), family);
    let (b, baddr) = udp_bound(&c("b"), family);
    let (cc, _caddr) = udp_bound(&c("c"), family);
    expect_ok(&c("connect to b"), a.connect(baddr));
    check_eq(
        &c("c sends to a"),
        udp_send(&c("c send"), &cc, b"from c", Some(aaddr)).await,
        Ok(()),
    );
    check_eq(
        &c("b sends to a"),
        udp_send(&c("b send"), &b, b"from b", Some(aaddr)).await,
        Ok(()),
    );
    expect_datagram(&c("a receives b's datagram"), &a, b"from b", baddr).await;
    expect_nothing(&c("c's datagram is not returned"), &a).await;
}

/// A 65 000-byte datagram goes over loopback and arrives whole. One of 65 536 bytes (64 KiB:
/// "Implementations may trap if the `data` length exceeds 64 KiB", so not at this length) is
/// more than a UDP datagram can carry (the IPv4 payload limit is 65 507 bytes, IPv6's without
/// jumbograms 65 527): "`datagram-too-large`: The datagram is too large. (EMSGSIZE)". Nothing
/// of it arrives, and the socket goes on.
async fn large_datagrams(family: Family) {
    let c = |what: &str| name(family, &format!("large: {what}"));
    let (a, aaddr) = udp_bound(&c("a"), family);
    let (b, baddr) = udp_bound(&c("b"), family);
    expect_ok(
        &c("b: set-receive-buffer-size(1 MiB)"),
        b.set_receive_buffer_size(1 << 20),
    );
    let big: Vec<u8> = (0..65_000u32).map(|i| (i % 251) as u8).collect();
    check_eq(
        &c("send 65000 bytes"),
        udp_send(&c("send"), &a, &big, Some(baddr)).await,
        Ok(()),
    );
    let got = udp_receive(&c("receive 65000 bytes"), &b).await;
    match got {
        Ok((data, from)) => {
            check_eq(&c("received length"), data.len(), big.len());
            check(&c("received the same bytes"), data == big, || {
                "differ".into()
            });
            check_eq(&c("sender"), from, aaddr);
        }
        Err(e) => guest_support::fail(&c("receive 65000 bytes"), format!("{e:?}")),
    }
    let huge = vec![7u8; 65_536];
    expect_err(
        &c("send 65536 bytes"),
        udp_send(&c("send"), &a, &huge, Some(baddr)).await,
        E::DatagramTooLarge,
    );
    check_eq(
        &c("send after datagram-too-large"),
        udp_send(&c("send"), &a, b"after", Some(baddr)).await,
        Ok(()),
    );
    expect_datagram(
        &c("the next datagram is the small one"),
        &b,
        b"after",
        aaddr,
    )
    .await;
}

/// Datagram round trips between two sockets on the loopback address: each side answers the
/// sender address its `receive` returned, ten times.
async fn round_trips(family: Family) {
    let c = |what: &str| name(family, &format!("round trip: {what}"));
    let (a, aaddr) = udp_bound(&c("a"), family);
    let (b, baddr) = udp_bound(&c("b"), family);
    let mut bad = Vec::new();
    for i in 0..10u32 {
        let ping = format!("ping {i}").into_bytes();
        let pong = format!("pong {i}").into_bytes();
        if let Err(e) = udp_send(&c("ping"), &a, &ping, Some(baddr)).await {
            bad.push(format!("{i}: ping send {e:?}"));
            continue;
        }
        let from = match udp_receive(&c("receive ping"), &b).await {
            Ok((data, from)) if data == ping && from == aaddr => from,
            other => {
                bad.push(format!("{i}: b received {other:?}"));
                continue;
            }
        };
        if let Err(e) = udp_send(&c("pong"), &b, &pong, Some(from)).await {
            bad.push(format!("{i}: pong send {e:?}"));
            continue;
        }
        match udp_receive(&c("receive pong"), &a).await {
            Ok((data, from)) if data == pong && from == baddr => {}
            other => bad.push(format!("{i}: a received {other:?}")),
        }
    }
    check(
        &c("ten ping-pongs, exact data and sender addresses"),
        bad.is_empty(),
        || bad.join("; "),
    );
}
