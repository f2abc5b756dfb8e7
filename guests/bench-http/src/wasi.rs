//! wasm32-wasip2: a single-threaded executor runs the tasks, wstd's reactor (`wstd`, the default)
//! or [`batch`](crate::batch)'s; the listener and the connections are raw `wasi:sockets`
//! resources, adapted to `hyper::rt::{Read, Write}` here.
//!
//! The adapter calls the non-blocking stream functions first and waits on a pollable only when
//! they report no progress, so a connection with data waiting costs one `read` and no `poll`.

use crate::batch;
use hyper::rt::{Read, ReadBufCursor, Write};
use std::future::Future;
use std::io;
use std::net::SocketAddrV4;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use wasip2::clocks::monotonic_clock::subscribe_duration;
use wasip2::io::poll::Pollable;
use wasip2::io::streams::{InputStream, OutputStream, StreamError};
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::network::{ErrorCode, IpSocketAddress, Ipv4SocketAddress};
use wasip2::sockets::tcp::{IpAddressFamily, ShutdownType, TcpSocket};
use wasip2::sockets::tcp_create_socket::create_tcp_socket;
use wstd::runtime::{AsyncPollable, WaitFor};

/// Pending connections the listener asks for (the host may cap it).
const BACKLOG: u64 = 1024;
/// Reads that may come back empty after their pollable said ready before the task yields.
const EMPTY_READS: usize = 16;

/// The executor is [`batch`]'s rather than wstd's.
static BATCH: AtomicBool = AtomicBool::new(false);

fn batch() -> bool {
    BATCH.load(Ordering::Relaxed)
}

/// Chooses the executor: `wstd` or `batch`.
pub(crate) fn set_executor(name: &str) -> Result<(), String> {
    match name {
        "wstd" => BATCH.store(false, Ordering::Relaxed),
        "batch" => BATCH.store(true, Ordering::Relaxed),
        other => return Err(format!("unknown executor `{other}` (wstd, batch)")),
    }
    Ok(())
}

/// Runs `fut` to completion, then exits (detached connection tasks would otherwise keep wstd's
/// reactor running).
pub(crate) fn run(fut: impl Future<Output = ()> + 'static) {
    if batch() {
        batch::block_on(fut);
    } else {
        wstd::runtime::block_on(fut);
    }
    std::process::exit(0);
}

/// Runs `fut` as a detached task.
pub(crate) fn spawn(fut: impl Future<Output = ()> + 'static) {
    if batch() {
        batch::spawn(fut);
    } else {
        wstd::runtime::spawn(fut).detach();
    }
}

pub(crate) async fn sleep(d: Duration) {
    let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    Sub::new(subscribe_duration(nanos)).wait().await;
}

/// A pollable registered with the executor in use.
enum Sub {
    Wstd(AsyncPollable),
    Batch(Rc<Pollable>),
}

impl Sub {
    fn new(pollable: Pollable) -> Sub {
        if batch() {
            Sub::Batch(Rc::new(pollable))
        } else {
            Sub::Wstd(AsyncPollable::new(pollable))
        }
    }

    /// Ready once the pollable is.
    fn wait(&self) -> Wait {
        match self {
            Sub::Wstd(p) => Wait::Wstd(p.wait_for()),
            Sub::Batch(p) => Wait::Batch(batch::Wait::new(p.clone())),
        }
    }
}

/// One wait for a [`Sub`]: it stays registered until it fires or is dropped.
enum Wait {
    Wstd(WaitFor),
    Batch(batch::Wait),
}

impl Future for Wait {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.get_mut() {
            Wait::Wstd(w) => Pin::new(w).poll(cx),
            Wait::Batch(w) => Pin::new(w).poll(cx),
        }
    }
}

fn sock_err(op: &str, e: ErrorCode) -> io::Error {
    io::Error::other(format!("{op}: {e:?}"))
}

/// A listening `wasi:sockets/tcp` socket.
pub(crate) struct Listener {
    // Field order is drop order: the pollable before its socket.
    ready: Sub,
    socket: TcpSocket,
}

impl Listener {
    pub(crate) async fn bind(addr: SocketAddrV4) -> io::Result<Listener> {
        let socket = create_tcp_socket(IpAddressFamily::Ipv4).map_err(|e| sock_err("create", e))?;
        let [a, b, c, d] = addr.ip().octets();
        let local = IpSocketAddress::Ipv4(Ipv4SocketAddress {
            port: addr.port(),
            address: (a, b, c, d),
        });
        let ready = Sub::new(socket.subscribe());
        socket
            .start_bind(&instance_network(), local)
            .map_err(|e| sock_err("bind", e))?;
        ready.wait().await;
        socket.finish_bind().map_err(|e| sock_err("bind", e))?;
        socket
            .set_listen_backlog_size(BACKLOG)
            .map_err(|e| sock_err("backlog", e))?;
        socket.start_listen().map_err(|e| sock_err("listen", e))?;
        ready.wait().await;
        socket.finish_listen().map_err(|e| sock_err("listen", e))?;
        Ok(Listener { ready, socket })
    }

