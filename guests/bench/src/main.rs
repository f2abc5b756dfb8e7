//! bench-guest: the workloads that `wasock-bench` measures, as one ordinary `std::net` program.
//!
//! The same source is built for `wasm32-wasip2` (run on wasock and on `wasmtime-wasi`) and for
//! the host (run natively), so the three columns of a benchmark run the same code.
//!
//! Usage: `bench-guest WORKLOAD ARGS...`, one of
//!
//! | workload | arguments | work unit |
//! |---|---|---|
//! | `start` | | prints `started` and exits |
//! | `tcp-send` | `ADDR BYTES` | a byte written to a sink that answers with its count |
//! | `tcp-recv` | `ADDR BYTES` | a byte read from a source that sends what was asked |
//! | `tcp-rr` | `ADDR COUNT` | a 64-byte request and its 64-byte echo |
//! | `tcp-churn` | `ADDR COUNT` | connect, send 1 KiB, read the 1 KiB echo, close |
//! | `udp-send` | `ADDR COUNT` | a 64-byte datagram sent with `send_to` |
//! | `lookup` | `HOST COUNT` | one `(HOST, 80).to_socket_addrs()` |
//!
//! Each workload does its set-up (connect, bind), then the timed loop of `COUNT` (or `BYTES`)
//! units, then prints one line: `BENCH units=N ns=T` and workload-specific `key=value` pairs.
//! With a count of 0 it does everything but the loop: the harness subtracts that run's CPU
//! time. Every loop also stops at [`DEADLINE`]; the report says how many units were done.
//! Errors go to stderr with exit status 1.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs, UdpSocket};
use std::time::{Duration, Instant};

/// No timed loop runs longer than this.
const DEADLINE: Duration = Duration::from_secs(120);
/// How long one blocking read may wait for the peer.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Bulk transfers move data in chunks of this size.
const CHUNK: usize = 64 * 1024;
/// Size of a request/response message and of a datagram.
const SMALL: usize = 64;
/// Size of the message exchanged on each churned connection.
const CHURN_MSG: usize = 1024;
/// The datagram that tells the UDP sink the run is over.
const UDP_END: &[u8] = b"END";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let outcome = match args.as_slice() {
        ["start"] => {
            println!("started");
            return;
        }
        ["tcp-send", addr, n] => count(n).and_then(|n| tcp_send(addr, n)),
        ["tcp-recv", addr, n] => count(n).and_then(|n| tcp_recv(addr, n)),
        ["tcp-rr", addr, n] => count(n).and_then(|n| tcp_rr(addr, n)),
        ["tcp-churn", addr, n] => count(n).and_then(|n| tcp_churn(addr, n)),
        ["udp-send", addr, n] => count(n).and_then(|n| udp_send(addr, n)),
        ["lookup", host, n] => count(n).and_then(|n| lookup(host, n)),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown workload or wrong arguments: {args:?}"),
        )),
    };
    match outcome {
        Ok(report) => println!("{report}"),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            eprintln!("bench-guest: no data within the {READ_TIMEOUT:?} read timeout ({e})");
            std::process::exit(1);
        }
        Err(e) => {
            eprintln!("bench-guest: {e}");
            std::process::exit(1);
        }
    }
}

fn count(s: &str) -> io::Result<u64> {
    s.parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("`{s}`: {e}")))
}

fn report(units: u64, elapsed: Duration) -> String {
    format!("BENCH units={units} ns={}", elapsed.as_nanos())
}

fn connect(addr: &str) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    Ok(stream)
}

/// Writes `bytes` bytes, half-closes, and waits for the sink's 8-byte count of what it got.
fn tcp_send(addr: &str, bytes: u64) -> io::Result<String> {
    let mut stream = connect(addr)?;
    let chunk = vec![0xA5u8; CHUNK];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < bytes && start.elapsed() < DEADLINE {
        let n = (bytes - sent).min(CHUNK as u64) as usize;
        stream.write_all(&chunk[..n])?;
        sent += n as u64;
    }
    stream.shutdown(Shutdown::Write)?;
    let mut ack = [0u8; 8];
    stream.read_exact(&mut ack)?;
    let elapsed = start.elapsed();
    let acked = u64::from_le_bytes(ack);
    if acked != sent {
        return Err(io::Error::other(format!(
            "sent {sent} bytes, the sink counted {acked}"
        )));
    }
    Ok(report(sent, elapsed))
}

