"""The intake: every delivery shape parses to one AuditEvent; everything else gets a reason."""

from __future__ import annotations

import base64
import json

import pytest

from shared.event import BadInput, from_cloudevent, iter_documents, parse, parse_bytes, skip_reason
from tests.helpers import CORPUS, RULE_FIXTURES, load_json

SLACK = RULE_FIXTURES / "run_ingress_open" / "positive_v1_replace_all.json"


def _entry() -> dict:
    e = load_json(SLACK)
    e.pop("_source")
    return e


def _push(entry: dict) -> dict:
    data = base64.b64encode(json.dumps(entry).encode()).decode()
    return {"message": {"data": data, "messageId": "1", "attributes": {"logging.googleapis.com/timestamp": "x"}},
            "subscription": "projects/p/subscriptions/s"}


class FakeCE(dict):
    """What functions-framework hands a function: attributes by key, `.data`."""

    def __init__(self, attrs: dict, data) -> None:
        super().__init__(attrs)
        self.data = data


def test_all_delivery_shapes_give_the_same_event() -> None:
    entry = _entry()
    bare = parse(entry)
    push = _push(entry)
    shapes = {
        "push body": parse(push),
        "messagePublished CloudEvent": from_cloudevent(FakeCE({"type": "google.cloud.pubsub.topic.v1.messagePublished", "id": "1"}, push)),
        "audit.log.v1.written structured": parse({"specversion": "1.0", "type": "google.cloud.audit.log.v1.written", "data": entry}),
        "audit.log.v1.written binary": from_cloudevent(FakeCE({"type": "google.cloud.audit.log.v1.written"}, json.dumps(entry).encode())),
        "gen1 PubsubMessage": parse({"@type": "type.googleapis.com/google.pubsub.v1.PubsubMessage", "data": push["message"]["data"]}),
        "bytes": parse_bytes(json.dumps(push).encode()),
    }
    for name, ev in shapes.items():
        assert ev == bare, name
    assert bare.project == "test-project-1234"
    assert bare.location == "asia-northeast1"
    assert bare.principal == "masatonaka1989@gmail.com"
    assert bare.insert_id == "qd23mgd4u3f"
    assert bare.log_kind == "activity"


def test_eventarc_data_without_at_type() -> None:
    doc = load_json(CORPUS / "eventarc-envelopes" / "eventarc-gke-received-auditlog-storage-objects-create.json")
    ev = parse(doc)
    assert ev.service == "storage.googleapis.com"


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ([], "expected a JSON object"),
        ({"message": {"data": "!!!not base64"}}, "not valid base64"),
        ({"message": {"data": base64.b64encode(b"not json").decode()}}, "not JSON"),
        ({"message": {"data": base64.b64encode(b"\xff\xfe").decode()}}, "not"),
        ({"message": {"data": 12}}, "expected base64 text"),
        ({"protoPayload": []}, "protoPayload: expected an object"),
        ({"protoPayload": {"methodName": 5}}, "methodName: expected a string"),
        ({"protoPayload": {"serviceName": "x"}}, "methodName is missing"),
        ({"protoPayload": {"methodName": "m", "status": {"code": "x"}}}, "status.code"),
        ({"hello": "world"}, "no protoPayload"),
        ({"specversion": "1.0", "type": "google.cloud.storage.object.v1.finalized", "data": {"bucket": "b"}}, "not an audit-log delivery"),
        ({"message": {"data": "A" * 2_000_000}}, "over the"),
    ],
)
def test_bad_input_gets_a_one_line_reason_without_the_payload(doc, expected) -> None:
    with pytest.raises(BadInput) as info:
        parse(doc)
    assert expected in info.value.reason
    assert "\n" not in info.value.reason
    assert "world" not in info.value.reason and "AAAA" not in info.value.reason


def test_deep_nesting_is_a_reason_not_a_crash() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(BadInput, match="nested too deeply"):
        parse_bytes(deep.encode())


def test_skip_reasons() -> None:
    base = _entry()

    def with_(**pp) -> dict:
        e = json.loads(json.dumps(base))
        for k, v in pp.items():
            if k == "logName":
                e["logName"] = v
            elif k == "operation":
                e["operation"] = v
            else:
                e["protoPayload"][k] = v
        return e

    assert skip_reason(parse(base)) is None
    assert skip_reason(parse(with_(status={"code": 10, "message": "conflict"}))) == "failed_call"
    assert skip_reason(parse(with_(logName="projects/p/logs/cloudaudit.googleapis.com%2Fsystem_event"))) == "system_event"
    assert skip_reason(parse(with_(logName="projects/p/logs/cloudaudit.googleapis.com%2Fdata_access"))) == "data_access"
    assert skip_reason(parse(with_(methodName="/Services.CreateService"))) == "internal_method"
    assert skip_reason(parse(with_(methodName="google.cloud.serverless.internal.InternalServices.ReplaceInternalService"))) == "internal_method"
    assert skip_reason(parse(with_(operation={"id": "o", "first": True}))) == "operation_first"
    assert skip_reason(parse(with_(operation={"id": "o", "first": True, "last": True}))) is None
    req = dict(base["protoPayload"]["request"], validateOnly=True)
    assert skip_reason(parse(with_(request=req))) == "validate_only"


def test_snake_case_request_fields() -> None:
    from shared.event import pick

    assert pick({"update_mask": "state"}, "updateMask") == "state"
    assert pick({"updateMask": "state"}, "updateMask") == "state"
    assert pick({"a": 1}, "a", "b") is None


def test_iter_documents_accepts_arrays_and_json_lines() -> None:
    e = json.dumps(_entry())
    assert len(list(iter_documents(f"[{e},{e}]"))) == 2
    assert len(list(iter_documents(f"{e}\n\n{e}\n"))) == 2
    docs = list(iter_documents(f"{e}\nnot json\n{e}"))
    assert isinstance(docs[1], BadInput) and "line 2" in docs[1].reason
    assert list(iter_documents("   ")) == []
