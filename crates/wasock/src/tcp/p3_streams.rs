//! 0.3's TCP streams over the same connection and listener as 0.2's: `listen`'s stream of
//! sockets, `receive`'s and `send`'s byte streams.
//!
//! Bytes go between the kernel (or the virtual network) and the guest's own buffer, with no host
//! buffer between: one copy per byte. Nothing is read ahead, so a peer that floods a guest which
//! does not read fills the kernel's buffers, not the host's memory.

use super::{Acceptor, Conn, TcpSocket};
use crate::ctx::WasockCtxView;
use crate::error::{ErrorCode, SocketError};
use crate::limits::Way;
use std::future::Future;
use std::net::Shutdown;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::oneshot;
use wasmtime::StoreContextMut;
use wasmtime::component::StreamResult;
use wasmtime::component::{Destination, Resource, Source, StreamConsumer, StreamProducer};

/// Largest single read into the guest's buffer when the reader is the host (a guest reader
/// brings its own buffer).
const HOST_READ: usize = 64 * 1024;
/// How long `listen`'s stream waits before trying again when accepting failed (the socket
/// limit, or an `accept(2)` error such as `EMFILE`): the stream stays open, as the WIT wants.
const ACCEPT_RETRY: Duration = Duration::from_millis(20);

/// How a 0.3 byte stream ended: `ok` at the peer's FIN (or the guest's drop), else the error.
pub(crate) type Ending = oneshot::Receiver<Result<(), ErrorCode>>;

/// A wait in progress, kept across polls.
type Wait = Option<Pin<Box<dyn Future<Output = ()> + Send>>>;

/// Polls the wait in `slot`, making it with `make` if there is none; clears it once done.
fn poll_wait<F>(slot: &mut Wait, cx: &mut Context<'_>, make: impl FnOnce() -> F) -> Poll<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let wait = slot.get_or_insert_with(|| Box::pin(make()));
    let done = wait.as_mut().poll(cx);
    if done.is_ready() {
        *slot = None;
    }
    done
}

/// Nothing could be done now: `Cancelled` when the guest asked to finish, else `Pending`.
fn not_now(finish: bool) -> Poll<wasmtime::Result<StreamResult>> {
    match finish {
        true => Poll::Ready(Ok(StreamResult::Cancelled)),
        false => Poll::Pending,
    }
}

/// `listen`'s `stream<tcp-socket>`: one accepted socket per read; waits, never ends, while none
/// is pending. It outlives the listening `tcp-socket` handle, as the WIT's ownership rules say.
pub(crate) struct AcceptStream<T: 'static> {
    acceptor: Arc<Acceptor>,
    getter: for<'a> fn(&'a mut T) -> WasockCtxView<'a>,
    wait: Wait,
    /// The socket limit refused an accept, and no accept has succeeded since: while the
    /// instance stays at the limit the stream waits without asking (and counting) again, so
    /// one wait at the limit is one refusal in the counters, not one per retry.
    refused: bool,
}

impl<T: 'static> AcceptStream<T> {
    pub(crate) fn new(
        acceptor: Acceptor,
        getter: for<'a> fn(&'a mut T) -> WasockCtxView<'a>,
    ) -> Self {
        AcceptStream {
            acceptor: Arc::new(acceptor),
            getter,
            wait: None,
            refused: false,
        }
    }

    /// Waits until a connection is pending, or for a moment after a failure.
    fn poll_ready(&mut self, cx: &mut Context<'_>, failed: bool) -> Poll<()> {
        let acceptor = self.acceptor.clone();
        poll_wait(&mut self.wait, cx, move || async move {
            match failed {
                true => acceptor.gate().sleep(ACCEPT_RETRY).await,
                false => acceptor.ready().await,
            }
        })
    }
}

