"""The conditional-write loop (shared.actions.engine.converge) on its own, with a live state in a
dict and writes that succeed or answer a conflict: what is written, when it stops, and what the
operator is told. The actions' own tests (test_run_actions, test_kms_actions) drive it through
the stand-in; these pin the loop's contract without it (fast, no process)."""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions as gexc

from shared.actions.engine import Plan, Refused, Status, Unfinished, Write, converge
from shared.model import Change


class Exhausted(Exception):
    pass


class Live:
    """A resource with one field and an etag that moves on every change; `writes` logs each
    write attempted (etag it was planned against, value)."""

    def __init__(self, value: str = "open", etag: str = "e1") -> None:
        self.value, self.etag = value, etag
        self.writes: list[tuple[str, str]] = []
        self.reads = 0
        self.answers: list[Exception] = []  # raised by the next writes, in order, before any change

    def read(self) -> dict[str, str]:
        self.reads += 1
        return {"value": self.value, "etag": self.etag}

    def write(self, etag: str, value: str) -> None:
        self.writes.append((etag, value))
        if self.answers:
            raise self.answers.pop(0)
        if etag != self.etag:
            raise gexc.Conflict("etag mismatch")
        self.value, self.etag = value, self.etag + "+"

    def someone_else_changes(self, value: str) -> None:
        self.value, self.etag = value, self.etag + "*"


def _close(live: Live, what: str = "service") -> Any:
    def plan(state: dict[str, str]) -> Plan:
        if state["value"] == "closed":
            return Plan([], before={"value": state["value"]}, reason="already closed")
        etag = state["etag"]
        return Plan([Write(what, etag, [Change("value", state["value"], "closed")], lambda: live.write(etag, "closed"))],
                    before={"value": state["value"]}, after={"value": "closed"})

    return plan


def _converge(live: Live, plan: Any = None, *, max_attempts: int = 3, dry_run: bool = False, what: str = "service") -> Any:
    return converge(live.read, lambda s: {what: s["etag"]}, plan or _close(live, what), max_attempts=max_attempts,
                    dry_run=dry_run, exhausted=lambda n: Exhausted(f"{n} conflicts"))


def test_a_compliant_resource_is_read_once_and_never_written() -> None:
    live = Live("closed")
    run = _converge(live)
    assert run.status is Status.COMPLIANT and run.reason == "already closed"
    assert run.plan is not None and run.plan.before == {"value": "closed"}  # the facts of the last read
    assert run.state == {"value": "closed", "etag": "e1"}
    assert live.writes == [] and live.reads == 1
    assert (run.attempts, run.conflicts, run.done) == (0, 0, [])


def test_a_dry_run_plans_and_writes_nothing() -> None:
    live = Live()
    run = _converge(live, dry_run=True)
    assert run.status is Status.DRY_RUN and live.writes == [] and live.value == "open"
    assert run.plan is not None and run.plan.changes == [Change("value", "open", "closed")]
    assert run.plan.after == {"value": "closed"} and run.attempts == 0
    assert run.conflicts == 0 and run.done == []  # a caller may add up or list them whatever the status


def test_a_write_goes_out_with_the_etag_it_was_planned_against() -> None:
    live = Live()
    run = _converge(live)
    assert run.status is Status.WRITTEN and live.value == "closed"
    assert live.writes == [("e1", "closed")]
    assert (run.attempts, run.conflicts, run.done) == (1, 0, [Change("value", "open", "closed")])
    assert run.conflict_note == ""


def test_a_conflict_on_a_moved_etag_reads_again_and_replans_from_the_new_state() -> None:
    live = Live()
    live.someone_else_changes("half-open")  # the state the first plan is made against is e1*…
    plan = _close(live)
    first = {"seen": False}

    def racing_plan(state: dict[str, str]) -> Plan:
        p = plan(state)
        if not first["seen"]:  # …and someone changes it again after the read, before the write
            first["seen"] = True
            live.someone_else_changes("wide-open")
        return p

    run = _converge(live, racing_plan)
    assert run.status is Status.WRITTEN and live.value == "closed"
    assert [e for e, _ in live.writes] == ["e1*", "e1**"]  # the retry carries the fresh etag
    assert run.done == [Change("value", "wide-open", "closed")]  # only what was written counts
    assert (run.attempts, run.conflicts) == (2, 1)
    assert run.conflict_note == " after 1 conflicting write(s)"


def test_a_conflict_after_which_someone_else_fixed_it_ends_compliant_without_a_write() -> None:
    live = Live()
    plan = _close(live)

    def plan_then_fixed_by_someone(state: dict[str, str]) -> Plan:
        p = plan(state)
        if p.writes:
            live.someone_else_changes("closed")
        return p

    run = _converge(live, plan_then_fixed_by_someone)
    assert run.status is Status.COMPLIANT and live.writes == [("e1", "closed")]
    assert (run.attempts, run.conflicts, run.done) == (1, 1, [])


@pytest.mark.parametrize("what", ["service", "policy"])
def test_a_conflict_on_an_unmoved_etag_stops_and_names_the_refused_call(what: str) -> None:
    # No race: a redelivery would be refused the same way, so the loop stops (the action FAILs).
    live = Live()
    live.answers = [gexc.Conflict("Revision named 'x-00001' already exists")] * 5
    run = _converge(live, what=what)
    assert run.status is Status.UNMOVED and run.plan is None and run.done == []
    assert len(live.writes) == 1 and live.value == "open"
    call = "update_service" if what == "service" else "set_iam_policy"
    assert run.reason == (f"{call} was refused as a conflict although the {what} has not changed since it was read "
                          f"(etag e1): Revision named 'x-00001' already exists")
    assert (run.attempts, run.conflicts) == (1, 1)


