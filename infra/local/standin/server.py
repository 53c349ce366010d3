"""The HTTP layer (stdlib ThreadingHTTPServer, loopback only) and the `python -m infra.local.standin` CLI."""

from __future__ import annotations

import argparse
import ipaddress
import signal
import socket
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote, urlsplit

from infra.local.standin.app import App
from infra.local.standin.core import ApiError, Json, json_response
from infra.local.standin.seeding import load_seed

MAX_BODY = 10 * 1024 * 1024


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 256  # benchmarks open many connections at once
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], app: App, verbose: bool) -> None:
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        self.app = app
        self.verbose = verbose
        super().__init__(addr, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client libraries reuse connections
    server_version = "rampart-standin/1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; avoid 40 ms stalls
    timeout = 120  # idle keep-alive connections end eventually, so threads do not pile up
    server: _HTTPServer

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write(f"standin: {format % args}\n")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass  # _serve logs one line per request itself, and only with --verbose

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > MAX_BODY:
            raise ValueError(f"Content-Length {length} out of range 0..{MAX_BODY}")
        return self.rfile.read(length) if length else b""

    def _serve(self, method: str) -> None:
        started = time.perf_counter()
        split = urlsplit(self.path)
        path = unquote(split.path)
        try:
            body = self._read_body()
        except ValueError as e:
            self.close_connection = True  # the stream position is unknown now
            resp = json_response(400, ApiError(400, f"Bad request body: {e}").payload())
        else:
            try:
                resp = self.server.app.handle(method, path, split.query, body)
            except Exception as e:  # noqa: BLE001 (a stand-in bug answers 500 with its traceback on stderr)
                traceback.print_exc(file=sys.stderr)
                resp = json_response(500, ApiError(500, f"stand-in bug: {type(e).__name__}: {e}").payload())
        if resp.drop:
            self.close_connection = True
            return
        try:
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(len(resp.body)))
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(resp.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        if self.server.verbose:
            ms = (time.perf_counter() - started) * 1000
            sys.stderr.write(f"standin: {method} {self.path} -> {resp.status} {ms:.1f}ms\n")


def check_loopback(host: str) -> None:
    """Refuse anything but a loopback address: the stand-in has no authentication."""
    try:
        ok = ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"expected a loopback address such as 127.0.0.1, found {host!r}: "
                         "the stand-in has no authentication and must not be reachable from elsewhere")


class StandinServer:
    """The stand-in bound to a loopback port; `start()` serves from a daemon thread (in-process tests)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, seed: Json | None = None,
                 verbose: bool = False, log_size: int = 2000, fault_seed: int = 0) -> None:
        check_loopback(host)
        self.app = App(seed=seed, log_size=log_size, fault_seed=fault_seed)
        self.httpd = _HTTPServer((host, port), self.app, verbose)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        host = self.httpd.server_address[0]
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"

    def start(self) -> StandinServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="standin", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever(poll_interval=0.25)

    def stop(self) -> None:
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.httpd.server_close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.standin",
                                     description="Local stand-in for Cloud Run Admin v2 and Cloud KMS v1.")
    parser.add_argument("--port", type=int, default=8089, help="0 lets the OS pick (see --port-file)")
    parser.add_argument("--host", default="127.0.0.1", help="a loopback address; nothing else is accepted")
    parser.add_argument("--seed", help="seed file (JSON, format in the package docstring)")
    parser.add_argument("--port-file", help="write the bound port here once listening")
    parser.add_argument("--log-size", type=int, default=2000, help="request log ring buffer size")
    parser.add_argument("--fault-seed", type=int, default=0, help="seed of the fault-probability RNG")
    parser.add_argument("--verbose", action="store_true", help="one stderr line per request")
    args = parser.parse_args(argv)
    try:
        check_loopback(args.host)
        seed = load_seed(args.seed) if args.seed else None
        server = StandinServer(args.host, args.port, seed=seed, verbose=args.verbose,
                               log_size=args.log_size, fault_seed=args.fault_seed)
    except (ValueError, TypeError, ApiError, OSError) as e:
        print(f"standin: {e}", file=sys.stderr)
        return 2

    def _stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    if args.port_file:
        tmp = Path(args.port_file + ".tmp")
        tmp.write_text(str(server.port))
        tmp.replace(args.port_file)  # atomic: a reader never sees a half-written port
    print(f"standin: listening on {server.url}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.httpd.server_close()
    return 0
