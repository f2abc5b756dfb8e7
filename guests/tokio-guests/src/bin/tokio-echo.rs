//! tokio-echo: a tokio application as one is written for a server: `#[tokio::main]` on the
//! current-thread runtime, a `tokio::net::TcpListener` accept loop with a task per connection,
//! clients as concurrent tasks, `tokio::time` timeouts, a refused connect and a UDP exchange.
//! It runs mio's reactor over wasi-libc's `poll`, so every wait of every task goes through the
//! host's `wasi:io/poll` with the whole set of sockets at once.
//!
//! Usage: `tokio-echo [CONNECTIONS] [ROUNDS]` (default 20 and 4). Each client sends ROUNDS
//! messages of growing size (up to 192 KiB, more than a socket buffer, so that both ends wait
//! on write readiness), reading the echo while it writes; then it shuts down its sending half
//! and reads the server's end of stream. The number of checks does not depend on the arguments.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use guest_support::{check, check_eq, expect_ok, fail, finish, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinSet;
use wasi_libc_fix as _;

/// The whole program's limit: a host that loses a wakeup fails here instead of hanging.
const LIMIT: Duration = Duration::from_secs(60);
/// Message sizes, in turn, for the rounds of each client.
const SIZES: [usize; 6] = [1, 100, 1_500, 16_384, 65_536, 196_608];
/// UDP datagrams sent each way.
const DATAGRAMS: usize = 8;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    start("tokio-echo");
    let mut args = std::env::args().skip(1);
    let connections: usize = arg(args.next(), 20);
    let rounds: usize = arg(args.next(), 4);
    match tokio::time::timeout(LIMIT, run(connections, rounds)).await {
        Ok(()) => finish(),
        Err(_) => fail("the program finishes", format!("not within {LIMIT:?}")),
    }
}

/// `r`'s value, or the guest fails: for the steps repeated per connection or datagram, which
/// are not counted as checks (the totals after them are).
#[track_caller]
fn ok<T, E: std::fmt::Debug>(what: &str, r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| fail(what, format!("{e:?}")))
}

fn arg(value: Option<String>, default: usize) -> usize {
    value.map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|e| fail("arguments", format!("`{v}`: {e}")))
    })
}

async fn run(connections: usize, rounds: usize) {
    let listener = expect_ok("bind 127.0.0.1:0", TcpListener::bind("127.0.0.1:0").await);
    let addr = expect_ok("listener local_addr", listener.local_addr());
    check(
        "the listener is on loopback with a port",
        addr.ip().is_loopback() && addr.port() != 0,
        || format!("{addr}"),
    );

    let server = tokio::spawn(serve(listener, connections));
    let mut clients = JoinSet::new();
    for i in 0..connections {
        clients.spawn(client(addr, i, rounds));
    }
    let mut echoed = 0usize;
    let mut ended = 0usize;
    while let Some(done) = clients.join_next().await {
        let (bytes, eof) = ok("a client task", done);
        echoed += bytes;
        ended += usize::from(eof);
    }
    let want: usize = (0..connections).map(|i| sent_by(i, rounds)).sum();
    check_eq("bytes echoed to the clients, in order", echoed, want);
    check_eq(
        "clients that read the server's end of stream",
        ended,
        connections,
    );
    let (accepted, served) = expect_ok("the server task", server.await);
    check_eq("connections the server accepted", accepted, connections);
    check_eq("bytes the server echoed", served, want);

    refused_connect().await;
    timers().await;
    udp().await;
}

/// Accepts `connections` connections, each echoed by a task of its own until its peer's end
/// of stream; returns how many were accepted and the bytes echoed.
async fn serve(listener: TcpListener, connections: usize) -> (usize, usize) {
    let mut tasks = JoinSet::new();
    for _ in 0..connections {
        let (stream, peer) = ok("accept", listener.accept().await);
        if !peer.ip().is_loopback() {
            fail("accept", format!("peer {peer} is not on loopback"));
        }
        tasks.spawn(echo(stream));
    }
    let mut served = 0;
    while let Some(done) = tasks.join_next().await {
        served += ok("an echo task", done);
    }
    (connections, served)
}

