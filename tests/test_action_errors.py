"""The actions' error discipline (shared.actions) on its own: which failures are redelivered
(TransientError), which become a FAILED or NOT_FOUND record that is alerted and acknowledged,
which write refusals count as a conflict (re-read and re-plan), and how an API error's message
is cut for a reason. The action tests drive these through the stand-in; these are the unit
checks, each on an exception built as the google.api_core client raises it."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc

from shared.actions import (
    ActionContext,
    TransientError,
    error_message,
    is_conflict,
    read_timeout,
    rest_call,
    run_remediation,
)
from shared.model import Action, ActionRecord, Finding, Mode, Outcome, Severity

SVC = "projects/p/locations/us-central1/services/s"


def _finding() -> Finding[Any]:
    return Finding(rule="run_ingress_open", severity=Severity.HIGH, title="t", resource=SVC, resource_type="run.service",
                   project="p", location="us-central1", principal="dev@example.com", action=Action.REVERT,
                   event_id="e1", method="m", timestamp="2026-01-01T00:00:00Z")


def _raising(exc: BaseException) -> Any:
    def remediate(finding: Finding[Any], params: Any, ctx: ActionContext) -> ActionRecord:
        raise exc

    return remediate


CTX = ActionContext(mode=Mode.ENFORCE, action=Action.REVERT)


@pytest.mark.parametrize("exc", [
    gexc.TooManyRequests("quota"), gexc.InternalServerError("oops"), gexc.BadGateway("bg"),
    gexc.ServiceUnavailable("down"), gexc.GatewayTimeout("gt"), gexc.DeadlineExceeded("late"),
    gexc.RetryError("gave up", cause=None), TimeoutError("t"), ConnectionError("reset"),
    requests.exceptions.ReadTimeout("read timed out"), auth_exc.TransportError("token refresh"),
], ids=lambda e: type(e).__name__)
def test_what_a_redelivery_may_cure_is_raised_for_redelivery_naming_rule_and_resource(exc: BaseException) -> None:
    with pytest.raises(TransientError) as info:
        run_remediation(_raising(exc), _finding(), None, CTX)
    assert str(info.value).startswith(f"run_ingress_open on {SVC}: {type(exc).__name__}: ")
    assert info.value.__cause__ is exc


def test_a_transient_error_raised_by_the_action_passes_unchanged() -> None:
    exc = TransientError("the service changed under us 3 time(s)")
    with pytest.raises(TransientError) as info:
        run_remediation(_raising(exc), _finding(), None, CTX)
    assert info.value is exc


def test_a_resource_gone_is_a_not_found_record_not_a_failure() -> None:
    rec = run_remediation(_raising(gexc.NotFound("Service s not found")), _finding(), None, CTX)
    assert rec.outcome is Outcome.NOT_FOUND and rec.reason == "Service s not found" and rec.mode is Mode.ENFORCE
    assert rec.finding == _finding()


@pytest.mark.parametrize("exc", [gexc.PermissionDenied("caller lacks run.services.update"), gexc.BadRequest("bad field")],
                         ids=lambda e: type(e).__name__)
def test_a_permanent_api_error_is_a_failed_record_naming_the_error(exc: gexc.GoogleAPICallError) -> None:
    rec = run_remediation(_raising(exc), _finding(), None, CTX)
    assert rec.outcome is Outcome.FAILED and rec.reason == f"{type(exc).__name__}: {exc.message}"
    assert rec.finding == _finding() and rec.mode is Mode.ENFORCE  # the alert says which violation failed


def test_anything_else_propagates_as_the_bug_it_is() -> None:
    with pytest.raises(KeyError):
        run_remediation(_raising(KeyError("x")), _finding(), None, CTX)


def test_a_record_carries_the_time_the_action_took() -> None:
    def slow(finding: Finding[Any], params: Any, ctx: ActionContext) -> ActionRecord:
        import time

        time.sleep(0.02)
        return ActionRecord(finding=finding, mode=ctx.mode, outcome=Outcome.REMEDIATED)

    rec = run_remediation(slow, _finding(), None, CTX)
    assert 15 <= rec.duration_ms < 5000


def test_the_time_recorded_is_in_milliseconds(monkeypatch: pytest.MonkeyPatch) -> None:
    import shared.actions

    ticks = iter([100.0, 100.25])
    monkeypatch.setattr(shared.actions.time, "perf_counter", lambda: next(ticks, 100.25))
    rec = run_remediation(lambda f, p, c: ActionRecord(finding=f, mode=c.mode, outcome=Outcome.REMEDIATED), _finding(), None, CTX)
    assert rec.duration_ms == 250.0


def test_a_redelivered_failure_says_what_the_api_answered() -> None:
    with pytest.raises(TransientError) as info:
        run_remediation(_raising(gexc.ServiceUnavailable("The service is currently unavailable.")), _finding(), None, CTX)
    assert str(info.value) == f"run_ingress_open on {SVC}: ServiceUnavailable: The service is currently unavailable."


def test_an_error_message_is_one_line_of_at_most_300_characters() -> None:
    assert error_message(gexc.Forbidden("no\n  access\tfor  you")) == "no access for you"
    assert error_message(ValueError("plain " * 100)) == ("plain " * 100)[:300]
    assert len(error_message(ValueError("x" * 1000))) == 300


def test_a_read_never_waits_over_30_seconds_nor_over_the_operation_timeout() -> None:
    assert read_timeout(600.0) == 30.0
    assert read_timeout(5.0) == 5.0


def _rest_error(status: int, body: dict[str, Any]) -> gexc.GoogleAPICallError:
    resp = requests.Response()
    resp.status_code = status
    resp._content = json.dumps(body).encode()
    resp.request = requests.Request("PATCH", "https://run.googleapis.com/v2/x").prepare()
    return gexc.from_http_response(resp)


@pytest.mark.parametrize(("exc", "conflict"), [
    (gexc.Conflict("etag mismatch"), True),  # 409 ABORTED, AIP-154
    (gexc.Aborted("aborted"), True),  # Aborted is the 409 class too
    (gexc.PreconditionFailed("412"), True),
    (gexc.FailedPrecondition("stale etag"), True),  # gRPC FAILED_PRECONDITION
    (gexc.AlreadyExists("Revision named x already exists"), False),  # a 409 that no re-read cures
    (gexc.BadRequest("invalid field"), False),
    (gexc.PermissionDenied("denied"), False),
], ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v))
def test_which_refusals_are_a_conflict(exc: BaseException, conflict: bool) -> None:
    assert is_conflict(exc) is conflict


def test_a_rest_400_is_a_conflict_only_when_its_body_says_failed_precondition() -> None:
    # Over REST the exception class follows the HTTP status (400: BadRequest); the google.rpc
    # status in the JSON body tells a stale etag (FAILED_PRECONDITION) from a bad request.
    stale = _rest_error(400, {"error": {"code": 400, "status": "FAILED_PRECONDITION", "message": "etag"}})
    bad = _rest_error(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "bad"}})
    assert isinstance(stale, gexc.BadRequest) and is_conflict(stale)
    assert isinstance(bad, gexc.BadRequest) and not is_conflict(bad)
    no_body = gexc.BadRequest("bad")
    assert not is_conflict(no_body)


def test_rest_call_raises_the_api_error_of_an_error_status_and_returns_json_otherwise() -> None:
    class Session:
        def __init__(self, status: int, body: bytes) -> None:
            self.status, self.body, self.calls = status, body, []

        def request(self, method: str, url: str, timeout: float, **kw: Any) -> requests.Response:
            self.calls.append((method, url, timeout, kw))
            resp = requests.Response()
            resp.status_code, resp._content = self.status, self.body
            resp.request = requests.Request(method, url).prepare()
            return resp

    ok = Session(200, b'{"name": "s"}')
    assert rest_call((ok, "https://api"), "GET", "v2/projects/p/sinks/s", 7.0, params={"a": "b"}) == {"name": "s"}
    assert ok.calls == [("GET", "https://api/v2/projects/p/sinks/s", 7.0, {"params": {"a": "b"}})]
    assert rest_call((Session(200, b""), "https://api"), "DELETE", "v2/x", 1.0) == {}
    with pytest.raises(gexc.NotFound):
        rest_call((Session(404, b'{"error": {"code": 404, "message": "gone"}}'), "https://api"), "GET", "v2/x", 1.0)
    with pytest.raises(gexc.BadRequest):
        rest_call((Session(400, b'{"error": {"code": 400, "message": "bad"}}'), "https://api"), "GET", "v2/x", 1.0)
