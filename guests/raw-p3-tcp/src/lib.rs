//! raw-p3-tcp: drives every `tcp-socket` function of `wasi:sockets/types@0.3.0` in every state
//! the WIT distinguishes (unbound, bound, listening, connected, closed after a failed connect)
//! and asserts the exact result or error code its doc comments require
//! (guests/wit/0.3.0/sockets.wit). Where the WIT allows more than one answer the check says
//! so. Loopback only; every wait is bounded by a timeout. The toolchain and the entry point
//! (`wasi:cli/run@0.3.0`, a cdylib) are explained in guests/raw-p3/src/lib.rs.

use guest_support::{check, check_eq, expect_err, expect_err_in, expect_ok, fail, finish, start};
use raw_p3::{
    ErrorCode as E, IpAddressFamily as Family, IpSocketAddress, StreamResult, TcpSocket, WAIT_MS,
    accept, byte_stream, family_of, is_loopback, listener, lo, lo_other, local_addr, new_tcp, pair,
    poll_once, port_of, read_exact, read_once, read_to_end, send_all, timeout, unspecified, v4, v6,
    within, write_all,
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
    start("raw-p3-tcp");
    for family in FAMILIES {
        create(family);
        unbound_state(family).await;
        option_setters(family);
        bind_argument_errors(family);
        bind_in_use_and_not_bindable(family);
        bound_state(family).await;
        listening_state(family).await;
        connect_argument_errors(family).await;
        connect_accept_and_inherit(family).await;
        connected_state(family).await;
        data_round_trip(family).await;
        receive_and_send_once(family).await;
        concurrent_connect(family).await;
        connecting_state(family).await;
        connect_refused_closes_socket(family).await;
        streams_outlive_socket(family).await;
        accepted_outlive_listener(family).await;
        listen_stream_outlives_socket(family).await;
        reset_by_peer(family).await;
    }
    finish();
}

const FAMILIES: [Family; 2] = [Family::Ipv4, Family::Ipv6];

/// A check name with the family in front: `v4: what`.
fn name(family: Family, what: &str) -> String {
    let f = match family {
        Family::Ipv4 => "v4",
        Family::Ipv6 => "v6",
    };
    format!("{f}: {what}")
}

/// `receive` on `s` must give a stream that ends at once and a future resolved to
/// `err(want)`.
async fn expect_receive_err(check: &str, s: &TcpSocket, want: E) {
    let (mut rx, result) = s.receive();
    let (end, data) = read_once::<u8>(check, &mut rx, 16).await;
    check_eq(
        &format!("{check}: stream"),
        (end, data.len()),
        (StreamResult::Dropped, 0),
    );
    expect_err(
        &format!("{check}: future"),
        within(check, result).await,
        want,
    );
}

/// `send` on `s` must give a future resolved to `err(want)`.
async fn expect_send_err(check: &str, s: &TcpSocket, want: E) {
    let (tx, rx) = byte_stream();
    let result = s.send(rx);
    drop(tx);
    expect_err(check, within(check, result).await, want);
}

/// "Create a new TCP socket." — both families; `get-address-family` is "the value passed to
/// the constructor"; a new socket is not listening.
fn create(family: Family) {
    let s = expect_ok(&name(family, "create"), TcpSocket::create(family));
    check_eq(
        &name(family, "new socket: get-address-family"),
        s.get_address_family(),
        family,
    );
    check_eq(
        &name(family, "new socket: get-is-listening"),
        s.get_is_listening(),
        false,
    );
}

/// `unbound`: no addresses ("WASI is stricter and requires `get-local-address` to return
/// `invalid-state` when the socket hasn't been bound yet"), no data ("`invalid-state`: The
/// socket is not in the `connected` state"), a backlog size may be set; none of it changes
/// the state, so a bind still works afterwards.
async fn unbound_state(family: Family) {
    let c = |what: &str| name(family, &format!("unbound: {what}"));
    let s = new_tcp(&c("create"), family);
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
    check_eq(&c("get-is-listening"), s.get_is_listening(), false);
    // "If the provided value is 0, an `invalid-argument` error is returned."
    expect_err(
        &c("set-listen-backlog-size(0)"),
        s.set_listen_backlog_size(0),
        E::InvalidArgument,
    );
    expect_ok(
        &c("set-listen-backlog-size(16)"),
        s.set_listen_backlog_size(16),
    );
    expect_receive_err(&c("receive"), &s, E::InvalidState).await;
    expect_send_err(&c("send"), &s, E::InvalidState).await;
    expect_ok(&c("bind after the failed calls"), s.bind(lo(family, 0)));
}

