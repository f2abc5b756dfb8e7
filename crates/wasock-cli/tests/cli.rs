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
    assert_one_line_error(&out, "cannot read \"/nonexistent/app.wasm\": ");
}

#[test]
fn core_module_is_named_as_such() {
    let path = scratch("core.wasm", b"\0asm\x01\0\0\0");
    let out = wasock(&["run", path.to_str().unwrap()]);
    assert_one_line_error(
        &out,
        "core.wasm\" is a core WebAssembly module, not a component",
    );
}

#[test]
fn a_text_file_is_not_a_component() {
    let path = scratch("notes.txt", b"these are notes, not a component\n");
    let out = wasock(&["run", path.to_str().unwrap()]);
    assert_one_line_error(
        &out,
        "notes.txt\" is not a WebAssembly component (it looks like text)",
    );
    assert!(!stderr(&out).contains("expected `(`"), "{}", stderr(&out));
}

#[test]
fn a_core_module_in_text_is_named_as_such() {
    let path = scratch("core.wat", b";; a module\n(module (func))\n");
    let out = wasock(&["run", path.to_str().unwrap()]);
    assert_one_line_error(
        &out,
        "core.wat\" is a core WebAssembly module in the text format, not a component",
    );
}

#[test]
fn binary_garbage_is_not_a_component() {
    let path = scratch("garbage.bin", b"\x7fELF\x02\x01\x01\0\xff\xfe");
    let out = wasock(&["run", path.to_str().unwrap()]);
    assert_one_line_error(
        &out,
        "garbage.bin\" is not a WebAssembly component: it does not start with the WebAssembly \
         magic bytes",
    );
    let path = scratch("empty.wasm", b"");
    let out = wasock(&["run", path.to_str().unwrap()]);
    assert_one_line_error(
        &out,
        "empty.wasm\" is empty: expected a WebAssembly component",
    );
}

#[test]
fn an_invalid_component_says_what_and_where() {
    // Binary: a component header, then bytes that are no section.
    let path = scratch("broken.wasm", b"\0asm\x0d\0\x01\0\xff\xff\xff");
    let out = wasock(&["run", path.to_str().unwrap()]);
    assert_one_line_error(&out, "broken.wasm\" is not a valid component: ");
    // Text: the text format's own error, with its line and column.
    let path = scratch("broken.wat", b"(component\n  (import oops))\n");
    let out = wasock(&["run", path.to_str().unwrap()]);
    assert_one_line_error(
        &out,
        "broken.wat\" is not a valid component (read as WebAssembly text): ",
    );
    assert_one_line_error(&out, ", at line 2 column ");
}

#[test]
fn unsatisfiable_import_is_named() {
    let wat =
        br#"(component (import "example:missing/thing@1.0.0" (instance (export "f" (func)))))"#;
    let path = scratch("missing-import.wat", wat);
    let out = wasock(&["run", path.to_str().unwrap()]);
    assert_one_line_error(&out, "cannot start \"");
    assert_one_line_error(&out, "example:missing/thing@1.0.0");
}

#[test]
fn non_command_is_named_as_such() {
    let path = scratch("empty.wat", b"(component)");
    let out = wasock(&["run", path.to_str().unwrap()]);
    assert_one_line_error(
        &out,
        "empty.wat\" is not a command (it must export wasi:cli/run)",
    );
}

#[test]
fn guest_flags_name_the_flag_and_quote_the_value() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--env", "=x"],
            "--env \"=x\": expected KEY=VALUE or KEY, with a variable name as KEY",
        ),
        (
            &["--env", "WASOCK_TEST_SURELY_UNSET"],
            "--env \"WASOCK_TEST_SURELY_UNSET\": \"WASOCK_TEST_SURELY_UNSET\" is not set in the \
             host environment",
        ),
        (
            &["--dir", "/nonexistent/dir::/data"],
            "--dir \"/nonexistent/dir::/data\": cannot open the host directory \
             \"/nonexistent/dir\": ",
        ),
        (
            &["--dir", "::/data"],
            "--dir \"::/data\": expected HOST or HOST::GUEST, with both directories named",
        ),
        (
            &["--audit", "/nonexistent/dir/audit.jsonl"],
            "--audit \"/nonexistent/dir/audit.jsonl\": cannot open: ",
        ),
        (
            &["--policy", "/nonexistent/policy.toml"],
            "--policy \"/nonexistent/policy.toml\": cannot read: ",
        ),
    ];
    for (flags, message) in cases {
        let mut argv = vec!["run"];
        argv.extend_from_slice(flags);
        argv.push(wasock_guests::STD_CLI);
        assert_one_line_error(&wasock(&argv), message);
    }
}

