//! Raw `wasi:sockets@0.3.0` bindings and small helpers for the raw-binding 0.3 guests
//! (`raw-p3-tcp`, `raw-p3-udp` and `raw-p3-lookup`, in `guests/raw-p3-*`).
//!
//! **Toolchain.** The bindings are `wit-bindgen` 0.61's (the guests workspace's pin) with its
//! `async` feature, built for `wasm32-wasip2`: Rust 1.95's `wasm-component-ld` links the
//! async-ABI imports, and the result is a 0.3 component that Wasmtime 48 runs. The `wasip3`
//! crate would work as well, but it is one more dependency for the same generated code, and
//! generating the bindings here from the vendored WIT (`guests/wit/0.3.0`, the text
//! `wasmtime-wasi` 48 implements) pins exactly the interface the checks are written against.
//!
//! **Entry point.** A guest is a `wasi:cli/command@0.3.0`: it exports `wasi:cli/run@0.3.0`,
//! an async-lifted export, so the checks simply `.await` the async imports. The guests are
//! `cdylib`s, not bins: a bin's component also exports `wasi:cli/run@0.2.0` (Rust's `main`),
//! which a host preferring 0.2 would run, and a 0.2 `run` is a synchronous export, which may
//! not block on async calls (`wit_bindgen::block_on` there traps: "cannot block a
//! synchronous task before returning"). Rust's std still imports `wasi:cli` / `wasi:io` 0.2
//! for stdout, stderr, the environment and `exit`, so a host must link both versions.
//! `guest-support` prints the check records and the summary, as for the 0.2 guests.
//!
//! The helpers never hide an error code: they return the socket call's result so the guest
//! can assert on it. Only waiting is done for the caller, always bounded by a
//! `wasi:clocks/monotonic-clock@0.3.0` `wait-for` raced against the operation.

wit_bindgen::generate!({
    // Order matters: a later file may only depend on earlier ones.
    path: [
        "../wit/0.3.0/clocks.wit",
        "../wit/0.3.0/random.wit",
        "../wit/0.3.0/filesystem.wit",
        "../wit/0.3.0/sockets.wit",
        "../wit/0.3.0/cli.wit",
    ],
    inline: "
        package wasock:raw-p3-guests;

        world raw-p3 {
            import wasi:clocks/monotonic-clock@0.3.0;
            import wasi:sockets/types@0.3.0;
            import wasi:sockets/ip-name-lookup@0.3.0;
            export wasi:cli/run@0.3.0;
        }
    ",
    world: "wasock:raw-p3-guests/raw-p3",
    additional_derives: [PartialEq, Eq],
    pub_export_macro: true,
    generate_all,
});

use std::future::{Future, IntoFuture, poll_fn};
use std::pin::pin;
use std::task::Poll;

use guest_support::fail;

pub use wasi::sockets::ip_name_lookup::{ErrorCode as LookupErrorCode, resolve_addresses};
pub use wasi::sockets::types::{
    ErrorCode, IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
    TcpSocket, UdpSocket,
};
pub use wit_bindgen::{FutureReader, StreamReader, StreamResult, StreamWriter};

/// How long any single wait may take before the check fails, in milliseconds.
pub const WAIT_MS: u64 = 5_000;

pub const LOOPBACK4: (u8, u8, u8, u8) = (127, 0, 0, 1);
pub const LOOPBACK6: (u16, u16, u16, u16, u16, u16, u16, u16) = (0, 0, 0, 0, 0, 0, 0, 1);

/// An IPv4 socket address.
pub fn v4(address: (u8, u8, u8, u8), port: u16) -> IpSocketAddress {
    IpSocketAddress::Ipv4(Ipv4SocketAddress { port, address })
}

/// An IPv6 socket address (flow-info and scope-id 0).
pub fn v6(address: (u16, u16, u16, u16, u16, u16, u16, u16), port: u16) -> IpSocketAddress {
    IpSocketAddress::Ipv6(Ipv6SocketAddress {
        port,
        flow_info: 0,
        address,
        scope_id: 0,
    })
}

/// The loopback address of `family` with `port`.
pub fn lo(family: IpAddressFamily, port: u16) -> IpSocketAddress {
    match family {
        IpAddressFamily::Ipv4 => v4(LOOPBACK4, port),
        IpAddressFamily::Ipv6 => v6(LOOPBACK6, port),
    }
}

/// The loopback address of the other family than `family`, with `port`.
pub fn lo_other(family: IpAddressFamily, port: u16) -> IpSocketAddress {
    match family {
        IpAddressFamily::Ipv4 => lo(IpAddressFamily::Ipv6, port),
        IpAddressFamily::Ipv6 => lo(IpAddressFamily::Ipv4, port),
    }
}

/// The unspecified address of `family` (`0.0.0.0` / `::`) with `port`.
pub fn unspecified(family: IpAddressFamily, port: u16) -> IpSocketAddress {
    match family {
        IpAddressFamily::Ipv4 => v4((0, 0, 0, 0), port),
        IpAddressFamily::Ipv6 => v6((0, 0, 0, 0, 0, 0, 0, 0), port),
    }
}

