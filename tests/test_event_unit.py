"""shared/event.py one function at a time: what each accepts, what it refuses, and with which reason.

Written against the mutants `make mutate` found surviving: each test pins one behaviour with a
hand-written expected value, on hand-built entries shaped like tests/data/corpus (AuditLog
reference: cloud.google.com/logging/docs/reference/audit/auditlog/rest/Shared.Types/AuditLog).
"""

from __future__ import annotations

import base64
import json
from types import MappingProxyType

import pytest

from shared.event import (
    AuditEvent,
    BadInput,
    _type_name,
    from_cloudevent,
    from_entry,
    iter_located,
    parse,
    parse_bytes,
    pick,
    pick_dict,
)


def _entry(**pp: object) -> dict:
    payload = {"@type": "type.googleapis.com/google.cloud.audit.AuditLog", "serviceName": "run.googleapis.com",
               "methodName": "google.cloud.run.v2.Services.UpdateService",
               "resourceName": "projects/p-123456/locations/europe-west1/services/web"} | pp
    return {"protoPayload": payload, "logName": "projects/p-123456/logs/cloudaudit.googleapis.com%2Factivity",
            "insertId": "i1", "timestamp": "2026-01-02T03:04:05Z"}


def test_entry_without_method_is_refused() -> None:
    with pytest.raises(BadInput) as info:
        from_entry(_entry(methodName=""))
    assert info.value.reason == "protoPayload.methodName is missing"


# --- _b64_json: base64 text of at most a LogEntry's size, strictly decoded --------------------------------

# 512 KiB of entry in base64 is 699050 characters (4/3, rounded down); 4 more for padding: 699054.
B64_LIMIT = 699054


def test_base64_one_character_over_the_limit_is_refused_by_size() -> None:
    with pytest.raises(BadInput) as info:
        parse({"message": {"data": "A" * (B64_LIMIT + 1)}})
    assert info.value.reason == "message.data: 699055 bytes of base64, over the 524288-byte entry limit"


def test_base64_at_the_limit_is_decoded_not_refused_by_size() -> None:
    # 699054 is not a multiple of 4, so the decoder (not the size check) refuses it.
    with pytest.raises(BadInput) as info:
        parse({"message": {"data": "A" * B64_LIMIT}})
    assert info.value.reason == "message.data: not valid base64"


def test_base64_with_characters_outside_the_alphabet_is_refused() -> None:
    # A lenient decoder drops the "!" and "?" and reads the entry: forged padding is not ours to repair.
    data = base64.b64encode(json.dumps(_entry()).encode()).decode()
    with pytest.raises(BadInput) as info:
        parse({"message": {"data": data[:8] + "!?" + data[8:]}})
    assert info.value.reason == "message.data: not valid base64"


def test_base64_field_of_another_type_names_that_type() -> None:
    with pytest.raises(BadInput) as info:
        parse({"message": {"data": ["QQ=="]}})
    assert info.value.reason == "message.data: expected base64 text, found list"


def test_base64_bytes_are_accepted_like_text() -> None:
    data = base64.b64encode(json.dumps(_entry()).encode())
    assert parse({"message": {"data": data}}).insert_id == "i1"


# --- _loads: every way JSON text fails, one reason each -----------------------------------------------------


def test_json_that_is_not_utf8_says_so() -> None:
    with pytest.raises(BadInput) as info:
        parse_bytes(b"\x80")
    assert info.value.reason == "body: not UTF-8 text"


def test_json_with_a_5000_digit_number_says_so() -> None:
    with pytest.raises(BadInput) as info:
        parse_bytes(b"1" * 5000)
    assert info.value.reason == "body: a JSON number with too many digits to read"


def test_json_syntax_error_names_what_and_where() -> None:
    with pytest.raises(BadInput) as info:
        parse_bytes(b"{")
    assert info.value.reason == "body: not JSON (Expecting property name enclosed in double quotes at position 1)"


# --- parse_bytes: the body limit, 1 MiB -------------------------------------------------------------------

BODY_LIMIT = 1_048_576


def test_body_one_byte_over_the_limit_is_refused() -> None:
    with pytest.raises(BadInput) as info:
        parse_bytes(b"[" + b" " * (BODY_LIMIT - 1) + b"]")
    assert info.value.reason == "body of 1048577 bytes is over the 1048576-byte limit"


