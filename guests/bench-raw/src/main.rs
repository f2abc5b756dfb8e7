//! bench-raw: the workloads of `wasock-bench` that Rust std cannot express, written against the
//! raw `wasi:sockets@0.2.12` bindings of `guests/raw`. Built for `wasm32-wasip2` only (there is
//! no native build of raw bindings), so its tables have no native column.
//!
//! Usage: `bench-raw WORKLOAD ARGS...`, one of
//!
//! | workload | arguments | work unit |
//! |---|---|---|
//! | `udp-send` | `ADDR COUNT` | a 64-byte datagram; each `send` carries as many as `check-send` permitted |
//! | `udp-recv` | `COUNT` | a 64-byte datagram taken by `receive(64)`; prints `LISTEN ADDR` first |
//! | `lookup` | `HOST COUNT` | one `resolve-addresses` drained to its end |
//!
//! Like `bench-guest`, each workload does its set-up, then the timed loop of `COUNT` units, then
//! prints `BENCH units=N ns=T` and workload-specific `key=value` pairs; with a count of 0 it does
//! everything but the loop. Every loop stops at [`DEADLINE`], and every wait for the host is
//! bounded by a monotonic-clock timeout. Errors go to stderr with exit status 1.

use raw::wasi::clocks::monotonic_clock::subscribe_duration;
use raw::wasi::sockets::ip_name_lookup::resolve_addresses;
use raw::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress, Network,
    OutgoingDatagram, Pollable, UdpSocket, create_udp_socket, instance_network, ready_within,
};
use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// No timed loop runs longer than this.
const DEADLINE: Duration = Duration::from_secs(120);
/// How long one wait for the host (a permit, a datagram, a lookup) may take.
const WAIT: Duration = Duration::from_secs(30);
/// How long the receiver waits for the next datagram, after the first, before it stops.
const UDP_IDLE: Duration = Duration::from_secs(2);
/// Size of a datagram.
const SMALL: usize = 64;
/// What the receiver asks each `receive` for.
const RECEIVE_MAX: u64 = 64;
/// The most datagrams one `send` carries, whatever `check-send` permits.
const MAX_BATCH: usize = 1024;
/// The datagram that tells a receiver the run is over (as `bench-guest udp-send` sends it).
const UDP_END: &[u8] = b"END";
/// The receive buffer the receiver asks for (the kernel caps it at `net.core.rmem_max`).
const UDP_RCVBUF: u64 = 4 << 20;
/// A lookup returning more addresses than this is an error (the stream must end).
const MAX_ADDRESSES: u64 = 256;

type Result<T> = std::result::Result<T, String>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let outcome = match args.as_slice() {
        ["udp-send", addr, n] => count(n).and_then(|n| udp_send(addr, n)),
        ["udp-recv", n] => count(n).and_then(udp_recv),
        ["lookup", host, n] => count(n).and_then(|n| lookup(host, n)),
        _ => Err(format!("unknown workload or wrong arguments: {args:?}")),
    };
    match outcome {
        Ok(report) => println!("{report}"),
        Err(e) => {
            eprintln!("bench-raw: {e}");
            std::process::exit(1);
        }
    }
}

fn count(s: &str) -> Result<u64> {
    s.parse().map_err(|e| format!("`{s}`: {e}"))
}

fn report(units: u64, elapsed: Duration) -> String {
    format!("BENCH units={units} ns={}", elapsed.as_nanos())
}

/// The result of a socket call, its error named after the call.
fn call<T>(what: &str, r: std::result::Result<T, ErrorCode>) -> Result<T> {
    r.map_err(|e| format!("{what}: {e:?}"))
}

/// Whether `p` became ready within `d`.
fn wait(p: &Pollable, d: Duration) -> bool {
    ready_within(p, d.as_millis() as u64)
}

