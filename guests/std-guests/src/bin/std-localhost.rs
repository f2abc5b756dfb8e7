//! std-localhost: `"localhost:PORT".to_socket_addrs()` (name lookup through std) against
//! the program's own listener, then connects through the resolved addresses.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};

use guest_support::{check, check_eq, expect_ok, finish, start};

fn main() {
    start("std-localhost");
    let listener = expect_ok("bind", TcpListener::bind("127.0.0.1:0"));
    let addr = expect_ok("local_addr", listener.local_addr());
    let port = addr.port();

    let addrs: Vec<SocketAddr> = expect_ok(
        "resolve localhost:PORT",
        format!("localhost:{port}").to_socket_addrs(),
    )
    .collect();
    check("localhost resolves to something", !addrs.is_empty(), || {
        "no addresses".into()
    });
    for a in &addrs {
        check(
            "resolved addresses are loopback",
            a.ip().is_loopback(),
            || format!("{a}"),
        );
        check_eq("resolved addresses keep the port", a.port(), port);
        if let IpAddr::V6(v6) = a.ip() {
            check(
                "no IPv4-mapped results",
                v6.to_ipv4_mapped().is_none(),
                || format!("{a}"),
            );
        }
    }
    check(
        "localhost includes 127.0.0.1",
        addrs
            .iter()
            .any(|a| a.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST)),
        || format!("{addrs:?}"),
    );
    let pair: Vec<SocketAddr> = expect_ok(
        "resolve (host, port)",
        ("localhost", port).to_socket_addrs(),
    )
    .collect();
    check(
        "(\"localhost\", port) resolves too",
        !pair.is_empty(),
        || "no addresses".into(),
    );

    // Connect through the resolved list: std tries each address in turn (an IPv6
    // ::1 entry is refused since the listener is IPv4 only; 127.0.0.1 then works).
    let mut client = expect_ok(
        "connect via the resolved addresses",
        TcpStream::connect(&addrs[..]),
    );
    check_eq(
        "connected to the listener",
        expect_ok("peer_addr", client.peer_addr()),
        addr,
    );
    let (mut server, peer) = expect_ok("accept", listener.accept());
    check_eq("accepted the client", Some(peer), client.local_addr().ok());
    expect_ok("client write", client.write_all(b"via localhost"));
    let mut buf = [0u8; 13];
    expect_ok("server read", server.read_exact(&mut buf));
    check_eq("server received", &buf, b"via localhost");
    finish();
}
