//! std-echo-client: connects to an echo server with `std::net`, sends each message
//! as a line and checks that the same line comes back.
//!
//! Usage: `std-echo-client ADDRESS MESSAGE...`. Prints `sent: X` and `received: X` for
//! every message; exits non-zero if an echo differs.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use guest_support::{check, check_eq, expect_ok, fail, finish, start};

fn main() {
    start("std-echo-client");
    let mut args = std::env::args().skip(1);
    let Some(addr) = args.next() else {
        fail("arguments", "usage: std-echo-client ADDRESS MESSAGE...");
    };
    let messages: Vec<String> = args.collect();

    let stream = match TcpStream::connect(&addr) {
        // access-denied: the host refused the connection before it was attempted. Say so in
        // words rather than as a failed expectation's debug dump.
        Err(e) if e.kind() == ErrorKind::PermissionDenied => fail(
            "connect",
            format!(
                "refused: access-denied, the host's network policy does not grant a connection \
                 to {addr} (std: {:?})",
                e.kind()
            ),
        ),
        connected => expect_ok("connect", connected),
    };
    expect_ok(
        "set_read_timeout",
        stream.set_read_timeout(Some(Duration::from_secs(20))),
    );
    let peer = expect_ok("peer_addr", stream.peer_addr());
    println!("connected to {peer}");
    // One stream, used through `&TcpStream` for both directions (wasip2 has no dup).
    let mut writer = &stream;
    let mut reader = BufReader::new(&stream);

    for msg in &messages {
        if msg.contains('\n') {
            fail("arguments", "messages must not contain newlines");
        }
        expect_ok("send", writer.write_all(format!("{msg}\n").as_bytes()));
        println!("sent: {msg}");
        let mut line = String::new();
        let n = expect_ok("receive", reader.read_line(&mut line));
        check("echo arrived before end-of-stream", n > 0, || {
            format!("server closed the connection before echoing {msg:?}")
        });
        let echoed = line.trim_end_matches('\n');
        println!("received: {echoed}");
        check_eq("echo matches", echoed, msg.as_str());
    }

    // Close our side; the server then closes its side: read end-of-stream.
    expect_ok("shutdown(write)", writer.shutdown(Shutdown::Write));
    let mut rest = String::new();
    let n = expect_ok("read to end", reader.read_line(&mut rest));
    check_eq("nothing after the echoes", n, 0);
    finish();
}
