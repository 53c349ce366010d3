"""The one conditional-write loop every action runs: read → plan → (dry-run) → write with the
etag the plan was made against → on a conflict, read again and plan again.

A conflict (409 ABORTED per AIP-154, 412, or FAILED_PRECONDITION: `is_conflict`) means another
writer got there first: the fresh read may show the work done, or a different plan. After
`max_attempts` the action's `exhausted` error is raised (a TransientError: Pub/Sub redelivers).
A conflict answered while the etag has not moved is no race (e.g. a revision-name clash):
the loop stops with `UNMOVED` and the action records it as FAILED. Someone else's concurrent
change is never overwritten, because nothing is written without the etag it was planned against.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Generic, TypeVar

from shared.actions import error_message, is_conflict
from shared.model import Change

S = TypeVar("S")


class Unfinished(Exception):
    """A write was sent but not seen through (e.g. its long-running operation outlived the
    budget): it may still apply, so the loop stops rather than planning again."""


class Refused(Exception):
    """Planning found what no write may fix (e.g. a record Rampart did not write): FAILED."""


@dataclass(frozen=True)
class Write:
    """One conditional write: which etag guards it (`what`: "service" | "policy"), that etag,
    the changes it makes, and the call that makes them (raising a conflict if the etag is stale)."""

    what: str
    etag: str
    changes: list[Change]
    call: Callable[[], object]


@dataclass(frozen=True)
class Plan:
    """What one read calls for: the writes, in order (none: compliant, and `reason` says why),
    with log-safe facts before and after (the after facts are what a dry run reports)."""

    writes: list[Write]
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    @property
    def changes(self) -> list[Change]:
        return [c for w in self.writes for c in w.changes]


class Status(Enum):
    COMPLIANT = "compliant"  # nothing to write (perhaps after earlier attempts wrote part of it)
    DRY_RUN = "dry_run"  # planned, nothing written
    WRITTEN = "written"  # every write of the last plan went through
    UNMOVED = "unmoved"  # a write refused as a conflict although its etag had not moved
    UNFINISHED = "unfinished"  # a write raised Unfinished
    REFUSED = "refused"  # planning raised Refused


@dataclass
class Converged(Generic[S]):
    """How the loop ended, with what it read last and what it did on the way."""

    status: Status
    state: S  # the last read
    plan: Plan | None  # the last plan (None when planning was refused or the read was unmoved)
    attempts: int  # writes attempted, counting the last
    conflicts: int
    done: list[Change]  # changes written, over every attempt
    reason: str = ""  # for UNMOVED, UNFINISHED and REFUSED: why

    @property
    def conflict_note(self) -> str:
        """' after N conflicting write(s)' for a reason text, or '' when there were none."""
        return f" after {self.conflicts} conflicting write(s)" if self.conflicts else ""


@dataclass
class _Stale:
    what: str
    etag: str
    message: str

    def reason(self) -> str:
        call = "update_service" if self.what == "service" else "set_iam_policy"
        return (
            f"{call} was refused as a conflict although the {self.what} has not changed since it was read "
            f"(etag {self.etag}): {self.message}"
        )


def converge(
    read: Callable[[], S],
    etags: Callable[[S], Mapping[str, str]],
    plan: Callable[[S], Plan],
    *,
    max_attempts: int,
    dry_run: bool,
    exhausted: Callable[[int], Exception],
) -> Converged[S]:
    """Read, plan and write until the live state needs nothing more, see the module docstring.
    Errors other than conflicts (permission, not found, transient) propagate unchanged."""
    from google.api_core import exceptions as gexc

    conflicts = 0
    done: list[Change] = []
    stale: _Stale | None = None
    for attempt in range(1, max_attempts + 1):
        state = read()
        if stale is not None and etags(state).get(stale.what) == stale.etag:
            return Converged(Status.UNMOVED, state, None, attempt - 1, conflicts, done, stale.reason())
        try:
            p = plan(state)
        except Refused as exc:
            return Converged(Status.REFUSED, state, None, attempt - 1, conflicts, done, str(exc))
        if not p.writes:
            return Converged(Status.COMPLIANT, state, p, attempt - 1, conflicts, done, p.reason)
        if dry_run:
            return Converged(Status.DRY_RUN, state, p, attempt - 1, conflicts, done)
        for w in p.writes:
            try:
                w.call()
            except Unfinished as exc:
                return Converged(Status.UNFINISHED, state, p, attempt, conflicts, done, str(exc))
            except gexc.GoogleAPICallError as exc:
                if not is_conflict(exc):
                    raise
                conflicts += 1
                stale = _Stale(w.what, w.etag, error_message(exc))
                break
            done += w.changes
        else:
            return Converged(Status.WRITTEN, state, p, attempt, conflicts, done)
    raise exhausted(conflicts)
