#!/usr/bin/env bash
# Load on the local runner, and what the same disk allows, in one run so the ratios compare like
# with like. Loopback only; every step is bounded in time.
#
#   bench/load.sh [--people 1000] [--threads 2] [--connections 32] [--duration 5]
#
# Prints: durable SQLite commits per second (1 and 50 rows per commit) and append+fdatasync on the
# disk of the data directory; GET /healthz req/s; POST /v1/alerts alerts/s and p99; the fan-out's
# catch-up time and rate against intake; press -> family and consulate notified, idle and under load.
# Results as JSON in target/bench-load/results.json.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y wrk >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
    else
        echo "bench/load.sh needs wrk (Debian: apt-get install wrk)" >&2
        exit 1
    fi
fi

# BENCH_PROFILE=dev measures a debug build (slower; for checking the script, not for figures).
# RUNNER=path measures that binary instead of building one: two builds compared turn by turn.
profile="${BENCH_PROFILE:-release}"
if [ -n "${RUNNER:-}" ]; then
    runner="$(realpath "$RUNNER")"
else
    cargo build --profile "$profile" -p alert-button-runner
    [ "$profile" = dev ] && profile_dir=debug || profile_dir="$profile"
    runner="${CARGO_TARGET_DIR:-$root/target}/$profile_dir/alert-button"
fi

out="$root/target/bench-load"
rm -rf "$out"
mkdir -p "$out"
data="$out/data"

echo "== the disk: $(df -h "$out" | awk 'NR==2 {print $1}'); $(nproc) cores; $(uname -r)"
python3 bench/sqlite_commits.py "$out" --json "$out/disk.json"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
RUST_LOG=warn "$runner" serve --addr "127.0.0.1:$port" --data-dir "$data" >"$out/runner.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done

echo "== the runner on 127.0.0.1:$port"
python3 bench/load.py --port "$port" --data-dir "$data" --pid "$pid" --json "$out/load.json" "$@"

python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
disk = json.load(open(out + "/disk.json"))
load = json.load(open(out + "/load.json"))
one = disk["sqlite_rows_per_s_1_per_commit"]
print("== ratios in this run")
print("intake / one durable commit per row:  %.2f  (bar >= 1.0)" % (load["intake_alerts_per_s"] / one))
print("fan-out / intake under the same load: %.2f  (bar >= 0.9)" % load["fanout_over_intake"])
lat = sorted(load["loaded_press_to_notified_ms"]) or [float("nan")]
p99 = lambda lat: lat[min(len(lat) - 1, round(0.99 * (len(lat) - 1)))]
print("press -> notified p99 under load:     %.1f ms (bar <= 50 ms)" % p99(lat))
if "paced_press_to_notified_ms" in load:
    paced = sorted(load["paced_press_to_notified_ms"]) or [float("nan")]
    print("press -> notified p99 paced at %.0f/s: %.1f ms (bar <= 50 ms)" % (load["paced_alerts_per_s"], p99(paced)))
json.dump({"disk": disk, "load": load}, open(out + "/results.json", "w"), indent=2)
PY