/// `ADDR` (`IP:PORT`) as a WIT socket address.
fn socket_address(s: &str) -> Result<IpSocketAddress> {
    let addr: SocketAddr = s.parse().map_err(|e| format!("`{s}`: {e}"))?;
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
                flow_info: 0,
                address: (s0, s1, s2, s3, s4, s5, s6, s7),
                scope_id: 0,
            })
        }
    })
}

/// A WIT socket address as `IP:PORT`.
fn show(addr: &IpSocketAddress) -> String {
    let std: SocketAddr = match *addr {
        IpSocketAddress::Ipv4(a) => {
            let (a0, a1, a2, a3) = a.address;
            (std::net::Ipv4Addr::new(a0, a1, a2, a3), a.port).into()
        }
        IpSocketAddress::Ipv6(a) => {
            let (s0, s1, s2, s3, s4, s5, s6, s7) = a.address;
            (
                std::net::Ipv6Addr::new(s0, s1, s2, s3, s4, s5, s6, s7),
                a.port,
            )
                .into()
        }
    };
    std.to_string()
}

/// A UDP socket bound to the loopback address of `family`, ephemeral port.
fn bound_udp(net: &Network, family: IpAddressFamily) -> Result<UdpSocket> {
    let sock = call("create-udp-socket", create_udp_socket(family))?;
    let local = match family {
        IpAddressFamily::Ipv4 => socket_address("127.0.0.1:0")?,
        IpAddressFamily::Ipv6 => socket_address("[::1]:0")?,
    };
    call("start-bind", sock.start_bind(net, local))?;
    let ready = sock.subscribe();
    let start = Instant::now();
    loop {
        match sock.finish_bind() {
            Err(ErrorCode::WouldBlock) if start.elapsed() < WAIT => {
                wait(&ready, WAIT);
            }
            r => break call("finish-bind", r)?,
        }
    }
    drop(ready);
    Ok(sock)
}

/// `count` 64-byte datagrams to `addr` on an unconnected stream, each datagram addressed: every
/// `send` carries as many as the preceding `check-send` permitted (at most [`MAX_BATCH`]), and a
/// permit of 0 waits on the stream's pollable. Then a few end markers.
fn udp_send(addr: &str, count: u64) -> Result<String> {
    let to = socket_address(addr)?;
    let family = match to {
        IpSocketAddress::Ipv4(_) => IpAddressFamily::Ipv4,
        IpSocketAddress::Ipv6(_) => IpAddressFamily::Ipv6,
    };
    let net = instance_network();
    let sock = bound_udp(&net, family)?;
    let (incoming, outgoing) = call("stream", sock.stream(None))?;
    let ready = outgoing.subscribe();
    let mut batch: Vec<OutgoingDatagram> = (0..MAX_BATCH)
        .map(|_| OutgoingDatagram {
            data: vec![0x77; SMALL],
            remote_address: Some(to),
        })
        .collect();
    let start = Instant::now();
    let (mut sent, mut sends, mut waits) = (0u64, 0u64, 0u64);
    while sent < count && start.elapsed() < DEADLINE {
        let permit = call("check-send", outgoing.check_send())?;
        if permit == 0 {
            waits += 1;
            if !wait(&ready, WAIT) {
                return Err(format!("check-send permitted nothing for {WAIT:?}"));
            }
            continue;
        }
        let n = permit.min(count - sent).min(MAX_BATCH as u64) as usize;
        for (i, d) in batch[..n].iter_mut().enumerate() {
            d.data[..8].copy_from_slice(&(sent + i as u64).to_le_bytes());
        }
        sent += call("send", outgoing.send(&batch[..n]))?;
        sends += 1;
    }
    let elapsed = start.elapsed();
    // The marker may be lost like any datagram: repeat it (a receiver also stops when idle).
    // A failed marker only makes the receiver wait for its idle timeout, so errors are ignored.
    let end = [OutgoingDatagram {
        data: UDP_END.to_vec(),
        remote_address: Some(to),
    }];
    for _ in 0..3 {
        subscribe_duration(20_000_000).block();
        if matches!(outgoing.check_send(), Ok(p) if p > 0) {
            let _ = outgoing.send(&end);
        }
    }
    drop((ready, incoming, outgoing));
    Ok(format!(
        "{} sends={sends} waits={waits}",
        report(sent, elapsed)
    ))
}

