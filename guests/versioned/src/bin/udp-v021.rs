//! udp-v021: calls every method of `wasi:sockets/udp@0.2.1` (the version Go's bindings
//! import) over loopback, sending to itself, and asserts the results. The host-side
//! test checks that the component really imports `wasi:sockets/udp@0.2.1`.

mod bindings {
    wit_bindgen::generate!({
        path: [
            "../wit/0.2.1/io.wit",
            "../wit/0.2.1/clocks.wit",
            "../wit/0.2.1/sockets.wit",
        ],
        inline: "
            package wasock:udp-v021;

            world udp-v021 {
                import wasi:io/poll@0.2.1;
                import wasi:clocks/monotonic-clock@0.2.1;
                import wasi:sockets/network@0.2.1;
                import wasi:sockets/instance-network@0.2.1;
                import wasi:sockets/udp@0.2.1;
                import wasi:sockets/udp-create-socket@0.2.1;
            }
        ",
        world: "wasock:udp-v021/udp-v021",
        generate_all,
    });
}

use bindings::wasi::sockets::instance_network::instance_network;
use bindings::wasi::sockets::network::{
    ErrorCode as E, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress,
};
use bindings::wasi::sockets::udp::{IncomingDatagram, IncomingDatagramStream, OutgoingDatagram};
use bindings::wasi::sockets::udp_create_socket::create_udp_socket;
use guest_support::{Deadline, check, check_eq, expect_err, expect_ok, fail, finish, start};

guest_support::wasi_wait_helpers!(
    poll: bindings::wasi::io::poll::poll,
    pollable: bindings::wasi::io::poll::Pollable,
    subscribe_duration: bindings::wasi::clocks::monotonic_clock::subscribe_duration,
);

const WAIT_MS: u64 = 5_000;

fn lo4(port: u16) -> IpSocketAddress {
    IpSocketAddress::Ipv4(Ipv4SocketAddress {
        port,
        address: (127, 0, 0, 1),
    })
}

fn port_of(a: &IpSocketAddress) -> u16 {
    match a {
        IpSocketAddress::Ipv4(a) => a.port,
        IpSocketAddress::Ipv6(a) => a.port,
    }
}

fn same_addr(a: &IpSocketAddress, b: &IpSocketAddress) -> bool {
    match (a, b) {
        (IpSocketAddress::Ipv4(a), IpSocketAddress::Ipv4(b)) => {
            a.port == b.port && a.address == b.address
        }
        (IpSocketAddress::Ipv6(a), IpSocketAddress::Ipv6(b)) => {
            a.port == b.port && a.address == b.address
        }
        _ => false,
    }
}

/// Receives one datagram, waiting on the stream's pollable (bounded).
fn receive_one(check: &str, input: &IncomingDatagramStream) -> IncomingDatagram {
    let deadline = Deadline::secs(10);
    let p = input.subscribe();
    loop {
        // Not a counted check per try: how many tries it takes is up to timing.
        let mut got = match input.receive(4) {
            Ok(got) => got,
            Err(e) => fail(check, format!("receive failed: {e:?}")),
        };
        if got.len() > 4 {
            fail(
                check,
                format!("receive(4) returned {} datagrams", got.len()),
            );
        }
        if let Some(d) = got.pop() {
            return d;
        }
        if deadline.expired() {
            fail(check, "no datagram within the deadline");
        }
        wait_ready(check, &p, WAIT_MS);
    }
}