#[test]
fn rule_flags_quote_the_rule() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "--allow-outbound",
            "tcp://x:99999",
            "--allow-outbound \"tcp://x:99999\": column 9: expected a port 1-65535",
        ),
        // A rule with a space: the quotes show where it ends.
        (
            "--allow-outbound",
            "tcp://a:1 tcp://b:2",
            "--allow-outbound \"tcp://a:1 tcp://b:2\": column 11: expected the end of the rule",
        ),
        // An empty rule asks for a rule, not for a "rule kind" the flag already is.
        (
            "--allow-outbound",
            "",
            "--allow-outbound \"\": expected a rule, as in SCHEME://HOST:PORTS such as \
             tcp://api.example.com:443",
        ),
        (
            "--deny-inbound",
            " ",
            "--deny-inbound \" \": expected a rule, as in SCHEME://ADDR:PORTS",
        ),
        (
            "--allow-resolve",
            "",
            "--allow-resolve \"\": expected a rule, as in a name pattern",
        ),
    ];
    for &(flag, rule, message) in cases {
        let out = wasock(&["run", flag, rule, wasock_guests::STD_CLI]);
        assert_one_line_error(&out, message);
        assert!(!stderr(&out).contains("kind"), "{}", stderr(&out));
    }
}

#[test]
fn usage_mistakes_are_one_line_with_the_help_to_read() {
    let cli = wasock_guests::STD_CLI;
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "--alow-lookup", cli],
            "unknown flag \"--alow-lookup\": did you mean \"--allow-lookup\"? (see `wasock run \
             --help`)",
        ),
        (
            &["run", "--frobnicate", cli],
            "unknown flag \"--frobnicate\" (a flag meant for the guest goes after the component \
             and `--`) (see `wasock run --help`)",
        ),
        (
            &["run", cli, "hello world"],
            "unexpected argument \"hello world\" after the component: arguments for the guest go \
             after `--`, as in `wasock run COMPONENT -- 'hello world'`",
        ),
        (
            &["run", "--policy-mode", "audti", cli],
            "--policy-mode: expected enforce or audit, got \"audti\": did you mean \"audit\"?",
        ),
        (
            &["run"],
            "missing the component to run (see `wasock run --help`)",
        ),
        (
            &["run", "--unlimited-sockets", "--max-sockets", "5", cli],
            "cannot be given with",
        ),
        (
            &["run", cli, "--allow-outbound"],
            "--allow-outbound: expected a value (RULE) after the flag, got none",
        ),
        (
            &["rnu", cli],
            "unknown command \"rnu\": expected run, policy or sim (see `wasock --help`)",
        ),
        (
            &["polcy", "check"],
            "unknown command \"polcy\": did you mean \"policy\"? (see `wasock --help`)",
        ),
        (
            &["policy", "check", "a.toml", "b.toml"],
            "unexpected argument \"b.toml\" (see `wasock policy check --help`)",
        ),
    ];
    for (args, message) in cases {
        let out = wasock(args);
        assert_one_line_error(&out, message);
        let err = stderr(&out);
        assert!(!err.contains("Usage:"), "{err}");
    }
    // A negative limit is the limit's mistake, never a tip to pass it to the guest.
    let out = wasock(&["run", "--max-sockets", "-1", cli]);
    assert_one_line_error(&out, "--max-sockets: must not be negative, got \"-1\"");
    assert!(!stderr(&out).contains("-- -1"), "{}", stderr(&out));
}

