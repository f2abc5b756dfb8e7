//! raw-http-server: a small HTTP/1.1 server on the raw `wasi:sockets` bindings that serves many
//! connections at once from one `wasi:io/poll` loop: no threads, no blocking call. It is the
//! guest of the load test (`crates/wasock/tests/load.rs`), which drives it with `wrk`.
//!
//! Usage: `raw-http-server ADDR:PORT [--max-conns N] [--requests N] [--secs S]`
//!
//! - `GET /` → 200 with a fixed body; `POST /echo` → 200 with the request's body;
//!   `GET /quit` → 200, then the server stops; anything else → 404.
//! - A malformed request → 400, a body over 64 KiB → 413; either closes the connection.
//! - Keep-alive unless `Connection: close` (or HTTP/1.0 without `keep-alive`); pipelined
//!   requests are answered in order. Bodies by `Content-Length` only (`Transfer-Encoding` is 400).
//!
//! Prints `listening ADDR` once listening, and when it stops
//! `raw-http-server: served R requests on C connections (stop: REASON, accept errors A,
//! stream errors E)`. It stops on `GET /quit`, after `--requests N` answers, or after `--secs S`
//! (default 300), and exits 0; a setup failure exits 1. At most `--max-conns` connections are
//! open at once (default: as many as the host's socket limit allows); the rest wait in the
//! listener's queue.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};

use guest_support::fail;
use raw::wasi::clocks::monotonic_clock::subscribe_duration;
use raw::wasi::io::poll::poll;
use raw::{
    ErrorCode, InputStream, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress, OutputStream,
    Pollable, StreamError, TcpSocket, instance_network, tcp_bind, tcp_listen,
};

/// Backlog asked of `listen` (the host clamps it to its `max_backlog`).
const BACKLOG: u64 = 1024;
/// Most bytes asked of one `read`.
const READ_CHUNK: u64 = 64 * 1024;
/// Longest request head (request line and headers); longer is 400.
const MAX_HEAD: usize = 8 * 1024;
/// Largest request body; larger is 413.
const MAX_BODY: usize = 64 * 1024;
/// Requests are answered only while fewer response bytes than this wait to be written, and the
/// connection is not read while any wait: a client that does not read cannot grow our buffers.
const OUT_HIGH: usize = 64 * 1024;
/// Capacity a connection's buffer keeps once empty; a larger one is shrunk to this.
const KEEP: usize = 16 * 1024;
/// Most `accept` calls per listener readiness.
const ACCEPT_BATCH: usize = 1024;

const HELLO: &[u8] = b"hello from wasock\n";

fn main() {
    guest_support::start("raw-http-server");
    let args = Args::parse();
    let net = instance_network();
    let listener = match raw::create_tcp_socket(family_of(&args.addr)) {
        Ok(s) => s,
        Err(e) => fail("create-tcp-socket", format!("{e:?}")),
    };
    if let Err(e) = listener.set_listen_backlog_size(BACKLOG) {
        fail("set-listen-backlog-size", format!("{e:?}"));
    }
    if let Err(e) = tcp_bind("bind", &listener, &net, to_wasi(args.addr)) {
        fail("bind", format!("{} failed: {e:?}", args.addr));
    }
    if let Err(e) = tcp_listen("listen", &listener) {
        fail("listen", format!("{e:?}"));
    }
    match listener.local_address() {
        Ok(a) => println!("listening {}", from_wasi(&a)),
        Err(e) => fail("local-address", format!("{e:?}")),
    }
    let _ = std::io::stdout().flush();

    let mut server = Server {
        max_requests: args.requests,
        ..Server::default()
    };
    serve(&listener, &args, &mut server);
    println!(
        "raw-http-server: served {} requests on {} connections (stop: {}, accept errors {}, \
         stream errors {})",
        server.served,
        server.accepted,
        server.stop.map_or("none", Stop::name),
        server.accept_errors,
        server.stream_errors,
    );
    let _ = std::io::stdout().flush();
}

