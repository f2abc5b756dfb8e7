//! The policy from the command line: rules in flags and files, enforcement between two
//! components over loopback, the audit trail, audit mode, and `wasock policy check`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn wasock() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wasock"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_file(&path);
    path
}

/// An echo server component allowed to listen on loopback only, serving `n` connections;
/// returns it with the address it printed.
fn echo_server(n: usize) -> (Child, String) {
    let mut child = wasock()
        .args([
            "run",
            "--allow-inbound",
            "tcp://loopback:*",
            wasock_guests::STD_ECHO_SERVER,
        ])
        .args(["--", "127.0.0.1:0", &n.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("listening on ") {
                let _ = tx.send(addr.to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server printed its address");
    (child, addr)
}

fn client(rules: &[&str], addr: &str, extra: &[&str]) -> Output {
    wasock()
        .arg("run")
        .args(rules)
        .args(extra)
        .args([
            wasock_guests::STD_ECHO_CLIENT,
            "--",
            addr,
            "over a granted port",
        ])
        .output()
        .unwrap()
}

#[test]
fn granted_port_works_and_everything_else_is_denied() {
    let (mut server, addr) = echo_server(1);
    let port = addr.rsplit(':').next().unwrap();

    // A grant for another port is no grant for this one.
    let other = client(&["--allow-outbound", "tcp://127.0.0.1:1"], &addr, &[]);
    assert_ne!(other.status.code(), Some(0));
    assert!(
        text(&other.stderr).contains("PermissionDenied"),
        "{}",
        text(&other.stderr)
    );

    // The exact grant connects and echoes.
    let rule = format!("tcp://127.0.0.1:{port}");
    let ok = client(&["--allow-outbound", &rule], &addr, &[]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("received: over a granted port"));
    assert_eq!(server.wait().unwrap().code(), Some(0));
}

#[test]
fn audit_trail_names_the_deciding_rule() {
    let (mut server, addr) = echo_server(1);
    let port = addr.rsplit(':').next().unwrap();
    let audit = scratch("audit.jsonl");
    let rule = format!("tcp://127.0.0.1:{port}");
    let ok = client(
        &["--allow-outbound", &rule],
        &addr,
        &["--audit", audit.to_str().unwrap()],
    );
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert_eq!(server.wait().unwrap().code(), Some(0));

    let lines = std::fs::read_to_string(&audit).unwrap();
    let connect = lines
        .lines()
        .find(|l| l.contains(r#""op":"connect""#))
        .expect(&lines);
    for field in [
        "\"time\":",
        "\"instance\":\"std-echo-client\"",
        "\"proto\":\"tcp\"",
        "\"local\":null",
    ] {
        assert!(connect.contains(field), "{field} in {connect}");
    }
    assert!(
        connect.contains(&format!(r#""remote":"{addr}""#)),
        "{connect}"
    );
    assert!(connect.contains(r#""verdict":"allow""#), "{connect}");
    assert!(
        connect.contains(&format!(
            r#""rule":"allow-outbound tcp://127.0.0.1:{port}""#
        )),
        "{connect}"
    );
}

#[test]
fn audit_mode_runs_and_records_would_deny() {
    let (mut server, addr) = echo_server(1);
    let audit = scratch("audit-mode.jsonl");
    let out = client(
        &[],
        &addr,
        &["--policy-mode", "audit", "--audit", audit.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(server.wait().unwrap().code(), Some(0));
    let lines = std::fs::read_to_string(&audit).unwrap();
    let connect = lines
        .lines()
        .find(|l| l.contains(r#""op":"connect""#))
        .expect(&lines);
    assert!(connect.contains(r#""verdict":"would-deny""#), "{connect}");
    assert!(connect.contains(r#""rule":null"#), "{connect}");
}

#[test]
fn policy_file_and_flags_add_up() {
    let (mut server, addr) = echo_server(1);
    let port = addr.rsplit(':').next().unwrap();
    let file = scratch("client-policy.toml");
    std::fs::write(
        &file,
        format!("allow-outbound = [\"tcp://loopback:{port}\"]\n"),
    )
    .unwrap();
    let ok = client(
        &[
            "--policy",
            file.to_str().unwrap(),
            "--deny-outbound",
            "udp://*:*",
        ],
        &addr,
        &[],
    );
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert_eq!(server.wait().unwrap().code(), Some(0));
}

#[test]
fn deny_beats_allow_all_network() {
    let (mut server, addr) = echo_server(1);
    let denied = client(
        &["--allow-all-network", "--deny-outbound", "tcp://loopback:*"],
        &addr,
        &[],
    );
    assert!(
        text(&denied.stderr).contains("PermissionDenied"),
        "{}",
        text(&denied.stderr)
    );
    // Let the server finish: one allowed connection.
    let ok = client(&["--allow-all-network"], &addr, &[]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert_eq!(server.wait().unwrap().code(), Some(0));
}

#[test]
fn bad_rules_name_the_flag_or_the_file_line() {
    let out = wasock()
        .args([
            "run",
            "--allow-outbound",
            "tcp://x:99999",
            wasock_guests::STD_CLI,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("--allow-outbound tcp://x:99999: column 9: expected a port"),
        "{err}"
    );

    let file = scratch("typo.toml");
    std::fs::write(
        &file,
        "allow-outbound = [\"tcp://loopback:*\"]\nallow-inbnd = [\"x\"]\n",
    )
    .unwrap();
    let out = wasock()
        .args(["policy", "check", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("typo.toml:2:1: expected a rule kind"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[test]
fn policy_check_normalizes_and_explains() {
    let out = wasock()
        .args([
            "policy",
            "check",
            "--allow-outbound",
            "TCP://API.Example.COM.:443",
        ])
        .args(["--deny-outbound", "*://cloud-metadata:*"])
        .args(["--explain", "connect tcp 10.0.0.5:5432"])
        .args(["--explain", "connect tcp 169.254.169.254:80"])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        stdout.contains("allow-outbound tcp://api.example.com:443"),
        "{stdout}"
    );
    assert!(
        stdout.contains("connect tcp 10.0.0.5:5432: deny"),
        "{stdout}"
    );
    assert!(stdout.contains("default deny"), "{stdout}");
    assert!(
        stdout.contains("connect tcp 169.254.169.254:80: deny"),
        "{stdout}"
    );
    assert!(
        stdout.contains("rule: deny-outbound *://cloud-metadata:*"),
        "{stdout}"
    );
}
