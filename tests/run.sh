#!/usr/bin/env bash
# The test command: every check the project has, from a fresh clone, installing what it needs.
# Usage: tests/run.sh            (CI runs exactly this through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

step() { printf '\n==> %s\n' "$*"; }

# Logs of the servers the tests start live outside the repository (cargo lambda watch rebuilds
# when files change under it).
logs=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

step "test tools in .venv: moto, cargo-lambda, cfn-lint, aws-sam-translator, schemathesis"
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
export PATH="$root/.venv/bin:$PATH"
cargo lambda --version

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

step "dependencies: licences, duplicate versions, sources and advisories (cargo deny)"
deny_version=0.20.2
if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $deny_version" ]; then
    cargo install cargo-deny --locked --version "$deny_version"
fi
cargo deny check bans licenses sources
# The RustSec database is a git repository on GitHub: checked wherever it can be fetched.
if cargo deny fetch db >"$logs/deny-fetch.log" 2>&1; then
    cargo deny check --disable-fetch advisories
else
    echo "WARNING: advisories NOT checked: the RustSec database (github.com/RustSec/advisory-db) cannot be fetched from this machine"
fi

step "build every binary once (the tests reuse this target dir)"
cargo build --workspace --bins

step "the public lookup links no store, AWS SDK, JWT or HTTP client code"
if cargo tree -p consulate-lookup -e normal --prefix none | grep -E '^(rusqlite|aws-sdk-|aws-config|serde_dynamo|jsonwebtoken|reqwest) '; then
    echo "consulate-lookup links the crates above; it must build from alert-button-directory alone"
    exit 1
fi
echo "consulate-lookup: $(cargo tree -p consulate-lookup -e normal --prefix none | sort -u | wc -l) crates, none of them personal-data plumbing"

step "the bundled consulate directory"
cargo run --quiet --bin alert-button -- directory check data/consulates.csv

step "the deployment template: cfn-lint, its CloudFormation translation, routes, IAM"
cargo run --quiet --bin alert-button -- routes >"$logs/routes.txt"
AWS_DEFAULT_REGION=us-east-1 python tests/check_template.py infra/template.yaml "$logs/routes.txt"

step "the OpenAPI description: valid, and exactly the routes served"
python tests/check_openapi.py docs/openapi.yaml "$logs/routes.txt"

step "schemathesis: the OpenAPI description against the local runner, every check"
bash tests/schemathesis.sh

step "moto server (the AWS API) on a free loopback port, one request at a time"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python tests/moto_server.py 127.0.0.1 "$port" >"$logs/moto.log" 2>&1 &
pids+=($!)
export MOTO_URL="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
    if curl -fsS "$MOTO_URL/moto-api/" >/dev/null 2>&1; then break; fi
    sleep 0.2
done
curl -fsS "$MOTO_URL/moto-api/" >/dev/null || { cat "$logs/moto.log"; exit 1; }
echo "moto at $MOTO_URL"

step "unit, contract, local-runner, moto and cargo-lambda tests"
cargo test --workspace --no-fail-fast

step "the person's page and the console in headless Chromium (Playwright, axe-core)"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
# Only what is missing: where Node.js comes from elsewhere (NodeSource's nodejs bundles npm),
# Debian's npm conflicts with it.
packages=()
[ -x /usr/bin/chromium ] || packages+=(chromium)
command -v npm >/dev/null || packages+=(nodejs npm)
if [ "${#packages[@]}" -gt 0 ]; then
    $sudo apt-get update
    $sudo apt-get install -y "${packages[@]}"
fi
(cd tests/browser && npm ci --no-audit --no-fund && ALERT_BUTTON_BIN="$root/target/debug/alert-button" npm test)

step "fuzzing every parser of untrusted input, bounded in time"
bash tests/fuzz.sh "${FUZZ_SECONDS:-20}"
