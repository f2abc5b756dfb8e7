//! std-ipv6: a `std::net` TCP listener and client on [::1], plus a UDP round trip on
//! [::1], checking addresses on both ends.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use guest_support::{Deadline, check, check_eq, expect_ok, finish, retry_nb, start};

fn main() {
    start("std-ipv6");
    let loopback = IpAddr::V6(Ipv6Addr::LOCALHOST);

    let listener = expect_ok("bind [::1]:0", TcpListener::bind("[::1]:0"));
    let addr = expect_ok("local_addr", listener.local_addr());
    check_eq("listener on ::1", addr.ip(), loopback);
    check("listener port is not 0", addr.port() != 0, || {
        format!("{addr}")
    });

    let mut client = expect_ok("connect", TcpStream::connect(addr));
    expect_ok(
        "set_read_timeout",
        client.set_read_timeout(Some(Duration::from_secs(10))),
    );
    let (mut server, peer) = expect_ok("accept", listener.accept());
    expect_ok(
        "set_read_timeout",
        server.set_read_timeout(Some(Duration::from_secs(10))),
    );
    check_eq(
        "client local ip is ::1",
        expect_ok("client local_addr", client.local_addr()).ip(),
        loopback,
    );
    check_eq(
        "client peer is the listener",
        expect_ok("client peer_addr", client.peer_addr()),
        addr,
    );
    check_eq(
        "accepted peer is the client",
        Some(peer),
        client.local_addr().ok(),
    );
    check_eq(
        "accepted local is the listener",
        server.local_addr().ok(),
        Some(addr),
    );

    expect_ok("client write", client.write_all(b"hello over ipv6"));
    let mut buf = [0u8; 15];
    expect_ok("server read", server.read_exact(&mut buf));
    check_eq("server received", &buf, b"hello over ipv6");
    expect_ok("server echo", server.write_all(&buf));
    let mut back = [0u8; 15];
    expect_ok("client read", client.read_exact(&mut back));
    check_eq("client received the echo", &back, b"hello over ipv6");
    drop(client);
    let mut rest = Vec::new();
    expect_ok("server reads to end", server.read_to_end(&mut rest));
    check_eq("nothing after the close", rest.len(), 0);

    // UDP on ::1.
    let a = expect_ok("udp bind a", UdpSocket::bind("[::1]:0"));
    let b = expect_ok("udp bind b", UdpSocket::bind("[::1]:0"));
    expect_ok("udp set_nonblocking", b.set_nonblocking(true));
    let aaddr = expect_ok("udp a local_addr", a.local_addr());
    expect_ok(
        "udp send_to",
        a.send_to(b"v6 datagram", expect_ok("b local_addr", b.local_addr())),
    );
    let mut dbuf = [0u8; 64];
    let (n, from) = retry_nb("udp recv_from", Deadline::secs(10), || {
        b.recv_from(&mut dbuf)
    });
    check_eq("udp payload", &dbuf[..n], b"v6 datagram");
    check_eq("udp sender", from, aaddr);
    finish();
}
