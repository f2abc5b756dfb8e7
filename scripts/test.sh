#!/usr/bin/env bash
# The test suite: formatting, lints, unit tests, and the conformance guests under wasock.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all -- --check
(cd guests && cargo fmt --all -- --check)
cargo clippy --quiet --all-targets -- -D warnings
cargo test --workspace
