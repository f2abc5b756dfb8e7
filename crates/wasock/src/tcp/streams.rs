//! The `input-stream` and `output-stream` of a connected TCP socket.
//!
//! Both streams and the socket share one [`Conn`]; the connection closes when the last of the
//! three is dropped. Dropping the socket first leaves its streams working; dropping a stream
//! sends nothing (no implicit shutdown).
//!
//! The streams reach the instance's gate (bandwidth caps, write grants, the clock, background
//! tasks) through the socket's meter, and only so: [`Conn::gate`].

use crate::backend::{NetResult, Stream};
use crate::error::ErrorCode;
use crate::gate::Gate;
use crate::limits::{SocketMeter, Way};
use bytes::{Bytes, BytesMut};
use std::net::Shutdown;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use wasmtime_wasi_io::poll::Pollable;
use wasmtime_wasi_io::streams::{InputStream, OutputStream, StreamError, StreamResult};

/// Largest single read handed to the guest.
const MAX_READ: usize = 64 * 1024;
/// How long a dropped output stream keeps flushing what it had accepted.
const LINGER: Duration = Duration::from_secs(30);
/// Rounds of "writable, hand pending bytes over" one poll makes before leaving it to the async
/// wait.
const WRITE_ROUNDS: usize = 3;

/// A connection shared by a socket and its two streams.
pub(crate) struct Conn {
    pub(super) stream: Stream,
    meter: SocketMeter,
    /// Bytes the output stream accepted and the kernel has not taken yet; made the first time
    /// the kernel does not take a whole write, so that an idle connection stays small.
    spill: OnceLock<Box<Mutex<Spill>>>,
}

/// What a connection holds back for the kernel.
#[derive(Default)]
struct Spill {
    /// Accepted from the guest, not yet taken by the kernel.
    pending: Bytes,
    /// The error a later send of `pending` hit, reported by the output stream's next call.
    failed: Option<ErrorCode>,
    /// A background delivery of `pending` is under way.
    delivering: bool,
}

impl Conn {
    pub(super) fn new(stream: Stream, meter: &SocketMeter) -> Arc<Self> {
        Arc::new(Conn {
            stream,
            meter: meter.clone(),
            spill: OnceLock::new(),
        })
    }

    /// The instance's gate, by way of the socket's meter.
    pub(super) fn gate(&self) -> &Gate {
        self.meter.gate()
    }

    /// The socket's meter (its byte counters).
    pub(super) fn meter(&self) -> &SocketMeter {
        &self.meter
    }

    pub(super) fn io(&self) -> &Stream {
        &self.stream
    }

    /// The input stream's pollable: ready when a read returns data, the end of stream or an
    /// error, and the bandwidth cap (if any) grants bytes.
    pub(crate) async fn readable(&self) {
        if !self.stream.read_closed() {
            self.gate().refill(Way::In).await;
            self.stream.readable().await;
        }
    }

    /// [`Conn::readable`] as one poll; `None` where only the async wait can tell (a cap's
    /// timer, the virtual network). `fresh`: this wait saw the stream not ready before.
    pub(crate) fn poll_readable(&self, cx: &mut Context<'_>, fresh: bool) -> Option<Poll<()>> {
        if self.stream.read_closed() {
            return Some(Poll::Ready(()));
        }
        if self.gate().capped(Way::In) {
            return None;
        }
        self.stream.poll_readable(cx, fresh)
    }

    /// The output stream's pollable: ready when `check-write` grants bytes (or fails): nothing
    /// waits host-side any more and the bandwidth cap (if any) grants bytes.
    pub(crate) async fn writable(&self) {
        loop {
            if self.stream.write_shut() {
                return;
            }
            self.push_pending();
            if self.settled() {
                return self.gate().refill(Way::Out).await;
            }
            self.stream.writable().await;
        }
    }

    /// [`Conn::writable`] as one poll; `None` where only the async wait can tell.
    pub(crate) fn poll_writable(&self, cx: &mut Context<'_>) -> Option<Poll<()>> {
        if self.gate().capped(Way::Out) {
            return None;
        }
        for _ in 0..WRITE_ROUNDS {
            if self.stream.write_shut() {
                return Some(Poll::Ready(()));
            }
            self.push_pending();
            if self.settled() {
                return Some(Poll::Ready(()));
            }
            if self.stream.poll_writable(cx)?.is_pending() {
                return Some(Poll::Pending);
            }
        }
        None
    }