    /// The next connection; waits while none is pending.
    pub(crate) async fn accept(&self) -> io::Result<Io> {
        // Each turn either returns or waits for the listener's pollable; the caller races this
        // with its stop signal.
        loop {
            match self.socket.accept() {
                Ok((socket, input, output)) => return Ok(Io::new(socket, input, output)),
                Err(ErrorCode::WouldBlock) => self.ready.wait().await,
                Err(e) => return Err(sock_err("accept", e)),
            }
        }
    }
}

/// One accepted connection as hyper's I/O.
pub(crate) struct Io {
    // Field order is drop order: pollables before their streams, streams before the socket.
    read_wait: Option<Wait>,
    write_wait: Option<Wait>,
    readable: Sub,
    writable: Sub,
    input: InputStream,
    output: OutputStream,
    socket: TcpSocket,
    /// The answer of the last `check-write`, until the `write` it permits (0: ask again).
    permit: u64,
    /// A `flush` was requested and has not completed.
    flushing: bool,
}

impl Io {
    fn new(socket: TcpSocket, input: InputStream, output: OutputStream) -> Io {
        Io {
            read_wait: None,
            write_wait: None,
            readable: Sub::new(input.subscribe()),
            writable: Sub::new(output.subscribe()),
            input,
            output,
            socket,
            permit: 0,
            flushing: false,
        }
    }

    /// Waits for the output stream's pollable: `Ready` once it fired (look again), else `Pending`.
    fn poll_writable(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let wait = self.write_wait.get_or_insert_with(|| self.writable.wait());
        let ready = Pin::new(wait).poll(cx);
        if ready.is_ready() {
            self.write_wait = None;
        }
        ready
    }

    /// The output stream's permit, waiting for one while it is 0.
    fn poll_permit(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        // Each turn asks the stream once and then waits; the waits bound the loop.
        loop {
            if self.permit > 0 {
                return Poll::Ready(Ok(self.permit));
            }
            match self.output.check_write() {
                Ok(0) => {}
                Ok(n) => {
                    self.permit = n;
                    // A wait that did not fire stays registered with the reactor, which would
                    // wake this task each time the stream is writable: drop it.
                    self.write_wait = None;
                    continue;
                }
                Err(e) => return Poll::Ready(Err(stream_err(e))),
            }
            if self.poll_writable(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

fn stream_err(e: StreamError) -> io::Error {
    match e {
        StreamError::Closed => io::Error::from(io::ErrorKind::BrokenPipe),
        StreamError::LastOperationFailed(e) => io::Error::other(e.to_debug_string()),
    }
}

impl Read for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        for _ in 0..EMPTY_READS {
            let result = match this.input.read(buf.remaining() as u64) {
                Ok(bytes) if bytes.is_empty() => None,
                Ok(bytes) => {
                    buf.put_slice(&bytes);
                    Some(Ok(()))
                }
                // End of stream: nothing put in `buf`.
                Err(StreamError::Closed) => Some(Ok(())),
                Err(StreamError::LastOperationFailed(e)) => {
                    Some(Err(io::Error::other(e.to_debug_string())))
                }
            };
            if let Some(result) = result {
                // As in `poll_permit`: a wait that did not fire must not stay registered.
                this.read_wait = None;
                return Poll::Ready(result);
            }
            let wait = this.read_wait.get_or_insert_with(|| this.readable.wait());
            if Pin::new(wait).poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.read_wait = None;
        }
        // The pollable keeps saying ready with nothing to read: yield, then try again.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Write for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let permit = match this.poll_permit(cx) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        let n = buf.len().min(usize::try_from(permit).unwrap_or(usize::MAX));
        // A permit is for the next `write` only, whatever that write's length.
        this.permit = 0;
        this.output.write(&buf[..n]).map_err(stream_err)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.flushing {
            this.output.flush().map_err(stream_err)?;
            // No writes until the flush completes, which `check-write` then says with a permit.
            this.flushing = true;
            this.permit = 0;
        }
        match this.poll_permit(cx) {
            Poll::Ready(Ok(_)) => {
                this.flushing = false;
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => {
                this.flushing = false;
                Poll::Ready(Err(e))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.as_mut().poll_flush(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other,
        }
        // The peer may already be gone; closing is all that is left either way.
        let _ = self.socket.shutdown(ShutdownType::Send);
        Poll::Ready(Ok(()))
    }
}
