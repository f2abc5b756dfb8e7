//! raw-tcp: drives every `wasi:sockets/tcp`, `tcp-create-socket`, `network` and
//! `instance-network` function in every socket state and asserts the exact result or
//! error code required by the WIT doc comments (wit/sockets.wit) and
//! shared/spec/NOTES.md. Loopback only; every wait is bounded by a timeout.

use guest_support::{check, check_eq, expect_err, expect_ok, fail, finish, pass, start};
use raw::{
    ErrorCode as E, IpAddressFamily as Family, IpSocketAddress, Network, ShutdownType, StreamError,
    TcpPair, WAIT_MS, create_tcp_socket, instance_network, lo, lo4, lo6, local_addr_tcp, new_tcp,
    port_of, read_exact, read_to_closed, ready_within, tcp_bind, tcp_connect, tcp_listen,
    tcp_listener, tcp_pair, v4, v6, wait_ready, write_all,
};

fn main() {
    start("raw-tcp");
    let net = instance_network();
    create();
    unbound_state(&net);
    option_setters();
    bind_argument_errors(&net);
    bind_address_in_use_then_retry(&net);
    bind_in_progress_and_bound_state(&net);
    listening_state(&net);
    connect_argument_errors(&net);
    connect_accept_and_inherit(&net);
    connect_refused_closes_socket(&net);
    shutdown_receive(&net);
    shutdown_send(&net);
    shutdown_both(&net);
    subscribe_one_pollable_for_life(&net);
    ipv6_path(&net);
    zero_length_read_reports_closed(&net);
    buffer_sizes_round_trip(&net);
    keep_alive_parameters_leave_enabled_alone();
    pollable_follows_connect(&net);
    shutdown_send_delivers_accepted_bytes(&net);
    end_of_stream_edges(&net);
    bind_unspecified_and_reuse(&net);
    options_in_every_state(&net);
    blocking_read_returns_data_then_closed(&net);
    // Last: a host that makes streams children of their socket traps here (wasock does not).
    drop_socket_before_streams(&net);
    drop_streams_before_socket(&net);
    finish();
}

const ALL_SHUTDOWNS: [ShutdownType; 3] = [
    ShutdownType::Receive,
    ShutdownType::Send,
    ShutdownType::Both,
];

/// `create-tcp-socket` works for both families and `address-family` reports the family.
fn create() {
    for family in [Family::Ipv4, Family::Ipv6] {
        let s = expect_ok(
            &format!("create-tcp-socket({family:?})"),
            create_tcp_socket(family),
        );
        check_eq(
            &format!("address-family of a new {family:?} socket"),
            s.address_family(),
            family,
        );
    }
}

/// In the `unbound` state only configuration and `start-bind`/`start-connect` are
/// valid: addresses are `invalid-state`, listen/accept/shutdown are `invalid-state`, and
/// every `finish-*` is `not-in-progress` ("Trying to finish an asynchronous operation
/// that has not been started yet").
fn unbound_state(net: &Network) {
    let _ = net;
    let s = new_tcp("unbound: create", Family::Ipv4);
    expect_err("unbound: local-address", s.local_address(), E::InvalidState);
    expect_err(
        "unbound: remote-address",
        s.remote_address(),
        E::InvalidState,
    );
    check_eq("unbound: is-listening", s.is_listening(), false);
    expect_err("unbound: start-listen", s.start_listen(), E::InvalidState);
    expect_err("unbound: accept", s.accept(), E::InvalidState);
    for how in ALL_SHUTDOWNS {
        expect_err(
            &format!("unbound: shutdown({how:?})"),
            s.shutdown(how),
            E::InvalidState,
        );
    }
    expect_err("unbound: finish-bind", s.finish_bind(), E::NotInProgress);
    expect_err(
        "unbound: finish-connect",
        s.finish_connect(),
        E::NotInProgress,
    );
    expect_err(
        "unbound: finish-listen",
        s.finish_listen(),
        E::NotInProgress,
    );
    // NOTES.md: subscribe is "ready at once in unbound, bound, connected, closed".
    check("unbound: subscribe is ready", s.subscribe().ready(), || {
        "pollable of an unbound socket is not ready".into()
    });
    // "If the provided value is 0, an `invalid-argument` error is returned."
    expect_err(
        "unbound: set-listen-backlog-size(0)",
        s.set_listen_backlog_size(0),
        E::InvalidArgument,
    );
    expect_ok(
        "unbound: set-listen-backlog-size(16)",
        s.set_listen_backlog_size(16),
    );
    // The socket is still usable after all of that: nothing changed its state.
    expect_ok(
        "unbound: bind after failed calls",
        tcp_bind("unbound: bind", &s, net, lo4(0)),
    );
}

