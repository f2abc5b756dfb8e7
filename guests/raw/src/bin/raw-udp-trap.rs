//! raw-udp-trap: sends more datagrams than `check-send` permitted. The WIT says
//! "Calling `send` with more datagrams than this function has permitted will trap" and
//! "Implementations must trap if either `check-send` was not called or `datagrams`
//! contains more items than `check-send` permitted." A trap ends the instance, so this
//! is its own guest; the host-side test asserts the run ends in a trap.
//!
//! Mode (argv[1]): `over-permit` (default) sends permit + 1 datagrams;
//! `no-permit` sends one datagram without calling `check-send` first.
//! If the send returns instead of trapping, the guest exits with status 1.

use guest_support::{fail, start};
use raw::{
    IpAddressFamily as Family, dgram, instance_network, local_addr_udp, udp_bound, udp_streams,
    wait_send_permit,
};

fn main() {
    start("raw-udp-trap");
    let mode = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "over-permit".into());
    let net = instance_network();
    let s = udp_bound("trap: bind", &net, Family::Ipv4);
    let me = local_addr_udp("trap: address", &s);
    let (_incoming, outgoing) = udp_streams("trap: stream(none)", &s, None);
    let count = match mode.as_str() {
        "over-permit" => {
            let permit = wait_send_permit("trap: check-send", &outgoing, 1);
            if permit > 4096 {
                fail(
                    "trap: check-send permit",
                    format!("permit {permit} is too large to exceed in a test"),
                );
            }
            permit + 1
        }
        "no-permit" => 1,
        other => fail("trap: mode", format!("unknown mode {other:?}")),
    };
    let datagrams: Vec<_> = (0..count).map(|_| dgram(b"over", Some(me))).collect();
    println!("raw-udp-trap: sending {count} datagram(s) ({mode}); this must trap");
    let r = outgoing.send(&datagrams);
    fail(
        &format!("trap: send ({mode}) must trap"),
        format!("send returned {r:?} instead of trapping"),
    );
}
