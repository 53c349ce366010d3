"""Every real audit entry in tests/data/corpus ends as MANIFEST.tsv says: parsed into a service,
method and resource; parsed but skipped, for a reason; or rejected, for a reason.

The manifest's service, method and resource were read from each entry's own protoPayload
(serviceName, methodName, resourceName) after stripping its envelope by hand, not from `parse`;
a rejection's or skip's reason is Rampart's, reviewed against PROVENANCE.tsv (placeholders `...`
where an object belongs, keys Panther dropped, envelopes whose payload is not an audit entry).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import NamedTuple

import pytest

from shared.event import AuditEvent, BadInput, parse, skip_reason
from tests.helpers import CORPUS, CORPUS_DIR, corpus_files, load_json

OUTCOMES = ("parsed", "skipped", "rejected")


class Expected(NamedTuple):
    file: str
    outcome: str
    service: str
    method: str
    resource: str
    reason: str


def _read(name: str) -> list[dict[str, str]]:
    path = CORPUS_DIR / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the corpus tests need it")
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


MANIFEST = [Expected(**row) for row in _read("MANIFEST.tsv")]
PROVENANCE = {row["file"]: row for row in _read("PROVENANCE.tsv")}
FILES = corpus_files()


def delivered(path: Path) -> object:
    doc = load_json(path)
    if isinstance(doc, dict) and "headers" in doc and "body" in doc:  # a binary-mode request, reconstructed
        return doc["body"]
    return doc


def test_manifest_lists_every_corpus_entry_once() -> None:
    names = [e.file for e in MANIFEST]
    assert len(names) == len(set(names)), "an entry is listed twice"
    on_disk = {p.relative_to(CORPUS).as_posix() for p in FILES}
    assert set(names) == on_disk, f"unlisted: {sorted(on_disk - set(names))}; missing: {sorted(set(names) - on_disk)}"
    assert {e.outcome for e in MANIFEST} == set(OUTCOMES), "every outcome is exercised"


def test_provenance_names_source_and_licence_of_every_entry() -> None:
    on_disk = {"events/" + p.relative_to(CORPUS).as_posix() for p in FILES}
    assert set(PROVENANCE) == on_disk
    for name, row in PROVENANCE.items():
        assert row["repo"] and row["license"], f"{name}: no source or licence"


@pytest.mark.parametrize("e", MANIFEST, ids=[e.file for e in MANIFEST])
def test_corpus_entry_has_the_outcome_the_manifest_names(e: Expected) -> None:
    assert e.outcome in OUTCOMES, e
    doc = delivered(CORPUS / e.file)
    if e.outcome == "rejected":
        with pytest.raises(BadInput) as info:
            parse(doc)
        assert info.value.reason == e.reason
        return
    event = parse(doc)
    assert isinstance(event, AuditEvent)
    assert (event.service, event.method, event.resource_name) == (e.service, e.method, e.resource)
    assert skip_reason(event) == (e.reason if e.outcome == "skipped" else None)


def test_manifest_outcomes_are_the_mix_the_corpus_holds() -> None:
    """Counted from the manifest, checked by hand against PROVENANCE.tsv: 22 entries are not
    audit entries Rampart can read (Panther placeholders, BigQuery rows, toy envelopes); 44 carry
    no Admin Activity logName (detection-rule samples trimmed of it, or other logs), and only Admin
    Activity entries are believed (issue 14 #3), so they are skipped as not_admin_activity."""
    counts = {o: sum(e.outcome == o for e in MANIFEST) for o in OUTCOMES}
    assert counts == {"parsed": 119, "skipped": 122, "rejected": 22}
