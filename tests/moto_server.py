#!/usr/bin/env python3
"""moto's server, handling one request at a time.

`moto_server` answers on many threads, and its DynamoDB checks a put's condition and stores the
item as two steps; under concurrent requests two conditional puts can both succeed, which real
DynamoDB never allows. Served one request at a time, every conditional write is atomic as in AWS,
so the idempotency tests test the adapter, not the emulator's races.

Usage: moto_server.py HOST PORT
"""

import os
import sys

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    os.environ.setdefault("MOTO_PORT", str(port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(host, port, app, threaded=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
