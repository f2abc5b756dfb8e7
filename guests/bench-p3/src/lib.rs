//! bench-p3: the TCP workloads of `guests/bench` (`bench-guest`) on `wasi:sockets@0.3.0`, for
//! `wasock-bench`'s `p3-tcp-*` workloads.
//!
//! Usage: `bench-p3 WORKLOAD ADDR N`, one of `tcp-send ADDR BYTES`, `tcp-recv ADDR BYTES`,
//! `tcp-rr ADDR COUNT`, `tcp-churn ADDR COUNT`. Each speaks the same wire protocol as
//! `bench-guest`'s workload of that name (so the harness's native peers serve both), does its
//! set-up, then the timed loop, and prints the same `BENCH units=N ns=T [key=value...]` line;
//! with a count of 0 it does everything but the loop. Errors go to stderr with exit status 1.
//!
//! The bytes move on 0.3 streams: `send` is handed a `stream<u8>` the guest writes to, whole
//! 64 KiB buffers at a time, and `receive`'s stream is read into a 64 KiB buffer (bulk) or a
//! buffer of the message's size. Buffers are reused, never refilled: a read appends to the
//! buffer's spare capacity. The toolchain and the entry point (`wasi:cli/run@0.3.0`, a cdylib)
//! are explained in guests/raw-p3/src/lib.rs.
//!
//! Bounds: every loop stops at [`DEADLINE`] (the report says how many units were done), and
//! the whole run fails after [`RUN_LIMIT_MS`], one timer for the run rather than one per read
//! (`bench-guest` sets a 30 s read timeout); the peers give up after 30 s of silence too.

use raw_p3::{
    Either, ErrorCode, FutureReader, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress,
    Ipv6SocketAddress, StreamReader, StreamResult, StreamWriter, TcpSocket, byte_stream, race,
    sleep_ms,
};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// No timed loop runs longer than this (as `bench-guest`'s).
const DEADLINE: Duration = Duration::from_secs(120);
/// The whole run fails after this long: the loop's deadline plus `bench-guest`'s read timeout.
const RUN_LIMIT_MS: u64 = 150_000;
/// Bulk transfers move data in buffers of this size.
const CHUNK: usize = 64 * 1024;
/// Size of a request/response message.
const SMALL: usize = 64;
/// Size of the message exchanged on each churned connection.
const CHURN_MSG: usize = 1024;

type Result<T> = std::result::Result<T, String>;

/// How `send` or `receive` ended.
type Ending = FutureReader<std::result::Result<(), ErrorCode>>;

/// The `wasi:cli/run@0.3.0` entry point.
struct Run;

impl raw_p3::exports::wasi::cli::run::Guest for Run {
    async fn run() -> std::result::Result<(), ()> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let outcome = match race(workload(&args), sleep_ms(RUN_LIMIT_MS)).await {
            Either::Left(outcome) => outcome,
            Either::Right(()) => Err(format!("the run took longer than {RUN_LIMIT_MS} ms")),
        };
        match outcome {
            Ok(report) => {
                println!("{report}");
                Ok(())
            }
            Err(e) => {
                eprintln!("bench-p3: {e}");
                Err(())
            }
        }
    }
}

raw_p3::export!(Run with_types_in raw_p3);

async fn workload(args: &[String]) -> Result<String> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["tcp-send", addr, n] => tcp_send(addr, count(n)?).await,
        ["tcp-recv", addr, n] => tcp_recv(addr, count(n)?).await,
        ["tcp-rr", addr, n] => tcp_rr(addr, count(n)?).await,
        ["tcp-churn", addr, n] => tcp_churn(addr, count(n)?).await,
        _ => Err(format!("unknown workload or wrong arguments: {args:?}")),
    }
}

fn count(s: &str) -> Result<u64> {
    s.parse().map_err(|e| format!("`{s}`: {e}"))
}

fn report(units: u64, elapsed: Duration) -> String {
    format!("BENCH units={units} ns={}", elapsed.as_nanos())
}

