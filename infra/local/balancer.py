"""A round-robin HTTP forwarder on loopback: the load balancer Cloud Run puts in front of a
function's instances, so one Pub/Sub push subscription reaches several local workers (the emulator
pushes to one endpoint). A backend that refuses the connection is skipped; if none answers, the
push gets a 503, and one that dies mid-request a 502, and Pub/Sub redelivers, as from Cloud Run."""

from __future__ import annotations

import itertools
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

from infra.local.procs import LOOPBACK, free_port


class Balancer:
    """POSTs to http://127.0.0.1:port/... go to the backends in turn."""

    def __init__(self, backends: list[str], timeout: float = 600.0) -> None:
        self.backends = list(backends)
        self.port = free_port()
        self.timeout = timeout
        self._turn = itertools.count()
        self._server: ThreadingHTTPServer | None = None
        self.forwarded: list[tuple[str, int]] = []  # (backend, status)
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> Self:
        balancer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "ce-id", "ce-type",
                                                                                   "ce-source", "ce-specversion", "ce-time")}
                status, reply = balancer.forward(self.path, body, headers)
                self.send_response(status)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer((LOOPBACK, self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="balancer", daemon=True).start()
        return self

    def forward(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        start = next(self._turn)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        for i in range(len(self.backends)):
            backend = self.backends[(start + i) % len(self.backends)]
            req = urllib.request.Request(backend + path, data=body, headers=headers, method="POST")
            try:
                with opener.open(req, timeout=self.timeout) as resp:
                    status, reply = resp.status, resp.read()
            except urllib.error.HTTPError as e:
                status, reply = e.code, e.read()
            except urllib.error.URLError as e:
                if isinstance(e.reason, ConnectionRefusedError):
                    continue  # this instance is down: try the next, as a load balancer would
                return 502, b"the instance dropped the connection"
            except OSError:
                return 502, b"the instance dropped the connection"  # it died mid-request: Pub/Sub redelivers
            with self._lock:
                self.forwarded.append((backend, status))
            return status, reply
        return 503, b"no backend answered"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