/// Why the server stopped.
#[derive(Clone, Copy, Debug)]
enum Stop {
    Quit,
    Requests,
    TimeLimit,
}

impl Stop {
    fn name(self) -> &'static str {
        match self {
            Stop::Quit => "quit",
            Stop::Requests => "requests",
            Stop::TimeLimit => "time-limit",
        }
    }
}

/// Counters and the stop condition, shared by all connections.
#[derive(Default)]
struct Server {
    served: u64,
    accepted: u64,
    accept_errors: u64,
    /// Connections closed on a read or write error (a peer's reset, typically).
    stream_errors: u64,
    max_requests: Option<u64>,
    stop: Option<Stop>,
}

/// What one entry of the poll list stands for.
#[derive(Clone, Copy)]
enum Target {
    Timer,
    Listener,
    Conn(usize),
}

/// The poll loop: one `poll` over the time limit, the listener (while it may accept) and one
/// pollable per connection (its output stream while a response waits, else its input stream).
fn serve(listener: &TcpSocket, args: &Args, server: &mut Server) {
    let timer = subscribe_duration(args.secs.saturating_mul(1_000_000_000));
    let incoming = listener.subscribe();
    let mut conns = Conns::default();
    // Set when `accept` hit the host's socket limit; cleared when a connection closes.
    let mut at_limit = false;
    let mut targets: Vec<Target> = Vec::new();

    while server.stop.is_none() {
        targets.clear();
        let ready = {
            let mut list: Vec<&Pollable> = Vec::with_capacity(conns.open + 2);
            list.push(&timer);
            targets.push(Target::Timer);
            if conns.open < args.max_conns && !at_limit {
                list.push(&incoming);
                targets.push(Target::Listener);
            }
            for (slot, conn) in conns.slots.iter().enumerate() {
                if let Some(c) = conn {
                    list.push(if c.wants_write() {
                        &c.writable
                    } else {
                        &c.readable
                    });
                    targets.push(Target::Conn(slot));
                }
            }
            poll(&list)
        };
        for index in ready {
            match targets[index as usize] {
                Target::Timer => server.stop = Some(Stop::TimeLimit),
                Target::Listener => {
                    let room = args.max_conns - conns.open;
                    at_limit = accept_pending(listener, room.min(ACCEPT_BATCH), &mut conns, server);
                }
                Target::Conn(slot) => {
                    let keep = conns.slots[slot].as_mut().is_some_and(|c| c.pump(server));
                    if !keep {
                        conns.close(slot);
                        at_limit = false;
                    }
                }
            }
        }
    }
    // Dropping a connection delivers what its output stream had accepted (wasock keeps
    // flushing a dropped stream), so the `GET /quit` answer reaches its client.
}

/// Accepts up to `max` pending connections; returns whether `accept` hit the host's socket
/// limit (the connection then stays queued until one of ours closes).
fn accept_pending(
    listener: &TcpSocket,
    max: usize,
    conns: &mut Conns,
    server: &mut Server,
) -> bool {
    for _ in 0..max {
        match listener.accept() {
            Ok((socket, input, output)) => {
                conns.add(Conn::new(socket, input, output));
                server.accepted += 1;
            }
            Err(ErrorCode::WouldBlock) => break,
            Err(ErrorCode::NewSocketLimit) => return true,
            Err(_) => server.accept_errors += 1,
        }
    }
    false
}

/// The open connections by slot; a closed connection's slot is reused.
#[derive(Default)]
struct Conns {
    slots: Vec<Option<Conn>>,
    free: Vec<usize>,
    open: usize,
}

impl Conns {
    fn add(&mut self, conn: Conn) {
        match self.free.pop() {
            Some(slot) => self.slots[slot] = Some(conn),
            None => self.slots.push(Some(conn)),
        }
        self.open += 1;
    }

    /// Drops the connection in `slot`, which closes it.
    fn close(&mut self, slot: usize) {
        if self.slots[slot].take().is_some() {
            self.free.push(slot);
            self.open -= 1;
        }
    }
}

