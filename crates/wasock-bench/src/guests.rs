//! Builds the bench guest (`guests/bench`) twice from one source: for `wasm32-wasip2` and for
//! the host, in release, into `target/bench-guests`.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";
const BIN: &str = "bench-guest";

/// Variables of the harness's own build that must not reach the guest builds.
const SCRUBBED: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_BUILD_DIR",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MANIFEST_PATH",
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
    cargo_build(&manifest, &target_dir, Some(WASM_TARGET))?;
    cargo_build(&manifest, &target_dir, None)?;
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

fn cargo_build(manifest: &Path, target_dir: &Path, target: Option<&str>) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--release", "--quiet", "-p", "bench", "--bin", BIN])
        .arg("--manifest-path")
        .arg(manifest)
        .arg("--target-dir")
        .arg(target_dir);
    if let Some(target) = target {
        cmd.args(["--target", target]);
    }
    for var in SCRUBBED {
        cmd.env_remove(var);
    }
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PROFILE_") || key.starts_with("CARGO_TARGET_") {
            cmd.env_remove(&*key);
        }
    }
    let what = target.unwrap_or("the host");
    let status = cmd
        .status()
        .with_context(|| format!("running cargo to build the bench guest for {what}"))?;
    if !status.success() {
        bail!(
            "building the bench guest for {what} failed ({status}): cargo build --release -p bench \
             --manifest-path {}",
            manifest.display()
        );
    }
    Ok(())
}
