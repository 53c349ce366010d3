"""Hostile intake (issue 7): a malformed or malicious delivery never crashes a function, hangs
it or blows its memory, and is rejected with a one-line reason that does not echo the payload.

Properties, over inputs from tests/reliability/strategies.py:
- `parse` returns an `AuditEvent` or raises `BadInput`; nothing else escapes;
- `triage` + `evaluate` over the default policy, and every rule called directly on every one of
  its triggers, never raise, and return Findings whose `str` fields are `str` and which log as
  one valid JSON line; env var values never reach a Finding;
- every envelope of the same entry gives the same event;
- a reason is one line, under 200 characters, and echoes no 8 characters of the payload's text
  beyond Rampart's own words (`echoes`);
- adversarial inputs stay under 2 s and 200 MB each;
- `main.handle_cloud_event` acknowledges malformed deliveries with exactly one
  `rampart.bad_input` log line; `python main.py replay -` survives a file of garbage;
- injection strings are carried into Findings verbatim, as data.

Deterministic (`derandomize=True`). `RAMPART_SOAK=1` (make soak) runs the `soak` versions with
many more examples.
"""

from __future__ import annotations

import ast
import base64
import contextlib
import ctypes
import dataclasses
import gc
import io
import json
import json.decoder
import json.scanner
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import functions
import main
from shared import log
from shared.event import MAX_ENTRY_BYTES, AuditEvent, BadInput, from_cloudevent, iter_documents, parse, parse_bytes, skip_reason
from shared.model import Action, Finding, Severity
from shared.pipeline import evaluate, triage
from tests.helpers import ROOT, RULE_FIXTURES, default_policy, load_json
from tests.reliability import strategies as S

POLICY = default_policy()
RULES = functions.all_rules()
SOAK = os.environ.get("RAMPART_SOAK") == "1"

FINDING_STR_FIELDS = tuple(f.name for f in dataclasses.fields(Finding) if f.type == "str")
EVENT_STR_FIELDS = tuple(k for k, t in AuditEvent.__annotations__.items() if t == "str")


