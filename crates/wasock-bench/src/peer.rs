//! The native peers the guest talks to: one thread each, on loopback, bounded in time.
//!
//! A peer reports what it counted and the CPU its thread used, so that an in-process run can
//! subtract the peer's share from the process's CPU time.

use crate::cpu;
use anyhow::{Context, Result, anyhow, bail};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a peer waits for the guest to connect, or for the next byte or datagram.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the UDP sink waits for the next datagram before deciding the sender is done.
const UDP_IDLE: Duration = Duration::from_secs(2);
/// The UDP sink's receive buffer (the kernel caps it at `net.core.rmem_max`).
const UDP_RCVBUF: libc::c_int = 4 << 20;
const CHUNK: usize = 64 * 1024;
const SMALL: usize = 64;
const CHURN_MSG: usize = 1024;

/// A running peer.
pub(crate) struct Peer {
    /// Where the guest should connect or send.
    pub(crate) addr: SocketAddr,
    handle: JoinHandle<Result<PeerReport>>,
}

/// What a peer counted, and its thread's CPU time.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PeerReport {
    /// Bytes, round trips, connections or datagrams, by workload.
    pub(crate) count: u64,
    /// CPU time of the peer thread over its whole life.
    pub(crate) cpu: Duration,
}

impl Peer {
    /// Waits for the peer to finish (it always does, within its timeouts).
    pub(crate) fn finish(self) -> Result<PeerReport> {
        self.handle
            .join()
            .map_err(|_| anyhow!("the peer thread panicked"))?
    }
}

fn spawn(
    name: &str,
    addr: SocketAddr,
    work: impl FnOnce() -> Result<u64> + Send + 'static,
) -> Result<Peer> {
    let handle = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let count = work()?;
            Ok(PeerReport {
                count,
                cpu: cpu::thread(),
            })
        })
        .context("spawning a peer thread")?;
    Ok(Peer { addr, handle })
}

pub(crate) fn listen() -> Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a peer listener")?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// Accepts one connection, waiting at most [`IDLE_TIMEOUT`] (no busy wait: `poll(2)`).
pub(crate) fn accept(listener: &TcpListener) -> Result<TcpStream> {
    let mut fds = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = IDLE_TIMEOUT.as_millis() as libc::c_int;
    // SAFETY: one valid pollfd, owned by this frame, for the duration of the call.
    let ready = unsafe { libc::poll(&mut fds, 1, ms) };
    if ready < 0 {
        return Err(std::io::Error::last_os_error()).context("poll on the peer listener");
    }
    if ready == 0 {
        bail!("no connection within {IDLE_TIMEOUT:?}");
    }
    let (stream, _) = listener.accept().context("accept")?;
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    stream.set_write_timeout(Some(IDLE_TIMEOUT))?;
    Ok(stream)
}

/// Reads to end-of-stream, then answers with the byte count (8 bytes, little-endian).
pub(crate) fn tcp_sink() -> Result<Peer> {
    let (listener, addr) = listen()?;
    spawn("tcp-sink", addr, move || {
        let mut stream = accept(&listener)?;
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        loop {
            let n = stream.read(&mut buf).context("sink read")?;
            if n == 0 {
                break;
            }
            total += n as u64;
        }
        stream.write_all(&total.to_le_bytes())?;
        Ok(total)
    })
}

/// Reads an 8-byte count, sends that many bytes, closes.
pub(crate) fn tcp_source() -> Result<Peer> {
    let (listener, addr) = listen()?;
    spawn("tcp-source", addr, move || {
        let mut stream = accept(&listener)?;
        let mut request = [0u8; 8];
        stream.read_exact(&mut request).context("source request")?;
        let want = u64::from_le_bytes(request);
        let chunk = vec![0x5Au8; CHUNK];
        let mut sent = 0u64;
        while sent < want {
            let n = (want - sent).min(CHUNK as u64) as usize;
            stream.write_all(&chunk[..n]).context("source write")?;
            sent += n as u64;
        }
        Ok(sent)
    })
}

/// Echoes 64-byte messages on one connection until end-of-stream (Nagle off).
pub(crate) fn tcp_echo() -> Result<Peer> {
    let (listener, addr) = listen()?;
    spawn("tcp-echo", addr, move || {
        let mut stream = accept(&listener)?;
        stream.set_nodelay(true)?;
        let mut buf = [0u8; SMALL];
        let mut trips = 0u64;
        while read_message(&mut stream, &mut buf)? {
            stream.write_all(&buf)?;
            trips += 1;
        }
        Ok(trips)
    })
}

