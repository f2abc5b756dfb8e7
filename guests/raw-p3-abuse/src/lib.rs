//! raw-p3-abuse: bad input for `wasi:sockets/types@0.3.0` TCP. Streams, futures and connects
//! are dropped or cancelled half-way, and a peer floods a receive stream nobody reads, or
//! connects to a listener whose accept stream nobody reads; each step asserts what the WIT
//! (guests/wit/0.3.0/sockets.wit) says, or, where it says nothing, that the call still ends.
//! Loopback only; every wait is bounded. The toolchain and the entry point are explained in
//! guests/raw-p3/src/lib.rs.
//!
//! Arguments (argv[1..]): none or `all` runs every scenario below in one go; a scenario's
//! name runs that one alone (`flood`, `never-accept [HOLD_MS]`, ...); and two halves of the
//! socket-limit scenario, for two instances: `limit-server LIMIT CLIENTS` (prints
//! `listening on PORT`) and `limit-clients PORT CLIENTS`.

use std::future::{Future, poll_fn};
use std::io::Write as _;
use std::pin::pin;
use std::task::Poll;

use guest_support::{check, check_eq, expect_err, expect_err_in, expect_ok, fail, finish, start};
use raw_p3::{
    ErrorCode as E, IpAddressFamily as Family, IpSocketAddress, StreamResult, StreamWriter,
    TcpSocket, WAIT_MS, accept, byte_stream, listener, lo, local_addr, new_tcp, pair, port_of,
    read_exact, read_once, send_all, sleep_ms, timeout, within, write_all,
};

/// The `wasi:cli/run@0.3.0` entry point.
struct Run;

impl raw_p3::exports::wasi::cli::run::Guest for Run {
    async fn run() -> Result<(), ()> {
        start("raw-p3-abuse");
        let args: Vec<String> = std::env::args().skip(1).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match args.as_slice() {
            [] | ["all"] => {
                for (_, scenario) in SCENARIOS {
                    scenario(None).await;
                }
            }
            ["limit-server", limit, clients] => limit_server(num(limit), num(clients)).await,
            ["limit-clients", port, clients] => limit_clients(num(port), num(clients)).await,
            [name, rest @ ..] => match SCENARIOS.iter().find(|(n, _)| n == name) {
                Some((_, scenario)) => scenario(rest.first().map(|a| num(a))).await,
                None => fail("arguments", format!("no scenario `{name}`")),
            },
        }
        finish();
        Ok(())
    }
}

raw_p3::export!(Run with_types_in raw_p3);

/// A scenario, given its one optional numeric argument.
type Scenario = fn(Option<u64>) -> std::pin::Pin<Box<dyn Future<Output = ()>>>;

/// Every scenario, in the order `all` runs them.
const SCENARIOS: [(&str, Scenario); 10] = [
    ("drop-receive", |_| Box::pin(drop_receive_midway())),
    ("drop-send", |_| Box::pin(drop_send_midway())),
    ("drop-futures", |_| Box::pin(drop_futures())),
    ("cancel-connect", |_| Box::pin(cancel_connect())),
    ("flood", |_| Box::pin(flood())),
    ("never-accept", |ms| Box::pin(never_accept(ms.unwrap_or(0)))),
    ("listener-dropped", |_| Box::pin(listener_dropped())),
    ("accepts-dropped", |_| Box::pin(accept_stream_dropped())),
    ("peer-reset", |_| Box::pin(peer_reset())),
    ("gone-before-accept", |_| Box::pin(gone_before_accept())),
];

fn num<T: std::str::FromStr>(s: &str) -> T {
    match s.parse() {
        Ok(n) => n,
        Err(_) => fail("arguments", format!("`{s}` is not a number")),
    }
}

