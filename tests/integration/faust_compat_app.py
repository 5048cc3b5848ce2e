"""A minimal Faust app for the broker compatibility test (run as a worker subprocess).

Configured by env: COMPAT_BROKER (host:port), COMPAT_APP_ID, COMPAT_DATADIR, COMPAT_RUN,
COMPAT_SUFFIX (appended to topic names). The `count` agent consumes `compat-events` in the
app's consumer group, counts events per key in the `counts` table (changelog topic
`<app id>-counts-changelog`, in-memory store: after a restart the counts can only come back
from the changelog) and emits {"key", "count", "run"} to `compat-out`.
"""

from __future__ import annotations

import os
from typing import Any

import faust

RUN = int(os.environ.get("COMPAT_RUN", "1"))
SUFFIX = os.environ.get("COMPAT_SUFFIX", "")

app = faust.App(
    os.environ.get("COMPAT_APP_ID", "vigie-compat"),
    broker=f"kafka://{os.environ.get('COMPAT_BROKER', '127.0.0.1:19092')}",
    store="memory://",
    datadir=os.environ.get("COMPAT_DATADIR", "var/faust-compat"),
    topic_partitions=2,
    topic_replication_factor=1,
    topic_allow_declare=True,
    consumer_auto_offset_reset="earliest",
    broker_commit_interval=0.5,
    table_standby_replicas=0,
    web_enabled=False,
    autodiscover=False,
)

events = app.topic(
    f"compat-events{SUFFIX}",
    key_type=str,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
    partitions=2,
    internal=True,
)
out = app.topic(
    f"compat-out{SUFFIX}", key_type=str, value_serializer="json", partitions=1, internal=True
)
counts = app.Table("counts", default=int, partitions=2)


@app.agent(events)
async def count(stream: Any) -> None:
    async for key, _value in stream.items():
        counts[key] += 1
        await out.send(key=key, value={"key": key, "count": counts[key], "run": RUN})


@app.task  # type: ignore[untyped-decorator]
async def declare_sinks() -> None:
    """Faust creates subscribed internal topics (sources, changelogs) by itself, but never a
    topic it only sends to: with broker-side auto creation off, sinks are declared here."""
    await out.maybe_declare()
