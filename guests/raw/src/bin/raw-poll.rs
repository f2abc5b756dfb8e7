//! raw-poll: `wasi:io/poll` over TCP stream pollables, as io.wit words it, asserting exact
//! results:
//!
//! - `poll` "waits until one or more of the events is ready" and returns "one or more indices
//!   of handles in the argument list that is ready": exactly the ready ones, each index as
//!   often as its handle is listed, a clock pollable mixed in;
//! - an input stream's pollable is ready "once either the specified stream has bytes available
//!   to read or the other end of the stream has been closed", and stays so until a read takes
//!   the bytes (level-triggered); an output stream's when `check-write` grants room again;
//! - `ready` "never blocks"; `block` "returns immediately if the pollable is ready";
//! - many pollables made and dropped on one stream, and many connections in one list;
//! - with the argument `empty`: `poll` with an empty list traps ("This function traps if ...
//!   the list is empty").

use guest_support::{check, check_eq, expect_ok, fail, finish, start};
use raw::wasi::clocks::monotonic_clock::subscribe_duration;
use raw::wasi::io::poll::poll;
use raw::{
    IpAddressFamily as Family, Network, Pollable, StreamError, TcpPair, WAIT_MS, instance_network,
    read_exact, read_up_to, ready_within, tcp_pair, wait_ready, write_all,
};

/// A clock pollable that fires after `ms` milliseconds.
fn after_ms(ms: u64) -> Pollable {
    subscribe_duration(ms * 1_000_000)
}

/// A timeout longer than any wait here (a hang fails at the guest's run timeout instead).
fn never() -> Pollable {
    subscribe_duration(3_600 * 1_000_000_000)
}

/// `poll`'s answer, sorted (the WIT does not order it).
fn polled(list: &[&Pollable]) -> Vec<u32> {
    let mut ready = poll(list);
    ready.sort_unstable();
    ready
}

/// Checks that `poll(list)` answers exactly `want` (sorted); recorded as a yes or no, so a
/// host's other answers compare as one.
#[track_caller]
fn check_polled(check_name: &str, list: &[&Pollable], want: &[u32]) {
    let got = polled(list);
    check(check_name, got == want, || {
        format!("got {got:?}, want {want:?}")
    });
}

/// Connections in the many-connections test.
const MANY: usize = 40;

fn main() {
    start("raw-poll");
    if std::env::args().nth(1).as_deref() == Some("empty") {
        poll(&[]);
        fail(
            "empty list",
            "poll(empty list) returned instead of trapping",
        );
    }
    let net = instance_network();
    for family in [Family::Ipv4, Family::Ipv6] {
        input_readiness(&net, family);
        level_triggered(&net, family);
        output_readiness(&net, family);
        end_of_stream(&net, family);
        many_connections(&net, family);
        resubscribe(&net, family);
    }
    finish();
}

fn input_readiness(net: &Network, family: Family) {
    let c = &format!("input readiness ({family:?})");
    let pair = tcp_pair(c, net, family);
    let ready = pair.server_in.subscribe();
    check(
        &format!("{c}: ready() with no bytes"),
        !ready.ready(),
        || "ready".into(),
    );
    check_polled(
        &format!("{c}: poll with no bytes returns the clock only"),
        &[&ready, &after_ms(20)],
        &[1],
    );
    write_all(c, &pair.client_out, b"ping");
    wait_ready(c, &ready, WAIT_MS);
    check(
        &format!("{c}: ready() once bytes arrived"),
        ready.ready(),
        || "not ready".into(),
    );
    check_polled(
        &format!("{c}: poll once bytes arrived"),
        &[&ready, &never()],
        &[0],
    );
    // A clock at its deadline may take a turn to fire; the ready stream is in the answer.
    let both = polled(&[&after_ms(0), &ready]);
    check(
        &format!("{c}: a due clock and a ready stream"),
        both == [1] || both == [0, 1],
        || format!("{both:?}"),
    );
    ready.block();
    check_eq(
        &format!("{c}: the bytes"),
        read_exact(c, &pair.server_in, 4),
        b"ping".to_vec(),
    );
    check(
        &format!("{c}: ready() after a read took every byte"),
        !ready.ready(),
        || "ready".into(),
    );
    check_polled(
        &format!("{c}: poll after a read took every byte"),
        &[&ready, &after_ms(20)],
        &[1],
    );
    write_all(c, &pair.client_out, b"pong");
    check_polled(
        &format!("{c}: poll wakes for new bytes"),
        &[&never(), &ready],
        &[1],
    );
    check_eq(
        &format!("{c}: the new bytes"),
        read_exact(c, &pair.server_in, 4),
        b"pong".to_vec(),
    );
}

fn level_triggered(net: &Network, family: Family) {
    let c = &format!("level-triggered ({family:?})");
    let pair = tcp_pair(c, net, family);
    let first = pair.server_in.subscribe();
    let second = pair.server_in.subscribe();
    write_all(c, &pair.client_out, b"abc");
    wait_ready(c, &first, WAIT_MS);
    check_polled(
        &format!("{c}: the same pollable twice"),
        &[&first, &first],
        &[0, 1],
    );
    check_polled(
        &format!("{c}: two pollables of one stream"),
        &[&first, &never(), &second],
        &[0, 2],
    );
    check_polled(
        &format!("{c}: still ready without a read"),
        &[&never(), &second, &first],
        &[1, 2],
    );
    drop(second);
    check_polled(
        &format!("{c}: the other pollable after one was dropped"),
        &[&first],
        &[0],
    );
    let (part, _) = read_up_to(c, &pair.server_in, 1);
    check_eq(&format!("{c}: a read of part"), part, b"a".to_vec());
    check(
        &format!("{c}: ready while bytes remain"),
        first.ready(),
        || "not ready".into(),
    );
    check_eq(
        &format!("{c}: the rest"),
        read_exact(c, &pair.server_in, 2),
        b"bc".to_vec(),
    );
}