/// Option setters on an unbound socket: 0 is `invalid-argument` ("If the provided value is 0,
/// an `invalid-argument` error is returned"); other values are accepted, and read back exactly
/// where the WIT allows no clamping (keep-alive-enabled, hop-limit), else as some non-zero
/// value ("may be clamped or rounded").
fn option_setters(family: Family) {
    let c = |what: &str| name(family, &format!("options: {what}"));
    let s = new_tcp(&c("create"), family);

    expect_ok(
        &c("set-keep-alive-enabled(true)"),
        s.set_keep_alive_enabled(true),
    );
    check_eq(
        &c("get-keep-alive-enabled after true"),
        s.get_keep_alive_enabled(),
        Ok(true),
    );
    expect_ok(
        &c("set-keep-alive-enabled(false)"),
        s.set_keep_alive_enabled(false),
    );
    check_eq(
        &c("get-keep-alive-enabled after false"),
        s.get_keep_alive_enabled(),
        Ok(false),
    );

    expect_err(
        &c("set-keep-alive-idle-time(0)"),
        s.set_keep_alive_idle_time(0),
        E::InvalidArgument,
    );
    expect_ok(
        &c("set-keep-alive-idle-time(30 s)"),
        s.set_keep_alive_idle_time(30_000_000_000),
    );
    let idle = expect_ok(&c("get-keep-alive-idle-time"), s.get_keep_alive_idle_time());
    check(&c("keep-alive-idle-time > 0"), idle > 0, || {
        format!("{idle}")
    });

    expect_err(
        &c("set-keep-alive-interval(0)"),
        s.set_keep_alive_interval(0),
        E::InvalidArgument,
    );
    expect_ok(
        &c("set-keep-alive-interval(5 s)"),
        s.set_keep_alive_interval(5_000_000_000),
    );
    let intvl = expect_ok(&c("get-keep-alive-interval"), s.get_keep_alive_interval());
    check(&c("keep-alive-interval > 0"), intvl > 0, || {
        format!("{intvl}")
    });

    expect_err(
        &c("set-keep-alive-count(0)"),
        s.set_keep_alive_count(0),
        E::InvalidArgument,
    );
    expect_ok(&c("set-keep-alive-count(4)"), s.set_keep_alive_count(4));
    let count = expect_ok(&c("get-keep-alive-count"), s.get_keep_alive_count());
    check(&c("keep-alive-count > 0"), count > 0, || format!("{count}"));

    // "These properties can be configured while `keep-alive-enabled` is false, but only come
    // into effect when `keep-alive-enabled` is true": setting them did not switch it on.
    check_eq(
        &c("keep-alive-enabled still false after the parameters"),
        s.get_keep_alive_enabled(),
        Ok(false),
    );

    // "`invalid-argument`: (set) The TTL value must be 1 or higher."
    expect_err(
        &c("set-hop-limit(0)"),
        s.set_hop_limit(0),
        E::InvalidArgument,
    );
    expect_ok(&c("set-hop-limit(42)"), s.set_hop_limit(42));
    check_eq(&c("get-hop-limit after 42"), s.get_hop_limit(), Ok(42));

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
}

/// `bind`'s argument errors, each `invalid-argument`: "The `local-address` has the wrong
/// address family", "`local-address` is not a unicast address", "`local-address` is an
/// IPv4-mapped IPv6 address". "Bind can be attempted multiple times on the same socket ... as
/// long as the previous bind failed"; once it succeeded, "`invalid-state`: The socket is
/// already bound".
fn bind_argument_errors(family: Family) {
    let c = |what: &str| name(family, &format!("bind: {what}"));
    let s = new_tcp(&c("create"), family);
    let mut bad: Vec<(&str, IpSocketAddress)> = vec![("wrong family", lo_other(family, 0))];
    match family {
        Family::Ipv4 => {
            bad.push(("multicast 224.0.0.1", v4((224, 0, 0, 1), 0)));
            bad.push(("broadcast 255.255.255.255", v4((255, 255, 255, 255), 0)));
        }
        Family::Ipv6 => {
            bad.push(("multicast ff02::1", v6((0xff02, 0, 0, 0, 0, 0, 0, 1), 0)));
            bad.push((
                "IPv4-mapped ::ffff:127.0.0.1",
                v6((0, 0, 0, 0, 0, 0xffff, 0x7f00, 0x0001), 0),
            ));
        }
    }
    for (what, addr) in bad {
        expect_err(&c(what), s.bind(addr), E::InvalidArgument);
    }
    expect_err(
        &c("get-local-address after failed binds"),
        s.get_local_address(),
        E::InvalidState,
    );
    expect_ok(&c("retry after failed binds"), s.bind(lo(family, 0)));
    let got = local_addr(&c("local address"), &s);
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
}

/// "`address-in-use`: Address is already in use" (the port of a listening socket) and
/// "`address-not-bindable`: `local-address` is not an address that can be bound to" (a
/// documentation address on no local interface; bind sends nothing); both failed binds may
/// be retried.
fn bind_in_use_and_not_bindable(family: Family) {
    let c = |what: &str| name(family, &format!("bind: {what}"));
    let (l, _accepts) = listener(&c("listener"), family);
    let port = port_of(&local_addr(&c("listener address"), &l));
    let s = new_tcp(&c("create"), family);
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
        &c("the port of a listening socket"),
        s.bind(lo(family, port)),
        E::AddressInUse,
    );
    expect_ok(
        &c("retry on port 0 after address-in-use"),
        s.bind(lo(family, 0)),
    );
    let got = port_of(&local_addr(&c("retried address"), &s));
    check(
        &c("retried bind got another port"),
        got != 0 && got != port,
        || format!("{got} (listener {port})"),
    );
}

