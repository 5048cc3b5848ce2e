"""The webhook outbox `webhook_deliveries`: every event of every delivery (queued with its
body, each failed attempt, delivered, parked, replayed), one row each
(`agents.core.delivery.DeliveryEvent`). A delivery's state is its event of highest `seq`.

The table is a ReplacingMergeTree ordered by (delivery_id, seq, event): the queued row a
Kafka replay writes again folds into the first one; attempts each have their own `seq`.
"""

from __future__ import annotations

from agents.ports.sql.query import Query

TABLE = "webhook_deliveries"  # created by `schema.STATEMENTS`

EVENT_COLUMNS = (
    "delivery_id",
    "seq",
    "event",
    "at_s",
    "next_s",
    "payload",
    "org",
    "kind",
    "object_id",
    "object_version",
    "source_topic",
    "source_partition",
    "status",
    "latency_ms",
    "error",
)
_EVENTS = (
    "SELECT delivery_id, seq, event, toUInt32(at) AS at_s, toUInt32(next_at) AS next_s, payload,"
    " org, kind, object_id, object_version, source_topic, source_partition, status, latency_ms,"
    " error FROM webhook_deliveries"
)

# Every event of the deliveries that are pending (last event queued, failed or replayed) and
# due at `now` (epoch s), the `limit` most overdue first, of the source partitions `owned`
# (a tuple of `source_topic#source_partition`: those the worker's queue consumer holds).
DUE = Query(
    "webhooks.DUE",
    _EVENTS + " WHERE delivery_id IN (SELECT delivery_id FROM webhook_deliveries"
    " WHERE concat(source_topic, '#', toString(source_partition)) IN %(owned)s"
    " GROUP BY delivery_id HAVING argMax(event, seq) IN ('queued', 'failed', 'replayed')"
    " AND argMax(next_at, seq) <= toDateTime(%(now)s)"
    " ORDER BY argMax(next_at, seq), delivery_id LIMIT %(limit)s)"
    " ORDER BY delivery_id, seq",
    EVENT_COLUMNS,
    TABLE,
)

# Every event of delivery `id`, in order (the attempt log).
EVENTS_OF = Query(
    "webhooks.EVENTS_OF",
    _EVENTS + " WHERE delivery_id = %(id)s ORDER BY seq LIMIT 10000",
    EVENT_COLUMNS,
    TABLE,
)

# How many deliveries stand at each last event (queued, failed, replayed: pending).
STATES = Query(
    "webhooks.STATES",
    "SELECT last_event, count() AS n FROM (SELECT delivery_id, argMax(event, seq) AS last_event"
    " FROM webhook_deliveries GROUP BY delivery_id) GROUP BY last_event ORDER BY last_event",
    ("last_event", "n"),
    TABLE,
)

# The parked deliveries of partner `org` ('' : every partner), oldest first, at most `limit`.
PARKED = Query(
    "webhooks.PARKED",
    "SELECT delivery_id, any(org) AS partner, any(kind) AS object_kind,"
    " any(object_id) AS object, max(object_version) AS object_v, max(seq) AS last_seq,"
    " toUInt32(max(at)) AS parked_s, argMax(status, seq) AS last_status,"
    " argMax(error, seq) AS last_error FROM webhook_deliveries"
    " WHERE (%(org)s = '' OR org = %(org)s) GROUP BY delivery_id"
    " HAVING argMax(event, seq) = 'parked' ORDER BY parked_s, delivery_id LIMIT %(limit)s",
    (
        "delivery_id",
        "partner",
        "object_kind",
        "object",
        "object_v",
        "last_seq",
        "parked_s",
        "last_status",
        "last_error",
    ),
    TABLE,
)
