"""Regular expressions from the policy, compiled with RE2 (google-re2): linear time in the input,
so no pattern a policy author writes can make a rule backtrack for minutes on a hostile value.

RE2 has no backreferences or lookaround; a pattern that needs them is rejected when the policy
loads (`check-config` and the running function alike), with the key path and RE2's reason.
"""

from __future__ import annotations

import threading
from typing import Any

_compiled: dict[tuple[tuple[str, ...], bool], Any] = {}
_lock = threading.Lock()


def _options(ignore_case: bool) -> Any:
    import re2  # type: ignore[import-untyped]

    opts = re2.Options()
    opts.log_errors = False  # RE2 would print the pattern to stderr
    opts.case_sensitive = not ignore_case
    opts.never_capture = True  # only whether it matches is asked: faster
    opts.never_nl = True  # `matching` searches many texts joined by newlines at once
    return opts


def problems(patterns: tuple[str, ...] | list[str], path: str) -> list[str]:
    """One message per pattern RE2 cannot compile: `path[i]: reason` (the pattern is not echoed)."""
    import re2

    out = []
    for i, p in enumerate(patterns):
        if not isinstance(p, str):
            continue
        try:
            re2.compile(p, _options(True))
        except re2.error as exc:
            reason = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            reason = reason if len(reason) <= 80 else reason[:77] + "..."
            out.append(f"{path}[{i}]: RE2 cannot use this pattern ({reason}); lookaround and backreferences are"
                       " not supported, rewrite it without them")
    return out


def any_of(patterns: tuple[str, ...], *, ignore_case: bool = True) -> Any | None:
    """One compiled RE2 matching any of `patterns` (cached), or None for no patterns."""
    if not patterns:
        return None
    key = (patterns, ignore_case)
    rx = _compiled.get(key)
    if rx is None:
        import re2

        rx = re2.compile("(?m)" + "|".join(f"(?:{p})" for p in patterns), _options(ignore_case))
        with _lock:
            _compiled[key] = rx
    return rx


def matching(rx: Any, texts: list[str]) -> set[int]:
    """The indexes of `texts` that `rx` (from `any_of`) matches somewhere in: one RE2 scan over them
    all joined by newlines (RE2's per-call overhead, not the scan, is what costs on many short
    texts). A match never crosses a newline (never_nl); `^` and `$` also match at a text's lines."""
    import bisect

    if not texts:
        return set()
    starts, at = [], 0
    for t in texts:
        starts.append(at)
        at += len(t) + 1
    return {bisect.bisect_right(starts, m.start()) - 1 for m in rx.finditer("\n".join(texts))}
