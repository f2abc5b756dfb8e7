//! tcp-v020: a TCP client/server roundtrip over loopback through raw bindings of
//! `wasi:sockets/tcp@0.2.0` (with `wasi:io@0.2.0` streams). The host-side test checks
//! that the component really imports `wasi:sockets/tcp@0.2.0`.

mod bindings {
    wit_bindgen::generate!({
        path: [
            "../wit/0.2.0/io.wit",
            "../wit/0.2.0/clocks.wit",
            "../wit/0.2.0/sockets.wit",
        ],
        inline: "
            package wasock:tcp-v020;

            world tcp-v020 {
                import wasi:io/error@0.2.0;
                import wasi:io/poll@0.2.0;
                import wasi:io/streams@0.2.0;
                import wasi:clocks/monotonic-clock@0.2.0;
                import wasi:sockets/network@0.2.0;
                import wasi:sockets/instance-network@0.2.0;
                import wasi:sockets/tcp@0.2.0;
                import wasi:sockets/tcp-create-socket@0.2.0;
            }
        ",
        world: "wasock:tcp-v020/tcp-v020",
        generate_all,
    });
}

use bindings::wasi::io::poll::Pollable;
use bindings::wasi::io::streams::{InputStream, OutputStream, StreamError};
use bindings::wasi::sockets::instance_network::instance_network;
use bindings::wasi::sockets::network::{
    ErrorCode as E, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress,
};
use bindings::wasi::sockets::tcp::ShutdownType;
use bindings::wasi::sockets::tcp_create_socket::create_tcp_socket;
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

/// Repeats a `finish-*`-style call while it returns `would-block`, waiting on `p`.
fn until_done<T>(check: &str, p: &Pollable, mut f: impl FnMut() -> Result<T, E>) -> T {
    let deadline = Deadline::secs(10);
    loop {
        match f() {
            Ok(v) => {
                guest_support::pass();
                return v;
            }
            Err(E::WouldBlock) if !deadline.expired() => wait_ready(check, p, WAIT_MS),
            Err(e) => fail(check, format!("got Err({e:?})")),
        }
    }
}

/// Reads exactly `len` bytes (bounded), or returns what came before the stream closed.
fn read_n(check: &str, input: &InputStream, len: usize) -> Vec<u8> {
    let deadline = Deadline::secs(10);
    let p = input.subscribe();
    let mut buf = Vec::new();
    while buf.len() < len {
        match input.read((len - buf.len()) as u64) {
            Ok(d) if d.is_empty() => {
                if deadline.expired() {
                    fail(check, "timed out");
                }
                wait_ready(check, &p, WAIT_MS);
            }
            Ok(d) => buf.extend(d),
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                fail(check, format!("read failed: {}", e.to_debug_string()))
            }
        }
    }
    buf
}

fn send(check: &str, out: &OutputStream, data: &[u8]) {
    // blocking-write-and-flush accepts up to 4096 bytes.
    if let Err(e) = out.blocking_write_and_flush(data) {
        let msg = match e {
            StreamError::Closed => "closed".to_string(),
            StreamError::LastOperationFailed(e) => e.to_debug_string(),
        };
        fail(check, format!("write failed: {msg}"));
    }
    guest_support::pass();
}

fn main() {
    start("tcp-v020");
    let net = instance_network();

    // Server.
    let listener = expect_ok("create listener", create_tcp_socket(IpAddressFamily::Ipv4));
    let lp = listener.subscribe();
    expect_ok("start-bind", listener.start_bind(&net, lo4(0)));
    until_done("finish-bind", &lp, || listener.finish_bind());
    expect_ok("start-listen", listener.start_listen());
    until_done("finish-listen", &lp, || listener.finish_listen());
    check_eq("is-listening", listener.is_listening(), true);
    let laddr = expect_ok("listener local-address", listener.local_address());
    check("listener port is not 0", port_of(&laddr) != 0, || {
        format!("{laddr:?}")
    });
    expect_err(
        "accept with nothing pending",
        listener.accept(),
        E::WouldBlock,
    );

    // Client.
    let client = expect_ok("create client", create_tcp_socket(IpAddressFamily::Ipv4));
    let cp = client.subscribe();
    expect_ok("start-connect", client.start_connect(&net, laddr));
    let (cin, cout) = until_done("finish-connect", &cp, || client.finish_connect());
    let (server, sin, sout) = until_done("accept", &lp, || listener.accept());
    check_eq(
        "accepted remote-address is the client",
        server.remote_address().map(|a| port_of(&a)),
        client.local_address().map(|a| port_of(&a)),
    );

    // Roundtrip.
    send("client write", &cout, b"hello from 0.2.0");
    let got = read_n("server read", &sin, 16);
    check_eq("server received", got.clone(), b"hello from 0.2.0".to_vec());
    send("server echo", &sout, &got);
    check_eq(
        "client received the echo",
        read_n("client read", &cin, 16),
        got,
    );

    // Close: shutdown(send) on the client, the server reads end-of-stream.
    expect_ok("shutdown(send)", client.shutdown(ShutdownType::Send));
    check_eq(
        "server reads end-of-stream",
        read_n("server read end", &sin, 1),
        vec![],
    );
    finish();
}
