//! std-retry-client: connects to ADDRESS (a name is looked up on every attempt), retrying
//! once a second until it connects or ATTEMPTS attempts have failed; then sends MESSAGE and
//! expects it echoed. Like many real clients, it says what each failed attempt met.
//!
//! Usage: `std-retry-client ADDRESS MESSAGE [ATTEMPTS]` (default 30). Exits 0 on the echo,
//! 1 when every attempt failed or the echo differs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(addr), Some(message)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: std-retry-client ADDRESS MESSAGE [ATTEMPTS]");
        std::process::exit(2);
    };
    let attempts: u32 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(30);
    let started = Instant::now();
    for attempt in 1..=attempts {
        match TcpStream::connect(addr.as_str()) {
            Ok(stream) => {
                println!(
                    "attempt {attempt}: connected after {:.1}s",
                    started.elapsed().as_secs_f64()
                );
                std::process::exit(match echo(stream, message) {
                    Ok(()) => 0,
                    Err(e) => {
                        println!("echo failed: {e}");
                        1
                    }
                });
            }
            Err(e) => {
                println!("attempt {attempt}: {e} ({:?})", e.kind());
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
    println!("gave up after {attempts} attempts");
    std::process::exit(1);
}

fn echo(mut stream: TcpStream, message: &str) -> std::io::Result<()> {
    stream.write_all(message.as_bytes())?;
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut back = String::new();
    stream.read_to_string(&mut back)?;
    if back != message {
        return Err(std::io::Error::other(format!("echoed {back:?}")));
    }
    println!("echoed: {back}");
    Ok(())
}
