//! The `input-stream` and `output-stream` of a connected TCP socket.
//!
//! Both streams and the socket share one [`Conn`]; the connection closes when the last of the
//! three is dropped. Dropping the socket first leaves its streams working; dropping a stream
//! sends nothing (no implicit shutdown).

use crate::backend::Stream;
use crate::limits::{Accounting, SocketMeter, Way};
use bytes::{Bytes, BytesMut};
use std::io;
use std::net::Shutdown;
use std::sync::Arc;
use std::time::Duration;
use wasmtime_wasi_io::poll::Pollable;
use wasmtime_wasi_io::streams::{InputStream, OutputStream, StreamError, StreamResult};

/// Largest single read handed to the guest.
const MAX_READ: usize = 64 * 1024;
/// How long a dropped output stream keeps flushing what it had accepted.
const LINGER: Duration = Duration::from_secs(30);

/// A connection shared by a socket and its two streams.
pub(crate) struct Conn {
    pub(super) stream: Stream,
    meter: SocketMeter,
}

impl Conn {
    pub(super) fn new(stream: Stream, meter: &SocketMeter) -> Arc<Self> {
        Arc::new(Conn {
            stream,
            meter: meter.clone(),
        })
    }

    /// The instance's accounting (bandwidth caps, the write budget).
    fn acct(&self) -> &Accounting {
        self.meter.acct()
    }

    pub(super) fn io(&self) -> &Stream {
        &self.stream
    }

    pub(super) fn streams(this: &Arc<Self>) -> (TcpReader, TcpWriter) {
        (
            TcpReader { conn: this.clone() },
            TcpWriter {
                conn: this.clone(),
                permit: 0,
                spill: None,
            },
        )
    }

    /// `shutdown`: idempotent; marks the matching stream(s) closed.
    pub(super) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.stream.shutdown(how)
    }
}

/// The connection's `input-stream`.
pub(crate) struct TcpReader {
    conn: Arc<Conn>,
}

impl InputStream for TcpReader {
    fn read(&mut self, size: usize) -> StreamResult<Bytes> {
        if self.conn.stream.read_shut() {
            return Err(StreamError::Closed);
        }
        if size == 0 {
            return Ok(Bytes::new());
        }
        let acct = self.conn.acct();
        let want = acct.allowance(Way::In, size.min(MAX_READ));
        if want == 0 {
            return Ok(Bytes::new());
        }
        let mut buf = BytesMut::with_capacity(want);
        match self.conn.stream.try_read_buf(&mut buf) {
            Ok(0) => Err(StreamError::Closed),
            Ok(n) => {
                self.conn.meter.bytes_in(n);
                acct.spend(Way::In, n);
                Ok(buf.freeze())
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Bytes::new()),
            Err(e) => Err(StreamError::LastOperationFailed(e.into())),
        }
    }
}

#[wasmtime_wasi_io::async_trait]
impl Pollable for TcpReader {
    async fn ready(&mut self) {
        if !self.conn.stream.read_shut() {
            self.conn.acct().refill(Way::In).await;
            self.conn.stream.readable().await;
        }
    }
}

/// The connection's `output-stream`: `check-write` grants at most a budget, and what the kernel
/// does not take at once waits host-side (never more than one grant).
pub(crate) struct TcpWriter {
    conn: Arc<Conn>,
    /// Bytes the last `check-write` granted.
    permit: usize,
    /// Made the first time the kernel does not take a whole write, so that an idle stream
    /// stays small.
    spill: Option<Box<Spill>>,
}

/// What a [`TcpWriter`] holds back.
#[derive(Default)]
struct Spill {
    /// Accepted from the guest, not yet taken by the kernel.
    pending: Bytes,
    /// The error a later send of `pending` hit, reported by the next call.
    failed: Option<io::Error>,
}

impl TcpWriter {
    fn pending(&self) -> &[u8] {
        self.spill.as_ref().map_or(&[], |s| &s.pending)
    }

    fn failed(&self) -> bool {
        self.spill.as_ref().is_some_and(|s| s.failed.is_some())
    }

    /// Hands pending bytes to the kernel as far as it takes them now.
    fn push_pending(&mut self) {
        let Some(spill) = self.spill.as_deref_mut() else {
            return;
        };
        while !spill.pending.is_empty() && spill.failed.is_none() {
            match self.conn.stream.try_write(&spill.pending) {
                Ok(n) => {
                    let _ = spill.pending.split_to(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => spill.failed = Some(e),
            }
        }
    }

    fn check_open(&mut self) -> StreamResult<()> {
        if let Some(e) = self.spill.as_mut().and_then(|s| s.failed.take()) {
            return Err(StreamError::LastOperationFailed(e.into()));
        }
        if self.conn.stream.write_shut() {
            return Err(StreamError::Closed);
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
        self.conn.acct().spend(Way::Out, bytes.len());
        if self.pending().is_empty() {
            match self.conn.stream.try_write(&bytes) {
                Ok(n) => {
                    let _ = bytes.split_to(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(StreamError::LastOperationFailed(e.into())),
            }
            if !bytes.is_empty() {
                self.spill.get_or_insert_default().pending = bytes;
            }
        } else {
            let spill = self.spill.get_or_insert_default();
            let mut joined = BytesMut::from(&spill.pending[..]);
            joined.extend_from_slice(&bytes);
            spill.pending = joined.freeze();
        }
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.check_open()?;
        self.push_pending();
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.push_pending();
        self.check_open()?;
        self.permit = if self.pending().is_empty() {
            let acct = self.conn.acct();
            acct.allowance(Way::Out, acct.limits.write_buffer.max(1))
        } else {
            0
        };
        Ok(self.permit)
    }
}

#[wasmtime_wasi_io::async_trait]
impl Pollable for TcpWriter {
    async fn ready(&mut self) {
        loop {
            self.push_pending();
            if self.failed() {
                return;
            }
            if self.pending().is_empty() {
                return self.conn.acct().refill(Way::Out).await;
            }
            self.conn.stream.writable().await;
        }
    }
}

impl Drop for TcpWriter {
    /// Bytes the guest wrote were accepted; deliver them even if the stream is dropped unflushed.
    fn drop(&mut self) {
        self.push_pending();
        if self.pending().is_empty() || self.failed() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let conn = self.conn.clone();
        let Some(mut rest) = self.spill.take().map(|s| s.pending) else {
            return;
        };
        rt.spawn(async move {
            let _ = tokio::time::timeout(LINGER, async {
                while !rest.is_empty() {
                    conn.stream.writable().await;
                    match conn.stream.try_write(&rest) {
                        Ok(n) => {
                            let _ = rest.split_to(n);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => return,
                    }
                }
            })
            .await;
        });
    }
}