/// One accepted connection.
struct Conn {
    // The pollables are children of the streams: declared first, they are dropped first.
    readable: Pollable,
    writable: Pollable,
    input: InputStream,
    output: OutputStream,
    _socket: TcpSocket,
    /// Bytes received and not yet answered; a request starts at index 0.
    inbuf: Vec<u8>,
    /// Where the search for the end of the first request's head resumes.
    scanned: usize,
    /// Response bytes; those before `sent` are written.
    outbuf: Vec<u8>,
    sent: usize,
    /// Close once `outbuf` is written (after 400/413, `Connection: close`, end of input).
    closing: bool,
}

impl Conn {
    fn new(socket: TcpSocket, input: InputStream, output: OutputStream) -> Self {
        Conn {
            readable: input.subscribe(),
            writable: output.subscribe(),
            input,
            output,
            _socket: socket,
            inbuf: Vec::new(),
            scanned: 0,
            outbuf: Vec::new(),
            sent: 0,
            closing: false,
        }
    }

    fn wants_write(&self) -> bool {
        self.sent < self.outbuf.len()
    }

    /// Does what the connection's readiness allows: reads once (unless a response waits),
    /// answers the complete requests, writes as far as `check-write` permits. Returns whether
    /// to keep the connection.
    ///
    /// A pump never leaves complete requests unanswered without a response waiting to be
    /// written, so a read only ever adds to a partial request (or none).
    fn pump(&mut self, server: &mut Server) -> bool {
        if !self.wants_write() && !self.closing {
            match self.input.read(READ_CHUNK) {
                Ok(bytes) => self.inbuf.extend_from_slice(&bytes),
                // End of input: what is left is a partial request at most; close.
                Err(StreamError::Closed) => self.closing = true,
                Err(StreamError::LastOperationFailed(_)) => {
                    server.stream_errors += 1;
                    return false;
                }
            }
        }
        // Each round answers at least OUT_HIGH bytes' worth from `inbuf` or is the last.
        loop {
            let more = self.answer(server);
            if !self.write() {
                server.stream_errors += 1;
                return false;
            }
            if self.wants_write() {
                return true;
            }
            if !more {
                return !self.closing;
            }
        }
    }

    /// Answers the complete requests at the start of `inbuf`, in order, while fewer than
    /// [`OUT_HIGH`] response bytes wait. Returns whether it stopped for that reason (so more
    /// complete requests may wait).
    fn answer(&mut self, server: &mut Server) -> bool {
        let mut start = 0;
        let mut more = false;
        while !self.closing && server.stop.is_none() {
            if self.outbuf.len() - self.sent >= OUT_HIGH {
                more = true;
                break;
            }
            let from = self.scanned.max(start);
            match parse(&self.inbuf[start..], from - start) {
                Parsed::Incomplete { scanned } => {
                    self.scanned = start + scanned;
                    break;
                }
                Parsed::Bad(status) => {
                    respond(&mut self.outbuf, status, status.reason.as_bytes(), true);
                    self.closing = true;
                }
                Parsed::Request(req) => {
                    let (status, body) = match (req.method, req.target) {
                        (b"GET", b"/") => (OK, HELLO),
                        (b"POST", b"/echo") => (OK, req.body),
                        (b"GET", b"/quit") => {
                            server.stop = Some(Stop::Quit);
                            (OK, &b"bye\n"[..])
                        }
                        _ => (NOT_FOUND, &b"not found\n"[..]),
                    };
                    respond(&mut self.outbuf, status, body, req.close);
                    self.closing = req.close;
                    start += req.len;
                    self.scanned = start;
                    server.served += 1;
                    if server.max_requests.is_some_and(|max| server.served >= max) {
                        server.stop = Some(Stop::Requests);
                    }
                }
            }
        }
        if start > 0 {
            self.inbuf.drain(..start);
            self.scanned -= start;
            shrink_if_empty(&mut self.inbuf);
        }
        more
    }

