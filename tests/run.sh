#!/usr/bin/env bash
# The test command: every check the project has, from a fresh clone, installing what it needs.
# Usage: tests/run.sh            (CI runs exactly this through .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "format and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

step "build every binary once (the tests reuse this target dir)"
cargo build --workspace --bins

step "the bundled consulate directory"
cargo run --quiet --bin alert-button -- directory check data/consulates.csv

step "unit, contract and local-runner tests"
cargo test --workspace
