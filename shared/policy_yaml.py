"""Read a policy file's YAML without letting the file hurt the reader.

A policy is written by people and, sometimes, by whoever got write access to its bucket or repo.
So the text is bounded before it is parsed, anchors/aliases are counted and the expanded size is
bounded before anything is built (a "billion laughs" file is refused in microseconds), duplicate
keys are errors (YAML keeps the last one silently), and nothing here ever shows a value: errors
name the line and the key path only. Values under secret-like keys are `<redacted>` everywhere
(`redact_value`), because a policy may hold a webhook URL or a password by mistake.
"""

from __future__ import annotations

import re
from typing import Any

MAX_POLICY_BYTES = 512 * 1024  # the shipped policy is ~6 KB
MAX_ALIASES = 200  # anchors reused this often are a bomb, not a policy
MAX_EXPANDED_NODES = 100_000  # nodes once every alias is expanded

REDACTED = "<redacted>"
# A key path segment whose value may be a secret: password, passwd, token, secret, webhook, key,
# api_key, private_key, credential(s), ... (`key` as a word of the segment, not "monkey").
_SECRET_SEGMENT = re.compile(
    r"pass(word|wd)?|token|secret|webhook|credential|(^|[_\-.])(api|private|access|signing)?_?keys?($|[_\-.])",
    re.IGNORECASE,
)


class PolicyYAMLError(ValueError):
    """The text cannot be a policy; `problems` holds one message per problem (no values)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def secret_path(path: str) -> bool:
    """Whether a dotted key path (`alerts.slack.webhook_url`) names a place a secret may live."""
    return any(_SECRET_SEGMENT.search(seg) for seg in re.split(r"[.\[\]]+", path) if seg)


def shown(value: Any, path: str = "", limit: int = 60) -> str:
    """A short, safe rendering of a value found in a policy: `<redacted>` under a secret-like
    path, a size for containers (never the repr of a large value), a bounded repr otherwise."""
    if secret_path(path):
        return REDACTED
    if isinstance(value, dict | list | tuple | set):
        return f"a {type(value).__name__} of {len(value)} item(s)"
    if isinstance(value, str):
        text = value if len(value) <= limit else value[: limit - 3] + "..."
        return repr(text)
    if isinstance(value, bool | int | float) or value is None:
        text = repr(value)
        return text if len(text) <= limit else text[: limit - 3] + "..."
    return f"a {type(value).__name__}"


def load(text: str) -> Any:
    """Parse YAML policy text into plain data; PolicyYAMLError lists every structural problem."""
    import yaml

    if len(text) > MAX_POLICY_BYTES:
        raise PolicyYAMLError([f"policy of {len(text)} bytes is over the {MAX_POLICY_BYTES}-byte limit: refused unread"])
    loader = _loader_class()(text)
    try:
        try:
            node = loader.get_single_node()
        except _TooManyAliases:
            raise PolicyYAMLError([f"more than {MAX_ALIASES} aliases (*name): refused before expanding them"]) from None
        if node is None:
            return None
        problems: list[str] = []
        _expanded_size(node, {}, set())
        _check_tree(node, "", problems, set())
        if problems:
            raise PolicyYAMLError(problems)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise PolicyYAMLError([f"not valid YAML{where}: {problem}"]) from None
    finally:
        loader.dispose()


class _TooManyAliases(Exception):
    pass


def _loader_class() -> Any:
    import yaml

    class Loader(yaml.SafeLoader):
        aliases = 0

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                self.aliases += 1
                if self.aliases > MAX_ALIASES:
                    raise _TooManyAliases()
            return super().compose_node(parent, index)

    return Loader


def _expanded_size(node: Any, memo: dict[int, int], active: set[int]) -> int:
    import yaml

    key = id(node)
    if key in memo:
        return memo[key]
    if key in active:
        raise PolicyYAMLError([f"line {node.start_mark.line + 1}: an alias refers to its own anchor (a recursive structure)"])
    active.add(key)
    size = 1
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            size += _expanded_size(child, memo, active)
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            size += _expanded_size(k, memo, active) + _expanded_size(v, memo, active)
    active.discard(key)
    if size > MAX_EXPANDED_NODES:
        raise PolicyYAMLError([f"the policy expands to more than {MAX_EXPANDED_NODES} values (aliases): refused"])
    memo[key] = size
    return size


def _check_tree(node: Any, path: str, problems: list[str], seen: set[int]) -> None:
    """Duplicate keys, per mapping, with the key path and both lines (each node checked once)."""
    import yaml

    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for i, child in enumerate(node.value):
            _check_tree(child, f"{path}[{i}]", problems, seen)
    elif isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for k, v in node.value:
            name = k.value if isinstance(k, yaml.ScalarNode) else None
            here = f"{path}.{name}" if path and name is not None else (name or path or "(top level)")
            if name is not None and k.tag != "tag:yaml.org,2002:merge":
                line = k.start_mark.line + 1
                if name in first:
                    problems.append(
                        f"{here}: duplicate key (lines {first[name]} and {line}):"
                        " YAML would silently keep the last one; keep one"
                    )
                else:
                    first[name] = line
            _check_tree(v, here, problems, seen)
