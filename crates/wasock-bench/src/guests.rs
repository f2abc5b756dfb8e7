//! Builds the bench guest (`guests/bench`) twice from one source: for `wasm32-wasip2` and for
//! the host, in release, into `target/bench-guests`; and the raw-binding guest
//! (`guests/bench-raw`) and the 0.3 bench guest (`guests/bench-p3`) for `wasm32-wasip2` only,
//! when a workload needs them.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";
const BIN: &str = "bench-guest";
const RAW_BIN: &str = "bench-raw";
/// The raw-binding guest's loops and its bindings are optimized for speed, as `bench` is by
/// the guests workspace's profile.
const RAW_OPT: &[&str] = &[
    "profile.release.package.bench-raw.opt-level=3",
    "profile.release.package.raw-guests.opt-level=3",
];

/// The two builds of the bench guest.
pub(crate) struct Guests {
    pub(crate) wasm: PathBuf,
    pub(crate) native: PathBuf,
}

/// Builds (incrementally) both flavours of the guest; `repo` is the repository root.
pub(crate) fn build(repo: &Path) -> Result<Guests> {
    let target_dir = repo.join("target").join("bench-guests");
    let manifest = repo.join("guests").join("Cargo.toml");
    cargo_build(
        &manifest,
        &target_dir,
        Some(WASM_TARGET),
        ("bench", BIN),
        &[],
    )?;
    cargo_build(&manifest, &target_dir, None, ("bench", BIN), &[])?;
    let guests = Guests {
        wasm: target_dir
            .join(WASM_TARGET)
            .join("release")
            .join(format!("{BIN}.wasm")),
        native: target_dir.join("release").join(BIN),
    };
    for path in [&guests.wasm, &guests.native] {
        if !path.is_file() {
            bail!("the guest build did not produce {}", path.display());
        }
    }
    Ok(guests)
}

/// Builds (incrementally) `guests/bench-raw` for `wasm32-wasip2` and returns the component.
pub(crate) fn build_raw(repo: &Path) -> Result<PathBuf> {
    let target_dir = repo.join("target").join("bench-guests");
    let manifest = repo.join("guests").join("Cargo.toml");
    let config: Vec<&str> = RAW_OPT.iter().flat_map(|c| ["--config", c]).collect();
    cargo_build(
        &manifest,
        &target_dir,
        Some(WASM_TARGET),
        ("bench-raw", RAW_BIN),
        &config,
    )?;
    built(&target_dir, RAW_BIN)
}

/// The 0.3 bench guest's package; a cdylib, so cargo names its file after the library
/// (`bench_p3.wasm`).
const P3_PACKAGE: &str = "bench-p3";
/// The 0.3 bench guest's bindings and wit-bindgen's async runtime optimized for speed, as the
/// guest itself is by the guests workspace's profile.
const P3_OPT: &[&str] = &[
    "profile.release.package.raw-p3-guests.opt-level=3",
    "profile.release.package.wit-bindgen.opt-level=3",
];

/// Builds (incrementally) `guests/bench-p3` for `wasm32-wasip2` and returns the component
/// (copied to `bench-p3.wasm`, the guest's name).
pub(crate) fn build_p3(repo: &Path) -> Result<PathBuf> {
    let target_dir = repo.join("target").join("bench-guests");
    let manifest = repo.join("guests").join("Cargo.toml");
    let config: Vec<&str> = P3_OPT.iter().flat_map(|c| ["--config", c]).collect();
    let extra = [&["--lib"][..], &config].concat();
    cargo_build_with(
        &manifest,
        &target_dir,
        Some(WASM_TARGET),
        P3_PACKAGE,
        &extra,
    )?;
    let dir = target_dir.join(WASM_TARGET).join("release");
    let built = dir.join(format!("{}.wasm", P3_PACKAGE.replace('-', "_")));
    let wasm = dir.join(format!("{P3_PACKAGE}.wasm"));
    std::fs::copy(&built, &wasm)
        .with_context(|| format!("copying {} to {}", built.display(), wasm.display()))?;
    Ok(wasm)
}

/// The HTTP server guest (`guests/bench-http`, bin `bench-http`): one source for both targets.
const HTTP_BIN: &str = "bench-http";
/// Every crate of the HTTP guest (hyper, axum, wstd, tokio) at opt-level 3 on both targets, as a
/// native server would be built; the guests workspace's own profile optimizes for size.
const HTTP_OPT: &[&str] = &["--config", "profile.release.opt-level=3"];

