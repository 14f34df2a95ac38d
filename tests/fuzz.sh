#!/usr/bin/env bash
# Fuzzes every parser of untrusted input for a bounded time: each JSON request body (through the
# router's strict parser, then the domain's validation), the nearest-office query, the directory
# CSV, bearer tokens (a person's and a staff JWT) and page cursors. Targets: fuzz/fuzz_targets/.
#
# Usage: tests/fuzz.sh [SECONDS_PER_TARGET]     (default 20, or $FUZZ_SECONDS)
#
# Runs on the stable toolchain: no sanitizer (`--sanitizer none` needs no `-Z` flag; Rust's own
# checks, with debug assertions, catch what matters in safe code) and a dev build at opt-level 1
# (see fuzz/Cargo.toml). Targets run two at a time. Exits non-zero if any target finds a crash;
# the input that crashed is kept in fuzz/artifacts/<target>/, to replay with
# `cargo fuzz run --dev --sanitizer none <target> <file>`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

CARGO_FUZZ_VERSION=0.13.2
seconds=${1:-${FUZZ_SECONDS:-20}}
jobs=$(( $(nproc) < 2 ? 1 : 2 ))

if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# The fuzz crate is its own workspace with its own target dir, whatever the caller's is.
unset CARGO_TARGET_DIR
build=(--dev --sanitizer none --target-dir "$root/fuzz/target")
cargo fuzz build "${build[@]}"
triple=$(rustc -vV | sed -n 's/^host: //p')
bin_dir="$root/fuzz/target/$triple/debug"

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# One target: its corpus grows in fuzz/corpus/<target>/ (only the seed-* files are in git).
fuzz_one() {
    local target=$1
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target"
    if "$bin_dir/$target" "fuzz/corpus/$target" \
        -artifact_prefix="fuzz/artifacts/$target/" \
        -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 >"$logs/$target.log" 2>&1; then
        local runs
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$target.log")
        printf '%-20s ok   %s runs in %ss\n' "$target" "${runs:-?}" "$seconds"
    else
        printf '%-20s FAIL (log follows)\n' "$target"
        tail -n 60 "$logs/$target.log"
        return 1
    fi
}

targets=$(cargo fuzz list --fuzz-dir fuzz)
failed=0
running=0
for target in $targets; do
    if [ "$running" -ge "$jobs" ]; then
        wait -n || failed=1
        running=$((running - 1))
    fi
    fuzz_one "$target" &
    running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
    wait -n || failed=1
    running=$((running - 1))
done

if [ "$failed" -ne 0 ]; then
    echo "fuzzing found a crash; see the log above and fuzz/artifacts/" >&2
    exit 1
fi
echo "fuzzing: every target ran ${seconds}s without a crash"
