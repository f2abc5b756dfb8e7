//! raw-faults: what a guest sees of a network's faults, on the raw bindings, for `wasock sim`
//! scenarios. Each mode prints what it observed, in the WIT's words, and exits 0.
//!
//! - `reset-reader A.B.C.D PORT`: connects, writes a byte, then reads until the stream ends or
//!   fails; prints `read: closed` or `read: <error-code>` (a reset path: `connection-reset`).
//! - `late-acceptor PORT WAIT_MS`: listens on 0.0.0.0:PORT, waits WAIT_MS, then accepts twice
//!   without waiting; prints `accept: ok` or `accept: <error-code>` for each (a connection reset
//!   while it was queued: `connection-aborted`).
//! - `timed-echo A.B.C.D PORT BYTES`: sends BYTES to an echo server and reads them back; prints
//!   `echoed N bytes in M ms` by the monotonic clock (a path's latency and bandwidth).
//! - `udp-sender A.B.C.D PORT N`: sends N datagrams numbered 0..N at once.
//! - `udp-counter PORT WAIT_MS`: receives for WAIT_MS; prints `received T datagrams, D distinct,
//!   O out of order` (duplication and reordering).
//! - `lookup NAME`: resolves NAME; prints `lookup: <addresses>` or `lookup: <error-code>`
//!   (failing lookups: `temporary-resolver-failure`).

use guest_support::fail;
use raw::wasi::clocks::monotonic_clock;
use raw::wasi::sockets::ip_name_lookup::resolve_addresses;
use raw::wasi::sockets::network::network_error_code;
use raw::{
    ErrorCode, IpAddressFamily as Family, Network, StreamError, dgram, instance_network, new_tcp,
    new_udp, tcp_bind, tcp_connect, tcp_listen, udp_bind, udp_send, udp_streams, v4, write_all,
};
use std::collections::BTreeSet;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let net = instance_network();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args[..] {
        ["reset-reader", addr, port] => reset_reader(&net, ip(addr), num(port)),
        ["late-acceptor", port, wait] => late_acceptor(&net, num(port), num(wait)),
        ["timed-echo", addr, port, bytes] => timed_echo(&net, ip(addr), num(port), num(bytes)),
        ["udp-sender", addr, port, n] => udp_sender(&net, ip(addr), num(port), num(n)),
        ["udp-counter", port, wait] => udp_counter(&net, num(port), num(wait)),
        ["lookup", name] => lookup(&net, name),
        _ => fail("raw-faults: arguments", "see the usage in raw-faults.rs"),
    }
}

fn num<T: std::str::FromStr>(text: &str) -> T {
    text.parse()
        .unwrap_or_else(|_| fail("raw-faults: arguments", format!("`{text}` is not a number")))
}

fn ip(text: &str) -> (u8, u8, u8, u8) {
    let parts: Vec<u8> = text.split('.').map(num).collect();
    match parts[..] {
        [a, b, c, d] => (a, b, c, d),
        _ => fail("raw-faults: arguments", format!("`{text}` is not A.B.C.D")),
    }
}

/// Waits `ms` milliseconds on the monotonic clock.
fn sleep_ms(ms: u64) {
    monotonic_clock::subscribe_duration(ms * 1_000_000).block();
}

fn now_ms() -> u64 {
    monotonic_clock::now() / 1_000_000
}

/// A stream error in the WIT's words.
fn stream_error(e: &StreamError) -> String {
    match e {
        StreamError::Closed => "closed".into(),
        StreamError::LastOperationFailed(err) => match network_error_code(err) {
            Some(code) => code.name().into(),
            None => format!("last-operation-failed({})", err.to_debug_string()),
        },
    }
}

fn reset_reader(net: &Network, addr: (u8, u8, u8, u8), port: u16) {
    let sock = new_tcp("reset-reader: create", Family::Ipv4);
    let (input, output) = tcp_connect("reset-reader: connect", &sock, net, v4(addr, port))
        .unwrap_or_else(|e| fail("reset-reader: connect", format!("{e:?}")));
    write_all("reset-reader: write", &output, b"x");
    let ready = input.subscribe();
    // Bounded: each round reads or waits a second of the network's time.
    for _ in 0..3_600 {
        match input.read(64 * 1024) {
            Ok(_) => ready.block(),
            Err(e) => {
                println!("read: {}", stream_error(&e));
                return;
            }
        }
    }
    fail("reset-reader: read", "the stream neither ended nor failed");
}