/// Echoes until end of stream, then closes its sending half; returns the bytes echoed.
async fn echo(mut stream: TcpStream) -> usize {
    let mut buf = vec![0u8; 32 * 1024];
    let mut total = 0;
    loop {
        let n = ok("server read", stream.read(&mut buf).await);
        if n == 0 {
            break;
        }
        ok("server write", stream.write_all(&buf[..n]).await);
        total += n;
    }
    ok("server shutdown", stream.shutdown().await);
    total
}

fn sent_by(client: usize, rounds: usize) -> usize {
    (0..rounds).map(|r| SIZES[(client + r) % SIZES.len()]).sum()
}

/// One client: `rounds` messages, each read back while it is written; then its end of stream
/// and the server's. Returns the bytes that came back equal to those sent, and whether the
/// server's end of stream came.
async fn client(addr: SocketAddr, id: usize, rounds: usize) -> (usize, bool) {
    let mut stream = ok("connect", TcpStream::connect(addr).await);
    let mut echoed = 0;
    for round in 0..rounds {
        let size = SIZES[(id + round) % SIZES.len()];
        let message: Vec<u8> = (0..size).map(|i| (i * 31 + id + round) as u8).collect();
        let mut back = vec![0u8; size];
        let (mut reader, mut writer) = stream.split();
        let (wrote, read) = tokio::join!(writer.write_all(&message), reader.read_exact(&mut back));
        ok("client write", wrote);
        ok("client read", read);
        if back != message {
            let at = back.iter().zip(&message).position(|(a, b)| a != b);
            fail(
                "the echo equals the message",
                format!("client {id} round {round}: differs at {at:?}"),
            );
        }
        echoed += size;
    }
    ok("client shutdown", stream.shutdown().await);
    let mut rest = Vec::new();
    let n = ok("client read to end", stream.read_to_end(&mut rest).await);
    (echoed, n == 0)
}

/// A connect to a port nobody listens on is refused.
async fn refused_connect() {
    let closed = {
        let listener = expect_ok(
            "bind a port to close",
            TcpListener::bind("127.0.0.1:0").await,
        );
        expect_ok("its local_addr", listener.local_addr())
    };
    match TcpStream::connect(closed).await {
        Ok(_) => fail("connect to a closed port", "it connected"),
        Err(e) => check_eq(
            "connect to a closed port is refused",
            e.kind(),
            std::io::ErrorKind::ConnectionRefused,
        ),
    }
}

/// `sleep` waits at least its time; `timeout` gives up on what never comes.
async fn timers() {
    let begun = Instant::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    check(
        "sleep(20 ms) waits 20 ms or more",
        begun.elapsed() >= Duration::from_millis(20),
        || format!("{:?}", begun.elapsed()),
    );
    let listener = expect_ok(
        "bind a listener nobody dials",
        TcpListener::bind("127.0.0.1:0").await,
    );
    let waited = tokio::time::timeout(Duration::from_millis(30), listener.accept()).await;
    check(
        "timeout ends an accept that never completes",
        waited.is_err(),
        || format!("{waited:?}"),
    );
}

/// Datagrams each way between two sockets, each a reply to the one before.
async fn udp() {
    let a = expect_ok(
        "udp bind a",
        UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await,
    );
    let b = expect_ok(
        "udp bind b",
        UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await,
    );
    let b_addr = expect_ok("udp local_addr b", b.local_addr());
    let a_addr = expect_ok("udp local_addr a", a.local_addr());
    let mut buf = [0u8; 64];
    let mut round_trips = 0;
    for i in 0..DATAGRAMS {
        let ping = format!("ping {i}");
        ok("udp send_to", a.send_to(ping.as_bytes(), b_addr).await);
        let (n, from) = ok("udp recv_from", b.recv_from(&mut buf).await);
        let pong = format!("pong {i}");
        ok("udp reply", b.send_to(pong.as_bytes(), from).await);
        let (m, replier) = ok("udp recv reply", a.recv_from(&mut buf[n..]).await);
        if &buf[..n] == ping.as_bytes()
            && &buf[n..n + m] == pong.as_bytes()
            && from == a_addr
            && replier == b_addr
        {
            round_trips += 1;
        }
    }
    check_eq(
        "udp round trips with the right payloads and addresses",
        round_trips,
        DATAGRAMS,
    );
}
