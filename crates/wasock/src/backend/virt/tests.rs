//! The state machines over the virtual network, with no OS socket: each test drives `tcp` and
//! `udp` as the bindings would and checks the WIT's outcome, including the error codes loopback
//! cannot produce.

use super::VirtualNetwork;
use crate::addr::Family;
use crate::error::{ErrorCode, SocketError, SocketResult};
use crate::gate::{Gate, test_gate_virtual};
use crate::network::NetworkId;
use crate::tcp::{StreamPair, TcpSocket};
use crate::udp::{OutgoingDatagram, UdpSocket};
use bytes::Bytes;
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr};
use std::sync::Arc;
use wasmtime_wasi_io::streams::{InputStream, OutputStream, StreamError};

const NET: NetworkId = NetworkId::DEFAULT;

fn v4(ip: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::from((ip, port))
}

/// The error code of a failed call.
#[track_caller]
fn code<T>(r: SocketResult<T>) -> ErrorCode {
    match r {
        Err(SocketError::Code(c)) => c,
        Err(SocketError::Trap(t)) => panic!("trapped: {t}"),
        Ok(_) => panic!("succeeded where an error was expected"),
    }
}

/// The error code behind a stream's `last-operation-failed`.
#[track_caller]
fn stream_code(e: StreamError) -> ErrorCode {
    match e {
        StreamError::LastOperationFailed(e) => *e
            .downcast_ref::<ErrorCode>()
            .expect("a stream error carries its error code"),
        other => panic!("expected last-operation-failed, got {other:?}"),
    }
}

/// Two hosts of one network, each with an allow-all gate.
fn two_hosts() -> (VirtualNetwork, Arc<Gate>, Arc<Gate>) {
    let net = VirtualNetwork::new();
    let server = test_gate_virtual(&net.attach("server").unwrap());
    let client = test_gate_virtual(&net.attach("client").unwrap());
    (net, server, client)
}

fn listener(gate: &Arc<Gate>, at: SocketAddr) -> TcpSocket {
    let mut l = TcpSocket::new(gate, Family::Ipv4).unwrap();
    l.start_bind(NET, at).unwrap();
    l.finish_bind().unwrap();
    l.start_listen().unwrap();
    l.finish_listen().unwrap();
    l
}

fn connect(gate: &Arc<Gate>, to: SocketAddr) -> (TcpSocket, SocketResult<StreamPair>) {
    let mut s = TcpSocket::new(gate, Family::Ipv4).unwrap();
    s.start_connect(NET, to).unwrap();
    let pair = s.finish_connect();
    (s, pair)
}

/// Writes all of `data` within the permits `check-write` grants (the pipe must take it).
fn write_all(out: &mut impl OutputStream, data: &[u8]) {
    let mut rest = data;
    for _ in 0..1_000 {
        if rest.is_empty() {
            return;
        }
        let n = out.check_write().unwrap().min(rest.len());
        out.write(Bytes::copy_from_slice(&rest[..n])).unwrap();
        rest = &rest[n..];
    }
    panic!("the pipe did not take {} bytes", data.len());
}

/// Reads until `n` bytes came (all of them must be there).
fn read_exact(input: &mut impl InputStream, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    for _ in 0..1_000 {
        if got.len() >= n {
            break;
        }
        let chunk = input.read(n - got.len()).unwrap();
        assert!(!chunk.is_empty(), "only {} of {n} bytes arrived", got.len());
        got.extend_from_slice(&chunk);
    }
    got
}

#[test]
fn two_hosts_talk_by_address_and_by_name() {
    let (net, server, client) = two_hosts();
    let mut l = listener(&server, v4([0, 0, 0, 0], 80));
    let (c, pair) = connect(&client, v4([10, 0, 0, 1], 80));
    let (mut cin, mut cout) = pair.unwrap();
    let (a, (mut ain, mut aout)) = l.accept().unwrap();
    // The client left from its own address and the first ephemeral port.
    let client_end: SocketAddr = "10.0.0.2:32768".parse().unwrap();
    assert_eq!(c.local_address().unwrap(), client_end);
    assert_eq!(a.remote_address().unwrap(), client_end);
    assert_eq!(a.local_address().unwrap(), "10.0.0.1:80".parse().unwrap());
    write_all(&mut cout, b"hello");
    assert_eq!(read_exact(&mut ain, 5), b"hello");
    write_all(&mut aout, b"back");
    assert_eq!(read_exact(&mut cin, 4), b"back");
    // The directory answers each host's name with its addresses.
    let names = net.attach("third").unwrap().resolver();
    let server_addrs = crate::backend::Resolver::resolve_now(&names, "server").unwrap();
    assert_eq!(
        server_addrs,
        vec![
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            "fd00::1".parse::<IpAddr>().unwrap()
        ]
    );
}