fn main() {
    start("udp-v021");
    let net = instance_network();
    let s = expect_ok(
        "create-udp-socket",
        create_udp_socket(IpAddressFamily::Ipv4),
    );
    check_eq("address-family", s.address_family(), IpAddressFamily::Ipv4);

    // Options.
    expect_err(
        "set-unicast-hop-limit(0)",
        s.set_unicast_hop_limit(0),
        E::InvalidArgument,
    );
    expect_ok("set-unicast-hop-limit(20)", s.set_unicast_hop_limit(20));
    check_eq("unicast-hop-limit", s.unicast_hop_limit(), Ok(20));
    expect_err(
        "set-receive-buffer-size(0)",
        s.set_receive_buffer_size(0),
        E::InvalidArgument,
    );
    expect_ok("set-receive-buffer-size", s.set_receive_buffer_size(65536));
    let rcv = expect_ok("receive-buffer-size", s.receive_buffer_size());
    check("receive-buffer-size > 0", rcv > 0, || format!("{rcv}"));
    expect_err(
        "set-send-buffer-size(0)",
        s.set_send_buffer_size(0),
        E::InvalidArgument,
    );
    expect_ok("set-send-buffer-size", s.set_send_buffer_size(65536));
    let snd = expect_ok("send-buffer-size", s.send_buffer_size());
    check("send-buffer-size > 0", snd > 0, || format!("{snd}"));

    // Bind.
    expect_err(
        "local-address before bind",
        s.local_address(),
        E::InvalidState,
    );
    expect_err("stream before bind", s.stream(None), E::InvalidState);
    expect_ok("start-bind", s.start_bind(&net, lo4(0)));
    let sp = s.subscribe();
    let deadline = Deadline::secs(10);
    loop {
        match s.finish_bind() {
            Ok(()) => break,
            Err(E::WouldBlock) if !deadline.expired() => wait_ready("finish-bind", &sp, WAIT_MS),
            Err(e) => fail("finish-bind", format!("got Err({e:?})")),
        }
    }
    guest_support::pass();
    check("socket subscribe ready when bound", sp.ready(), || {
        "not ready".into()
    });
    let me = expect_ok("local-address", s.local_address());
    check(
        "local-address is 127.0.0.1:port",
        same_addr(&me, &lo4(port_of(&me))),
        || format!("{me:?}"),
    );
    check("local port is not 0", port_of(&me) != 0, || {
        format!("{me:?}")
    });
    expect_err(
        "remote-address when not connected",
        s.remote_address(),
        E::InvalidState,
    );

    // Unconnected: send to itself with an explicit address.
    {
        let (incoming, outgoing) = expect_ok("stream(none)", s.stream(None));
        wait_ready("outgoing subscribe", &outgoing.subscribe(), WAIT_MS);
        let permit = expect_ok("check-send", outgoing.check_send());
        check("check-send > 0", permit > 0, || format!("{permit}"));
        let sent = outgoing.send(&[OutgoingDatagram {
            data: b"to myself".to_vec(),
            remote_address: Some(me),
        }]);
        check_eq("send with address", sent, Ok(1));
        let d = receive_one("receive (unconnected)", &incoming);
        check_eq("received payload", d.data, b"to myself".to_vec());
        check(
            "received from itself",
            same_addr(&d.remote_address, &me),
            || format!("{:?}", d.remote_address),
        );
        check_eq(
            "receive with nothing left",
            incoming.receive(4).map(|v| v.len()),
            Ok(0),
        );
    }

    // Connected to itself: send without an address.
    let (incoming, outgoing) = expect_ok("stream(some(self))", s.stream(Some(me)));
    let remote = expect_ok("remote-address when connected", s.remote_address());
    check("remote-address is itself", same_addr(&remote, &me), || {
        format!("{remote:?}")
    });
    wait_ready(
        "outgoing subscribe (connected)",
        &outgoing.subscribe(),
        WAIT_MS,
    );
    let permit = expect_ok("check-send (connected)", outgoing.check_send());
    check("check-send > 0 (connected)", permit > 0, || {
        format!("{permit}")
    });
    let sent = outgoing.send(&[OutgoingDatagram {
        data: b"connected".to_vec(),
        remote_address: None,
    }]);
    check_eq("send without address (connected)", sent, Ok(1));
    let d = receive_one("receive (connected)", &incoming);
    check_eq(
        "received payload (connected)",
        d.data,
        b"connected".to_vec(),
    );
    finish();
}