/// `ADDR` (`IP:PORT`) as a WASI socket address.
fn socket_address(addr: &str) -> Result<IpSocketAddress> {
    let addr: SocketAddr = addr
        .parse()
        .map_err(|e| format!("`{addr}` is not IP:PORT: {e}"))?;
    Ok(match addr {
        SocketAddr::V4(a) => {
            let [a0, a1, a2, a3] = a.ip().octets();
            IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port: a.port(),
                address: (a0, a1, a2, a3),
            })
        }
        SocketAddr::V6(a) => {
            let [s0, s1, s2, s3, s4, s5, s6, s7] = a.ip().segments();
            IpSocketAddress::Ipv6(Ipv6SocketAddress {
                port: a.port(),
                flow_info: a.flowinfo(),
                address: (s0, s1, s2, s3, s4, s5, s6, s7),
                scope_id: a.scope_id(),
            })
        }
    })
}

/// A connection: the socket, the stream `send` consumes and the stream `receive` produces,
/// with the futures that tell how each ended.
struct Conn {
    /// `None` once the sending half is shut down.
    tx: Option<StreamWriter<u8>>,
    /// `None` once awaited.
    sent: Option<Ending>,
    rx: StreamReader<u8>,
    /// `None` once awaited.
    received: Option<Ending>,
    /// Dropped last: the streams are the connection's halves.
    _socket: TcpSocket,
}

impl Conn {
    /// Connects to `addr` and starts sending and receiving.
    async fn open(addr: &IpSocketAddress) -> Result<Conn> {
        let family = match addr {
            IpSocketAddress::Ipv4(_) => IpAddressFamily::Ipv4,
            IpSocketAddress::Ipv6(_) => IpAddressFamily::Ipv6,
        };
        let socket = TcpSocket::create(family).map_err(|e| format!("create: {e:?}"))?;
        socket
            .connect(*addr)
            .await
            .map_err(|e| format!("connect: {e:?}"))?;
        let (tx, data) = byte_stream();
        let sent = socket.send(data);
        let (rx, received) = socket.receive();
        Ok(Conn {
            tx: Some(tx),
            sent: Some(sent),
            rx,
            received: Some(received),
            _socket: socket,
        })
    }

    /// Writes all of `buf` and gives the buffer back (empty, its capacity kept).
    async fn write_all(&mut self, buf: Vec<u8>) -> Result<Vec<u8>> {
        let len = buf.len();
        let tx = self.tx.as_mut().ok_or("write after shutdown")?;
        let left = tx.write_all(buf).await;
        if left.is_empty() {
            return Ok(left);
        }
        // The host stopped taking bytes: the send future says why.
        let why = match self.sent.take() {
            Some(sent) => format!("{:?}", sent.await),
            None => "ended".into(),
        };
        Err(format!(
            "the send stream took {} of {len} bytes; send: {why}",
            len - left.len()
        ))
    }

    /// One read appended to `buf`'s spare capacity: the bytes read (0 at times), or `None` at
    /// the end of the stream (the peer's FIN).
    async fn read(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        let before = buf.len();
        let (result, filled) = self.rx.read(std::mem::take(buf)).await;
        *buf = filled;
        match result {
            StreamResult::Complete(_) => Ok(Some(buf.len() - before)),
            StreamResult::Dropped => match self.received.take() {
                Some(received) => match received.await {
                    Ok(()) => Ok(None),
                    Err(e) => Err(format!("receive: {e:?}")),
                },
                None => Ok(None),
            },
            StreamResult::Cancelled => Err("a read was cancelled".into()),
        }
    }

    /// Replaces `buf`'s contents with exactly the next `n` bytes (the peer never sends more
    /// before it is answered, so a buffer with more room than `n` does not over-read).
    async fn read_exact(&mut self, buf: &mut Vec<u8>, n: usize) -> Result<()> {
        buf.clear();
        buf.reserve_exact(n);
        while buf.len() < n {
            if self.read(buf).await?.is_none() {
                return Err(format!("end of stream after {} of {n} bytes", buf.len()));
            }
        }
        if buf.len() > n {
            return Err(format!("the peer sent {} bytes, not {n}", buf.len()));
        }
        Ok(())
    }