fn late_acceptor(net: &Network, port: u16, wait_ms: u64) {
    let listener = new_tcp("late-acceptor: create", Family::Ipv4);
    let bind = tcp_bind(
        "late-acceptor: bind",
        &listener,
        net,
        v4((0, 0, 0, 0), port),
    );
    bind.unwrap_or_else(|e| fail("late-acceptor: bind", format!("{e:?}")));
    tcp_listen("late-acceptor: listen", &listener)
        .unwrap_or_else(|e| fail("late-acceptor: listen", format!("{e:?}")));
    println!("listening");
    sleep_ms(wait_ms);
    for _ in 0..2 {
        match listener.accept() {
            Ok(_) => println!("accept: ok"),
            Err(code) => println!("accept: {}", code.name()),
        }
    }
}

fn timed_echo(net: &Network, addr: (u8, u8, u8, u8), port: u16, bytes: usize) {
    let sock = new_tcp("timed-echo: create", Family::Ipv4);
    let (input, output) = tcp_connect("timed-echo: connect", &sock, net, v4(addr, port))
        .unwrap_or_else(|e| fail("timed-echo: connect", format!("{e:?}")));
    let started = now_ms();
    let data = vec![7u8; bytes];
    write_all("timed-echo: write", &output, &data);
    let back = raw::read_exact("timed-echo: read", &input, bytes);
    if back != data {
        fail("timed-echo: read", "the echo differs");
    }
    println!("echoed {bytes} bytes in {} ms", now_ms() - started);
}

fn udp_sender(net: &Network, addr: (u8, u8, u8, u8), port: u16, n: u32) {
    let sock = new_udp("udp-sender: create", Family::Ipv4);
    let bind = udp_bind("udp-sender: bind", &sock, net, v4((0, 0, 0, 0), 0));
    bind.unwrap_or_else(|e| fail("udp-sender: bind", format!("{e:?}")));
    let (_input, output) = udp_streams("udp-sender: streams", &sock, None);
    for i in 0..n {
        let d = dgram(&i.to_le_bytes(), Some(v4(addr, port)));
        udp_send("udp-sender: send", &output, &[d])
            .unwrap_or_else(|e| fail("udp-sender: send", format!("{e:?}")));
    }
    println!("sent {n}");
}

fn udp_counter(net: &Network, port: u16, wait_ms: u64) {
    let sock = new_udp("udp-counter: create", Family::Ipv4);
    let bind = udp_bind("udp-counter: bind", &sock, net, v4((0, 0, 0, 0), port));
    bind.unwrap_or_else(|e| fail("udp-counter: bind", format!("{e:?}")));
    let (input, _output) = udp_streams("udp-counter: streams", &sock, None);
    println!("counting");
    let until = now_ms() + wait_ms;
    let ready = input.subscribe();
    let (mut total, mut distinct, mut out_of_order) = (0, BTreeSet::new(), 0);
    let mut last = None;
    // Bounded by the deadline: each round waits on the stream or the clock.
    while now_ms() < until {
        let batch = input
            .receive(64)
            .unwrap_or_else(|e| fail("udp-counter: receive", format!("{e:?}")));
        for d in &batch {
            let n = u32::from_le_bytes(d.data[..4].try_into().unwrap_or_default());
            total += 1;
            distinct.insert(n);
            if last.is_some_and(|l| n < l) {
                out_of_order += 1;
            }
            last = Some(n);
        }
        if batch.is_empty() {
            let timeout = monotonic_clock::subscribe_duration(10_000_000);
            raw::wasi::io::poll::poll(&[&ready, &timeout]);
        }
    }
    println!(
        "received {total} datagrams, {} distinct, {out_of_order} out of order",
        distinct.len()
    );
}

fn lookup(net: &Network, name: &str) {
    let stream = resolve_addresses(net, name)
        .unwrap_or_else(|e| fail("lookup: resolve-addresses", format!("{e:?}")));
    let ready = stream.subscribe();
    let mut found = Vec::new();
    // Bounded: a lookup ends, and a stream holds few addresses.
    for _ in 0..1_000 {
        match stream.resolve_next_address() {
            Ok(Some(addr)) => found.push(format!("{addr:?}")),
            Ok(None) => return println!("lookup: {}", found.join(", ")),
            Err(ErrorCode::WouldBlock) => ready.block(),
            Err(code) => return println!("lookup: {}", code.name()),
        }
    }
    fail("lookup", "the lookup never ended");
}
