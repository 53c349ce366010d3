"""Text for a terminal: everything a record holds came from a resource someone else controls."""

from __future__ import annotations

import re

# ANSI/VT escape sequences (CSI, OSC up to BEL or ST, and two-character escapes), then every
# remaining C0/C1 control character and the Unicode bidirectional overrides (which reorder what
# the reader sees: "Trojan Source").
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(value: object, limit: int = 2000) -> str:
    """`value` as one safe line for a terminal: no escape sequences, no control characters (tab and
    newline become spaces), bounded."""
    text = value if isinstance(value, str) else str(value)
    text = _ESCAPES.sub("", text[: limit * 4])
    text = text.replace("\t", " ").replace("\n", " ")
    text = _CONTROL.sub("", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"
