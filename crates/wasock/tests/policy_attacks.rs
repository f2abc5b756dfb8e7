//! A guest under a restrictive policy, trying what an attacker would (see
//! guests/raw/src/bin/raw-policy.rs for each check): every attempt gets the policy's answer
//! with the spec's error code, and what the policy grants keeps working.

mod common;

use common::run;
use std::sync::{Arc, Mutex};
use wasock::WasockCtx;
use wasock::audit::{AuditEvent, AuditVerdict};
use wasock::policy::RuleSet;

const POLICY: &str = r#"
allow-outbound = ["udp://127.0.0.1:*", "tcp://echo.test:*"]
deny-outbound  = ["udp://127.0.0.2:*", "tcp://127.0.0.3:*"]
allow-resolve  = ["echo.test->127.0.0.1"]
allow-inbound  = ["tcp://127.0.0.1:* from 127.0.0.1", "udp://127.0.0.1:* from 127.0.0.1"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_get_the_policys_answer() {
    attacks(None).await;
}

/// The same attempts get the same answers on the virtual network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_get_the_policys_answer_on_the_virtual_network() {
    let host = wasock::VirtualNetwork::new().attach("guest").unwrap();
    attacks(Some(host)).await;
}

async fn attacks(on: Option<wasock::VirtualHost>) {
    let rules = RuleSet::from_toml(POLICY, "policy_attacks.rs").expect("the test policy parses");
    let denials = Arc::new(Mutex::new(Vec::new()));
    let seen = denials.clone();
    let mut builder = WasockCtx::builder();
    if let Some(host) = on {
        builder.virtual_host(host);
    }
    let ctx = builder
        .policy(rules)
        .audit(move |e: &AuditEvent<'_>| {
            if e.verdict == AuditVerdict::Deny {
                seen.lock().unwrap().push(format!(
                    "{} {:?} {:?} {:?}",
                    e.op, e.local, e.remote, e.name
                ));
            }
        })
        .build();
    let counters = ctx.counters();
    run(wasock_guests::RAW_POLICY, &[], ctx)
        .await
        .assert_passed();

    let denials = denials.lock().unwrap();
    let has = |needle: &str| denials.iter().any(|d| d.contains(needle));
    assert!(has("send None Some(127.0.0.2:"), "{denials:#?}");
    assert!(has("connect None Some(127.0.0.3:80)"), "{denials:#?}");
    assert!(
        has("resolve None None Some(\"other.test\")"),
        "{denials:#?}"
    );
    assert!(
        has("accept Some(127.0.0.1:") && has("Some(127.0.0.5:"),
        "{denials:#?}"
    );
    assert!(
        has("receive Some(127.0.0.1:") && has("Some(127.0.0.6:"),
        "{denials:#?}"
    );
    assert_eq!(counters.stats().denials, denials.len() as u64);
}
