#!/usr/bin/env python3
"""What the disk allows: durable SQLite commits (WAL, synchronous=FULL, as the embedded store opens
its file) with one row per commit and with 50, and append + fdatasync of one journal line, each for
a few seconds in DIR (put it on the disk the runner's data directory is on).

    bench/sqlite_commits.py DIR [--seconds 3]
"""

import argparse
import json
import os
import sqlite3
import tempfile
import time


def commits(path, rows_per_commit, seconds):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE IF NOT EXISTS items (pk TEXT PRIMARY KEY, body BLOB)")
    body = os.urandom(600)
    rows = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        db.execute("BEGIN IMMEDIATE")
        for _ in range(rows_per_commit):
            db.execute("INSERT INTO items VALUES (?, ?)", ("%d-%d" % (rows_per_commit, rows), body))
            rows += 1
        db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return rows / elapsed


def appends(path, seconds):
    line = b"x" * 700 + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    count = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        os.write(fd, line)
        os.fdatasync(fd)
        count += 1
    elapsed = time.perf_counter() - started
    os.close(fd)
    return count / elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("dir")
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        result = {
            "sqlite_rows_per_s_1_per_commit": commits(os.path.join(tmp, "a.db"), 1, args.seconds),
            "sqlite_rows_per_s_50_per_commit": commits(os.path.join(tmp, "b.db"), 50, args.seconds),
            "append_fdatasync_per_s": appends(os.path.join(tmp, "j.jsonl"), args.seconds),
        }
    print("one durable SQLite commit per row: %.0f rows/s" % result["sqlite_rows_per_s_1_per_commit"])
    print("50 rows per durable commit:        %.0f rows/s" % result["sqlite_rows_per_s_50_per_commit"])
    print("append + fdatasync of one line:    %.0f lines/s" % result["append_fdatasync_per_s"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
