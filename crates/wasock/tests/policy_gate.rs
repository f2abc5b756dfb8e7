//! The gate with a policy of the test's own: name-bound grants through the instance's name
//! book, `name->addr` and port mapping, audit records and audit mode.

mod common;

use common::{run, spawn};
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wasock::WasockCtx;
use wasock::audit::{AuditEvent, PolicyMode};
use wasock::policy::{Action, Decision, NameBook, Policy, Protocol};

const NAME: &str = "echo.test";
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Sockets may be created and bound; `echo.test` resolves to loopback by mapping; connects are
/// allowed only to addresses that lookups of `echo.test` returned to this instance; a bind to
/// port 80 really binds `host_port`.
struct NameBound {
    host_port: u16,
}

impl Policy for NameBound {
    fn decide(&self, action: &Action<'_>, names: &dyn NameBook) -> Decision {
        let allowed = match action {
            Action::Resolve { name } => *name == NAME,
            Action::Connect { remote, .. } => names.names_of(remote.ip()).iter().any(|n| n == NAME),
            _ => true,
        };
        let rule = Some(Arc::from(format!("test rule for {}", action.op())));
        if allowed {
            Decision::allow(rule)
        } else {
            Decision::deny(None)
        }
    }

    fn mapped_name(&self, name: &str) -> Option<Vec<IpAddr>> {
        (name == NAME).then(|| vec![LOOPBACK])
    }

    fn mapped_port(&self, _: Protocol, local: SocketAddr) -> Option<u16> {
        (local.port() == 80).then_some(self.host_port)
    }
}

/// A native echo server for one connection, on an ephemeral loopback port.
fn native_echo() -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind((LOOPBACK, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut line = String::new();
        let mut reader = BufReader::new(s.try_clone().unwrap());
        while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            s.write_all(line.as_bytes()).unwrap();
            line.clear();
        }
    });
    (port, handle)
}

fn collector() -> (
    Arc<Mutex<Vec<String>>>,
    impl Fn(&AuditEvent<'_>) + Send + Sync + 'static,
) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    (events, move |e: &AuditEvent<'_>| {
        sink.lock().unwrap().push(format!(
            "{} {:?} {:?} {:?} {:?}",
            e.op, e.remote, e.name, e.verdict, e.rule
        ))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn name_bound_grant_allows_only_what_the_lookup_returned() {
    let (port, server) = native_echo();
    let (events, sink) = collector();
    let ctx = WasockCtx::builder()
        .policy(NameBound { host_port: 0 })
        .audit(sink)
        .build();
    let by_name = format!("{NAME}:{port}");
    run(
        wasock_guests::STD_ECHO_CLIENT,
        &[&by_name, "via a name"],
        ctx,
    )
    .await
    .assert_passed();
    server.join().unwrap();

    // The same address, given as a literal by an instance that never looked the name up.
    let ctx = WasockCtx::builder()
        .policy(NameBound { host_port: 0 })
        .build();
    let by_addr = format!("127.0.0.1:{port}");
    let r = run(wasock_guests::STD_ECHO_CLIENT, &[&by_addr, "direct"], ctx).await;
    assert!(r.stderr.contains("PermissionDenied"), "{r}");

    let events = events.lock().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("resolve") && e.contains("Some(\"echo.test\") Allow")),
        "{events:#?}"
    );
    assert!(
        events.iter().any(
            |e| e.starts_with("connect") && e.contains("Allow Some(\"test rule for connect\")")
        ),
        "{events:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_mode_lets_denied_operations_through_and_records_them() {
    let (port, server) = native_echo();
    let (events, sink) = collector();
    let ctx = WasockCtx::builder()
        .policy(NameBound { host_port: 0 })
        .policy_mode(PolicyMode::Audit)
        .audit(sink)
        .build();
    let by_addr = format!("127.0.0.1:{port}");
    run(wasock_guests::STD_ECHO_CLIENT, &[&by_addr, "audited"], ctx)
        .await
        .assert_passed();
    server.join().unwrap();
    let events = events.lock().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("connect") && e.contains("WouldDeny None")),
        "{events:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapped_port_is_what_the_guest_sees() {
    let host_port = {
        let probe = TcpListener::bind((LOOPBACK, 0)).unwrap();
        probe.local_addr().unwrap().port()
    };
    let ctx = WasockCtx::builder().policy(NameBound { host_port }).build();
    let server = spawn(wasock_guests::STD_ECHO_SERVER, &["127.0.0.1:80", "1"], ctx);
    let line = server
        .wait_for_line("listening on", Duration::from_secs(20))
        .await;
    // The guest's local-address shows the port it asked for, not the host's.
    assert_eq!(
        line.as_deref().map(str::trim),
        Some("127.0.0.1:80"),
        "{}",
        server.stdout_now()
    );

    let exchange = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect((LOOPBACK, host_port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"through the mapping\n").unwrap();
        let mut echoed = String::new();
        BufReader::new(&s).read_line(&mut echoed).unwrap();
        echoed
    });
    assert_eq!(exchange.await.unwrap(), "through the mapping\n");
    server.finish().await.assert_exit_zero();
}