#[test]
fn each_host_has_its_own_loopback() {
    let (_net, server, client) = two_hosts();
    let _l = listener(&server, v4([127, 0, 0, 1], 8080));
    let (_c, pair) = connect(&client, v4([127, 0, 0, 1], 8080));
    assert_eq!(code(pair), ErrorCode::ConnectionRefused);
    let (c, pair) = connect(&server, v4([127, 0, 0, 1], 8080));
    assert!(pair.is_ok());
    assert_eq!(
        c.local_address().unwrap().ip(),
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    );
}

#[test]
fn refused_unreachable_in_use_and_not_bindable() {
    let (_net, server, client) = two_hosts();
    let _l = listener(&server, v4([0, 0, 0, 0], 80));
    let (_c, pair) = connect(&client, v4([10, 0, 0, 1], 81));
    assert_eq!(code(pair), ErrorCode::ConnectionRefused, "nobody listens");
    let (_c, pair) = connect(&client, v4([10, 0, 9, 9], 80));
    assert_eq!(code(pair), ErrorCode::RemoteUnreachable, "no host there");
    let mut again = TcpSocket::new(&server, Family::Ipv4).unwrap();
    assert_eq!(
        code(again.start_bind(NET, v4([10, 0, 0, 1], 80))),
        ErrorCode::AddressInUse
    );
    assert_eq!(
        code(again.start_bind(NET, v4([10, 0, 0, 2], 80))),
        ErrorCode::AddressNotBindable,
        "the client's address is not the server's"
    );
    again.start_bind(NET, v4([10, 0, 0, 1], 0)).unwrap();
}

#[test]
fn a_slow_reader_backs_up_a_fast_writer() {
    let (_net, server, client) = two_hosts();
    let mut l = TcpSocket::new(&server, Family::Ipv4).unwrap();
    l.set_receive_buffer_size(4096).unwrap();
    l.start_bind(NET, v4([0, 0, 0, 0], 80)).unwrap();
    l.finish_bind().unwrap();
    l.start_listen().unwrap();
    l.finish_listen().unwrap();
    let mut c = TcpSocket::new(&client, Family::Ipv4).unwrap();
    c.set_send_buffer_size(4096).unwrap();
    c.start_connect(NET, v4([10, 0, 0, 1], 80)).unwrap();
    let (_cin, mut cout) = c.finish_connect().unwrap();
    let (_a, (mut ain, _aout)) = l.accept().unwrap();
    let mut written = 0;
    let mut full = false;
    for _ in 0..1_000 {
        let n = cout.check_write().unwrap();
        if n == 0 {
            full = true;
            break;
        }
        cout.write(Bytes::from(vec![7u8; n])).unwrap();
        written += n;
    }
    assert!(full, "check-write never showed the full pipe");
    assert!(written >= 8192, "the pipe holds both buffers: {written}");
    let mut read = 0;
    for _ in 0..1_000 {
        let chunk = ain.read(65_536).unwrap();
        if chunk.is_empty() {
            break;
        }
        read += chunk.len();
        // Reading makes room: what the writer held back moves on.
        let _ = cout.check_write().unwrap();
    }
    assert_eq!(read, written, "every accepted byte arrives once");
    assert!(cout.check_write().unwrap() > 0, "room again once read");
}

#[test]
fn half_close_then_reset() {
    let (_net, server, client) = two_hosts();
    let mut l = listener(&server, v4([0, 0, 0, 0], 80));
    let (c, pair) = connect(&client, v4([10, 0, 0, 1], 80));
    let (mut cin, mut cout) = pair.unwrap();
    let (a, (mut ain, mut aout)) = l.accept().unwrap();
    write_all(&mut cout, b"last words");
    c.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_exact(&mut ain, 10), b"last words");
    assert!(matches!(ain.read(10), Err(StreamError::Closed)), "FIN");
    // The other direction stays open.
    write_all(&mut aout, b"reply");
    assert_eq!(read_exact(&mut cin, 5), b"reply");
    drop((a, ain, aout));
    assert!(matches!(cin.read(10), Err(StreamError::Closed)), "FIN");
    // A server that closes with the client's bytes unread resets the connection.
    let (_c, pair) = connect(&client, v4([10, 0, 0, 1], 80));
    let (mut cin, mut cout) = pair.unwrap();
    let accepted = l.accept().unwrap();
    write_all(&mut cout, b"never read");
    drop(accepted);
    let e = cin.read(10).unwrap_err();
    assert_eq!(stream_code(e), ErrorCode::ConnectionReset);
}

