"""Local stand-ins for the alert receivers: a Slack incoming webhook and an SMTP server.

Both listen on 127.0.0.1 only, record what the real clients (slack_sdk's
WebhookClient, smtplib) sent, and can be told to fail, so tests can check the
exact payloads and the retry paths.
"""

from __future__ import annotations

import email
import email.policy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self, TypeVar

from infra.local.procs import LOOPBACK, free_port

T = TypeVar("T")


def _wait(cond: threading.Condition, items: Callable[[], list[T]], n: int, timeout: float, what: str) -> list[T]:
    deadline = time.monotonic() + timeout
    with cond:
        while len(items()) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"expected {n} {what} within {timeout}s; found {len(items())}")
            cond.wait(left)
        return list(items())


@dataclass(frozen=True, slots=True)
class SlackPost:
    """One POST the webhook received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class SlackReceiver:
    """An incoming-webhook stand-in: records JSON posts, answers 200 "ok" like Slack."""

    def __init__(self) -> None:
        self.port = free_port()
        self.token_path = "/services/T0RAMPART/B0RAMPART/notARealToken123"
        self._posts: list[SlackPost] = []
        self._failures: list[tuple[int, str]] = []
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.attempts = 0  # every POST, failed or not

    @property
    def url(self) -> str:
        """The webhook URL to put in the secret file."""
        return f"http://{LOOPBACK}:{self.port}{self.token_path}"

    def start(self) -> Self:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with receiver._cond:
                    receiver.attempts += 1
                    failure = receiver._failures.pop(0) if receiver._failures else None
                if failure is not None:
                    self._answer(*failure)
                    return
                if self.path != receiver.token_path:
                    self._answer(404, "no_service")
                    return
                try:
                    body = json.loads(raw)
                except ValueError:
                    self._answer(400, "invalid_payload")
                    return
                post = SlackPost(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with receiver._cond:
                    receiver._posts.append(post)
                    receiver._cond.notify_all()
                self._answer(200, "ok")

            def _answer(self, status: int, text: str) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the request line holds the webhook token: keep it out of test output

        self._server = ThreadingHTTPServer((LOOPBACK, self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="slack-receiver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening (connections are then refused)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def set_down(self, down: bool) -> None:
        """Down: nothing listens on the port, as when Slack is unreachable. Up: listen again on it."""
        if down:
            self.stop()
        elif self._server is None:
            self.start()

    def fail_next(self, n: int, status: int = 500, body: str = "internal_error") -> None:
        """Answer the next `n` posts with `status` and `body` instead of recording them."""
        with self._cond:
            self._failures.extend([(status, body)] * n)

    @property
    def posts(self) -> list[SlackPost]:
        with self._cond:
            return list(self._posts)

    def wait_for(self, n: int, timeout: float = 5.0) -> list[SlackPost]:
        """Block until `n` posts were recorded; TimeoutError otherwise."""
        return _wait(self._cond, lambda: self._posts, n, timeout, "Slack posts")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True, slots=True)
class ReceivedMail:
    """One message the SMTP server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes = field(repr=False)


class SmtpReceiver:
    """An aiosmtpd server on 127.0.0.1 (no STARTTLS, no AUTH) that records parsed messages."""

    def __init__(self) -> None:
        self.port = free_port()
        self._mails: list[ReceivedMail] = []
        self._reject = 0
        self._cond = threading.Condition()
        self._controller: Any = None
        self.attempts = 0  # every DATA, rejected or not

    def start(self) -> Self:
        from aiosmtpd.controller import Controller

        receiver = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                with receiver._cond:
                    receiver.attempts += 1
                    if receiver._reject > 0:
                        receiver._reject -= 1
                        return "451 4.3.0 Try again later"
                raw = envelope.original_content or envelope.content
                msg = email.message_from_bytes(raw, policy=email.policy.default)
                assert isinstance(msg, EmailMessage)
                mail = ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), msg, raw)
                with receiver._cond:
                    receiver._mails.append(mail)
                    receiver._cond.notify_all()
                return "250 Message accepted for delivery"

        # server_hostname avoids a getfqdn() DNS lookup per connection.
        self._controller = Controller(Handler(), hostname=LOOPBACK, port=self.port, server_hostname="rampart.test")
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def reject_next(self, n: int) -> None:
        """Answer DATA of the next `n` messages with 451 (a transient failure)."""
        with self._cond:
            self._reject += n

    @property
    def mails(self) -> list[ReceivedMail]:
        with self._cond:
            return list(self._mails)

    def wait_for(self, n: int, timeout: float = 5.0) -> list[ReceivedMail]:
        """Block until `n` messages were accepted; TimeoutError otherwise."""
        return _wait(self._cond, lambda: self._mails, n, timeout, "e-mails")

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
