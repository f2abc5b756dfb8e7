//! bench-http: the server of wasock-bench's HTTP load workload.
//!
//! ```text
//! bench-http serve 127.0.0.1:PORT MAX_SECS [wstd|batch|tokio]
//! ```
//!
//! An axum `Router` served by hyper's HTTP/1 connection driver (`hyper::server::conn::http1`,
//! keep-alive on), one task per connection, on one thread:
//!
//! - `GET /` answers `Hello, World!`;
//! - `POST /echo` answers with the request body;
//! - `GET /quit` answers `bye` and stops the server.
//!
//! The server also stops after `MAX_SECS`. Once stopped it stops accepting, waits at most
//! [`DRAIN`] for its connections to end, prints one line
//! `BENCH units=REQUESTS ns=ELAPSED conns=ACCEPTED conn_errors=N accept_errors=N` and exits.
//!
//! The same source builds for `wasm32-wasip2` and for the host; only the executor and the socket
//! adapter differ, in one module chosen here: [`wasi`](src/wasi.rs) (raw `wasi:sockets`
//! bindings; wstd's reactor, or with `batch` the executor of [`batch`](src/batch.rs)) or
//! [`tokio_rt`](src/tokio_rt.rs) (a current-thread tokio runtime and `tokio::net`, as a tokio
//! application is written): the host's, and the guest's with the `tokio` feature. The executor
//! argument names the build's executor (a build has one, or wstd's and `batch`).

#[cfg(all(target_os = "wasi", not(feature = "tokio")))]
mod batch;
#[cfg_attr(all(target_os = "wasi", not(feature = "tokio")), path = "wasi.rs")]
#[cfg_attr(any(not(target_os = "wasi"), feature = "tokio"), path = "tokio_rt.rs")]
mod platform;
// The one fix to this toolchain's wasi-libc that tokio's accept needs (see the crate).
#[cfg(all(target_os = "wasi", feature = "tokio"))]
use wasi_libc_fix as _;

use axum::Router;
use axum::body::Bytes;
use axum::http::header;
use axum::routing::{get, post};
use hyper::server::conn::http1;
use hyper_util::service::TowerToHyperService;
use std::future::{Future, poll_fn};
use std::net::SocketAddrV4;
use std::pin::pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

/// How long a stopped server waits for its open connections to end.
const DRAIN: Duration = Duration::from_secs(2);
/// How often the drain looks at the number of open connections.
const DRAIN_STEP: Duration = Duration::from_millis(5);
/// Pause after a failed accept (e.g. out of descriptors), so that a failing accept cannot spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(1);
/// The body of `GET /`.
const HELLO: &str = "Hello, World!";

/// Requests answered by `/` and `/echo` (not `/quit`).
static REQUESTS: AtomicU64 = AtomicU64::new(0);
/// Connections accepted, and those still open.
static ACCEPTED: AtomicU64 = AtomicU64::new(0);
static OPEN: AtomicU64 = AtomicU64::new(0);
/// Connections that hyper ended with an error (a peer's reset, a malformed request).
static CONN_ERRORS: AtomicU64 = AtomicU64::new(0);
static ACCEPT_ERRORS: AtomicU64 = AtomicU64::new(0);
/// Set by `GET /quit`; the accept loop's waker is woken with it.
static QUIT: AtomicBool = AtomicBool::new(false);
static QUIT_WAKER: Mutex<Option<Waker>> = Mutex::new(None);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (addr, max) = match parse(&args) {
        Ok(v) => v,
        Err(e) => {
            eprintln!(
                "bench-http: {e}\nusage: bench-http serve 127.0.0.1:PORT MAX_SECS [wstd|batch|tokio]"
            );
            std::process::exit(2);
        }
    };
    platform::run(async move {
        if let Err(e) = serve(addr, max).await {
            eprintln!("bench-http: {e}");
            std::process::exit(1);
        }
    });
}