/// `bound`: the local address is set, the remote one is not; no data; the backlog size may
/// be set; `listen` keeps the bound address.
async fn bound_state(family: Family) {
    let c = |what: &str| name(family, &format!("bound: {what}"));
    let s = new_tcp(&c("create"), family);
    expect_ok(&c("bind"), s.bind(lo(family, 0)));
    let addr = local_addr(&c("local address"), &s);
    expect_err(
        &c("get-remote-address"),
        s.get_remote_address(),
        E::InvalidState,
    );
    check_eq(&c("get-is-listening"), s.get_is_listening(), false);
    check_eq(&c("get-address-family"), s.get_address_family(), family);
    expect_err(
        &c("set-listen-backlog-size(0)"),
        s.set_listen_backlog_size(0),
        E::InvalidArgument,
    );
    expect_ok(
        &c("set-listen-backlog-size(8)"),
        s.set_listen_backlog_size(8),
    );
    expect_receive_err(&c("receive"), &s, E::InvalidState).await;
    expect_send_err(&c("send"), &s, E::InvalidState).await;
    let _accepts = expect_ok(&c("listen"), s.listen());
    check_eq(
        &c("listen keeps the bound address"),
        s.get_local_address(),
        Ok(addr),
    );
    check_eq(
        &c("get-is-listening after listen"),
        s.get_is_listening(),
        true,
    );
}

/// `listening`: "If the socket is not already explicitly bound, this function will
/// implicitly bind the socket to a random free port"; "This can be called at most once per
/// socket" (`invalid-state`: "The socket is already in the `listening` state"); `connect`:
/// "`invalid-state`: The socket is already in the `listening` state"; `bind`: already bound.
async fn listening_state(family: Family) {
    let c = |what: &str| name(family, &format!("listening: {what}"));
    let s = new_tcp(&c("create"), family);
    let accepts = expect_ok(&c("listen on an unbound socket"), s.listen());
    check_eq(&c("get-is-listening"), s.get_is_listening(), true);
    let addr = expect_ok(
        &c("get-local-address (implicit bind)"),
        s.get_local_address(),
    );
    check(
        &c("implicit bind: the family and a port"),
        family_of(&addr) == family && port_of(&addr) != 0,
        || format!("{addr:?}"),
    );
    expect_err(
        &c("get-remote-address"),
        s.get_remote_address(),
        E::InvalidState,
    );
    expect_err(&c("listen again"), s.listen().map(drop), E::InvalidState);
    expect_err(&c("bind"), s.bind(lo(family, 0)), E::InvalidState);
    expect_err(
        &c("connect"),
        within(&c("connect"), s.connect(lo(family, port_of(&addr)))).await,
        E::InvalidState,
    );
    expect_err(
        &c("set-listen-backlog-size(0)"),
        s.set_listen_backlog_size(0),
        E::InvalidArgument,
    );
    // "`not-supported`: (set) The platform does not support changing the backlog size after
    // the initial listen": either answer is the WIT's.
    let r = s.set_listen_backlog_size(32);
    check(
        &c("set-listen-backlog-size(32): ok or not-supported"),
        matches!(r, Ok(()) | Err(E::NotSupported)),
        || format!("{r:?}"),
    );
    expect_receive_err(&c("receive"), &s, E::InvalidState).await;
    expect_send_err(&c("send"), &s, E::InvalidState).await;
    check_eq(&c("still listening"), s.get_is_listening(), true);
    check_eq(
        &c("local address unchanged"),
        s.get_local_address(),
        Ok(addr),
    );
    // The listen stream is live: a connection through it is accepted.
    let client = new_tcp(&c("client"), family);
    expect_ok(
        &c("connect to the implicitly bound port"),
        within(&c("connect"), client.connect(lo(family, port_of(&addr)))).await,
    );
    let mut accepts = accepts;
    let server = accept(&c("accept"), &mut accepts).await;
    check(
        &c("the listen stream yields the connection"),
        server.is_some(),
        || "the listen stream ended".into(),
    );
}

