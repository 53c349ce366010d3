"""Fault injection: rules set through `POST /_standin/faults` that delay, fail, drop or race API calls."""

from __future__ import annotations

import itertools
import random
import re
import threading
from dataclasses import dataclass, field

from infra.local.standin.core import Json, bad


@dataclass
class Fault:
    """One injected fault rule (see the package docstring for the fields)."""

    id: int
    method: str = "*"
    path: str = ".*"
    count: int | None = 1
    skip: int = 0
    status: int | None = None
    rpc_status: str | None = None
    message: str | None = None
    delay_ms: int = 0
    move_etag: bool = False
    drop: bool = False
    probability: float = 1.0
    pending_polls: int = 0
    hits: int = 0
    regex: re.Pattern[str] = field(default=re.compile(".*"), repr=False)

    FIELDS = ("method", "path", "count", "skip", "status", "rpc_status", "message", "delay_ms",
              "move_etag", "drop", "probability", "pending_polls", "seed")
    SHOWN = ("id", "method", "path", "count", "skip", "status", "rpc_status", "message", "delay_ms",
             "move_etag", "drop", "probability", "pending_polls", "hits")

    def to_json(self) -> Json:
        return {k: getattr(self, k) for k in self.SHOWN}


_EXPECTED: dict[str, tuple[type, ...]] = {
    "method": (str,), "path": (str,), "count": (int, type(None)), "skip": (int,),
    "status": (int, type(None)), "rpc_status": (str, type(None)), "message": (str, type(None)),
    "delay_ms": (int, float), "move_etag": (bool,), "drop": (bool,), "probability": (int, float),
    "pending_polls": (int,), "seed": (int,),
}


class Faults:
    """The active fault rules and the RNG behind `probability` (reseedable, so runs repeat)."""

    def __init__(self, fault_seed: int = 0) -> None:
        self.lock = threading.Lock()
        self.rules: list[Fault] = []
        self._ids = itertools.count(1)
        self.fault_seed = fault_seed
        self.rng = random.Random(fault_seed)

    def reset(self) -> None:
        with self.lock:
            self.rules = []
            self.rng.seed(self.fault_seed)

    def clear(self) -> None:
        with self.lock:
            self.rules = []

    def to_json(self) -> list[Json]:
        with self.lock:
            return [f.to_json() for f in self.rules]

    def matching(self, method: str, path: str) -> list[Fault]:
        """The rules that fire for this request (counting it against their count/skip)."""
        if not self.rules:  # the common case, no lock needed to read an empty list
            return []
        fired: list[Fault] = []
        with self.lock:
            for f in self.rules:
                if f.count is not None and f.count <= 0:
                    continue
                if f.method not in ("*", method) or not f.regex.search(path):
                    continue
                if f.skip > 0:
                    f.skip -= 1
                    continue
                if f.probability < 1.0 and self.rng.random() >= f.probability:
                    continue
                if f.count is not None:
                    f.count -= 1
                f.hits += 1
                fired.append(f)
        return fired

    def add(self, spec: Json) -> Fault:
        unknown = set(spec) - set(Fault.FIELDS)
        if unknown:
            bad(f"fault: unknown field(s) {sorted(unknown)}; expected some of {list(Fault.FIELDS)}")
        for k, v in spec.items():
            if not isinstance(v, _EXPECTED[k]) or (isinstance(v, bool) and bool not in _EXPECTED[k]):
                bad(f"fault.{k}: expected {' or '.join(t.__name__ for t in _EXPECTED[k])}, found {v!r}")
        fault = Fault(id=next(self._ids), **{k: v for k, v in spec.items() if k != "seed"})
        try:
            fault.regex = re.compile(fault.path)
        except re.error as e:
            bad(f"fault.path: expected a regular expression, found {fault.path!r} ({e})")
        fault.method = fault.method.upper()
        if fault.status is not None and not 400 <= fault.status <= 599:
            bad(f"fault.status: expected an HTTP error status 400-599, found {fault.status!r}")
        if not 0.0 <= fault.probability <= 1.0:
            bad(f"fault.probability: expected 0..1, found {fault.probability!r}")
        if (fault.skip < 0 or fault.delay_ms < 0 or fault.pending_polls < 0
                or (fault.count is not None and fault.count < 1)):
            bad("fault: expected skip >= 0, delay_ms >= 0, pending_polls >= 0 and count >= 1 "
                "(or null for unlimited)")
        if not (fault.status or fault.delay_ms or fault.move_etag or fault.drop or fault.pending_polls):
            bad("fault: expected at least one effect: status, delay_ms, move_etag, drop or pending_polls")
        with self.lock:
            if "seed" in spec:
                self.rng.seed(spec["seed"])
            self.rules.append(fault)
        return fault
