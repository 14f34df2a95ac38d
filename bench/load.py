#!/usr/bin/env python3
"""Load on a running local runner (`alert-button serve`), driven by bench/load.sh.

1. registers people (each address on 127.0.0.0/8 may register 20 an hour, so they come from many);
2. `wrk` on GET /healthz;
3. `wrk` with bench/load/alerts.lua: POST /v1/alerts, a fresh alert per request, while a probe
   presses once every 20 ms and times press -> family and consulate notified under that load;
4. the fan-out's catch-up: how long after the last press the journal holds every alert's
   notifications, and so the rate the fan-out kept;
5. press -> notified on the idle runner;
6. press -> notified under paced load: the same alerts at a share of the rate intake just kept
   (`--paced 0.5`: half), so the figure is latency below saturation, not queueing at it.

Standard library only. Every request goes to the loopback address given.
"""

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def connect(port, source=None):
    return http.client.HTTPConnection(
        "127.0.0.1", port, timeout=30, source_address=(source, 0) if source else None
    )


def call(conn, method, path, body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = conn.getresponse()
    return response.status, json.loads(response.read() or b"null")


def register(port, count):
    tokens = []
    for n in range(count):
        if n % 20 == 0:
            # 127.0.0.2, .3, ...: each address stays under the per-address registration limit.
            source = "127.0.%d.%d" % ((n // 20 + 2) // 250, (n // 20 + 2) % 250 + 1)
            conn = connect(port, source)
        status, body = call(
            conn,
            "POST",
            "/v1/people",
            {
                "display_name": "Load %d" % n,
                "language": "es",
                "contacts": [
                    {"name": "Luis", "phone": "+13125550100"},
                    {"name": "Kim", "email": "kim@example.org", "language": "en"},
                ],
            },
        )
        if status != 201:
            raise SystemExit("registration %d answered %d: %s" % (n, status, body))
        tokens.append(body["token"])
    return tokens


class Journal:
    """Follows notifications.jsonl: when each alert's opening reached the family and the consulate."""

    def __init__(self, path, family_lines):
        self.path, self.family_lines = path, family_lines
        self.opened = {}  # alert_id -> [family lines, consulate lines]
        self.notified_at = {}
        self.offset = 0
        self.partial = b""
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.follow, daemon=True)
        self.thread.start()

    def follow(self):
        while not self.stop.is_set():
            self.read()
            time.sleep(0.0005)

    def read(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        if not data:
            return
        now = time.perf_counter()
        self.offset += len(data)
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        for raw in lines:
            line = json.loads(raw)
            if line.get("event") != "opened":
                continue
            counts = self.opened.setdefault(line["alert_id"], [0, 0])
            counts[0 if line["audience"] == "family" else 1] += line["audience"] in (
                "family",
                "consulate",
            )
            if counts[0] >= self.family_lines and counts[1] >= 1:
                self.notified_at.setdefault(line["alert_id"], now)

    def notified(self):
        return len(self.notified_at)


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def probe(port, tokens, journal, every, until, results):
    """Presses once every `every` seconds until `until`; records press -> notified per alert."""
    conn = connect(port)
    pressed = []
    n = 0
    while time.perf_counter() < until:
        token = tokens[n % len(tokens)]
        started = time.perf_counter()
        status, body = call(
            conn,
            "POST",
            "/v1/alerts",
            {"client_alert_id": "probe-%d-%d" % (os.getpid(), time.monotonic_ns()),
             "location": {"lat": 34.05, "lon": -118.24}},
            token,
        )
        if status == 201:
            pressed.append((body["alert_id"], started))
        n += 1
        time.sleep(max(0.0, started + every - time.perf_counter()))
    deadline = time.perf_counter() + 120
    while time.perf_counter() < deadline and any(a not in journal.notified_at for a, _ in pressed):
        time.sleep(0.01)
    results["latencies_ms"] = [
        (journal.notified_at[a] - t) * 1000 for a, t in pressed if a in journal.notified_at
    ]
    results["missing"] = sum(1 for a, _ in pressed if a not in journal.notified_at)


class CpuMeter:
    """CPU seconds spent from `start()` to `stop()`: by the runner (its pid), by wrk (this script's
    children), by this script, and by the whole machine, so a rate can be told apart from what
    the load generator took from the same cores."""

    def __init__(self, pid):
        self.pid = pid
        self.ticks = os.sysconf("SC_CLK_TCK")

    def seconds(self, stat):
        fields = stat.read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.ticks

    def threads(self):
        """CPU seconds by thread name (the store's writer, the journal's, the async workers)."""
        named = {}
        for task in Path("/proc/%d/task" % self.pid).iterdir() if self.pid else []:
            try:
                name = (task / "comm").read_text().strip()
                named[name] = named.get(name, 0.0) + self.seconds(task / "stat")
            except FileNotFoundError:  # a thread that ended meanwhile
                pass
        return named

    def io(self):
        """The runner's read and write calls (files and sockets alike) and the bytes they wrote."""
        if not self.pid:
            return {}
        lines = Path("/proc/%d/io" % self.pid).read_text().splitlines()
        fields = dict(line.split(": ") for line in lines)
        return {name: int(fields[name]) for name in ("syscr", "syscw", "wchar")}

    def sample(self):
        runner = self.seconds(Path("/proc/%d/stat" % self.pid)) if self.pid else 0.0
        cpu = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        busy = (sum(cpu) - cpu[3] - cpu[4]) / self.ticks  # all but idle and iowait
        times = os.times()
        return runner, times.children_user + times.children_system, time.process_time(), busy

    def start(self):
        self.first, self.first_threads, self.first_io = self.sample(), self.threads(), self.io()
        self.threads_before = self.thread_count()

    def thread_count(self):
        """Threads alive in the runner (the async runtime's idle blocking threads linger 10 s)."""
        return len(list(Path("/proc/%d/task" % self.pid).iterdir())) if self.pid else None

    def stop(self):
        self.threads_alive = self.thread_count()
        last, io = self.threads(), self.io()
        self.by_thread = {n: s - self.first_threads.get(n, 0.0) for n, s in last.items()}
        self.io_calls = {n: v - self.first_io[n] for n, v in io.items()}
        return [b - a for a, b in zip(self.first, self.sample())]


def summary(latencies):
    if not latencies:
        return "no sample"
    return "n %d  p50 %.1f ms  p99 %.1f ms  max %.1f ms" % (
        len(latencies),
        percentile(latencies, 50),
        percentile(latencies, 99),
        max(latencies),
    )


def wrk(args, extra, env=None):
    command = ["wrk", "-t%d" % args.threads, "-c%d" % args.connections, "-d%ds" % args.duration,
               "--latency"] + extra
    print("$ " + " ".join(command), flush=True)
    out = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
    return out


def paced_run(args, base, journal, probe_tokens, env, rate):
    """The load at `rate` alerts/s (wrk's per-connection delay), with the probe pressing beside it."""
    before = journal.notified()
    results = {}
    prober = threading.Thread(
        target=probe,
        args=(args.port, probe_tokens, journal, 0.02, time.perf_counter() + args.duration, results),
    )
    env = dict(env, RATE="%.1f" % rate, CONNECTIONS=str(args.connections), RUN="paced-%d" % os.getpid())
    started = time.perf_counter()
    prober.start()
    out = wrk(args, ["-s", str(HERE / "load" / "alerts.lua"), "%s/v1/alerts" % base], env)
    window = time.perf_counter() - started
    prober.join()
    created = int(re.search(r"^created (\d+)", out, re.M).group(1))
    probed = len(results["latencies_ms"]) + results["missing"]
    deadline = time.perf_counter() + 600
    while journal.notified() < before + created + probed and time.perf_counter() < deadline:
        time.sleep(0.005)
    print("paced at %.0f alerts/s (asked %.0f): press -> notified %s"
          % ((created + probed) / window, rate, summary(results["latencies_ms"])))
    return dict(
        paced_asked_alerts_per_s=rate,
        paced_alerts_per_s=(created + probed) / window,
        paced_press_to_notified_ms=results["latencies_ms"],
        paced_missing=results["missing"],
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--paced", type=float, default=0.5,
                        help="share of the measured intake rate for the paced run (0: none)")
    parser.add_argument("--pid", type=int, help="the runner's process, to report its CPU per alert")
    parser.add_argument("--json")
    args = parser.parse_args()
    base = "http://127.0.0.1:%d" % args.port
    report = {}

    started = time.perf_counter()
    tokens = register(args.port, args.people + 100)
    load_tokens, probe_tokens = tokens[: args.people], tokens[args.people :]
    token_file = Path(args.data_dir) / "load-tokens.txt"
    token_file.write_text("\n".join(load_tokens) + "\n")
    os.chmod(token_file, 0o600)
    print("registered %d people in %.1f s" % (len(tokens), time.perf_counter() - started))

    journal = Journal(Path(args.data_dir) / "notifications.jsonl", family_lines=2)

    # Idle first: one press at a time, each waiting for its notifications.
    idle = {}
    conn = connect(args.port)
    status, _ = call(conn, "GET", "/healthz")
    probe(args.port, probe_tokens, journal, 0.02, time.perf_counter() + 2, idle)
    print("press -> notified, idle runner: " + summary(idle["latencies_ms"]))
    report["idle_press_to_notified_ms"] = idle["latencies_ms"]

    out = wrk(args, ["%s/healthz" % base])
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    print("GET /healthz: %.0f req/s" % rate)
    report["healthz_rps"] = rate

    before = journal.notified()
    under_load = {}
    prober = threading.Thread(
        target=probe,
        args=(args.port, probe_tokens, journal, 0.02, time.perf_counter() + args.duration,
              under_load),
    )
    env = dict(os.environ, TOKENS=str(token_file), RUN=str(os.getpid()), THREADS=str(args.threads))
    meter = CpuMeter(args.pid)
    meter.start()
    load_started = time.perf_counter()
    prober.start()
    out = wrk(args, ["-s", str(HERE / "load" / "alerts.lua"), "%s/v1/alerts" % base], env)
    load_ended = time.perf_counter()
    created = int(re.search(r"^created (\d+)", out, re.M).group(1))
    refused = int(re.search(r"^refused (\d+)", out, re.M).group(1))
    p99 = float(re.search(r"p99 ([\d.]+)", out).group(1))
    prober.join()
    probed = len(under_load["latencies_ms"]) + under_load["missing"]
    # Catch-up: every alert pressed during the run (by wrk and by the probe) notified.
    expected = before + created + probed
    deadline = time.perf_counter() + 600
    while journal.notified() < expected and time.perf_counter() < deadline:
        time.sleep(0.005)
    caught_up = time.perf_counter()
    runner_cpu, wrk_cpu, script_cpu, busy = meter.stop()
    window = load_ended - load_started
    intake = (created + probed) / window
    fanout = (journal.notified() - before) / (caught_up - load_started)
    print("POST /v1/alerts: %d created in %.2f s = %.0f alerts/s (p99 %.1f ms), %d refused"
          % (created, window, created / window, p99, refused))
    print("fan-out: every alert notified %.2f s after the last press; %.0f alerts/s "
          "(%.2f x intake)" % (caught_up - load_ended, fanout, fanout / intake))
    print("press -> notified under that load: " + summary(under_load["latencies_ms"]))
    alerts = created + probed
    print("CPU from the first press to the last notification: runner %.2f s (%.0f us per alert), "
          "wrk %.2f s, this script %.2f s, machine %.2f s of %.2f s x %d cores"
          % (runner_cpu, runner_cpu / alerts * 1e6, wrk_cpu, script_cpu, busy,
             caught_up - load_started, os.cpu_count()))
    if meter.by_thread:
        print("runner's CPU by thread: " + ", ".join(
            "%s %.2f s" % item for item in sorted(meter.by_thread.items(), key=lambda i: -i[1])))
        print("runner's threads alive once caught up: %d (%d before the load)"
              % (meter.threads_alive, meter.threads_before))
    io_per_alert = {name: value / alerts for name, value in meter.io_calls.items()}
    if io_per_alert:
        print("runner's calls per alert: %.1f writes (%.1f KB), %.1f reads"
              % (io_per_alert["syscw"], io_per_alert["wchar"] / 1024, io_per_alert["syscr"]))
    report.update(
        alerts_created=created,
        alerts_refused=refused,
        intake_alerts_per_s=created / window,
        intake_p99_ms=p99,
        catch_up_s=caught_up - load_ended,
        fanout_alerts_per_s=fanout,
        fanout_over_intake=fanout / intake,
        loaded_press_to_notified_ms=under_load["latencies_ms"],
        notified_missing=journal.notified() < expected,
        cpu_s=dict(runner=runner_cpu, wrk=wrk_cpu, script=script_cpu, machine=busy,
                   wall=caught_up - load_started),
        runner_cpu_us_per_alert=runner_cpu / alerts * 1e6 if args.pid else None,
        runner_cpu_s_by_thread=meter.by_thread,
        runner_threads=dict(before=meter.threads_before, after=meter.threads_alive),
        runner_io_per_alert=io_per_alert,
    )
    if args.paced > 0:
        paced = paced_run(args, base, journal, probe_tokens, env, args.paced * intake)
        report.update(paced)
    journal.stop.set()
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