def test_body_at_the_limit_is_read() -> None:
    with pytest.raises(BadInput) as info:
        parse_bytes(b"[" + b" " * (BODY_LIMIT - 2) + b"]")
    assert info.value.reason == "expected a JSON object (LogEntry or envelope), found list"


# --- _type_name: a CloudEvent type in a reason, quoted only if it is a Google event type name -------------


def test_type_name_quotes_a_google_name_of_100_characters() -> None:
    name = "google.a." + "b" * 91
    assert len(name) == 100
    assert _type_name(name) == repr(name)


def test_type_name_gives_only_the_size_of_a_101_character_google_shaped_name() -> None:
    assert _type_name("google.a." + "b" * 92) == "(a 101-character non-Google name)"


def test_type_name_gives_only_the_size_of_a_non_google_name() -> None:
    assert _type_name("evil.payload") == "(a 12-character non-Google name)"


def test_type_name_of_an_empty_name_or_a_non_string() -> None:
    assert _type_name("") == "(empty)"
    assert _type_name(5) == "(a int)"
    assert _type_name(None) == "(a NoneType)"


# --- from_cloudevent --------------------------------------------------------------------------------------


class FakeCE(dict):
    """What functions-framework hands a function: attributes by key, `.data`."""

    def __init__(self, attrs: dict, data: object) -> None:
        super().__init__(attrs)
        self.data = data


WRITTEN = "google.cloud.audit.log.v1.written"


def test_cloudevent_of_another_type_is_not_an_audit_delivery() -> None:
    with pytest.raises(BadInput) as info:
        from_cloudevent(FakeCE({"type": "google.cloud.storage.object.v1.finalized"}, {"bucket": "b"}))
    assert info.value.reason == "CloudEvent type 'google.cloud.storage.object.v1.finalized' is not an audit-log delivery"


def test_cloudevent_without_a_type_is_judged_by_its_data() -> None:
    with pytest.raises(BadInput) as info:
        from_cloudevent(FakeCE({}, {"bucket": "b"}))
    assert info.value.reason == "no protoPayload: not a Cloud Audit Log entry"


def test_cloudevent_with_a_non_string_type_is_judged_by_its_data() -> None:
    with pytest.raises(BadInput) as info:
        from_cloudevent(FakeCE({"type": 5}, {"bucket": "b"}))
    assert info.value.reason == "no protoPayload: not a Cloud Audit Log entry"


def test_cloudevent_without_data_attribute_has_no_data() -> None:
    with pytest.raises(BadInput) as info:
        from_cloudevent({"type": WRITTEN})
    assert info.value.reason == "CloudEvent 'google.cloud.audit.log.v1.written' has no data"


def test_cloudevent_without_data_and_type_names_neither() -> None:
    with pytest.raises(BadInput) as info:
        from_cloudevent(FakeCE({}, None))
    assert info.value.reason == "CloudEvent (no type) has no data"


def test_cloudevent_without_data_and_a_non_string_type_names_its_kind() -> None:
    with pytest.raises(BadInput) as info:
        from_cloudevent(FakeCE({"type": 5}, None))
    assert info.value.reason == "CloudEvent (a int) has no data"


def test_cloudevent_data_one_byte_over_the_limit_is_refused() -> None:
    with pytest.raises(BadInput) as info:
        from_cloudevent(FakeCE({"type": WRITTEN}, "[" + " " * (BODY_LIMIT - 1) + "]"))
    assert info.value.reason == "CloudEvent data of 1048577 bytes is over the limit"


def test_cloudevent_data_at_the_limit_is_read() -> None:
    with pytest.raises(BadInput) as info:
        from_cloudevent(FakeCE({"type": WRITTEN}, b"[" + b" " * (BODY_LIMIT - 2) + b"]"))
    assert info.value.reason == "expected a JSON object (LogEntry or envelope), found list"


def test_cloudevent_data_that_is_not_json_names_the_data() -> None:
    with pytest.raises(BadInput) as info:
        from_cloudevent(FakeCE({"type": WRITTEN}, b"{"))
    assert info.value.reason == "CloudEvent data: not JSON (Expecting property name enclosed in double quotes at position 1)"


def test_cloudevent_entry_no_rule_wants_is_none() -> None:
    assert from_cloudevent(FakeCE({"type": WRITTEN}, _entry()), wanted={("iam.googleapis.com", "SetIamPolicy")}) is None


