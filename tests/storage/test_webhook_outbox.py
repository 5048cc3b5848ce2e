"""The webhook outbox on both backends (ClickHouse 18.16 server, chDB): due deliveries, the
state folded from the events, re-queued copies after a Kafka replay, parking, replay."""

from __future__ import annotations

from typing import Any

from agents.core.delivery import DeliveryEvent, DeliveryState
from agents.deliver import Delivery, deliveries_of, events_of, outbox_row, parked, replay
from agents.ports.sql import webhooks as sql
from agents.ports.store import Store

NOW = 1_780_000_000


def queued(did: str, org: str = "csp-evry", partition: int = 0) -> dict[str, Any]:
    return outbox_row(
        did,
        0,
        DeliveryEvent.QUEUED,
        NOW - 5,
        next_at=NOW - 5,
        org=org,
        kind="incident",
        object_id=f"obj-{did}",
        object_version=1,
        source_topic="vigie.incidents.v1",
        source_partition=partition,
        payload=f'{{"delivery_id":"{did}"}}',
    )


def due(store: Store, now: int) -> dict[str, Delivery]:
    owned = ("vigie.incidents.v1#0", "vigie.incidents.v1#1")
    rows = store.query(sql.DUE.sql, sql.DUE.bind(now=now, limit=100, owned=owned))
    return {d.state.delivery_id: d for d in deliveries_of(rows)}


def test_outbox_states_parking_and_replay(store: Store) -> None:
    store.insert(sql.TABLE, [queued("A"), queued("B", partition=1), queued("C", org="pm-evry")])
    store.insert(sql.TABLE, [queued("D", partition=2)])  # another worker's partition
    pending = due(store, NOW)
    assert set(pending) == {"A", "B", "C"}
    assert pending["B"].source_partition == 1
    assert pending["A"].state.payload == '{"delivery_id":"A"}'
    assert all(d.state.state is DeliveryState.PENDING for d in pending.values())

    a, b, c = pending["A"], pending["B"], pending["C"]
    store.insert(sql.TABLE, [a.event(DeliveryEvent.DELIVERED, NOW, status=204)])
    store.insert(
        sql.TABLE,
        [b.event(DeliveryEvent.FAILED, NOW, next_at=NOW + 100, status=500, error="http 500")],
    )
    store.insert(
        sql.TABLE,
        [
            c.event(DeliveryEvent.FAILED, NOW, next_at=NOW + 100, error="timeout"),
            c.event(DeliveryEvent.PARKED, NOW, after=1, error="timeout"),
        ],
    )
    store.insert(sql.TABLE, [queued("A")])  # a Kafka replay queues A again: still delivered

    assert due(store, NOW) == {}
    later = due(store, NOW + 100)
    assert list(later) == ["B"]
    assert (later["B"].state.failures, later["B"].state.next_seq) == (1, 2)

    states = {r["last_event"]: int(r["n"]) for r in store.query(sql.STATES.sql)}
    assert states == {"delivered": 1, "failed": 1, "parked": 1, "queued": 1}

    [p] = parked(store)
    assert (p["delivery_id"], p["partner"], p["last_error"], int(p["last_seq"])) == (
        "C",
        "pm-evry",
        "timeout",
        2,
    )
    assert parked(store, "csp-evry") == []

    assert replay(store, ["C", "A", "unknown"], now=NOW + 1) == ["C"]
    again = due(store, NOW + 1)
    assert list(again) == ["C"]
    assert (again["C"].state.failures, again["C"].state.next_seq) == (0, 4)
    assert parked(store) == []
    log = [(int(e["seq"]), e["event"]) for e in events_of(store, "C")]
    assert log == [(0, "queued"), (1, "failed"), (2, "parked"), (3, "replayed")]