    pub(super) fn streams(this: &Arc<Self>) -> (TcpReader, TcpWriter) {
        (
            TcpReader { conn: this.clone() },
            TcpWriter {
                conn: this.clone(),
                permit: 0,
            },
        )
    }

    /// `shutdown`: idempotent; closes the matching stream(s) at once. The FIN of `send` follows
    /// the bytes the output stream already accepted (as `SHUT_WR` follows queued data): while
    /// some wait host-side, they are delivered first, in the background.
    pub(super) fn shutdown(this: &Arc<Self>, how: Shutdown) -> NetResult<()> {
        let closes_output = matches!(how, Shutdown::Write | Shutdown::Both);
        if !closes_output || !this.has_pending() {
            return this.stream.shutdown(how);
        }
        if how == Shutdown::Both {
            this.stream.shutdown(Shutdown::Read)?;
        }
        this.stream.close_output();
        Self::deliver_in_background(this, true);
        Ok(())
    }

    fn spill(&self) -> Option<MutexGuard<'_, Spill>> {
        self.spill.get().map(|s| crate::sync::lock(s))
    }

    fn has_pending(&self) -> bool {
        self.spill().is_some_and(|s| !s.pending.is_empty())
    }

    /// Whether nothing waits host-side any more: all delivered, or a send failed.
    fn settled(&self) -> bool {
        self.spill()
            .is_none_or(|s| s.pending.is_empty() || s.failed.is_some())
    }

    /// Hands pending bytes to the kernel as far as it takes them now.
    fn push_pending(&self) {
        let Some(mut spill) = self.spill() else {
            return;
        };
        while !spill.pending.is_empty() && spill.failed.is_none() {
            match self.stream.try_write(&spill.pending) {
                Ok(n) => {
                    let _ = spill.pending.split_to(n);
                }
                Err(ErrorCode::WouldBlock) => break,
                Err(e) => spill.failed = Some(e),
            }
        }
    }

    /// Keeps `bytes` for the kernel after what is already pending.
    fn hold(&self, bytes: Bytes) {
        let mut spill = crate::sync::lock(self.spill.get_or_init(Box::default));
        if spill.pending.is_empty() {
            spill.pending = bytes;
        } else {
            let mut joined = BytesMut::from(&spill.pending[..]);
            joined.extend_from_slice(&bytes);
            spill.pending = joined.freeze();
        }
    }

    /// The error a send of pending bytes hit, once.
    fn take_failure(&self) -> Option<ErrorCode> {
        self.spill().and_then(|mut s| s.failed.take())
    }

    /// Hands pending bytes to the kernel as it takes them, for at most [`LINGER`].
    async fn deliver_pending(&self) {
        let gate = self.gate();
        let until = gate.deadline_in(LINGER);
        let _ = gate
            .within(until, async {
                loop {
                    self.push_pending();
                    if self.settled() {
                        return;
                    }
                    self.stream.writable().await;
                }
            })
            .await;
    }

    /// `flush`: what waits host-side reaches the kernel without the guest waiting on the
    /// stream (the WIT's flush completes on its own); one such delivery at a time.
    fn flush_in_background(this: &Arc<Self>) {
        {
            let Some(mut spill) = this.spill() else {
                return;
            };
            if spill.pending.is_empty() || spill.failed.is_some() || spill.delivering {
                return;
            }
            spill.delivering = true;
        }
        let conn = this.clone();
        let deliver = async move {
            conn.deliver_pending().await;
            if let Some(mut spill) = conn.spill() {
                spill.delivering = false;
            }
        };
        if !this.gate().spawn(deliver)
            && let Some(mut spill) = this.spill()
        {
            spill.delivering = false;
        }
    }

    /// Delivers what is pending without the output stream, for at most [`LINGER`]; then sends
    /// the FIN if `then_fin`.
    fn deliver_in_background(this: &Arc<Self>, then_fin: bool) {
        let conn = this.clone();
        let deliver = async move {
            conn.deliver_pending().await;
            if then_fin {
                let _ = conn.stream.shutdown(Shutdown::Write);
            }
        };
        // No executor to wait on: what the kernel takes now is all that goes.
        if !this.gate().spawn(deliver) {
            this.push_pending();
            if then_fin {
                let _ = this.stream.shutdown(Shutdown::Write);
            }
        }
    }
}

