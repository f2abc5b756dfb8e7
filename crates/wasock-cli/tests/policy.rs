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
    let err = text(&other.stderr);
    assert!(err.contains("PermissionDenied"), "{err}");
    // The refusal reads as one, not as a debug dump.
    assert!(
        err.contains(&format!(
            "refused: access-denied, the host's network policy does not grant a connection to \
             {addr}"
        )),
        "{err}"
    );
    assert!(!err.contains("Os {"), "{err}");

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
        err.contains("--allow-outbound \"tcp://x:99999\": column 9: expected a port"),
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
    assert!(err.contains("(in \"allow-inbnd\")"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));

    // An empty rule in a file: a rule is missing, not a kind.
    std::fs::write(&file, "allow-outbound = [\"\"]\n").unwrap();
    let out = wasock()
        .args(["policy", "check", file.to_str().unwrap()])
        .output()
        .unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.ends_with("typo.toml:1:20: expected a rule, got \"\"\n"),
        "{err}"
    );
}

/// `wasock policy check ARGS`: exit code, stdout, stderr.
fn check(args: &[&str]) -> (Option<i32>, String, String) {
    let out = wasock()
        .args(["policy", "check"])
        .args(args)
        .output()
        .unwrap();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn policy_check_without_rules_says_what_is_denied() {
    let (code, stdout, stderr) = check(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        stdout,
        "# no rules and no switches: every socket operation and name lookup is denied (IP \
         literals still resolve)\n"
    );
    let (code, stdout, _) = check(&["--allow-lookup"]);
    assert_eq!(code, Some(0));
    assert_eq!(
        stdout,
        "# no rules: only what the switches below allow\n# --allow-lookup: name lookups no deny \
         rule refuses are allowed\n"
    );
}

#[test]
fn policy_check_names_the_file_as_given() {
    let (code, stdout, stderr) = check(&["/nonexistent/policy.toml"]);
    assert_eq!(code, Some(2));
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.starts_with(
            "wasock: error: cannot read the policy file \"/nonexistent/policy.toml\": "
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("--policy"), "{stderr}");
    let (code, _, stderr) = check(&["--policy", "/nonexistent/policy.toml"]);
    assert_eq!(code, Some(2));
    assert!(
        stderr.starts_with("wasock: error: --policy \"/nonexistent/policy.toml\": cannot read: "),
        "{stderr}"
    );
    let (code, _, stderr) = check(&["a.toml", "--policy", "b.toml"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        stderr,
        "wasock: error: the policy file is given twice, \"a.toml\" as the argument and \
         \"b.toml\" with --policy: give one\n"
    );
}

#[test]
fn explain_exits_with_the_verdict() {
    let rules = ["--allow-outbound", "tcp://10.0.0.0/8:5432"];
    let allowed = "connect tcp 10.0.0.5:5432";
    let denied = "connect tcp 192.0.2.1:5432";
    let (code, stdout, _) = check(&[rules[0], rules[1], "--explain", allowed]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("connect tcp 10.0.0.5:5432: allow"),
        "{stdout}"
    );
    let (code, stdout, _) = check(&[rules[0], rules[1], "--explain", denied]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("connect tcp 192.0.2.1:5432: deny"),
        "{stdout}"
    );
    // Any denied operation makes the answer deny; each is still explained.
    let (code, stdout, _) = check(&[
        rules[0],
        rules[1],
        "--explain",
        denied,
        "--explain",
        allowed,
    ]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains(": allow") && stdout.contains(": deny"),
        "{stdout}"
    );
    // The switches decide what no rule does, as in `wasock run`.
    let (code, stdout, _) = check(&["--allow-all-network", "--explain", denied]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(
        stdout.contains("connect tcp 192.0.2.1:5432: allow\n  switch: --allow-all-network"),
        "{stdout}"
    );
    let (code, stdout, _) = check(&[
        "--allow-all-network",
        "--deny-outbound",
        "tcp://192.0.2.0/24:*",
        "--explain",
        denied,
    ]);
    assert_eq!(code, Some(1), "{stdout}");
}

#[test]
fn a_bad_operation_prints_nothing_but_its_error() {
    let (code, stdout, stderr) = check(&[
        "--allow-outbound",
        "tcp://loopback:*",
        "--explain",
        "connect tcp 127.0.0.1:80",
        "--explain",
        "conect tcp 127.0.0.1:80",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(
        stderr,
        "wasock: error: --explain \"conect tcp 127.0.0.1:80\": column 1: expected an operation: \
         create, connect, send, bind, listen, accept, receive or resolve\n"
    );
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
    // Both explained operations are denied: exit code 1.
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
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
