"""`reports` is keyed by a report's identity (source kind, source org, report_id), on both
backends (real ClickHouse 18.16 server and chDB): two sources' reports with one id stay two
rows through merges, and a database whose `reports` was keyed by `report_id` alone is moved to
the new key on start-up (`schema.migrate_reports_key`), safely when interrupted."""

from __future__ import annotations

from typing import Any

import orjson

from agents.core.correlation import Correlator
from agents.core.record import ReportKey
from agents.ports.sql import reports, schema
from streams.storage import Store
from streams.storage.bench import make_report_rows
from streams.storage.queries import count_reports
from tests.agents.fakes import report as enriched_report

OLD_KEY = "ORDER BY report_id"


def old_reports_ddl(table: str = "reports") -> str:
    """`reports` as released before the identity key: `ORDER BY report_id`, no content hash."""
    ddl = schema.REPORTS_TABLE.replace("{table}", table)
    ddl = ddl.replace("ORDER BY (report_id, source_kind, source_org)", OLD_KEY)
    ddl = ddl.replace("content_hash String DEFAULT '',", "")
    assert OLD_KEY in ddl and "content_hash" not in ddl
    return ddl


def command(store: Store, sql: str) -> None:
    db = store.database  # type: ignore[attr-defined]
    store._command(" ".join(sql.split()).format(db=db))  # type: ignore[attr-defined]


def key_of(store: Store, table: str) -> list[dict[str, Any]]:
    db = store.database  # type: ignore[attr-defined]
    return store.query(schema.sorting_key(db, table).sql)


def rows_of(store: Store, table: str) -> set[tuple[Any, ...]]:
    found = store.query(
        f"SELECT report_id, source_kind, source_org, category, occurred_at, origin_offset"
        f" FROM {table}"
    )
    return {tuple(r.values()) for r in found}


def two_sources_one_id() -> list[dict[str, Any]]:
    """Two reports of two police stations that both numbered their report 000042."""
    first, second = make_report_rows(2)
    first.update(report_id="000042", source_kind="police_nationale", source_org="csp-evry")
    second.update(report_id="000042", source_kind="police_nationale", source_org="csp-massy")
    return [first, second]


def test_two_sources_reports_with_one_id_stay_two_rows(store: Store) -> None:
    store.insert("reports", two_sources_one_id())
    store.query("OPTIMIZE TABLE reports FINAL")  # merges fold rows of one sorting key
    assert count_reports(store) == 2
    assert {(r[1], r[2]) for r in rows_of(store, "reports")} == {
        ("police_nationale", "csp-evry"),
        ("police_nationale", "csp-massy"),
    }
    assert key_of(store, "reports") == [
        {"engine": "ReplacingMergeTree", "key": schema.REPORTS_KEY}
    ]


def test_a_reports_table_keyed_by_id_is_moved_to_the_identity_key(store: Store) -> None:
    db = store.database  # type: ignore[attr-defined]
    command(store, "DROP TABLE {db}.reports")
    command(store, old_reports_ddl())
    old_rows = make_report_rows(60)
    store.insert("reports", old_rows)
    store.insert("reports", old_rows[:10])  # replayed duplicates, not merged yet
    before = rows_of(store, "reports")

    store.ensure_schema()
    store.ensure_schema()  # idempotent: migrated once

    assert key_of(store, "reports")[0]["key"] == schema.REPORTS_KEY
    assert rows_of(store, "reports") == before
    assert count_reports(store) == 60
    # the old table is kept, whole, for the operator to check and drop
    assert key_of(store, schema.REPORTS_BY_ID)[0]["key"] == "report_id"
    assert rows_of(store, schema.REPORTS_BY_ID) == before
    assert not key_of(store, schema.REPORTS_REKEYED)
    # rows stored before content hashes match any content (re-deliveries as before)
    first = old_rows[0]
    query = reports.STORED_KEYS
    key = ReportKey(first["source_kind"], first["source_org"], first["report_id"])
    found = store.query(query.sql, query.bind(ids=(key.report_id,)))
    assert found and {r["content_hash"] for r in found} == {""}  # its replay may be merged
    # and the table now keeps two sources' reports with one id apart
    store.insert("reports", two_sources_one_id())
    store.query("OPTIMIZE TABLE reports FINAL")
    assert count_reports(store) == 62
    assert db  # the store's own database throughout


