//! p3-echo-client: the echo server's client, written the way a program would be, on
//! `wasi:sockets/types@0.3.0` through wit-bindgen's async bindings. It connects to ADDRESS
//! (argv[1], `HOST:PORT`; a name is looked up with `ip-name-lookup`), sends KIB KiB (argv[2])
//! in chunks of CHUNK bytes (argv[3], default 16384; after half of them it waits PAUSE_MS,
//! argv[4], default 0) while reading the echo concurrently, ends
//! its send stream, and checks that the echo is the same bytes, followed by the server's end of
//! stream and both futures' `ok`. Each connection's bytes differ (they start at an offset
//! taken from the client's port), so a server that mixed two clients up would be caught.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;

use guest_support::{check, check_eq, expect_ok, fail, finish, start};
use raw_p3::{
    IpAddress, IpAddressFamily, IpSocketAddress, StreamResult, TcpSocket, byte_stream, port_of,
    resolve_addresses, v4, v6, within,
};

struct Run;

impl raw_p3::exports::wasi::cli::run::Guest for Run {
    async fn run() -> Result<(), ()> {
        start("p3-echo-client");
        let args: Vec<String> = std::env::args().skip(1).collect();
        let (Some(addr), Some(kib)) = (args.first(), args.get(1).and_then(|n| n.parse().ok()))
        else {
            fail("arguments", "usage: p3-echo-client HOST:PORT KIB [CHUNK]")
        };
        let chunk = args
            .get(2)
            .and_then(|n| n.parse().ok())
            .unwrap_or(16 * 1024);
        let pause = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(0);
        let remote = address(addr).await;
        client(remote, kib, chunk, pause).await;
        finish();
        Ok(())
    }
}

raw_p3::export!(Run with_types_in raw_p3);

/// `HOST:PORT` as a socket address, the host looked up unless it is an IP address.
async fn address(text: &str) -> IpSocketAddress {
    let Some((host, port)) = text.rsplit_once(':') else {
        fail("arguments", format!("`{text}` is not HOST:PORT"))
    };
    let port: u16 = port
        .parse()
        .unwrap_or_else(|_| fail("arguments", format!("bad port in `{text}`")));
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip = match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => {
            let [a, b, c, d] = ip.octets();
            IpAddress::Ipv4((a, b, c, d))
        }
        Ok(std::net::IpAddr::V6(ip)) => {
            let [a, b, c, d, e, f, g, h] = ip.segments();
            IpAddress::Ipv6((a, b, c, d, e, f, g, h))
        }
        Err(_) => {
            let found = within("lookup", resolve_addresses(host.to_string())).await;
            let found = expect_ok("look the server up", found);
            match found.into_iter().next() {
                Some(ip) => ip,
                None => fail("look the server up", "no address"),
            }
        }
    };
    match ip {
        IpAddress::Ipv4(a) => v4(a, port),
        IpAddress::Ipv6(a) => v6(a, port),
    }
}

/// Byte `i` of the transfer that starts at `seed`.
fn byte(seed: usize, i: usize) -> u8 {
    ((seed + i) % 251) as u8
}

/// Both futures' outputs (run concurrently).
async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut ra, mut rb) = (None, None);
    poll_fn(|cx| {
        if ra.is_none()
            && let Poll::Ready(v) = a.as_mut().poll(cx)
        {
            ra = Some(v);
        }
        if rb.is_none()
            && let Poll::Ready(v) = b.as_mut().poll(cx)
        {
            rb = Some(v);
        }
        match (ra.is_some(), rb.is_some()) {
            (true, true) => Poll::Ready((ra.take().unwrap(), rb.take().unwrap())),
            _ => Poll::Pending,
        }
    })
    .await
}

async fn client(remote: IpSocketAddress, kib: usize, chunk: usize, pause_ms: u64) {
    let family = match remote {
        IpSocketAddress::Ipv4(_) => IpAddressFamily::Ipv4,
        IpSocketAddress::Ipv6(_) => IpAddressFamily::Ipv6,
    };
    let sock = expect_ok("create", TcpSocket::create(family));
    check_eq(
        "connect",
        within("connect", sock.connect(remote)).await,
        Ok(()),
    );
    let seed = port_of(&expect_ok("local address", sock.get_local_address())) as usize;
    let total = kib * 1024;
    let chunk = chunk.max(1);
    let (mut rx, received) = sock.receive();
    let (mut tx, data) = byte_stream();
    let sent = sock.send(data);
    let writer = async {
        let mut at = 0;
        let mut paused = pause_ms == 0;
        while at < total {
            if !paused && at >= total / 2 {
                paused = true;
                println!("pausing after {at} bytes");
                raw_p3::sleep_ms(pause_ms).await;
            }
            let len = chunk.min(total - at);
            let bytes: Vec<u8> = (at..at + len).map(|i| byte(seed, i)).collect();
            let left = within("write", tx.write_all(bytes)).await;
            at += len - left.len();
            if !left.is_empty() {
                break;
            }
        }
        drop(tx);
        (at, within("send future", sent).await)
    };
    let reader = async {
        let (mut n, mut same, mut ended) = (0, true, false);
        while n <= total {
            let (result, buf) = within("read", rx.read(Vec::with_capacity(64 * 1024))).await;
            match result {
                StreamResult::Complete(_) => {
                    same &= buf.iter().enumerate().all(|(k, b)| *b == byte(seed, n + k));
                    n += buf.len();
                }
                StreamResult::Dropped => {
                    ended = true;
                    break;
                }
                StreamResult::Cancelled => break,
            }
        }
        (n, same, ended)
    };
    let ((wrote, send_result), (echoed, same, ended)) = join(writer, reader).await;
    check_eq("sent every byte", wrote, total);
    check_eq("send future", send_result, Ok(()));
    check_eq("echoed as many bytes", echoed, total);
    check("echoed the same bytes", same, || "differ".into());
    check("then the server's end of stream", ended, || "no end".into());
    check_eq(
        "receive future",
        within("receive future", received).await,
        Ok(()),
    );
    println!("echoed {echoed} bytes");
}
