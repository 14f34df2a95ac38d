#!/usr/bin/env bash
# Property-based tests of the HTTP API against docs/openapi.yaml: schemathesis generates valid and
# invalid requests for every operation, and every check it has must pass against the local runner.
# Usage: tests/schemathesis.sh   (after `cargo build --bin alert-button`; uses .venv's schemathesis)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

binary=$root/target/debug/alert-button
[ -x "$binary" ] || cargo build --quiet --bin alert-button
schemathesis=$root/.venv/bin/schemathesis
[ -x "$schemathesis" ] || schemathesis=schemathesis

work=$(mktemp -d)
server=
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# Port 0: the runner binds a free port and says which.
: >"$work/server.log"
"$binary" serve --addr 127.0.0.1:0 --data-dir "$work/data" >"$work/server.log" 2>&1 &
server=$!
url=
for _ in $(seq 1 100); do
    url=$(sed -n 's/^Alert Button listening on \(http:[^ ]*\).*/\1/p' "$work/server.log")
    [ -n "$url" ] && break
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$url" ]; then
    cat "$work/server.log"
    echo "the runner did not start"
    exit 1
fi
echo "runner at $url"

# The people the generated requests act as, registered from another loopback address than the
# generated registrations, so that their rate limit (which they are meant to hit) cannot stop it.
register() {
    curl -fsS --interface 127.0.0.2 -X POST "$url/v1/people" -H 'content-type: application/json' \
        -d '{"display_name":"Ana","language":"es","contacts":[{"name":"Luis","phone":"+13125550100"}]}' |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])'
}
ALERT_BUTTON_PERSON_TOKEN=$(register)
ALERT_BUTTON_PINS_PERSON_TOKEN=$(register)
ALERT_BUTTON_STAFF_TOKEN=$("$binary" staff-token --national --consulate mx-emb-washington \
    --data-dir "$work/data")
export ALERT_BUTTON_PERSON_TOKEN ALERT_BUTTON_PINS_PERSON_TOKEN ALERT_BUTTON_STAFF_TOKEN

# Run from the scratch directory: schemathesis keeps a cache of past failures in the working
# directory, and each run should start from nothing but its seed.
status=0
(cd "$work" && SCHEMATHESIS_HOOKS=$root/tests/schemathesis_hooks.py "$schemathesis" \
    --config-file "$root/tests/schemathesis.toml" run "$root/docs/openapi.yaml" \
    --url "$url" \
    --checks all \
    --mode all \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-100}" \
    --seed "${SCHEMATHESIS_SEED:-7}" \
    --workers 1 \
    --generation-database none \
    --request-timeout 10 \
    --no-color) || status=$?
if [ "$status" -ne 0 ]; then
    echo "--- runner log (last 50 lines)"
    tail -n 50 "$work/server.log"
fi
exit "$status"
