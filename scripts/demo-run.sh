#!/usr/bin/env bash
# The demo's story, with wasock and the guest components already built:
#
#     bash scripts/demo-run.sh WASOCK GUEST_DIR
#
# WASOCK is the `wasock` binary, GUEST_DIR holds std-echo-server.wasm and std-echo-client.wasm.
# scripts/demo.sh builds both and runs this; crates/wasock-cli/tests/demo.rs runs it on its own
# build. Exits 0 only when everything happened as the story tells: the refused client refused
# with access-denied, the granted one echoed, the server served it.
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "usage: bash scripts/demo-run.sh WASOCK GUEST_DIR" >&2
    exit 2
fi
wasock=$1
guests=$2
work=$(mktemp -d)
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT

# `show LABEL FILE`: the lines of FILE, each after a label; audit records get their own.
show() {
    local line
    while IFS= read -r line || [ -n "$line" ]; do
        case $line in
        '{"time":'*) printf '   audit  | %s\n' "$line" ;;
        *) printf '   %-6s | %s\n' "$1" "$line" ;;
        esac
    done <"$2"
}

# Says what went wrong, shows the output so far, and stops.
broken() {
    echo "demo: $*" >&2
    exit 1
}

echo
echo "wasock is $wasock; the .wasm files are in $guests."
echo "Lines from a component are marked server | or client |; policy decisions, audit |."

echo
echo "-- Step 1 of 4: an echo server that may listen on loopback, and nothing else"
echo "   \$ wasock run --allow-inbound 'tcp://loopback:*' std-echo-server.wasm -- 127.0.0.1:0 1"
"$wasock" run --allow-inbound 'tcp://loopback:*' "$guests/std-echo-server.wasm" \
    -- 127.0.0.1:0 1 >"$work/server" 2>&1 &
server=$!
addr=""
for _ in $(seq 1 300); do
    addr=$(sed -n 's/^listening on \(127\.0\.0\.1:[0-9]*\)$/\1/p' "$work/server")
    [ -n "$addr" ] && break
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$addr" ]; then
    show server "$work/server"
    if kill -0 "$server" 2>/dev/null; then
        broken "the server did not start listening within 30 seconds"
    fi
    broken "the server exited before it listened"
fi
port=${addr##*:}
show server "$work/server"
echo "   It listens on port $port, which the OS picked."

echo
echo "-- Step 2 of 4: a client whose policy grants another port: refused"
echo "   Its one rule allows tcp://127.0.0.1:1, so its connect to port $port is refused with"
echo "   access-denied before anything is sent; --audit - writes each decision to stderr."
echo "   \$ wasock run --allow-outbound tcp://127.0.0.1:1 --audit - std-echo-client.wasm -- $addr denied"
status=0
"$wasock" run --allow-outbound tcp://127.0.0.1:1 --audit - "$guests/std-echo-client.wasm" \
    -- "$addr" "denied" >"$work/refused" 2>&1 || status=$?
show client "$work/refused"
grep -q '"op":"connect".*"verdict":"deny"' "$work/refused" ||
    broken "expected an audit record of the denied connect"
grep -q 'access-denied' "$work/refused" || broken "expected the client to report access-denied"
[ "$status" -ne 0 ] || broken "expected the refused client to exit non-zero"
echo "   => refused as the policy says (access-denied): no rule grants port $port; the client"
echo "      exited with code $status and the server never saw it."

echo
echo "-- Step 3 of 4: the same client, granted exactly the server's port"
echo "   \$ wasock run --allow-outbound tcp://127.0.0.1:$port --audit - std-echo-client.wasm -- $addr \\"
echo "         'hello from a component' 'wasi:sockets over loopback'"
status=0
"$wasock" run --allow-outbound "tcp://127.0.0.1:$port" --audit - "$guests/std-echo-client.wasm" \
    -- "$addr" "hello from a component" "wasi:sockets over loopback" >"$work/granted" 2>&1 ||
    status=$?
show client "$work/granted"
[ "$status" -eq 0 ] || broken "expected the granted client to exit 0, got $status"
echo "   => allowed by the rule allow-outbound tcp://127.0.0.1:$port; both messages came back."

echo
echo "-- Step 4 of 4: what the server saw"
status=0
wait "$server" || status=$?
server=""
sed -n '2,$p' "$work/server" >"$work/server-rest"
show server "$work/server-rest"
[ "$status" -eq 0 ] || broken "expected the server to exit 0, got $status"

echo
echo "Done: one refusal and one echo, each decision in the audit trail."
echo "Next: \`bash scripts/test.sh\` runs the tests, reusing this build;"
echo "      \`$wasock run --help\` lists every flag;"
echo "      \`$wasock policy check --help\` explains a policy before you run anything."
