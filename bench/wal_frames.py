#!/usr/bin/env python3
"""Which of the embedded store's tables and indexes the alert load writes, page by page.

Starts the runner on a fresh data directory, registers people, presses alerts with wrk as
bench/load.sh does, and kills the runner (SIGKILL, so nothing checkpoints the WAL) while the load
is on. Each frame of the WAL it leaves is one page written by one commit; this counts the frames,
and the distinct pages, by the table or index that owns the page (SQLite's dbstat).

    python3 bench/wal_frames.py RUNNER [--people 1000] [--seconds 3]

Standard library only (with the Debian sqlite3 module's dbstat); loopback only.
"""

import argparse
import collections
import os
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import load  # noqa: E402


def frames(wal):
    """(page number, is the last frame of a commit) of every frame in the WAL file."""
    data = wal.read_bytes()
    page_size = struct.unpack(">I", data[8:12])[0]
    out, offset = [], 32
    while offset + 24 + page_size <= len(data):
        page, commit_size = struct.unpack(">II", data[offset : offset + 8])
        out.append((page, commit_size != 0))
        offset += 24 + page_size
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("runner")
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=3, help="load before the kill")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="wal-frames-"))
    data = work / "data"
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    runner = subprocess.Popen(
        [args.runner, "serve", "--addr", "127.0.0.1:%d" % port, "--data-dir", str(data)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ, RUST_LOG="warn"),
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        tokens = work / "tokens.txt"
        tokens.write_text("\n".join(load.register(port, args.people)) + "\n")
        env = dict(os.environ, TOKENS=str(tokens), RUN=str(os.getpid()), THREADS="2")
        wrk = subprocess.Popen(
            ["wrk", "-t2", "-c32", "-d%ds" % (args.seconds + 2), "-s",
             str(HERE / "load" / "alerts.lua"), "http://127.0.0.1:%d/v1/alerts" % port],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )
        time.sleep(args.seconds)
        runner.send_signal(signal.SIGKILL)
        runner.wait()
        wrk.wait()
        # A copy, so that opening it (which may recover the WAL) leaves the evidence as it was.
        copy = work / "copy"
        copy.mkdir()
        for path in data.glob("alert-button.sqlite3*"):
            shutil.copy(path, copy / path.name)
        written = frames(copy / "alert-button.sqlite3-wal")
        db = sqlite3.connect("file:%s?mode=ro" % (copy / "alert-button.sqlite3"), uri=True)
        owner = dict(db.execute("SELECT pageno, name FROM dbstat"))
        alerts = db.execute("SELECT count(*) FROM alerts").fetchone()[0]
    finally:
        if runner.poll() is None:
            runner.kill()
        shutil.rmtree(work, ignore_errors=True)

    by_tree = collections.Counter(owner.get(page, "(free)") for page, _ in written)
    distinct = collections.Counter(owner.get(page, "(free)") for page in {p for p, _ in written})
    commits = sum(1 for _, last in written if last)
    print("%d frames in the WAL, %d commits, %d alerts in the store" % (len(written), commits, alerts))
    print("%7s %6s  %s" % ("frames", "share", "table or index (distinct pages)"))
    for name, count in by_tree.most_common():
        print("%7d %5.1f%%  %s (%d)" % (count, 100 * count / len(written), name, distinct[name]))


if __name__ == "__main__":
    main()