def fuzz(n: int) -> settings:
    return settings(
        derandomize=True,
        deadline=None,
        max_examples=n,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


def soak(n: int) -> settings:
    return fuzz(n * 40 if SOAK else n)


# ---------------------------------------------------------------------------
# What must hold of every reason, event and finding.


def _texts(payload: Any) -> Iterator[str]:
    """Every generated free text (it starts with a marker; keys too) in `payload`, cut to its
    head and tail. Not other strings: a field name in a reason is not an echo of the payload."""
    stack = [payload]
    while stack:
        cur = stack.pop()
        if isinstance(cur, str):
            if cur.startswith(S.MARKER):
                yield cur if len(cur) <= 4096 else cur[:2048] + "\x00" + cur[-512:]
        elif isinstance(cur, dict):
            stack.extend(cur.keys())
            stack.extend(cur.values())
        elif isinstance(cur, list):
            stack.extend(cur)


def _string_constants(path: Path) -> Iterator[str]:
    """Every string literal in a module's source, f-strings' fixed parts included."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.value


ECHO_LEN = 8  # this many characters of payload text, beyond Rampart's own words, is an echo
# Rampart's own words: what a reason may say without echoing anything. The fixed text of the
# messages shared/event.py builds and of the json module's (a "not JSON" reason quotes one), at
# least ECHO_LEN long (shorter literals are keys like "type" or "name", which would hide an echo
# such as "evil-type-name"), and the names of the types a reason reports ("found NoneType").
# Hypothesis draws text from the constants of the code under test, so it does hit these.
FIXED_WORDS: tuple[str, ...] = tuple(sorted(
    {w for p in (ROOT / "shared" / "event.py", Path(json.decoder.__file__), Path(json.scanner.__file__))
     for w in _string_constants(p) if len(w) >= ECHO_LEN}
    | {"NoneType", "bool", "int", "float", "str", "list", "dict", "bytes", "bytearray"},
    key=len, reverse=True,
))


def _fixed(reason: str) -> list[bool]:
    """Per character of `reason`: is it part of an occurrence of one of Rampart's own words?"""
    covered = [False] * len(reason)
    for word in FIXED_WORDS:
        start = reason.find(word)
        while start != -1:
            covered[start:start + len(word)] = [True] * len(word)
            start = reason.find(word, start + 1)
    return covered


def echoes(reason: str, payload: Any) -> str | None:
    """The payload text `reason` echoes, or None.

    An echo is a run of the reason found in one of the payload's generated texts that holds at
    least `ECHO_LEN` characters which are not Rampart's own words. So "(a 24-character
    non-Google name) is not an audit-log delivery" does not echo a generated type
    "SECRET-MARKER-0:audit-lo" (all 8 shared characters are the message's fixed words), while a
    reason quoting that type, or any 8 characters of it, whole or around fixed words, does."""
    windows = {reason[i:i + ECHO_LEN] for i in range(len(reason) - ECHO_LEN + 1)}
    covered: list[bool] | None = None
    for text in _texts(payload):
        if not any(w in text for w in windows):
            continue
        covered = _fixed(reason) if covered is None else covered
        for i in range(len(reason) - ECHO_LEN + 1):
            j = i + ECHO_LEN
            if reason[i:j] not in text:
                continue
            while j < len(reason) and reason[i:j + 1] in text:
                j += 1
            if covered[i:j].count(False) >= ECHO_LEN:
                return reason[i:j]
    return None


def check_reason(reason: Any, payload: Any = None) -> None:
    """One line, under 200 characters, no marker and no echo of the payload's text (`echoes`)."""
    assert isinstance(reason, str) and reason.strip(), f"empty reason: {reason!r}"
    assert "\n" not in reason and "\r" not in reason, f"multi-line reason: {reason!r}"
    assert len(reason) < 200, f"reason of {len(reason)} characters: {reason[:120]!r}..."
    assert "MARKER" not in reason, f"reason echoes the payload: {reason!r}"
    leaked = echoes(reason, payload)
    assert leaked is None, f"reason {reason!r} echoes payload text {leaked!r}"


def check_event(event: Any) -> None:
    assert isinstance(event, AuditEvent)
    for name in EVENT_STR_FIELDS:
        assert type(getattr(event, name)) is str, f"AuditEvent.{name} is {type(getattr(event, name)).__name__}"
    assert type(event.status_code) is int
    assert type(event.event_id) is str


def check_finding(f: Any) -> None:
    assert isinstance(f, Finding), f
    for name in FINDING_STR_FIELDS:
        assert type(getattr(f, name)) is str, f"Finding.{name} is {type(getattr(f, name)).__name__}"
    assert isinstance(f.severity, Severity) and isinstance(f.action, Action)
    assert isinstance(f.observed, dict)
    json.dumps(f.to_dict(), allow_nan=False)  # one valid JSON log line


def run_everything(doc: Any) -> tuple[AuditEvent | BadInput, list[Finding]]:
    """parse → triage → evaluate over the default policy, then every rule directly on every one
    of its triggers (so rules see the event even when triage would skip it)."""
    try:
        event = parse(doc)
    except BadInput as exc:
        check_reason(exc.reason, doc)
        return exc, []
    check_event(event)
    skip_reason(event)
    found: list[Finding] = []
    t = triage(event)
    if not isinstance(t, str):
        found += [f for f, _ in evaluate(event, t, POLICY)]
    for rule in RULES:
        params = POLICY.settings(rule.id).params
        for service, method in rule.triggers:
            f = rule.evaluate(event._replace(service=service, method=method), params)
            if f is not None:
                assert f.rule == rule.id
                found.append(f)
    for f in found:
        check_finding(f)
    return event, found


def fired(doc: Any) -> set[str]:
    """The rules the pipeline's own triage + evaluate report for `doc` (after run_everything's checks)."""
    run_everything(doc)
    event = parse(doc)
    t = triage(event)
    return set() if isinstance(t, str) else {f.rule for f, _ in evaluate(event, t, POLICY)}


def handled_once(doc: Any) -> list[Finding] | BadInput:
    """What one delivery costs in production: parse, triage, evaluate, once each."""
    try:
        event = parse(doc)
    except BadInput as exc:
        return exc
    t = triage(event)
    return [] if isinstance(t, str) else [f for f, _ in evaluate(event, t, POLICY)]


def deliver(d: S.Delivery) -> AuditEvent:
    if d.how == "doc":
        return parse(d.payload)
    if d.how == "bytes":
        return parse_bytes(d.payload)
    return from_cloudevent(d.payload)


def outcome(fn: Callable[[], AuditEvent], payload: Any) -> AuditEvent | BadInput:
    try:
        event = fn()
    except BadInput as exc:
        check_reason(exc.reason, payload)
        return exc
    check_event(event)
    return event


# ---------------------------------------------------------------------------
# Structured fuzzing: corpus-shaped entries, then broken ones.


def _generated(entry: dict[str, Any]) -> None:
    _, found = run_everything(entry)
    for f in found:
        assert S.VALUE_MARKER not in repr(f.to_dict()), f"an env var value reached a Finding: {f.rule}"


@fuzz(250)
@given(entry=S.log_entries())
def test_corpus_shaped_entries_parse_and_evaluate(entry: dict[str, Any]) -> None:
    _generated(entry)


def _broken(doc: Any) -> None:
    run_everything(doc)


@fuzz(300)
@given(doc=S.broken_entries())
def test_broken_entries_are_events_or_reasons(doc: Any) -> None:
    _broken(doc)


WRONG: tuple[Any, ...] = (
    None, True, -1, 1.5, math.inf, 10**4000, "²", "1e400s", "0" * 5000, [None], {}, {"paths": 5, "seconds": math.inf},
    S.nest("x", 300, True), S.MARKER + "x" * 2000,
)
# Parts of an entry nothing reads: breaking them only costs time.
UNREAD = frozenset({"_source", "authorizationInfo", "requestAttributes", "destinationAttributes", "traffic", "conditions", "oauthInfo"})
POSITIVE_FIXTURES = sorted(RULE_FIXTURES.glob("*/positive_*.json"))
# One fixture per rule, plus the v1 (Knative) shapes: a Run write runs all seven Run-write rules.
ONE_PER_RULE = [
    *sorted({p.parent.name: p for p in POSITIVE_FIXTURES}.values()),
    RULE_FIXTURES / "run_ingress_open" / "positive_v1_replace_all.json",
    RULE_FIXTURES / "run_plaintext_secrets" / "positive_v1_password_by_name.json",
]


def _rule_pass(entry: Any, rule_id: str) -> None:
    """The pipeline's triage + evaluate, and `rule_id` directly on each of its triggers."""
    try:
        event = parse(entry)
    except BadInput as exc:
        check_reason(exc.reason, entry)
        return
    check_event(event)
    skip_reason(event)
    t = triage(event)
    found = [] if isinstance(t, str) else [f for f, _ in evaluate(event, t, POLICY)]
    rule = functions.rule(rule_id)
    for service, method in rule.triggers:
        f = rule.evaluate(event._replace(service=service, method=method), POLICY.settings(rule_id).params)
        found += [f] if f is not None else []
    for f in found:
        check_finding(f)


def _every_field_takes_every_wrong_type(path: Path) -> None:
    entry = load_json(path)
    for parent, key in list(S.slots(entry, skip=UNREAD)):
        original = parent[key]
        for wrong in WRONG:
            parent[key] = wrong
            try:
                _rule_pass(entry, path.parent.name)
            except AssertionError:
                raise
            except Exception as exc:
                raise AssertionError(f"{path.name}: {key!r} = {repr(wrong)[:40]} raised {type(exc).__name__}: {exc}") from exc
        parent[key] = original


@pytest.mark.parametrize("path", ONE_PER_RULE, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_field_takes_every_wrong_type(path: Path) -> None:
    """Exhaustive, not sampled: each slot of a positive fixture, in turn, holds each wrong value."""
    _every_field_takes_every_wrong_type(path)


@pytest.mark.soak
@pytest.mark.parametrize("path", POSITIVE_FIXTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_soak_every_field_of_every_positive_fixture_takes_every_wrong_type(path: Path) -> None:
    _every_field_takes_every_wrong_type(path)


# ---------------------------------------------------------------------------
# Envelopes.


def _small(entry: dict[str, Any]) -> bool:
    return len(json.dumps(entry)) < MAX_ENTRY_BYTES // 2


def _same_event(entry: dict[str, Any], envelope: str, how: str) -> None:
    bare = outcome(lambda: parse(entry), entry)
    d = S.delivered(entry, envelope, how)
    got = outcome(lambda: deliver(d), entry)
    if isinstance(bare, BadInput):
        assert isinstance(got, BadInput), f"{d.envelope}/{d.how} accepted what the bare entry is rejected for: {bare.reason}"
    else:
        assert not isinstance(got, BadInput), f"{d.envelope}/{d.how} rejected a good entry: {got.reason}"
        assert repr(got) == repr(bare), f"{d.envelope}/{d.how} gives another event"


@fuzz(200)
@given(entry=S.log_entries().filter(_small), envelope=st.sampled_from(sorted(S.ENVELOPES)), how=st.sampled_from(S.HOWS))
def test_every_envelope_gives_the_same_event(entry: dict[str, Any], envelope: str, how: str) -> None:
    _same_event(entry, envelope, how)


def _garbled(d: S.Delivery) -> None:
    outcome(lambda: deliver(d), d.payload if d.how == "doc" else None)


@fuzz(300)
@given(d=S.any_garbled_deliveries())
def test_garbled_envelopes_are_events_or_reasons(d: S.Delivery) -> None:
    _garbled(d)


@pytest.mark.soak
@soak(250)
@given(
    entry=S.log_entries(), doc=S.broken_entries(), garbled=S.any_garbled_deliveries(),
    envelope=st.sampled_from(sorted(S.ENVELOPES)), how=st.sampled_from(S.HOWS),
)
def test_soak_entries_and_envelopes(entry: dict[str, Any], doc: Any, garbled: S.Delivery, envelope: str, how: str) -> None:
    _generated(entry)
    _broken(doc)
    _garbled(garbled)
    if _small(entry):
        _same_event(entry, envelope, how)


@fuzz(300)
@given(raw=st.one_of(st.binary(max_size=3000), st.text(max_size=500).map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_arbitrary_bytes_are_events_or_reasons(raw: bytes) -> None:
    outcome(lambda: parse_bytes(raw), None)
    outcome(lambda: from_cloudevent(S.CloudEventLike({"type": "google.cloud.audit.log.v1.written"}, raw)), None)
    data = base64.b64encode(raw).decode()
    outcome(lambda: parse({"message": {"data": data}}), None)
    outcome(lambda: parse({"specversion": "1.0", "type": "google.cloud.audit.log.v1.written", "data_base64": data}), None)
    for doc in iter_documents(raw.decode("utf-8", "surrogateescape")):
        if isinstance(doc, BadInput):
            check_reason(doc.reason)
        else:
            outcome(lambda doc=doc: parse(doc), None)


_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), S.secret_text()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(S.secret_text(), st.sampled_from(["protoPayload", "message", "data", "specversion", "type", "data_base64",
                                                       "methodName", "serviceName", "@type", "attributes", "protopayload"])),
            inner, max_size=4),
    ),
    max_leaves=20,
)


@fuzz(300)
@given(doc=_JSON)
def test_any_json_document_is_an_event_or_a_reason(doc: Any) -> None:
    run_everything(doc)
    for wrap in S.ENVELOPES.values():
        outcome(lambda wrap=wrap: parse(wrap(doc)), doc)


def _entry_text() -> str:
    e = load_json(RULE_FIXTURES / "run_ingress_open" / "positive_v1_replace_all.json")
    return json.dumps(e)


def _with(raw_json_value: str) -> bytes:
    """The ingress-open fixture with its ingress annotation replaced by raw JSON text."""
    return _entry_text().replace('"run.googleapis.com/ingress": "all"', f'"run.googleapis.com/ingress": {raw_json_value}', 1).encode()


HOSTILE_BODIES: dict[str, bytes] = {
    "invalid UTF-8": b'{"protoPayload": {"methodName": "\xff\xfe' + S.MARKER.encode() + b'"}}',
    "overlong UTF-8": b'{"a": "\xc0\xaf"}',
    "UTF-8 surrogate": b'{"a": "\xed\xa0\x80"}',
    "lone surrogate escape": _with('"\\udcff' + S.MARKER + '"'),
    "UTF-8 BOM": b"\xef\xbb\xbf" + _entry_text().encode(),
    "UTF-16": _entry_text().encode("utf-16"),
    "UTF-32": _entry_text().encode("utf-32"),
    "NUL bytes": b"\x00" * 64,
    "duplicate keys, last one bad": _entry_text()[:-1].encode() + b', "protoPayload": 5}',
    "duplicate keys, last one good": b'{"protoPayload": 5, ' + _entry_text()[1:].encode(),
    "NaN and Infinity literals": _with("NaN").replace(b'"percent": 100', b'"percent": Infinity'),
    "-Infinity status code": _entry_text().replace('"methodName"', '"status": {"code": -Infinity}, "methodName"', 1).encode(),
    "10k-digit integer at the top": b"1" * 10_000,
    "10k-digit integer in an annotation": _with("9" * 10_000),
    "10k-digit negative integer": _with("-" + "9" * 10_000),
    "10k-digit float": _with("1." + "9" * 10_000),
    "float overflowing to inf": _with("1e999999"),
    "10k-digit string status code": _entry_text().replace('"methodName"', '"status": {"code": "' + "0" * 10_000 + '"}, "methodName"', 1).encode(),
    "unicode-digit status code": _entry_text().replace('"methodName"', '"status": {"code": "²"}, "methodName"', 1).encode(),
    "100k-deep arrays": b"[" * 100_000 + b"]" * 100_000,
    "100k-deep objects": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "100k-deep unclosed": b"[" * 100_000,
    "990-deep annotation": _with("[" * 990 + "]" * 990),
    "empty": b"",
    "whitespace": b" \t\r\n ",
    "null": b"null",
    "a string": json.dumps(S.MARKER + "x").encode(),
    "trailing garbage": _entry_text().encode() + b" }{ " + S.MARKER.encode(),
    "truncated": _entry_text().encode()[:500],
    "control characters in strings": _with('"\x01\x02\x1b[31m' + S.MARKER + '"'),
    "just over 1 MiB": b'{"protoPayload": {"methodName": "' + b"x" * (1024 * 1024) + b'"}}',
}


def _hostile_deliveries(raw: bytes) -> dict[str, Callable[[], AuditEvent]]:
    b64 = base64.b64encode(raw).decode()
    return {
        "HTTP body": lambda: parse_bytes(raw),
        "CloudEvent binary data": lambda: from_cloudevent(S.CloudEventLike({"type": "google.cloud.audit.log.v1.written", "id": "1"}, raw)),
        "push message.data": lambda: parse({"message": {"data": b64}, "subscription": "s"}),
        "gen1 PubsubMessage": lambda: parse({"@type": "type.googleapis.com/google.pubsub.v1.PubsubMessage", "data": b64}),
        "CloudEvent data_base64": lambda: parse({"specversion": "1.0", "type": "google.cloud.audit.log.v1.written", "data_base64": b64}),
        "messagePublished": lambda: from_cloudevent(
            S.CloudEventLike({"type": "google.cloud.pubsub.topic.v1.messagePublished"}, {"message": {"data": b64}})),
    }


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_hostile_bodies_in_every_envelope(name: str) -> None:
    raw = HOSTILE_BODIES[name]
    for how, fn in _hostile_deliveries(raw).items():
        try:
            got = fn()
        except BadInput as exc:
            check_reason(exc.reason)
            assert S.MARKER not in exc.reason
            continue
        except Exception as exc:
            raise AssertionError(f"{name} via {how}: {type(exc).__name__} escaped: {str(exc)[:100]}") from exc
        check_event(got)
        run_everything(json.loads(raw))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("10k-digit integer at the top", "too many digits"),
        ("10k-digit integer in an annotation", "too many digits"),
        ("100k-deep arrays", "nested too deeply"),
        ("100k-deep objects", "nested too deeply"),
        ("invalid UTF-8", "not UTF-8"),
        ("just over 1 MiB", "over the"),
        ("10k-digit string status code", "status.code"),
        ("unicode-digit status code", "status.code"),
    ],
)
def test_hostile_bodies_get_the_right_reason(name: str, expected: str) -> None:
    with pytest.raises(BadInput) as info:
        parse_bytes(HOSTILE_BODIES[name])
    assert expected in info.value.reason
    check_reason(info.value.reason)


