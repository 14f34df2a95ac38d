#!/usr/bin/env python3
"""Cold starts of the Lambda functions, side by side with a hello-world `lambda_http` binary.

A minimal Lambda Runtime API (the 2018-06-01 interface the runtime crate polls), one per process
started, serves on loopback.
For each binary, several times: the event is queued, the binary is started, and the script records
exec -> first `GET .../invocation/next` (the init phase) and exec -> first answered invocation.
For alert-intake it then sends nine more alerts and compares the first alert after the cold start
with a warm one. AWS calls go to moto on loopback (started here unless MOTO_URL is set).

    bench/cold_start.py [--runs 5] [--target-dir target/release] [--json out.json] [--instructions]

Build first (one at a time on a small machine):
    cargo build --release -p hello-lambda -p consulate-lookup -p alert-intake \
        -p notification-fanout -p alert-escalation -p staff-api -p sms-replies -p delivery-receipts
Needs boto3 and moto[server] (tests/requirements.txt, in .venv).
"""

import argparse
import copy
import json
import os
import queue
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Polls that reached a process's runtime API after the process was killed (the binary's name).
LATE_POLLS = []
# The TLS library's variables naming trusted roots to read at start-up instead of the bundled ones.
TRUST_STORE_VARIABLES = ("SSL_CERT_FILE", "SSL_CERT_DIR")
EVENTS = ROOT / "tests" / "events"
PREFIX = "/2018-06-01/runtime"


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A killed process's connection, reset mid-request: expected, not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class RuntimeApi:
    """One process's runtime API, on a port of its own: events go out in order on `/next`;
    answers come back timed.

    One server per process, not one for all: a killed process's last `GET /next` (sent as soon as
    it had posted its answer) can reach the server after the next process's event is queued; on a
    shared server its handler then took that event, and the next process waited on `/next` until
    the answer timeout, with nothing in its log (and, when it was only a poll, set the next
    process's `first_poll` before it started). Such late polls now reach a closed server and are
    counted (`LATE_POLLS`)."""

    def __init__(self, name):
        self.name = name
        self.events = queue.Queue()
        self.answers = queue.Queue()
        self.first_poll = None
        self.handed_out = {}
        self.closed = False
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status, body=b"", headers=()):
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != PREFIX + "/invocation/next":
                    return self.reply(404)
                if api.closed:
                    # The process this server was for is gone. On a shared server this poll would
                    # have read the queue the next process's event goes to, and taken it.
                    LATE_POLLS.append(api.name)
                    self.close_connection = True
                    return self.reply(410)
                if api.first_poll is None:
                    api.first_poll = time.perf_counter()
                request_id, body = api.events.get()
                api.handed_out[request_id] = time.perf_counter()
                deadline = int(time.time() * 1000) + 30_000
                self.reply(
                    200,
                    body,
                    [
                        ("Lambda-Runtime-Aws-Request-Id", request_id),
                        ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                        (
                            "Lambda-Runtime-Invoked-Function-Arn",
                            "arn:aws:lambda:us-east-1:123456789012:function:bench",
                        ),
                        ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
                        ("Content-Type", "application/json"),
                    ],
                )

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                now = time.perf_counter()
                parts = self.path[len(PREFIX):].strip("/").split("/")
                if parts[:1] == ["init"]:
                    api.answers.put(("init-error", now, body))
                elif len(parts) == 3 and parts[0] == "invocation":
                    api.answers.put((parts[2], now, body, parts[1]))
                self.reply(202, b'{"status":"OK"}', [("Content-Type", "application/json")])

        self.server = Server(("127.0.0.1", 0), Handler)
        self.address = "127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        """After the process is killed: no more events; a poll still arriving is counted. The
        connections already open keep their handler threads, which is how late polls arrive."""
        self.closed = True
        self.server.shutdown()
        self.server.server_close()

    def invoke(self, event):
        request_id = str(uuid.uuid4())
        self.events.put((request_id, json.dumps(event).encode()))
        return request_id

    def answer(self, request_id, timeout=60):
        kind, at, body, *rest = self.answers.get(timeout=timeout)
        if kind == "init-error":
            raise RuntimeError("init failed: %s" % body[:500].decode(errors="replace"))
        if kind != "response" or rest[0] != request_id:
            raise RuntimeError("invocation failed: %s" % body[:500].decode(errors="replace"))
        return at, json.loads(body or b"null")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto(server=None, log_path="/tmp/cold-start-moto.log"):
    """moto on a free loopback port, as the test suite serves it unless `server(port)` gives
    another command; (process, url) once it answers."""
    port = free_port()
    if server is None:
        command = [sys.executable, str(ROOT / "tests" / "moto_server.py"), "127.0.0.1", str(port)]
    else:
        command = server(port)
    log = open(log_path, "w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = "http://127.0.0.1:%d" % port
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("moto did not start; see %s" % log_path)


def create_stack(moto_url):
    """The table (both indexes of the template's), topic and service key secret the functions read."""
    import boto3

    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    suffix = uuid.uuid4().hex
    name = "alert-button-" + suffix
    ddb = session.client("dynamodb", endpoint_url=moto_url)
    ddb.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": a, "AttributeType": t}
            for a, t in [
                ("pk", "S"),
                ("sk", "S"),
                ("consulate_status", "S"),
                ("created_ms", "N"),
                ("next_channel_due", "S"),
                ("next_channel_ms", "N"),
            ]
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_consulate",
                "KeySchema": [
                    {"AttributeName": "consulate_status", "KeyType": "HASH"},
                    {"AttributeName": "created_ms", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": "by_next_channel",
                "KeySchema": [
                    {"AttributeName": "next_channel_due", "KeyType": "HASH"},
                    {"AttributeName": "next_channel_ms", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
        ],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    topic = session.client("sns", endpoint_url=moto_url).create_topic(Name=name)["TopicArn"]
    secret = session.client("secretsmanager", endpoint_url=moto_url).create_secret(
        Name=name, SecretString=secrets.token_urlsafe(48)
    )["ARN"]
    return {
        "AWS_ENDPOINT_URL": moto_url,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "ALERT_BUTTON_TABLE": name,
        "ALERT_BUTTON_TOPIC_ARN": topic,
        "ALERT_BUTTON_FAMILY_SMS": "direct",
        "ALERT_BUTTON_SERVICE_KEY_SECRET_ARN": secret,
    }


def event(name):
    return json.loads((EVENTS / name).read_text())


def register_event(source_ip):
    e = event("apigw-register.json")
    e["body"] = e["body"].replace("{{PHONE}}", "+13125550100")
    e["requestContext"]["http"]["sourceIp"] = source_ip
    return e


def alert_event(token, client_alert_id):
    e = event("apigw-alert.json")
    e["headers"]["authorization"] = "Bearer " + token
    body = json.loads(e["body"])
    body["client_alert_id"] = client_alert_id
    e["body"] = json.dumps(body)
    return e


def lambda_environment(binary, env, runtime_api):
    """What Lambda gives a function's process, with `env` and the runtime API at `runtime_api`."""
    # Lambda sets neither: a function reads the roots these name only where they are given.
    environment = {k: v for k, v in os.environ.items() if k not in TRUST_STORE_VARIABLES}
    environment.update(env)
    environment.update(
        {
            "AWS_LAMBDA_RUNTIME_API": runtime_api,
            "AWS_LAMBDA_FUNCTION_NAME": binary.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/" + binary.name,
            "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
            "RUST_LOG": "warn",
            # Lambda sets none; where a machine does, a failing poll would also walk the stack.
            "RUST_BACKTRACE": "0",
        }
    )
    return environment


class Function:
    """One process of `binary`, with a runtime API of its own (`self.api`)."""

    def __init__(self, binary, env, wrapper=()):
        self.binary, self.env, self.wrapper = binary, env, list(wrapper)
        self.api = RuntimeApi(binary.name)
        self.process = None

    def __enter__(self):
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            self.wrapper + [str(self.binary)],
            env=lambda_environment(self.binary, self.env, self.api.address),
            stdout=subprocess.DEVNULL,
            stderr=open("/tmp/cold-start-%s.log" % self.binary.name, "w"),
        )
        return self

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()
        self.api.close()


# A status other than success that a binary's first event is meant to get (see `main`).
EXPECTED_REFUSAL = {"staff-api": 401}


def http_ok(reply, binary):
    if not isinstance(reply, dict):
        return False
    status = reply.get("statusCode", 200)
    return status < 400 or status == EXPECTED_REFUSAL.get(binary.name)


def cold(binary, env, first_event, timeout):
    """(ms to the first poll, ms to the first answer) for one cold start."""
    with Function(binary, env) as f:
        api = f.api
        request_id = api.invoke(first_event)
        try:
            at, reply = api.answer(request_id, timeout)
        except queue.Empty:
            # Say where it stopped: never polled, polled and got nothing, or took the event.
            raise RuntimeError(
                "%s did not answer within %.0f s (alive: %s; polled: %s; event handed out: %s); "
                "see /tmp/cold-start-%s.log"
                % (
                    binary.name,
                    timeout,
                    f.process.poll() is None,
                    api.first_poll is not None,
                    request_id in api.handed_out,
                    binary.name,
                )
            )
        if not http_ok(reply, binary):
            raise RuntimeError("%s answered %s" % (binary.name, json.dumps(reply)[:300]))
        return (api.first_poll - f.started) * 1000, (at - f.started) * 1000


def callgrind(out_file):
    return [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=%s" % out_file,
        "--dump-line=no",
        "--compress-strings=no",
    ]


def instructions_counted(out_file):
    """The total of the instructions callgrind counted, from its output file."""
    for line in Path(out_file).read_text().splitlines():
        if line.startswith("totals:") or line.startswith("summary:"):
            return int(line.split()[1])
    raise RuntimeError("no totals in %s" % out_file)


def instructions(binary, env, first_event, timeout, scratch):
    """Instructions executed (valgrind's callgrind: a count, the same from run to run whatever
    else the machine does) from exec to the end of init, and to the first answer.

    Init: the process is given a runtime API that refuses connections, so it exits at its first
    poll. First answer: it is handed `first_event`, then the API closes, so it exits at its next
    poll. Both counts include that failed poll and the exit, as hello-lambda's do."""
    init_out = scratch / ("%s.init.callgrind" % binary.name)
    closed = "127.0.0.1:%d" % free_port()
    subprocess.run(
        callgrind(init_out) + [str(binary)],
        env=lambda_environment(binary, env, closed),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=timeout,
    )
    answer_out = scratch / ("%s.answer.callgrind" % binary.name)
    late = len(LATE_POLLS)
    with Function(binary, env, callgrind(answer_out)) as f:
        request_id = f.api.invoke(first_event)
        _, reply = f.api.answer(request_id, timeout)
        if not http_ok(reply, binary):
            raise RuntimeError("%s answered %s" % (binary.name, json.dumps(reply)[:300]))
        f.api.close()
        f.process.wait(timeout=timeout)
    # The poll that found the API closed ended the process, as meant: not a late poll.
    del LATE_POLLS[late:]
    return instructions_counted(init_out), instructions_counted(answer_out)


def intake_first_and_tenth(binary, env, token):
    """Invocation times (handed out -> answered, ms) of ten alerts right after a cold start."""
    times = []
    with Function(binary, env) as f:
        api = f.api
        for n in range(10):
            request_id = api.invoke(alert_event(token, "bench-%s" % uuid.uuid4().hex))
            at, reply = api.answer(request_id)
            if reply.get("statusCode") != 201:
                raise RuntimeError("alert-intake answered %s" % json.dumps(reply)[:300])
            times.append((at - api.handed_out[request_id]) * 1000)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--target-dir", default=str(ROOT / "target" / "release"))
    parser.add_argument("--json")
    parser.add_argument("--answer-timeout", type=float, default=60)
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count each binary's instructions to the end of init and to its first answer "
        "(one run each under valgrind's callgrind)",
    )
    args = parser.parse_args()
    target = Path(args.target_dir)

    moto = None
    moto_url = os.environ.get("MOTO_URL")
    if not moto_url:
        moto, moto_url = start_moto()
    try:
        stack = create_stack(moto_url)
        nearest = event("apigw-nearest.json")
        stream = event("dynamodb-stream-batch.json")
        scheduled = {"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": {}}
        staff = json.loads(
            json.dumps(event("apigw-acknowledge.json"))
            .replace("{{ALERT_ID}}", str(uuid.uuid4()))
            .replace("{{TOKEN}}", "not-a-staff-token")
        )
        reply = json.loads(
            json.dumps(event("sns-inbound-sms.json"))
            .replace("{{PHONE}}", "+13125550199")
            .replace("{{KEYWORD}}", "STOP")
            .replace("{{TEXT}}", "STOP")
        )
        # (row, binary, environment, first event; alert-intake's are made per run)
        functions = [
            ("hello-lambda", "hello-lambda", {}, nearest),
            ("consulate-lookup", "consulate-lookup", {}, nearest),
            ("alert-intake", "alert-intake", stack, None),
            ("notification-fanout", "notification-fanout", stack, stream),
            ("alert-escalation", "alert-escalation", stack, scheduled),
            # Without a pool configured no staff token is accepted: the first answer is a 401,
            # after the init every staff request pays.
            ("staff-api", "staff-api", stack, staff),
            # A STOP from a number no contact has: the lookup of who lists it, nothing changed.
            ("sms-replies", "sms-replies", stack, reply),
            # A receipt for a message id the ledger does not know: one read, passed over.
            ("delivery-receipts", "delivery-receipts", stack, event("cloudwatch-logs-sms-delivered.json")),
        ]
        # Where this machine names its trust store (SSL_CERT_FILE, SSL_CERT_DIR), intake once more
        # reading it at init, as every function did before the roots were compiled in.
        machine_roots = {k: os.environ[k] for k in TRUST_STORE_VARIABLES if os.environ.get(k)}
        if machine_roots:
            row = "alert-intake, machine roots"
            functions.append((row, "alert-intake", dict(stack, **machine_roots), None))
        missing = [name for _, name, _, _ in functions if not (target / name).is_file()]
        if missing:
            sys.exit("not built in %s: %s (see --help)" % (target, ", ".join(missing)))

        # People for the intake runs, registered through the function itself (each from its own
        # address: registrations are limited per address).
        intake = target / "alert-intake"
        tokens = []
        with Function(intake, stack) as f:
            for n in range(3 * args.runs):
                request_id = f.api.invoke(register_event("203.0.113.%d" % (n + 1)))
                _, reply = f.api.answer(request_id)
                if reply.get("statusCode") != 201:
                    sys.exit("registration failed: %s" % json.dumps(reply)[:300])
                tokens.append(json.loads(reply["body"])["token"])

        results = {}
        intake_rows = 0
        for row, name, env, first in functions:
            binary = target / name
            samples = []
            people = tokens[intake_rows * args.runs :]
            if name == "alert-intake":
                intake_rows += 1
            try:
                for run in range(args.runs):
                    if name == "alert-intake":
                        first = alert_event(people[run], "cold-%s" % uuid.uuid4().hex)
                    samples.append(cold(binary, env, copy.deepcopy(first), args.answer_timeout))
            except RuntimeError as err:
                print("%s: not measured: %s" % (row, err))
                continue
            results[row] = {
                "size_bytes": binary.stat().st_size,
                "init_ms": statistics.median(s[0] for s in samples),
                "init_fastest_ms": min(s[0] for s in samples),
                "first_answer_ms": statistics.median(s[1] for s in samples),
                "samples": samples,
            }
        counted = {}
        if args.instructions:
            scratch = Path(tempfile.mkdtemp(prefix="cold-start-callgrind-"))
            for row, name, env, first in functions:
                # The machine-roots row differs only in its environment's trust store.
                if row not in results or any(k in env for k in TRUST_STORE_VARIABLES):
                    continue
                if name == "alert-intake":
                    first = alert_event(tokens[0], "counted-%s" % uuid.uuid4().hex)
                binary = target / name
                counted[row] = instructions(
                    binary, env, copy.deepcopy(first), args.answer_timeout * 20, scratch
                )
        tenths = [
            intake_first_and_tenth(intake, stack, tokens[2 * args.runs + run])
            for run in range(args.runs)
        ]
        first = statistics.median(t[0] for t in tenths)
        tenth = statistics.median(t[9] for t in tenths)
        warm = statistics.median(x for t in tenths for x in t[1:])
    finally:
        if moto:
            moto.terminate()

    hello = results["hello-lambda"]
    print("median of %d cold starts each; memory size 1024 MB declared, no limit applied" % args.runs)
    print(
        "%-28s %10s %12s %8s %8s %16s %8s"
        % ("binary", "size MB", "init ms", "fastest", "× hello", "first answer ms", "× hello")
    )
    for name, r in results.items():
        print(
            "%-28s %10.2f %12.2f %8.2f %8.2f %16.2f %8.2f"
            % (
                name,
                r["size_bytes"] / 1e6,
                r["init_ms"],
                r["init_fastest_ms"],
                r["init_ms"] / hello["init_ms"],
                r["first_answer_ms"],
                r["first_answer_ms"] / hello["first_answer_ms"],
            )
        )
    if counted:
        print("instructions counted by callgrind, one run each (the same from run to run)")
        print("%-28s %16s %8s %18s %8s" % ("binary", "to end of init", "× hello", "to first answer", "× hello"))
        hello_init, hello_answer = counted["hello-lambda"]
        for name, (init, answer) in counted.items():
            print(
                "%-28s %16d %8.2f %18d %8.2f"
                % (name, init, init / hello_init, answer, answer / hello_answer)
            )
    print(
        "alert-intake against moto: first alert after a cold start %.2f ms, tenth %.2f ms "
        "(× %.2f), median warm %.2f ms" % (first, tenth, first / tenth, warm)
    )
    print(
        "polls that arrived after their process was killed: %d (refused; on one shared runtime "
        "API each would have taken the next process's event)" % len(LATE_POLLS)
    )
    if args.json:
        results["intake_invocations_ms"] = tenths
        results["late_polls"] = len(LATE_POLLS)
        results["instructions"] = counted
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
