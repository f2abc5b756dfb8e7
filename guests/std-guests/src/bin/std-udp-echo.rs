//! std-udp-echo: two `std::net::UdpSocket`s in one program exchange datagrams over
//! loopback (IPv4 and IPv6), and `connect()` filters datagrams from other senders.
//! Sockets are non-blocking and every wait is bounded.

use std::net::{SocketAddr, UdpSocket};

use guest_support::{Deadline, check_eq, expect_ok, finish, retry_nb, start};

fn main() {
    start("std-udp-echo");
    round_trips("127.0.0.1:0");
    round_trips("[::1]:0");
    connect_filters();
    finish();
}

fn socket(check: &str, addr: &str) -> UdpSocket {
    let s = expect_ok(check, UdpSocket::bind(addr));
    expect_ok("set_nonblocking", s.set_nonblocking(true));
    s
}

fn recv(check: &str, s: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 2048];
    let (n, from) = retry_nb(check, Deadline::secs(10), || s.recv_from(&mut buf));
    (buf[..n].to_vec(), from)
}

/// send_to / recv_from both ways, several times, checking payloads and sender addresses.
fn round_trips(bind: &str) {
    let a = socket("bind a", bind);
    let b = socket("bind b", bind);
    let aaddr = expect_ok("a local_addr", a.local_addr());
    let baddr = expect_ok("b local_addr", b.local_addr());
    for i in 0..5 {
        let msg = format!("ping {i} via {bind}");
        check_eq(
            "send_to returns the length",
            expect_ok("send_to", a.send_to(msg.as_bytes(), baddr)),
            msg.len(),
        );
        let (data, from) = recv("b recv_from", &b);
        check_eq("b receives the ping", data, msg.clone().into_bytes());
        check_eq("ping comes from a", from, aaddr);
        expect_ok("echo send_to", b.send_to(msg.as_bytes(), from));
        let (data, from) = recv("a recv_from", &a);
        check_eq("a receives the echo", data, msg.into_bytes());
        check_eq("echo comes from b", from, baddr);
    }
}

/// After `a.connect(b)`, `a` only receives from `b` and `send` (no address) goes to `b`.
fn connect_filters() {
    let a = socket("bind a", "127.0.0.1:0");
    let b = socket("bind b", "127.0.0.1:0");
    let c = socket("bind c", "127.0.0.1:0");
    let aaddr = expect_ok("a local_addr", a.local_addr());
    let baddr = expect_ok("b local_addr", b.local_addr());
    expect_ok("connect a to b", a.connect(baddr));
    check_eq("peer_addr", expect_ok("peer_addr", a.peer_addr()), baddr);
    expect_ok("send (connected)", a.send(b"to b"));
    let (data, from) = recv("b recv", &b);
    check_eq("b receives a's datagram", data, b"to b".to_vec());
    check_eq("from a", from, aaddr);

    expect_ok("c sends to a", c.send_to(b"from c", aaddr));
    expect_ok("b sends to a", b.send_to(b"from b", aaddr));
    let mut buf = [0u8; 64];
    let n = retry_nb("a recv (connected)", Deadline::secs(10), || {
        a.recv(&mut buf)
    });
    check_eq(
        "connected socket only receives from its peer",
        &buf[..n],
        &b"from b"[..],
    );
}
