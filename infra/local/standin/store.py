"""The stand-in's state: one table (name -> resource JSON) per registered collection, behind one lock.

API modules keep their resources in `store.tables[KEY]`; the store itself knows only names, parents
(for lists), IAM policies (shared by every API), long-running operations, the caller and the clock.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from collections.abc import Iterable
from typing import Any

from infra.local.standin.core import DEFAULT_CALLER, Json, rfc3339

MAX_OPERATIONS = 2000  # operations are kept for GET .../operations/O; bounded so load tests stay flat
POLICIES = "policies"  # resource name -> IAM Policy JSON, for every API


class Clock:
    """Wall clock plus an offset the admin API can move forward (to expire KMS destroy windows)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset


class Store:
    """All resources, behind one lock. Each request does O(1) dictionary work (lists walk one parent)."""

    def __init__(self, clock: Clock, tables: Iterable[str], resources: Iterable[str]) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self._seq = itertools.count(1)  # never reset, so etags stay unique across resets
        self.table_names = (POLICIES, *tables)
        self.resource_tables = tuple(resources)  # the tables whose keys are resource names
        self.clear()

    def clear(self) -> None:
        self.tables: dict[str, dict[str, Any]] = {t: {} for t in self.table_names}
        self.children: dict[str, dict[str, None]] = {}  # "parent|collection" -> ordered names
        self.operations: collections.OrderedDict[str, Json] = collections.OrderedDict()
        self.pending_ops: dict[str, int] = {}  # operation name -> polls left before it reads done
        self.caller = DEFAULT_CALLER
        # Behaviours the discovery documents cannot settle, switched by POST /_standin/settings (see
        # SETTINGS in app.py); reset puts the defaults back.
        self.settings: dict[str, str] = {"run_patch_without_mask": "replace"}

    # -- bookkeeping ---------------------------------------------------------------------------

    def now(self) -> str:
        return rfc3339(self.clock.now())

    def seq(self) -> int:
        return next(self._seq)

    def index(self, parent: str, collection: str, name: str) -> None:
        self.children.setdefault(f"{parent}|{collection}", {})[name] = None

    def unindex(self, parent: str, collection: str, name: str) -> None:
        self.children.get(f"{parent}|{collection}", {}).pop(name, None)

    def listed(self, parent: str, collection: str) -> list[str]:
        if parent.endswith("/locations/-"):  # Run and KMS accept "-" for every location
            prefix = parent[: -len("-")]
            names = [n for key, kids in self.children.items()
                     if key.startswith(prefix) and key.endswith(f"|{collection}") for n in kids]
            return sorted(names)
        return list(self.children.get(f"{parent}|{collection}", {}))

    def record_operation(self, name: str, op: Json) -> None:
        self.operations[name] = op
        while len(self.operations) > MAX_OPERATIONS:
            self.operations.popitem(last=False)

    def resource_exists(self, name: str) -> bool:
        return any(name in self.tables[t] for t in self.resource_tables)

    # -- snapshots (atomic seeding) ------------------------------------------------------------

    def snapshot(self) -> tuple[Any, ...]:
        return ({t: dict(v) for t, v in self.tables.items()},
                {k: dict(v) for k, v in self.children.items()}, self.caller)

    def restore(self, snap: tuple[Any, ...]) -> None:
        self.tables, self.children, self.caller = snap