/// `connect`'s argument errors, each `invalid-argument`, on a fresh socket each: the wrong
/// family, not unicast, IPv4-mapped, "The IP address in `remote-address` is set to
/// INADDR_ANY", "The port in `remote-address` is set to 0".
async fn connect_argument_errors(family: Family) {
    let c = |what: &str| name(family, &format!("connect: {what}"));
    // A real listener, so that only the argument is wrong.
    let (l, _accepts) = listener(&c("listener"), family);
    let port = port_of(&local_addr(&c("listener address"), &l));
    let mut bad: Vec<(&str, IpSocketAddress)> = vec![
        ("wrong family", lo_other(family, port)),
        ("unspecified address", unspecified(family, port)),
        ("port 0", lo(family, 0)),
    ];
    match family {
        Family::Ipv4 => {
            bad.push(("multicast 224.0.0.1", v4((224, 0, 0, 1), port)));
            bad.push(("broadcast 255.255.255.255", v4((255, 255, 255, 255), port)));
        }
        Family::Ipv6 => {
            bad.push(("multicast ff02::1", v6((0xff02, 0, 0, 0, 0, 0, 0, 1), port)));
            bad.push((
                "IPv4-mapped ::ffff:127.0.0.1",
                v6((0, 0, 0, 0, 0, 0xffff, 0x7f00, 0x0001), port),
            ));
        }
    }
    for (what, addr) in bad {
        let s = new_tcp(&c("create"), family);
        expect_err(
            &c(what),
            within(&c(what), s.connect(addr)).await,
            E::InvalidArgument,
        );
    }
}

/// A connection: the client's addresses after `connect` ("the `remote-address` of the socket
/// is updated", an implicit bind to "a random free port"), the accepted socket's addresses
/// and the properties it inherits ("The following properties are inherited from the listener
/// socket: `address-family`, `keep-alive-enabled`, `keep-alive-idle-time`,
/// `keep-alive-interval`, `keep-alive-count`, `hop-limit`, `receive-buffer-size`,
/// `send-buffer-size`"), read back as the listener reads them back.
async fn connect_accept_and_inherit(family: Family) {
    let c = |what: &str| name(family, &format!("accept: {what}"));
    let l = new_tcp(&c("listener"), family);
    expect_ok(
        &c("listener: set-keep-alive-enabled(true)"),
        l.set_keep_alive_enabled(true),
    );
    expect_ok(
        &c("listener: set-keep-alive-idle-time(40 s)"),
        l.set_keep_alive_idle_time(40_000_000_000),
    );
    expect_ok(
        &c("listener: set-keep-alive-interval(7 s)"),
        l.set_keep_alive_interval(7_000_000_000),
    );
    expect_ok(
        &c("listener: set-keep-alive-count(3)"),
        l.set_keep_alive_count(3),
    );
    expect_ok(&c("listener: set-hop-limit(33)"), l.set_hop_limit(33));
    expect_ok(
        &c("listener: set-receive-buffer-size(96 KiB)"),
        l.set_receive_buffer_size(96 * 1024),
    );
    expect_ok(
        &c("listener: set-send-buffer-size(80 KiB)"),
        l.set_send_buffer_size(80 * 1024),
    );
    expect_ok(&c("listener: bind"), l.bind(lo(family, 0)));
    let mut accepts = expect_ok(&c("listener: listen"), l.listen());
    let laddr = local_addr(&c("listener address"), &l);

    let client = new_tcp(&c("client"), family);
    expect_ok(
        &c("client: connect"),
        within(&c("connect"), client.connect(laddr)).await,
    );
    check_eq(
        &c("client: get-remote-address"),
        client.get_remote_address(),
        Ok(laddr),
    );
    let caddr = expect_ok(&c("client: get-local-address"), client.get_local_address());
    check(
        &c("client: implicit bind to loopback and a port"),
        is_loopback(&caddr) && port_of(&caddr) != 0,
        || format!("{caddr:?}"),
    );
    check_eq(
        &c("client: get-is-listening"),
        client.get_is_listening(),
        false,
    );

    let Some(server) = accept(&c("accept"), &mut accepts).await else {
        fail(&c("accept"), "the listen stream ended");
    };
    check_eq(
        &c("server: get-address-family"),
        server.get_address_family(),
        family,
    );
    check_eq(
        &c("server: get-is-listening"),
        server.get_is_listening(),
        false,
    );
    check_eq(
        &c("server: get-local-address"),
        server.get_local_address(),
        Ok(laddr),
    );
    check_eq(
        &c("server: get-remote-address"),
        server.get_remote_address(),
        Ok(caddr),
    );
    check_eq(
        &c("server inherits keep-alive-enabled"),
        server.get_keep_alive_enabled(),
        l.get_keep_alive_enabled(),
    );
    check_eq(
        &c("server inherits keep-alive-idle-time"),
        server.get_keep_alive_idle_time(),
        l.get_keep_alive_idle_time(),
    );
    check_eq(
        &c("server inherits keep-alive-interval"),
        server.get_keep_alive_interval(),
        l.get_keep_alive_interval(),
    );
    check_eq(
        &c("server inherits keep-alive-count"),
        server.get_keep_alive_count(),
        l.get_keep_alive_count(),
    );
    check_eq(
        &c("server inherits hop-limit"),
        server.get_hop_limit(),
        Ok(33),
    );
    check_eq(
        &c("server inherits receive-buffer-size"),
        server.get_receive_buffer_size(),
        l.get_receive_buffer_size(),
    );
    check_eq(
        &c("server inherits send-buffer-size"),
        server.get_send_buffer_size(),
        l.get_send_buffer_size(),
    );
    // The listener itself did not change.
    check_eq(&c("listener still listening"), l.get_is_listening(), true);
    check_eq(
        &c("listener: get-local-address"),
        l.get_local_address(),
        Ok(laddr),
    );
}