def test_cloudevent_entry_a_rule_wants_is_the_event() -> None:
    wanted = {("run.googleapis.com", "google.cloud.run.v2.Services.UpdateService")}
    ev = from_cloudevent(FakeCE({"type": WRITTEN}, _entry()), wanted=wanted)
    assert ev is not None and ev.insert_id == "i1" and ev.location == "europe-west1"


# --- iter_located: where each replayed document was -------------------------------------------------------

REPLAY_LIMIT = 67_108_864


def test_replay_input_one_byte_over_the_limit_is_one_reason() -> None:
    (where, doc), = list(iter_located(" " * (REPLAY_LIMIT + 1)))
    assert where == ""
    assert isinstance(doc, BadInput)
    assert doc.reason == "input of 67108865 bytes is over the 67108864-byte replay limit"


def test_replay_input_at_the_limit_is_read() -> None:
    assert list(iter_located(" " * REPLAY_LIMIT)) == []


def test_replay_array_items_are_numbered_from_one() -> None:
    assert list(iter_located('[{"a": 1}, {"b": 2}]')) == [("item 1", {"a": 1}), ("item 2", {"b": 2})]


def test_replay_single_document_has_no_place() -> None:
    assert list(iter_located('{"a": 1}')) == [("", {"a": 1})]


def test_parse_with_a_cloudevent_type_that_is_not_an_audit_delivery() -> None:
    with pytest.raises(BadInput) as info:
        parse({"bucket": "b"}, ce_type="google.cloud.storage.object.v1.finalized")
    assert info.value.reason == "CloudEvent type 'google.cloud.storage.object.v1.finalized' is not an audit-log delivery"


# --- pick_dict, from_entry: any Mapping is an object, nothing else is ---------------------------------------


def test_pick_dict_accepts_a_mapping_that_is_not_a_dict() -> None:
    inner = MappingProxyType({"b": 1})
    assert pick_dict({"a": inner}, "a") is inner
    assert pick_dict({"a": [1]}, "a") == {}


def test_from_entry_accepts_a_mapping_that_is_not_a_dict() -> None:
    ev = from_entry(MappingProxyType(_entry()))
    assert (ev.service, ev.insert_id) == ("run.googleapis.com", "i1")


def test_from_entry_refuses_a_list() -> None:
    with pytest.raises(BadInput) as info:
        from_entry([_entry()])  # type: ignore[arg-type]
    assert info.value.reason == "expected a LogEntry object, found list"


# --- _str: a string field; a number where loose exports write one; nothing else -----------------------------


def test_numeric_insert_id_is_read_as_its_digits() -> None:
    assert from_entry(_entry() | {"insertId": 12345}).insert_id == "12345"


def test_boolean_insert_id_is_refused() -> None:
    with pytest.raises(BadInput) as info:
        from_entry(_entry() | {"insertId": True})
    assert info.value.reason == "insertId: expected a string, found bool"


def test_list_insert_id_is_refused() -> None:
    with pytest.raises(BadInput) as info:
        from_entry(_entry() | {"insertId": ["i1"]})
    assert info.value.reason == "insertId: expected a string, found list"


def test_numeric_resource_name_is_refused_strictly() -> None:
    with pytest.raises(BadInput) as info:
        from_entry(_entry(resourceName=7))
    assert info.value.reason == "protoPayload.resourceName: expected a string, found int"


# --- _delegation: who really asked, first; a link we cannot name never matches a principal -----------------


def _chain(links: object) -> tuple[str, ...]:
    auth = {"principalEmail": "sa@p-123456.iam.gserviceaccount.com", "serviceAccountDelegationInfo": links}
    return from_entry(_entry(authenticationInfo=auth)).delegation


def test_delegation_names_first_party_subject_and_third_party_links() -> None:
    links = [{"firstPartyPrincipal": {"principalEmail": "alice@example.com"}},
             {"principalSubject": "principal://iam.googleapis.com/x"},
             {"thirdPartyPrincipal": {"thirdPartyClaims": {"sub": "1"}}},
             {}, "text", {"firstPartyPrincipal": {"principalEmail": 5}}]
    assert _chain(links) == ("alice@example.com", "principal://iam.googleapis.com/x", "(third-party principal)",
                             "(unnamed)", "(unnamed)", "(unnamed)")


