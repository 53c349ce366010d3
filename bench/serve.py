"""Serve one function exactly as `functions-framework` does, with gunicorn's access log on.

    python -m bench.serve --target rampart --source main.py --port P --access-log PATH

The same calls as functions-framework's CLI (`create_app(target, source, "cloudevent")`, then
`create_server(app, debug=False)`: gunicorn, 1 worker, THREADS threads), plus gunicorn's
`accesslog`: one line per request, `STATUS MICROSECONDS`. The capacity bench serves Rampart and
the no-op function this way, so both pay the same log line, and counts deliveries through the
Pub/Sub emulator from it (Rampart itself logs nothing for an irrelevant event).
"""

from __future__ import annotations

import argparse
import sys

ACCESS_LOG_FORMAT = "%(s)s %(D)s"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.serve")
    p.add_argument("--target", required=True)
    p.add_argument("--source", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--access-log", required=True)
    a = p.parse_args(argv)
    from functions_framework import create_app
    from functions_framework._http import create_server

    app = create_app(a.target, a.source, "cloudevent")
    create_server(app, False, accesslog=a.access_log, access_log_format=ACCESS_LOG_FORMAT).run(a.host, a.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
