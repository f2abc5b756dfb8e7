#!/usr/bin/env bash
# The demo: an echo server component and a client component talking over loopback, each under
# `wasock run` with only the network its policy grants, and the audit trail of every decision.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== building wasock and the guest components (the first build takes a few minutes)"
cargo build --quiet -p wasock-cli
cargo build --quiet --release --target wasm32-wasip2 --manifest-path guests/Cargo.toml \
    --target-dir target/wasm-guests --bin std-echo-server --bin std-echo-client
wasock=target/debug/wasock
guests=target/wasm-guests/wasm32-wasip2/release
log=$(mktemp)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -f "$log"' EXIT

echo
echo "== server: may listen on loopback, nothing else"
echo "   wasock run --allow-inbound 'tcp://loopback:*' std-echo-server.wasm -- 127.0.0.1:0 1"
"$wasock" run --allow-inbound 'tcp://loopback:*' "$guests/std-echo-server.wasm" -- 127.0.0.1:0 1 >"$log" 2>&1 &
server=$!
addr=""
for _ in $(seq 1 100); do
    addr=$(grep -o '127\.0\.0\.1:[0-9]*' "$log" | head -n 1 || true)
    [ -n "$addr" ] && break
    sleep 0.1
done
[ -n "$addr" ] || { cat "$log"; echo "the server did not start" >&2; exit 1; }
port=${addr##*:}

echo
echo "== client without a grant for that port: refused (audit trail on stderr)"
echo "   wasock run --allow-outbound tcp://127.0.0.1:1 --audit - std-echo-client.wasm -- $addr ..."
"$wasock" run --allow-outbound tcp://127.0.0.1:1 --audit - "$guests/std-echo-client.wasm" -- "$addr" "denied" \
    || echo "   (exit code $?: refused with access-denied, as the policy says)"

echo
echo "== client granted exactly the server's port"
echo "   wasock run --allow-outbound tcp://127.0.0.1:$port --audit - std-echo-client.wasm -- $addr ..."
"$wasock" run --allow-outbound "tcp://127.0.0.1:$port" --audit - "$guests/std-echo-client.wasm" -- "$addr" \
    "hello from a component" "wasi:sockets over loopback"
wait "$server"
server=""
echo
echo "== the server said:"
cat "$log"
