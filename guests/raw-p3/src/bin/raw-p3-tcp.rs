#![no_main]
use raw_p3::wasi::sockets::types::{IpAddressFamily, TcpSocket};

struct Run;

impl raw_p3::exports::wasi::cli::run::Guest for Run {
    async fn run() -> Result<(), ()> {
        let s = TcpSocket::create(IpAddressFamily::Ipv4);
        println!("create: {:?}", s.is_ok());
        raw_p3::wasi::clocks::monotonic_clock::wait_for(1_000_000).await;
        println!("raw-p3-tcp: 1 checks passed");
        Ok(())
    }
}

raw_p3::export!(Run with_types_in raw_p3);