impl<T: 'static> StreamProducer<T> for AcceptStream<T> {
    type Item = Resource<TcpSocket>;
    type Buffer = Option<Resource<TcpSocket>>;

    fn poll_produce<'a>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut store: StoreContextMut<'a, T>,
        mut dst: Destination<'a, Self::Item, Self::Buffer>,
        finish: bool,
    ) -> Poll<wasmtime::Result<StreamResult>> {
        let this = self.get_mut();
        // A wait under way ends first; then one accept per round.
        for _ in 0..2 {
            if this.wait.is_some() {
                let pending = this.poll_ready(cx, false).is_pending();
                if pending {
                    return not_now(finish);
                }
            }
            if dst.remaining(&mut store) == Some(0) {
                // A zero-length read asks whether a read would not wait.
                return match this.poll_ready(cx, false) {
                    Poll::Ready(()) => Poll::Ready(Ok(StreamResult::Completed)),
                    Poll::Pending => not_now(finish),
                };
            }
            let still_refused = this.refused && this.acceptor.gate().socket_limit_reached();
            let failed = match still_refused {
                true => true,
                false => match this.acceptor.try_accept() {
                    Ok(Some(sock)) => {
                        this.refused = false;
                        let view = (this.getter)(store.data_mut());
                        let sock = view.table.push(sock)?;
                        dst.set_buffer(Some(sock));
                        return Poll::Ready(Ok(StreamResult::Completed));
                    }
                    Ok(None) => {
                        this.refused = false;
                        false
                    }
                    Err(SocketError::Trap(e)) => return Poll::Ready(Err(e)),
                    Err(SocketError::Code(code)) => {
                        this.refused |= code == ErrorCode::NewSocketLimit;
                        true
                    }
                },
            };
            if this.poll_ready(cx, failed).is_pending() {
                return not_now(finish);
            }
        }
        // Ready again at once: come back through the executor rather than spin here.
        cx.waker().wake_by_ref();
        not_now(finish)
    }
}

/// `receive`'s `stream<u8>`: reads from the connection into the reader's buffer. Dropped by the
/// guest before the end, it shuts the receiving half down (`shutdown(SHUT_RD)`, as the WIT says).
pub(crate) struct ReceiveStream {
    conn: Arc<Conn>,
    ending: Option<oneshot::Sender<Result<(), ErrorCode>>>,
    wait: Wait,
}

impl ReceiveStream {
    pub(crate) fn new(conn: Arc<Conn>) -> (Self, Ending) {
        let (tx, rx) = oneshot::channel();
        let stream = ReceiveStream {
            conn,
            ending: Some(tx),
            wait: None,
        };
        (stream, rx)
    }

    fn end(&mut self, how: Result<(), ErrorCode>) -> Poll<wasmtime::Result<StreamResult>> {
        if let Some(tx) = self.ending.take() {
            let _ = tx.send(how);
        }
        Poll::Ready(Ok(StreamResult::Dropped))
    }

    /// Waits until a read would not block: on the reactor's readiness directly where it can
    /// tell (no allocation), else as an async wait kept across polls. `fresh`: a read just
    /// found nothing, so readiness from now on is new.
    fn poll_readable(&mut self, cx: &mut Context<'_>, fresh: bool) -> Poll<()> {
        if self.wait.is_none()
            && let Some(ready) = self.conn.poll_readable(cx, fresh)
        {
            return ready;
        }
        let conn = self.conn.clone();
        poll_wait(
            &mut self.wait,
            cx,
            move || async move { conn.readable().await },
        )
    }
}

impl Drop for ReceiveStream {
    fn drop(&mut self) {
        if let Some(tx) = self.ending.take() {
            let _ = Conn::shutdown(&self.conn, Shutdown::Read);
            let _ = tx.send(Ok(()));
        }
    }
}

impl<T: 'static> StreamProducer<T> for ReceiveStream {
    type Item = u8;
    type Buffer = bytes::BytesMut;

    fn poll_produce<'a>(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut store: StoreContextMut<'a, T>,
        dst: Destination<'a, Self::Item, Self::Buffer>,
        finish: bool,
    ) -> Poll<wasmtime::Result<StreamResult>> {
        let this = self.get_mut();
        if this.ending.is_none() {
            return Poll::Ready(Ok(StreamResult::Dropped));
        }
        if this.wait.is_some() && this.poll_readable(cx, false).is_pending() {
            return not_now(finish);
        }
        if dst.remaining(&mut store) == Some(0) {
            return match this.poll_readable(cx, false) {
                Poll::Ready(()) => Poll::Ready(Ok(StreamResult::Completed)),
                Poll::Pending => not_now(finish),
            };
        }
        let gate = this.conn.gate();
        let mut dst = dst.as_direct(store, HOST_READ);
        let buf = dst.remaining();
        let want = gate.allowance(Way::In, buf.len());
        let read = match want {
            0 => Err(ErrorCode::WouldBlock),
            n => this.conn.io().try_read(&mut buf[..n]),
        };
        match read {
            Ok(0) => this.end(Ok(())),
            Ok(n) => {
                dst.mark_written(n);
                this.conn.meter().bytes_in(n);
                gate.spend(Way::In, n);
                Poll::Ready(Ok(StreamResult::Completed))
            }
            Err(ErrorCode::WouldBlock) => {
                if this.poll_readable(cx, true).is_ready() {
                    cx.waker().wake_by_ref();
                }
                not_now(finish)
            }
            Err(code) => this.end(Err(code)),
        }
    }
}

