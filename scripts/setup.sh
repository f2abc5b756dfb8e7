#!/usr/bin/env bash
# Installs what building wasock and its guests needs: the pinned toolchain's wasm32-wasip2 target.
set -euo pipefail
cd "$(dirname "$0")/.."
toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
rustup toolchain list | grep -q "^$toolchain" || rustup toolchain install "$toolchain" --profile minimal
rustup target add --toolchain "$toolchain" wasm32-wasip2 >/dev/null 2>&1
rustup component add --toolchain "$toolchain" rustfmt clippy >/dev/null 2>&1