#[test]
fn a_write_to_a_closed_peer_is_reset() {
    let (_net, server, client) = two_hosts();
    let mut l = listener(&server, v4([0, 0, 0, 0], 80));
    let (_c, pair) = connect(&client, v4([10, 0, 0, 1], 80));
    let (mut cin, mut cout) = pair.unwrap();
    drop(l.accept().unwrap());
    assert!(
        matches!(cin.read(10), Err(StreamError::Closed)),
        "FIN first"
    );
    let n = cout.check_write().unwrap();
    let e = cout.write(Bytes::from(vec![1u8; n.min(10)])).unwrap_err();
    assert_eq!(stream_code(e), ErrorCode::ConnectionReset);
}

#[test]
fn a_full_backlog_holds_connects_until_an_accept() {
    let (_net, server, client) = two_hosts();
    let mut l = TcpSocket::new(&server, Family::Ipv4).unwrap();
    l.set_listen_backlog_size(1).unwrap();
    l.start_bind(NET, v4([0, 0, 0, 0], 80)).unwrap();
    l.finish_bind().unwrap();
    l.start_listen().unwrap();
    l.finish_listen().unwrap();
    // Linux queues one more than the backlog.
    let (_a, first) = connect(&client, v4([10, 0, 0, 1], 80));
    let (_b, second) = connect(&client, v4([10, 0, 0, 1], 80));
    assert!(first.is_ok() && second.is_ok());
    let (mut third, pending) = connect(&client, v4([10, 0, 0, 1], 80));
    assert_eq!(code(pending), ErrorCode::WouldBlock);
    let _accepted = l.accept().unwrap();
    assert!(third.finish_connect().is_ok(), "an accept made room");
    // A listener that goes away refuses what still waits.
    let (mut fourth, pending) = connect(&client, v4([10, 0, 0, 1], 80));
    assert_eq!(code(pending), ErrorCode::WouldBlock);
    drop(l);
    assert_eq!(code(fourth.finish_connect()), ErrorCode::ConnectionRefused);
}

#[test]
fn ports_are_freed_with_their_sockets() {
    let (_net, server, _client) = two_hosts();
    let l = listener(&server, v4([0, 0, 0, 0], 80));
    drop(l);
    let _again = listener(&server, v4([10, 0, 0, 1], 80));
    let mut ephemeral = TcpSocket::new(&server, Family::Ipv4).unwrap();
    ephemeral.start_bind(NET, v4([0, 0, 0, 0], 0)).unwrap();
    ephemeral.finish_bind().unwrap();
    assert_eq!(
        ephemeral.local_address().unwrap().port(),
        32_768,
        "the first ephemeral port"
    );
}

fn udp(gate: &Arc<Gate>, at: SocketAddr) -> UdpSocket {
    let mut s = UdpSocket::new(gate, Family::Ipv4).unwrap();
    s.start_bind(NET, at).unwrap();
    s.finish_bind().unwrap();
    s
}

fn datagram(data: &[u8], to: Option<SocketAddr>) -> OutgoingDatagram {
    OutgoingDatagram {
        data: data.to_vec(),
        to,
    }
}

#[test]
fn datagrams_between_hosts_and_their_errors() {
    let (_net, server, client) = two_hosts();
    let mut b = udp(&server, v4([0, 0, 0, 0], 53));
    let mut a = udp(&client, v4([0, 0, 0, 0], 0));
    let (mut b_in, _) = b.stream(None).unwrap();
    let (_, mut a_out) = a.stream(None).unwrap();
    a_out.check_send().unwrap();
    assert_eq!(
        a_out
            .send(&[datagram(b"query", Some(v4([10, 0, 0, 1], 53)))])
            .unwrap(),
        1
    );
    let got = b_in.receive(10).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].data, b"query");
    assert_eq!(
        got[0].from,
        "10.0.0.2:32768".parse().unwrap(),
        "the sender's own address, not its unspecified bind"
    );
    // The IPv4 limit: 65507 bytes go, 65508 do not.
    a_out.check_send().unwrap();
    let to = Some(v4([10, 0, 0, 1], 53));
    let big = vec![0u8; 65_508];
    assert_eq!(
        code(a_out.send(&[datagram(&big, to)])),
        ErrorCode::DatagramTooLarge
    );
    a_out.check_send().unwrap();
    assert_eq!(
        code(a_out.send(&[datagram(b"x", Some(v4([10, 0, 9, 9], 53)))])),
        ErrorCode::RemoteUnreachable
    );
    // Connected to a port nobody binds: the next receive hears of it.
    let (mut a_in, mut a_out) = a.stream(Some(v4([10, 0, 0, 1], 54))).unwrap();
    a_out.check_send().unwrap();
    assert_eq!(a_out.send(&[datagram(b"lost", None)]).unwrap(), 1);
    assert_eq!(code(a_in.receive(1)), ErrorCode::ConnectionRefused);
    assert!(a_in.receive(1).unwrap().is_empty(), "reported once");
}

