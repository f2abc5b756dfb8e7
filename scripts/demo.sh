#!/usr/bin/env bash
# The demo: an echo server component and a client component talking over loopback, each under
# `wasock run` with only the network its policy grants, and the audit trail of every decision.
#
# It builds what the tests build (the same debug build of wasock, the same guest build), so
# `bash scripts/test.sh` afterwards compiles no Wasmtime crate again. The story itself is
# scripts/demo-run.sh, which the CLI tests also run.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
trap 'stages_report $?' EXIT
stages 4

echo "wasock demo: two WebAssembly components talk over loopback under \`wasock run\`,"
echo "each allowed only the network its policy grants."

stage setup "the pinned Rust toolchain, its wasm32-wasip2 target, rustfmt, clippy and wrk" \
    "a few seconds once installed"
bash scripts/setup.sh

if built_before; then
    estimate="already built once: seconds"
else
    estimate="the first build compiles Wasmtime, Cranelift and the containerd shim's dependencies: about 14 minutes on 2 cores, less on more"
fi
# The containerd shim is built with the CLI: built together they share the features of their
# dependencies with the tests' build, so that the tests compile no Wasmtime crate again.
stage "build wasock" \
    "cargo build -p wasock-cli -p containerd-shim-wasock (debug, the build scripts/test.sh reuses)" \
    "$estimate"
cargo build -p wasock-cli -p containerd-shim-wasock

stage "build the guests" "the echo server and client components, for wasm32-wasip2" \
    "seconds"
build_guests -p std-guests --bin std-echo-server --bin std-echo-client

target=$(target_dir)
target=${target#"$PWD/"} # target/, as a newcomer would type it
stage run "the story, step by step"
bash scripts/demo-run.sh "$target/debug/wasock" "$target/wasm-guests/wasm32-wasip2/release"