/// `connected`, on both ends: `connect` again ("`invalid-state`: The socket is already in
/// the `connected` state"), `listen` (likewise), `bind` (already bound),
/// `set-listen-backlog-size` ("`invalid-state`: (set) The socket is in the `connecting` or
/// `connected` state"); the options still work.
async fn connected_state(family: Family) {
    let c = |what: &str| name(family, &format!("connected: {what}"));
    let p = pair(&c("pair"), family).await;
    let laddr = local_addr(&c("listener address"), &p.listener);
    for (who, s) in [("client", &p.client), ("server", &p.server)] {
        let c = |what: &str| c(&format!("{who}: {what}"));
        expect_err(
            &c("connect again"),
            within(&c("connect"), s.connect(laddr)).await,
            E::InvalidState,
        );
        expect_err(&c("listen"), s.listen().map(drop), E::InvalidState);
        expect_err(&c("bind"), s.bind(lo(family, 0)), E::InvalidState);
        expect_err(
            &c("set-listen-backlog-size(16)"),
            s.set_listen_backlog_size(16),
            E::InvalidState,
        );
        expect_ok(
            &c("set-keep-alive-enabled(true)"),
            s.set_keep_alive_enabled(true),
        );
        check_eq(
            &c("get-keep-alive-enabled"),
            s.get_keep_alive_enabled(),
            Ok(true),
        );
        expect_ok(&c("set-hop-limit(7)"), s.set_hop_limit(7));
        check_eq(&c("get-hop-limit"), s.get_hop_limit(), Ok(7));
        expect_err(
            &c("set-hop-limit(0)"),
            s.set_hop_limit(0),
            E::InvalidArgument,
        );
        expect_err(
            &c("set-receive-buffer-size(0)"),
            s.set_receive_buffer_size(0),
            E::InvalidArgument,
        );
        expect_err(
            &c("set-send-buffer-size(0)"),
            s.set_send_buffer_size(0),
            E::InvalidArgument,
        );
        check_eq(&c("still not listening"), s.get_is_listening(), false);
    }
    // The failed connect did not close the connection: data still flows.
    check_eq(
        &c("send after the failed calls"),
        send_all(&c("send"), &p.client, b"still here").await,
        Ok(()),
    );
    let (mut rx, _result) = p.server.receive();
    check_eq(
        &c("receive after the failed calls"),
        read_exact(&c("receive"), &mut rx, 10).await,
        b"still here".to_vec(),
    );
}

/// Data both ways. "The caller should close the stream when it has no more data to send ...
/// this will cause a FIN packet"; `send` "returns once the full contents of the stream are
/// transmitted"; the peer's receive stream then ends and its future "resolves to: `ok` after a
/// graceful shutdown from the peer".
async fn data_round_trip(family: Family) {
    let c = |what: &str| name(family, &format!("data: {what}"));
    let p = pair(&c("pair"), family).await;
    let (mut srx, sresult) = p.server.receive();
    let (mut crx, cresult) = p.client.receive();

    let request: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    check_eq(
        &c("client: send 20000 bytes"),
        send_all(&c("client send"), &p.client, &request).await,
        Ok(()),
    );
    let got = read_to_end(&c("server: read to the end"), &mut srx, 1 << 20).await;
    check_eq(&c("server: received bytes"), got.len(), request.len());
    check(
        &c("server: received the same bytes"),
        got == request,
        || "differ".into(),
    );
    check_eq(
        &c("server: receive future after the peer's FIN"),
        within(&c("server: receive future"), sresult).await,
        Ok(()),
    );

    // The other way, in two writes on one stream.
    let (mut tx, data) = byte_stream();
    let sent = p.server.send(data);
    check_eq(
        &c("server: first write"),
        write_all(&c("write"), &mut tx, b"hello ").await,
        vec![],
    );
    check_eq(
        &c("server: second write"),
        write_all(&c("write"), &mut tx, b"world").await,
        vec![],
    );
    check_eq(
        &c("client: reads both writes"),
        read_exact(&c("client: read"), &mut crx, 11).await,
        b"hello world".to_vec(),
    );
    drop(tx);
    check_eq(
        &c("server: send future"),
        within(&c("server: send future"), sent).await,
        Ok(()),
    );
    let (end, rest) = read_once::<u8>(&c("client: read after FIN"), &mut crx, 16).await;
    check_eq(
        &c("client: stream ends after the FIN"),
        (end, rest.len()),
        (StreamResult::Dropped, 0),
    );
    check_eq(
        &c("client: receive future after the peer's FIN"),
        within(&c("client: receive future"), cresult).await,
        Ok(()),
    );
}

