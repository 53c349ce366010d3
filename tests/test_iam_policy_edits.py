"""IAM policy edits and undo commands (shared.actions.iam) on their own: a revert must remove
exactly the grants it was asked to and keep everything else of the live policy (other members,
conditions, auditConfigs, version, etag), a restore must add exactly what is missing, and the
undo command an operator pastes must name the same resource, member, role and condition.
Expected values are written out by hand from the google.iam.v1 Policy JSON shape
(https://cloud.google.com/iam/docs/reference/rest/v1/Policy) and gcloud's flags
(https://cloud.google.com/sdk/gcloud/reference/run/services/add-iam-policy-binding,
https://cloud.google.com/sdk/gcloud/reference/kms/keys/add-iam-policy-binding)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from shared.actions.iam import (
    EXEMPT_FIRST,
    BadGrant,
    Grant,
    add_members,
    binding_field,
    gcloud_condition,
    gcloud_target,
    grants,
    policy_facts,
    public_facts,
    public_grants,
    remove_grants,
    undo,
    with_grants,
    without_grants,
)
from shared.model import Change

INVOKER = "roles/run.invoker"
VIEWER = "roles/run.viewer"
WORK_HOURS = {"title": "work hours", "expression": "request.time.getHours('UTC') < 18"}
WH = '{"expression":"request.time.getHours(\'UTC\') < 18","title":"work hours"}'  # canonical JSON
SVC = "projects/p1/locations/us-central1/services/api"
KEY = "projects/p1/locations/us/keyRings/ring/cryptoKeys/k1"
RING = "projects/p1/locations/us/keyRings/ring"
FN = "projects/p1/locations/europe-west1/functions/fn"


def _policy() -> dict[str, Any]:
    return {
        "version": 3,
        "etag": "BwYx",
        "auditConfigs": [{"service": "allServices", "auditLogConfigs": [{"logType": "DATA_READ"}]}],
        "bindings": [
            {"role": INVOKER, "members": ["user:bob@example.com", "allUsers"]},
            {"role": INVOKER, "members": ["allUsers"], "condition": WORK_HOURS},
            {"role": VIEWER, "members": ["allAuthenticatedUsers"]},
        ],
    }


def test_grants_are_role_member_and_condition() -> None:
    assert grants(_policy()) == [
        Grant(INVOKER, "user:bob@example.com"), Grant(INVOKER, "allUsers"),
        Grant(INVOKER, "allUsers", WH), Grant(VIEWER, "allAuthenticatedUsers"),
    ]
    assert grants({}) == []


def test_public_grants_on_some_roles_or_any_role_conditional_ones_included() -> None:
    assert public_grants(_policy(), [INVOKER]) == [Grant(INVOKER, "allUsers"), Grant(INVOKER, "allUsers", WH)]
    assert public_grants(_policy()) == [Grant(INVOKER, "allUsers"), Grant(INVOKER, "allUsers", WH),
                                        Grant(VIEWER, "allAuthenticatedUsers")]
    assert public_grants(_policy(), ["roles/owner"]) == []
    assert public_facts(_policy(), [VIEWER]) == {"public_members": [{"role": VIEWER, "member": "allAuthenticatedUsers"}]}


def test_removing_grants_removes_exactly_those_and_keeps_the_rest_as_read() -> None:
    live = _policy()
    read = copy.deepcopy(live)
    new, changes = without_grants(live, [Grant(INVOKER, "allUsers"), Grant(VIEWER, "allAuthenticatedUsers")])
    assert live == read  # the read policy is not edited in place
    assert new == {
        "version": 3,
        "etag": "BwYx",  # the write carries the etag it was read with
        "auditConfigs": read["auditConfigs"],
        "bindings": [
            {"role": INVOKER, "members": ["user:bob@example.com"]},
            {"role": INVOKER, "members": ["allUsers"], "condition": WORK_HOURS},  # conditional: another grant
        ],  # the viewer binding left empty goes, as IAM drops it
    }
    assert changes == [
        Change(f"bindings[{INVOKER}].members", ["allUsers", "user:bob@example.com"], ["user:bob@example.com"]),
        Change(f"bindings[{VIEWER}].members", ["allAuthenticatedUsers"], []),
    ]


def test_removing_a_conditional_grant_leaves_the_unconditional_one() -> None:
    new, changes = without_grants(_policy(), [Grant(INVOKER, "allUsers", WH)])
    assert [b for b in new["bindings"] if b["role"] == INVOKER] == [{"role": INVOKER, "members": ["user:bob@example.com", "allUsers"]}]
    assert changes == [Change(f"bindings[{INVOKER} if work hours].members", ["allUsers"], [])]


def test_removing_from_a_policy_without_bindings_adds_none() -> None:
    assert without_grants({"etag": "x"}, [Grant(INVOKER, "allUsers")]) == ({"etag": "x"}, [])


def test_adding_grants_joins_the_binding_of_the_same_role_and_condition() -> None:
    live = _policy()
    read = copy.deepcopy(live)
    new, changes = with_grants(live, [Grant(INVOKER, "user:carol@example.com"), Grant(INVOKER, "user:bob@example.com")])
    assert live == read
    assert new["bindings"][0] == {"role": INVOKER, "members": ["user:bob@example.com", "allUsers", "user:carol@example.com"]}
    assert new["bindings"][1:] == read["bindings"][1:] and new["etag"] == "BwYx" and new["auditConfigs"] == read["auditConfigs"]
    assert changes == [Change(f"bindings[{INVOKER}].members", ["allUsers", "user:bob@example.com"],
                              ["allUsers", "user:bob@example.com", "user:carol@example.com"])]


def test_a_member_with_a_conditional_grant_still_gets_the_unconditional_one() -> None:
    live = {"version": 3, "bindings": [{"role": INVOKER, "members": ["user:eve@example.com"], "condition": WORK_HOURS}]}
    new, changes = with_grants(live, [Grant(INVOKER, "user:eve@example.com")])
    assert new["bindings"] == [live["bindings"][0], {"role": INVOKER, "members": ["user:eve@example.com"]}]
    assert changes == [Change(f"bindings[{INVOKER}].members", [], ["user:eve@example.com"])]


def test_adding_a_conditional_grant_creates_its_binding_at_policy_version_3() -> None:
    new, changes = with_grants({"version": 1, "etag": "e"}, [Grant(INVOKER, "user:eve@example.com", WH)])
    assert new == {"version": 3, "etag": "e",
                   "bindings": [{"role": INVOKER, "members": ["user:eve@example.com"], "condition": WORK_HOURS}]}
    assert changes == [Change(f"bindings[{INVOKER} if work hours].members", [], ["user:eve@example.com"])]


def test_adding_what_is_there_changes_nothing() -> None:
    live = _policy()
    assert with_grants(live, [Grant(INVOKER, "allUsers")]) == (live, [])
    assert with_grants({"etag": "e"}, []) == ({"etag": "e"}, [])  # no empty bindings list appears
    new, _ = with_grants({"version": 1}, [Grant(INVOKER, "user:eve@example.com")])
    assert new["version"] == 1  # an unconditional grant needs no version 3


def test_add_members_and_remove_grants_report_exactly_the_grants_changed() -> None:
    new, changes, added = add_members(INVOKER, ["user:bob@example.com", "user:zed@example.com", "user:zed@example.com"])(_policy())
    assert added == [Grant(INVOKER, "user:zed@example.com")] and len(changes) == 1
    new, changes, removed = remove_grants(lambda g: g.member == "allUsers")(_policy())
    assert removed == [Grant(INVOKER, "allUsers"), Grant(INVOKER, "allUsers", WH)]
    assert [b["role"] for b in new["bindings"]] == [INVOKER, VIEWER]


def test_binding_field_names_the_condition_by_title_then_expression() -> None:
    assert binding_field(INVOKER) == f"bindings[{INVOKER}].members"
    assert binding_field(INVOKER, WH) == f"bindings[{INVOKER} if work hours].members"
    assert binding_field(INVOKER, '{"expression":"a == b"}') == f"bindings[{INVOKER} if a == b].members"


def test_policy_facts_are_version_and_bindings_never_the_etag() -> None:
    assert policy_facts(_policy()) == {"version": 3, "bindings": [
        {"role": INVOKER, "members": ["allUsers", "user:bob@example.com"]},
        {"role": INVOKER, "members": ["allUsers"], "condition": WORK_HOURS},
        {"role": VIEWER, "members": ["allAuthenticatedUsers"]},
    ]}
    assert policy_facts({"etag": "x"}) == {"version": 0, "bindings": []}
    # A binding with no members or role (MessageToDict leaves out empty fields) is summarised, not a crash.
    assert policy_facts({"bindings": [{"role": INVOKER}, {"members": ["b", "a"]}]})["bindings"] == [
        {"role": INVOKER, "members": []}, {"role": "", "members": ["a", "b"]}]


def test_a_stored_grant_is_checked_before_it_is_trusted() -> None:
    assert Grant.from_json({"role": INVOKER, "member": "allUsers", "condition": WORK_HOURS}) == Grant(INVOKER, "allUsers", WH)
    assert Grant.from_json({"role": INVOKER, "member": "allUsers"}).to_json() == {"role": INVOKER, "member": "allUsers"}
    assert Grant(INVOKER, "allUsers", WH).to_json() == {"role": INVOKER, "member": "allUsers", "condition": WORK_HOURS}
    for bad in (["x"], {"role": INVOKER}, {"member": "allUsers"}, {"role": 1, "member": "allUsers"}):
        with pytest.raises(BadGrant, match=r"^expected a grant {role, member\[, condition\]}, found "):
            Grant.from_json(bad)
    with pytest.raises(BadGrant, match=r"^expected a grant's condition to be an object, found 'always'$"):
        Grant.from_json({"role": INVOKER, "member": "allUsers", "condition": "always"})


def test_gcloud_condition_flag_values() -> None:
    assert gcloud_condition(None) == "None"
    assert gcloud_condition(WORK_HOURS) == "expression=request.time.getHours('UTC') < 18,title=work hours"
    cond = {"expression": "a in ['x', 'y']", "title": "t", "description": "d"}
    assert gcloud_condition(cond) == "^;^expression=a in ['x', 'y'];title=t;description=d"  # a comma: another delimiter


@pytest.mark.parametrize(("resource", "command"), [
    (SVC, "gcloud run services add-iam-policy-binding api --region=us-central1 --project=p1"),
    (KEY, "gcloud kms keys add-iam-policy-binding k1 --keyring=ring --location=us --project=p1"),
    (RING, "gcloud kms keyrings add-iam-policy-binding ring --location=us --project=p1"),
    (FN, "gcloud functions add-iam-policy-binding fn --region=europe-west1 --project=p1"),
    ("projects/p1", "gcloud projects add-iam-policy-binding p1"),
])
def test_gcloud_target_names_the_resource_as_gcloud_does(resource: str, command: str) -> None:
    assert gcloud_target("add-iam-policy-binding", resource) == command


def test_undo_commands_name_member_role_and_condition_quoted() -> None:
    assert undo(SVC, "add", [Grant(INVOKER, "allUsers")]) == (
        f"gcloud run services add-iam-policy-binding api --region=us-central1 --project=p1 --member=allUsers --role={INVOKER}"
        f"  # {EXEMPT_FIRST}")
    # KMS asks for a condition interactively whenever the policy has one: always say it.
    assert undo(KEY, "remove", [Grant("roles/cloudkms.cryptoKeyEncrypterDecrypter", "user:a b@example.com")]) == (
        "gcloud kms keys remove-iam-policy-binding k1 --keyring=ring --location=us --project=p1 "
        "--member='user:a b@example.com' --role=roles/cloudkms.cryptoKeyEncrypterDecrypter --condition=None"
        f"  # {EXEMPT_FIRST}")
    two = undo(SVC, "add", [Grant(INVOKER, "allUsers", WH), Grant(INVOKER, "allAuthenticatedUsers")])
    assert two.split(" && ") == [
        f"gcloud run services add-iam-policy-binding api --region=us-central1 --project=p1 --member=allAuthenticatedUsers --role={INVOKER}",
        f"gcloud run services add-iam-policy-binding api --region=us-central1 --project=p1 --member=allUsers --role={INVOKER} "
        "--condition='expression=request.time.getHours('\"'\"'UTC'\"'\"') < 18,title=work hours'"
        f"  # {EXEMPT_FIRST}",
    ]
    assert undo(SVC, "add", []) == ""


# ---------------------------------------------------------------------------
# The IAM action (edit_policy) with the live policy held here: its records.


class LivePolicy:
    """One resource's IAM policy; writes check the etag as IAM does (a stale one: 409 ABORTED)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, policy: dict[str, Any]) -> None:
        from shared.actions import iam

        self.policy = {**policy, "etag": "e1"}
        self.writes: list[dict[str, Any]] = []
        self.timeouts: list[float] = []
        self.answers: list[str] = []  # the next writes' answers: "race" or "refuse"
        monkeypatch.setattr(iam, "get_policy", self.get)
        monkeypatch.setattr(iam, "set_policy", self.set)

    def get(self, resource: str, timeout: float) -> dict[str, Any]:
        assert resource == SVC
        self.timeouts.append(timeout)
        return copy.deepcopy(self.policy)

    def set(self, resource: str, policy: dict[str, Any], timeout: float) -> dict[str, Any]:
        from google.api_core import exceptions as gexc

        self.writes.append(copy.deepcopy(policy))
        self.timeouts.append(timeout)
        answer = self.answers.pop(0) if self.answers else ""
        if answer == "race":
            self.policy["bindings"] = [*self.policy.get("bindings", []), {"role": "roles/run.developer", "members": ["user:x@example.com"]}]
            self.policy["etag"] += "*"
        if answer == "refuse" or policy.get("etag") != self.policy["etag"]:
            raise gexc.Aborted("There were concurrent policy changes.")
        self.policy = {**copy.deepcopy(policy), "etag": self.policy["etag"] + "+"}
        return copy.deepcopy(self.policy)


