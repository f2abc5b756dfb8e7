//! std-udp-ping: a UDP echo server, or a client that sends COUNT pings, each once, and
//! expects every reply within a second (no retries: lost datagrams fail it).
//!
//! Usage: `std-udp-ping server ADDRESS` (echoes forever) or
//! `std-udp-ping client ADDRESS COUNT`. The client exits 0 when every ping came back.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match (args.get(1).map(String::as_str), args.get(2)) {
        (Some("server"), Some(addr)) => server(addr),
        (Some("client"), Some(addr)) => {
            let count = args.get(3).and_then(|c| c.parse().ok()).unwrap_or(10);
            std::process::exit(client(addr, count));
        }
        _ => {
            eprintln!("usage: std-udp-ping server ADDRESS | client ADDRESS COUNT");
            std::process::exit(2);
        }
    }
}

fn server(addr: &str) {
    let sock = UdpSocket::bind(addr).expect("bind");
    println!("echoing on {}", sock.local_addr().expect("local address"));
    let mut buf = [0u8; 1500];
    loop {
        let (n, from) = sock.recv_from(&mut buf).expect("receive");
        let _ = sock.send_to(&buf[..n], from);
    }
}

fn client(addr: &str, count: u32) -> i32 {
    let sock = UdpSocket::bind("0.0.0.0:0").expect("bind");
    sock.connect(addr).expect("connect");
    sock.set_nonblocking(true).expect("non-blocking");
    let mut buf = [0u8; 64];
    for i in 0..count {
        let ping = format!("ping {i}");
        sock.send(ping.as_bytes()).expect("send");
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            match sock.recv(&mut buf) {
                Ok(n) if &buf[..n] == ping.as_bytes() => break,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        println!("{ping}: no reply");
                        return 1;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => {
                    println!("{ping}: {e}");
                    return 1;
                }
            }
        }
    }
    println!("all {count} pings answered");
    0
}
