#!/usr/bin/env bash
# The demo: an echo server component and a client component talking over loopback, each under
# `wasock run` with only the network it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== building wasock and the guest components (first build takes a few minutes)"
cargo build --quiet -p wasock-cli
cargo build --quiet --release --target wasm32-wasip2 --manifest-path guests/Cargo.toml \
    --target-dir target/wasm-guests \
    --bin std-echo-server --bin std-echo-client
wasock=target/debug/wasock
guests=target/wasm-guests/wasm32-wasip2/release
log=$(mktemp)
trap 'kill "$server" 2>/dev/null || true; rm -f "$log"' EXIT

echo "== server: wasock run --allow-all-network std-echo-server.wasm -- 127.0.0.1:0 1"
"$wasock" run --allow-all-network "$guests/std-echo-server.wasm" -- 127.0.0.1:0 1 >"$log" 2>&1 &
server=$!
addr=""
for _ in $(seq 1 100); do
    addr=$(grep -o '127\.0\.0\.1:[0-9]*' "$log" | head -n 1 || true)
    [ -n "$addr" ] && break
    sleep 0.1
done
[ -n "$addr" ] || { cat "$log"; echo "the server did not start" >&2; exit 1; }
echo "== client: wasock run --allow-all-network std-echo-client.wasm -- $addr ..."
"$wasock" run --allow-all-network "$guests/std-echo-client.wasm" -- "$addr" "hello from a component" "wasi:sockets over loopback"
wait "$server"
echo "== server said:"
cat "$log"
echo "== the same client without a network grant (deny by default):"
"$wasock" run "$guests/std-echo-client.wasm" -- "$addr" "denied" || echo "(exit code $?: refused, as it should be)"