/// Asks the source for `bytes` bytes (an 8-byte request) and reads until end-of-stream.
fn tcp_recv(addr: &str, bytes: u64) -> io::Result<String> {
    let mut stream = connect(addr)?;
    let mut buf = vec![0u8; CHUNK];
    let start = Instant::now();
    stream.write_all(&bytes.to_le_bytes())?;
    let mut got = 0u64;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        got += n as u64;
        if start.elapsed() >= DEADLINE {
            break;
        }
    }
    let elapsed = start.elapsed();
    Ok(report(got, elapsed))
}

/// `count` round trips of 64 bytes on one connection; reports p50 and p99 latency.
fn tcp_rr(addr: &str, count: u64) -> io::Result<String> {
    let mut stream = connect(addr)?;
    let request = [0x5Au8; SMALL];
    let mut response = [0u8; SMALL];
    let mut latencies: Vec<u64> = Vec::with_capacity(count.min(10_000_000) as usize);
    let start = Instant::now();
    while (latencies.len() as u64) < count && start.elapsed() < DEADLINE {
        let t0 = Instant::now();
        stream.write_all(&request)?;
        stream.read_exact(&mut response)?;
        latencies.push(t0.elapsed().as_nanos() as u64);
    }
    let elapsed = start.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| -> u64 {
        if latencies.is_empty() {
            return 0;
        }
        let i = ((latencies.len() - 1) as f64 * p).round() as usize;
        latencies[i]
    };
    Ok(format!(
        "{} p50_ns={} p99_ns={}",
        report(latencies.len() as u64, elapsed),
        pct(0.50),
        pct(0.99)
    ))
}

/// `count` connections, each: connect, write 1 KiB, read the 1 KiB echo, close.
fn tcp_churn(addr: &str, count: u64) -> io::Result<String> {
    let message = [0x3Cu8; CHURN_MSG];
    let mut echo = [0u8; CHURN_MSG];
    let start = Instant::now();
    let mut done = 0u64;
    while done < count && start.elapsed() < DEADLINE {
        let mut stream = connect(addr)?;
        stream.write_all(&message)?;
        stream.read_exact(&mut echo)?;
        drop(stream);
        done += 1;
    }
    Ok(report(done, start.elapsed()))
}

/// `count` 64-byte datagrams with `send_to`, one per call, then a few end markers.
fn udp_send(addr: &str, count: u64) -> io::Result<String> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    let mut datagram = [0x77u8; SMALL];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < count && start.elapsed() < DEADLINE {
        datagram[..8].copy_from_slice(&sent.to_le_bytes());
        socket.send_to(&datagram, addr)?;
        sent += 1;
    }
    let elapsed = start.elapsed();
    // The marker may be lost like any datagram: repeat it (the sink also stops when idle).
    // A failed marker only makes the sink wait for its idle timeout, so errors are ignored.
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(20));
        let _ = socket.send_to(UDP_END, addr);
    }
    Ok(report(sent, elapsed))
}

/// `count` lookups of `host` through std's `to_socket_addrs`.
fn lookup(host: &str, count: u64) -> io::Result<String> {
    let start = Instant::now();
    let mut done = 0u64;
    let mut addresses = 0u64;
    while done < count && start.elapsed() < DEADLINE {
        let found = (host, 80).to_socket_addrs()?.count();
        if found == 0 {
            return Err(io::Error::other(format!("`{host}` resolved to nothing")));
        }
        addresses += found as u64;
        done += 1;
    }
    let elapsed = start.elapsed();
    Ok(format!("{} addresses={addresses}", report(done, elapsed)))
}