#[test]
fn udp_ports_are_exclusive() {
    let (_net, server, _client) = two_hosts();
    let _a = udp(&server, v4([0, 0, 0, 0], 53));
    let mut b = UdpSocket::new(&server, Family::Ipv4).unwrap();
    assert_eq!(
        code(b.start_bind(NET, v4([10, 0, 0, 1], 53))),
        ErrorCode::AddressInUse
    );
}

/// A connect across a cut path waits; it completes once the path heals, and gives up with
/// `timeout` if it never does (in virtual time: the test takes no real wait).
#[tokio::test(start_paused = true)]
async fn a_partition_holds_connects_and_data_until_it_heals() {
    let (net, server, client) = two_hosts();
    let mut l = listener(&server, v4([0, 0, 0, 0], 80));
    net.partition("server", "client", true).unwrap();
    let (mut c, pair) = connect(&client, v4([10, 0, 0, 1], 80));
    assert_eq!(code(pair), ErrorCode::WouldBlock, "the SYN cannot cross");
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    assert_eq!(code(c.finish_connect()), ErrorCode::WouldBlock);
    net.partition("server", "client", false).unwrap();
    let (mut cin, mut cout) = c.finish_connect().unwrap();
    let (_a, (mut ain, mut aout)) = l.accept().unwrap();
    // Data written while cut waits, then arrives in order.
    net.partition("client", "server", true).unwrap();
    write_all(&mut cout, b"held");
    assert!(
        ain.read(10).unwrap().is_empty(),
        "nothing crosses a cut path"
    );
    net.partition("client", "server", false).unwrap();
    assert_eq!(read_exact(&mut ain, 4), b"held");
    write_all(&mut aout, b"ok");
    assert_eq!(read_exact(&mut cin, 2), b"ok");
    // A connect that never gets across times out: at the instance's connect timeout (60 s by
    // default), before the network's SYN retries (127 s) would give up.
    net.partition("server", "client", true).unwrap();
    let mut late = TcpSocket::new(&client, Family::Ipv4).unwrap();
    late.start_connect(NET, v4([10, 0, 0, 1], 80)).unwrap();
    let mut ready = late.readiness();
    let started = tokio::time::Instant::now();
    wasmtime_wasi_io::poll::Pollable::ready(&mut ready).await;
    let waited = started.elapsed();
    assert!(waited >= std::time::Duration::from_secs(60), "{waited:?}");
    assert!(waited < std::time::Duration::from_secs(61), "{waited:?}");
    assert_eq!(code(late.finish_connect()), ErrorCode::Timeout);
}

#[test]
fn resets_and_hosts_going_down() {
    let (net, server, client) = two_hosts();
    let mut l = listener(&server, v4([0, 0, 0, 0], 80));
    let (_c, pair) = connect(&client, v4([10, 0, 0, 1], 80));
    let (mut cin, _cout) = pair.unwrap();
    let (_a, (mut ain, _aout)) = l.accept().unwrap();
    net.reset_connections("client", "server").unwrap();
    assert_eq!(
        stream_code(cin.read(1).unwrap_err()),
        ErrorCode::ConnectionReset
    );
    assert_eq!(
        stream_code(ain.read(1).unwrap_err()),
        ErrorCode::ConnectionReset
    );
    net.set_host_up("server", false).unwrap();
    let (_c, pair) = connect(&client, v4([10, 0, 0, 1], 80));
    assert_eq!(code(pair), ErrorCode::RemoteUnreachable);
    net.set_host_up("server", true).unwrap();
    let (_c, pair) = connect(&client, v4([10, 0, 0, 1], 80));
    assert!(pair.is_ok(), "back up");
    assert_eq!(
        net.partition("client", "nobody", true),
        Err(super::VirtualNetworkError::UnknownHost("nobody".into()))
    );
}

