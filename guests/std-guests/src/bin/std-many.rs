//! std-many: one single-threaded program holds many concurrent TCP connections to its
//! own listener. Listener and streams are non-blocking and serviced in a bounded loop:
//! every client sends a line, the server side echoes it, every client checks its echo.
//!
//! Usage: `std-many [CONNECTIONS]` (default 50).

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use guest_support::{Deadline, check_eq, expect_ok, fail, finish, start};

struct Conn {
    client: TcpStream,
    expected: Vec<u8>,
    echoed: Vec<u8>,
}

struct Served {
    stream: TcpStream,
    pending: Vec<u8>,
    received: usize,
    sent: usize,
}

fn main() {
    start("std-many");
    let count: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().unwrap_or_else(|e| fail("arguments", e)))
        .unwrap_or(50);

    let listener = expect_ok("bind listener", TcpListener::bind("127.0.0.1:0"));
    let addr = expect_ok("listener local_addr", listener.local_addr());
    expect_ok("listener set_nonblocking", listener.set_nonblocking(true));

    let mut conns = Vec::new();
    let mut served: Vec<Served> = Vec::new();
    for i in 0..count {
        let client = expect_ok(
            "connect",
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)),
        );
        expect_ok("client set_nonblocking", client.set_nonblocking(true));
        conns.push(Conn {
            client,
            expected: format!("hello from connection {i}\n").into_bytes(),
            echoed: Vec::new(),
        });
        accept_pending(&listener, &mut served);
    }

    // Every client writes its line (small enough to fit the socket buffer at once).
    for c in &mut conns {
        let n = expect_ok("client write", c.client.write(&c.expected));
        check_eq("client wrote the whole line", n, c.expected.len());
    }

    let deadline = Deadline::secs(30);
    let mut rounds = 0u32;
    loop {
        rounds += 1;
        accept_pending(&listener, &mut served);
        for s in &mut served {
            pump_echo(s);
        }
        let mut done = 0;
        for c in &mut conns {
            read_available(&mut c.client, &mut c.echoed);
            if c.echoed.len() >= c.expected.len() {
                done += 1;
            }
        }
        if done == count {
            break;
        }
        if deadline.expired() || rounds > 1_000_000 {
            let line = conns[0].expected.len();
            let got_line = served.iter().filter(|s| s.received >= line).count();
            let echoed = served.iter().filter(|s| s.sent >= line).count();
            fail(
                "all connections echoed",
                format!(
                    "{done} of {count} echoes complete after {rounds} rounds: {} accepted, \
                     {got_line} server sides received their line, {echoed} echoed it back",
                    served.len()
                ),
            );
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    check_eq("accepted every connection", served.len(), count);
    for c in &conns {
        check_eq("echo matches", &c.echoed, &c.expected);
    }
    // All of them were open at the same time: each still has a distinct local port.
    let mut ports: Vec<u16> = conns
        .iter()
        .map(|c| expect_ok("client local_addr", c.client.local_addr()).port())
        .collect();
    ports.sort();
    ports.dedup();
    check_eq("distinct client ports", ports.len(), count);
    finish();
}

/// Accepts every connection that is pending right now.
fn accept_pending(listener: &TcpListener, served: &mut Vec<Served>) {
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                expect_ok("accepted set_nonblocking", stream.set_nonblocking(true));
                served.push(Served {
                    stream,
                    pending: Vec::new(),
                    received: 0,
                    sent: 0,
                });
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) => fail("accept", e),
        }
    }
}

/// Reads what the server side has and writes it back.
fn pump_echo(s: &mut Served) {
    let before = s.pending.len();
    read_available(&mut s.stream, &mut s.pending);
    s.received += s.pending.len() - before;
    while !s.pending.is_empty() {
        match s.stream.write(&s.pending) {
            Ok(n) => {
                s.pending.drain(..n);
                s.sent += n;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) => fail("server write", e),
        }
    }
}

/// Appends whatever can be read without blocking.
fn read_available(stream: &mut TcpStream, into: &mut Vec<u8>) {
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => into.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) => fail("read", e),
        }
        // A guard, not a counted check: how many reads a message takes is up to timing.
        if into.len() >= 1 << 20 {
            fail("read stays bounded", "too much data");
        }
    }
}
