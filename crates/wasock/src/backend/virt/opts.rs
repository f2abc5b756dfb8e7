//! A virtual socket's options: values kept in memory, clamped to Linux's ranges so that a guest
//! reads back what it would read on the OS backend, and the buffer sizes that bound the
//! connection's flow control.

use std::sync::Mutex;
use std::time::Duration;

/// Smallest receive buffer size kept: what a guest reads back on the OS backend after asking
/// for less (Linux's `SOCK_MIN_RCVBUF`, 2 304 B, of which wasock reports the half Linux
/// doubles a request by).
const MIN_RECV_BUFFER: usize = 1_152;
/// Smallest send buffer size kept, likewise (half of Linux's `SOCK_MIN_SNDBUF`).
const MIN_SEND_BUFFER: usize = 2_304;
/// Largest buffer size kept.
const MAX_BUFFER: usize = 4 << 20;

/// The option values of one socket.
#[derive(Clone, Copy, Debug)]
struct Values {
    keepalive: bool,
    idle: Duration,
    interval: Duration,
    count: u32,
    hop_limit: u8,
    recv_buffer: usize,
    send_buffer: usize,
}

impl Default for Values {
    /// Linux's defaults; the buffers as large as Linux lets loopback's grow by default.
    fn default() -> Self {
        Values {
            keepalive: false,
            idle: Duration::from_secs(7_200),
            interval: Duration::from_secs(75),
            count: 9,
            hop_limit: 64,
            recv_buffer: 131_072,
            send_buffer: 131_072,
        }
    }
}

/// A virtual socket's options (see the module doc).
#[derive(Debug, Default)]
pub(crate) struct VirtOptions(Mutex<Values>);

impl VirtOptions {
    fn get<T>(&self, f: impl FnOnce(&Values) -> T) -> T {
        f(&crate::sync::lock(&self.0))
    }

    fn set(&self, f: impl FnOnce(&mut Values)) {
        f(&mut crate::sync::lock(&self.0))
    }

    /// A copy for an accepted connection, which inherits its listener's options.
    pub(crate) fn inherited(&self) -> Self {
        VirtOptions(Mutex::new(self.get(|v| *v)))
    }

    pub(crate) fn keepalive(&self) -> bool {
        self.get(|v| v.keepalive)
    }
    pub(crate) fn set_keepalive(&self, on: bool) {
        self.set(|v| v.keepalive = on)
    }
    pub(crate) fn keepalive_idle(&self) -> Duration {
        self.get(|v| v.idle)
    }
    pub(crate) fn set_keepalive_idle(&self, d: Duration) {
        self.set(|v| v.idle = d)
    }
    pub(crate) fn keepalive_interval(&self) -> Duration {
        self.get(|v| v.interval)
    }
    pub(crate) fn set_keepalive_interval(&self, d: Duration) {
        self.set(|v| v.interval = d)
    }
    pub(crate) fn keepalive_count(&self) -> u32 {
        self.get(|v| v.count)
    }
    pub(crate) fn set_keepalive_count(&self, n: u32) {
        self.set(|v| v.count = n)
    }
    pub(crate) fn hop_limit(&self) -> u8 {
        self.get(|v| v.hop_limit)
    }
    pub(crate) fn set_hop_limit(&self, n: u8) {
        self.set(|v| v.hop_limit = n)
    }
    pub(crate) fn recv_buffer(&self) -> usize {
        self.get(|v| v.recv_buffer)
    }
    /// Rule: clamped to the kept range; reading back gives the clamp.
    pub(crate) fn set_recv_buffer(&self, n: usize) {
        self.set(|v| v.recv_buffer = n.clamp(MIN_RECV_BUFFER, MAX_BUFFER))
    }
    pub(crate) fn send_buffer(&self) -> usize {
        self.get(|v| v.send_buffer)
    }
    /// Rule: clamped to the kept range; reading back gives the clamp.
    pub(crate) fn set_send_buffer(&self, n: usize) {
        self.set(|v| v.send_buffer = n.clamp(MIN_SEND_BUFFER, MAX_BUFFER))
    }
}
