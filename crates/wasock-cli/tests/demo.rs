//! The demo's story (scripts/demo-run.sh, which scripts/demo.sh runs after building) on this
//! build: it must go as it tells, and read as it tells, on loopback only.

use std::path::Path;
use std::process::Command;

#[test]
fn the_demo_tells_its_story() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let guests = Path::new(wasock_guests::STD_ECHO_CLIENT)
        .parent()
        .expect("the guests' directory");
    let out = Command::new("bash")
        .arg(repo.join("scripts/demo-run.sh"))
        .arg(env!("CARGO_BIN_EXE_wasock"))
        .arg(guests)
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    let has = |prefix: &str, needle: &str| {
        lines
            .iter()
            .any(|l| l.starts_with(prefix) && l.contains(needle))
    };
    // Four steps, in order, each saying what it shows.
    let steps: Vec<&&str> = lines.iter().filter(|l| l.starts_with("-- Step ")).collect();
    assert_eq!(steps.len(), 4, "{stdout}");
    assert!(steps[1].contains("refused"), "{stdout}");
    // The server's address, the refusal in words and in the audit trail, then the echo.
    assert!(has("   server | ", "listening on 127.0.0.1:"), "{stdout}");
    assert!(
        has(
            "   client | ",
            "refused: access-denied, the host's network policy"
        ),
        "{stdout}"
    );
    assert!(
        has("   audit  | {\"time\":", "\"op\":\"connect\"")
            && has("   audit  | ", "\"verdict\":\"deny\""),
        "{stdout}"
    );
    assert!(
        has("   => ", "refused as the policy says (access-denied)"),
        "{stdout}"
    );
    assert!(
        has(
            "   audit  | ",
            "\"verdict\":\"allow\",\"rule\":\"allow-outbound tcp://127.0.0.1:"
        ),
        "{stdout}"
    );
    assert!(
        has("   client | ", "received: hello from a component"),
        "{stdout}"
    );
    assert!(
        has("   server | ", "std-echo-server: served 1 connection(s)"),
        "{stdout}"
    );
    // Audit records appear only under their own label.
    assert!(
        lines
            .iter()
            .filter(|l| l.contains("{\"time\":"))
            .all(|l| l.starts_with("   audit  | ")),
        "{stdout}"
    );
    assert!(!stdout.contains("Os {"), "{stdout}");
}