def test_conflicts_every_time_raise_the_actions_exhausted_error_after_max_attempts() -> None:
    live = Live()
    plan = _close(live)

    def always_raced(state: dict[str, str]) -> Plan:
        p = plan(state)
        live.someone_else_changes("open")
        return p

    with pytest.raises(Exhausted, match=r"^2 conflicts$"):
        _converge(live, always_raced, max_attempts=2)
    assert len(live.writes) == 2 and live.value == "open"


def test_an_error_other_than_a_conflict_propagates_and_nothing_more_is_written() -> None:
    live = Live()
    live.answers = [gexc.PermissionDenied("no run.services.update")]
    with pytest.raises(gexc.PermissionDenied):
        _converge(live)
    assert len(live.writes) == 1 and live.reads == 1


def test_an_unfinished_write_stops_the_loop_with_what_was_done_before_it() -> None:
    live = Live()
    first = Change("a", 1, 2)

    def two_writes(state: dict[str, str]) -> Plan:
        def second() -> None:
            raise Unfinished("operation did not finish within 60s")

        return Plan([Write("policy", "p1", [first], lambda: None), Write("service", state["etag"], [Change("b", 1, 2)], second)])

    run = _converge(live, two_writes)
    assert run.status is Status.UNFINISHED and run.reason == "operation did not finish within 60s"
    assert run.done == [first] and run.attempts == 1 and live.reads == 1
    assert run.conflicts == 0 and run.state == {"value": "open", "etag": "e1"}


def test_a_refused_plan_writes_nothing_and_says_why() -> None:
    live = Live()

    def refuse(state: dict[str, str]) -> Plan:
        raise Refused("a record Rampart did not write")

    run = _converge(live, refuse)
    assert run.status is Status.REFUSED and run.reason == "a record Rampart did not write"
    assert run.plan is None and live.writes == [] and run.attempts == 0
    assert (run.conflicts, run.done, run.state) == (0, [], {"value": "open", "etag": "e1"})


def test_the_second_write_of_a_plan_waits_for_the_first() -> None:
    # A plan's writes go out in order and a conflict on the first skips the rest of that plan.
    live = Live()
    order: list[str] = []

    def plan(state: dict[str, str]) -> Plan:
        if state["value"] == "closed":
            return Plan([])

        def first() -> None:
            order.append("first")
            if len(order) == 1:
                live.someone_else_changes("open")
                raise gexc.Conflict("moved")
            live.value = "closed"

        return Plan([Write("policy", state["etag"], [Change("p", 0, 1)], first),
                     Write("service", state["etag"], [Change("s", 0, 1)], lambda: order.append("second"))])

    run = _converge(live, plan)
    assert run.status is Status.WRITTEN
    assert order == ["first", "first", "second"]
    assert run.done == [Change("p", 0, 1), Change("s", 0, 1)] and run.conflicts == 1


def test_an_unmoved_refusal_after_a_first_write_keeps_that_write_on_the_record() -> None:
    # A plan of two writes: the policy write goes through, the service write is refused with its
    # etag unmoved. The caller's record must still show the policy change (it happened).
    live = Live()
    first = Change("bindings[roles/run.invoker].members", ["allUsers"], [])

    def refuse() -> None:
        raise gexc.Conflict("Revision named 'x-00001' already exists")

    def plan(state: dict[str, str]) -> Plan:
        return Plan([Write("policy", "p1", [first], lambda: None), Write("service", state["etag"], [Change("ingress", 1, 2)], refuse)])

    run = _converge(live, plan)
    assert run.status is Status.UNMOVED and run.done == [first]  # the next read saw the etag unmoved: no second plan
    assert run.attempts == 1 and run.conflicts == 1


def _raced_once(live: Live, plan: Any, then: Any) -> Any:
    """A plan function whose first plan is overtaken (someone else writes the resource right after
    the read); every later call answers `then(state)`."""
    calls = {"n": 0}

    def planned(state: dict[str, str]) -> Plan:
        calls["n"] += 1
        if calls["n"] == 1:
            p = plan(state)
            live.someone_else_changes("open")
            return p
        return then(state)

    return planned


def test_conflicts_are_counted_on_every_way_out() -> None:
    live = Live()
    plan = _close(live)

    def refused(state: dict[str, str]) -> Plan:
        raise Refused("no longer ours")

    run = _converge(live, _raced_once(live, plan, refused))
    assert run.status is Status.REFUSED and run.conflicts == 1 and run.attempts == 1

    live = Live()

    def unfinished_plan(state: dict[str, str]) -> Plan:
        def unfinished() -> None:
            raise Unfinished("still running")

        return Plan([Write("service", state["etag"], [Change("value", "open", "closed")], unfinished)])

    run = _converge(live, _raced_once(live, plan, unfinished_plan))
    assert run.status is Status.UNFINISHED and run.conflicts == 1 and run.attempts == 2
    assert run.state == {"value": "open", "etag": "e1*"}