fn output_readiness(net: &Network, family: Family) {
    let c = &format!("output readiness ({family:?})");
    let pair = tcp_pair(c, net, family);
    let ready = pair.client_out.subscribe();
    check(
        &format!("{c}: ready() on a new connection"),
        ready.ready(),
        || "not ready".into(),
    );
    check_polled(
        &format!("{c}: poll on a new connection"),
        &[&never(), &ready],
        &[1],
    );
    // Fill the way: write what check-write grants until it grants nothing, then see the
    // pollable stay not ready; bytes still in flight may make room again, so a few rounds.
    let chunk = vec![7u8; 64 * 1024];
    let mut written = 0usize;
    let mut blocked = false;
    for _round in 0..64 {
        for _ in 0..4096 {
            let room = match pair.client_out.check_write() {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => fail(c, format!("check-write failed: {e:?}")),
            };
            let n = chunk.len().min(room as usize);
            if let Err(e) = pair.client_out.write(&chunk[..n]) {
                fail(c, format!("write failed: {e:?}"));
            }
            written += n;
        }
        if !ready_within(&ready, 100) {
            blocked = true;
            break;
        }
    }
    // io.wit: after `flush`, check-write grants nothing "until the flush has completed";
    // the flush completes as the peer reads, with no more calls on this stream.
    if let Err(e) = pair.client_out.flush() {
        fail(c, format!("flush failed: {e:?}"));
    }
    check(
        &format!("{c}: not ready while check-write grants nothing and the peer reads nothing"),
        blocked,
        || format!("still ready after {written} bytes"),
    );
    let (got, _) = read_up_to(c, &pair.server_in, written);
    check(
        &format!("{c}: the peer reads every byte"),
        got.len() == written,
        || format!("{} of {written}", got.len()),
    );
    check(
        &format!("{c}: ready once the peer read"),
        ready_within(&ready, WAIT_MS),
        || "not ready".into(),
    );
    check(
        &format!("{c}: check-write grants room again"),
        pair.client_out.check_write().is_ok_and(|n| n > 0),
        || "no room".into(),
    );
}

fn end_of_stream(net: &Network, family: Family) {
    let c = &format!("end of stream ({family:?})");
    let pair = tcp_pair(c, net, family);
    let ready = pair.server_in.subscribe();
    check(
        &format!("{c}: not ready before the end"),
        !ready.ready(),
        || "ready".into(),
    );
    drop(pair.client_out);
    expect_ok(
        &format!("{c}: shutdown(send)"),
        pair.client.shutdown(raw::ShutdownType::Send),
    );
    check_polled(
        &format!("{c}: poll at the end of stream"),
        &[&ready, &never()],
        &[0],
    );
    check(
        &format!("{c}: read at the end of stream"),
        matches!(pair.server_in.read(16), Err(StreamError::Closed)),
        || "not closed".into(),
    );
    check(&format!("{c}: ready after the end"), ready.ready(), || {
        "not ready".into()
    });
}

fn many_connections(net: &Network, family: Family) {
    let c = &format!("many connections ({family:?})");
    let pairs: Vec<TcpPair> = (0..MANY).map(|_| tcp_pair(c, net, family)).collect();
    let pollables: Vec<Pollable> = pairs.iter().map(|p| p.server_in.subscribe()).collect();
    let timeout = never();
    let mut list: Vec<&Pollable> = pollables.iter().collect();
    list.push(&timeout);
    write_all(c, &pairs[MANY / 2].client_out, b"x");
    check_polled(
        &format!("{c}: one ready among {MANY}"),
        &list,
        &[(MANY / 2) as u32],
    );
    write_all(c, &pairs[0].client_out, b"y");
    write_all(c, &pairs[MANY - 1].client_out, b"z");
    wait_ready(c, &pollables[0], WAIT_MS);
    wait_ready(c, &pollables[MANY - 1], WAIT_MS);
    check_polled(
        &format!("{c}: three ready among {MANY}"),
        &list,
        &[0, (MANY / 2) as u32, (MANY - 1) as u32],
    );
    for (i, want) in [(MANY / 2, b"x"), (0, b"y"), (MANY - 1, b"z")] {
        if read_exact(c, &pairs[i].server_in, 1) != want {
            fail(c, format!("connection {i} read the wrong byte"));
        }
    }
    let short = after_ms(20);
    list.pop();
    list.push(&short);
    check_polled(
        &format!("{c}: none ready after the reads"),
        &list,
        &[MANY as u32],
    );
}

fn resubscribe(net: &Network, family: Family) {
    let c = &format!("resubscribe ({family:?})");
    let pair = tcp_pair(c, net, family);
    let mut ready_early = 0;
    for _ in 0..1000 {
        let p = pair.server_in.subscribe();
        if p.ready() {
            ready_early += 1;
        }
    }
    check(
        &format!("{c}: 1000 fresh pollables, none ready"),
        ready_early == 0,
        || format!("{ready_early} ready"),
    );
    write_all(c, &pair.client_out, b"!");
    let p = pair.server_in.subscribe();
    check(
        &format!("{c}: a fresh pollable sees the bytes"),
        ready_within(&p, WAIT_MS),
        || "not ready".into(),
    );
    drop(p);
    check_eq(
        &format!("{c}: the byte"),
        read_exact(c, &pair.server_in, 1),
        b"!".to_vec(),
    );
}