#[test]
fn help_wraps_and_says_which_flags_repeat() {
    for (columns, widest) in [(None, 100), (Some("60"), 60)] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wasock"));
        cmd.args(["run", "--help"]);
        match columns {
            Some(c) => cmd.env("COLUMNS", c),
            None => cmd.env_remove("COLUMNS"),
        };
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let help = stdout(&out);
        for line in help.lines() {
            assert!(
                line.chars().count() <= widest,
                "wider than {widest}: {line:?}\n{help}"
            );
        }
    }
    let help = stdout(&wasock(&["run", "--help"]));
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("rule flags repeat"), "{help}");
    for flag in [
        "--allow-outbound",
        "--deny-outbound",
        "--allow-inbound",
        "--deny-inbound",
        "--allow-resolve",
        "--deny-resolve",
        "--dir",
        "--env",
    ] {
        // The flag's entry, up to the next flag's: it says it repeats.
        let start = flat.find(&format!("{flag} <")).expect(flag);
        let entry = &flat[start..];
        let end = entry[2..].find(" --").map_or(entry.len(), |i| i + 2);
        assert!(
            entry[..end].contains("[repeatable]"),
            "{flag}: {}",
            &entry[..end]
        );
    }
    assert!(flat.contains("Exit status:"), "{help}");
    let help = stdout(&wasock(&["policy", "check", "--help"]));
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("1 when the policy is valid and an explained operation is denied"));
}

#[test]
fn guest_trap_says_which() {
    let out = wasock(&["run", "--allow-all-network", wasock_guests::RAW_UDP_TRAP]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(134), "stderr: {err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.starts_with("wasock: error: \""), "{err}");
    assert!(err.contains("raw-udp-trap.wasm\" trapped: "), "{err}");
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