    /// Writes the unsent response bytes as far as `check-write` permits, then flushes once all
    /// are handed over. Returns false on a stream error.
    fn write(&mut self) -> bool {
        while self.wants_write() {
            let permit = match self.output.check_write() {
                Ok(n) => usize::try_from(n).unwrap_or(usize::MAX),
                Err(_) => return false,
            };
            if permit == 0 {
                return true;
            }
            let end = self.outbuf.len().min(self.sent.saturating_add(permit));
            if self.output.write(&self.outbuf[self.sent..end]).is_err() {
                return false;
            }
            self.sent = end;
        }
        if self.sent == 0 {
            return true;
        }
        self.outbuf.clear();
        self.sent = 0;
        shrink_if_empty(&mut self.outbuf);
        self.output.flush().is_ok()
    }
}

fn shrink_if_empty(buf: &mut Vec<u8>) {
    if buf.is_empty() && buf.capacity() > KEEP {
        buf.shrink_to(KEEP);
    }
}

#[derive(Clone, Copy)]
struct Status {
    code: u16,
    reason: &'static str,
}

const OK: Status = Status {
    code: 200,
    reason: "OK",
};
const NOT_FOUND: Status = Status {
    code: 404,
    reason: "Not Found",
};
const BAD_REQUEST: Status = Status {
    code: 400,
    reason: "Bad Request",
};
const TOO_LARGE: Status = Status {
    code: 413,
    reason: "Content Too Large",
};

/// Appends a response with `body` to `out`.
fn respond(out: &mut Vec<u8>, status: Status, body: &[u8], close: bool) {
    let connection = if close { "Connection: close\r\n" } else { "" };
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{connection}\r\n",
        status.code,
        status.reason,
        body.len()
    );
    out.extend_from_slice(body);
}

/// A complete request at the start of a buffer.
struct Request<'a> {
    method: &'a [u8],
    target: &'a [u8],
    body: &'a [u8],
    /// Its length in the buffer, head and body.
    len: usize,
    /// Whether the connection closes after the answer.
    close: bool,
}

enum Parsed<'a> {
    /// More bytes are needed; the search for the head's end may resume at `scanned`.
    Incomplete {
        scanned: usize,
    },
    Bad(Status),
    Request(Request<'a>),
}

/// Parses the request at the start of `buf`; the end of its head is searched from `from`.
fn parse(buf: &[u8], from: usize) -> Parsed<'_> {
    let Some(end) = find_head_end(buf, from) else {
        if buf.len() > MAX_HEAD {
            return Parsed::Bad(BAD_REQUEST);
        }
        return Parsed::Incomplete {
            scanned: buf.len().saturating_sub(3),
        };
    };
    if end > MAX_HEAD {
        return Parsed::Bad(BAD_REQUEST);
    }
    // Up to the `\r` of the blank line's CRLF: split at `\n`, every line then ends in `\r`.
    let mut lines = buf[..end + 1].split(|&b| b == b'\n');
    let Some((method, target, version)) = lines.next().and_then(request_line) else {
        return Parsed::Bad(BAD_REQUEST);
    };
    let mut close = version == b"HTTP/1.0";
    let mut length: Option<usize> = None;
    for line in lines {
        let Some((name, value)) = header(line) else {
            return Parsed::Bad(BAD_REQUEST);
        };
        if name.eq_ignore_ascii_case(b"content-length") {
            match (content_length(value), length) {
                (Some(n), None) => length = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => return Parsed::Bad(BAD_REQUEST),
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Parsed::Bad(BAD_REQUEST);
        } else if name.eq_ignore_ascii_case(b"connection") {
            for option in value.split(|&b| b == b',').map(|o| o.trim_ascii()) {
                if option.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if option.eq_ignore_ascii_case(b"keep-alive") {
                    close = false;
                }
            }
        }
    }
    let body_len = length.unwrap_or(0);
    if body_len > MAX_BODY {
        return Parsed::Bad(TOO_LARGE);
    }
    let body_start = end + 4;
    let len = body_start + body_len;
    if buf.len() < len {
        // The next search finds the head's end at once.
        return Parsed::Incomplete { scanned: end };
    }
    Parsed::Request(Request {
        method,
        target,
        body: &buf[body_start..len],
        len,
        close,
    })
}