def _finding() -> Any:
    from shared.model import Action, Finding, Severity

    return Finding(rule="run_public_invoker", severity=Severity.HIGH, title="t", resource=SVC, resource_type="run.service",
                   project="p1", location="us-central1", principal="dev@example.com", action=Action.REVERT, event_id="e1",
                   method="m", timestamp="2026-01-01T00:00:00Z")


def _edit(mode: str = "enforce", **kw: Any) -> Any:
    from shared.actions import ActionContext
    from shared.actions.iam import edit_policy
    from shared.model import Action, Mode

    ctx = ActionContext(mode=Mode(mode), action=Action.REVERT, **kw)
    return edit_policy(_finding(), ctx, remove_grants(lambda g: g.member == "allUsers"), undo_verb="add")


ONE_PUBLIC = {"version": 3, "bindings": [{"role": INVOKER, "members": ["allUsers", "user:bob@example.com"]}]}
FACTS_BEFORE = {"version": 3, "bindings": [{"role": INVOKER, "members": ["allUsers", "user:bob@example.com"]}]}
FACTS_AFTER = {"version": 3, "bindings": [{"role": INVOKER, "members": ["user:bob@example.com"]}]}


def test_an_iam_revert_writes_with_the_read_etag_and_records_facts_undo_and_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.model import Outcome

    live = LivePolicy(monkeypatch, ONE_PUBLIC)
    rec = _edit(operation_timeout=90.0)
    assert rec.outcome is Outcome.REMEDIATED and rec.finding == _finding()
    assert [w["etag"] for w in live.writes] == ["e1"] and live.timeouts == [30.0, 30.0]
    assert (rec.before, rec.after, rec.attempts, rec.reason) == (FACTS_BEFORE, FACTS_AFTER, 1, "")
    assert rec.changes == [Change(f"bindings[{INVOKER}].members", ["allUsers", "user:bob@example.com"], ["user:bob@example.com"])]
    assert rec.undo == (f"gcloud run services add-iam-policy-binding api --region=us-central1 --project=p1 --member=allUsers "
                        f"--role={INVOKER}  # {EXEMPT_FIRST}")