/// Builds (incrementally) `guests/bench-http` for `wasm32-wasip2` and for the host.
pub(crate) fn build_http(repo: &Path) -> Result<Guests> {
    let target_dir = repo.join("target").join("bench-guests");
    let manifest = repo.join("guests").join("Cargo.toml");
    let bin = ("bench-http", HTTP_BIN);
    cargo_build(&manifest, &target_dir, Some(WASM_TARGET), bin, HTTP_OPT)?;
    cargo_build(&manifest, &target_dir, None, bin, HTTP_OPT)?;
    let guests = Guests {
        wasm: target_dir
            .join(WASM_TARGET)
            .join("release")
            .join(format!("{HTTP_BIN}.wasm")),
        native: target_dir.join("release").join(HTTP_BIN),
    };
    for path in [&guests.wasm, &guests.native] {
        if !path.is_file() {
            bail!("the guest build did not produce {}", path.display());
        }
    }
    Ok(guests)
}

/// The `--cfg` tokio asks for before it offers `tokio::net` on WASI, for the guest's every crate.
const TOKIO_WASI: &str = r#"target.wasm32-wasip2.rustflags=["--cfg", "tokio_unstable"]"#;

/// Builds (incrementally) `guests/bench-http` with its `tokio` feature for `wasm32-wasip2`, in a
/// target directory of its own (its flags differ from the other guests'), and returns the
/// component.
pub(crate) fn build_http_tokio(repo: &Path) -> Result<PathBuf> {
    let target_dir = repo.join("target").join("bench-guests-tokio");
    let manifest = repo.join("guests").join("Cargo.toml");
    let extra = [HTTP_OPT, &["--features", "tokio", "--config", TOKIO_WASI]].concat();
    cargo_build(
        &manifest,
        &target_dir,
        Some(WASM_TARGET),
        ("bench-http", HTTP_BIN),
        &extra,
    )?;
    built(&target_dir, HTTP_BIN)
}

/// Builds (incrementally) `raw-http-server` (`guests/raw`) for `wasm32-wasip2`, as
/// `crates/wasock-guests` does but at opt-level 3, and returns the component.
pub(crate) fn build_raw_http(repo: &Path) -> Result<PathBuf> {
    let target_dir = repo.join("target").join("bench-guests");
    let manifest = repo.join("guests").join("Cargo.toml");
    let bin = "raw-http-server";
    cargo_build(
        &manifest,
        &target_dir,
        Some(WASM_TARGET),
        ("raw-guests", bin),
        HTTP_OPT,
    )?;
    built(&target_dir, bin)
}

fn cargo_build(
    manifest: &Path,
    target_dir: &Path,
    target: Option<&str>,
    (package, bin): (&str, &str),
    extra: &[&str],
) -> Result<()> {
    let extra = [&["--bin", bin][..], extra].concat();
    cargo_build_with(manifest, target_dir, target, package, &extra)
}

/// `cargo build --release -p package` with `extra` arguments (which say what to build).
fn cargo_build_with(
    manifest: &Path,
    target_dir: &Path,
    target: Option<&str>,
    package: &str,
    extra: &[&str],
) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--quiet", "-p", package])
        .args(extra)
        .arg("--manifest-path")
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir);
    if let Some(target) = target {
        cmd.args(["--target", target]);
    }
    // The harness's own build settings are not the guests' (the tests' guest build scrubs the
    // same list).
    wasock_support::scrub_build_env(&mut cmd);
    let what = target.unwrap_or("the host");
    let status = cmd
        .status()
        .with_context(|| format!("running cargo to build {package} for {what}"))?;
    if !status.success() {
        bail!(
            "building {package} for {what} failed ({status}): cargo build --release -p {package} \
             --manifest-path {}",
            manifest.display()
        );
    }
    Ok(())
}

/// The component cargo built for `bin` in `target_dir`, or an error when there is none.
fn built(target_dir: &Path, bin: &str) -> Result<PathBuf> {
    let wasm = target_dir
        .join(WASM_TARGET)
        .join("release")
        .join(format!("{bin}.wasm"));
    if !wasm.is_file() {
        bail!("the guest build did not produce {}", wasm.display());
    }
    Ok(wasm)
}
