//! Builds the separate `guests/` cargo workspace for `wasm32-wasip2` and generates
//! constants with the absolute path of every guest component (`$OUT_DIR/guests.rs`).
//!
//! The guests are built with the same `cargo` that runs this build (the `CARGO`
//! variable), in release mode, into `<target>/wasm-guests/` so that the build is
//! incremental and does not contend for the outer build's target directory lock.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (constant name, bin name) of every guest; the bin name is also the file stem (for a
/// [`CDYLIB_GUESTS`] guest, of the copy this script makes).
const GUESTS: &[(&str, &str)] = &[
    ("RAW_TCP", "raw-tcp"),
    ("RAW_UDP", "raw-udp"),
    ("RAW_UDP_TRAP", "raw-udp-trap"),
    ("RAW_LOOKUP", "raw-lookup"),
    ("RAW_LIMITS", "raw-limits"),
    ("RAW_FAULTS", "raw-faults"),
    ("RAW_SOAK", "raw-soak"),
    ("RAW_DROP_ORDER", "raw-drop-order"),
    ("RAW_POLICY", "raw-policy"),
    ("RAW_HTTP_SERVER", "raw-http-server"),
    ("RAW_POLL", "raw-poll"),
    ("RAW_P3_TCP", "raw-p3-tcp"),
    ("RAW_P3_UDP", "raw-p3-udp"),
    ("RAW_P3_LOOKUP", "raw-p3-lookup"),
    ("RAW_P3_ABUSE", "raw-p3-abuse"),
    ("P3_ECHO_SERVER", "p3-echo-server"),
    ("P3_ECHO_CLIENT", "p3-echo-client"),
    ("UDP_V021", "udp-v021"),
    ("TCP_V020", "tcp-v020"),
    ("STD_CLI", "std-cli"),
    ("STD_ECHO_SERVER", "std-echo-server"),
    ("STD_ECHO_CLIENT", "std-echo-client"),
    ("STD_UDP_ECHO", "std-udp-echo"),
    ("STD_MANY", "std-many"),
    ("STD_LOCALHOST", "std-localhost"),
    ("STD_IPV6", "std-ipv6"),
    ("STD_RETRY_CLIENT", "std-retry-client"),
    ("STD_SLEEPER", "std-sleeper"),
    ("STD_SPIN", "std-spin"),
    ("STD_UDP_PING", "std-udp-ping"),
    ("TOKIO_ECHO", "tokio-echo"),
    ("STD_LOOPBACK_BENCH", "std-loopback-bench"),
];

const TARGET: &str = "wasm32-wasip2";

/// The guests that are `cdylib` packages, not bins: the WASI 0.3 commands, which export
/// `wasi:cli/run@0.3.0` only (a bin would export Rust's `main` as `wasi:cli/run@0.2.0` too).
/// cargo names such a file after the library (`raw_p3_tcp.wasm`); it is copied to the guest's
/// name (`raw-p3-tcp.wasm`), since the tests take a guest's name from its file stem.
const CDYLIB_GUESTS: &[&str] = &[
    "raw-p3-tcp",
    "raw-p3-udp",
    "raw-p3-lookup",
    "raw-p3-abuse",
    "p3-echo-server",
    "p3-echo-client",
];

/// The packages holding the test guests; the benchmark guests (`bench*`) are built by the
/// harness, not by every test build.
const PACKAGES: &[&str] = &[
    "raw-guests",
    "raw-p3-tcp",
    "raw-p3-udp",
    "raw-p3-lookup",
    "raw-p3-abuse",
    "p3-echo-server",
    "p3-echo-client",
    "versioned-guests",
    "std-guests",
    "tokio-guests",
];

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let repo = manifest_dir
        .ancestors()
        .nth(2)
        .expect("crates/wasock-guests lives two levels below the repository root")
        .to_path_buf();
    let guests = repo.join("guests");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let target_dir = guest_target_dir(&out_dir);

    for entry in [
        "Cargo.toml",
        "Cargo.lock",
        "wit",
        "guest-support",
        "raw",
        "raw-p3",
        "raw-p3-tcp",
        "raw-p3-udp",
        "raw-p3-lookup",
        "raw-p3-abuse",
        "p3-echo-server",
        "p3-echo-client",
        "versioned",
        "std-guests",
        "tokio-guests",
        "wasi-libc-fix",
        ".cargo",
    ] {
        println!("cargo:rerun-if-changed={}", guests.join(entry).display());
    }
    println!("cargo:rerun-if-env-changed=WASOCK_GUESTS_TARGET_DIR");

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--target")
        .arg(TARGET)
        .arg("--manifest-path")
        .arg(guests.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(&guests);
    for package in PACKAGES {
        cmd.arg("-p").arg(package);
    }
    // The outer build's flags, target and wrappers are not the guests'.
    wasock_support::scrub_build_env(&mut cmd);

    let output = match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("could not run cargo to build the guests: {e}"),
    };
    if !output.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&output.stdout));
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        panic!(
            "building the test guests failed ({}): cargo build --release --target {TARGET} \
             --manifest-path {}",
            output.status,
            guests.join("Cargo.toml").display()
        );
    }

    let wasm_dir = target_dir.join(TARGET).join("release");
    for guest in CDYLIB_GUESTS {
        let built = wasm_dir.join(format!("{}.wasm", guest.replace('-', "_")));
        let named = wasm_dir.join(format!("{guest}.wasm"));
        if let Err(e) = std::fs::copy(&built, &named) {
            panic!(
                "cannot copy {} to {}: {e}\n{}",
                built.display(),
                named.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    let mut code = String::from("// Generated by wasock-guests/build.rs. Do not edit.\n\n");
    for (constant, bin) in GUESTS {
        let path = wasm_dir.join(format!("{bin}.wasm"));
        assert!(
            path.is_file(),
            "guest `{bin}` was not built: {} is missing",
            path.display()
        );
        let path = path.to_str().expect("guest paths must be UTF-8");
        writeln!(code, "/// Path of the `{bin}` guest component.").unwrap();
        writeln!(code, "pub const {constant}: &str = {path:?};").unwrap();
    }
    code.push_str(
        "\n/// `(name, path)` of every guest component.\n\
         pub fn all() -> &'static [(&'static str, &'static str)] {\n    &[\n",
    );
    for (constant, bin) in GUESTS {
        writeln!(code, "        ({bin:?}, {constant}),").unwrap();
    }
    code.push_str("    ]\n}\n");
    std::fs::write(out_dir.join("guests.rs"), code).unwrap();
}

/// `<target>/wasm-guests`, where `<target>` is the outer build's target directory
/// (found from `OUT_DIR` = `<target>/<profile>/build/<pkg>-<hash>/out`, or
/// `<target>/<triple>/<profile>/build/...` when cross-compiling). Overridable with
/// `WASOCK_GUESTS_TARGET_DIR`.
fn guest_target_dir(out_dir: &Path) -> PathBuf {
    if let Some(dir) = env::var_os("WASOCK_GUESTS_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    // out -> <pkg>-<hash> -> build -> <profile>
    let profile_dir = out_dir.ancestors().nth(3).unwrap_or(out_dir);
    let mut target = profile_dir.parent().unwrap_or(profile_dir);
    if target.join("CACHEDIR.TAG").is_file() || target.file_name().is_none() {
        return target.join("wasm-guests");
    }
    // Cross builds add a `<triple>` level.
    if let Some(parent) = target.parent()
        && parent.join("CACHEDIR.TAG").is_file()
    {
        target = parent;
    }
    target.join("wasm-guests")
}