/// Serves `connections` connections one after another: read 1 KiB, echo it, read to
/// end-of-stream, close.
pub(crate) fn tcp_churn(connections: u64) -> Result<Peer> {
    let (listener, addr) = listen()?;
    spawn("tcp-churn", addr, move || {
        let mut buf = [0u8; CHURN_MSG];
        for i in 0..connections {
            let mut stream = accept(&listener)?;
            stream.set_nodelay(true)?;
            if !read_message(&mut stream, &mut buf)? {
                bail!("connection {i} closed before its message");
            }
            stream.write_all(&buf)?;
            let mut rest = [0u8; 16];
            match stream.read(&mut rest) {
                Ok(0) => {}
                // A reset also ends the connection; it is the guest's way to close.
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
                Ok(_) => bail!("connection {i} sent more than its message"),
                Err(e) => return Err(e).context("churn read to end"),
            }
        }
        Ok(connections)
    })
}

/// Fills `buf` from `stream`: `Ok(false)` on end-of-stream before the first byte.
fn read_message(stream: &mut TcpStream, buf: &mut [u8]) -> Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = stream.read(&mut buf[filled..]).context("peer read")?;
        if n == 0 {
            if filled == 0 {
                return Ok(false);
            }
            bail!("end-of-stream inside a message");
        }
        filled += n;
    }
    Ok(true)
}

/// Counts 64-byte datagrams until the `END` marker, [`UDP_IDLE`] of silence after the
/// first datagram, or `deadline`.
pub(crate) fn udp_sink(deadline: Duration) -> Result<Peer> {
    let socket = UdpSocket::bind("127.0.0.1:0").context("binding the UDP sink")?;
    set_rcvbuf(&socket);
    let addr = socket.local_addr()?;
    spawn("udp-sink", addr, move || {
        let start = Instant::now();
        let mut buf = [0u8; 2048];
        let mut count = 0u64;
        socket.set_read_timeout(Some(IDLE_TIMEOUT))?;
        while start.elapsed() < deadline {
            match socket.recv(&mut buf) {
                Ok(SMALL) => {
                    count += 1;
                    if count == 1 {
                        socket.set_read_timeout(Some(UDP_IDLE))?;
                    }
                }
                Ok(n) if &buf[..n] == b"END" => break,
                Ok(n) => bail!("unexpected {n}-byte datagram"),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    break;
                }
                Err(e) => return Err(e).context("UDP sink recv"),
            }
        }
        Ok(count)
    })
}

/// Datagrams per send of the UDP source (one buffer the kernel cuts into datagrams).
const SOURCE_BATCH: usize = 64;
/// The UDP source stops sending after this long in any case.
const SOURCE_DEADLINE: Duration = Duration::from_secs(120);

/// Sends `count` 64-byte datagrams to `to` as fast as the kernel takes them, no pacing: 64 per
/// `send(2)` of one buffer that UDP segmentation offload (`UDP_SEGMENT`) cuts into 64-byte
/// datagrams, so that the sender costs far less per datagram than any receiver; then three `END`
/// markers 20 ms apart. Counts the datagrams the kernel took.
pub(crate) fn udp_source(to: SocketAddr, count: u64) -> Result<Peer> {
    let socket = UdpSocket::bind("127.0.0.1:0").context("binding the UDP source")?;
    socket.connect(to).context("connecting the UDP source")?;
    set_segment(&socket, SMALL).context("UDP_SEGMENT on the UDP source")?;
    spawn("udp-source", to, move || {
        let mut buf = [0x66u8; SMALL * SOURCE_BATCH];
        let start = Instant::now();
        let mut sent = 0u64;
        while sent < count && start.elapsed() < SOURCE_DEADLINE {
            let n = (count - sent).min(SOURCE_BATCH as u64) as usize;
            for (i, d) in buf.chunks_exact_mut(SMALL).take(n).enumerate() {
                d[..8].copy_from_slice(&(sent + i as u64).to_le_bytes());
            }
            match socket.send(&buf[..n * SMALL]) {
                Ok(bytes) => sent += (bytes / SMALL) as u64,
                Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::WouldBlock) => {}
                Err(e) => return Err(e).context("UDP source send"),
            }
        }
        set_segment(&socket, 0)?;
        // As `bench-guest udp-send` ends; a failed marker only makes the receiver wait.
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(20));
            let _ = socket.send(b"END");
        }
        Ok(sent)
    })
}

/// Sets `UDP_SEGMENT`: sends of more than `size` bytes leave as datagrams of `size` (0: off).
fn set_segment(socket: &UdpSocket, size: usize) -> std::io::Result<()> {
    let size = size as libc::c_int;
    // SAFETY: a valid socket and a c_int option value of the size we pass.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_UDP,
            libc::UDP_SEGMENT,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn set_rcvbuf(socket: &UdpSocket) {
    let size = UDP_RCVBUF;
    // SAFETY: a valid socket and a c_int option value of the size we pass. Failure only
    // leaves the default buffer, which shows up as loss in the report.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}