/// The connection's `input-stream`.
pub(crate) struct TcpReader {
    conn: Arc<Conn>,
}

impl TcpReader {
    /// The connection both streams share.
    pub(crate) fn conn(&self) -> &Arc<Conn> {
        &self.conn
    }
}

#[wasmtime_wasi_io::async_trait]
impl InputStream for TcpReader {
    /// `blocking-read`: reads first and waits only when nothing is there, so a guest that
    /// blocks after its data arrived pays no readiness check (the default waits first).
    async fn blocking_read(&mut self, size: usize) -> StreamResult<Bytes> {
        if size == 0 {
            self.ready().await;
            return self.read(0);
        }
        loop {
            let data = self.read(size)?;
            if !data.is_empty() {
                return Ok(data);
            }
            self.ready().await;
        }
    }

    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if self.conn.stream.read_closed() {
            return Err(StreamError::Closed);
        }
        if size == 0 {
            return Ok(Bytes::new());
        }
        let gate = self.conn.gate();
        let want = gate.allowance(Way::In, size.min(MAX_READ));
        if want == 0 {
            return Ok(Bytes::new());
        }
        let mut buf = BytesMut::with_capacity(want);
        match self.conn.stream.try_read_buf(&mut buf) {
            Ok(0) => Err(StreamError::Closed),
            Ok(n) => {
                self.conn.meter.bytes_in(n);
                gate.spend(Way::In, n);
                Ok(buf.freeze())
            }
            Err(ErrorCode::WouldBlock) => Ok(Bytes::new()),
            Err(e) => Err(StreamError::LastOperationFailed(e.into())),
        }
    }
}

#[wasmtime_wasi_io::async_trait]
impl Pollable for TcpReader {
    async fn ready(&mut self) {
        self.conn.readable().await
    }
}

/// The connection's `output-stream`: `check-write` grants at most a budget, and what the kernel
/// does not take at once waits host-side in the connection (never more than one grant).
pub(crate) struct TcpWriter {
    conn: Arc<Conn>,
    /// Bytes the last `check-write` granted.
    permit: usize,
}

impl TcpWriter {
    /// `closed` after `shutdown(send)`; else the error a background send of pending bytes hit.
    fn check_open(&mut self) -> StreamResult<()> {
        if self.conn.stream.write_shut() {
            return Err(StreamError::Closed);
        }
        if let Some(e) = self.conn.take_failure() {
            return Err(StreamError::LastOperationFailed(e.into()));
        }
        Ok(())
    }
}

impl OutputStream for TcpWriter {
    fn write(&mut self, mut bytes: Bytes) -> StreamResult<()> {
        self.check_open()?;
        if bytes.len() > self.permit {
            return Err(StreamError::trap("write exceeds the permit of check-write"));
        }
        self.permit -= bytes.len();
        self.conn.meter.bytes_out(bytes.len());
        self.conn.gate().spend(Way::Out, bytes.len());
        if self.conn.has_pending() {
            self.conn.hold(bytes);
            return Ok(());
        }
        match self.conn.stream.try_write(&bytes) {
            Ok(n) => {
                let _ = bytes.split_to(n);
            }
            Err(ErrorCode::WouldBlock) => {}
            Err(e) => return Err(StreamError::LastOperationFailed(e.into())),
        }
        if !bytes.is_empty() {
            self.conn.hold(bytes);
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.check_open()?;
        self.conn.push_pending();
        Conn::flush_in_background(&self.conn);
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.check_open()?;
        self.conn.push_pending();
        self.check_open()?;
        self.permit = if self.conn.has_pending() {
            0
        } else {
            self.conn.gate().write_grant()
        };
        Ok(self.permit)
    }
}

#[wasmtime_wasi_io::async_trait]
impl Pollable for TcpWriter {
    async fn ready(&mut self) {
        self.conn.writable().await
    }
}

impl Drop for TcpWriter {
    /// Bytes the guest wrote were accepted; deliver them even if the stream is dropped unflushed.
    fn drop(&mut self) {
        self.conn.push_pending();
        if !self.conn.settled() && !self.conn.stream.write_shut() {
            Conn::deliver_in_background(&self.conn, false);
        }
    }
}
