//! The CLI as an operator meets it: exit codes, deny by default, and one clear line per error.

use std::path::PathBuf;
use std::process::{Command, Output};

fn wasock(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasock"))
        .args(args)
        .output()
        .expect("the wasock binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A scratch file under the target directory, unique to the test.
fn scratch(name: &str, contents: &[u8]) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// One line on stderr, no backtrace, exit code 2.
fn assert_one_line_error(out: &Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "more than one line: {err}"
    );
    assert!(err.starts_with("wasock: error: "), "{err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
    assert!(!err.contains("stack backtrace"), "{err}");
}

#[test]
fn missing_file_is_one_line() {
    let out = wasock(&["run", "/nonexistent/app.wasm"]);
    assert_one_line_error(&out, "cannot read `/nonexistent/app.wasm`");
}

#[test]
fn core_module_is_named_as_such() {
    let path = scratch("core.wasm", b"\0asm\x01\0\0\0");
    let out = wasock(&["run", path.to_str().unwrap()]);
    assert_one_line_error(&out, "is a core WebAssembly module, not a component");
}

#[test]
fn garbage_is_not_a_component() {
    let path = scratch("garbage.wasm", b"this is not wasm");
    let out = wasock(&["run", path.to_str().unwrap()]);
    assert_one_line_error(&out, "is not a valid component");
}

#[test]
fn unsatisfiable_import_is_named() {
    let wat =
        br#"(component (import "example:missing/thing@1.0.0" (instance (export "f" (func)))))"#;
    let path = scratch("missing-import.wat", wat);
    let out = wasock(&["run", path.to_str().unwrap()]);
    assert_one_line_error(&out, "example:missing/thing@1.0.0");
}

#[test]
fn non_command_is_named_as_such() {
    let path = scratch("empty.wat", b"(component)");
    let out = wasock(&["run", path.to_str().unwrap()]);
    assert_one_line_error(&out, "is not a command");
}

#[test]
fn guest_trap_says_which() {
    let out = wasock(&["run", "--allow-all-network", wasock_guests::RAW_UDP_TRAP]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(134), "stderr: {err}");
    assert!(err.contains("trapped"), "{err}");
    assert!(
        err.contains("exceeds the 64 permitted by check-send"),
        "{err}"
    );
}

#[test]
fn network_is_denied_by_default() {
    // The guest's first bind is refused; it exits non-zero and names the failed check.
    let out = wasock(&["run", wasock_guests::STD_UDP_ECHO]);
    assert_ne!(out.status.code(), Some(0), "stdout: {}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("PermissionDenied") || err.contains("Permission denied"),
        "{err}"
    );
}

#[test]
fn allowed_network_runs_and_passes_exit_code() {
    let out = wasock(&["run", "--allow-all-network", wasock_guests::STD_UDP_ECHO]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(stdout(&out).contains("checks passed"), "{}", stdout(&out));
}

#[test]
fn lookup_is_separate_from_network() {
    // std-localhost resolves `localhost`: with sockets but no lookups it fails.
    let out = wasock(&["run", "--allow-all-network", wasock_guests::STD_LOCALHOST]);
    assert_ne!(out.status.code(), Some(0), "stdout: {}", stdout(&out));
    let out = wasock(&[
        "run",
        "--allow-all-network",
        "--allow-lookup",
        wasock_guests::STD_LOCALHOST,
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
}

#[test]
fn stdio_args_env_dirs_and_exit_code_pass_through() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli-data");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("hello.txt"), "hello from the host\n").unwrap();
    let preopen = format!("{}::/data", dir.display());
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasock"))
        .args(["run", "--env", "GREETING=hi there", "--dir", &preopen])
        .args([wasock_guests::STD_CLI, "--", "stdin", "7"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"typed line\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = stdout(&out);
    // WASI 0.2's `exit` carries only ok/err, so Rust std's `exit(7)` arrives as err: 1.
    assert_eq!(out.status.code(), Some(1), "stderr: {}", stderr(&out));
    assert!(text.contains("args: stdin 7"), "{text}");
    assert!(text.contains("GREETING=hi there"), "{text}");
    assert!(text.contains("file: hello from the host"), "{text}");
    assert!(text.contains("stdin: typed line"), "{text}");
    assert!(stderr(&out).contains("to stderr"));
}

#[test]
fn env_is_not_inherited_by_default() {
    let out = Command::new(env!("CARGO_BIN_EXE_wasock"))
        .env("GREETING", "from the host")
        .args(["run", wasock_guests::STD_CLI])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(
        stdout(&out).contains("GREETING=<unset>"),
        "{}",
        stdout(&out)
    );
    let out = Command::new(env!("CARGO_BIN_EXE_wasock"))
        .env("GREETING", "from the host")
        .args(["run", "--env", "GREETING", wasock_guests::STD_CLI])
        .output()
        .unwrap();
    assert!(
        stdout(&out).contains("GREETING=from the host"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn stats_are_printed_at_exit() {
    let out = wasock(&[
        "run",
        "--allow-all-network",
        "--stats",
        wasock_guests::STD_UDP_ECHO,
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let sockets = err
        .lines()
        .find(|l| l.starts_with("wasock: stats: sockets created"))
        .unwrap_or_default();
    assert!(sockets.ends_with("0 still open)"), "{err}");
    let datagrams = err
        .lines()
        .find(|l| l.contains("udp datagrams in"))
        .unwrap_or_default();
    assert!(!datagrams.contains("in 0 out 0"), "{err}");
    // Per-socket counters: the echo's sockets, with their addresses and datagram counts.
    let busiest: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("wasock: stats: socket #"))
        .collect();
    assert!(!busiest.is_empty(), "{err}");
    assert!(busiest.iter().all(|l| l.contains(" udp ")), "{err}");
    assert!(
        busiest.iter().any(|l| l.contains(" udp 127.0.0.1:")),
        "{err}"
    );
    assert!(busiest.iter().any(|l| l.contains(" udp [::1]:")), "{err}");
    assert!(
        busiest.iter().any(|l| l.contains(" -> 127.0.0.1:")),
        "a socket with a peer: {err}"
    );
}

#[test]
fn stats_count_denials_by_reason() {
    let out = wasock(&[
        "run",
        "--allow-all-network",
        "--max-sockets",
        "20",
        "--stats",
        wasock_guests::STD_MANY,
    ]);
    let err = stderr(&out);
    let denied = err
        .lines()
        .find(|l| l.starts_with("wasock: stats: operations denied"))
        .unwrap_or_default();
    assert!(denied.contains("socket-limit "), "{err}");
}

#[test]
fn socket_limit_from_the_command_line() {
    // std-many opens 50 connections (100 sockets and a listener): 20 is not enough.
    let out = wasock(&[
        "run",
        "--allow-all-network",
        "--max-sockets",
        "20",
        wasock_guests::STD_MANY,
    ]);
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    let out = wasock(&[
        "run",
        "--allow-all-network",
        "--unlimited-sockets",
        wasock_guests::STD_MANY,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = wasock(&["run", "--lookup-timeout=-1", wasock_guests::STD_CLI]);
    assert_one_line_error(&out, "--lookup-timeout: expected a number of seconds");
}

/// A value past what a 64-bit count holds.
const HUGE: &str = "18446744073709551616";

#[test]
fn bad_limit_values_are_one_line_errors() {
    let cases: &[(&str, &str, &str)] = &[
        ("--connect-timeout", "NaN", "expected a number of seconds"),
        (
            "--connect-timeout",
            "-1",
            "expected a number of seconds, 0 or more",
        ),
        (
            "--connect-timeout",
            "-inf",
            "expected a number of seconds, 0 or more",
        ),
        ("--connect-timeout", "0x10", "expected a number of seconds"),
        ("--connect-timeout", "", "expected a number of seconds"),
        ("--connect-timeout", "5s", "expected a number of seconds"),
        ("--lookup-timeout", "nan", "expected a number of seconds"),
        (
            "--lookup-timeout",
            "-0.5",
            "expected a number of seconds, 0 or more",
        ),
        ("--max-sockets", "-1", "must not be negative"),
        ("--max-sockets", "0x10", "expected a whole number"),
        ("--max-sockets", "", "expected a whole number"),
        ("--max-lookups", "-1", "must not be negative"),
        ("--max-lookups", "1e3", "expected a whole number"),
        ("--write-buffer", "0", "must be at least 1 byte"),
        ("--write-buffer", "-1", "must not be negative"),
        ("--max-backlog", "-1", "must not be negative"),
        ("--max-backlog", "1.5", "expected a whole number"),
        ("--bandwidth-in", "0", "must be at least 1 byte per second"),
        ("--bandwidth-in", "-1", "must not be negative"),
        ("--bandwidth-out", "0", "must be at least 1 byte per second"),
        ("--bandwidth-out", "abc", "expected a whole number"),
    ];
    for &(flag, value, problem) in cases {
        // Both spellings: `--flag VALUE` (a leading `-` is taken as the value) and `--flag=VALUE`.
        let joined = format!("{flag}={value}");
        for args in [vec![flag, value], vec![joined.as_str()]] {
            let mut argv = vec!["run"];
            argv.extend(args);
            argv.push(wasock_guests::STD_CLI);
            let out = wasock(&argv);
            assert_one_line_error(&out, &format!("{flag}: {problem}"));
            assert_one_line_error(&out, &format!("got {value:?}"));
        }
    }
}

#[test]
fn huge_limit_values_saturate_and_the_guest_runs() {
    // raw-tcp connects, listens and streams over loopback under every limit at its largest.
    let out = wasock(&[
        "run",
        "--allow-all-network",
        "--connect-timeout",
        "1e19",
        "--lookup-timeout",
        "1e400",
        "--max-sockets",
        HUGE,
        "--max-lookups",
        HUGE,
        "--write-buffer",
        HUGE,
        "--max-backlog",
        HUGE,
        "--bandwidth-in",
        HUGE,
        "--bandwidth-out",
        HUGE,
        wasock_guests::RAW_TCP,
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(stdout(&out).contains("checks passed"), "{}", stdout(&out));
    // std-localhost looks up `localhost` and connects to it: `inf` timeouts are no limit.
    let out = wasock(&[
        "run",
        "--allow-all-network",
        "--allow-lookup",
        "--connect-timeout",
        "inf",
        "--lookup-timeout",
        "inf",
        wasock_guests::STD_LOCALHOST,
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
}

#[test]
fn zero_limits_are_the_guest_s_errors() {
    // No socket at all: the guest's first bind fails and it exits with its own error; the host
    // does not panic.
    let out = wasock(&[
        "run",
        "--allow-all-network",
        "--max-sockets",
        "0",
        "--max-lookups",
        "0",
        "--lookup-timeout",
        "0",
        "--max-backlog",
        "0",
        "--stats",
        wasock_guests::STD_UDP_ECHO,
    ]);
    let err = stderr(&out);
    assert!(
        !matches!(out.status.code(), Some(0 | 2 | 101) | None),
        "{err}"
    );
    assert!(!err.contains("RUST_BACKTRACE"), "{err}");
    assert!(err.contains("socket-limit "), "{err}");
}