def test_delegation_that_is_not_a_list_is_no_chain() -> None:
    assert _chain("alice@example.com") == ()
    assert _chain({"firstPartyPrincipal": {"principalEmail": "alice@example.com"}}) == ()
    assert _chain([]) == ()


def test_delegation_keeps_the_first_20_links() -> None:
    links = [{"firstPartyPrincipal": {"principalEmail": f"u{n}@example.com"}} for n in range(25)]
    chain = _chain(links)
    assert len(chain) == 20
    assert chain[0] == "u0@example.com" and chain[19] == "u19@example.com"


def test_delegation_name_is_cut_at_320_characters() -> None:
    email = "a" * 400 + "@example.com"
    (who,) = _chain([{"firstPartyPrincipal": {"principalEmail": email}}])
    assert who == "a" * 320


# --- _from_entry: every field read, and every field of the wrong kind refused with its path ------------------

FULL = {
    "protoPayload": {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "serviceName": "run.googleapis.com",
        "methodName": "google.cloud.run.v2.Services.UpdateService",
        "resourceName": "projects/p-123456/locations/europe-west1/services/web",
        "status": {"code": "7", "message": "denied"},
        "authenticationInfo": {"principalEmail": "alice@example.com"},
        "requestMetadata": {"callerSuppliedUserAgent": "gcloud/500"},
        "request": {"service": {"ingress": "INGRESS_TRAFFIC_ALL"}},
        "response": {"name": "operations/1"},
        "metadata": {"m": 1},
    },
    "resource": {"type": "cloud_run_revision", "labels": {"project_id": "p-123456", "location": "europe-west1"}},
    "logName": "projects/p-123456/logs/cloudaudit.googleapis.com%2Factivity",
    "operation": {"id": "op-1", "first": True, "last": False},
    "insertId": "i1",
    "timestamp": "2026-01-02T03:04:05Z",
}


def test_every_field_of_a_full_entry() -> None:
    assert from_entry(FULL) == AuditEvent(
        service="run.googleapis.com", method="google.cloud.run.v2.Services.UpdateService",
        resource_name="projects/p-123456/locations/europe-west1/services/web", project="p-123456",
        location="europe-west1", principal="alice@example.com", insert_id="i1", timestamp="2026-01-02T03:04:05Z",
        log_kind="activity", status_code=7, status_message="denied", resource_type="cloud_run_revision",
        operation_id="op-1", operation_first=True, operation_last=False, user_agent="gcloud/500",
        request={"service": {"ingress": "INGRESS_TRAFFIC_ALL"}}, response={"name": "operations/1"},
        service_data={"m": 1}, resource_labels={"project_id": "p-123456", "location": "europe-west1"},
        payload_type="type.googleapis.com/google.cloud.audit.AuditLog", delegation=())


def test_panther_lower_case_keys_are_read() -> None:
    entry = {"protopayload": {"serviceName": "s.googleapis.com", "methodName": "M"},
             "logname": "projects/p-123456/logs/cloudaudit.googleapis.com%2Factivity", "insertid": "lower-1"}
    ev = from_entry(entry)
    assert (ev.insert_id, ev.log_kind, ev.project) == ("lower-1", "activity", "p-123456")


def test_entry_with_only_the_required_fields_has_empty_defaults() -> None:
    ev = from_entry({"protoPayload": {"methodName": "M"}})
    assert (ev.service, ev.resource_name, ev.principal, ev.insert_id, ev.timestamp, ev.log_kind) == ("", "", "", "", "", "")
    assert (ev.status_code, ev.status_message, ev.resource_type, ev.operation_id, ev.user_agent) == (0, "", "", "", "")
    assert (ev.operation_first, ev.operation_last, ev.payload_type) == (False, False, "")


def test_log_name_of_another_log_has_no_kind() -> None:
    assert from_entry(_entry() | {"logName": "projects/p-123456/logs/evil-cloudaudit.googleapis.com%2Factivity"}).log_kind == ""


def test_service_data_is_preferred_to_metadata() -> None:
    entry = _entry(serviceData={"policyDelta": {}}, metadata={"m": 1})
    assert from_entry(entry).service_data == {"policyDelta": {}}