/// `send`'s consumer of the guest's `stream<u8>`: writes from the guest's buffer to the
/// connection. When the guest ends its stream, the sending half is shut down (the FIN).
pub(crate) struct SendStream {
    conn: Arc<Conn>,
    ending: Option<oneshot::Sender<Result<(), ErrorCode>>>,
    wait: Wait,
}

impl SendStream {
    pub(crate) fn new(conn: Arc<Conn>) -> (Self, Ending) {
        let (tx, rx) = oneshot::channel();
        let stream = SendStream {
            conn,
            ending: Some(tx),
            wait: None,
        };
        (stream, rx)
    }

    fn fail(&mut self, code: ErrorCode) -> Poll<wasmtime::Result<StreamResult>> {
        if let Some(tx) = self.ending.take() {
            let _ = tx.send(Err(code));
        }
        Poll::Ready(Ok(StreamResult::Dropped))
    }

    /// Waits until the kernel takes bytes and the bandwidth cap (if any) grants some: on the
    /// reactor's readiness directly where it can tell and no cap applies, else as an async wait.
    fn poll_writable(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.wait.is_none()
            && !self.conn.gate().capped(Way::Out)
            && let Some(ready) = self.conn.io().poll_writable(cx)
        {
            return ready;
        }
        let conn = self.conn.clone();
        poll_wait(&mut self.wait, cx, move || async move {
            conn.io().writable().await;
            conn.gate().refill(Way::Out).await;
        })
    }
}

impl Drop for SendStream {
    /// The guest's stream ended (or the store went away): everything it wrote was handed to
    /// the kernel, so the FIN follows it.
    fn drop(&mut self) {
        if let Some(tx) = self.ending.take() {
            let shut = Conn::shutdown(&self.conn, Shutdown::Write);
            let _ = tx.send(shut);
        }
    }
}

impl<T: 'static> StreamConsumer<T> for SendStream {
    type Item = u8;

    fn poll_consume(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        store: StoreContextMut<T>,
        src: Source<Self::Item>,
        finish: bool,
    ) -> Poll<wasmtime::Result<StreamResult>> {
        let this = self.get_mut();
        if this.ending.is_none() {
            return Poll::Ready(Ok(StreamResult::Dropped));
        }
        if this.wait.is_some() && this.poll_writable(cx).is_pending() {
            return not_now(finish);
        }
        let mut src = src.as_direct(store);
        let buf = src.remaining();
        if buf.is_empty() {
            return match this.poll_writable(cx) {
                Poll::Ready(()) => Poll::Ready(Ok(StreamResult::Completed)),
                Poll::Pending => not_now(finish),
            };
        }
        let gate = this.conn.gate();
        let allowed = gate.allowance(Way::Out, buf.len());
        let wrote = match allowed {
            0 => Err(ErrorCode::WouldBlock),
            n => this.conn.io().try_write(&buf[..n]),
        };
        match wrote {
            Ok(n) => {
                src.mark_read(n);
                this.conn.meter().bytes_out(n);
                gate.spend(Way::Out, n);
                Poll::Ready(Ok(StreamResult::Completed))
            }
            Err(ErrorCode::WouldBlock) => {
                if this.poll_writable(cx).is_ready() {
                    cx.waker().wake_by_ref();
                }
                not_now(finish)
            }
            Err(code) => this.fail(code),
        }
    }
}