/// The index of the `\r\n\r\n` ending the head, searched from `from`.
fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let from = from.min(buf.len());
    buf[from..]
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| from + i)
}

/// `METHOD SP TARGET SP HTTP/1.x` (with its `\r`).
fn request_line(line: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let line = line.strip_suffix(b"\r")?;
    let mut parts = line.split(|&b| b == b' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let valid = parts.next().is_none()
        && !method.is_empty()
        && method.iter().all(u8::is_ascii_uppercase)
        && target.first() == Some(&b'/')
        && (version == b"HTTP/1.1" || version == b"HTTP/1.0");
    valid.then_some((method, target, version))
}

/// `NAME: VALUE` (with its `\r`); the name is a non-empty token.
fn header(line: &[u8]) -> Option<(&[u8], &[u8])> {
    let line = line.strip_suffix(b"\r")?;
    let colon = line.iter().position(|&b| b == b':')?;
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    let token = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    (!name.is_empty() && name.iter().all(token)).then_some((name, value.trim_ascii()))
}

/// A `Content-Length` value: 1 to 9 digits.
fn content_length(value: &[u8]) -> Option<usize> {
    if value.is_empty() || value.len() > 9 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(value.iter().fold(0, |n, d| n * 10 + usize::from(d - b'0')))
}

struct Args {
    addr: SocketAddr,
    max_conns: usize,
    requests: Option<u64>,
    secs: u64,
}

impl Args {
    fn parse() -> Args {
        const USAGE: &str =
            "usage: raw-http-server ADDR:PORT [--max-conns N] [--requests N] [--secs S]";
        let mut args = std::env::args().skip(1);
        let addr = match args.next().map(|a| a.parse()) {
            Some(Ok(addr)) => addr,
            _ => fail("arguments", USAGE),
        };
        let mut parsed = Args {
            addr,
            max_conns: usize::MAX,
            requests: None,
            secs: 300,
        };
        while let Some(flag) = args.next() {
            let Some(value) = args.next().and_then(|v| v.parse::<u64>().ok()) else {
                fail("arguments", USAGE)
            };
            match flag.as_str() {
                "--max-conns" if value > 0 => {
                    parsed.max_conns = usize::try_from(value).unwrap_or(usize::MAX)
                }
                "--requests" if value > 0 => parsed.requests = Some(value),
                "--secs" if value > 0 => parsed.secs = value,
                _ => fail("arguments", USAGE),
            }
        }
        parsed
    }
}

fn family_of(addr: &SocketAddr) -> raw::IpAddressFamily {
    match addr {
        SocketAddr::V4(_) => raw::IpAddressFamily::Ipv4,
        SocketAddr::V6(_) => raw::IpAddressFamily::Ipv6,
    }
}

fn to_wasi(addr: SocketAddr) -> IpSocketAddress {
    match addr {
        SocketAddr::V4(a) => {
            let [a0, a1, a2, a3] = a.ip().octets();
            IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port: a.port(),
                address: (a0, a1, a2, a3),
            })
        }
        SocketAddr::V6(a) => {
            let [s0, s1, s2, s3, s4, s5, s6, s7] = a.ip().segments();
            IpSocketAddress::Ipv6(Ipv6SocketAddress {
                port: a.port(),
                flow_info: a.flowinfo(),
                address: (s0, s1, s2, s3, s4, s5, s6, s7),
                scope_id: a.scope_id(),
            })
        }
    }
}

fn from_wasi(addr: &IpSocketAddress) -> SocketAddr {
    match addr {
        IpSocketAddress::Ipv4(a) => {
            let (a0, a1, a2, a3) = a.address;
            SocketAddr::new(IpAddr::from([a0, a1, a2, a3]), a.port)
        }
        IpSocketAddress::Ipv6(a) => {
            let (s0, s1, s2, s3, s4, s5, s6, s7) = a.address;
            SocketAddr::new(IpAddr::from([s0, s1, s2, s3, s4, s5, s6, s7]), a.port)
        }
    }
}