def test_timestamp_falls_back_to_the_payloads_and_numbers_become_text() -> None:
    entry = _entry(timestamp="2026-02-03T00:00:00Z")
    del entry["timestamp"]
    assert from_entry(entry).timestamp == "2026-02-03T00:00:00Z"
    assert from_entry(_entry() | {"timestamp": 1700000000}).timestamp == "1700000000"


def test_status_code_of_18_digits_is_read_and_19_is_refused() -> None:
    assert from_entry(_entry(status={"code": "123456789012345678"})).status_code == 123456789012345678
    with pytest.raises(BadInput) as info:
        from_entry(_entry(status={"code": "1234567890123456789"}))
    assert info.value.reason == "protoPayload.status.code: expected an integer, found str"


def test_status_message_that_is_not_text_is_dropped() -> None:
    assert from_entry(_entry(status={"code": 0, "message": 5})).status_message == ""


def test_payload_that_is_a_mapping_but_not_a_dict_is_read() -> None:
    entry = _entry()
    entry["protoPayload"] = MappingProxyType(entry["protoPayload"])
    assert from_entry(entry).method == "google.cloud.run.v2.Services.UpdateService"


def _bad(where: str, value: object) -> dict:
    """_entry() with one field, at a dotted path, replaced."""
    entry = json.loads(json.dumps(_entry() | {"resource": {"type": "t", "labels": {}}, "operation": {"id": "o"}}))
    entry["protoPayload"]["requestMetadata"] = {}
    entry["protoPayload"]["status"] = {"code": 0}
    entry["protoPayload"]["authenticationInfo"] = {}
    *parents, last = where.split(".")
    cur = entry
    for key in parents:
        cur = cur[key]
    cur[last] = value
    return entry


@pytest.mark.parametrize(("where", "value", "reason"), [
    ("protoPayload", [], "protoPayload: expected an object, found list"),
    ("protoPayload.serviceName", 5, "protoPayload.serviceName: expected a string, found int"),
    ("protoPayload.methodName", 5, "protoPayload.methodName: expected a string, found int"),
    ("protoPayload.resourceName", 7, "protoPayload.resourceName: expected a string, found int"),
    ("protoPayload.status", [], "protoPayload.status: expected an object, found list"),
    ("protoPayload.status.code", 1.5, "protoPayload.status.code: expected an integer, found float"),
    ("protoPayload.authenticationInfo", "x", "protoPayload.authenticationInfo: expected an object, found str"),
    ("protoPayload.authenticationInfo.principalEmail", 5,
     "protoPayload.authenticationInfo.principalEmail: expected a string"),
    ("resource", "x", "resource: expected an object, found str"),
    ("resource.labels", [], "resource.labels: expected an object, found list"),
    ("logName", [], "logName: expected a string, found list"),
    ("operation", [], "operation: expected an object, found list"),
    ("protoPayload.requestMetadata", [], "protoPayload.requestMetadata: expected an object, found list"),
    ("protoPayload.request", [], "protoPayload.request: expected an object, found list"),
    ("timestamp", {"a": 1}, "timestamp: expected a string, found dict"),
    ("timestamp", True, "timestamp: expected a string, found bool"),
    ("protoPayload.serviceData", [], "protoPayload.serviceData: expected an object, found list"),
    ("protoPayload.metadata", [], "protoPayload.metadata: expected an object, found list"),
    ("insertId", ["i"], "insertId: expected a string, found list"),
    ("resource.type", [], "resource.type: expected a string, found list"),
    ("operation.id", [], "operation.id: expected a string, found list"),
    ("protoPayload.requestMetadata.callerSuppliedUserAgent", [],
     "requestMetadata.callerSuppliedUserAgent: expected a string, found list"),
    ("protoPayload.response", [], "protoPayload.response: expected an object, found list"),
    ("protoPayload.@type", 5, "protoPayload.@type: expected a string, found int"),
])
def test_field_of_the_wrong_kind_is_refused_with_its_path(where: str, value: object, reason: str) -> None:
    with pytest.raises(BadInput) as info:
        from_entry(_bad(where, value))
    assert info.value.reason == reason


def test_lower_case_log_name_and_insert_id_of_the_wrong_kind_are_refused() -> None:
    entry = {"protoPayload": {"methodName": "M"}}
    with pytest.raises(BadInput) as info:
        from_entry(entry | {"logname": []})
    assert info.value.reason == "logname: expected a string, found list"
    with pytest.raises(BadInput) as info:
        from_entry(entry | {"insertid": []})
    assert info.value.reason == "insertid: expected a string, found list"