const V4: Family = Family::Ipv4;
/// Bytes per write.
const CHUNK: usize = 64 * 1024;
/// A connect to a full accept queue that has not finished in this long is pending.
const PENDING_MS: u64 = 1_000;
/// A write that makes no progress for this long has stalled: the kernel's buffers are full.
const STALL_MS: u64 = 300;
/// The most a flooded, never-read connection may take before its writer stalls: the
/// kernel's send and receive buffers (a few MiB on loopback), not the host's memory.
const STALL_BOUND: usize = 48 << 20;

/// Byte `i` of every transfer here: a pattern that shows a lost or repeated stretch.
fn pattern(from: usize, len: usize) -> Vec<u8> {
    (from..from + len).map(|i| (i % 251) as u8).collect()
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

/// One write of `data`, cancelled (`StreamWrite::cancel`, which says how much went) when it
/// has not finished within `ms`: what the write says, how many bytes it took, and whether it
/// was cancelled.
async fn write_for(
    tx: &mut StreamWriter<u8>,
    data: Vec<u8>,
    ms: u64,
) -> (StreamResult, usize, bool) {
    let len = data.len();
    let mut write = pin!(tx.write(data));
    let mut clock = pin!(sleep_ms(ms));
    let done = poll_fn(|cx| {
        if let Poll::Ready(v) = write.as_mut().poll(cx) {
            return Poll::Ready(Some(v));
        }
        if clock.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await;
    let (cancelled, (result, buf)) = match done {
        Some(v) => (false, v),
        None => (true, write.as_mut().cancel()),
    };
    (result, len - buf.remaining(), cancelled)
}

/// How a [`write_until_stall`] ended.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Wrote {
    /// Everything asked for was taken.
    All,
    /// A write made no progress for [`STALL_MS`] and was cancelled.
    Stalled,
    /// The reader went away (the stream reported `dropped`).
    Dropped,
}

/// Writes the pattern from offset `from` up to `to`, a chunk at a time, until done, stalled (no
/// progress for [`STALL_MS`]) or dropped; returns the offset reached and how it ended.
async fn write_until_stall(tx: &mut StreamWriter<u8>, from: usize, to: usize) -> (usize, Wrote) {
    write_until(tx, from, to, STALL_MS).await
}

/// [`write_until_stall`] where a write may make no progress for `stall_ms`.
async fn write_until(
    tx: &mut StreamWriter<u8>,
    mut from: usize,
    to: usize,
    stall_ms: u64,
) -> (usize, Wrote) {
    while from < to {
        let len = CHUNK.min(to - from);
        let (result, n, cancelled) = write_for(tx, pattern(from, len), stall_ms).await;
        from += n;
        if result == StreamResult::Dropped {
            return (from, Wrote::Dropped);
        }
        if cancelled && n == 0 {
            return (from, Wrote::Stalled);
        }
    }
    (from, Wrote::All)
}

/// Reads `rx` to its end (at most `max` bytes), each read bounded: the bytes and whether they
/// are the pattern from offset 0.
async fn read_all(check: &str, rx: &mut raw_p3::StreamReader<u8>, max: usize) -> (usize, bool) {
    let (mut n, mut same) = (0, true);
    loop {
        let (result, buf) = within(check, rx.read(Vec::with_capacity(CHUNK))).await;
        match result {
            StreamResult::Complete(_) => {
                same &= buf == pattern(n, buf.len());
                n += buf.len();
                if n > max {
                    fail(check, format!("more than {max} bytes before the end"));
                }
            }
            StreamResult::Dropped => return (n, same),
            StreamResult::Cancelled => fail(check, "the read was cancelled"),
        }
    }
}

/// What a `send` to a peer that closed with our data unread may say: the WIT's
/// `connection-reset` (ECONNRESET) or `connection-broken` (EPIPE).
const BROKEN: &[E] = &[E::ConnectionReset, E::ConnectionBroken];

/// "If the caller is not expecting to receive any more data from the peer, they should drop
/// the stream. Any data still in the receive queue will be discarded. This is equivalent to
/// calling `shutdown(SHUT_RD)` in POSIX." Half-way through a 16 MiB transfer the client drops
/// its receive stream: its future still resolves, the sender stalls (the data is discarded,
/// nobody reads it) instead of the host buffering it, the other direction still works, and
/// once the client drops its socket the sender's stream and future report the broken
/// connection.
async fn drop_receive_midway() {
    let c = |what: &str| format!("drop receive: {what}");
    let p = pair(&c("pair"), V4).await;
    let (mut tx, data) = byte_stream();
    let sent = p.server.send(data);
    let (mut rx, received) = p.client.receive();
    let total = 16 << 20;
    let half = 1 << 20;
    // The first MiB is read while the writer goes on past it; the rest of what it wrote is in
    // the receive queue when the stream is dropped.
    let ahead = half + 256 * 1024;
    let ((reached, how), got) = join(
        write_until(&mut tx, 0, ahead, WAIT_MS),
        read_exact(&c("read the first MiB"), &mut rx, half),
    )
    .await;
    check_eq(
        &c("the writer got ahead"),
        (reached, how),
        (ahead, Wrote::All),
    );
    check(
        &c("the first MiB arrived intact"),
        got == pattern(0, half),
        || "differs".into(),
    );
    drop(rx);
    let (reached, how) = write_until_stall(&mut tx, ahead, total).await;
    check_eq(
        &c("the sender stalls once nobody reads"),
        how,
        Wrote::Stalled,
    );
    check(
        &c("what the sender got rid of is bounded by the kernel's buffers"),
        reached - half <= STALL_BOUND,
        || format!("{reached} bytes written"),
    );
    let ending = within(&c("receive future"), received).await;
    check(
        &c("the receive future resolves after the stream was dropped"),
        matches!(ending, Ok(()) | Err(E::ConnectionReset)),
        || format!("{ending:?}"),
    );
    // The sending half of the client still works.
    check_eq(
        &c("client still sends"),
        send_all(&c("client send"), &p.client, b"still here").await,
        Ok(()),
    );
    let (mut srx, _sresult) = p.server.receive();
    check_eq(
        &c("server reads it"),
        read_exact(&c("server read"), &mut srx, 10).await,
        b"still here".to_vec(),
    );
    // The client goes away with the server's bytes unread: a reset, which the server's next
    // write and its send future report.
    drop(p.client);
    let mut failed = false;
    for _ in 0..50 {
        let (result, _, _) = write_for(&mut tx, pattern(0, CHUNK), STALL_MS).await;
        if result == StreamResult::Dropped {
            failed = true;
            break;
        }
    }
    check(
        &c("the server's send stream ends after the reset"),
        failed,
        || "writes still accepted".into(),
    );
    drop(tx);
    expect_err_in(
        &c("the server's send future: connection-reset or connection-broken"),
        within(&c("send future"), sent).await,
        BROKEN,
    );
}

/// "The caller should close the stream when it has no more data to send to the peer. Under
/// normal circumstances this will cause a FIN packet to be sent out." Dropped half-way, between
/// two writes and during a write the peer does not take, the send stream ends the transfer:
/// the peer reads exactly what was written (the cancelled write's part included, nothing
/// more), then the end of stream, and both futures say `ok`.
async fn drop_send_midway() {
    let c = |what: &str| format!("drop send: {what}");
    // Between writes: 512 KiB of a planned 4 MiB, read concurrently.
    let p = pair(&c("pair"), V4).await;
    let (mut tx, data) = byte_stream();
    let sent = p.client.send(data);
    let (mut rx, received) = p.server.receive();
    let half = 512 * 1024;
    let ((reached, how), (n, same)) = join(
        async {
            let r = write_until(&mut tx, 0, half, WAIT_MS).await;
            drop(tx);
            r
        },
        read_all(&c("read to the end"), &mut rx, 4 << 20),
    )
    .await;
    check_eq(&c("wrote half"), (reached, how), (half, Wrote::All));
    check_eq(
        &c("peer reads exactly what was written, then the end"),
        n,
        half,
    );
    check(&c("peer's bytes intact"), same, || "differ".into());
    check_eq(
        &c("send future"),
        within(&c("send future"), sent).await,
        Ok(()),
    );
    check_eq(
        &c("peer's receive future"),
        within(&c("receive future"), received).await,
        Ok(()),
    );

    // During a write the peer does not take: the write is cancelled, then the stream dropped.
    let p = pair(&c("pair 2"), V4).await;
    let (mut tx, data) = byte_stream();
    let sent = p.client.send(data);
    let (reached, how) = write_until_stall(&mut tx, 0, 64 << 20).await;
    check_eq(&c("the unread transfer stalls"), how, Wrote::Stalled);
    drop(tx);
    let (mut rx, received) = p.server.receive();
    let (n, same) = read_all(&c("read the stalled transfer"), &mut rx, 64 << 20).await;
    check_eq(
        &c("peer reads exactly what the writes took: bytes more or less"),
        n as i64 - reached as i64,
        0,
    );
    check(
        &c("peer's bytes intact after the cancelled write"),
        same,
        || "differ".into(),
    );
    check_eq(
        &c("send future 2"),
        within(&c("send future"), sent).await,
        Ok(()),
    );
    check_eq(
        &c("peer's receive future 2"),
        within(&c("receive future"), received).await,
        Ok(()),
    );
}

/// The futures of `send` and `receive` only report: dropped without being awaited (or after a
/// read of them was cancelled) they change nothing, the streams carry the data to its end. A
/// cancelled read of the receive stream loses nothing either.
async fn drop_futures() {
    let c = |what: &str| format!("drop futures: {what}");
    let p = pair(&c("pair"), V4).await;
    let (mut tx, data) = byte_stream();
    drop(p.client.send(data));
    let (mut rx, received) = p.server.receive();
    drop(received);
    check_eq(
        &c("write after the send future was dropped"),
        write_all(&c("write"), &mut tx, &pattern(0, 100_000)).await,
        vec![],
    );
    drop(tx);
    check_eq(
        &c("peer reads it all and the end, its future dropped"),
        read_all(&c("read"), &mut rx, 1 << 20).await,
        (100_000, true),
    );

    // A read of each future started, cancelled, then the futures dropped.
    let (mut crx, cresult) = p.client.receive();
    let (mut stx, sdata) = byte_stream();
    let ssent = p.server.send(sdata);
    check_eq(
        &c("receive future pending while the peer sends nothing"),
        timeout(50, cresult).await,
        None,
    );
    check_eq(
        &c("a read of the receive stream is pending too, and is cancelled"),
        timeout(50, crx.read(Vec::with_capacity(16))).await,
        None,
    );
    check_eq(
        &c("write after the receive future's read was cancelled"),
        write_all(&c("write back"), &mut stx, b"back").await,
        vec![],
    );
    drop(ssent);
    check_eq(
        &c("the reply arrives"),
        read_exact(&c("read back"), &mut crx, 4).await,
        b"back".to_vec(),
    );
    drop(stx);
    let (end, rest) = read_once(&c("read the end"), &mut crx, 16).await;
    check_eq(
        &c("then the end of stream"),
        (end, rest.len()),
        (StreamResult::Dropped, 0),
    );
    drop(p);
}

/// A `connect` cancelled while pending (to a listener whose backlog is full, so the SYN gets
/// no answer): the socket then answers a second `connect` with `invalid-state` ("The socket is
/// already in the `connecting` state"; or `connected`/`closed` if it finished meanwhile: all
/// `invalid-state`), dropping it is fine, and the listener and its queued connections are
/// unharmed.
async fn cancel_connect() {
    let c = |what: &str| format!("cancel connect: {what}");
    let l = new_tcp(&c("listener"), V4);
    expect_ok(&c("bind"), l.bind(lo(V4, 0)));
    expect_ok(&c("backlog 1"), l.set_listen_backlog_size(1));
    let mut accepts = expect_ok(&c("listen"), l.listen());
    let addr = local_addr(&c("address"), &l);
    let mut queued = Vec::new();
    let mut pending = None;
    for _ in 0..16 {
        let s = new_tcp(&c("client"), V4);
        // Long enough that a connect the queue takes finishes even on a busy machine.
        match timeout(PENDING_MS, s.connect(addr)).await {
            Some(Ok(())) => queued.push(s),
            Some(Err(e)) => fail(&c("connect while the backlog fills"), format!("{e:?}")),
            None => {
                pending = Some(s);
                break;
            }
        }
    }
    let Some(s) = pending else {
        fail(
            &c("a connect stays pending"),
            "16 connects to a backlog of 1 all finished",
        );
    };
    check(
        &c("the queue took a connect or more"),
        !queued.is_empty(),
        || "none".into(),
    );
    expect_err(
        &c("connect again after the cancelled connect"),
        within(&c("second connect"), s.connect(addr)).await,
        E::InvalidState,
    );
    expect_err(&c("bind after it"), s.bind(lo(V4, 0)), E::InvalidState);
    expect_err(&c("listen after it"), s.listen().map(drop), E::InvalidState);
    drop(s);
    // The listener is unharmed: each queued connection is accepted and works (one check for
    // them all: how many the kernel queues is its business).
    let mut carried = 0;
    for (i, client) in queued.iter().enumerate() {
        let Some(server) = accept(&c("accept a queued connection"), &mut accepts).await else {
            fail(&c("accept"), "the listen stream ended");
        };
        let msg = format!("queued {i}");
        let sent = send_all(&c("send"), client, msg.as_bytes()).await;
        let (mut rx, _r) = server.receive();
        let got = read_exact(&c("read"), &mut rx, msg.len()).await;
        carried += usize::from(sent.is_ok() && got == msg.into_bytes());
    }
    check_eq(
        &c("every queued connection is accepted and carries data"),
        carried == queued.len(),
        true,
    );
    let late = new_tcp(&c("late client"), V4);
    check_eq(
        &c("a new connect once the queue drained"),
        within(&c("late connect"), late.connect(addr)).await,
        Ok(()),
    );
}

/// A receive stream nobody reads while the peer floods it: the flooding writes stall once the
/// kernel's buffers are full (nothing is queued host-side), and stay stalled; the bytes taken
/// are printed (`flood: N bytes taken`) for the host to compare with its counters. Then the
/// reader goes away with the data unread, and the writer's stream and send future report it.
async fn flood() {
    let c = |what: &str| format!("flood: {what}");
    let p = pair(&c("pair"), V4).await;
    let (rx, received) = p.server.receive();
    let (mut tx, data) = byte_stream();
    let sent = p.client.send(data);
    let (reached, how) = write_until_stall(&mut tx, 0, 4 * STALL_BOUND).await;
    check_eq(&c("the writer stalls"), how, Wrote::Stalled);
    check(
        &c("before the kernel's buffers hold more than the bound"),
        reached <= STALL_BOUND,
        || format!("{reached} bytes taken"),
    );
    // Still stalled a while later: nobody drains the connection behind the guest's back.
    let (again, how) = write_until_stall(&mut tx, reached, reached + CHUNK).await;
    check_eq(
        &c("still stalled: not a byte more"),
        (again - reached, how),
        (0, Wrote::Stalled),
    );
    println!("flood: {reached} bytes taken");
    let _ = std::io::stdout().flush();
    drop(rx);
    drop(received);
    drop(p.server);
    let mut ended = false;
    for _ in 0..50 {
        let (result, _, _) = write_for(&mut tx, pattern(0, CHUNK), STALL_MS).await;
        if result == StreamResult::Dropped {
            ended = true;
            break;
        }
    }
    check(
        &c("the writer's stream ends once the reader is gone"),
        ended,
        || "writes still accepted".into(),
    );
    drop(tx);
    expect_err_in(
        &c("send future: connection-reset or connection-broken"),
        within(&c("send future"), sent).await,
        BROKEN,
    );
}

/// `listen` and never read its stream while many clients connect: every connect finishes
/// (the kernel queues them), waits `hold_ms` (printing `never-accept: N connected` first, for
/// the host to look at its counters), and then the stream hands over every one of them, each
/// the peer of one client.
async fn never_accept(hold_ms: u64) {
    let c = |what: &str| format!("never accept: {what}");
    const CLIENTS: usize = 32;
    let l = new_tcp(&c("listener"), V4);
    expect_ok(&c("bind"), l.bind(lo(V4, 0)));
    expect_ok(&c("backlog 64"), l.set_listen_backlog_size(64));
    let mut accepts = expect_ok(&c("listen"), l.listen());
    let addr = local_addr(&c("address"), &l);
    let mut clients = Vec::new();
    let mut ok = 0;
    for _ in 0..CLIENTS {
        let s = new_tcp(&c("client"), V4);
        if within(&c("connect"), s.connect(addr)).await.is_ok() {
            ok += 1;
        }
        clients.push(s);
    }
    check_eq(&c("every connect finishes, none accepted"), ok, CLIENTS);
    println!("never-accept: {CLIENTS} connected");
    let _ = std::io::stdout().flush();
    sleep_ms(hold_ms).await;
    let mut want: Vec<IpSocketAddress> = clients
        .iter()
        .map(|s| local_addr(&c("client address"), s))
        .collect();
    let mut got = Vec::new();
    for _ in 0..CLIENTS {
        match accept(&c("accept late"), &mut accepts).await {
            Some(s) => got.push(expect_ok(&c("remote address"), s.get_remote_address())),
            None => fail(&c("accept late"), "the listen stream ended"),
        }
    }
    let key = |a: &IpSocketAddress| port_of(a);
    want.sort_by_key(key);
    got.sort_by_key(key);
    check_eq(&c("every client accepted once, late"), got, want);
    check_eq(
        &c("nothing more queued"),
        timeout(50, accepts.next()).await.map(|s| s.is_some()),
        None,
    );
}

/// "The stream returned by `listen` behaves similarly" (remains functional after the original
/// `tcp-socket` handle is dropped); "The OS socket is closed only after the last handle is
/// dropped": with the listening socket dropped, its stream still accepts; once the stream is
/// dropped too, the port refuses.
async fn listener_dropped() {
    let c = |what: &str| format!("listener dropped: {what}");
    let (l, mut accepts) = listener(&c("listener"), V4);
    let addr = local_addr(&c("address"), &l);
    drop(l);
    let client = new_tcp(&c("client"), V4);
    check_eq(
        &c("connect after the socket was dropped"),
        within(&c("connect"), client.connect(addr)).await,
        Ok(()),
    );
    let Some(server) = accept(&c("accept"), &mut accepts).await else {
        fail(&c("accept"), "the listen stream ended with the socket");
    };
    check_eq(
        &c("the accepted socket's peer"),
        server.get_remote_address(),
        Ok(local_addr(&c("client address"), &client)),
    );
    check_eq(
        &c("data over it"),
        send_all(&c("send"), &client, b"hi").await,
        Ok(()),
    );
    let (mut rx, _r) = server.receive();
    check_eq(
        &c("read"),
        read_exact(&c("read"), &mut rx, 2).await,
        b"hi".to_vec(),
    );
    drop(accepts);
    let late = new_tcp(&c("late client"), V4);
    check_eq(
        &c("connect once the stream was dropped too"),
        timeout(WAIT_MS, late.connect(addr)).await,
        Some(Err(E::ConnectionRefused)),
    );
}

/// The accept stream dropped while its socket lives: the socket is still `listening` ("This can
/// be called at most once per socket": `listen` again is `invalid-state`), keeps its address,
/// a connect to it ends either way (the WIT does not say), and dropping it closes the port.
async fn accept_stream_dropped() {
    let c = |what: &str| format!("accept stream dropped: {what}");
    let (l, accepts) = listener(&c("listener"), V4);
    let addr = local_addr(&c("address"), &l);
    drop(accepts);
    check_eq(&c("still listening"), l.get_is_listening(), true);
    check_eq(&c("same address"), l.get_local_address(), Ok(addr));
    expect_err(&c("listen again"), l.listen().map(drop), E::InvalidState);
    let client = new_tcp(&c("client"), V4);
    let r = timeout(WAIT_MS, client.connect(addr)).await;
    check(
        &c("a connect meanwhile ends"),
        matches!(r, Some(Ok(()) | Err(E::ConnectionRefused))),
        || format!("{r:?}"),
    );
    drop(l);
    let late = new_tcp(&c("late client"), V4);
    check_eq(
        &c("connect once the socket was dropped too"),
        timeout(WAIT_MS, late.connect(addr)).await,
        Some(Err(E::ConnectionRefused)),
    );
}

/// `receive`: "The implementation drops the stream once no more data is available. At that
/// point, the returned `future` resolves to: ... `err` if the socket was closed abnormally",
/// "`connection-reset`: The connection was reset. (ECONNRESET)". The peer closes with our
/// bytes unread (a reset): our receive stream ends and its future is `err(connection-reset)`;
/// our send stream ends at the next write and its future reports the broken connection.
async fn peer_reset() {
    let c = |what: &str| format!("peer reset: {what}");
    let p = pair(&c("pair"), V4).await;
    let (mut rx, received) = p.client.receive();
    let (mut tx, data) = byte_stream();
    let sent = p.client.send(data);
    check_eq(
        &c("write what the peer will not read"),
        write_all(&c("write"), &mut tx, b"unread").await,
        vec![],
    );
    // The bytes are in the peer's receive queue before it closes.
    let (mut srx, _sresult) = p.server.receive();
    check_eq(
        &c("zero-length read: the bytes arrived"),
        read_once(&c("peek"), &mut srx, 0).await,
        (StreamResult::Complete(0), vec![]),
    );
    drop(srx);
    drop(p.server);
    let (end, got) = read_once(&c("read after the reset"), &mut rx, 16).await;
    check_eq(
        &c("the receive stream ends"),
        (end, got.len()),
        (StreamResult::Dropped, 0),
    );
    expect_err(
        &c("the receive future: connection-reset"),
        within(&c("receive future"), received).await,
        E::ConnectionReset,
    );
    let mut ended = false;
    for _ in 0..50 {
        let (result, _, _) = write_for(&mut tx, pattern(0, CHUNK), STALL_MS).await;
        if result == StreamResult::Dropped {
            ended = true;
            break;
        }
    }
    check(&c("the send stream ends"), ended, || {
        "writes still taken".into()
    });
    drop(tx);
    expect_err_in(
        &c("the send future: connection-reset or connection-broken"),
        within(&c("send future"), sent).await,
        BROKEN,
    );
}

/// "Depending on exact timing and circumstances, a newly accepted connection may already be
/// `closed` by the time the server attempts to perform its first I/O on it", and the stream
/// "should only close on fatal errors": clients that sent their bytes and went away before
/// being accepted are still handed over, with their bytes and their end of stream, and the
/// stream goes on accepting.
async fn gone_before_accept() {
    let c = |what: &str| format!("gone before accept: {what}");
    let (l, mut accepts) = listener(&c("listener"), V4);
    let addr = local_addr(&c("address"), &l);
    for i in 0..3u8 {
        let s = new_tcp(&c("client"), V4);
        check_eq(
            &c("connect"),
            within(&c("connect"), s.connect(addr)).await,
            Ok(()),
        );
        check_eq(
            &c("send and go"),
            send_all(&c("send"), &s, &[i]).await,
            Ok(()),
        );
    }
    for _ in 0..3 {
        let Some(server) = accept(&c("accept"), &mut accepts).await else {
            fail(&c("accept"), "the listen stream ended");
        };
        let (mut rx, received) = server.receive();
        let (n, _) = read_all(&c("read"), &mut rx, 16).await;
        check_eq(&c("one byte, then the end"), n, 1);
        check_eq(
            &c("receive future after the peer's FIN"),
            within(&c("receive future"), received).await,
            Ok(()),
        );
    }
    let late = new_tcp(&c("late client"), V4);
    check_eq(
        &c("the stream goes on accepting"),
        within(&c("late connect"), late.connect(addr)).await,
        Ok(()),
    );
    check(
        &c("and hands it over"),
        accept(&c("late accept"), &mut accepts).await.is_some(),
        || "ended".into(),
    );
}

/// The server half of the socket-limit scenario, run with the instance's socket limit at
/// `limit`: the listener holds one slot, so `limit - 1` connections are accepted; each further
/// one stays queued (a read of the accept stream does not finish) until an accepted socket is
/// dropped, and is accepted then. Every client gets `!` and the end of stream.
async fn limit_server(limit: usize, clients: usize) {
    let c = |what: &str| format!("limit server: {what}");
    if limit < 2 || clients < limit {
        fail(&c("arguments"), "want 2 <= LIMIT <= CLIENTS");
    }
    let (l, mut accepts) = listener(&c("listener"), V4);
    println!("listening on {}", port_of(&local_addr(&c("address"), &l)));
    let _ = std::io::stdout().flush();
    let mut held = std::collections::VecDeque::new();
    for _ in 0..limit - 1 {
        match accept(&c("accept below the limit"), &mut accepts).await {
            Some(s) => held.push_back(s),
            None => fail(&c("accept"), "the listen stream ended"),
        }
    }
    // 0.3 has no `new-socket-limit`; `other` is one of the codes "that are always possible".
    let r = TcpSocket::create(V4).map(drop);
    check(
        &c("create at the limit: other"),
        matches!(r, Err(E::Other(_))),
        || format!("{r:?}"),
    );
    for _ in limit - 1..clients {
        check_eq(
            &c("at the limit the next connection stays queued"),
            timeout(STALL_MS, accepts.next()).await.map(|s| s.is_some()),
            None,
        );
        let s = held.pop_front().unwrap();
        check_eq(
            &c("serve one"),
            send_all(&c("send"), &s, b"!").await,
            Ok(()),
        );
        drop(s);
        match accept(&c("accepted once a socket was dropped"), &mut accepts).await {
            Some(s) => held.push_back(s),
            None => fail(&c("accept"), "the listen stream ended"),
        }
    }
    while let Some(s) = held.pop_front() {
        check_eq(
            &c("serve the rest"),
            send_all(&c("send"), &s, b"!").await,
            Ok(()),
        );
    }
}

/// The client half: `clients` connections to `127.0.0.1:port`, each of which must get `!` and
/// then the end of stream.
async fn limit_clients(port: u16, clients: usize) {
    let c = |what: &str| format!("limit clients: {what}");
    let mut socks = Vec::new();
    for _ in 0..clients {
        let s = new_tcp(&c("client"), V4);
        check_eq(
            &c("connect"),
            within(&c("connect"), s.connect(lo(V4, port))).await,
            Ok(()),
        );
        socks.push(s);
    }
    for s in &socks {
        let (mut rx, result) = s.receive();
        let mut got = Vec::new();
        loop {
            // The last clients wait for the server to work through the queue.
            let (end, buf) = within(&c("read"), rx.read(Vec::with_capacity(16))).await;
            match end {
                StreamResult::Complete(_) => got.extend(buf),
                _ => break,
            }
        }
        check_eq(&c("served"), got, b"!".to_vec());
        check_eq(&c("then ok"), within(&c("future"), result).await, Ok(()));
    }
}