/// "`receive` may be called only once per socket. Subsequent calls return a closed stream and
/// a future resolved to `err(invalid-state)`"; `send`: "This function may be called at most
/// once" ("`invalid-state`: `send` has already been called on this socket"). The first
/// streams keep working.
async fn receive_and_send_once(family: Family) {
    let c = |what: &str| name(family, &format!("once: {what}"));
    let p = pair(&c("pair"), family).await;
    let (mut rx, _rresult) = p.server.receive();
    expect_receive_err(&c("receive twice"), &p.server, E::InvalidState).await;

    let (mut tx, data) = byte_stream();
    let sent = p.client.send(data);
    expect_send_err(&c("send twice"), &p.client, E::InvalidState).await;
    check_eq(
        &c("first send stream still works"),
        write_all(&c("write"), &mut tx, b"abc").await,
        vec![],
    );
    check_eq(
        &c("first receive stream still works"),
        read_exact(&c("read"), &mut rx, 3).await,
        b"abc".to_vec(),
    );
    drop(tx);
    check_eq(
        &c("first send future"),
        within(&c("send future"), sent).await,
        Ok(()),
    );
}

/// `connecting`: a connect to a listener whose accept queue is full stays pending (the
/// listener's SYN queue drops it; Linux retries after a second), so the socket is in the
/// `connecting` state while the calls below are made. Explicitly bound first: "whenever this
/// documentation uses the term "bound" ... it actually means: in the `bound` state *or
/// higher*. (i.e. `bound`, `listening`, `connecting` or `connected`)", so the local address is
/// the bound one and `bind` is `invalid-state`; `connect`: "`invalid-state`: The socket is
/// already in the `connecting` state"; `set-listen-backlog-size`: "`invalid-state`: (set) The
/// socket is in the `connecting` or `connected` state"; no data yet ("`invalid-state`: The
/// socket is not in the `connected` state"); the options document no state restriction and
/// no error but `invalid-argument`, so they work as in any other state.
///
/// This needs a host whose listener honours a small backlog (the WIT lets a host ignore the
/// hint): the OS's on Linux does. If no connect stays pending, one check says so and the rest
/// are not run.
async fn connecting_state(family: Family) {
    let c = |what: &str| name(family, &format!("connecting: {what}"));
    let l = new_tcp(&c("listener"), family);
    expect_ok(
        &c("listener: set-listen-backlog-size(1)"),
        l.set_listen_backlog_size(1),
    );
    expect_ok(&c("listener: bind"), l.bind(lo(family, 0)));
    let _accepts = expect_ok(&c("listener: listen"), l.listen());
    let laddr = local_addr(&c("listener address"), &l);
    // Connect clients until one stays pending; the connected ones fill the queue.
    let clients: Vec<(TcpSocket, IpSocketAddress)> = (0..8)
        .map(|_| {
            let s = new_tcp(&c("client"), family);
            if let Err(e) = s.bind(lo(family, 0)) {
                fail(&c("client bind"), format!("{e:?}"));
            }
            let bound = local_addr(&c("client address"), &s);
            (s, bound)
        })
        .collect();
    let mut completed = 0;
    let mut pending = None;
    for (s, bound) in &clients {
        let mut connect = Box::pin(s.connect(laddr));
        match timeout(300, &mut connect).await {
            Some(Ok(())) => completed += 1,
            Some(Err(e)) => fail(&c("filling the accept queue"), format!("connect: {e:?}")),
            None => {
                pending = Some((s, *bound, connect));
                break;
            }
        }
    }
    check(
        &c("a connect to a full accept queue stays pending"),
        pending.is_some(),
        || format!("{completed} connects completed"),
    );
    let Some((s, bound, mut connect)) = pending else {
        return;
    };
    expect_err(
        &c("connect again"),
        within(&c("connect again"), s.connect(laddr)).await,
        E::InvalidState,
    );
    expect_err(&c("bind"), s.bind(lo(family, 0)), E::InvalidState);
    expect_err(&c("listen"), s.listen().map(drop), E::InvalidState);
    expect_err(
        &c("set-listen-backlog-size(16)"),
        s.set_listen_backlog_size(16),
        E::InvalidState,
    );
    check_eq(
        &c("get-local-address is the bound address"),
        s.get_local_address(),
        Ok(bound),
    );
    expect_err(
        &c("get-remote-address"),
        s.get_remote_address(),
        E::InvalidState,
    );
    check_eq(&c("get-is-listening"), s.get_is_listening(), false);
    check_eq(&c("get-address-family"), s.get_address_family(), family);
    // Non-fatal checks (`check_eq`, not `expect_ok`): the guest goes on after a failure.
    check_eq(
        &c("set-keep-alive-enabled(true)"),
        s.set_keep_alive_enabled(true),
        Ok(()),
    );
    check_eq(
        &c("get-keep-alive-enabled"),
        s.get_keep_alive_enabled(),
        Ok(true),
    );
    check_eq(&c("set-hop-limit(9)"), s.set_hop_limit(9), Ok(()));
    check_eq(&c("get-hop-limit"), s.get_hop_limit(), Ok(9));
    check_eq(
        &c("get-receive-buffer-size > 0"),
        s.get_receive_buffer_size().map(|n| n > 0),
        Ok(true),
    );
    expect_receive_err(&c("receive"), s, E::InvalidState).await;
    expect_send_err(&c("send"), s, E::InvalidState).await;
    // Still pending: none of that finished or failed the connect.
    check(
        &c("the connect is still pending"),
        poll_once(&mut connect).await.is_none(),
        || "it finished".into(),
    );
    drop(connect);
}