# --- the project: from the resource name, else the resource's label, else the log name ------------------------

LOG_C = "projects/p-ccc333/logs/cloudaudit.googleapis.com%2Factivity"


def _project(resource_name: str, labels: dict, log_name: str = LOG_C) -> str:
    entry = {"protoPayload": {"methodName": "M", "resourceName": resource_name},
             "resource": {"type": "t", "labels": labels}, "logName": log_name}
    return from_entry(entry).project


def test_project_of_the_resource_name_comes_first() -> None:
    assert _project("projects/p-aaa111/locations/us-east1/services/s", {"project_id": "p-bbb222"}) == "p-aaa111"
    assert _project("namespaces/p-aaa111/services/s", {"project_id": "p-bbb222"}) == "p-aaa111"


def test_project_placeholder_in_the_resource_name_gives_way_to_the_label() -> None:
    assert _project("projects/_/buckets/b", {"project_id": "p-bbb222"}) == "p-bbb222"


def test_project_label_that_is_not_text_gives_way_to_the_log_name() -> None:
    assert _project("", {"project_id": 5}) == "p-ccc333"
    assert _project("", {"project_id": ""}) == "p-ccc333"


def test_project_named_nowhere_is_empty() -> None:
    assert _project("", {}, "organizations/1/logs/cloudaudit.googleapis.com%2Factivity") == ""


# --- the location: from the resource name, else the request's region, the resource's label, the payload's ---

def _location(resource_name: str, request: dict, labels: dict, current: object = None) -> str:
    pp: dict = {"methodName": "M", "resourceName": resource_name, "request": request}
    if current is not None:
        pp["resourceLocation"] = {"currentLocations": current}
    return from_entry({"protoPayload": pp, "resource": {"type": "t", "labels": labels}}).location


def test_location_of_the_resource_name_comes_first() -> None:
    assert _location("projects/p/locations/us-east1/services/s", {"region": "europe-west4"}, {"location": "asia-east1"},
                     ["us-west1"]) == "us-east1"


def test_location_falls_back_to_region_then_label_then_current_locations() -> None:
    assert _location("projects/p/global/x", {"region": "europe-west4"}, {"location": "asia-east1"}, ["us-west1"]) == "europe-west4"
    assert _location("projects/p/global/x", {}, {"location": "asia-east1"}, ["us-west1"]) == "asia-east1"
    assert _location("projects/p/global/x", {}, {}, ["us-west1", "us-west2"]) == "us-west1"


def test_location_named_nowhere_or_not_as_text_is_empty() -> None:
    assert _location("projects/p/global/x", {}, {}, []) == ""
    assert _location("projects/p/global/x", {}, {}) == ""
    assert _location("projects/p/global/x", {"region": 5}, {"location": "asia-east1"}) == ""


# --- unwrap: envelopes, at most 4 deep ------------------------------------------------------------------------


def _b64(doc: object) -> str:
    return base64.b64encode(json.dumps(doc).encode()).decode()


def _in_cloudevents(doc: object, times: int) -> object:
    for _ in range(times):
        doc = {"specversion": "1.0", "type": WRITTEN, "data": doc}
    return doc


def _in_push_bodies(doc: object, times: int) -> object:
    for _ in range(times):
        doc = {"message": {"data": _b64(doc)}, "subscription": "projects/p/subscriptions/s"}
    return doc


def test_four_cloudevent_envelopes_are_unwrapped_and_five_are_refused() -> None:
    assert parse(_in_cloudevents(_entry(), 4)).insert_id == "i1"
    with pytest.raises(BadInput) as info:
        parse(_in_cloudevents(_entry(), 5))
    assert info.value.reason == "envelope nested more than 4 levels deep"


def test_four_push_bodies_are_unwrapped_and_five_are_refused() -> None:
    assert parse(_in_push_bodies(_entry(), 4)).insert_id == "i1"
    with pytest.raises(BadInput) as info:
        parse(_in_push_bodies(_entry(), 5))
    assert info.value.reason == "envelope nested more than 4 levels deep"


def test_structured_cloudevent_with_data_base64() -> None:
    assert parse({"specversion": "1.0", "type": WRITTEN, "data_base64": _b64(_entry())}).insert_id == "i1"