    /// Ends the sending half (the FIN, once the host has written everything) and waits for
    /// `send` to finish.
    async fn shutdown_write(&mut self) -> Result<()> {
        drop(self.tx.take());
        match self.sent.take() {
            Some(sent) => sent.await.map_err(|e| format!("send: {e:?}")),
            None => Ok(()),
        }
    }
}

/// Writes `bytes` bytes, half-closes, and waits for the sink's 8-byte count of what it got.
async fn tcp_send(addr: &str, bytes: u64) -> Result<String> {
    let mut conn = Conn::open(&socket_address(addr)?).await?;
    let mut chunk = vec![0xA5u8; CHUNK];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < bytes && start.elapsed() < DEADLINE {
        let n = (bytes - sent).min(CHUNK as u64) as usize;
        chunk.truncate(n);
        chunk = conn.write_all(chunk).await?;
        // SAFETY: `write_all` hands back the same allocation, emptied by moving its length to 0;
        // it only read the bytes, so all `n <= CHUNK` of them are still the initialized bytes
        // written by `vec!` above. Setting the length back reuses them without refilling.
        unsafe { chunk.set_len(n) };
        sent += n as u64;
    }
    conn.shutdown_write().await?;
    let mut ack = Vec::new();
    conn.read_exact(&mut ack, 8).await?;
    let elapsed = start.elapsed();
    let acked = u64::from_le_bytes(ack[..].try_into().expect("8 bytes"));
    if acked != sent {
        return Err(format!("sent {sent} bytes, the sink counted {acked}"));
    }
    Ok(report(sent, elapsed))
}

/// Asks the source for `bytes` bytes (an 8-byte request) and reads until end-of-stream.
async fn tcp_recv(addr: &str, bytes: u64) -> Result<String> {
    let mut conn = Conn::open(&socket_address(addr)?).await?;
    let mut buf = Vec::with_capacity(CHUNK);
    let start = Instant::now();
    conn.write_all(bytes.to_le_bytes().to_vec()).await?;
    let mut got = 0u64;
    loop {
        buf.clear();
        let Some(n) = conn.read(&mut buf).await? else {
            break;
        };
        got += n as u64;
        if start.elapsed() >= DEADLINE {
            break;
        }
    }
    let elapsed = start.elapsed();
    Ok(report(got, elapsed))
}

/// `count` round trips of 64 bytes on one connection; reports p50 and p99 latency.
async fn tcp_rr(addr: &str, count: u64) -> Result<String> {
    let mut conn = Conn::open(&socket_address(addr)?).await?;
    let mut request = Vec::with_capacity(SMALL);
    let mut response = Vec::with_capacity(SMALL);
    let mut latencies: Vec<u64> = Vec::with_capacity(count.min(10_000_000) as usize);
    let start = Instant::now();
    while (latencies.len() as u64) < count && start.elapsed() < DEADLINE {
        let t0 = Instant::now();
        request.extend_from_slice(&[0x5Au8; SMALL]);
        request = conn.write_all(request).await?;
        conn.read_exact(&mut response, SMALL).await?;
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
async fn tcp_churn(addr: &str, count: u64) -> Result<String> {
    let addr = socket_address(addr)?;
    let mut message = Vec::with_capacity(CHURN_MSG);
    let mut echo = Vec::with_capacity(CHURN_MSG);
    let start = Instant::now();
    let mut done = 0u64;
    while done < count && start.elapsed() < DEADLINE {
        let mut conn = Conn::open(&addr).await?;
        message.extend_from_slice(&[0x3Cu8; CHURN_MSG]);
        message = conn.write_all(message).await?;
        conn.read_exact(&mut echo, CHURN_MSG).await?;
        // Closes: the send stream's end is the FIN, then the socket goes.
        drop(conn);
        done += 1;
    }
    Ok(report(done, start.elapsed()))
}