/// Binds 127.0.0.1:0 (asking for a 4 MiB receive buffer), prints `LISTEN ADDR`, then takes
/// 64-byte datagrams with `receive(64)` until `count` arrived, an end marker came, or nothing
/// came for [`UDP_IDLE`] (30 s before the first). Time: from the first batch to the last.
fn udp_recv(count: u64) -> Result<String> {
    let net = instance_network();
    let sock = bound_udp(&net, IpAddressFamily::Ipv4)?;
    // Failure leaves the default buffer, which shows up as loss in the report.
    let _ = sock.set_receive_buffer_size(UDP_RCVBUF);
    let (incoming, outgoing) = call("stream", sock.stream(None))?;
    let local = call("local-address", sock.local_address())?;
    println!("LISTEN {}", show(&local));
    std::io::stdout()
        .flush()
        .map_err(|e| format!("stdout: {e}"))?;
    let ready = incoming.subscribe();
    let (mut got, mut receives, mut empty) = (0u64, 0u64, 0u64);
    let mut window: Option<(Instant, Instant)> = None;
    let mut ended = false;
    let start = Instant::now();
    while got < count && !ended && start.elapsed() < DEADLINE {
        let batch = call("receive", incoming.receive(RECEIVE_MAX))?;
        receives += 1;
        if batch.is_empty() {
            empty += 1;
            let patience = if window.is_some() { UDP_IDLE } else { WAIT };
            if !wait(&ready, patience) {
                break;
            }
            continue;
        }
        if batch.len() as u64 > RECEIVE_MAX {
            return Err(format!(
                "receive({RECEIVE_MAX}) returned {} datagrams",
                batch.len()
            ));
        }
        let now = Instant::now();
        window = Some((window.map_or(now, |(first, _)| first), now));
        for d in &batch {
            match d.data.len() {
                SMALL => got += 1,
                _ if d.data == UDP_END => ended = true,
                n => return Err(format!("unexpected {n}-byte datagram")),
            }
        }
    }
    let elapsed = window.map_or(Duration::ZERO, |(first, last)| last - first);
    drop((ready, incoming, outgoing));
    Ok(format!(
        "{} receives={receives} empty={empty}",
        report(got, elapsed)
    ))
}

/// `count` times: `resolve-addresses(HOST)`, then `resolve-next-address` until `none`, waiting on
/// the stream's pollable while it answers `would-block`.
fn lookup(host: &str, count: u64) -> Result<String> {
    let net = instance_network();
    let start = Instant::now();
    let (mut done, mut addresses, mut waits) = (0u64, 0u64, 0u64);
    while done < count && start.elapsed() < DEADLINE {
        let stream = call("resolve-addresses", resolve_addresses(&net, host))?;
        let asked = Instant::now();
        let mut found = 0u64;
        loop {
            match stream.resolve_next_address() {
                Ok(Some(_)) if found < MAX_ADDRESSES => found += 1,
                Ok(Some(_)) => return Err(format!("`{host}`: over {MAX_ADDRESSES} addresses")),
                Ok(None) => break,
                Err(ErrorCode::WouldBlock) if asked.elapsed() < WAIT => {
                    waits += 1;
                    let ready = stream.subscribe();
                    wait(&ready, WAIT);
                }
                Err(e) => return Err(format!("resolve-next-address(`{host}`): {e:?}")),
            }
        }
        if found == 0 {
            return Err(format!("`{host}` resolved to nothing"));
        }
        addresses += found;
        done += 1;
    }
    let elapsed = start.elapsed();
    Ok(format!(
        "{} addresses={addresses} waits={waits}",
        report(done, elapsed)
    ))
}