def test_structured_cloudevent_data_is_preferred_to_data_base64() -> None:
    assert parse({"specversion": "1.0", "type": WRITTEN, "data": _entry(), "data_base64": "!!"}).insert_id == "i1"


def test_structured_cloudevent_with_bad_data_base64_names_it() -> None:
    with pytest.raises(BadInput) as info:
        parse({"specversion": "1.0", "type": WRITTEN, "data_base64": "!!"})
    assert info.value.reason == "CloudEvent data_base64: not valid base64"


def test_structured_cloudevent_with_a_non_string_type_is_judged_by_its_data() -> None:
    with pytest.raises(BadInput) as info:
        parse({"specversion": "1.0", "type": 5, "data": {"bucket": "b"}})
    assert info.value.reason == "no protoPayload: not a Cloud Audit Log entry"


def test_envelopes_that_are_mappings_but_not_dicts_are_unwrapped() -> None:
    assert parse(MappingProxyType(_entry())).insert_id == "i1"
    assert parse({"message": MappingProxyType({"data": _b64(_entry())})}).insert_id == "i1"


def test_gen1_message_is_known_by_attributes_or_type() -> None:
    assert parse({"data": _b64(_entry()), "attributes": {}}).insert_id == "i1"
    with pytest.raises(BadInput) as info:
        parse({"data": _b64(_entry())})
    assert info.value.reason == "no protoPayload: not a Cloud Audit Log entry"


def test_gen1_message_data_must_be_text() -> None:
    with pytest.raises(BadInput) as info:
        parse({"@type": "type.googleapis.com/google.pubsub.v1.PubsubMessage", "data": 5})
    assert info.value.reason == "no protoPayload: not a Cloud Audit Log entry"


# --- pick: camelCase first, then proto snake_case, at every step ------------------------------------------------


@pytest.fixture
def no_snake_names(monkeypatch: pytest.MonkeyPatch) -> None:
    # Importing the tests parses entries, which fills the cache: start from none.
    import shared.event as event

    monkeypatch.setattr(event, "_SNAKE_CACHE", {})


@pytest.mark.usefixtures("no_snake_names")
def test_pick_falls_back_to_snake_case_at_every_step() -> None:
    assert pick({"update_mask": {"field_paths": ["ingress"]}}, "updateMask", "fieldPaths") == ["ingress"]
    assert pick({"zeta_quux": 2}, "ZetaQuux") == 2  # no leading underscore for a leading capital


@pytest.mark.usefixtures("no_snake_names")
def test_pick_prefers_the_camel_case_key() -> None:
    assert pick({"revisionTemplate": 1, "revision_template": 2}, "revisionTemplate") == 1


def test_pick_follows_the_whole_path() -> None:
    assert pick({"a": {"b": {"c": 3}}}, "a", "b", "c") == 3
    assert pick(MappingProxyType({"a": MappingProxyType({"b": 4})}), "a", "b") == 4
    assert pick(5) == 5


def test_pick_answers_the_default_for_a_missing_step_or_a_non_mapping() -> None:
    assert pick({"a": 1}, "b", default="d") == "d"
    assert pick({"a": [1]}, "a", "b", default="d") == "d"
    assert pick(None, "a") is None
    assert pick({"a": {"b": 1}}, "a", "c") is None


GEN1 = "type.googleapis.com/google.pubsub.v1.PubsubMessage"


def test_four_gen1_messages_are_unwrapped_and_five_are_refused() -> None:
    doc: object = _entry()
    for _ in range(4):
        doc = {"@type": GEN1, "data": _b64(doc)}
    assert parse(doc).insert_id == "i1"
    with pytest.raises(BadInput) as info:
        parse({"@type": GEN1, "data": _b64(doc)})
    assert info.value.reason == "envelope nested more than 4 levels deep"


def test_gen1_message_with_bad_base64_names_it() -> None:
    with pytest.raises(BadInput) as info:
        parse({"@type": GEN1, "data": "!!"})
    assert info.value.reason == "PubsubMessage.data: not valid base64"


def test_push_body_without_data_says_so() -> None:
    with pytest.raises(BadInput) as info:
        parse({"message": {"attributes": {"a": "b"}, "messageId": "1"}})
    assert info.value.reason == "Pub/Sub message without data"
