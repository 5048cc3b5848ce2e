"""The table-store guard's decision (`streams.table_guard`): a RocksDB store is kept only
while its marker and offsets agree with the broker's changelog; a stale one is moved aside,
never deleted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streams.table_guard import (
    MARKER,
    OFFSET_KEY,
    ChangelogOrigin,
    Reason,
    decide,
    read_marker,
    set_aside,
    stored_offsets,
    write_marker,
)

TOPIC = "app-vigie-incident-state-changelog"
ORIGIN = ChangelogOrigin("cluster-A", {TOPIC: "topic-1"})
ENDS = {(TOPIC, 0): 10, (TOPIC, 1): 4}
STORED = {(TOPIC, 0): 9, (TOPIC, 1): 3}


def test_a_store_whose_marker_and_offsets_match_is_kept() -> None:
    decision = decide(ORIGIN, ORIGIN, STORED, ENDS)
    assert decision.reason is Reason.MATCH and not decision.stale


def test_nothing_on_disk_is_kept_whatever_the_marker() -> None:
    other = ChangelogOrigin("cluster-B", {TOPIC: "topic-2"})
    assert decide(ORIGIN, other, {}, {}).reason is Reason.NO_STORE


def test_another_cluster_sets_the_store_aside() -> None:
    decision = decide(ORIGIN, ChangelogOrigin("cluster-B", {TOPIC: "topic-1"}), STORED, ENDS)
    assert decision.stale and decision.reason is Reason.CLUSTER_CHANGED
    assert dict(decision.detail) == {"stored": "cluster-A", "broker": "cluster-B"}


def test_a_recreated_changelog_sets_the_store_aside_even_if_long_enough() -> None:
    decision = decide(ORIGIN, ChangelogOrigin("cluster-A", {TOPIC: "topic-2"}), STORED, ENDS)
    assert decision.stale and decision.reason is Reason.TOPIC_RECREATED


@pytest.mark.parametrize("ends", [{}, {(TOPIC, 0): 0, (TOPIC, 1): 0}, {(TOPIC, 0): 10}])
def test_an_empty_or_missing_changelog_partition_sets_the_store_aside(
    ends: dict[tuple[str, int], int],
) -> None:
    decision = decide(ORIGIN, ORIGIN, STORED, ends)
    assert decision.stale and decision.reason is Reason.OFFSET_BEYOND_END
    assert decision.detail["end"] == 0


def test_an_offset_at_or_past_the_end_sets_the_store_aside() -> None:
    # the stored offset is the last record applied: it must be below the end offset
    decision = decide(ORIGIN, ORIGIN, {(TOPIC, 0): 10}, ENDS)
    assert decision.reason is Reason.OFFSET_BEYOND_END
    assert dict(decision.detail) == {"topic": TOPIC, "partition": 0, "stored": 10, "end": 10}
    assert not decide(ORIGIN, ORIGIN, {(TOPIC, 0): 9}, ENDS).stale


def test_without_a_marker_the_offsets_decide() -> None:
    assert decide(None, ORIGIN, STORED, ENDS).reason is Reason.ADOPTED
    assert decide(None, ORIGIN, STORED, {(TOPIC, 0): 0}).reason is Reason.OFFSET_BEYOND_END


def test_unknown_ids_do_not_set_the_store_aside() -> None:
    # a changelog that did not exist when the marker was written; a broker without ids
    marker = ChangelogOrigin("cluster-A", {TOPIC: None})
    assert decide(marker, ORIGIN, STORED, ENDS).reason is Reason.MATCH
    assert decide(ORIGIN, ChangelogOrigin(None, {TOPIC: None}), STORED, ENDS).reason is (
        Reason.MATCH
    )
    assert marker.merged(ORIGIN) == ORIGIN
    assert ORIGIN.merged(ChangelogOrigin("cluster-A", {TOPIC: "topic-9"})) == ORIGIN


def test_marker_round_trip_and_unreadable_marker(tmp_path: Path) -> None:
    tables = tmp_path / "tables-app"
    assert read_marker(tables) is None
    write_marker(tables, ORIGIN)
    assert read_marker(tables) == ORIGIN
    (tables / MARKER).write_text(json.dumps({"cluster_id": 3}), encoding="utf-8")
    assert read_marker(tables) is None  # refused with a warning; the offsets still decide


def test_set_aside_renames_and_never_overwrites(tmp_path: Path) -> None:
    tables = tmp_path / "tables-app"
    tables.mkdir()
    (tables / "x").write_text("1", encoding="utf-8")
    first = set_aside(tables, now=0.0)
    assert first.name == "tables-app.stale-19700101T000000Z" and (first / "x").exists()
    tables.mkdir()
    second = set_aside(tables, now=0.0)
    assert second != first and second.exists() and first.exists() and not tables.exists()


def test_stored_offsets_read_faust_s_offset_key(tmp_path: Path) -> None:
    from rocksdict import Options, Rdict

    for partition, offset in ((0, b"41"), (2, None)):
        db = Rdict(
            str(tmp_path / f"vigie-incident-state-{partition}.db"), options=Options(raw_mode=True)
        )
        if offset is not None:
            db[OFFSET_KEY] = offset
        db[b"some-key"] = b"{}"
        db.close()
    assert stored_offsets(tmp_path, {"vigie-incident-state": TOPIC}) == {(TOPIC, 0): 41}


def test_an_unreachable_broker_keeps_the_store_untouched(tmp_path: Path) -> None:
    import time

    from streams.table_guard import guard_tables

    tables = tmp_path / "tables-app"
    tables.mkdir()
    (tables / "vigie-incident-state-0.db").mkdir()
    started = time.monotonic()
    decision = guard_tables(
        tables, {"vigie-incident-state": TOPIC}, "127.0.0.1:1", "t", timeout_s=1.0
    )
    assert decision is None and time.monotonic() - started < 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tables-app"]
    assert sorted(p.name for p in tables.iterdir()) == ["vigie-incident-state-0.db"]


def test_a_broker_that_never_answers_is_given_up_in_bounded_time(tmp_path: Path) -> None:
    import socket
    import time

    from streams.table_guard import guard_tables

    tables = tmp_path / "tables-app"
    tables.mkdir()
    with socket.socket() as silent:  # accepts connections (backlog), never replies
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        started = time.monotonic()
        decision = guard_tables(
            tables, {"vigie-incident-state": TOPIC}, f"127.0.0.1:{port}", "t", timeout_s=1.0
        )
        elapsed = time.monotonic() - started
    assert decision is None and elapsed < 10, elapsed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tables-app"]
    assert not (tables / MARKER).exists()