/// Which of 200 datagrams arrive under 30 % loss and 10 % duplication, on a network seeded
/// with `seed`.
fn lossy_delivery(seed: u64) -> Vec<u8> {
    let net = VirtualNetwork::seeded(seed);
    let server = test_gate_virtual(&net.attach("server").unwrap());
    let client = test_gate_virtual(&net.attach("client").unwrap());
    net.set_link(
        "client",
        "server",
        super::LinkFaults {
            loss: 0.3,
            duplicate: 0.1,
            ..Default::default()
        },
    )
    .unwrap();
    let mut b = udp(&server, v4([0, 0, 0, 0], 53));
    let mut a = udp(&client, v4([0, 0, 0, 0], 0));
    let (mut b_in, _) = b.stream(None).unwrap();
    let (_, mut a_out) = a.stream(None).unwrap();
    for i in 0..200u8 {
        a_out.check_send().unwrap();
        a_out
            .send(&[datagram(&[i], Some(v4([10, 0, 0, 1], 53)))])
            .unwrap();
    }
    b_in.receive(1_000)
        .unwrap()
        .iter()
        .map(|d| d.data[0])
        .collect()
}

#[test]
fn loss_and_duplication_follow_the_seed() {
    let first = lossy_delivery(7);
    assert_eq!(first, lossy_delivery(7), "one seed, one outcome");
    assert_ne!(first, lossy_delivery(8), "another seed, another outcome");
    assert!(
        (100..180).contains(&first.len()),
        "about 70 % arrive, some twice: {}",
        first.len()
    );
    assert!(first.windows(2).any(|w| w[0] == w[1]), "some arrive twice");
}

/// A reset on the path answers a connect under way (`finish-connect`: `connection-reset`), and
/// a connection reset while it waited in the listener's queue is `connection-aborted` there.
#[tokio::test(start_paused = true)]
async fn a_reset_answers_a_connect_and_aborts_a_queued_one() {
    let (net, server, client) = two_hosts();
    let mut l = listener(&server, v4([0, 0, 0, 0], 80));
    let slow = super::LinkFaults {
        latency: std::time::Duration::from_millis(100),
        ..Default::default()
    };
    net.set_link("client", "server", slow).unwrap();
    let (mut c, pair) = connect(&client, v4([10, 0, 0, 1], 80));
    assert_eq!(code(pair), ErrorCode::WouldBlock, "the SYN is on its way");
    net.reset_connections("client", "server").unwrap();
    assert_eq!(code(c.finish_connect()), ErrorCode::ConnectionReset);
    net.set_link("client", "server", Default::default())
        .unwrap();
    let (_queued, pair) = connect(&client, v4([10, 0, 0, 1], 80));
    assert!(pair.is_ok());
    net.reset_connections("client", "server").unwrap();
    assert_eq!(code(l.accept()), ErrorCode::ConnectionAborted);
    assert_eq!(code(l.accept()), ErrorCode::WouldBlock, "reported once");
}

/// TCP data crosses a slow path in latency plus its time on the wire, in order; the first
/// bytes of a transfer arrive before the last.
#[tokio::test(start_paused = true)]
async fn tcp_data_takes_latency_and_bandwidth() {
    use std::time::Duration;
    let (net, server, client) = two_hosts();
    let mut l = listener(&server, v4([0, 0, 0, 0], 80));
    let (_c, pair) = connect(&client, v4([10, 0, 0, 1], 80));
    let (_cin, mut cout) = pair.unwrap();
    let (_a, (mut ain, _aout)) = l.accept().unwrap();
    net.set_link(
        "client",
        "server",
        super::LinkFaults {
            latency: Duration::from_millis(50),
            bandwidth: Some(10_000),
            ..Default::default()
        },
    )
    .unwrap();
    let started = tokio::time::Instant::now();
    write_all(&mut cout, &[1u8; 1000]);
    write_all(&mut cout, &[2u8; 1000]);
    assert!(ain.read(10_000).unwrap().is_empty(), "on the wire");
    // 1000 bytes at 10 kB/s take 100 ms, then 50 ms of latency.
    wasmtime_wasi_io::poll::Pollable::ready(&mut ain).await;
    assert_eq!(started.elapsed(), Duration::from_millis(150));
    assert_eq!(ain.read(10_000).unwrap().to_vec(), vec![1u8; 1000]);
    wasmtime_wasi_io::poll::Pollable::ready(&mut ain).await;
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(250),
        "queued behind"
    );
    assert_eq!(ain.read(10_000).unwrap().to_vec(), vec![2u8; 1000]);
}
