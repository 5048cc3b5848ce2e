"""A report_id may hold personal data (partners choose it): logs never carry it, only a keyed
reference and the message's position (which the dead letter and the `rejected` table carry)."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import orjson
import pytest

from agents.core.correlation import partition_key
from agents.core.geo import Geocoder
from agents.core.jurisdictions import load_jurisdictions
from agents.core.pseudonym import Pseudonymiser
from agents.core.refdata import load_refdata
from agents.ingest import InboundMessage, IngestProcessor
from agents.ports.retry import RetryPolicy
from tests.agents.fakes import FakeKafka, FakeStore, run_inline

ROOT = Path(__file__).resolve().parents[2]
PSEUDO = Pseudonymiser(b"ingest-log-test-key-0123456789abcdef")
PHONE_ID = "signalement-06.12.34.56.78-2024"  # a partner's id with a phone number in it


@pytest.fixture(scope="module")
def geocoder() -> Geocoder:
    refdata = load_refdata()
    return Geocoder(refdata, load_jurisdictions(None, refdata))


async def test_a_rejected_report_is_logged_without_its_id(
    geocoder: Geocoder, caplog: pytest.LogCaptureFixture
) -> None:
    processor = IngestProcessor(
        store=FakeStore(), enricher=geocoder, pseudonymiser=PSEUDO, send=FakeKafka().send,
        rejected_topic="rejected.t", enriched_topic="enriched.t", partition_key=partition_key,
        retry=RetryPolicy(max_retries=0), run_blocking=run_inline,
    )
    bad = orjson.dumps({"report_id": PHONE_ID, "source": {"kind": "citizen", "org": "x"},
                        "category": "no-such-category", "occurred_at": "2024-03-18T21:00:00Z",
                        "location": {"insee": "91228"}})
    msg = InboundMessage("vigie.reports.partner.v1", 4, 1234, PHONE_ID.encode(), bad, 1.7e9)
    with caplog.at_level(logging.INFO, logger="agents.ingest"):
        outcome = await processor.process([msg])
    assert [r.report_id for _, r in outcome.rejected] == [PHONE_ID]  # the tables keep it
    [line] = [r for r in caplog.records if r.getMessage() == "report rejected"]
    fields = vars(line)
    assert "report_id" not in fields
    assert PHONE_ID not in repr(fields) and "0612345678" not in repr(fields)
    assert fields["report_ref"] == PSEUDO.reference(PHONE_ID)
    assert (fields["topic"], fields["partition"], fields["offset"]) == (
        "vigie.reports.partner.v1", 4, 1234)
    assert fields["reason"] == "unknown_category"


def logged_report_ids(tree: ast.AST) -> list[int]:
    """Lines of logging calls whose `extra=` dict has a `report_id` key."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for keyword in node.keywords:
            if keyword.arg == "extra" and isinstance(keyword.value, ast.Dict):
                keys = [k.value for k in keyword.value.keys if isinstance(k, ast.Constant)]
                if "report_id" in keys:
                    found.append(node.lineno)
    return found


def test_no_log_call_passes_a_report_id() -> None:
    offending = []
    for package in ("agents", "streams", "console", "offline"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for line in logged_report_ids(ast.parse(path.read_text(), str(path))):
                offending.append(f"{path.relative_to(ROOT)}:{line}")
    assert offending == []


def test_the_scan_finds_a_logged_report_id() -> None:
    tree = ast.parse('log.info("report rejected", extra={"report_id": rid, "reason": r})\n'
                     'log.info("ok", extra={"report_ref": ref})\n')
    assert logged_report_ids(tree) == [1]
