"""The scaled-out sweep: the `rampart_sweep` entry point's two kinds of message, on one topic.

- A *sweep request* (`{"type": "rampart.sweep.request", "scopes"?: [...], "rules"?: [...]}`, what
  the Cloud Scheduler job publishes; the policy's `sweep.scopes` when it names none) is planned:
  the planner pages through Asset Inventory and publishes one *shard* per page to `sweep.topic`,
  recording its cursor after each page, so a redelivered request resumes where it stopped. The
  sweep's id is the request's Pub/Sub message id (stable across redeliveries) unless it names one.
- A *shard* (`{"type": "rampart.sweep.shard", ...}`) is judged and acted on (`shard.run_shard`),
  then marked done; a redelivered shard that is done is skipped. A transient failure raises, so
  Pub/Sub redelivers the shard, and after `max_delivery_attempts` dead-letters it: the sweep's
  report then counts it as not done (an incomplete sweep, never a clean one).

Publishing needs roles/pubsub.publisher on the sweep topic; listing, cloudasset.assets.search*.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from typing import Any

from shared import log
from shared.sweep.lister import IAM, RESOURCES, AssetLister, ScopeNotSwept, check_scope
from shared.sweep.shard import Shard, SweepContext, run_shard

REQUEST, SHARD = "rampart.sweep.request", "rampart.sweep.shard"
TOPIC_ENV = "RAMPART_SWEEP_TOPIC"  # where shards go when the policy names no sweep.topic (deploy.sh sets it)
MAX_MESSAGE_BYTES = 9 * 1024 * 1024  # Pub/Sub's limit is 10 MB

_lock = threading.Lock()
_state: dict[str, Any] = {}


class BadSweepMessage(ValueError):
    """A message on the sweep topic that is neither a sweep request nor a shard."""


def decode(cloud_event: Any) -> tuple[dict[str, Any], str]:
    """The JSON body and Pub/Sub message id of a messagePublished CloudEvent."""
    data = getattr(cloud_event, "data", None)
    msg = data.get("message") if isinstance(data, dict) else None
    if not isinstance(msg, dict):
        raise BadSweepMessage("expected a Pub/Sub messagePublished event with data.message")
    raw = msg.get("data") or ""
    try:
        body = json.loads(base64.b64decode(raw, validate=True)) if raw else {}
    except (ValueError, TypeError):
        raise BadSweepMessage("message data: expected base64 JSON") from None
    if not isinstance(body, dict):
        raise BadSweepMessage(f"message data: expected a JSON object, found {type(body).__name__}")
    mid = msg.get("messageId") or msg.get("message_id") or ""
    return body, mid if isinstance(mid, str) else ""


def _shared(name: str, build: Any) -> Any:
    with _lock:
        if name not in _state:
            _state[name] = build()
        return _state[name]


def progress_store(loaded: Any) -> Any:
    from shared.sweep.progress import FirestoreProgress

    # The database the alert dedupe uses, when it uses Firestore: one database for Rampart's state.
    d = loaded.alerts.dedupe if loaded.alerts is not None else None
    database = d.database if d is not None and d.store == "firestore" else "(default)"
    project = d.project if d is not None and d.store == "firestore" else None
    collection = loaded.policy.sweep.progress_collection
    return _shared(f"progress:{project}:{database}:{collection}",
                   lambda: FirestoreProgress(collection, project=project, database=database))


def _publisher() -> Any:
    def build() -> Any:
        from google.cloud import pubsub_v1  # type: ignore[attr-defined]  # no type information

        return pubsub_v1.PublisherClient()

    return _shared("publisher", build)


def handle(cloud_event: Any, *, store: Any = None, progress: Any = None, lister: AssetLister | None = None,
           publish: Any = None) -> str:
    """Handle one message of the sweep topic; returns what it did ("planned", "shard", "duplicate",
    "bad_input"). Raises for failures worth a redelivery."""
    from shared.config import PolicyStore

    try:
        body, message_id = decode(cloud_event)
        kind = body.get("type")
        if kind not in (REQUEST, SHARD):
            raise BadSweepMessage(f"type: expected {REQUEST} or {SHARD}, found {str(kind)[:60]!r}")
    except BadSweepMessage as exc:
        log.warning("rampart.sweep.bad_input", reason=str(exc))
        return "bad_input"  # acknowledged: a redelivery never makes it valid
    loaded = (store or _shared("policy", PolicyStore)).current()
    progress = progress or progress_store(loaded)
    if kind == REQUEST:
        return plan(body, message_id, loaded, progress, lister, publish)
    return judge(body, loaded, progress)


def plan(body: dict[str, Any], message_id: str, loaded: Any, progress: Any, lister: AssetLister | None = None,
         publish: Any = None) -> str:
    cfg = loaded.policy.sweep
    scopes = body.get("scopes") or list(cfg.scopes)
    sweep_id = str(body.get("sweep_id") or message_id)[:100]
    try:
        if not sweep_id or not isinstance(scopes, list) or not scopes:
            raise ValueError("a sweep request needs scopes (in the message or sweep.scopes) and an id")
        for scope in scopes:
            check_scope(str(scope))
        topic = cfg.topic or os.environ.get(TOPIC_ENV, "")
        if not topic and publish is None:
            raise ValueError(f"neither sweep.topic nor {TOPIC_ENV} is set: the planner has nowhere to publish shards")
    except ValueError as exc:
        log.error("rampart.sweep.bad_request", reason=str(exc)[:300])
        return "bad_input"
    rules = body.get("rules") if isinstance(body.get("rules"), list) else None
    lister = lister or _shared("lister", lambda: AssetLister(qps=cfg.qps, page_size=cfg.page_size))
    publish = publish or _publish_to(topic)
    doc = progress.begin(sweep_id, scopes, cfg.max_mode.value)
    if doc.get("plan_done"):
        return "duplicate"
    cursors: dict[str, Any] = dict(doc.get("cursors") or {})
    total = int(doc.get("shards_total") or 0)
    not_swept = list(doc.get("not_swept") or [])
    log.info("rampart.sweep.planning", sweep_id=sweep_id, scopes=scopes, resumed=bool(cursors))
    for scope in scopes:
        for kind in (RESOURCES, IAM):
            ckey = f"{scope}|{kind}"
            cur = cursors.get(ckey) or {"index": 0, "token": "", "done": False}
            if cur.get("done"):
                continue
            try:
                for page, token in lister.pages(scope, kind, start_token=cur["token"], start_index=cur["index"]):
                    shard = Shard(sweep_id, scope, kind, page.index, page.results)
                    publish({"type": SHARD, "rules": rules, **shard.to_dict()})
                    total += 1
                    cur = {"index": page.index + 1, "token": token, "done": not token}
                    cursors[ckey] = cur
                    progress.update(sweep_id, {"cursors": cursors, "shards_total": total})
            except ScopeNotSwept as exc:
                not_swept.append({"scope": exc.scope, "kind": exc.kind, "reason": exc.reason})
                cursors[ckey] = {**cur, "done": True}
                progress.update(sweep_id, {"cursors": cursors, "not_swept": not_swept})
                log.error("rampart.sweep.scope_not_swept", sweep_id=sweep_id, scope=exc.scope, kind=exc.kind, reason=exc.reason)
    progress.update(sweep_id, {"plan_done": True, "shards_total": total, "finished_planning_at": _now(),
                               "api_calls": {"search_all_resources": lister.stats.calls[RESOURCES],
                                             "search_all_iam_policies": lister.stats.calls[IAM]}})
    log.info("rampart.sweep.planned", sweep_id=sweep_id, shards=total, not_swept=len(not_swept))
    return "planned"


def _now() -> str:
    from shared.sweep.local import now_text

    return now_text()


def _publish_to(topic: str) -> Any:
    def publish(message: dict[str, Any]) -> None:
        data = json.dumps(message, separators=(",", ":"), default=str).encode()
        if len(data) > MAX_MESSAGE_BYTES:
            raise ValueError(f"a shard of {len(data)} bytes is over Pub/Sub's limit: lower sweep.page_size")
        _publisher().publish(topic, data, type=SHARD).result(timeout=60)

    return publish


def judge(body: dict[str, Any], loaded: Any, progress: Any) -> str:
    try:
        shard = Shard(sweep_id=str(body["sweep_id"]), scope=str(body["scope"]), kind=str(body["kind"]),
                      index=int(body["index"]), results=list(body["results"]))
        if shard.kind not in (RESOURCES, IAM):
            raise ValueError(f"kind: expected {RESOURCES} or {IAM}")
    except (KeyError, TypeError, ValueError) as exc:
        log.warning("rampart.sweep.bad_input", reason=f"shard: {type(exc).__name__}: {str(exc)[:200]}")
        return "bad_input"
    if progress.shard_done(shard.sweep_id, shard.key):
        log.info("rampart.sweep.shard_duplicate", sweep_id=shard.sweep_id, shard=shard.key)
        return "duplicate"
    rules = body.get("rules")
    ctx = SweepContext(loaded=loaded, rules=tuple(str(r) for r in rules) if isinstance(rules, list) else None)
    tally = run_shard(shard, ctx)  # transient failures raise: Pub/Sub redelivers the shard
    progress.finish_shard(shard.sweep_id, shard.key, tally)
    log.info("rampart.sweep.shard_done", sweep_id=shard.sweep_id, shard=shard.key, seen=sum(tally.seen.values()),
             violations=sum(tally.violations.values()), actions=tally.actions, skipped=sum(tally.skipped.values()))
    return "shard"
