"""The scaled-out sweep's entry point (`rampart_sweep`), in process against the stand-in: a sweep
request is planned into shards (one per page), shards are judged once, a redelivered request
resumes, and bad messages are acknowledged with a reason."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cloudevents.http import CloudEvent

from infra.local.estate import estate
from shared.config import PolicyStore, parse_policy
from shared.sweep import worker
from shared.sweep.lister import AssetLister
from shared.sweep.progress import MemoryProgress


def event(body: Any, message_id: str = "m-1") -> CloudEvent:
    data = base64.b64encode(body if isinstance(body, bytes) else json.dumps(body).encode()).decode()
    return CloudEvent({"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub.googleapis.com/x"},
                      {"message": {"data": data, "messageId": message_id}, "subscription": "projects/p/subscriptions/s"})


@pytest.fixture
def world(standin: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    from shared.sweep.lister import ASSET_ENDPOINT_ENV

    monkeypatch.setenv(ASSET_ENDPOINT_ENV, standin.url)
    seed, planted = estate(projects=4, services=40, keys=20, folders=2, violation_rate=0.1, seed=5)
    standin.admin.seed(seed)
    store = PolicyStore()
    store.set(parse_policy("sweep: {max_mode: enforce, scopes: [organizations/1000], page_size: 10}"))
    published: list[dict[str, Any]] = []

    class World:
        pass

    w = World()
    w.standin, w.store, w.progress, w.published, w.planted = standin, store, MemoryProgress(), published, sorted(planted)
    w.lister = AssetLister(qps=100, page_size=10, backoff_seconds=0.01)
    w.handle = lambda ce, **kw: worker.handle(ce, store=store, progress=w.progress, lister=w.lister,
                                              publish=kw.get("publish", published.append))
    return w


def test_a_request_is_planned_into_one_shard_per_page_and_each_shard_judged_once(world: Any) -> None:
    assert world.handle(event({"type": worker.REQUEST})) == "planned"
    shards = world.published
    assert shards and all(m["type"] == worker.SHARD and len(m["results"]) <= 10 for m in shards)
    assert sum(len(m["results"]) for m in shards if m["kind"] == "resources") == sum(
        len(world.standin.admin.state()[k]) for k in ("services", "keyRings", "cryptoKeys", "cryptoKeyVersions"))
    for m in shards:
        assert world.handle(event(m, f"s-{m['index']}-{m['kind']}")) == "shard"
    assert [world.handle(event(m)) for m in shards[:3]] == ["duplicate"] * 3  # redelivered after done
    rep = world.progress.report("m-1")
    assert rep is not None and rep.complete and rep.shards_done == len(shards)
    assert sorted((i["rule"], i["resource"]) for i in rep.tally.items) == world.planted
    assert rep.tally.actions == len(world.planted)
    assert world.handle(event({"type": worker.REQUEST})) == "duplicate"  # the request redelivered after planning


def test_a_planner_that_dies_mid_listing_resumes_from_its_cursor(world: Any) -> None:
    calls = {"n": 0}

    def flaky(message: dict[str, Any]) -> None:
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("publisher died")
        world.published.append(message)

    with pytest.raises(RuntimeError):
        world.handle(event({"type": worker.REQUEST}, "m-2"), publish=flaky)
    first = list(world.published)
    assert len(first) == 3
    assert world.handle(event({"type": worker.REQUEST}, "m-2")) == "planned"
    keys = [(m["scope"], m["kind"], m["index"]) for m in world.published]
    assert len(keys) == len(set(keys))  # no page published twice: resumed after the third
    assert world.progress.sweeps["m-2"]["shards_total"] == len(keys)


def test_a_scope_the_sweep_may_not_search_is_recorded(world: Any) -> None:
    world.standin.admin.fault("GET", "folders/2001:search", status=403, count=None)
    body = {"type": worker.REQUEST, "scopes": ["folders/2000", "folders/2001"], "sweep_id": "partial"}
    assert world.handle(event(body)) == "planned"
    for m in world.published:
        world.handle(event(m))
    rep = world.progress.report("partial")
    assert rep is not None and not rep.complete
    assert {n["scope"] for n in rep.not_swept} == {"folders/2001"}


@pytest.mark.parametrize("body", [
    b"not json", b'["a list"]', {"type": "something.else"}, {"type": worker.SHARD, "sweep_id": "x"},
    {"type": worker.SHARD, "sweep_id": "x", "scope": "s", "kind": "weird", "index": 0, "results": []},
    {"type": worker.REQUEST, "scopes": ["not-a-scope"]},
])
def test_bad_messages_are_acknowledged_with_a_reason(world: Any, body: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert world.handle(event(body)) == "bad_input"
    out = capsys.readouterr().out
    assert "rampart.sweep.bad_" in out and "not json" not in out  # the reason, never the payload


def test_a_shard_that_keeps_failing_leaves_the_sweep_incomplete(world: Any) -> None:
    from shared.actions import TransientError

    assert world.handle(event({"type": worker.REQUEST, "sweep_id": "failing"})) == "planned"
    world.standin.admin.fault("PATCH", "/services/", status=503, count=None)
    outcomes = []
    for m in world.published:
        try:
            outcomes.append(world.handle(event(m)))
        except TransientError:
            outcomes.append("raised")  # Pub/Sub redelivers it, then dead-letters it
    assert "raised" in outcomes
    rep = world.progress.report("failing")
    assert rep is not None and rep.plan_done and rep.shards_done < rep.shards_total and not rep.complete
