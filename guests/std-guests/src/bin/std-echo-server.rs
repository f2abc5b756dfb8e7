//! std-echo-server: a small TCP echo server written against `std::net` only.
//!
//! Usage: `std-echo-server [ADDRESS] [CONNECTIONS]` (defaults: `127.0.0.1:0`, 1).
//! Prints `listening on ADDRESS` once bound (so a caller can find an ephemeral port),
//! then serves CONNECTIONS connections one after the other, echoing every byte back
//! until the client closes its side, and exits 0.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use guest_support::{Deadline, fail, retry_nb};

/// How long to wait for each client before giving up.
const ACCEPT_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a connection may stay silent before it is dropped.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

fn main() {
    guest_support::start("std-echo-server");
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".to_string());
    let connections: u32 = match args.next().map(|n| n.parse()) {
        None => 1,
        Some(Ok(n)) => n,
        Some(Err(e)) => fail("arguments", format!("CONNECTIONS must be a number: {e}")),
    };

    let listener = match TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => fail("bind", format!("cannot listen on {addr}: {e}")),
    };
    let local = listener
        .local_addr()
        .unwrap_or_else(|e| fail("local_addr", e));
    println!("listening on {local}");
    let _ = io::stdout().flush();

    // Accept with a deadline so the server never waits forever for a client.
    if let Err(e) = listener.set_nonblocking(true) {
        fail("set_nonblocking", e);
    }
    for n in 1..=connections {
        let (stream, peer) = retry_nb("accept", Deadline::after(ACCEPT_TIMEOUT), || {
            listener.accept()
        });
        println!("connection {n} from {peer}");
        match serve(stream) {
            Ok(bytes) => println!("connection {n} closed, echoed {bytes} bytes"),
            Err(e) => println!("connection {n} ended with an error: {e}"),
        }
        let _ = io::stdout().flush();
    }
    println!("std-echo-server: served {connections} connection(s)");
}

/// Echoes everything read from `stream` back to it until end-of-stream.
fn serve(mut stream: TcpStream) -> io::Result<u64> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IDLE_TIMEOUT))?;
    let mut buf = [0u8; 4096];
    let mut total = 0u64;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        stream.write_all(&buf[..n])?;
        total += n as u64;
    }
}
