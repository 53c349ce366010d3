"""Send one formatted alert on Slack, e-mail or Pub/Sub; secrets come from files only.

Each sender raises `ChannelError` (transient or permanent) with a message that
never contains a secret: the webhook URL and the SMTP password are scrubbed from
error text, and the original exception is not chained (its text may hold them).
Client libraries are imported on first use, not at import.
"""

from __future__ import annotations

import http.client
import logging
import os
import smtplib
import ssl
import threading
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shared.alerts import format as fmt

if TYPE_CHECKING:
    from shared.alerts.config import EmailConfig, PubSubConfig, SlackConfig

_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class ChannelError(Exception):
    """A channel could not deliver; `transient` says whether a retry may help."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def read_secret(path: str, what: str) -> str:
    """The stripped contents of a secret file (a Secret Manager volume mount on Cloud Run)."""
    try:
        with open(path, encoding="utf-8") as f:
            value = f.read().strip()
    except FileNotFoundError:
        raise ChannelError(f"expected the {what} in file {path}; found no such file", transient=False) from None
    except OSError as e:
        raise ChannelError(f"expected to read the {what} from {path}; found {e.strerror}", transient=False) from None
    if not value:
        raise ChannelError(f"expected the {what} in file {path}; found an empty file", transient=False)
    return value


def scrub(text: str, *secrets: str) -> str:
    """`text` with every secret (and a URL's path and query, which carry Slack's token) replaced."""
    for secret in secrets:
        if not secret:
            continue
        parts = urlsplit(secret)
        for piece in (secret, parts.path, parts.query):
            if len(piece) >= 4:
                text = text.replace(piece, fmt.REDACTED)
    return text


# ---- Slack -----------------------------------------------------------------------------------------

_slack_logger: logging.Logger | None = None


def _quiet_logger() -> logging.Logger:
    """A logger for slack_sdk that never logs at DEBUG, where it would print the webhook URL."""
    global _slack_logger
    if _slack_logger is None:
        logger = logging.getLogger("rampart.alerts.slack_sdk")
        logger.setLevel(logging.WARNING)
        _slack_logger = logger
    return _slack_logger


def send_slack(cfg: SlackConfig, payload: dict[str, Any]) -> None:
    """POST a Block Kit payload to the incoming webhook; Slack answers 200 "ok"."""
    from slack_sdk.webhook import WebhookClient

    url = read_secret(cfg.webhook_url_file, "Slack webhook URL")
    parts = urlsplit(url)
    if not (parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS)):
        raise ChannelError(
            f"expected an https:// Slack webhook URL in {cfg.webhook_url_file}; found scheme {parts.scheme!r}",
            transient=False,
        )
    # Our own bounded retry is the only retry loop: slack_sdk's handlers would multiply it.
    client = WebhookClient(url, timeout=max(1, round(cfg.timeout_seconds)), logger=_quiet_logger(), retry_handlers=[])
    try:
        resp = client.send(text=payload["text"], blocks=payload["blocks"],
                           unfurl_links=payload.get("unfurl_links"), unfurl_media=payload.get("unfurl_media"))
    except (OSError, http.client.HTTPException, ValueError) as e:
        raise ChannelError(f"Slack webhook unreachable: {scrub(str(e), url)}", transient=True) from None
    if resp.status_code == 200:
        return
    body = scrub(str(resp.body or "")[:200], url)
    # 429 and 5xx are Slack's transient answers; 400/403/404/410 mean a bad payload or a dead webhook.
    transient = resp.status_code == 429 or resp.status_code >= 500
    raise ChannelError(f"Slack answered HTTP {resp.status_code} {body!r}", transient=transient)


# ---- E-mail ----------------------------------------------------------------------------------------


def build_email(cfg: EmailConfig, alert: fmt.Alert) -> EmailMessage:
    """One multipart/alternative message (text + HTML); headers built from validated or stripped values."""
    msg = _headers(cfg, alert, fmt.email_subject(alert, cfg.subject_prefix))
    msg.set_content(fmt.email_text(alert))
    msg.add_alternative(fmt.email_html(alert), subtype="html")
    return msg


def build_notice_email(cfg: EmailConfig, alert: fmt.Alert, note: str) -> EmailMessage:
    """A short follow-up saying a channel failed after this one had the alert."""
    msg = _headers(cfg, alert, fmt.header_safe(f"{cfg.subject_prefix} Delivery problem: {fmt.headline(alert)}", 250))
    msg.set_content(f"{fmt.plain_line(note)}\n\nAbout alert {alert.alert_id}: {fmt.plain_line(fmt.headline(alert))}\n")
    return msg


def _headers(cfg: EmailConfig, alert: fmt.Alert, subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = Address(display_name="Rampart", addr_spec=cfg.sender)
    msg["To"] = [Address(addr_spec=a) for a in cfg.recipients]
    msg["Date"] = formatdate(usegmt=True)
    # make_msgid would otherwise call getfqdn(), a DNS lookup on every alert.
    msg["Message-ID"] = make_msgid(idstring=alert.alert_id[:16], domain=cfg.sender.rsplit("@", 1)[1])
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg["X-Rampart-Alert-Id"] = fmt.header_safe(alert.alert_id, 64)
    msg["X-Rampart-Rule"] = fmt.header_safe(alert.record["rule"], 100)
    msg["X-Rampart-Severity"] = alert.severity.value
    msg["X-Rampart-Kind"] = alert.kind
    return msg


def send_email(cfg: EmailConfig, msg: EmailMessage) -> None:
    """Send over SMTP; `security: none` never calls starttls() or login()."""
    password = read_secret(cfg.password_file, "SMTP password") if cfg.password_file else ""
    where = f"SMTP server {cfg.host}:{cfg.port}"
    try:
        ctx = ssl.create_default_context()
        smtp: smtplib.SMTP
        if cfg.security == "tls":
            smtp = smtplib.SMTP_SSL(cfg.host, cfg.port, timeout=cfg.timeout_seconds, context=ctx)
        else:
            smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_seconds)
        with smtp:
            if cfg.security == "starttls":
                smtp.starttls(context=ctx)
            if cfg.user:
                smtp.login(cfg.user, password)
            smtp.send_message(msg)
    except smtplib.SMTPRecipientsRefused as e:
        codes = sorted({code for code, _ in e.recipients.values()})
        raise ChannelError(
            f"{where} refused all {len(e.recipients)} recipient(s) with {codes}",
            transient=all(400 <= c < 500 for c in codes),
        ) from None
    except smtplib.SMTPNotSupportedError as e:
        raise ChannelError(f"{where} does not support that: {scrub(str(e), password)}", transient=False) from None
    except smtplib.SMTPResponseException as e:
        text = e.smtp_error.decode(errors="replace") if isinstance(e.smtp_error, bytes) else str(e.smtp_error)
        raise ChannelError(
            f"{where} answered {e.smtp_code} {scrub(text, password)[:200]!r}", transient=400 <= e.smtp_code < 500
        ) from None
    except (smtplib.SMTPException, OSError) as e:
        raise ChannelError(
            f"{where} unreachable: {type(e).__name__}: {scrub(str(e), password)[:200]}", transient=True
        ) from None


# ---- Pub/Sub ---------------------------------------------------------------------------------------

_publisher: Any = None
_publisher_host: str | None = None
_publisher_lock = threading.Lock()


def _publisher_client() -> Any:
    """One PublisherClient per process (it honours PUBSUB_EMULATOR_HOST when created)."""
    global _publisher, _publisher_host
    host = os.environ.get("PUBSUB_EMULATOR_HOST")
    with _publisher_lock:
        if _publisher is None or host != _publisher_host:
            from google.cloud import pubsub_v1  # type: ignore[attr-defined]  # no type information

            # One alert per batch, sent at once: send_pubsub waits for each message id, so the
            # default 10 ms batching window would only add 10 ms to every alert.
            batching = pubsub_v1.types.BatchSettings(max_messages=1)
            _publisher, _publisher_host = pubsub_v1.PublisherClient(batch_settings=batching), host
        return _publisher


def send_pubsub(cfg: PubSubConfig, data: bytes, attributes: dict[str, str]) -> None:
    """Publish and wait for the server's message id, at most `timeout_seconds`."""
    from google.api_core import exceptions as gexc

    client = _publisher_client()
    try:
        future = client.publish(cfg.topic, data, timeout=cfg.timeout_seconds, **attributes)
        future.result(timeout=cfg.timeout_seconds)
    except (gexc.NotFound, gexc.PermissionDenied, gexc.InvalidArgument, gexc.Unauthenticated) as e:
        raise ChannelError(f"Pub/Sub refused publishing to {cfg.topic}: {e.message}", transient=False) from None
    except gexc.GoogleAPICallError as e:
        raise ChannelError(f"Pub/Sub publish to {cfg.topic} failed: {e.message}", transient=True) from None
    except (gexc.RetryError, TimeoutError) as e:
        raise ChannelError(
            f"Pub/Sub publish to {cfg.topic} timed out after {cfg.timeout_seconds}s ({type(e).__name__})",
            transient=True,
        ) from None
