#!/usr/bin/env bash
# Installs what building and testing wasock needs: the pinned toolchain's wasm32-wasip2 target,
# and wrk for the load test.
set -euo pipefail
cd "$(dirname "$0")/.."
toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
rustup toolchain list | grep -q "^$toolchain" || rustup toolchain install "$toolchain" --profile minimal
rustup target add --toolchain "$toolchain" wasm32-wasip2 >/dev/null 2>&1
rustup component add --toolchain "$toolchain" rustfmt clippy >/dev/null 2>&1

# wrk drives the load test (crates/wasock/tests/load.rs), which is skipped without it (and fails
# when CI is set): installed from the distribution's packages when missing.
install_wrk() {
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || return 1
        sudo=(sudo -n)
    fi
    command -v apt-get >/dev/null 2>&1 || return 1
    "${sudo[@]}" apt-get update -qq >/dev/null &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
}
if ! command -v wrk >/dev/null 2>&1 && ! install_wrk; then
    echo "setup: could not install wrk; the load test will be skipped without it (fail under CI)" >&2
fi
