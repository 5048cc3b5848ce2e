"""Enriched bundles on the internal topic: bounded size, round trip, bad input refused."""

from __future__ import annotations

import orjson
import pytest

from agents.core.record import ReportRecord
from agents.ingest import BUNDLE_MAX_RECORDS, bundle_by_key, unbundle


def record(i: int, area: str) -> ReportRecord:
    return ReportRecord(
        report_id=f"r{i}", source_kind="citizen", source_org="citoyen", source_channel=None,
        category="vol", occurred_at=1.0e9 + i, reported_at=1.0e9 + i, lat=48.6, lon=2.4,
        accuracy_m=None, insee="91228", severity=None, contact_hash=None,
        description_hash=None, description_len=0, h3_r9=area,
    )


def test_bundles_are_grouped_by_key_chunked_and_round_trip() -> None:
    records = [record(i, "a" if i % 3 else "b") for i in range(2 * BUNDLE_MAX_RECORDS + 10)]
    bundles = bundle_by_key(records, [r.to_dict() for r in records], lambda r: r.h3_r9)
    assert all(len(orjson.loads(b)) <= BUNDLE_MAX_RECORDS for _, b in bundles)
    back = [rec for key, b in bundles for rec in unbundle(b) if key in ("a", "b")]
    assert sorted(r.report_id for r in back) == sorted(r.report_id for r in records)
    for key, b in bundles:
        assert {r.h3_r9 for r in unbundle(b)} == {key}
    # order inside a key is kept (the correlator reads an area's records in order)
    a_ids = [r.report_id for k, b in bundles if k == "a" for r in unbundle(b)]
    assert a_ids == [r.report_id for r in records if r.h3_r9 == "a"]


@pytest.mark.parametrize("raw", [b'{"report_id": "x"}', b"[1, 2]", b'[{"nope": 1}]', b"oops"])
def test_unbundle_refuses_what_is_not_a_bundle(raw: bytes) -> None:
    with pytest.raises((ValueError, TypeError)):
        unbundle(raw)
