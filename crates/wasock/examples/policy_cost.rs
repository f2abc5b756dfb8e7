//! The cost of one policy decision, as the gate makes it on every connect, datagram and lookup.
//!
//! `cargo run --release -p wasock --example policy_cost` prints nanoseconds per decision for a
//! few policy shapes. Timings, not assertions: run it on a quiet machine.

use std::hint::black_box;
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;
use wasock::policy::{Action, NameBook, Policy, Protocol, RuleSet};

/// A name book with one looked-up name, as after `resolve-addresses("api.example.com")`.
struct Book(Vec<String>);

impl NameBook for Book {
    fn names_of(&self, ip: IpAddr) -> &[String] {
        if ip == IpAddr::from([93, 184, 216, 34]) {
            &self.0
        } else {
            &[]
        }
    }
}

fn per_decision(policy: &dyn Policy, action: &Action<'_>, names: &dyn NameBook) -> f64 {
    const N: u32 = 2_000_000;
    for _ in 0..N / 10 {
        black_box(policy.decide(black_box(action), names));
    }
    let start = Instant::now();
    for _ in 0..N {
        black_box(policy.decide(black_box(action), names));
    }
    start.elapsed().as_nanos() as f64 / f64::from(N)
}

fn main() {
    let small = RuleSet::builder()
        .allow_outbound("tcp://api.example.com:443")
        .and_then(|b| b.deny_outbound("*://cloud-metadata:*"))
        .and_then(|b| b.allow_inbound("tcp://*:8080 from loopback"))
        .expect("rules parse")
        .build();
    let mut large = RuleSet::builder();
    for i in 0..100u32 {
        let rule = format!("tcp://10.{}.{}.0/24:{}", i / 256, i % 256, 1000 + i);
        large.allow_outbound(&rule).expect("rule parses");
        large
            .deny_outbound(&format!("udp://host{i}.example.com:*"))
            .expect("rule parses");
    }
    let large = large
        .allow_outbound("tcp://api.example.com:443")
        .expect("rule parses")
        .build();

    let book = Book(vec!["api.example.com".to_string()]);
    let allowed: SocketAddr = "93.184.216.34:443".parse().unwrap();
    let denied: SocketAddr = "169.254.169.254:80".parse().unwrap();
    let connect = |remote| Action::Connect {
        proto: Protocol::Tcp,
        remote,
    };
    let resolve = Action::Resolve {
        name: "api.example.com",
    };

    println!(
        "policy decision cost (ns per decision, {} rules / {} rules)",
        small.rules().len(),
        large.rules().len()
    );
    for (what, action) in [
        ("connect allowed by a name-bound grant", connect(allowed)),
        ("connect denied by a set", connect(denied)),
        ("resolve allowed by a name grant", resolve),
    ] {
        let s = per_decision(&small, &action, &book);
        let l = per_decision(&large, &action, &book);
        println!("  {what:<40} {s:>8.1} {l:>8.1}");
    }
}
