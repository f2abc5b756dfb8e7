#!/usr/bin/env bash
# Installs what building and testing wasock needs: the pinned toolchain's wasm32-wasip2 target,
# wrk for the load test, libseccomp's headers for the containerd shim's build, and containerd
# for its test.
set -euo pipefail
cd "$(dirname "$0")/.."
toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
rustup toolchain list | grep -q "^$toolchain" || rustup toolchain install "$toolchain" --profile minimal
rustup target add --toolchain "$toolchain" wasm32-wasip2 >/dev/null 2>&1
rustup component add --toolchain "$toolchain" rustfmt clippy >/dev/null 2>&1

# `apt_install PACKAGE...`: installs packages from the distribution's packages (as root, or
# through sudo without a password); fails where that cannot be done.
apt_install() {
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || return 1
        sudo=(sudo -n)
    fi
    command -v apt-get >/dev/null 2>&1 || return 1
    "${sudo[@]}" apt-get update -qq >/dev/null &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# wrk drives the load test (crates/wasock/tests/load.rs), which is skipped without it (and fails
# when CI is set); containerd (and its ctr, and its CRI plugin) the shim's tests (crates/
# containerd-shim-wasock/tests/containerd.rs), likewise; the shim's build needs protoc (containerd's API, compiled by
# containerd-client's build script) and links libseccomp (through youki's libcontainer), found
# with pkg-config. Each is installed only when missing, all in one apt-get run.
wanted=()
command -v wrk >/dev/null 2>&1 || wanted+=(wrk)
command -v containerd >/dev/null 2>&1 && command -v ctr >/dev/null 2>&1 || wanted+=(containerd)
command -v protoc >/dev/null 2>&1 || wanted+=(protobuf-compiler)
command -v pkg-config >/dev/null 2>&1 || wanted+=(pkg-config)
pkg-config --exists libseccomp 2>/dev/null || wanted+=(libseccomp-dev)
if [ ${#wanted[@]} -gt 0 ] && ! apt_install "${wanted[@]}"; then
    echo "setup: could not install ${wanted[*]}: without protoc or libseccomp-dev the" \
        "containerd shim does not build; without wrk or containerd their tests are skipped (and fail under CI)" >&2
fi