# ---------------------------------------------------------------------------
# Bounded time and memory: safety limits, not benchmarks.

TIME_LIMIT_S = 2.0
MEMORY_LIMIT_B = 200 * 1024 * 1024


def _fixture(rel: str) -> dict[str, Any]:
    return load_json(RULE_FIXTURES / rel)


def _deep(depth: int) -> Any:
    return S.nest("x", depth, True)


def _v1_with_env(env: list[dict[str, Any]]) -> dict[str, Any]:
    e = _fixture("run_plaintext_secrets/positive_v1_password_by_name.json")
    e["protoPayload"]["request"]["service"]["spec"]["template"]["spec"]["containers"][0]["env"] = env
    return e


def _v2_with_env(env: list[dict[str, Any]]) -> dict[str, Any]:
    e = _fixture("run_plaintext_secrets/positive_v2_credential_in_url_value.json")
    e["protoPayload"]["request"]["service"]["template"]["containers"][0]["env"] = env
    return e


def _iam(rel: str, bindings: list[dict[str, Any]] | None = None, deltas: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    e = _fixture(rel)
    if bindings is not None:
        e["protoPayload"]["request"]["policy"]["bindings"] = bindings
    if deltas is not None:
        e["protoPayload"]["serviceData"] = {"policyDelta": {"bindingDeltas": deltas}}
    return e


def _annotated(value: Any, key: str = "run.googleapis.com/invoker-iam-disabled") -> dict[str, Any]:
    e = _fixture("run_ingress_open/positive_v1_replace_all.json")
    e["protoPayload"]["request"]["service"]["metadata"]["annotations"][key] = value
    return e


def _evaluate_doc(doc: Any) -> Callable[[], Any]:
    return lambda: handled_once(doc)


def _reject(fn: Callable[[Any], Any], arg: Any) -> Callable[[], Any]:
    def run() -> Any:
        try:
            fn(arg)
        except BadInput as exc:
            return exc
        raise AssertionError("accepted")

    return run


def _replay_docs(text: str) -> Callable[[], Any]:
    return lambda: [d for d in iter_documents(text) if isinstance(d, BadInput)]


def _check_result(result: Any) -> None:
    for r in result if isinstance(result, list) else [result]:
        if isinstance(r, BadInput):
            check_reason(r.reason)
        else:
            check_finding(r)


# Regex-hostile values for run_plaintext_secrets' value patterns and names for its name
# patterns: long near-misses that make a backtracking engine retry at every position.
N = 200_000
REGEX_HOSTILE_VALUES = (
    "-----BEGIN " + "A " * N,
    "-----BEGIN " * (N // 11),
    "://" + "a:" * N,
    "://a" + ":" * N,
    "://" * N,
    "://" + "a" * N + ":" + "b" * N,
    '"private_key"' + " " * N,
    '"private_key"' * (N // 13),
    "AKIA" * (N // 4),
    "AIza" + "_" * N,
    "xox" + "a-" * N,
    "gh" + "p_" * N,
    "\t" * N + "@",
)
REGEX_HOSTILE_NAMES = ("PASS" * (N // 4), "_" * N + "DSN!", "CONN" + "_" * N, "_PAS" * (N // 4), "P" * N, "CONNECTION" * (N // 10))


def _bounded_cases() -> dict[str, Callable[[], Callable[[], Any]]]:
    """name → a builder (run outside the measurement) returning the work to measure."""
    ten_mb = 10 * 1024 * 1024
    many = 1_000_000
    return {
        "10 MB HTTP body": lambda: _reject(parse_bytes, b'{"a": "' + b"x" * ten_mb + b'"}'),
        "10 MB CloudEvent data": lambda: _reject(
            from_cloudevent, S.CloudEventLike({"type": "google.cloud.audit.log.v1.written"}, b"[" + b"1," * (ten_mb // 2) + b"1]")),
        "10 MB of base64 in a push body": lambda: _reject(parse, {"message": {"data": "QUJD" * (ten_mb // 4)}}),
        "10 MB strings in a decoded entry": lambda: _evaluate_doc(_annotated(S.MARKER + "x" * ten_mb, "run.googleapis.com/ingress")),
        "100k-deep arrays": lambda: _reject(parse_bytes, b"[" * 100_000 + b"]" * 100_000),
        "100k-deep objects in base64": lambda: _reject(
            parse, {"message": {"data": base64.b64encode(b'{"a":' * 100_000 + b"}" * 100_000).decode()}}),
        "100k-deep value in an annotation": lambda: _evaluate_doc(_annotated(_deep(100_000))),
        "100k-deep value as the CMEK key": lambda: _evaluate_doc(_annotated(_deep(100_000), "run.googleapis.com/encryption-key")),
        "100k-deep value as the timestamp": lambda: _evaluate_doc({**_annotated("true"), "timestamp": _deep(100_000)}),
        "1M-member binding (Cloud Run)": lambda: _evaluate_doc(_iam(
            "run_public_invoker/positive_v1_allusers_in_policy.json",
            [{"role": "roles/run.invoker", "members": [f"user:u{i}@example.com" for i in range(many)] + ["allUsers"]}])),
        "1M-member binding (KMS key ring)": lambda: _evaluate_doc(_iam(
            "kms_public_member/positive_keyring_allusers.json",
            [{"role": "roles/cloudkms.cryptoKeyEncrypterDecrypter", "members": [f"user:u{i}@example.com" for i in range(many)]}])),
        # ~9 µs a delta (two rules read them), so 1M take ~9 s; 100k is more than a 32 MiB request can carry.
        "100k binding deltas (KMS key)": lambda: _evaluate_doc(_iam(
            "kms_agent_binding_removed/positive_delta_remove_agent.json",
            deltas=[{"action": "REMOVE", "role": "roles/cloudkms.cryptoKeyEncrypterDecrypter",
                     "member": f"serviceAccount:service-{i}@gcp-sa-x.iam.gserviceaccount.com"} for i in range(many // 10)])),
        "1M members repeating allUsers": lambda: _evaluate_doc(_iam(
            "run_public_invoker/positive_v1_allusers_in_policy.json", [{"role": "roles/run.invoker", "members": ["allUsers"] * many}])),
        "100k env vars (v1)": lambda: _evaluate_doc(_v1_with_env([{"name": f"VAR_{i}", "value": f"v{i}"} for i in range(100_000)])),
        "100k flagged env vars (v2)": lambda: _evaluate_doc(_v2_with_env([{"name": f"DB_PASSWORD_{i}", "value": "x"} for i in range(100_000)])),
        "regex-hostile env values": lambda: _evaluate_doc(_v1_with_env([{"name": f"V{i}", "value": v} for i, v in enumerate(REGEX_HOSTILE_VALUES)])),
        "regex-hostile env names": lambda: _evaluate_doc(_v2_with_env([{"name": n, "value": n} for n in REGEX_HOSTILE_NAMES])),
        "regex-hostile service accounts": lambda: _evaluate_doc(_fixture_with_sa("1" * N + "-compute@developer.gserviceaccount.comx")),
        "regex-hostile appspot service account": lambda: _evaluate_doc(_fixture_with_sa("a" * N + "@appspot.gserviceaccount.co")),
        "pattern-hostile principal": lambda: _evaluate_doc(_with_principal("rampart-" + "@" * N + ".iam.gserviceaccount.co")),
        "pattern-hostile log name": lambda: _evaluate_doc({**_annotated("true"), "logName": "cloudaudit.googleapis.com%2F" * (N // 10) + "!"}),
        "pattern-hostile resource name": lambda: _evaluate_doc(_with_resource_name("projects/" + "p" * N + "/locations/" * (N // 11))),
        "10 MB of garbage replay lines": lambda: _replay_docs("\n".join(["{not json", "[" * 1000, "9" * 5000, "\u2028"] * 1700)),
    }


def _fixture_with_sa(sa: str) -> dict[str, Any]:
    e = _fixture("run_default_service_account/positive_v1_default_compute.json")
    e["protoPayload"]["request"]["service"]["spec"]["template"]["spec"]["serviceAccountName"] = sa
    return e


def _with_principal(p: str) -> dict[str, Any]:
    e = _fixture("run_ingress_open/positive_v1_replace_all.json")
    e["protoPayload"]["authenticationInfo"]["principalEmail"] = p
    return e


def _with_resource_name(name: str) -> dict[str, Any]:
    e = _fixture("kms_version_disabled/positive_disabled.json")
    e["protoPayload"]["resourceName"] = name
    e["protoPayload"]["request"]["cryptoKeyVersion"]["name"] = name
    return e


BOUNDED = _bounded_cases()


def _proc_status(key: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def _reset_peak_rss() -> bool:
    """Reset this process's resident-set high-water mark (Linux: /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        _proc_status("VmHWM")
    except (OSError, KeyError, ValueError):
        return False
    return True


PEAK_RSS = _reset_peak_rss()


def _trim_heap() -> None:
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # give freed heap back, so it cannot hide new use


def _measure(build: Callable[[], Callable[[], Any]], *, exact: bool = False) -> tuple[Any, float, int]:
    """Build the input, then run the work: its result, seconds, and peak bytes over the start.

    By default, on Linux, the peak is the resident-set high-water mark, reset just before the
    run: it costs the run nothing, but heap the process freed earlier and kept can absorb some
    of the new use (it undercounts by tens of MB at worst here, far below a blow-up). With
    `exact` (and off Linux) it is tracemalloc's peak, on a second run, since tracemalloc slows
    a run several times and the timed run must not be traced."""
    work = build()
    if PEAK_RSS and not exact:
        _trim_heap()
        _reset_peak_rss()
        base = _proc_status("VmRSS")
        t0 = time.perf_counter()
        result = work()
        elapsed = time.perf_counter() - t0
        return result, elapsed, _proc_status("VmHWM") - base
    t0 = time.perf_counter()
    result = work()
    elapsed = time.perf_counter() - t0
    work = build()
    tracemalloc.start()
    try:
        work()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return result, elapsed, peak


def _bounded(name: str, *, exact: bool) -> None:
    result, elapsed, peak = _measure(BOUNDED[name], exact=exact)
    if elapsed >= TIME_LIMIT_S:  # once more: one slow moment on a shared CI runner is not a finding
        result = None
        result, again, peak_again = _measure(BOUNDED[name], exact=exact)
        elapsed, peak = min(elapsed, again), max(peak, peak_again)
    assert elapsed < TIME_LIMIT_S, f"{name}: {elapsed:.2f} s"
    assert peak < MEMORY_LIMIT_B, f"{name}: {peak / 2**20:.0f} MB peak"
    _check_result(result)


@pytest.mark.parametrize("name", list(BOUNDED))
def test_adversarial_input_is_bounded_in_time_and_memory(name: str) -> None:
    _bounded(name, exact=False)


@pytest.mark.soak
@pytest.mark.parametrize("name", list(BOUNDED))
def test_soak_adversarial_input_is_bounded_in_exact_memory(name: str) -> None:
    _bounded(name, exact=True)


def test_memory_measure_is_not_blind() -> None:
    """A use over the limit must read as over the limit, whatever heap earlier tests left behind.

    The resident-set measure undercounts by the freed heap the process kept (seen: ~18 MB of a
    28 MB use, late in a full run), so what it must never do is hide a blow-up: 1.5 times the
    limit in small strings, the shape a parser blow-up would take, has to read above the limit."""
    count = int(MEMORY_LIMIT_B * 1.5) // 250
    _, _, peak = _measure(lambda: lambda: ["x" * 200 + str(i) for i in range(count)])
    assert peak > MEMORY_LIMIT_B, f"{peak / 2**20:.0f} MB of a {MEMORY_LIMIT_B * 1.5 / 2**20:.0f} MB use"


def test_exact_memory_measure_sees_small_uses() -> None:
    """tracemalloc, the exact measure, sees the ~24 MB of 400,000 new short strings."""
    _, _, peak = _measure(lambda: lambda: [str(i) for i in range(400_000)], exact=True)
    assert peak > 20 * 2**20, f"{peak / 2**20:.0f} MB"


# ---------------------------------------------------------------------------
# Through the real entry point.


def _bad_input_acknowledged(ce: S.CloudEventLike, payload: Any) -> None:
    with log.captured() as buf:
        assert main.handle_cloud_event(ce) is None
    lines = buf.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert S.MARKER not in lines[0] and S.VALUE_MARKER not in lines[0], lines[0]
    rec = json.loads(lines[0])
    assert rec["message"] == "rampart.bad_input" and rec["severity"] == "WARNING", rec
    check_reason(rec["reason"], payload)


def _is_bad(ce: S.CloudEventLike) -> bool:
    try:
        from_cloudevent(ce)
    except BadInput:
        return True
    return False


_CE_DATA = st.one_of(
    st.binary(max_size=500),
    _JSON,
    S.broken_entries().filter(_small),
    S.any_garbled_deliveries().map(lambda d: d.payload.data if d.how == "ce" else d.payload),
)


@fuzz(150)
@given(data=_CE_DATA, ce_type=st.sampled_from(["google.cloud.audit.log.v1.written", "google.cloud.pubsub.topic.v1.messagePublished"]))
def test_handle_cloud_event_acknowledges_malformed_deliveries_with_one_log_line(data: Any, ce_type: str) -> None:
    ce = S.CloudEventLike({"type": ce_type, "id": "evt-1", "source": "//cloudaudit.googleapis.com/projects/p"}, data)
    assume(_is_bad(ce))  # a valid delivery would go on to the pipeline, which this test is not about
    _bad_input_acknowledged(ce, data)


@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_handle_cloud_event_acknowledges_hostile_bodies(name: str) -> None:
    ce = S.CloudEventLike({"type": "google.cloud.audit.log.v1.written", "id": "evt-1"}, HOSTILE_BODIES[name])
    if _is_bad(ce):
        _bad_input_acknowledged(ce, None)


def _valid_line(rel: str) -> str:
    e = load_json(RULE_FIXTURES / rel)
    return json.dumps(e)


GARBAGE_LINES: list[bytes] = [
    b"not json at all " + S.MARKER.encode(),
    b"\xff\xfe\x00 invalid utf-8",
    b"[" * 100_000,
    b"9" * 10_000,
    b'{"a": NaN, "b": Infinity}',
    b'{"protoPayload": 5}',
    json.dumps({"specversion": "1.0", "type": S.MARKER + "type", "data": {}}).encode(),
    json.dumps({"message": {"data": "!!!" + S.MARKER}}).encode(),
    b'{"protoPayload": {"methodName": "m"}, "protoPayload": []}',
    b"{",
    b"x" * (2 * 1024 * 1024),
]


def _replay_input() -> tuple[bytes, set[int]]:
    """Valid entries interleaved with garbage; the garbage line numbers that fail to parse as JSON."""
    valid = [_valid_line("run_ingress_open/positive_v1_replace_all.json").encode(),
             _valid_line("kms_version_disabled/positive_disabled.json").encode()]
    lines: list[bytes] = []
    not_json: set[int] = set()
    for i, g in enumerate(GARBAGE_LINES):
        lines.append(valid[i % 2])
        lines.append(g)
        try:
            json.loads(g)
        except (ValueError, RecursionError):
            not_json.add(len(lines))
    lines.append(valid[0])
    return b"\n".join(lines) + b"\n", not_json


def _replay(stdin: bytes, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "main.py", "replay", "-"], input=stdin, capture_output=True, cwd=ROOT, timeout=120,
        env={**os.environ, "PYTHONIOENCODING": "", **(env or {})},
    )


def _check_replay(proc: subprocess.CompletedProcess[bytes], not_json: set[int]) -> None:
    err = proc.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err[-2000:]
    assert proc.returncode == 0, err[-2000:]
    assert S.MARKER not in err
    summary = [ln for ln in err.splitlines() if ln.startswith("replay: ")]
    assert len(summary) == 1, err
    for n in sorted(not_json):
        assert re.search(rf"\bline {n}\b", summary[0]), f"line {n} not reported: {summary[0]}"
    out = proc.stdout.decode("utf-8", "replace")
    assert "run_ingress_open" in out and "kms_version_disabled" in out, out


def test_replay_survives_a_file_of_mixed_garbage() -> None:
    stdin, not_json = _replay_input()
    _check_replay(_replay(stdin, {"LC_ALL": "C.UTF-8"}), not_json)


def test_replay_survives_invalid_utf8_on_a_strict_stdin() -> None:
    stdin, not_json = _replay_input()
    _check_replay(_replay(stdin, {"PYTHONIOENCODING": "utf-8:strict"}), not_json)


@fuzz(40)
@given(lines=st.lists(st.one_of(
    st.integers(0, len(GARBAGE_LINES) - 2).map(GARBAGE_LINES.__getitem__),  # not sampled_from: its repr would be MBs
    st.binary(max_size=200),
    S.broken_entries().map(lambda d: json.dumps(d).encode()),
    S.log_entries().map(lambda d: json.dumps(d).encode()),
), min_size=1, max_size=8))
def test_replay_in_process_never_raises(lines: list[bytes]) -> None:
    from shared.cli import main as cli_main

    with tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False) as fh:
        fh.write(b"\n".join(lines))
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            rc = cli_main(["replay", fh.name], out=io.StringIO())
    finally:
        os.unlink(fh.name)
    # 4: nothing valid was read (all garbage), said in one line; never an exception.
    assert rc == 0 or (rc == 4 and "no valid audit log entry" in err.getvalue()), (rc, err.getvalue()[-500:])
    assert S.MARKER not in err.getvalue() and "Traceback" not in err.getvalue()


# ---------------------------------------------------------------------------
# Injection strings are carried as data.


@pytest.mark.parametrize("site", S.INJECTION_SITES, ids=lambda s: s.name)
def test_injection_strings_reach_the_finding_verbatim(site: S.InjectionSite) -> None:
    for s in S.INJECTION_STRINGS:
        event, found = run_everything(S.planted(site, s))
        assert isinstance(event, AuditEvent), f"{s!r} in {site.name}: rejected: {getattr(event, 'reason', '')}"
        if not site.fits(s):
            continue
        mine = [f for f in found if f.rule == site.rule]
        assert mine, f"{site.rule} no longer fires with {s!r} in {site.name}"
        assert s in site.read(mine[0]), f"{s!r} in {site.name} did not reach the Finding verbatim: {site.read(mine[0])!r}"


def test_injection_findings_cover_every_string_and_log_as_one_line() -> None:
    found = S.injection_findings()
    carried = [t for f in found for t in S.strings_in(f.to_dict())]
    for s in S.INJECTION_STRINGS:
        assert any(s in t for t in carried), f"no Finding carries {s!r}"
    with log.captured() as buf:
        for f in found:
            check_finding(f)
            log.warning("rampart.test_finding", finding=f.to_dict())
    assert len(buf.getvalue().splitlines()) == len(found)


# ---------------------------------------------------------------------------
# Regressions: one test per bug this file found.


def test_regression_integer_with_more_digits_than_python_converts_is_bad_input() -> None:
    """json.loads raises a plain ValueError (int max str digits), which escaped parse_bytes,
    from_cloudevent, base64 envelopes and replay."""
    raw = HOSTILE_BODIES["10k-digit integer in an annotation"]
    for how, fn in _hostile_deliveries(raw).items():
        with pytest.raises(BadInput, match="too many digits"):
            fn()
        assert how
    docs = list(iter_documents(raw.decode() + "\n" + _entry_text()))
    assert isinstance(docs[0], BadInput) and "line 1" in docs[0].reason
    assert isinstance(docs[1], dict), "the good line after it is kept"


def test_regression_status_code_digits_python_cannot_convert() -> None:
    """`"²".isdigit()` is True but int("²") raises; so does int() of 5000 ASCII digits."""
    for code in ("²", "٣" * 3, "0" * 5000):
        with pytest.raises(BadInput, match=r"status\.code"):
            parse({"protoPayload": {"methodName": "m", "status": {"code": code}}})
    assert parse({"protoPayload": {"methodName": "m", "status": {"code": "0"}}}).status_code == 0


def test_regression_enum_digit_strings_python_cannot_convert() -> None:
    """`_enum` ran int() on any str.isdigit() value: "²" or 5000 digits raised ValueError in
    run_ingress_open and run_vpc_egress."""
    for value in ("²", "9" * 5000):
        e = _fixture("run_ingress_open/positive_v2_update_all.json")
        e["protoPayload"]["request"]["service"]["ingress"] = value
        e["protoPayload"]["request"]["service"]["template"]["vpcAccess"]["egress"] = value
        assert {"run_ingress_open", "run_vpc_egress"} <= fired(e)
    e = _fixture("run_ingress_open/positive_v2_update_all.json")
    e["protoPayload"]["request"]["service"]["ingress"] = "3"
    assert "run_ingress_open" not in fired(e), "digit strings still map to the enum"


@pytest.mark.parametrize("period", ["1e400s", "infs", "-infs", {"seconds": 10**400}, {"seconds": math.inf}, {"seconds": "1" * 5000}])
def test_regression_rotation_period_out_of_any_duration_range(period: Any) -> None:
    """int(float("1e400")) raised OverflowError, and a 400-digit seconds value overflowed the
    float division in kms_rotation: both escaped evaluate."""
    e = _fixture("kms_rotation/positive_update_one_year.json")
    e["protoPayload"]["request"]["cryptoKey"]["rotationPeriod"] = period
    _, found = run_everything(e)
    rot = [f for f in found if f.rule == "kms_rotation"]
    assert rot and rot[0].observed["rotation_period_days"] is None


@pytest.mark.parametrize("rel", ["kms_rotation/positive_update_one_year.json", "kms_version_disabled/positive_disabled.json"])
@pytest.mark.parametrize("paths", [5, None, 1.5, {"a": 1}, "state"])
def test_regression_update_mask_paths_of_the_wrong_type(rel: str, paths: Any) -> None:
    """`mask.get("paths", [])` was iterated whatever it held: an int raised TypeError."""
    e = _fixture(rel)
    e["protoPayload"]["request"]["updateMask"] = {"paths": paths}
    run_everything(e)


def test_regression_structured_cloudevent_type_is_not_echoed() -> None:
    """The CloudEvent `type` of a structured delivery is payload: it was quoted in the reason, at any length."""
    with pytest.raises(BadInput) as info:
        parse({"specversion": "1.0", "type": S.MARKER + "x" * 5000, "data": {"bucket": "b"}})
    check_reason(info.value.reason)
    with pytest.raises(BadInput, match=r"google\.cloud\.storage\.object\.v1\.finalized"):
        parse({"specversion": "1.0", "type": "google.cloud.storage.object.v1.finalized", "data": {"bucket": "b"}})
    with pytest.raises(BadInput) as info:
        from_cloudevent(S.CloudEventLike({"type": S.MARKER + "\n" * 300}, None))
    check_reason(info.value.reason)


def test_regression_non_string_annotations_are_not_stringified() -> None:
    """`str()` of an arbitrary annotation value: a deep one raised RecursionError, a big one
    cost its size again, and a list holding a key name read as a CMEK key."""
    for key in ("run.googleapis.com/invoker-iam-disabled", "run.googleapis.com/encryption-key"):
        run_everything(_annotated(_deep(100_000), key))
    assert "run_invoker_iam_disabled" not in fired(_annotated(["true"]))
    assert "run_invoker_iam_disabled" in fired(_annotated(True))
    assert "run_invoker_iam_disabled" in fired(_annotated("TRUE"))
    e = _annotated(["projects/p/locations/us-central1/keyRings/r/cryptoKeys/k"], "run.googleapis.com/encryption-key")
    _, found = run_everything(e)
    cmek = [f for f in found if f.rule == "run_cmek_missing"]
    assert cmek and "[" not in cmek[0].observed["encryption_key"]


def test_regression_timestamp_of_the_wrong_type() -> None:
    """`str(ts)` made a dict or list timestamp (at any depth or size) the Finding's timestamp and event_id."""
    e = _annotated("true")
    e["timestamp"] = {"seconds": S.MARKER}
    with pytest.raises(BadInput, match="timestamp") as info:
        parse(e)
    check_reason(info.value.reason, e)
    e["timestamp"] = 1733000000
    assert parse(e).timestamp == "1733000000"


def test_regression_replay_line_numbers_count_newlines_only() -> None:
    """str.splitlines() also splits on U+2028, U+2029 and U+0085, which JSON allows raw inside
    strings: a valid entry was rejected in two halves and later line numbers shifted."""
    good = json.dumps(_annotated("true" + "\u2028" + "x"), ensure_ascii=False)
    docs = list(iter_documents(f"{good}\nnot json\n{good}\u2029\n"))
    assert [type(d).__name__ for d in docs] == ["dict", "BadInput", "dict"]
    assert "line 2" in docs[1].reason


def test_regression_replay_deep_first_line_does_not_hide_the_rest() -> None:
    """A first line nested too deeply made the whole file one rejection, dropping every good line."""
    docs = list(iter_documents("[" * 100_000 + "\n" + _entry_text() + "\n"))
    assert isinstance(docs[0], BadInput) and "line 1" in docs[0].reason
    assert isinstance(docs[1], dict)


def test_regression_binding_delta_action_as_enum_number() -> None:
    """BindingDelta.Action serialized as a number (ADD = 1, REMOVE = 2) was neither, so a grant of
    allUsers with a numeric action went unseen."""
    e = _fixture("run_public_invoker/positive_v2_delta_allauthenticated.json")
    for d in e["protoPayload"]["serviceData"]["policyDelta"]["bindingDeltas"]:
        d["action"] = {"ADD": 1, "REMOVE": 2}.get(d["action"], d["action"])
    assert "run_public_invoker" in fired(e)
    e = _fixture("kms_agent_binding_removed/positive_delta_remove_agent.json")
    e["protoPayload"]["serviceData"]["policyDelta"]["bindingDeltas"][0]["action"] = 2
    assert "kms_agent_binding_removed" in fired(e)
    e["protoPayload"]["serviceData"]["policyDelta"]["bindingDeltas"][0]["action"] = True
    assert "kms_agent_binding_removed" not in fired(e), "a JSON true is not an action"


def test_regression_crypto_key_purpose_as_enum_number() -> None:
    """CryptoKeyPurpose as a number: 5 (ASYMMETRIC_SIGN) read as "" and so as a symmetric key
    without rotation, while "5" did not."""
    e = _fixture("kms_rotation/positive_create_without_rotation.json")
    for purpose, fires in ((5, False), ("5", False), (1, True), ("ENCRYPT_DECRYPT", True)):
        e["protoPayload"]["request"]["cryptoKey"]["purpose"] = purpose
        assert ("kms_rotation" in fired(e)) is fires, purpose


# ---------------------------------------------------------------------------
# The echo oracle itself (issue 19): it must pass Rampart's own words and fail a real echo.


OVERLAP_TYPE = S.MARKER + "0:audit-lo"  # what hypothesis drew in the red soak of issue 19


def test_echo_oracle_passes_rampart_words_shared_with_the_payload() -> None:
    payload = {"specversion": "1.0", "type": OVERLAP_TYPE, "data": {"bucket": S.MARKER + "bucket"}}
    with pytest.raises(BadInput) as info:
        parse(payload)
    assert "audit-lo" in info.value.reason, "the message no longer shares the words this test is about"
    check_reason(info.value.reason, payload)
    # Fixed words and a number around them: still Rampart's message, not the payload's text.
    check_reason("CloudEvent type (a 24-character non-Google name) is not an audit-log delivery",
                 {"type": S.MARKER + "3:24-character non-Google"})
    check_reason("protoPayload: expected an object, found NoneType", {"k": S.MARKER + "1:found NoneType"})


@pytest.mark.parametrize("reason", [
    "CloudEvent type evil-type-name is not an audit-log delivery",      # a quoted piece, no marker
    "CloudEvent type (a 24-character non-Google name) audit-lo-evil-name",  # around fixed words
    "protoPayload.evil-type-name: expected an object",                   # glued to a field name
    "CloudEvent type 'evil) is not an audit-log deliveryname' x",      # fixed words inside the echo
])
def test_echo_oracle_fails_a_real_echo(reason: str) -> None:
    payload = {"type": S.MARKER + "0:audit-lo-evil-type-name", "data": {"b": S.MARKER + "1:evil) is not an audit-log deliveryname"}}
    assert echoes(reason, payload) is not None
    with pytest.raises(AssertionError, match="echoes payload text"):
        check_reason(reason, payload)


def test_echo_oracle_fails_an_echo_of_a_huge_text_without_its_marker() -> None:
    payload = {"data": {"bucket": S.MARKER + "2:" + "x" * 5000}}
    with pytest.raises(AssertionError, match="echoes payload text 'xxxxxxxx"):
        check_reason("bucket xxxxxxxxxxxx is not an audit-log delivery", payload)
