//! Raw `wasi:sockets@0.2.12` bindings and small helpers for the raw-binding guests
//! (`raw-tcp`, `raw-udp`, `raw-udp-trap`, `raw-lookup`).
//!
//! The helpers never hide an error code: they return the `Result` of the socket call so
//! the guest can assert on it. Only waiting is done for the caller, always bounded by a
//! monotonic-clock timeout.

wit_bindgen::generate!({
    // Order matters: a later file may only depend on earlier ones.
    path: [
        "../wit/0.2.12/io.wit",
        "../wit/0.2.12/clocks.wit",
        "../wit/0.2.12/sockets.wit",
    ],
    inline: "
        package wasock:raw-guests;

        world raw {
            import wasi:io/error@0.2.12;
            import wasi:io/poll@0.2.12;
            import wasi:io/streams@0.2.12;
            import wasi:clocks/monotonic-clock@0.2.12;
            import wasi:sockets/network@0.2.12;
            import wasi:sockets/instance-network@0.2.12;
            import wasi:sockets/tcp@0.2.12;
            import wasi:sockets/tcp-create-socket@0.2.12;
            import wasi:sockets/udp@0.2.12;
            import wasi:sockets/udp-create-socket@0.2.12;
            import wasi:sockets/ip-name-lookup@0.2.12;
        }
    ",
    world: "wasock:raw-guests/raw",
    features: ["network-error-code"],
    additional_type_attributes: {
        "wasi:sockets/network@0.2.12/ipv4-socket-address": [#[derive(PartialEq, Eq)]],
        "wasi:sockets/network@0.2.12/ipv6-socket-address": [#[derive(PartialEq, Eq)]],
        "wasi:sockets/network@0.2.12/ip-socket-address": [#[derive(PartialEq, Eq)]],
        "wasi:sockets/network@0.2.12/ip-address": [#[derive(PartialEq, Eq)]],
        "wasi:sockets/udp@0.2.12/incoming-datagram": [#[derive(PartialEq, Eq)]],
    },
    generate_all,
});

use guest_support::{Deadline, fail};

pub use wasi::io::poll::Pollable;
pub use wasi::io::streams::{InputStream, OutputStream, StreamError};
pub use wasi::sockets::instance_network::instance_network;
pub use wasi::sockets::network::{
    ErrorCode, IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
    Network,
};
pub use wasi::sockets::tcp::{ShutdownType, TcpSocket};
pub use wasi::sockets::tcp_create_socket::create_tcp_socket;
pub use wasi::sockets::udp::{
    IncomingDatagram, IncomingDatagramStream, OutgoingDatagram, OutgoingDatagramStream, UdpSocket,
};
pub use wasi::sockets::udp_create_socket::create_udp_socket;

guest_support::wasi_wait_helpers!(
    poll: wasi::io::poll::poll,
    pollable: wasi::io::poll::Pollable,
    subscribe_duration: wasi::clocks::monotonic_clock::subscribe_duration,
);

/// How long any single wait may take before the check fails.
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

/// 127.0.0.1:`port`.
pub fn lo4(port: u16) -> IpSocketAddress {
    v4(LOOPBACK4, port)
}

/// [::1]:`port`.
pub fn lo6(port: u16) -> IpSocketAddress {
    v6(LOOPBACK6, port)
}

/// The loopback address of `family` with `port`.
pub fn lo(family: IpAddressFamily, port: u16) -> IpSocketAddress {
    match family {
        IpAddressFamily::Ipv4 => lo4(port),
        IpAddressFamily::Ipv6 => lo6(port),
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

/// Calls `finish` until it stops returning `would-block`, waiting on `p` in between.
/// Fails `check` if the operation does not resolve within [`WAIT_MS`] (twice that in
/// total, to tolerate a spurious wake-up).
#[track_caller]
pub fn finish_wait<T>(
    check: &str,
    p: &Pollable,
    mut finish: impl FnMut() -> Result<T, ErrorCode>,
) -> Result<T, ErrorCode> {
    let deadline = Deadline::after(std::time::Duration::from_millis(2 * WAIT_MS));
    loop {
        match finish() {
            Err(ErrorCode::WouldBlock) => {
                if deadline.expired() {
                    fail(
                        check,
                        "operation still returned would-block at the deadline",
                    );
                }
                wait_ready(check, p, WAIT_MS);
            }
            r => return r,
        }
    }
}

// ---------------------------------------------------------------------------------
// TCP
// ---------------------------------------------------------------------------------

/// `start-bind` followed by `finish-bind` (waiting while it would block). Bind errors
/// may be reported by either half, so this returns whichever error came first.
#[track_caller]
pub fn tcp_bind(
    check: &str,
    sock: &TcpSocket,
    net: &Network,
    addr: IpSocketAddress,
) -> Result<(), ErrorCode> {
    sock.start_bind(net, addr)?;
    let p = sock.subscribe();
    finish_wait(check, &p, || sock.finish_bind())
}

/// `start-listen` followed by `finish-listen`.
#[track_caller]
pub fn tcp_listen(check: &str, sock: &TcpSocket) -> Result<(), ErrorCode> {
    sock.start_listen()?;
    let p = sock.subscribe();
    finish_wait(check, &p, || sock.finish_listen())
}

/// `start-connect` followed by `finish-connect`.
#[track_caller]
pub fn tcp_connect(
    check: &str,
    sock: &TcpSocket,
    net: &Network,
    addr: IpSocketAddress,
) -> Result<(InputStream, OutputStream), ErrorCode> {
    sock.start_connect(net, addr)?;
    let p = sock.subscribe();
    finish_wait(check, &p, || sock.finish_connect())
}

/// `accept`, waiting on the listener's pollable while nothing is pending.
#[track_caller]
pub fn tcp_accept(
    check: &str,
    listener: &TcpSocket,
) -> Result<(TcpSocket, InputStream, OutputStream), ErrorCode> {
    let p = listener.subscribe();
    finish_wait(check, &p, || listener.accept())
}

/// A new TCP socket of `family`; fails `check` if creation fails.
#[track_caller]
pub fn new_tcp(check: &str, family: IpAddressFamily) -> TcpSocket {
    match create_tcp_socket(family) {
        Ok(s) => s,
        Err(e) => fail(
            check,
            format!("create-tcp-socket({family:?}) failed: {e:?}"),
        ),
    }
}

/// A listening TCP socket on the loopback address of `family`, ephemeral port.
#[track_caller]
pub fn tcp_listener(check: &str, net: &Network, family: IpAddressFamily) -> TcpSocket {
    let l = new_tcp(check, family);
    if let Err(e) = tcp_bind(check, &l, net, lo(family, 0)) {
        fail(check, format!("binding a listener failed: {e:?}"));
    }
    if let Err(e) = tcp_listen(check, &l) {
        fail(check, format!("listening failed: {e:?}"));
    }
    l
}

/// The local address of `sock`; fails `check` on error.
#[track_caller]
pub fn local_addr_tcp(check: &str, sock: &TcpSocket) -> IpSocketAddress {
    match sock.local_address() {
        Ok(a) => a,
        Err(e) => fail(check, format!("local-address failed: {e:?}")),
    }
}

/// Both ends of one loopback TCP connection, plus the listener that produced it. Fields
/// drop in this order: each side's streams before its socket, the listener last (a host
/// may trap for a socket dropped before its streams, though wasock does not).
pub struct TcpPair {
    pub client_in: InputStream,
    pub client_out: OutputStream,
    pub client: TcpSocket,
    pub server_in: InputStream,
    pub server_out: OutputStream,
    pub server: TcpSocket,
    pub listener: TcpSocket,
}

/// Sets up a connected loopback pair of `family`; fails `check` on any error.
#[track_caller]
pub fn tcp_pair(check: &str, net: &Network, family: IpAddressFamily) -> TcpPair {
    let listener = tcp_listener(check, net, family);
    let addr = local_addr_tcp(check, &listener);
    let client = new_tcp(check, family);
    let (client_in, client_out) = match tcp_connect(check, &client, net, addr) {
        Ok(s) => s,
        Err(e) => fail(check, format!("connecting to the listener failed: {e:?}")),
    };
    let (server, server_in, server_out) = match tcp_accept(check, &listener) {
        Ok(s) => s,
        Err(e) => fail(check, format!("accepting failed: {e:?}")),
    };
    TcpPair {
        listener,
        client,
        client_in,
        client_out,
        server,
        server_in,
        server_out,
    }
}

/// Describes a stream error for a failure message.
pub fn describe(e: &StreamError) -> String {
    match e {
        StreamError::Closed => "closed".to_string(),
        StreamError::LastOperationFailed(err) => {
            format!("last-operation-failed({})", err.to_debug_string())
        }
    }
}

/// Writes all of `data`: waits for `check-write` to grant room, writes, then
/// `blocking-flush`es. Fails `check` on any stream error.
#[track_caller]
pub fn write_all(check: &str, out: &OutputStream, data: &[u8]) {
    let deadline = Deadline::after(std::time::Duration::from_millis(2 * WAIT_MS));
    let p = out.subscribe();
    let mut rest = data;
    while !rest.is_empty() {
        let room = match out.check_write() {
            Ok(n) => n,
            Err(e) => fail(check, format!("check-write failed: {}", describe(&e))),
        };
        if room == 0 {
            if deadline.expired() {
                fail(check, "check-write kept returning 0");
            }
            wait_ready(check, &p, WAIT_MS);
            continue;
        }
        let n = rest.len().min(room as usize);
        if let Err(e) = out.write(&rest[..n]) {
            fail(check, format!("write failed: {}", describe(&e)));
        }
        rest = &rest[n..];
    }
    if let Err(e) = out.blocking_flush() {
        fail(check, format!("blocking-flush failed: {}", describe(&e)));
    }
}

/// What a bounded read ended with.
#[derive(Debug)]
pub enum ReadEnd {
    /// `len` bytes arrived.
    Complete,
    /// The stream reported `closed` first.
    Closed,
    /// The stream reported `last-operation-failed` first (with its description).
    Failed(String),
}

/// Reads until `len` bytes arrived, the stream ended, or the deadline passed (which fails
/// `check`). Returns the bytes read and how the read ended.
#[track_caller]
pub fn read_up_to(check: &str, input: &InputStream, len: usize) -> (Vec<u8>, ReadEnd) {
    // A stall, not a slow transfer, fails: the deadline moves on with every byte that comes
    // (the loop stays bounded: each chunk brings at least one byte of the `len`).
    let stall = std::time::Duration::from_millis(2 * WAIT_MS);
    let mut deadline = Deadline::after(stall);
    let p = input.subscribe();
    let mut buf = Vec::new();
    while buf.len() < len {
        match input.read((len - buf.len()) as u64) {
            Ok(chunk) if chunk.is_empty() => {
                if deadline.expired() {
                    fail(check, format!("stalled after {} of {len} bytes", buf.len()));
                }
                wait_ready(check, &p, WAIT_MS);
            }
            Ok(chunk) => {
                buf.extend_from_slice(&chunk);
                deadline = Deadline::after(stall);
            }
            Err(StreamError::Closed) => return (buf, ReadEnd::Closed),
            Err(e) => return (buf, ReadEnd::Failed(describe(&e))),
        }
    }
    (buf, ReadEnd::Complete)
}

/// Reads exactly `len` bytes; fails `check` if the stream ends first.
#[track_caller]
pub fn read_exact(check: &str, input: &InputStream, len: usize) -> Vec<u8> {
    match read_up_to(check, input, len) {
        (buf, ReadEnd::Complete) => buf,
        (buf, end) => fail(
            check,
            format!("stream ended ({end:?}) after {} of {len} bytes", buf.len()),
        ),
    }
}

/// Reads until the stream reports `closed` (end of stream); fails `check` on an error,
/// on more than `max` bytes, or at the deadline. Returns the bytes read before the end.
#[track_caller]
pub fn read_to_closed(check: &str, input: &InputStream, max: usize) -> Vec<u8> {
    match read_up_to(check, input, max + 1) {
        (buf, ReadEnd::Closed) => buf,
        (_, ReadEnd::Complete) => fail(check, format!("more than {max} bytes before end")),
        (_, ReadEnd::Failed(e)) => fail(check, format!("read failed instead of closed: {e}")),
    }
}

// ---------------------------------------------------------------------------------
// UDP
// ---------------------------------------------------------------------------------

/// A new UDP socket of `family`; fails `check` if creation fails.
#[track_caller]
pub fn new_udp(check: &str, family: IpAddressFamily) -> UdpSocket {
    match create_udp_socket(family) {
        Ok(s) => s,
        Err(e) => fail(
            check,
            format!("create-udp-socket({family:?}) failed: {e:?}"),
        ),
    }
}

/// `start-bind` followed by `finish-bind` on a UDP socket.
#[track_caller]
pub fn udp_bind(
    check: &str,
    sock: &UdpSocket,
    net: &Network,
    addr: IpSocketAddress,
) -> Result<(), ErrorCode> {
    sock.start_bind(net, addr)?;
    let p = sock.subscribe();
    finish_wait(check, &p, || sock.finish_bind())
}

/// A UDP socket bound to the loopback address of `family`, ephemeral port.
#[track_caller]
pub fn udp_bound(check: &str, net: &Network, family: IpAddressFamily) -> UdpSocket {
    let s = new_udp(check, family);
    if let Err(e) = udp_bind(check, &s, net, lo(family, 0)) {
        fail(check, format!("binding a UDP socket failed: {e:?}"));
    }
    s
}

/// The local address of a UDP socket; fails `check` on error.
#[track_caller]
pub fn local_addr_udp(check: &str, sock: &UdpSocket) -> IpSocketAddress {
    match sock.local_address() {
        Ok(a) => a,
        Err(e) => fail(check, format!("local-address failed: {e:?}")),
    }
}

/// `stream(remote)`; fails `check` on error.
#[track_caller]
pub fn udp_streams(
    check: &str,
    sock: &UdpSocket,
    remote: Option<IpSocketAddress>,
) -> (IncomingDatagramStream, OutgoingDatagramStream) {
    match sock.stream(remote) {
        Ok(s) => s,
        Err(e) => fail(check, format!("stream({remote:?}) failed: {e:?}")),
    }
}

/// A datagram with `data` to `to`.
pub fn dgram(data: &[u8], to: Option<IpSocketAddress>) -> OutgoingDatagram {
    OutgoingDatagram {
        data: data.to_vec(),
        remote_address: to,
    }
}

/// Waits until `check-send` grants at least `min` datagrams and returns the grant.
#[track_caller]
pub fn wait_send_permit(check: &str, out: &OutgoingDatagramStream, min: u64) -> u64 {
    let deadline = Deadline::after(std::time::Duration::from_millis(2 * WAIT_MS));
    let p = out.subscribe();
    loop {
        match out.check_send() {
            Ok(n) if n >= min => return n,
            Ok(_) => {
                if deadline.expired() {
                    fail(check, format!("check-send never granted {min} datagrams"));
                }
                wait_ready(check, &p, WAIT_MS);
            }
            Err(e) => fail(check, format!("check-send failed: {e:?}")),
        }
    }
}

/// Sends `datagrams` in one `send` after a sufficient `check-send`; returns the result.
#[track_caller]
pub fn udp_send(
    check: &str,
    out: &OutgoingDatagramStream,
    datagrams: &[OutgoingDatagram],
) -> Result<u64, ErrorCode> {
    wait_send_permit(check, out, datagrams.len().max(1) as u64);
    out.send(datagrams)
}

/// Receives datagrams until `count` arrived (each `receive` asks for at most `max`,
/// and must not return more), waiting on the stream's pollable in between.
#[track_caller]
pub fn udp_receive(
    check: &str,
    input: &IncomingDatagramStream,
    count: usize,
    max: u64,
) -> Vec<IncomingDatagram> {
    let deadline = Deadline::after(std::time::Duration::from_millis(2 * WAIT_MS));
    let p = input.subscribe();
    let mut got = Vec::new();
    while got.len() < count {
        match input.receive(max) {
            Ok(batch) => {
                if batch.len() as u64 > max {
                    fail(
                        check,
                        format!("receive({max}) returned {} datagrams", batch.len()),
                    );
                }
                if batch.is_empty() {
                    if deadline.expired() {
                        fail(
                            check,
                            format!("timed out after {} of {count} datagrams", got.len()),
                        );
                    }
                    wait_ready(check, &p, WAIT_MS);
                }
                got.extend(batch);
            }
            Err(e) => fail(check, format!("receive failed: {e:?}")),
        }
    }
    got
}

/// Sets a size option and checks it reads back as set: checks `{at}set-{name}(size)` and
/// `{at}{name} after size`.
#[track_caller]
pub fn option_round_trip(
    at: &str,
    name: &str,
    size: u64,
    set: impl FnOnce(u64) -> Result<(), ErrorCode>,
    get: impl FnOnce() -> Result<u64, ErrorCode>,
) {
    guest_support::expect_ok(&format!("{at}set-{name}({size})"), set(size));
    guest_support::check_eq(&format!("{at}{name} after {size}"), get(), Ok(size));
}