/// `--network virtual`: the same guests pass on a fresh virtual network (no host socket), under
/// the same policy: denied by default, lookups separate.
#[test]
fn virtual_network_runs_guests_under_the_same_policy() {
    let out = wasock(&[
        "run",
        "--network",
        "virtual",
        "--allow-all-network",
        wasock_guests::STD_UDP_ECHO,
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert!(stdout(&out).contains("checks passed"), "{}", stdout(&out));
    let out = wasock(&["run", "--network", "virtual", wasock_guests::STD_UDP_ECHO]);
    assert_ne!(out.status.code(), Some(0), "denied by default");
    let out = wasock(&[
        "run",
        "--network",
        "virtual",
        "--allow-all-network",
        "--allow-lookup",
        wasock_guests::STD_LOCALHOST,
    ]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
}

#[test]
fn an_unknown_network_kind_is_one_line() {
    let out = wasock(&["run", "--network", "wifi", wasock_guests::STD_UDP_ECHO]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("wifi") && err.contains("virtual"), "{err}");
}

/// An example scenario of `examples/`, its guests taken from this build's guest folder; the
/// copy lives in a fresh folder under the test's temporary directory.
fn example(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join("examples").join(name).join("scenario.toml"))
        .expect("the example exists");
    let guests = std::path::Path::new(wasock_guests::STD_ECHO_SERVER)
        .parent()
        .unwrap()
        .display()
        .to_string();
    let text = text.replace("../../target/wasm-guests/wasm32-wasip2/release", &guests);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("example-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The README's partition scenario: the client retries, gets through after the heal, and the
/// same seed gives the same trace.
#[test]
fn sim_runs_the_partition_example_and_replays_it() {
    let scenario = example("partition");
    let s = scenario.to_str().unwrap();
    let out = wasock(&["sim", s]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let printed = stdout(&out);
    assert!(printed.contains("client | attempt 1: "), "{printed}");
    assert!(
        printed.contains("client | echoed: hello across the partition"),
        "{printed}"
    );
    assert!(stderr(&out).contains("seed 1: passed"), "{}", stderr(&out));
    let dir = scenario.parent().unwrap();
    let traces: Vec<String> = (0..2)
        .map(|i| {
            let trace = dir.join(format!("trace-{i}.jsonl"));
            let t = trace.to_str().unwrap();
            let out = wasock(&["sim", s, "--seed", "7", "--trace", t, "-q"]);
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            std::fs::read_to_string(&trace).unwrap()
        })
        .collect();
    assert_eq!(traces[0], traces[1], "one seed, one trace");
    assert!(traces[0].lines().count() > 10);
}

/// A sweep names the failing seeds and how to replay one; the replay fails the same way.
#[test]
fn sim_sweeps_seeds_and_names_the_failing_ones() {
    let scenario = example("lossy-ping");
    let s = scenario.to_str().unwrap();
    let out = wasock(&["sim", s, "--seeds", "0..40"]);
    let err = stderr(&out);
    let Some(failed) = err.lines().find(|l| l.contains("seeds failed: ")) else {
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert!(err.contains("all 40 seeds passed"), "{err}");
        return;
    };
    assert_eq!(out.status.code(), Some(1), "{err}");
    let seed = failed
        .rsplit("--seed ")
        .next()
        .and_then(|s| s.trim_end_matches('`').parse::<u64>().ok())
        .expect("the summary names a seed to replay");
    let replay = wasock(&["sim", s, "--seed", &seed.to_string()]);
    assert_eq!(replay.status.code(), Some(1), "{}", stderr(&replay));
    assert!(stdout(&replay).contains("no reply"), "{}", stdout(&replay));
}

#[test]
fn sim_mistakes_are_one_line_with_their_place() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sim-mistakes");
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[[component]]\nname = \"a\"\nwasm = \"a.wasm\"\n\n[[link]]\nloss = \"lots\"\n",
    )
    .unwrap();
    let out = wasock(&["sim", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bad.toml:6:1: `loss`"), "{err}");
    for range in ["5..5", "9..1", "a..b", "0..2000000"] {
        let out = wasock(&["sim", bad.to_str().unwrap(), "--seeds", range]);
        assert_eq!(out.status.code(), Some(2), "{range}");
        assert!(stderr(&out).contains(range), "{}", stderr(&out));
    }
}

/// A `wasi:cli/run@0.3` command runs as a 0.2 one does: denied by default, and with the network
/// allowed every check passes and `--stats` finds every socket closed at exit.
#[test]
fn a_0_3_command_runs_under_the_same_flags() {
    let denied = wasock(&["run", wasock_guests::RAW_P3_TCP]);
    assert_ne!(denied.status.code(), Some(0), "stdout: {}", stdout(&denied));
    assert!(
        stderr(&denied).contains("AccessDenied"),
        "{}",
        stderr(&denied)
    );

    let out = wasock(&[
        "run",
        "--allow-all-network",
        "--stats",
        wasock_guests::RAW_P3_TCP,
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(0), "{err}\n{}", stdout(&out));
    assert!(stdout(&out).contains("checks passed"), "{}", stdout(&out));
    let sockets = err
        .lines()
        .find(|l| l.starts_with("wasock: stats: sockets created"))
        .unwrap_or_default();
    assert!(sockets.ends_with("0 still open)"), "{err}");
}

/// `--profile perfmap` leaves `/tmp/perf-PID.map` naming the guest's compiled functions, for
/// `perf report`; an unknown strategy is a one-line usage error naming the one there is.
#[test]
fn profile_perfmap_names_the_guests_functions() {
    let child = Command::new(env!("CARGO_BIN_EXE_wasock"))
        .args([
            "run",
            "--no-cache",
            "--profile",
            "perfmap",
            wasock_guests::STD_CLI,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let map = PathBuf::from(format!("/tmp/perf-{}.map", child.id()));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let text = std::fs::read_to_string(&map).unwrap_or_else(|e| panic!("{}: {e}", map.display()));
    let _ = std::fs::remove_file(&map);
    // One line per function: `START SIZE NAME`; the guest's own `main` is among them.
    assert!(text.lines().count() > 10, "{text}");
    assert!(
        text.contains("std_cli"),
        "no function of the guest named: {text:.2000}"
    );

    let out = wasock(&["run", "--profile", "vtune", wasock_guests::STD_CLI]);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr(&out));
    assert_one_line_error(&out, "--profile: expected perfmap, got \"vtune\"");
}
