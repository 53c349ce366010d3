"""Fast unit tests of what `Pipeline.handle` counts, logs and records (no servers): the stats
counters of each path, the fields of its log lines, a last attempt's FAILED record
(`_record_final`), and `act`'s severity and enrichment on the record. tests/test_pipeline_unit.py
covers which findings are acted on and which error is raised; these pin down the rest."""

from __future__ import annotations

from typing import Any

from shared import pipeline as P
from shared.config import parse_policy
from shared.event import parse
from tests.helpers import RULE_FIXTURES, load_json

THREE_FINDINGS = RULE_FIXTURES / "run_ingress_open" / "positive_v1_replace_all.json"


class Pinned:
    def __init__(self, loaded: Any) -> None:
        self.loaded = loaded

    def current(self) -> Any:
        return self.loaded


def test_a_skipped_event_is_counted_under_its_reason() -> None:
    entry = load_json(THREE_FINDINGS)
    entry["protoPayload"]["methodName"] = "google.cloud.run.v1.Services.GetService"
    pipeline = P.Pipeline(Pinned(parse_policy("default_mode: alert\n")), alert=False)
    result = pipeline.handle(parse(entry))
    assert result.skipped == "no_rule_for_method"
    assert dict(pipeline.stats) == {"skipped:no_rule_for_method": 1}
