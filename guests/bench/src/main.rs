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
//! | `tcp-sink` | `COUNT` | a byte read from one `tcp-send` peer; prints `LISTEN ADDR` first |
//! | `hold-connect` | `CTRL ADDR COUNT` | a connection opened to `ADDR` and held idle |
//! | `hold-accept` | `CTRL COUNT` | a connection accepted and held idle |
//!
//! `tcp-sink` is the receiving end of `tcp-send` when two copies of this program talk to each
//! other (`COUNT` only bounds what it accepts to read). The `hold-*` workloads talk to the harness
//! over a control connection to `CTRL`, one line each way per step: the guest sends
//! `ready PID PORT` (PID 0 on wasm; PORT of its listener, 0 for `hold-connect`) and waits for
//! `go`; it opens or accepts `COUNT` connections (`hold-accept` reports `accepted K` every
//! [`HOLD_PROGRESS`] connections, which the harness passes on to the dialing peer); it sends
//! `held N NS` and waits for `done` while the harness measures memory; then it closes everything.
//! Two helpers run natively as the peers of these workloads, holding their ends until stdin
//! closes (then they close them and print `closed`): `hold-listen COUNT` (prints `LISTEN ADDR`,
//! accepts) and `hold-dial ADDR COUNT` (connects, at most [`HOLD_WINDOW`] ahead of the
//! `accepted K` lines read from stdin).
//!
//! Each workload does its set-up (connect, bind), then the timed loop of `COUNT` (or `BYTES`)
//! units, then prints one line: `BENCH units=N ns=T` and workload-specific `key=value` pairs.
//! With a count of 0 it does everything but the loop: the harness subtracts that run's CPU
//! time. Every loop also stops at [`DEADLINE`]; the report says how many units were done.
//! Errors go to stderr with exit status 1.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs, UdpSocket};
use std::sync::mpsc;
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
/// `hold-accept` reports its progress to the harness every this many connections.
const HOLD_PROGRESS: u64 = 32;
/// `hold-dial` connects at most this many connections ahead of those reported accepted, so
/// that the guest's accept queue (128 on wasm) never overflows into SYN retransmits.
const HOLD_WINDOW: u64 = 96;
/// How long a `hold-*` peer holds its connections at most, waiting for stdin to close.
const HOLD_MAX: Duration = Duration::from_secs(300);

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
        ["tcp-sink", n] => count(n).and_then(tcp_sink),
        ["hold-connect", ctrl, addr, n] => count(n).and_then(|n| hold_connect(ctrl, addr, n)),
        ["hold-accept", ctrl, n] => count(n).and_then(|n| hold_accept(ctrl, n)),
        ["hold-listen", n] => count(n).and_then(hold_listen),
        ["hold-dial", addr, n] => count(n).and_then(|n| hold_dial(addr, n)),
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

/// Listens on 127.0.0.1:0, prints `LISTEN ADDR`, accepts one connection and reads it to
/// end-of-stream (more than `max` bytes is an error), then answers with the byte count as the
/// native sink of `tcp-send` does. Time: from the accept to end-of-stream.
fn tcp_sink(max: u64) -> io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    println!("LISTEN {}", listener.local_addr()?);
    io::stdout().flush()?;
    let (mut stream, _) = listener.accept()?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut buf = vec![0u8; CHUNK];
    let start = Instant::now();
    let mut total = 0u64;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > max {
            return Err(io::Error::other(format!("more than {max} bytes")));
        }
        if start.elapsed() >= DEADLINE {
            return Err(io::Error::other(format!(
                "no end-of-stream within {DEADLINE:?}"
            )));
        }
    }
    let elapsed = start.elapsed();
    stream.write_all(&total.to_le_bytes())?;
    Ok(report(total, elapsed))
}

/// The process id the harness reads memory figures of (0 on WASI, which has none: the guest
/// then runs inside the harness).
fn pid() -> u32 {
    if cfg!(target_os = "wasi") {
        0
    } else {
        std::process::id()
    }
}

/// Sends one line of the control protocol.
fn send_line(control: &mut TcpStream, line: &str) -> io::Result<()> {
    control.write_all(format!("{line}\n").as_bytes())
}

/// Reads one line of the control protocol (byte by byte: the harness sends one line at a time
/// and waits) and checks that it is `want`.
fn expect_line(control: &mut TcpStream, want: &str) -> io::Result<()> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() <= want.len() {
        if control.read(&mut byte)? == 0 {
            return Err(io::Error::other("the control connection closed"));
        }
        if byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
    }
    if line != want.as_bytes() {
        return Err(io::Error::other(format!(
            "control: got {:?}, want {want:?}",
            String::from_utf8_lossy(&line)
        )));
    }
    Ok(())
}