/// Option setters: 0 is `invalid-argument`; other values are accepted and read back
/// (possibly clamped/rounded, except hop-limit and keep-alive-enabled, which are exact).
fn option_setters() {
    for family in [Family::Ipv4, Family::Ipv6] {
        let s = new_tcp("setters: create", family);
        let c = |what: &str| format!("setters({family:?}): {what}");

        expect_ok(
            &c("set-keep-alive-enabled(true)"),
            s.set_keep_alive_enabled(true),
        );
        check_eq(
            &c("keep-alive-enabled after true"),
            s.keep_alive_enabled(),
            Ok(true),
        );
        expect_ok(
            &c("set-keep-alive-enabled(false)"),
            s.set_keep_alive_enabled(false),
        );
        check_eq(
            &c("keep-alive-enabled after false"),
            s.keep_alive_enabled(),
            Ok(false),
        );

        // "If the provided value is 0, an `invalid-argument` error is returned. Any other
        // value will never cause an error, but it might be silently clamped and/or rounded."
        expect_err(
            &c("set-keep-alive-idle-time(0)"),
            s.set_keep_alive_idle_time(0),
            E::InvalidArgument,
        );
        expect_ok(
            &c("set-keep-alive-idle-time(30s)"),
            s.set_keep_alive_idle_time(30_000_000_000),
        );
        let idle = expect_ok(&c("keep-alive-idle-time"), s.keep_alive_idle_time());
        check(&c("keep-alive-idle-time > 0"), idle > 0, || {
            format!("{idle}")
        });

        expect_err(
            &c("set-keep-alive-interval(0)"),
            s.set_keep_alive_interval(0),
            E::InvalidArgument,
        );
        expect_ok(
            &c("set-keep-alive-interval(5s)"),
            s.set_keep_alive_interval(5_000_000_000),
        );
        let intvl = expect_ok(&c("keep-alive-interval"), s.keep_alive_interval());
        check(&c("keep-alive-interval > 0"), intvl > 0, || {
            format!("{intvl}")
        });

        expect_err(
            &c("set-keep-alive-count(0)"),
            s.set_keep_alive_count(0),
            E::InvalidArgument,
        );
        expect_ok(&c("set-keep-alive-count(4)"), s.set_keep_alive_count(4));
        let count = expect_ok(&c("keep-alive-count"), s.keep_alive_count());
        check(&c("keep-alive-count > 0"), count > 0, || format!("{count}"));

        // hop-limit: "If the provided value is 0, an `invalid-argument` error is returned."
        // No clamping is mentioned, so the value reads back exactly.
        expect_err(
            &c("set-hop-limit(0)"),
            s.set_hop_limit(0),
            E::InvalidArgument,
        );
        expect_ok(&c("set-hop-limit(42)"), s.set_hop_limit(42));
        check_eq(&c("hop-limit after 42"), s.hop_limit(), Ok(42));

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

/// start-bind: wrong family, a non-unicast address (multicast, broadcast) and an
/// IPv4-mapped IPv6 address are `invalid-argument`; after such a failure the bind can be
/// retried ("Bind can be attempted multiple times on the same socket ... as long as the
/// previous bind failed").
fn bind_argument_errors(net: &Network) {
    let s4 = new_tcp("bind args: create v4", Family::Ipv4);
    let bad4: [(&str, IpSocketAddress); 3] = [
        ("IPv6 address on an IPv4 socket", lo6(0)),
        ("multicast 224.0.0.1", v4((224, 0, 0, 1), 0)),
        ("broadcast 255.255.255.255", v4((255, 255, 255, 255), 0)),
    ];
    for (what, addr) in bad4 {
        let check = format!("bind v4: {what}");
        expect_err(&check, tcp_bind(&check, &s4, net, addr), E::InvalidArgument);
    }
    expect_ok(
        "bind v4: retry after failed binds",
        tcp_bind("bind v4 retry", &s4, net, lo4(0)),
    );

    let s6 = new_tcp("bind args: create v6", Family::Ipv6);
    let bad6: [(&str, IpSocketAddress); 3] = [
        ("IPv4 address on an IPv6 socket", lo4(0)),
        ("multicast ff02::1", v6((0xff02, 0, 0, 0, 0, 0, 0, 1), 0)),
        (
            "IPv4-mapped ::ffff:127.0.0.1",
            v6((0, 0, 0, 0, 0, 0xffff, 0x7f00, 0x0001), 0),
        ),
    ];
    for (what, addr) in bad6 {
        let check = format!("bind v6: {what}");
        expect_err(&check, tcp_bind(&check, &s6, net, addr), E::InvalidArgument);
    }
    expect_ok(
        "bind v6: retry after failed binds",
        tcp_bind("bind v6 retry", &s6, net, lo6(0)),
    );
}

/// "`address-in-use`: Address is already in use." — binding the port of a listener;
/// then the failed bind is retried on port 0 and succeeds.
fn bind_address_in_use_then_retry(net: &Network) {
    let l = tcp_listener("addr-in-use: listener", net, Family::Ipv4);
    let port = port_of(&local_addr_tcp("addr-in-use: listener address", &l));
    let s = new_tcp("addr-in-use: create", Family::Ipv4);
    // "`address-not-bindable`: `local-address` is not an address that the `network` can bind
    // to. (EADDRNOTAVAIL)" — a documentation address is on no local interface (bind sends
    // nothing), and the failed bind may be retried.
    expect_err(
        "bind: an address on no local interface",
        tcp_bind("bind: not bindable", &s, net, v4((192, 0, 2, 1), 0)),
        E::AddressNotBindable,
    );
    expect_err(
        "bind: port of a listening socket",
        tcp_bind("bind: port in use", &s, net, lo4(port)),
        E::AddressInUse,
    );
    expect_ok(
        "bind: retry on port 0 after address-in-use",
        tcp_bind("bind: retry", &s, net, lo4(0)),
    );
    let got = local_addr_tcp("addr-in-use: retried address", &s);
    check(
        "bind: retried bind got another port",
        port_of(&got) != port,
        || format!("got {got:?}"),
    );
}

/// bind-in-progress: a second start-bind is rejected; finish-bind completes it once;
/// then in `bound`: start-bind is `invalid-state`, finish-bind `not-in-progress`,
/// local-address is the bound loopback address, remote-address/accept/shutdown
/// `invalid-state`, subscribe ready.
fn bind_in_progress_and_bound_state(net: &Network) {
    let s = new_tcp("bound: create", Family::Ipv4);
    expect_ok("bind-in-progress: start-bind", s.start_bind(net, lo4(0)));
    // A second bind while one is in progress: "never concurrently" — the WIT's
    // `concurrency-conflict` ("incompatible with another asynchronous operation that is
    // already in progress"), whatever the arguments.
    expect_err(
        "bind-in-progress: second start-bind",
        s.start_bind(net, lo4(0)),
        E::ConcurrencyConflict,
    );
    expect_err(
        "bind-in-progress: start-connect",
        s.start_connect(net, lo4(9)),
        E::ConcurrencyConflict,
    );
    expect_err(
        "bind-in-progress: start-listen",
        s.start_listen(),
        E::ConcurrencyConflict,
    );
    let p = s.subscribe();
    expect_ok(
        "bind-in-progress: finish-bind",
        raw::finish_wait("finish-bind", &p, || s.finish_bind()),
    );
    expect_err(
        "bound: finish-bind again",
        s.finish_bind(),
        E::NotInProgress,
    );
    expect_err(
        "bound: start-bind",
        s.start_bind(net, lo4(0)),
        E::InvalidState,
    );

    let local = expect_ok("bound: local-address", s.local_address());
    check(
        "bound: local-address is 127.0.0.1",
        local == lo4(port_of(&local)),
        || format!("got {local:?}"),
    );
    check("bound: local port is not 0", port_of(&local) != 0, || {
        format!("got {local:?}")
    });
    expect_err("bound: remote-address", s.remote_address(), E::InvalidState);
    check_eq("bound: is-listening", s.is_listening(), false);
    expect_err("bound: accept", s.accept(), E::InvalidState);
    for how in ALL_SHUTDOWNS {
        expect_err(
            &format!("bound: shutdown({how:?})"),
            s.shutdown(how),
            E::InvalidState,
        );
    }
    expect_err("bound: finish-listen", s.finish_listen(), E::NotInProgress);
    expect_err(
        "bound: finish-connect",
        s.finish_connect(),
        E::NotInProgress,
    );
    check("bound: subscribe is ready", p.ready(), || {
        "pollable of a bound socket is not ready".into()
    });
}

/// listening: is-listening true; start-listen/start-bind/start-connect `invalid-state`;
/// accept `would-block` with nothing pending; remote-address/shutdown `invalid-state`;
/// set-listen-backlog-size accepted or `not-supported`, 0 `invalid-argument`.
fn listening_state(net: &Network) {
    let s = new_tcp("listening: create", Family::Ipv4);
    expect_ok("listening: bind", tcp_bind("bind", &s, net, lo4(0)));
    let before = local_addr_tcp("listening: address before listen", &s);
    expect_ok("listening: start-listen", s.start_listen());
    for (what, r) in [
        ("start-listen", s.start_listen()),
        ("start-bind", s.start_bind(net, lo4(0))),
        ("start-connect", s.start_connect(net, lo4(9))),
    ] {
        expect_err(
            &format!("listen-in-progress: {what}"),
            r,
            E::ConcurrencyConflict,
        );
    }
    let p = s.subscribe();
    expect_ok(
        "listening: finish-listen",
        raw::finish_wait("finish-listen", &p, || s.finish_listen()),
    );
    check_eq("listening: is-listening", s.is_listening(), true);
    check_eq(
        "listening: local-address unchanged by listen",
        s.local_address(),
        Ok(before),
    );
    expect_err(
        "listening: start-listen again",
        s.start_listen(),
        E::InvalidState,
    );
    expect_err(
        "listening: finish-listen again",
        s.finish_listen(),
        E::NotInProgress,
    );
    expect_err(
        "listening: start-bind",
        s.start_bind(net, lo4(0)),
        E::InvalidState,
    );
    expect_err(
        "listening: start-connect",
        s.start_connect(net, before),
        E::InvalidState,
    );
    expect_err(
        "listening: accept with nothing pending",
        s.accept(),
        E::WouldBlock,
    );
    expect_err(
        "listening: remote-address",
        s.remote_address(),
        E::InvalidState,
    );
    for how in ALL_SHUTDOWNS {
        expect_err(
            &format!("listening: shutdown({how:?})"),
            s.shutdown(how),
            E::InvalidState,
        );
    }
    // "`not-supported`: (set) The platform does not support changing the backlog size
    // after the initial listen." Linux does (`listen(2)` again), and so does wasock.
    expect_ok(
        "listening: set-listen-backlog-size(32)",
        s.set_listen_backlog_size(32),
    );
    expect_err(
        "listening: set-listen-backlog-size(0)",
        s.set_listen_backlog_size(0),
        E::InvalidArgument,
    );
}

/// start-connect `invalid-argument`: wrong family, not unicast (multicast, broadcast),
/// IPv4-mapped, unspecified address (0.0.0.0 / ::), port 0. The socket is unchanged
/// afterwards and can still connect.
fn connect_argument_errors(net: &Network) {
    let l4 = tcp_listener("connect args: listener v4", net, Family::Ipv4);
    let port = port_of(&local_addr_tcp("connect args: listener address", &l4));

    let s4 = new_tcp("connect args: create v4", Family::Ipv4);
    let bad4: [(&str, IpSocketAddress); 5] = [
        ("unspecified 0.0.0.0", v4((0, 0, 0, 0), port)),
        ("port 0", lo4(0)),
        ("IPv6 address on an IPv4 socket", lo6(port)),
        ("multicast 224.0.0.1", v4((224, 0, 0, 1), port)),
        ("broadcast 255.255.255.255", v4((255, 255, 255, 255), port)),
    ];
    for (what, addr) in bad4 {
        expect_err(
            &format!("start-connect v4: {what}"),
            s4.start_connect(net, addr),
            E::InvalidArgument,
        );
    }
    expect_err(
        "connect args: no connect in progress after invalid-argument",
        s4.finish_connect(),
        E::NotInProgress,
    );
    let streams = tcp_connect("connect args: v4 connect", &s4, net, lo4(port));
    expect_ok(
        "start-connect v4: works after invalid-argument errors",
        streams,
    );

    let l6 = tcp_listener("connect args: listener v6", net, Family::Ipv6);
    let port6 = port_of(&local_addr_tcp("connect args: listener v6 address", &l6));
    let s6 = new_tcp("connect args: create v6", Family::Ipv6);
    let bad6: [(&str, IpSocketAddress); 5] = [
        ("unspecified ::", v6((0, 0, 0, 0, 0, 0, 0, 0), port6)),
        ("port 0", lo6(0)),
        ("IPv4 address on an IPv6 socket", lo4(port)),
        (
            "multicast ff02::1",
            v6((0xff02, 0, 0, 0, 0, 0, 0, 1), port6),
        ),
        (
            "IPv4-mapped ::ffff:127.0.0.1",
            v6((0, 0, 0, 0, 0, 0xffff, 0x7f00, 0x0001), port),
        ),
    ];
    for (what, addr) in bad6 {
        expect_err(
            &format!("start-connect v6: {what}"),
            s6.start_connect(net, addr),
            E::InvalidArgument,
        );
    }
    let streams = tcp_connect("connect args: v6 connect", &s6, net, lo6(port6));
    expect_ok(
        "start-connect v6: works after invalid-argument errors",
        streams,
    );
}

/// The main client/server flow: connect-in-progress rules, finish-connect, addresses on
/// both ends, the listener pollable, accept and the options an accepted socket inherits
/// ("The following properties are inherited from the listener socket: address-family,
/// keep-alive-enabled, keep-alive-idle-time, keep-alive-interval, keep-alive-count,
/// hop-limit, receive-buffer-size, send-buffer-size"), stream I/O, and the `connected`
/// state's `invalid-state` / `not-in-progress` results.
fn connect_accept_and_inherit(net: &Network) {
    let l = new_tcp("flow: create listener", Family::Ipv4);
    expect_ok(
        "flow: listener set-keep-alive-enabled",
        l.set_keep_alive_enabled(true),
    );
    expect_ok(
        "flow: listener set-keep-alive-idle-time",
        l.set_keep_alive_idle_time(11_000_000_000),
    );
    expect_ok(
        "flow: listener set-keep-alive-interval",
        l.set_keep_alive_interval(7_000_000_000),
    );
    expect_ok(
        "flow: listener set-keep-alive-count",
        l.set_keep_alive_count(3),
    );
    expect_ok("flow: listener set-hop-limit", l.set_hop_limit(42));
    expect_ok(
        "flow: listener set-receive-buffer-size",
        l.set_receive_buffer_size(32 * 1024),
    );
    expect_ok(
        "flow: listener set-send-buffer-size",
        l.set_send_buffer_size(48 * 1024),
    );
    expect_ok("flow: listener bind", tcp_bind("bind", &l, net, lo4(0)));
    expect_ok("flow: listener listen", tcp_listen("listen", &l));
    let laddr = local_addr_tcp("flow: listener address", &l);
    let lp = l.subscribe();
    check(
        "flow: listener pollable not ready with nothing pending",
        !lp.ready(),
        || "ready before any connection was made".into(),
    );

    let c = new_tcp("flow: create client", Family::Ipv4);
    let cp = c.subscribe();
    expect_ok(
        "connect-in-progress: start-connect",
        c.start_connect(net, laddr),
    );
    // connect-in-progress rules.
    expect_err(
        "connect-in-progress: set-listen-backlog-size",
        c.set_listen_backlog_size(8),
        E::InvalidState,
    );
    // Every start-* while the connect is under way: `concurrency-conflict`, as above.
    expect_err(
        "connect-in-progress: second start-connect",
        c.start_connect(net, laddr),
        E::ConcurrencyConflict,
    );
    expect_err(
        "connect-in-progress: start-listen",
        c.start_listen(),
        E::ConcurrencyConflict,
    );
    expect_err(
        "connect-in-progress: start-bind",
        c.start_bind(net, lo4(0)),
        E::ConcurrencyConflict,
    );
    expect_err("connect-in-progress: accept", c.accept(), E::InvalidState);
    expect_err(
        "connect-in-progress: finish-bind",
        c.finish_bind(),
        E::NotInProgress,
    );
    check_eq("connect-in-progress: is-listening", c.is_listening(), false);
    // "subscribe: in a *-in-progress state when the operation has resolved".
    wait_ready("connect-in-progress: pollable resolves", &cp, WAIT_MS);
    let (cin, cout) = expect_ok(
        "connect: finish-connect",
        raw::finish_wait("finish-connect", &cp, || c.finish_connect()),
    );

    // connected state (client side).
    expect_err(
        "connected: finish-connect again",
        c.finish_connect(),
        E::NotInProgress,
    );
    check("connected: subscribe is ready", cp.ready(), || {
        "pollable of a connected socket is not ready".into()
    });
    let caddr = expect_ok("connected: client local-address", c.local_address());
    check(
        "connected: client local-address is loopback",
        raw::is_loopback(&caddr),
        || format!("{caddr:?}"),
    );
    check(
        "connected: client local port is not 0",
        port_of(&caddr) != 0,
        || format!("{caddr:?}"),
    );
    check_eq(
        "connected: client remote-address is the listener",
        c.remote_address(),
        Ok(laddr),
    );
    expect_err(
        "connected: start-bind",
        c.start_bind(net, lo4(0)),
        E::InvalidState,
    );
    expect_err(
        "connected: start-connect",
        c.start_connect(net, laddr),
        E::InvalidState,
    );
    expect_err("connected: start-listen", c.start_listen(), E::InvalidState);
    expect_err(
        "connected: set-listen-backlog-size",
        c.set_listen_backlog_size(8),
        E::InvalidState,
    );
    expect_err("connected: accept", c.accept(), E::InvalidState);
    expect_err(
        "connected: finish-listen",
        c.finish_listen(),
        E::NotInProgress,
    );
    check_eq("connected: is-listening", c.is_listening(), false);

    // Listener: "when listening, [ready] when a connection is pending".
    wait_ready(
        "listening: pollable ready once a connection is pending",
        &lp,
        WAIT_MS,
    );
    let (a, ain, aout) = expect_ok("accept: pending connection", l.accept());
    expect_err("accept: nothing more pending", l.accept(), E::WouldBlock);
    check_eq("accept: address-family", a.address_family(), Family::Ipv4);
    check_eq("accept: is-listening", a.is_listening(), false);
    check_eq(
        "accept: local-address is the listener's",
        a.local_address(),
        Ok(laddr),
    );
    check_eq(
        "accept: remote-address is the client's local address",
        a.remote_address(),
        Ok(caddr),
    );
    expect_err("accepted: start-listen", a.start_listen(), E::InvalidState);
    expect_err("accepted: accept", a.accept(), E::InvalidState);

    // Inherited options: compare against what the listener's getters report (the host
    // may clamp values; the accepted socket must carry the listener's effective values).
    check_eq(
        "accept inherits keep-alive-enabled",
        a.keep_alive_enabled(),
        l.keep_alive_enabled(),
    );
    check_eq(
        "accept: listener keep-alive-enabled is true",
        l.keep_alive_enabled(),
        Ok(true),
    );
    check_eq(
        "accept inherits keep-alive-idle-time",
        a.keep_alive_idle_time(),
        l.keep_alive_idle_time(),
    );
    check_eq(
        "accept inherits keep-alive-interval",
        a.keep_alive_interval(),
        l.keep_alive_interval(),
    );
    check_eq(
        "accept inherits keep-alive-count",
        a.keep_alive_count(),
        l.keep_alive_count(),
    );
    check_eq("accept inherits hop-limit", a.hop_limit(), l.hop_limit());
    check_eq("accept: listener hop-limit is 42", l.hop_limit(), Ok(42));
    check_eq(
        "accept inherits receive-buffer-size",
        a.receive_buffer_size(),
        l.receive_buffer_size(),
    );
    check_eq(
        "accept inherits send-buffer-size",
        a.send_buffer_size(),
        l.send_buffer_size(),
    );

    // Streams: check-write > 0 when writable, write + blocking-flush, read, echo.
    wait_ready(
        "streams: client output writable",
        &cout.subscribe(),
        WAIT_MS,
    );
    let room = expect_ok("streams: check-write", cout.check_write());
    check("streams: check-write > 0 when writable", room > 0, || {
        format!("{room}")
    });
    let n = (room as usize).min(4);
    expect_ok(
        "streams: write within the permit",
        cout.write(&b"ping"[..n]),
    );
    expect_ok("streams: blocking-flush", cout.blocking_flush());
    write_all("streams: write the rest", &cout, &b"ping"[n..]);
    check_eq(
        "streams: server reads what the client wrote",
        read_exact("server read", &ain, 4),
        b"ping".to_vec(),
    );
    write_all("server echo", &aout, b"ping");
    check_eq(
        "streams: client reads the echo",
        read_exact("client read", &cin, 4),
        b"ping".to_vec(),
    );
    // A larger transfer in both directions.
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    write_all("streams: client writes 100000 bytes", &cout, &big);
    check(
        "streams: server reads 100000 bytes intact",
        read_exact("server big read", &ain, big.len()) == big,
        || "data differs".into(),
    );
    drop((cp, lp, cin, cout, ain, aout, a, c, l));
}

/// finish-connect to a closed loopback port is `connection-refused`; "After a failed
/// connection attempt, the socket will be in the `closed` state and the only valid
/// action left is to `drop` the socket." — every call is then `invalid-state`
/// ("TCP socket methods may always return `error(invalid-state)` when in the `closed`
/// state"), and subscribe is ready at once.
fn connect_refused_closes_socket(net: &Network) {
    // A port that was just free: bind, read the port, drop without listening.
    let port = {
        let t = new_tcp("refused: create probe", Family::Ipv4);
        expect_ok(
            "refused: bind probe",
            tcp_bind("bind probe", &t, net, lo4(0)),
        );
        port_of(&local_addr_tcp("refused: probe address", &t))
    };
    let s = new_tcp("refused: create", Family::Ipv4);
    let p = s.subscribe();
    let r = match s.start_connect(net, lo4(port)) {
        Ok(()) => raw::finish_wait("finish-connect", &p, || s.finish_connect()),
        Err(e) => Err(e),
    };
    expect_err("finish-connect: closed port", r, E::ConnectionRefused);

    expect_err(
        "closed: start-bind",
        s.start_bind(net, lo4(0)),
        E::InvalidState,
    );
    expect_err(
        "closed: start-connect",
        s.start_connect(net, lo4(port)),
        E::InvalidState,
    );
    expect_err("closed: start-listen", s.start_listen(), E::InvalidState);
    expect_err("closed: accept", s.accept(), E::InvalidState);
    expect_err("closed: local-address", s.local_address(), E::InvalidState);
    expect_err(
        "closed: remote-address",
        s.remote_address(),
        E::InvalidState,
    );
    for how in ALL_SHUTDOWNS {
        expect_err(
            &format!("closed: shutdown({how:?})"),
            s.shutdown(how),
            E::InvalidState,
        );
    }
    expect_err(
        "closed: set-listen-backlog-size",
        s.set_listen_backlog_size(8),
        E::InvalidState,
    );
    // No operation is under way: a finish-* is `not-in-progress`.
    expect_err(
        "closed: finish-connect",
        s.finish_connect(),
        E::NotInProgress,
    );
    expect_err("closed: finish-bind", s.finish_bind(), E::NotInProgress);
    check_eq("closed: is-listening", s.is_listening(), false);
    check("closed: subscribe is ready", p.ready(), || {
        "pollable of a closed socket is not ready".into()
    });
    check(
        "closed: a new subscribe is ready",
        s.subscribe().ready(),
        || "new pollable of a closed socket is not ready".into(),
    );
}

/// shutdown(receive): "The `input-stream` associated with this socket will be closed."
/// Idempotent ("shutting down a direction more than once has no effect and returns
/// `ok`"), and it "does not close (drop) the socket": sending still works.
fn shutdown_receive(net: &Network) {
    let t = tcp_pair("shutdown(receive): pair", net, Family::Ipv4);
    expect_ok(
        "shutdown(receive)",
        t.client.shutdown(ShutdownType::Receive),
    );
    expect_ok(
        "shutdown(receive) twice",
        t.client.shutdown(ShutdownType::Receive),
    );
    match t.client_in.read(16) {
        Err(StreamError::Closed) => pass(),
        other => fail(
            "shutdown(receive): input stream reports closed",
            format!("read returned {}", describe_read(&other)),
        ),
    }
    // The send direction is unaffected.
    write_all(
        "shutdown(receive): client still writes",
        &t.client_out,
        b"still",
    );
    check_eq(
        "shutdown(receive): peer still receives",
        read_exact("peer read", &t.server_in, 5),
        b"still".to_vec(),
    );
    check_eq(
        "shutdown(receive): remote-address still available",
        t.client.remote_address().is_ok(),
        true,
    );
}

/// shutdown(send): "The `output-stream` associated with this socket will be closed and a
/// FIN packet will be sent." — the peer reads end-of-stream; receiving still works.
fn shutdown_send(net: &Network) {
    let t = tcp_pair("shutdown(send): pair", net, Family::Ipv4);
    write_all("shutdown(send): write before", &t.client_out, b"last");
    expect_ok("shutdown(send)", t.client.shutdown(ShutdownType::Send));
    expect_ok(
        "shutdown(send) twice",
        t.client.shutdown(ShutdownType::Send),
    );
    check_eq(
        "shutdown(send): peer reads the data then end-of-stream",
        read_to_closed("peer read to end", &t.server_in, 64),
        b"last".to_vec(),
    );
    match t.client_out.check_write() {
        Err(StreamError::Closed) => pass(),
        Ok(n) => fail(
            "shutdown(send): output stream reports closed",
            format!("check-write returned Ok({n})"),
        ),
        Err(e) => fail(
            "shutdown(send): output stream reports closed",
            format!("check-write returned {}", raw::describe(&e)),
        ),
    }
    // The receive direction is unaffected.
    write_all("shutdown(send): peer still writes", &t.server_out, b"back");
    check_eq(
        "shutdown(send): client still receives",
        read_exact("client read", &t.client_in, 4),
        b"back".to_vec(),
    );
}

/// shutdown(both): both streams closed, the peer reads end-of-stream; shutdown is valid
/// on the accepted (server) side as well and idempotent across directions.
fn shutdown_both(net: &Network) {
    let t = tcp_pair("shutdown(both): pair", net, Family::Ipv4);
    expect_ok("shutdown(both)", t.server.shutdown(ShutdownType::Both));
    expect_ok(
        "shutdown(both) twice",
        t.server.shutdown(ShutdownType::Both),
    );
    expect_ok(
        "shutdown(send) after both",
        t.server.shutdown(ShutdownType::Send),
    );
    check_eq(
        "shutdown(both): peer reads end-of-stream",
        read_to_closed("client read to end", &t.client_in, 0),
        Vec::new(),
    );
    match t.server_in.read(16) {
        Err(StreamError::Closed) => pass(),
        other => fail(
            "shutdown(both): input stream reports closed",
            format!("read returned {}", describe_read(&other)),
        ),
    }
    match t.server_out.check_write() {
        Err(StreamError::Closed) => pass(),
        Ok(n) => fail(
            "shutdown(both): output stream reports closed",
            format!("check-write returned Ok({n})"),
        ),
        Err(e) => fail(
            "shutdown(both): output stream reports closed",
            format!("check-write returned {}", raw::describe(&e)),
        ),
    }
}

/// "Theoretically, `subscribe` only has to be called once per socket and can then be
/// (re)used for the remainder of the socket's lifetime." One pollable follows a socket
/// through unbound → bound → listening (not ready, then ready when a connection is
/// pending) and a client's through unbound → connect-in-progress → connected.
fn subscribe_one_pollable_for_life(net: &Network) {
    let l = new_tcp("subscribe: create listener", Family::Ipv4);
    let lp = l.subscribe();
    check("subscribe: ready when unbound", lp.ready(), || {
        "not ready".into()
    });
    expect_ok("subscribe: bind", tcp_bind("bind", &l, net, lo4(0)));
    check("subscribe: ready when bound", lp.ready(), || {
        "not ready".into()
    });
    expect_ok("subscribe: start-listen", l.start_listen());
    expect_ok(
        "subscribe: finish-listen",
        raw::finish_wait("finish-listen", &lp, || l.finish_listen()),
    );
    check(
        "subscribe: listening pollable not ready before a connection",
        !ready_within(&lp, 50),
        || "ready with nothing pending".into(),
    );

    let c = new_tcp("subscribe: create client", Family::Ipv4);
    let cp = c.subscribe();
    check("subscribe: client ready when unbound", cp.ready(), || {
        "not ready".into()
    });
    expect_ok(
        "subscribe: client start-connect",
        c.start_connect(net, local_addr_tcp("listener address", &l)),
    );
    wait_ready("subscribe: connect resolves", &cp, WAIT_MS);
    let streams = expect_ok(
        "subscribe: finish-connect after ready",
        raw::finish_wait("finish-connect", &cp, || c.finish_connect()),
    );
    check("subscribe: client ready when connected", cp.ready(), || {
        "not ready".into()
    });
    wait_ready(
        "subscribe: listener ready with a pending connection",
        &lp,
        WAIT_MS,
    );
    let accepted = expect_ok("subscribe: accept", l.accept());
    let (accepted, accepted_in, accepted_out) = accepted;
    drop((accepted_in, accepted_out, accepted, streams));
}

/// The same client/server exchange over IPv6 loopback ([::1]).
fn ipv6_path(net: &Network) {
    let t = tcp_pair("ipv6: pair", net, Family::Ipv6);
    let laddr = local_addr_tcp("ipv6: listener address", &t.listener);
    check(
        "ipv6: listener bound to ::1",
        laddr == lo6(port_of(&laddr)),
        || format!("{laddr:?}"),
    );
    check_eq(
        "ipv6: listener address-family",
        t.listener.address_family(),
        Family::Ipv6,
    );
    check_eq(
        "ipv6: accepted address-family",
        t.server.address_family(),
        Family::Ipv6,
    );
    check_eq(
        "ipv6: client remote-address is the listener",
        t.client.remote_address(),
        Ok(laddr),
    );
    check_eq(
        "ipv6: accepted remote-address is the client",
        t.server.remote_address(),
        t.client.local_address(),
    );
    write_all("ipv6: client write", &t.client_out, b"hello v6");
    let got = read_exact("ipv6: server read", &t.server_in, 8);
    check_eq(
        "ipv6: server reads the data",
        got.clone(),
        b"hello v6".to_vec(),
    );
    write_all("ipv6: server echo", &t.server_out, &got);
    check_eq(
        "ipv6: client reads the echo",
        read_exact("ipv6: client read", &t.client_in, 8),
        b"hello v6".to_vec(),
    );
}

/// Dropping a socket while its streams and a pollable are alive must not trap; the
/// streams keep working (data arrives). The WIT would also let them report closed;
/// wasock keeps the connection until the last of the socket and its streams is dropped.
fn drop_socket_before_streams(net: &Network) {
    let t = tcp_pair("drop socket first: pair", net, Family::Ipv4);
    write_all("drop socket first: peer writes", &t.server_out, b"bye");
    let TcpPair {
        listener,
        client,
        client_in,
        client_out,
        server,
        server_in,
        server_out,
    } = t;
    let p = client.subscribe();
    drop(client);
    pass(); // dropping did not trap
    let _ = p.ready();
    pass(); // using the orphaned pollable did not trap
    check_eq(
        "drop socket first: input stream still delivers data",
        read_exact("drop socket first: read", &client_in, 3),
        b"bye".to_vec(),
    );
    if let Ok(room) = client_out.check_write()
        && room > 0
    {
        let _ = client_out.write(b"x");
    }
    pass(); // writing to the orphaned output stream did not trap
    drop((p, client_in, client_out));
    // The listener goes before the connection it accepted.
    drop(listener);
    drop(server);
    drop((server_in, server_out));
    pass();
}

/// Dropping the streams and then the socket must not trap, and closes the connection:
/// the peer reads end-of-stream.
fn drop_streams_before_socket(net: &Network) {
    let t = tcp_pair("drop streams first: pair", net, Family::Ipv4);
    let TcpPair {
        listener,
        client,
        client_in,
        client_out,
        server,
        server_in,
        server_out,
    } = t;
    drop(client_in);
    drop(client_out);
    drop(client);
    pass(); // no trap
    check_eq(
        "drop streams first: peer reads end-of-stream",
        read_to_closed("peer read to end", &server_in, 0),
        Vec::new(),
    );
    drop((server_in, server_out, server, listener));
}

fn describe_read(r: &Result<Vec<u8>, StreamError>) -> String {
    match r {
        Ok(d) => format!("Ok({} bytes)", d.len()),
        Err(e) => format!("Err({})", raw::describe(e)),
    }
}

/// A stream's result as comparable text: `Ok(n bytes)` or the error (`closed`, …).
fn read_result(r: Result<Vec<u8>, StreamError>) -> Result<usize, String> {
    r.map(|d| d.len()).map_err(|e| raw::describe(&e))
}

/// `read(0)` reports the stream's state: empty while open, `closed` once the peer's
/// end-of-stream was seen or after `shutdown(receive)` (wasi:io: "a read of 0 bytes
/// [...] returns `closed` if the stream is closed"), like `read(n)`.
fn zero_length_read_reports_closed(net: &Network) {
    let t = tcp_pair("read(0): pair", net, Family::Ipv4);
    check_eq(
        "read(0): open stream, nothing pending",
        read_result(t.client_in.read(0)),
        Ok(0),
    );
    write_all("read(0): peer writes", &t.server_out, b"tail");
    expect_ok(
        "read(0): peer shutdown(send)",
        t.server.shutdown(ShutdownType::Send),
    );
    check_eq(
        "read(0): bytes before the end",
        read_to_closed("read(0): read to end", &t.client_in, 16),
        b"tail".to_vec(),
    );
    check_eq(
        "read(0): after the peer's end-of-stream",
        read_result(t.client_in.read(0)),
        Err("closed".into()),
    );
    check_eq(
        "read(16): after the peer's end-of-stream",
        read_result(t.client_in.read(16)),
        Err("closed".into()),
    );
    check(
        "read(0): pollable ready after end-of-stream",
        t.client_in.subscribe().ready(),
        || "not ready".into(),
    );

    let u = tcp_pair("read(0): second pair", net, Family::Ipv4);
    expect_ok(
        "read(0): shutdown(receive)",
        u.client.shutdown(ShutdownType::Receive),
    );
    check_eq(
        "read(0): after shutdown(receive)",
        read_result(u.client_in.read(0)),
        Err("closed".into()),
    );
    check_eq(
        "read(0): the peer's side still open",
        read_result(u.server_in.read(0)),
        Ok(0),
    );
}

/// Buffer sizes round-trip: "The value may be clamped or rounded" — so a size the kernel
/// accepts reads back as set (Linux's internal doubling is not the guest's), a clamped one
/// reads back as the clamp (setting the clamp again reads back the same), and an accepted
/// socket reports what its listener was set to ("inherited from the listener").
fn buffer_sizes_round_trip(net: &Network) {
    for family in [Family::Ipv4, Family::Ipv6] {
        let c = |what: &str| format!("buffers({family:?}): {what}");
        let s = new_tcp(&c("create"), family);
        for size in [16 * 1024, 65_536, 100_000] {
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
        for size in [1, u64::MAX] {
            expect_ok(
                &c(&format!("set-receive-buffer-size({size})")),
                s.set_receive_buffer_size(size),
            );
            let clamp = expect_ok(&c("receive-buffer-size clamped"), s.receive_buffer_size());
            check(&c("clamped receive-buffer-size > 0"), clamp > 0, || {
                format!("{clamp}")
            });
            expect_ok(
                &c("set-receive-buffer-size(clamp)"),
                s.set_receive_buffer_size(clamp),
            );
            check_eq(
                &c("the clamp reads back as itself"),
                s.receive_buffer_size(),
                Ok(clamp),
            );
        }
    }

    let l = new_tcp("buffers: listener", Family::Ipv4);
    expect_ok(
        "buffers: listener receive-buffer-size(24 KiB)",
        l.set_receive_buffer_size(24 * 1024),
    );
    expect_ok(
        "buffers: listener send-buffer-size(40 KiB)",
        l.set_send_buffer_size(40 * 1024),
    );
    expect_ok("buffers: listener bind", tcp_bind("bind", &l, net, lo4(0)));
    expect_ok("buffers: listen", tcp_listen("listen", &l));
    check_eq(
        "buffers: listening receive-buffer-size",
        l.receive_buffer_size(),
        Ok(24 * 1024),
    );
    let client = new_tcp("buffers: client", Family::Ipv4);
    let streams = expect_ok(
        "buffers: connect",
        tcp_connect(
            "connect",
            &client,
            net,
            local_addr_tcp("buffers: listener address", &l),
        ),
    );
    let (a, ..) = expect_ok("buffers: accept", raw::tcp_accept("accept", &l));
    check_eq(
        "buffers: accepted receive-buffer-size inherited",
        a.receive_buffer_size(),
        Ok(24 * 1024),
    );
    check_eq(
        "buffers: accepted send-buffer-size inherited",
        a.send_buffer_size(),
        Ok(40 * 1024),
    );
    drop(streams);
}

/// "These properties can be configured while `keep-alive-enabled` is false, but only come
/// into effect when `keep-alive-enabled` is true": setting them changes neither state.
fn keep_alive_parameters_leave_enabled_alone() {
    for family in [Family::Ipv4, Family::Ipv6] {
        let c = |what: &str| format!("keep-alive({family:?}): {what}");
        for enabled in [false, true] {
            let s = new_tcp(&c("create"), family);
            expect_ok(
                &c(&format!("set-keep-alive-enabled({enabled})")),
                s.set_keep_alive_enabled(enabled),
            );
            expect_ok(
                &c("set-keep-alive-idle-time(20s)"),
                s.set_keep_alive_idle_time(20_000_000_000),
            );
            check_eq(
                &c(&format!("still {enabled} after idle time")),
                s.keep_alive_enabled(),
                Ok(enabled),
            );
            expect_ok(
                &c("set-keep-alive-interval(3s)"),
                s.set_keep_alive_interval(3_000_000_000),
            );
            check_eq(
                &c(&format!("still {enabled} after interval")),
                s.keep_alive_enabled(),
                Ok(enabled),
            );
            expect_ok(&c("set-keep-alive-count(6)"), s.set_keep_alive_count(6));
            check_eq(
                &c(&format!("still {enabled} after count")),
                s.keep_alive_enabled(),
                Ok(enabled),
            );
            check_eq(
                &c("idle time reads back"),
                s.keep_alive_idle_time(),
                Ok(20_000_000_000),
            );
            check_eq(
                &c("interval reads back"),
                s.keep_alive_interval(),
                Ok(3_000_000_000),
            );
            check_eq(&c("count reads back"), s.keep_alive_count(), Ok(6));
        }
    }
}

/// When the pollable is made relative to `start-connect`.
#[derive(Clone, Copy, Debug)]
enum Subscribed {
    BeforeStart,
    AfterStart,
    AfterWouldBlock,
}

/// "One pollable may serve the socket's whole life": a pollable made before
/// `start-connect`, between it and `finish-connect`, or after a `would-block` finish
/// follows the connect to its end, refused or accepted, and waiting on it first never
/// hides the outcome from `finish-connect`.
fn pollable_follows_connect(net: &Network) {
    let closed_port = {
        let t = new_tcp("follows: probe", Family::Ipv4);
        expect_ok("follows: bind probe", tcp_bind("bind", &t, net, lo4(0)));
        port_of(&local_addr_tcp("follows: probe address", &t))
    };
    let l = tcp_listener("follows: listener", net, Family::Ipv4);
    let open = local_addr_tcp("follows: listener address", &l);
    for when in [
        Subscribed::BeforeStart,
        Subscribed::AfterStart,
        Subscribed::AfterWouldBlock,
    ] {
        for (target, want, outcome) in [
            (lo4(closed_port), Err(E::ConnectionRefused), "refused"),
            (open, Ok(()), "accepted"),
        ] {
            let c = |what: &str| format!("follows({when:?}, {outcome}): {what}");
            let s = new_tcp(&c("create"), Family::Ipv4);
            let early = matches!(when, Subscribed::BeforeStart).then(|| s.subscribe());
            expect_ok(&c("start-connect"), s.start_connect(net, target));
            let mut result = None;
            let p = match (when, early) {
                (_, Some(p)) => p,
                (Subscribed::AfterWouldBlock, None) => {
                    match s.finish_connect() {
                        Err(E::WouldBlock) => {}
                        done => result = Some(done.map(drop)),
                    }
                    s.subscribe()
                }
                (_, None) => s.subscribe(),
            };
            wait_ready(&c("pollable fires"), &p, WAIT_MS);
            let got = result.unwrap_or_else(|| s.finish_connect().map(drop));
            check_eq(&c("finish-connect after waiting"), got, want);
            if want.is_ok() {
                let (a, ain, aout) = expect_ok(&c("accept"), raw::tcp_accept("accept", &l));
                drop((ain, aout, a));
            }
        }
    }
}

/// `shutdown(send)`: "a FIN packet will be sent" after the bytes the output stream already
/// accepted (POSIX `SHUT_WR` sends queued data first): a write larger than the kernel takes
/// at once, then an immediate shutdown, loses nothing. The output stream is closed at once:
/// `check-write`, `write` and `flush` report `closed`.
fn shutdown_send_delivers_accepted_bytes(net: &Network) {
    for family in [Family::Ipv4, Family::Ipv6] {
        let c = |what: &str| format!("shutdown(send) keeps data({family:?}): {what}");
        let t = tcp_pair(&c("pair"), net, family);
        expect_ok(&c("small send buffer"), t.client.set_send_buffer_size(1024));
        let permit = expect_ok(&c("check-write"), t.client_out.check_write());
        check(
            &c("check-write grants a full buffer"),
            permit >= 4096,
            || format!("{permit}"),
        );
        let data: Vec<u8> = (0..permit).map(|i| (i % 251) as u8).collect();
        expect_ok(&c("write the whole grant"), t.client_out.write(&data));
        expect_ok(
            &c("shutdown(send) at once"),
            t.client.shutdown(ShutdownType::Send),
        );
        check_eq(
            &c("check-write after shutdown(send)"),
            t.client_out.check_write().map_err(|e| raw::describe(&e)),
            Err("closed".into()),
        );
        check_eq(
            &c("write after shutdown(send)"),
            t.client_out.write(&[]).map_err(|e| raw::describe(&e)),
            Err("closed".into()),
        );
        check_eq(
            &c("flush after shutdown(send)"),
            t.client_out.flush().map_err(|e| raw::describe(&e)),
            Err("closed".into()),
        );
        let got = read_to_closed(&c("peer reads to the end"), &t.server_in, data.len());
        check_eq(&c("peer got every byte"), got.len(), data.len());
        check(&c("peer got them in order"), got == data, || {
            "the bytes differ".into()
        });
    }
}

/// Stream states around the end of stream: `read(0)` on a fresh accepted stream whose peer
/// already sent data and its FIN is empty (nothing was read yet); `shutdown(receive)` with
/// unread data closes the input stream all the same ("The `input-stream` associated with
/// this socket will be closed").
fn end_of_stream_edges(net: &Network) {
    let t = tcp_pair("edges: pair", net, Family::Ipv4);
    write_all("edges: client writes", &t.client_out, b"early");
    expect_ok(
        "edges: client shutdown(send)",
        t.client.shutdown(ShutdownType::Send),
    );
    wait_ready("edges: data arrives", &t.server_in.subscribe(), WAIT_MS);
    check_eq(
        "edges: read(0) before anything was read",
        read_result(t.server_in.read(0)),
        Ok(0),
    );
    check_eq(
        "edges: the data, then closed",
        read_to_closed("edges: read to end", &t.server_in, 16),
        b"early".to_vec(),
    );

    let u = tcp_pair("edges: second pair", net, Family::Ipv4);
    write_all("edges: peer writes", &u.server_out, b"unread");
    wait_ready(
        "edges: unread data arrives",
        &u.client_in.subscribe(),
        WAIT_MS,
    );
    expect_ok(
        "edges: shutdown(receive) with unread data",
        u.client.shutdown(ShutdownType::Receive),
    );
    check_eq(
        "edges: read(16) after shutdown(receive)",
        read_result(u.client_in.read(16)),
        Err("closed".into()),
    );
    check_eq(
        "edges: read(0) after shutdown(receive)",
        read_result(u.client_in.read(0)),
        Err("closed".into()),
    );
}

/// Binds on the unspecified address keep it ("local-address" is the bound address: TCP
/// has no route to narrow it by), on port 0 and on a given port; the unspecified address's
/// port in use is `address-in-use`; an address no interface has is `address-not-bindable`
/// ("The address is not bindable"); a port whose last connection is still closing binds
/// again ("behave as if SO_REUSEADDR were set", the WIT's implementors note).
fn bind_unspecified_and_reuse(net: &Network) {
    for family in [Family::Ipv4, Family::Ipv6] {
        let c = |what: &str| format!("bind any({family:?}): {what}");
        let any = |port| match family {
            Family::Ipv4 => v4((0, 0, 0, 0), port),
            Family::Ipv6 => v6((0, 0, 0, 0, 0, 0, 0, 0), port),
        };
        let a = new_tcp(&c("create"), family);
        expect_ok(&c("bind port 0"), tcp_bind("bind", &a, net, any(0)));
        let port = port_of(&local_addr_tcp(&c("address"), &a));
        check_eq(
            &c("keeps the unspecified address"),
            a.local_address(),
            Ok(any(port)),
        );
        expect_ok(&c("listen"), tcp_listen("listen", &a));
        let b = new_tcp(&c("create second"), family);
        expect_err(
            &c("the same port again"),
            tcp_bind("bind", &b, net, any(port)),
            E::AddressInUse,
        );
        drop(a);
        expect_ok(
            &c("a given port, freed"),
            tcp_bind("bind", &b, net, any(port)),
        );
        check_eq(&c("reads back"), b.local_address(), Ok(any(port)));

        let foreign = match family {
            Family::Ipv4 => v4((192, 0, 2, 1), 0),
            Family::Ipv6 => v6((0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 0),
        };
        let d = new_tcp(&c("create third"), family);
        expect_err(
            &c("an address no interface has"),
            tcp_bind("bind", &d, net, foreign),
            E::AddressNotBindable,
        );
        if family == Family::Ipv6 {
            let nowhere = IpSocketAddress::Ipv6(raw::Ipv6SocketAddress {
                port: 0,
                flow_info: 0,
                address: (0xfe80, 0, 0, 0, 0, 0, 0, 1),
                scope_id: 999_999,
            });
            expect_err(
                &c("a link-local address on an interface that does not exist"),
                tcp_bind("bind", &d, net, nowhere),
                E::AddressNotBindable,
            );
        }

        let t = tcp_pair(&c("pair"), net, family);
        let client_port = port_of(&local_addr_tcp(&c("client address"), &t.client));
        drop(t);
        let e = new_tcp(&c("create fourth"), family);
        check_eq(
            &c("the port of a connection still closing"),
            tcp_bind("bind", &e, net, lo(family, client_port)),
            Ok(()),
        );
    }
}

/// Options can be set in every live state, not only before bind: bound, listening and
/// connected sockets take them and read them back.
fn options_in_every_state(net: &Network) {
    let bound = new_tcp("options: bound", Family::Ipv4);
    expect_ok("options: bind", tcp_bind("bind", &bound, net, lo4(0)));
    let listening = tcp_listener("options: listening", net, Family::Ipv4);
    let t = tcp_pair("options: pair", net, Family::Ipv4);
    for (state, s) in [
        ("bound", &bound),
        ("listening", &listening),
        ("connected", &t.client),
    ] {
        let c = |what: &str| format!("options({state}): {what}");
        expect_ok(&c("set-hop-limit(33)"), s.set_hop_limit(33));
        check_eq(&c("hop-limit"), s.hop_limit(), Ok(33));
        expect_ok(&c("set-keep-alive-enabled"), s.set_keep_alive_enabled(true));
        check_eq(&c("keep-alive-enabled"), s.keep_alive_enabled(), Ok(true));
        expect_ok(&c("set-keep-alive-count(5)"), s.set_keep_alive_count(5));
        check_eq(&c("keep-alive-count"), s.keep_alive_count(), Ok(5));
        expect_ok(
            &c("set-receive-buffer-size"),
            s.set_receive_buffer_size(20_000),
        );
        check_eq(
            &c("receive-buffer-size"),
            s.receive_buffer_size(),
            Ok(20_000),
        );
    }
}

/// `blocking-read` "blocks until at least one byte can be read": data written before it (or
/// arriving while it waits) comes back, then the end of stream as `closed`.
fn blocking_read_returns_data_then_closed(net: &Network) {
    let t = tcp_pair("blocking-read: pair", net, Family::Ipv4);
    write_all("blocking-read: peer writes", &t.server_out, b"ping");
    let mut got = Vec::new();
    for _ in 0..4 {
        match t.client_in.blocking_read(64) {
            Ok(chunk) => got.extend(chunk),
            Err(e) => fail("blocking-read: the data", raw::describe(&e)),
        }
        if got.len() >= 4 {
            break;
        }
    }
    check_eq("blocking-read: the data", got, b"ping".to_vec());
    expect_ok(
        "blocking-read: peer shutdown(send)",
        t.server.shutdown(ShutdownType::Send),
    );
    check_eq(
        "blocking-read: then closed",
        read_result(t.client_in.blocking_read(64)),
        Err("closed".into()),
    );
}