def test_an_interrupted_copy_is_done_again(store: Store) -> None:
    """A start that stopped while filling the copy: the copy is dropped and filled again."""
    command(store, "DROP TABLE {db}.reports")
    command(store, old_reports_ddl())
    store.insert("reports", make_report_rows(30))
    before = rows_of(store, "reports")
    command(store, schema.REPORTS_TABLE.replace("{table}", schema.REPORTS_REKEYED))
    store.insert(schema.REPORTS_REKEYED, make_report_rows(5, start=1000))  # a partial copy

    store.ensure_schema()

    assert key_of(store, "reports")[0]["key"] == schema.REPORTS_KEY
    assert rows_of(store, "reports") == before


def test_a_swap_interrupted_between_its_renames_is_finished(store: Store) -> None:
    """No `reports` left, the old table renamed, the full copy still under its own name: the
    start-up finishes the swap instead of creating an empty `reports`."""
    command(store, "DROP TABLE {db}.reports")
    command(store, old_reports_ddl(schema.REPORTS_BY_ID))
    command(store, schema.REPORTS_TABLE.replace("{table}", schema.REPORTS_REKEYED))
    rows = make_report_rows(25)
    store.insert(schema.REPORTS_BY_ID, rows)
    store.insert(schema.REPORTS_REKEYED, rows)

    store.ensure_schema()

    assert key_of(store, "reports")[0]["key"] == schema.REPORTS_KEY
    assert count_reports(store) == 25
    assert not key_of(store, schema.REPORTS_REKEYED)


def test_incident_versions_with_their_reports_sources_go_into_an_older_table(
    store: Store,
) -> None:
    """`incidents` and `rejected` created before the identity columns get them on start-up:
    the engine's versions (which list each report's source) insert, and read back in order."""
    db = store.database  # type: ignore[attr-defined]
    for name in ("incident_hours_mv2", "incidents", "rejected"):
        command(store, f"DROP TABLE {{db}}.{name}")
    for stmt in schema.STATEMENTS:
        if ".incidents (" in stmt or ".rejected (" in stmt:
            command(store, stmt)  # as released: without the ADDED_COLUMNS
    assert not store.query(schema.column_exists(db, "incidents", "report_source_orgs").sql)[0][
        "n"
    ]
    store.ensure_schema()
    engine = Correlator()
    versions = engine.process(enriched_report(kind="police_nationale", org="csp-evry"))
    versions += engine.process(enriched_report(kind="citizen", org="citoyen", east_m=30.0))
    store.insert("incidents", versions)
    got = store.query(
        "SELECT report_ids, report_source_kinds, report_source_orgs FROM incidents"
        " ORDER BY version DESC LIMIT 1"
    )[0]
    last = versions[-1]
    assert got == {k: last[k] for k in got}
    assert got["report_source_orgs"] == ["csp-evry", "citoyen"]
    for column in ("source_kind", "source_org"):
        assert store.query(schema.column_exists(db, "rejected", column).sql) == [{"n": 1}]


async def test_a_large_batch_is_looked_up_within_the_query_size_limit(store: Store) -> None:
    """A batch's re-delivery check on the real store: ClickHouse refuses a query text over
    `max_query_size` (256 KiB), and 3,000 ids of 120 characters are 370 KB. Taken in once,
    then read again: every report is found stored (a re-delivery), none is taken twice."""
    from agents.core.correlation import partition_key
    from agents.core.geo import Geocoder
    from agents.core.jurisdictions import load_jurisdictions
    from agents.core.pseudonym import Pseudonymiser
    from agents.core.refdata import load_refdata
    from agents.ingest import InboundMessage, IngestProcessor
    from agents.ports.retry import RetryPolicy
    from tests.agents.fakes import FakeKafka, run_inline

    refdata = load_refdata()
    processor = IngestProcessor(
        store=store, enricher=Geocoder(refdata, load_jurisdictions(None, refdata)),
        pseudonymiser=Pseudonymiser(b"test-secret-lookup-0123456789abcdef"),
        send=FakeKafka().send, rejected_topic="rejected.t", enriched_topic="enriched.t",
        partition_key=partition_key, retry=RetryPolicy(max_retries=0), run_blocking=run_inline,
    )
    batch = [
        InboundMessage("vigie.reports.citizen.v1", 0, i, None, orjson.dumps({
            "report_id": f"{i:06d}-" + "x" * 113,
            "source": {"kind": "citizen", "org": "citoyen"},
            "category": "vol",
            "occurred_at": "2024-03-18T20:30:00+01:00",
            "location": {"insee": "91228"},
        }), 1_710_792_000.0)
        for i in range(3000)
    ]
    first = await processor.process(batch)
    assert len(first.accepted) == 3000 and not first.rejected
    again = await processor.process(batch)
    assert not again.accepted and not again.rejected and again.redeliveries == 3000
    assert count_reports(store) == 3000
