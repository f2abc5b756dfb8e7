#!/usr/bin/env bash
# The test suite, stage by stage: formatting, the conformance guests, lints, then the unit,
# integration and conformance tests, then the library's docs and public API. Each stage says what it does and how long it took; a failure
# names its stage.
#
# After scripts/demo.sh this compiles no Wasmtime crate again: the demo's debug build is part of
# the tests' build (same profile, same features), and the guests are built once, here, exactly as
# the tests' build script would.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
trap 'stages_report $?' EXIT
stages 9

if built_before; then
    first=""
else
    first=" (on a first run without the demo, add the 8 minutes its build takes)"
fi

stage setup "the pinned Rust toolchain, its wasm32-wasip2 target, rustfmt, clippy and wrk" \
    "a few seconds once installed"
bash scripts/setup.sh

stage formatting "cargo fmt --check, in both workspaces (crates and guests)" "seconds"
cargo fmt --all -- --check
(cd guests && cargo fmt --all -- --check)

stage "conformance guests" "the test components in guests/, built for wasm32-wasip2" \
    "about 20 seconds the first time, then seconds"
mapfile -t packages < <(test_guest_packages)
[ ${#packages[@]} -gt 0 ] || { echo "test.sh: no PACKAGES list in crates/wasock-guests/build.rs" >&2; exit 1; }
build_guests "${packages[@]}"

stage lints "cargo clippy --all-targets -- -D warnings" \
    "about a minute the first time (clippy type-checks every dependency once), then seconds"
cargo clippy --all-targets -- -D warnings

stage "build the tests" "cargo test --workspace --no-run" \
    "about a minute after the demo$first; seconds when nothing changed"
cargo test --workspace --no-run

stage "unit tests" "cargo test --workspace --lib --bins" "seconds"
cargo test --workspace --lib --bins

stage "integration and conformance tests" \
    "cargo test --workspace --test '*': guests under wasock, policy, limits, CLI, demo, containerd shim" \
    "about 1 to 2 minutes"
cargo test --workspace --test '*'

stage "doc tests" "cargo test --workspace --doc" "seconds"
cargo test --workspace --doc

stage "docs and public API" \
    "cargo doc -p wasock with warnings as errors; its public items against crates/wasock/public-api.txt" \
    "seconds"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p wasock
if ! public_api "$(target_dir)/doc/wasock" | diff -u crates/wasock/public-api.txt -; then
    echo "test.sh: wasock's public API is not crates/wasock/public-api.txt (diff above);" \
        "if the change is deliberate, regenerate the file:" \
        "bash -c 'source scripts/lib.sh && public_api target/doc/wasock' > crates/wasock/public-api.txt" >&2
    exit 1
fi