def test_an_iam_revert_after_a_race_replans_and_keeps_the_other_writers_binding(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.model import Outcome

    live = LivePolicy(monkeypatch, ONE_PUBLIC)
    live.answers = ["race"]
    rec = _edit()
    assert rec.outcome is Outcome.REMEDIATED and rec.attempts == 2 and rec.reason == "re-planned after 1 conflicting write(s)"
    assert {"role": "roles/run.developer", "members": ["user:x@example.com"]} in live.policy["bindings"]
    assert all("allUsers" not in b["members"] for b in live.policy["bindings"])


def test_an_iam_revert_refused_without_a_race_is_failed_with_the_facts(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.model import Outcome

    live = LivePolicy(monkeypatch, ONE_PUBLIC)
    live.answers = ["refuse"] * 3
    rec = _edit()
    assert rec.outcome is Outcome.FAILED and (rec.finding, rec.before, rec.attempts) == (_finding(), FACTS_BEFORE, 1)
    assert rec.reason.startswith("set_iam_policy was refused as a conflict although the policy has not changed since it was read")
    assert len(live.writes) == 1


def test_an_iam_revert_that_keeps_losing_races_is_redelivered(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.actions import TransientError

    live = LivePolicy(monkeypatch, ONE_PUBLIC)
    live.answers = ["race"] * 2
    with pytest.raises(TransientError) as err:
        _edit(max_attempts=2)
    assert str(err.value) == (f"run_public_invoker on {SVC}: its IAM policy changed under us 2 time(s) in 2 attempt(s); "
                              "a redelivery will read it again")


def test_an_iam_dry_run_and_a_compliant_policy_write_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.model import Outcome

    live = LivePolicy(monkeypatch, ONE_PUBLIC)
    rec = _edit("dry-run")
    assert rec.outcome is Outcome.DRY_RUN and live.writes == []
    assert (rec.finding, rec.before, rec.after, len(rec.changes)) == (_finding(), FACTS_BEFORE, FACTS_AFTER, 1)
    live = LivePolicy(monkeypatch, FACTS_AFTER)
    rec = _edit()
    assert rec.outcome is Outcome.ALREADY_COMPLIANT and live.writes == []
    assert (rec.finding, rec.before, rec.after, rec.attempts) == (_finding(), FACTS_AFTER, FACTS_AFTER, 0)
    assert rec.reason == "live policy already compliant"


# ---------------------------------------------------------------------------
# Reading and writing a live policy: which API, at which version, and what a dropped call becomes.


class _IamClient:
    def __init__(self, name: str, fail: BaseException | None = None) -> None:
        self.name, self.fail = name, fail
        self.requests: list[tuple[str, dict[str, Any], Any, float]] = []

    def get_iam_policy(self, request: dict[str, Any], retry: Any, timeout: float) -> Any:
        from google.iam.v1 import policy_pb2

        self.requests.append(("get", request, retry, timeout))
        if self.fail:
            raise self.fail
        return policy_pb2.Policy(version=3, etag=b"\x07\x06", bindings=[policy_pb2.Binding(role=INVOKER, members=["allUsers"])])

    def set_iam_policy(self, request: dict[str, Any], retry: Any, timeout: float) -> Any:
        self.requests.append(("set", request, retry, timeout))
        return request["policy"]


@pytest.fixture
def iam_clients(monkeypatch: pytest.MonkeyPatch) -> dict[str, _IamClient]:
    from shared import clients

    made = {"run": _IamClient("run"), "kms": _IamClient("kms"), "projects": _IamClient("projects")}
    monkeypatch.setattr(clients, "run_services", lambda: made["run"])
    monkeypatch.setattr(clients, "kms", lambda: made["kms"])
    monkeypatch.setattr(clients, "projects", lambda: made["projects"])
    return made


@pytest.mark.parametrize(("resource", "api"), [(SVC, "run"), (KEY, "kms"), (RING, "kms"), ("projects/p1", "projects")])
def test_a_policy_is_read_from_its_own_api_at_version_3_with_no_client_retry(
    iam_clients: dict[str, _IamClient], resource: str, api: str,
) -> None:
    from shared.actions.iam import get_policy, set_policy

    policy = get_policy(resource, 12.0)
    assert policy == {"version": 3, "etag": "BwY=", "bindings": [{"role": INVOKER, "members": ["allUsers"]}]}
    ((verb, request, retry, timeout),) = iam_clients[api].requests
    assert (verb, retry, timeout) == ("get", None, 12.0)
    assert request == {"resource": resource, "options": {"requested_policy_version": 3}}  # conditions kept
    written = set_policy(resource, policy, 9.0)
    assert written == policy  # the etag goes out with the write
    verb, request, retry, timeout = iam_clients[api].requests[1]
    assert (verb, request["resource"], retry, timeout) == ("set", resource, None, 9.0)
    assert request["policy"].etag == b"\x07\x06"


def test_a_dropped_connection_on_a_policy_read_is_redelivered_naming_call_and_resource(iam_clients: dict[str, _IamClient]) -> None:
    import requests

    from shared.actions import TransientError
    from shared.actions.iam import get_policy

    iam_clients["run"].fail = requests.exceptions.ReadTimeout("read timed out")
    with pytest.raises(TransientError) as err:
        get_policy(SVC, 1.0)
    assert str(err.value) == f"get_iam_policy {SVC}: ReadTimeout: read timed out"


def test_a_resource_rampart_has_no_iam_api_for_is_refused() -> None:
    from shared.actions.iam import get_policy

    with pytest.raises(ValueError, match="expected a Cloud Run service, job, worker pool or function, a KMS key or key ring, or a project"):
        get_policy("projects/p1/buckets/b", 1.0)


def test_a_functions_policy_goes_over_rest_at_version_3(monkeypatch: pytest.MonkeyPatch) -> None:
    import requests

    from shared import clients
    from shared.actions.iam import get_policy, set_policy

    calls: list[tuple[str, str, float, dict[str, Any]]] = []

    class Session:
        def request(self, method: str, url: str, timeout: float, **kw: Any) -> requests.Response:
            calls.append((method, url, timeout, kw))
            resp = requests.Response()
            resp.status_code = 200
            resp._content = b'{"version": 3, "etag": "BwY=", "bindings": [{"role": "roles/cloudfunctions.invoker", "members": ["allUsers"]}]}'
            return resp

    monkeypatch.setattr(clients, "functions_rest", lambda: (Session(), "https://cloudfunctions.googleapis.com"))
    policy = get_policy(FN, 4.0)
    assert policy["bindings"] == [{"role": "roles/cloudfunctions.invoker", "members": ["allUsers"]}] and policy["etag"] == "BwY="
    assert calls[0] == ("GET", f"https://cloudfunctions.googleapis.com/v2/{FN}:getIamPolicy", 4.0,
                        {"params": {"options.requestedPolicyVersion": 3}})
    set_policy(FN, policy, 6.0)
    method, url, timeout, kw = calls[1]
    assert (method, url, timeout) == ("POST", f"https://cloudfunctions.googleapis.com/v2/{FN}:setIamPolicy", 6.0)
    assert kw["json"]["policy"]["etag"] == "BwY=" and kw["json"]["policy"]["bindings"] == policy["bindings"]


def test_what_grants_lists_remove_grants_removes_even_from_a_binding_missing_its_role_or_members() -> None:
    # MessageToDict leaves out empty fields: a binding may come without "role" or "members".
    # Whatever grants() lists must be removable by the same name, or a revert would loop on it.
    odd = {"etag": "e", "bindings": [{"members": ["allUsers"]}, {"role": INVOKER}]}
    assert grants(odd) == [Grant("", "allUsers")]
    new, changes, removed = remove_grants(lambda g: True)(odd)
    assert removed == [Grant("", "allUsers")] and new == {"etag": "e", "bindings": []}
    assert changes == [Change("bindings[].members", ["allUsers"], [])]


def test_a_resource_name_of_no_known_form_is_quoted_in_the_undo() -> None:
    assert gcloud_target("update", "services/a b;rm -rf") == "gcloud run services update 'services/a b;rm -rf'"


def test_a_dropped_connection_on_a_policy_write_is_redelivered_naming_call_and_resource(iam_clients: dict[str, _IamClient]) -> None:
    import requests

    from shared.actions import TransientError
    from shared.actions.iam import set_policy

    def drop(request: dict[str, Any], retry: Any, timeout: float) -> Any:
        raise requests.exceptions.ConnectionError("connection reset")

    iam_clients["kms"].set_iam_policy = drop  # type: ignore[method-assign]
    with pytest.raises(TransientError) as err:
        set_policy(KEY, {"etag": "BwY="}, 1.0)
    assert str(err.value) == f"set_iam_policy {KEY}: ConnectionError: connection reset"


def test_a_policy_someone_else_fixed_during_our_write_is_compliant_after_one_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.model import Outcome

    live = LivePolicy(monkeypatch, ONE_PUBLIC)
    real = live.set

    def fixed_meanwhile(resource: str, policy: dict[str, Any], timeout: float) -> dict[str, Any]:
        live.policy = {**FACTS_AFTER, "etag": "e9"}
        return real(resource, policy, timeout)

    monkeypatch.setattr("shared.actions.iam.set_policy", fixed_meanwhile)
    rec = _edit()
    assert rec.outcome is Outcome.ALREADY_COMPLIANT and rec.attempts == 1
    assert rec.reason == "live policy already compliant after 1 conflicting write(s)"