/// `connect` while a `connect` is under way or done: "`invalid-state`: The socket is already in
/// the `connecting` state" / "... `connected` state" — invalid-state either way, whichever it
/// is when the second call arrives; the first one then succeeds.
async fn concurrent_connect(family: Family) {
    let c = |what: &str| name(family, &format!("concurrent connect: {what}"));
    let (l, _accepts) = listener(&c("listener"), family);
    let addr = local_addr(&c("listener address"), &l);
    let s = new_tcp(&c("client"), family);
    let mut first = Box::pin(s.connect(addr));
    let done = poll_once(&mut first).await;
    expect_err(
        &c("second connect"),
        within(&c("second connect"), s.connect(addr)).await,
        E::InvalidState,
    );
    let r = match done {
        Some(r) => r,
        None => within(&c("first connect"), first).await,
    };
    check_eq(&c("first connect"), r, Ok(()));
    check_eq(&c("get-remote-address"), s.get_remote_address(), Ok(addr));
}

/// A refused connect: "`connection-refused`: The connection was forcefully rejected"; "After a
/// failed connection attempt, the socket will be in the `closed` state and the only valid
/// action left is to `drop` the socket. A single socket can not be used to connect more than
/// once"; "TCP socket methods may always return `error(invalid-state)` when in the `closed`
/// state" — the one error the WIT gives the closed state, so every fallible method must give
/// it.
async fn connect_refused_closes_socket(family: Family) {
    let c = |what: &str| name(family, &format!("refused: {what}"));
    // A port nothing listens on: bound (so the OS picked it free), then released.
    let port = {
        let t = new_tcp(&c("probe"), family);
        expect_ok(&c("probe bind"), t.bind(lo(family, 0)));
        port_of(&local_addr(&c("probe address"), &t))
    };
    let s = new_tcp(&c("create"), family);
    expect_err(
        &c("connect to a closed port"),
        within(&c("connect"), s.connect(lo(family, port))).await,
        E::ConnectionRefused,
    );
    let c = |what: &str| c(&format!("closed: {what}"));
    expect_err(
        &c("connect again"),
        within(&c("connect"), s.connect(lo(family, port))).await,
        E::InvalidState,
    );
    expect_err(&c("bind"), s.bind(lo(family, 0)), E::InvalidState);
    expect_err(&c("listen"), s.listen().map(drop), E::InvalidState);
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
    check_eq(&c("get-is-listening"), s.get_is_listening(), false);
    check_eq(&c("get-address-family"), s.get_address_family(), family);
    expect_err(
        &c("set-listen-backlog-size(16)"),
        s.set_listen_backlog_size(16),
        E::InvalidState,
    );
    expect_err(
        &c("get-keep-alive-enabled"),
        s.get_keep_alive_enabled(),
        E::InvalidState,
    );
    expect_err(&c("get-hop-limit"), s.get_hop_limit(), E::InvalidState);
    expect_err(
        &c("get-receive-buffer-size"),
        s.get_receive_buffer_size(),
        E::InvalidState,
    );
    expect_receive_err(&c("receive"), &s, E::InvalidState).await;
    expect_send_err(&c("send"), &s, E::InvalidState).await;
}

/// "Send/receive streams remain functional after the original `tcp-socket` handle is
/// dropped."
async fn streams_outlive_socket(family: Family) {
    let c = |what: &str| name(family, &format!("shared ownership: {what}"));
    let p = pair(&c("pair"), family).await;
    let (mut rx, rresult) = p.client.receive();
    let (mut tx, data) = byte_stream();
    let sent = p.client.send(data);
    drop(p.client);
    check_eq(
        &c("send stream after the socket was dropped"),
        write_all(&c("write"), &mut tx, b"ping").await,
        vec![],
    );
    drop(tx);
    check_eq(
        &c("send future after the socket was dropped"),
        within(&c("send future"), sent).await,
        Ok(()),
    );
    let (mut srx, _sresult) = p.server.receive();
    check_eq(
        &c("peer receives it"),
        read_to_end(&c("peer read"), &mut srx, 1024).await,
        b"ping".to_vec(),
    );
    check_eq(
        &c("peer's reply"),
        send_all(&c("peer send"), &p.server, b"pong").await,
        Ok(()),
    );
    check_eq(
        &c("receive stream after the socket was dropped"),
        read_to_end(&c("read"), &mut rx, 1024).await,
        b"pong".to_vec(),
    );
    check_eq(
        &c("receive future after the socket was dropped"),
        within(&c("receive future"), rresult).await,
        Ok(()),
    );
}