pub fn port_of(addr: &IpSocketAddress) -> u16 {
    match addr {
        IpSocketAddress::Ipv4(a) => a.port,
        IpSocketAddress::Ipv6(a) => a.port,
    }
}

pub fn family_of(addr: &IpSocketAddress) -> IpAddressFamily {
    match addr {
        IpSocketAddress::Ipv4(_) => IpAddressFamily::Ipv4,
        IpSocketAddress::Ipv6(_) => IpAddressFamily::Ipv6,
    }
}

/// Whether `addr` is the loopback address of its family (any port).
pub fn is_loopback(addr: &IpSocketAddress) -> bool {
    match addr {
        IpSocketAddress::Ipv4(a) => a.address == LOOPBACK4,
        IpSocketAddress::Ipv6(a) => a.address == LOOPBACK6,
    }
}

// ---------------------------------------------------------------------------------
// Bounded waiting
// ---------------------------------------------------------------------------------

/// `a` or `b`, whichever finished first.
pub enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Runs `a` and `b` concurrently and returns the output of the first to finish (`a` when
/// both are ready at once). The other one is dropped, which cancels it.
pub async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if let Poll::Ready(v) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        if let Poll::Ready(v) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(v));
        }
        Poll::Pending
    })
    .await
}

/// Sleeps `ms` milliseconds (`monotonic-clock.wait-for`).
pub async fn sleep_ms(ms: u64) {
    wasi::clocks::monotonic_clock::wait_for(ms.saturating_mul(1_000_000)).await;
}

/// `f`'s output if it finishes within `ms` milliseconds, else `None` (and `f` is cancelled).
pub async fn timeout<F: IntoFuture>(ms: u64, f: F) -> Option<F::Output> {
    match race(f.into_future(), sleep_ms(ms)).await {
        Either::Left(v) => Some(v),
        Either::Right(()) => None,
    }
}

/// `f`'s output; fails `check` (ending the guest) if it does not finish within [`WAIT_MS`].
pub async fn within<F: IntoFuture>(check: &str, f: F) -> F::Output {
    match timeout(WAIT_MS, f).await {
        Some(v) => v,
        None => fail(check, format!("did not finish within {WAIT_MS} ms")),
    }
}

/// Polls `f` once, so that an async import call it makes is started, and returns its output
/// if that already finished it.
pub async fn poll_once<F: Future + Unpin>(f: &mut F) -> Option<F::Output> {
    poll_fn(|cx| {
        Poll::Ready(match std::pin::Pin::new(&mut *f).poll(cx) {
            Poll::Ready(v) => Some(v),
            Poll::Pending => None,
        })
    })
    .await
}

// ---------------------------------------------------------------------------------
// TCP
// ---------------------------------------------------------------------------------

/// `tcp-socket.create(family)`, which must succeed.
pub fn new_tcp(check: &str, family: IpAddressFamily) -> TcpSocket {
    match TcpSocket::create(family) {
        Ok(s) => s,
        Err(e) => fail(check, format!("create({family:?}) failed: {e:?}")),
    }
}

/// `get-local-address`, which must succeed.
pub fn local_addr(check: &str, s: &TcpSocket) -> IpSocketAddress {
    match s.get_local_address() {
        Ok(a) => a,
        Err(e) => fail(check, format!("get-local-address failed: {e:?}")),
    }
}

/// A listening socket of `family` on loopback, an ephemeral port; with its accept stream.
pub fn listener(check: &str, family: IpAddressFamily) -> (TcpSocket, StreamReader<TcpSocket>) {
    let s = new_tcp(check, family);
    if let Err(e) = s.bind(lo(family, 0)) {
        fail(check, format!("bind to loopback failed: {e:?}"));
    }
    match s.listen() {
        Ok(accepts) => (s, accepts),
        Err(e) => fail(check, format!("listen failed: {e:?}")),
    }
}

/// The next socket of a listen stream, within [`WAIT_MS`]; `None` if the stream ended.
pub async fn accept(check: &str, accepts: &mut StreamReader<TcpSocket>) -> Option<TcpSocket> {
    within(check, accepts.next()).await
}

/// A connected pair over loopback: the listener, its accept stream, the client and the
/// accepted server socket.
pub struct Pair {
    pub listener: TcpSocket,
    pub accepts: StreamReader<TcpSocket>,
    pub client: TcpSocket,
    pub server: TcpSocket,
}

/// A fresh listener of `family` with a client connected to it and the connection accepted.
pub async fn pair(check: &str, family: IpAddressFamily) -> Pair {
    let (listener, mut accepts) = listener(check, family);
    let addr = local_addr(check, &listener);
    let client = new_tcp(check, family);
    if let Err(e) = within(check, client.connect(addr)).await {
        fail(check, format!("connect to the listener failed: {e:?}"));
    }
    let Some(server) = accept(check, &mut accepts).await else {
        fail(check, "the listen stream ended");
    };
    Pair {
        listener,
        accepts,
        client,
        server,
    }
}

