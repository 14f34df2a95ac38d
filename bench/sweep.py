#!/usr/bin/env python3
"""The escalation sweep on a raid's queue: many alerts of one consulate, all due at once.

For each run, two stacks are seeded alike in moto: people registered and alerts pressed in Los
Angeles (one consulate's queue, as in a raid) through alert-intake. Once the alerts are a minute old, each stack
gets one escalation binary (`--before`, then `--after`), started with
`ALERT_BUTTON_ESCALATE_AFTER_MINUTES=1` and given the scheduler's event after its init; the script
times that invocation (handed out -> answered) and checks the sweep escalated every alert.

    bench/sweep.py --before DIR --after DIR [--alerts 200] [--runs 2] [--latency-ms 10]

DIR holds an `alert-escalation` binary; `--after` also supplies `alert-intake` for the seeding.
moto is started here on many threads, each request held `--latency-ms` before it is served: a
stand-in for the network round trip to DynamoDB, which requests in flight together overlap, as
they do in AWS (the test suite's moto serves one request at a time, and so would show nothing of
the sweep's concurrency). Needs boto3 and moto[server] (tests/requirements.txt, in .venv).
"""

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cold_start  # noqa: E402  (the runtime API, moto and the stack are shared with it)

# Registrations and alerts are limited per source address and per person (20 an hour each).
ALERTS_PER_PERSON = 20


def seed(intake, stack, alerts, first_address):
    """Registers people and presses `alerts` alerts on `stack` (the bundled event's place); their ids."""
    ids = []
    with cold_start.Function(intake, stack) as f:
        people = (alerts + ALERTS_PER_PERSON - 1) // ALERTS_PER_PERSON
        for n in range(people):
            address = "198.51.%d.%d" % divmod(first_address + n, 250)
            request_id = f.api.invoke(cold_start.register_event(address))
            _, reply = f.api.answer(request_id)
            if reply.get("statusCode") != 201:
                sys.exit("registration failed: %s" % json.dumps(reply)[:300])
            token = json.loads(reply["body"])["token"]
            for k in range(min(ALERTS_PER_PERSON, alerts - len(ids))):
                event = cold_start.alert_event(token, "sweep-%d-%d" % (n, k))
                request_id = f.api.invoke(event)
                _, reply = f.api.answer(request_id)
                if reply.get("statusCode") != 201:
                    sys.exit("alert failed: %s" % json.dumps(reply)[:300])
                ids.append(json.loads(reply["body"])["alert_id"])
    return ids


def sweep(binary, stack):
    """(ms from the event handed out to the answer, the sweep's answer)."""
    env = dict(stack, ALERT_BUTTON_ESCALATE_AFTER_MINUTES="1")
    scheduled = {"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": {}}
    with cold_start.Function(binary, env) as f:
        request_id = f.api.invoke(scheduled)
        at, reply = f.api.answer(request_id, timeout=300)
        return (at - f.api.handed_out[request_id]) * 1000, reply


def serve_moto(host, port, latency_ms):
    """moto on many threads, each request held `latency_ms` first. Only for this script: moto's
    conditional writes are not atomic under concurrent requests, and the sweep's writes here are
    each to an alert of its own."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)

    def delayed(environ, start_response):
        time.sleep(latency_ms / 1000)
        return app(environ, start_response)

    run_simple(host, port, delayed, threaded=True, request_handler=MotoRequestHandler)


def start_moto(latency_ms):
    def server(port):
        return [sys.executable, __file__, "--serve-moto", str(port), str(latency_ms)]

    return cold_start.start_moto(server, "/tmp/sweep-moto.log")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", required=True)
    parser.add_argument("--after", required=True)
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--latency-ms", type=float, default=10)
    args = parser.parse_args()
    builds = [("before", Path(args.before)), ("after", Path(args.after))]
    intake = Path(args.after) / "alert-intake"

    moto, moto_url = start_moto(args.latency_ms)
    try:
        # One stack per build and run, seeded before any sweep so they come due together.
        stacks = []
        for run in range(args.runs):
            for name, _ in builds:
                stack = cold_start.create_stack(moto_url)
                first = len(stacks) * (args.alerts // ALERTS_PER_PERSON + 1)
                seed(intake, stack, args.alerts, first)
                stacks.append((run, name, stack, time.monotonic()))
        wait = 61 - (time.monotonic() - stacks[-1][3])
        if wait > 0:
            time.sleep(wait)
        results = {name: [] for name, _ in builds}
        for run, name, stack, _ in stacks:
            binary = dict(builds)[name] / "alert-escalation"
            ms, reply = sweep(binary, stack)
            if reply.get("escalated") != args.alerts or reply.get("failed"):
                sys.exit("%s run %d: the sweep answered %s" % (name, run + 1, json.dumps(reply)))
            results[name].append(ms)
            print("%-6s run %d: %d alerts escalated in %.0f ms" % (name, run + 1, args.alerts, ms))
        before = statistics.median(results["before"])
        after = statistics.median(results["after"])
        print(
            "median: before %.0f ms, after %.0f ms, after / before %.2f (moto held each request %g ms)"
            % (before, after, after / before, args.latency_ms)
        )
    finally:
        moto.kill()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve-moto"]:
        serve_moto("127.0.0.1", int(sys.argv[2]), float(sys.argv[3]))
    else:
        main()