/// "Client sockets returned by `tcp-socket::listen` are independent and do not keep the
/// listening socket alive": with the listener and its stream dropped, the accepted socket
/// still works, and the port refuses new connections ("The OS socket is closed only after the
/// last handle is dropped").
async fn accepted_outlive_listener(family: Family) {
    let c = |what: &str| name(family, &format!("independent: {what}"));
    let p = pair(&c("pair"), family).await;
    let laddr = local_addr(&c("listener address"), &p.listener);
    drop(p.accepts);
    drop(p.listener);
    check_eq(
        &c("server sends after the listener was dropped"),
        send_all(&c("send"), &p.server, b"bye").await,
        Ok(()),
    );
    let (mut rx, _result) = p.client.receive();
    check_eq(
        &c("client receives it"),
        read_to_end(&c("read"), &mut rx, 1024).await,
        b"bye".to_vec(),
    );
    // The port is closed now: a new connect is refused (bounded: a host that kept the
    // listener would leave it pending or accept it).
    let s = new_tcp(&c("new client"), family);
    let r = timeout(WAIT_MS, s.connect(laddr)).await;
    check_eq(
        &c("connect to the dropped listener's port"),
        r,
        Some(Err(E::ConnectionRefused)),
    );
}

/// "The stream returned by `listen` behaves similarly" (to the send and receive streams, which
/// "remain functional after the original `tcp-socket` handle is dropped"): with the listening
/// socket's handle dropped, its listen stream still accepts; the listener keeps its options
/// in the `listening` state meanwhile.
async fn listen_stream_outlives_socket(family: Family) {
    let c = |what: &str| name(family, &format!("listen stream: {what}"));
    let (l, mut accepts) = listener(&c("listener"), family);
    let laddr = local_addr(&c("listener address"), &l);
    // Options of a listening socket.
    check_eq(
        &c("listening: set-keep-alive-enabled(true)"),
        l.set_keep_alive_enabled(true),
        Ok(()),
    );
    check_eq(
        &c("listening: get-keep-alive-enabled"),
        l.get_keep_alive_enabled(),
        Ok(true),
    );
    check_eq(
        &c("listening: set-hop-limit(12)"),
        l.set_hop_limit(12),
        Ok(()),
    );
    check_eq(&c("listening: get-hop-limit"), l.get_hop_limit(), Ok(12));
    check_eq(
        &c("listening: set-hop-limit(0)"),
        l.set_hop_limit(0),
        Err(E::InvalidArgument),
    );
    drop(l);
    let client = new_tcp(&c("client"), family);
    check_eq(
        &c("connect after the listener's handle was dropped"),
        within(&c("connect"), client.connect(laddr)).await,
        Ok(()),
    );
    let server = accept(&c("accept"), &mut accepts).await;
    check(
        &c("the listen stream still accepts"),
        server.is_some(),
        || "the listen stream ended".into(),
    );
    if let Some(server) = server {
        check_eq(
            &c("accepted socket: get-remote-address"),
            server.get_remote_address(),
            client.get_local_address(),
        );
    }
}

/// A connection closed abnormally: the peer closes its socket with data it never read, which
/// resets the connection (RST). `receive`: "the returned `future` resolves to ... `err` if the
/// socket was closed abnormally", "`connection-reset`: The connection was reset"; a later
/// `send` fails with one of its documented codes for a broken connection
/// ("`connection-broken`: The connection is not writable anymore", "`connection-reset`: The
/// connection was reset"; which one depends on whether the reset was already reported).
async fn reset_by_peer(family: Family) {
    let c = |what: &str| name(family, &format!("reset: {what}"));
    let p = pair(&c("pair"), family).await;
    let (mut rx, result) = p.client.receive();
    // The client's one send stream stays open (no FIN) for the write after the reset.
    let (mut tx, data) = byte_stream();
    let sent = p.client.send(data);
    check_eq(
        &c("client sends data the server never reads"),
        write_all(&c("write"), &mut tx, &[7u8; 1000]).await,
        vec![],
    );
    // Let the bytes reach the server's receive queue (loopback: well within this).
    raw_p3::sleep_ms(100).await;
    drop(p.server);
    let (end, data) = read_once::<u8>(&c("client read"), &mut rx, 16).await;
    check_eq(
        &c("client's receive stream ends"),
        (end, data.len()),
        (StreamResult::Dropped, 0),
    );
    check_eq(
        &c("client's receive future"),
        within(&c("receive future"), result).await,
        Err(E::ConnectionReset),
    );
    // A later write fails: the host drops the send stream, and the send future gives the
    // error.
    let _ = within(&c("write after the reset"), tx.write_all(b"late".to_vec())).await;
    drop(tx);
    expect_err_in(
        &c("client's send future after the reset"),
        within(&c("send future"), sent).await,
        &[E::ConnectionBroken, E::ConnectionReset],
    );
    let _ = (p.listener, p.accepts);
}