/// A new `stream<u8>`: the writer to keep, the reader to hand to `send`.
pub fn byte_stream() -> (StreamWriter<u8>, StreamReader<u8>) {
    wit_stream::new::<u8>()
}

/// Writes all of `data` to `tx` within [`WAIT_MS`]; returns what the reader did not take
/// (empty unless the reader was dropped).
pub async fn write_all(check: &str, tx: &mut StreamWriter<u8>, data: &[u8]) -> Vec<u8> {
    within(check, tx.write_all(data.to_vec())).await
}

/// Reads exactly `n` bytes from `rx`; fails `check` if the stream ends first.
pub async fn read_exact(check: &str, rx: &mut StreamReader<u8>, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let (result, buf) = within(check, rx.read(Vec::with_capacity(n - out.len()))).await;
        match result {
            StreamResult::Complete(_) => out.extend_from_slice(&buf),
            StreamResult::Dropped => fail(
                check,
                format!("the stream ended after {} of {n} bytes", out.len()),
            ),
            StreamResult::Cancelled => fail(check, "the read was cancelled"),
        }
    }
    out
}

/// Reads `rx` to its end (the writer dropped it): the bytes, at most `max` of them.
pub async fn read_to_end(check: &str, rx: &mut StreamReader<u8>, max: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let (result, buf) = within(check, rx.read(Vec::with_capacity(4096))).await;
        match result {
            StreamResult::Complete(_) => {
                out.extend_from_slice(&buf);
                if out.len() > max {
                    fail(check, format!("more than {max} bytes before the end"));
                }
            }
            StreamResult::Dropped => return out,
            StreamResult::Cancelled => fail(check, "the read was cancelled"),
        }
    }
}

/// What one read of up to `n` items gives: the result and the items read.
pub async fn read_once<T: wit_stream::StreamPayload>(
    check: &str,
    rx: &mut StreamReader<T>,
    n: usize,
) -> (StreamResult, Vec<T>) {
    within(check, rx.read(Vec::with_capacity(n))).await
}

/// `send` of `data` on `s`: hands over a new stream, writes `data`, drops the writer (the FIN)
/// and returns the send future's result.
pub async fn send_all(check: &str, s: &TcpSocket, data: &[u8]) -> Result<(), ErrorCode> {
    let (mut tx, rx) = byte_stream();
    let result = s.send(rx);
    let left = write_all(check, &mut tx, data).await;
    if !left.is_empty() {
        fail(
            check,
            format!(
                "the send stream took {} of {} bytes",
                data.len() - left.len(),
                data.len()
            ),
        );
    }
    drop(tx);
    within(check, result).await
}

// ---------------------------------------------------------------------------------
// UDP
// ---------------------------------------------------------------------------------

/// `udp-socket.create(family)`, which must succeed.
pub fn new_udp(check: &str, family: IpAddressFamily) -> UdpSocket {
    match UdpSocket::create(family) {
        Ok(s) => s,
        Err(e) => fail(check, format!("create({family:?}) failed: {e:?}")),
    }
}

/// `get-local-address` of a UDP socket, which must succeed.
pub fn udp_local_addr(check: &str, s: &UdpSocket) -> IpSocketAddress {
    match s.get_local_address() {
        Ok(a) => a,
        Err(e) => fail(check, format!("get-local-address failed: {e:?}")),
    }
}

/// A UDP socket of `family` bound to loopback on an ephemeral port, with its address.
pub fn udp_bound(check: &str, family: IpAddressFamily) -> (UdpSocket, IpSocketAddress) {
    let s = new_udp(check, family);
    if let Err(e) = s.bind(lo(family, 0)) {
        fail(check, format!("bind to loopback failed: {e:?}"));
    }
    let addr = udp_local_addr(check, &s);
    (s, addr)
}

/// `send` of one datagram, within [`WAIT_MS`]: the call's result.
pub async fn udp_send(
    check: &str,
    s: &UdpSocket,
    data: &[u8],
    to: Option<IpSocketAddress>,
) -> Result<(), ErrorCode> {
    within(check, s.send(data.to_vec(), to)).await
}

/// The next datagram `s` receives, within [`WAIT_MS`]: the call's result.
pub async fn udp_receive(
    check: &str,
    s: &UdpSocket,
) -> Result<(Vec<u8>, IpSocketAddress), ErrorCode> {
    within(check, s.receive()).await
}

/// Whether `s` receives a datagram within `ms` milliseconds; the pending receive is cancelled
/// if not. `None` when nothing came, else the call's result.
pub async fn udp_receive_within(
    ms: u64,
    s: &UdpSocket,
) -> Option<Result<(Vec<u8>, IpSocketAddress), ErrorCode>> {
    timeout(ms, s.receive()).await
}
