//! std-loopback-bench: TCP over the instance's own loopback, both ends in this one guest:
//! bulk throughput (non-blocking writes and reads taking turns) and one-byte round trips.
//! Prints `bulk: … MB/s` and `round trips: … /s` by the guest's monotonic clock.
//!
//! Usage: `std-loopback-bench [MEGABYTES] [ROUND_TRIPS]` (defaults 64 and 20000).

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mb: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(64);
    let rounds: u32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local address");
    let mut client = TcpStream::connect(addr).expect("connect");
    let (mut server, _) = listener.accept().expect("accept");

    // Bulk: the client writes what fits, the server reads what is there, in turns.
    client.set_nonblocking(true).expect("non-blocking");
    server.set_nonblocking(true).expect("non-blocking");
    let total = mb << 20;
    let chunk = vec![7u8; 64 * 1024];
    let mut buf = vec![0u8; 64 * 1024];
    let (mut sent, mut got) = (0usize, 0usize);
    let started = Instant::now();
    // Bounded: every turn moves bytes, or the loop gives up.
    let mut idle_turns = 0u32;
    while got < total && idle_turns < 1_000_000 {
        let mut moved = false;
        if sent < total {
            match client.write(&chunk[..chunk.len().min(total - sent)]) {
                Ok(n) => {
                    sent += n;
                    moved = n > 0;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("write: {e}"),
            }
        }
        match server.read(&mut buf) {
            Ok(0) => panic!("the stream ended early"),
            Ok(n) => {
                got += n;
                moved = true;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => panic!("read: {e}"),
        }
        idle_turns = if moved { 0 } else { idle_turns + 1 };
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "bulk: {mb} MB in {secs:.3} s: {:.1} MB/s",
        got as f64 / (1 << 20) as f64 / secs
    );

    // Round trips: one byte there and back, blocking (the other end has always acted first).
    client.set_nonblocking(false).expect("blocking");
    server.set_nonblocking(false).expect("blocking");
    client.set_nodelay(true).ok();
    server.set_nodelay(true).ok();
    let mut byte = [0u8; 1];
    let started = Instant::now();
    for _ in 0..rounds {
        client.write_all(b"x").expect("ping");
        server.read_exact(&mut byte).expect("ping arrives");
        server.write_all(&byte).expect("pong");
        client.read_exact(&mut byte).expect("pong arrives");
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "round trips: {rounds} in {secs:.3} s: {:.0} /s",
        f64::from(rounds) / secs
    );
}
