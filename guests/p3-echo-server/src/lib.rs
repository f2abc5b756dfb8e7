//! p3-echo-server: a small echo server written the way a program would be, on
//! `wasi:sockets/types@0.3.0` through wit-bindgen's async bindings. It listens on ADDRESS
//! (argv[1], `IP:PORT`, port 0 for any), prints `listening on IP:PORT`, and serves CONNECTIONS
//! (argv[2]) connections, each in a task of its own (`wit_bindgen::spawn_local`), so several
//! clients are served at once: every byte a client sends comes back, until the client ends its
//! stream, when the server ends its own. It prints one line per connection and exits once all
//! are served: 0 when every echo ended well, else 1.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::task::{Poll, Waker};

use raw_p3::{IpSocketAddress, StreamResult, TcpSocket, byte_stream, v4, v6};

struct Run;

impl raw_p3::exports::wasi::cli::run::Guest for Run {
    async fn run() -> Result<(), ()> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let (Some(addr), Some(n)) = (
            args.first().and_then(|a| a.parse::<SocketAddr>().ok()),
            args.get(1).and_then(|n| n.parse::<usize>().ok()),
        ) else {
            eprintln!("usage: p3-echo-server IP:PORT CONNECTIONS");
            std::process::exit(2)
        };
        match serve(addr, n).await {
            Ok(()) => Ok(()),
            Err(e) => {
                eprintln!("p3-echo-server: {e}");
                std::process::exit(1)
            }
        }
    }
}

raw_p3::export!(Run with_types_in raw_p3);

fn to_wasi(addr: SocketAddr) -> IpSocketAddress {
    match addr.ip() {
        IpAddr::V4(ip) => {
            let [a, b, c, d] = ip.octets();
            v4((a, b, c, d), addr.port())
        }
        IpAddr::V6(ip) => {
            let [a, b, c, d, e, f, g, h] = ip.segments();
            v6((a, b, c, d, e, f, g, h), addr.port())
        }
    }
}

fn from_wasi(addr: &IpSocketAddress) -> SocketAddr {
    match addr {
        IpSocketAddress::Ipv4(a) => {
            let (x, y, z, w) = a.address;
            SocketAddr::from(([x, y, z, w], a.port))
        }
        IpSocketAddress::Ipv6(a) => {
            let (x0, x1, x2, x3, x4, x5, x6, x7) = a.address;
            SocketAddr::from(([x0, x1, x2, x3, x4, x5, x6, x7], a.port))
        }
    }
}

/// How many connection tasks are still running, and who waits for none to be.
#[derive(Default)]
struct Running {
    left: usize,
    failed: usize,
    waiter: Option<Waker>,
}

async fn serve(addr: SocketAddr, n: usize) -> Result<(), String> {
    let family = match addr {
        SocketAddr::V4(_) => raw_p3::IpAddressFamily::Ipv4,
        SocketAddr::V6(_) => raw_p3::IpAddressFamily::Ipv6,
    };
    let listener = TcpSocket::create(family).map_err(|e| format!("create: {e:?}"))?;
    listener
        .bind(to_wasi(addr))
        .map_err(|e| format!("bind {addr}: {e:?}"))?;
    let mut accepts = listener.listen().map_err(|e| format!("listen: {e:?}"))?;
    let local = listener
        .get_local_address()
        .map_err(|e| format!("local address: {e:?}"))?;
    println!("listening on {}", from_wasi(&local));
    let _ = std::io::stdout().flush();

    let running = Rc::new(RefCell::new(Running {
        left: n,
        ..Running::default()
    }));
    for i in 1..=n {
        let Some(conn) = accepts.next().await else {
            return Err("the listen stream ended".into());
        };
        match conn.get_remote_address() {
            Ok(peer) => println!("connection {i} from {}", from_wasi(&peer)),
            Err(e) => println!("connection {i} from an unknown peer ({e:?})"),
        }
        let running = running.clone();
        wit_bindgen::spawn_local(async move {
            let ok = match echo(conn).await {
                Ok(bytes) => {
                    println!("connection {i}: echoed {bytes} bytes");
                    true
                }
                Err(e) => {
                    println!("connection {i}: {e}");
                    false
                }
            };
            let mut r = running.borrow_mut();
            r.left -= 1;
            r.failed += usize::from(!ok);
            if let Some(w) = r.waiter.take() {
                w.wake();
            }
        });
    }
    drop(accepts);
    drop(listener);
    // Every connection task done.
    poll_fn(|cx| {
        let mut r = running.borrow_mut();
        if r.left == 0 {
            return Poll::Ready(());
        }
        r.waiter = Some(cx.waker().clone());
        Poll::Pending
    })
    .await;
    let failed = running.borrow().failed;
    println!("served {n} connections, {failed} failed");
    let _ = std::io::stdout().flush();
    match failed {
        0 => Ok(()),
        _ => Err(format!("{failed} of {n} connections failed")),
    }
}

/// Echoes `conn` until its peer ends its stream; then ends ours. The bytes echoed.
async fn echo(conn: TcpSocket) -> Result<usize, String> {
    let (mut rx, received) = conn.receive();
    let (mut tx, data) = byte_stream();
    let sent = conn.send(data);
    let mut total = 0;
    loop {
        let (result, buf) = rx.read(Vec::with_capacity(64 * 1024)).await;
        match result {
            StreamResult::Complete(_) => {
                total += buf.len();
                let left = tx.write_all(buf).await;
                if !left.is_empty() {
                    return Err(format!(
                        "the peer stopped taking the echo after {total} bytes"
                    ));
                }
            }
            StreamResult::Dropped => break,
            StreamResult::Cancelled => return Err("a read was cancelled".into()),
        }
    }
    drop(tx);
    sent.await.map_err(|e| format!("send: {e:?}"))?;
    received.await.map_err(|e| format!("receive: {e:?}"))?;
    Ok(total)
}