/// Opens `count` connections to `addr` one after another and holds them idle while the harness
/// measures (see the control protocol in the crate documentation). Time: the connect loop.
fn hold_connect(ctrl: &str, addr: &str, count: u64) -> io::Result<String> {
    let mut control = connect(ctrl)?;
    send_line(&mut control, &format!("ready {} 0", pid()))?;
    expect_line(&mut control, "go")?;
    let mut held = Vec::with_capacity(count.min(1 << 20) as usize);
    let start = Instant::now();
    while (held.len() as u64) < count && start.elapsed() < DEADLINE {
        held.push(TcpStream::connect(addr)?);
    }
    let elapsed = start.elapsed();
    finish_hold(control, held, elapsed)
}

/// Accepts `count` connections on a listener of its own and holds them idle while the harness
/// measures. Time: from `go` to the last accept.
fn hold_accept(ctrl: &str, count: u64) -> io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let mut control = connect(ctrl)?;
    send_line(&mut control, &format!("ready {} {port}", pid()))?;
    expect_line(&mut control, "go")?;
    let mut held = Vec::with_capacity(count.min(1 << 20) as usize);
    let start = Instant::now();
    while (held.len() as u64) < count && start.elapsed() < DEADLINE {
        held.push(listener.accept()?.0);
        let n = held.len() as u64;
        if n.is_multiple_of(HOLD_PROGRESS) {
            send_line(&mut control, &format!("accepted {n}"))?;
        }
    }
    let elapsed = start.elapsed();
    finish_hold(control, held, elapsed)
}

/// Reports the connections held, waits for the harness's `done`, closes them.
fn finish_hold(
    mut control: TcpStream,
    held: Vec<TcpStream>,
    elapsed: Duration,
) -> io::Result<String> {
    let n = held.len() as u64;
    send_line(&mut control, &format!("held {n} {}", elapsed.as_nanos()))?;
    expect_line(&mut control, "done")?;
    drop(held);
    Ok(report(n, elapsed))
}

/// Stdin's lines on a channel, read by a thread; the channel disconnects at end of input.
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits until stdin closes (or [`HOLD_MAX`]), ignoring what it says; then closes `held` and
/// prints `closed`.
fn release_when_stdin_closes(
    lines: &mpsc::Receiver<String>,
    held: Vec<TcpStream>,
) -> io::Result<()> {
    let until = Instant::now() + HOLD_MAX;
    while lines
        .recv_timeout(until.saturating_duration_since(Instant::now()))
        .is_ok()
    {}
    drop(held);
    println!("closed");
    io::stdout().flush()
}

/// Native peer of `hold-connect`: prints `LISTEN ADDR`, accepts up to `count` connections and
/// holds them until stdin closes; then closes them and prints `closed`.
fn hold_listen(count: u64) -> io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    widen_backlog(&listener);
    println!("LISTEN {}", listener.local_addr()?);
    io::stdout().flush()?;
    let lines = stdin_lines();
    let mut held = Vec::with_capacity(count.min(1 << 20) as usize);
    let start = Instant::now();
    while (held.len() as u64) < count && start.elapsed() < HOLD_MAX {
        held.push(listener.accept()?.0);
    }
    let elapsed = start.elapsed();
    let n = held.len() as u64;
    release_when_stdin_closes(&lines, held)?;
    Ok(report(n, elapsed))
}

/// Raises a listener's backlog from std's 128 to `SOMAXCONN`'s usual 4096 (Linux lets
/// `listen(2)` be called again): a sequential dialer outruns an acceptor that loses its CPU for
/// a moment, and every connection past the backlog costs the dialer a 1 s SYN retransmit.
#[cfg(unix)]
fn widen_backlog(listener: &TcpListener) {
    use std::os::fd::AsRawFd;
    unsafe extern "C" {
        fn listen(fd: i32, backlog: i32) -> i32;
    }
    // SAFETY: `listen(2)` on a socket we own; on a listening socket it only changes the backlog.
    // Failure leaves std's backlog, which shows up as slow connects.
    unsafe { listen(listener.as_raw_fd(), 4096) };
}

#[cfg(not(unix))]
fn widen_backlog(_: &TcpListener) {}

/// Native peer of `hold-accept`: opens `count` connections to `addr`, never more than
/// [`HOLD_WINDOW`] ahead of the `accepted K` lines on stdin, and holds them until stdin closes;
/// then closes them and prints `closed`.
fn hold_dial(addr: &str, count: u64) -> io::Result<String> {
    let lines = stdin_lines();
    let mut held = Vec::with_capacity(count.min(1 << 20) as usize);
    let mut accepted = 0u64;
    let start = Instant::now();
    while (held.len() as u64) < count && start.elapsed() < HOLD_MAX {
        while held.len() as u64 >= accepted + HOLD_WINDOW {
            let line = lines
                .recv_timeout(READ_TIMEOUT)
                .map_err(|_| io::Error::other("no progress from the guest"))?;
            if let Some(k) = line.strip_prefix("accepted ") {
                accepted = accepted.max(self::count(k.trim())?);
            }
        }
        held.push(TcpStream::connect(addr)?);
    }
    let elapsed = start.elapsed();
    let n = held.len() as u64;
    release_when_stdin_closes(&lines, held)?;
    Ok(report(n, elapsed))
}