fn parse(args: &[String]) -> Result<(SocketAddrV4, Duration), String> {
    let (args, executor) = match args {
        [rest @ .., last] if rest.len() == 3 => (rest, last.as_str()),
        _ => (args, "wstd"),
    };
    platform::set_executor(executor)?;
    match args {
        [cmd, addr, secs] if cmd == "serve" => {
            let addr: SocketAddrV4 = addr.parse().map_err(|e| format!("`{addr}`: {e}"))?;
            if !addr.ip().is_loopback() {
                return Err(format!("{addr} is not a loopback address"));
            }
            let secs: u64 = secs.parse().map_err(|e| format!("`{secs}`: {e}"))?;
            Ok((addr, Duration::from_secs(secs)))
        }
        _ => Err("expected `serve ADDR MAX_SECS [EXECUTOR]`".to_owned()),
    }
}

/// The application: what a real axum service would be, with nothing WASI-specific.
fn app() -> Router {
    Router::new()
        .route("/", get(hello))
        .route("/echo", post(echo))
        .route("/quit", get(quit))
}

async fn hello() -> &'static str {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
    HELLO
}

async fn echo(body: Bytes) -> Bytes {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
    body
}

async fn quit() -> ([(header::HeaderName, &'static str); 1], &'static str) {
    QUIT.store(true, Ordering::Release);
    if let Some(waker) = QUIT_WAKER.lock().unwrap_or_else(|e| e.into_inner()).take() {
        waker.wake();
    }
    ([(header::CONNECTION, "close")], "bye")
}

/// Accepts and serves until `GET /quit` or `max`, then drains and prints the BENCH line.
async fn serve(addr: SocketAddrV4, max: Duration) -> std::io::Result<()> {
    let listener = platform::Listener::bind(addr).await?;
    let start = Instant::now();
    let router = app();
    let mut stop = pin!(first(quit_requested(), platform::sleep(max)));
    // Bounded by `stop`: `GET /quit` or the deadline ends it.
    loop {
        match first(listener.accept(), stop.as_mut()).await {
            Either::Left(Ok(io)) => {
                ACCEPTED.fetch_add(1, Ordering::Relaxed);
                platform::spawn(connection(io, router.clone()));
            }
            Either::Left(Err(e)) => {
                if ACCEPT_ERRORS.fetch_add(1, Ordering::Relaxed) == 0 {
                    eprintln!("bench-http: accept: {e}");
                }
                platform::sleep(ACCEPT_BACKOFF).await;
            }
            Either::Right(_) => break,
        }
    }
    let elapsed = start.elapsed();
    drop(listener);
    let steps = DRAIN.as_millis() / DRAIN_STEP.as_millis();
    for _ in 0..steps {
        if OPEN.load(Ordering::Acquire) == 0 {
            break;
        }
        platform::sleep(DRAIN_STEP).await;
    }
    println!(
        "BENCH units={} ns={} conns={} conn_errors={} accept_errors={}",
        REQUESTS.load(Ordering::Relaxed),
        elapsed.as_nanos(),
        ACCEPTED.load(Ordering::Relaxed),
        CONN_ERRORS.load(Ordering::Relaxed),
        ACCEPT_ERRORS.load(Ordering::Relaxed),
    );
    Ok(())
}

/// One connection: hyper's HTTP/1 driver with the router as its service, until the peer closes.
async fn connection(io: platform::Io, router: Router) {
    OPEN.fetch_add(1, Ordering::AcqRel);
    let service = TowerToHyperService::new(router);
    if http1::Builder::new()
        .serve_connection(io, service)
        .await
        .is_err()
    {
        CONN_ERRORS.fetch_add(1, Ordering::Relaxed);
    }
    OPEN.fetch_sub(1, Ordering::AcqRel);
}

/// Ready once `GET /quit` has been answered.
async fn quit_requested() {
    poll_fn(|cx| {
        if QUIT.load(Ordering::Acquire) {
            return Poll::Ready(());
        }
        *QUIT_WAKER.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
        // A quit between the load and the store would find no waker: look again.
        if QUIT.load(Ordering::Acquire) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await
}

enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Whichever of `a` and `b` finishes first (`a` when both are ready).
async fn first<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if let Poll::Ready(x) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(x));
        }
        if let Poll::Ready(y) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(y));
        }
        Poll::Pending
    })
    .await
}
