//! The conformance and std guests under a least-privilege policy (loopback only, named lookups
//! only), not just under allow-all: a policy that grants what a program needs changes nothing
//! it can observe.

mod common;

use common::run;
use wasock::WasockCtx;
use wasock::policy::RuleSet;

fn loopback_only() -> WasockCtx {
    let rules = RuleSet::builder()
        .allow_outbound("*://loopback:*")
        .and_then(|b| b.allow_inbound("*://loopback:* from loopback"))
        // The guests bind and listen on the unspecified address, hearing loopback peers only.
        .and_then(|b| b.allow_inbound("*://unspecified:* from loopback"))
        // raw-tcp's address-not-bindable checks bind (never send from) documentation
        // addresses; raw-udp binds (never sends to) a multicast group and the broadcast address.
        .and_then(|b| b.allow_inbound("tcp://192.0.2.1:*"))
        .and_then(|b| b.allow_inbound("tcp://[2001:db8::1]:*"))
        .and_then(|b| b.allow_inbound("udp://224.0.0.1:*"))
        .and_then(|b| b.allow_inbound("udp://255.255.255.255:*"))
        .and_then(|b| b.allow_resolve("localhost"))
        .and_then(|b| b.allow_resolve("*.localhost"))
        .and_then(|b| b.deny_outbound("*://cloud-metadata:*"))
        .and_then(|b| b.deny_outbound("*://private:*"))
        .expect("the test policy parses")
        .build();
    WasockCtx::builder().policy(rules).build()
}

macro_rules! under_policy {
    ($($name:ident => $guest:ident),* $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            run(wasock_guests::$guest, &[], loopback_only()).await.assert_passed();
        }
    )*};
}

under_policy! {
    raw_tcp => RAW_TCP,
    raw_udp => RAW_UDP,
    raw_lookup => RAW_LOOKUP,
    std_udp_echo => STD_UDP_ECHO,
    std_many => STD_MANY,
    std_localhost => STD_LOCALHOST,
    std_ipv6 => STD_IPV6,
}

/// A name-bound grant for `localhost`: the guest may resolve it and connect to what it returned
/// (its own listener), nothing else — no lookup switch, no address rule for outbound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn localhost_through_a_name_bound_grant() {
    let rules = RuleSet::builder()
        .allow_outbound("tcp://localhost:*")
        .and_then(|b| b.allow_inbound("tcp://127.0.0.1:* from loopback"))
        .expect("the test policy parses")
        .build();
    let ctx = WasockCtx::builder().policy(rules).build();
    run(wasock_guests::STD_LOCALHOST, &[], ctx)
        .await
        .assert_passed();
}
