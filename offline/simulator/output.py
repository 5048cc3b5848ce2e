"""Sinks for the simulated stream: JSON-lines files (reports + truth) and Kafka.

`reports.jsonl` holds one message value a line, exactly the bytes Kafka would carry.
`truth.jsonl` holds, in order: a `world` line (random worlds, `offline.simulator.world`),
`outbreak` and `chronic_spot` lines, then for each
message a `message` line (the i-th message line describes the i-th report line), each
preceded, for the first message of an incident, by that `incident` line.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from offline.simulator.engine import SimMessage, Simulation
from offline.simulator.messages import TOPIC_CITIZEN, TOPIC_PARTNER


@dataclass
class SinkStats:
    messages: int = 0
    bytes: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


def paced(
    messages: Iterable[SimMessage], speedup: float = 1.0, now: float | None = None
) -> Iterator[SimMessage]:
    """Release messages at wall-clock pace: a message stamped before `now` goes at once
    (backfill), a later one when `(ts - now) / speedup` seconds have passed."""
    wall0 = time.monotonic()
    anchor = time.time() if now is None else now
    for m in messages:
        wait = wall0 + (m.timestamp_ms / 1000.0 - anchor) / speedup - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        yield m


def truth_header(sim: Simulation) -> list[dict[str, object]]:
    """The truth lines known before the first message: the drawn reporting world (random
    worlds only), outbreaks and chronic spots."""
    world = [sim.config.world.truth()] if sim.config.world is not None else []
    return [*world, *sim.outbreaks, *sim.chronic_spots]


def _header(
    messages: Iterable[SimMessage], header: list[dict[str, object]] | None
) -> list[dict[str, object]]:
    if header is not None:
        return header
    return truth_header(messages) if isinstance(messages, Simulation) else []


def write_jsonl(
    messages: Iterable[SimMessage],
    reports_path: str | Path,
    truth_path: str | Path | None = None,
    *,
    header: list[dict[str, object]] | None = None,
    flush_each: bool = False,
) -> SinkStats:
    """Write the stream to `reports_path` (and its ground truth to `truth_path`).

    `header`: the first truth lines (default: `truth_header(messages)` when `messages` is
    a `Simulation`; pass it when wrapping the simulation, e.g. in `itertools.islice`)."""
    stats = SinkStats()
    began = time.perf_counter()
    with open(reports_path, "wb") as rep:
        truth = open(truth_path, "wb") if truth_path else None  # noqa: SIM115
        try:
            if truth:
                for line in _header(messages, header):
                    truth.write(orjson.dumps(line) + b"\n")
            for m in messages:
                rep.write(m.value + b"\n")
                if truth:
                    if m.incident_truth is not None:
                        truth.write(orjson.dumps(m.incident_truth) + b"\n")
                    truth.write(orjson.dumps(m.truth) + b"\n")
                stats.messages += 1
                stats.bytes += len(m.value)
                if flush_each:
                    rep.flush()
                    if truth:
                        truth.flush()
        finally:
            if truth:
                truth.close()
    stats.seconds = time.perf_counter() - began
    return stats


async def produce_kafka_async(
    messages: Iterable[SimMessage],
    bootstrap: str,
    *,
    truth_path: str | Path | None = None,
    header: list[dict[str, object]] | None = None,
    window: int = 20_000,
    speedup: float | None = None,
) -> SinkStats:
    """Send to Kafka (aiokafka, batched, acks=all), confirm every send, flush at the end.

    At most `window` sends are in flight; their delivery is awaited before more are
    queued, and any failed send raises. `speedup` paces at wall-clock speed (see `paced`).
    """
    from aiokafka import AIOKafkaProducer

    await ensure_topics(bootstrap, sorted({TOPIC_PARTNER, TOPIC_CITIZEN}))
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=20,
        max_batch_size=512 * 1024,
        max_request_size=2 * 1024 * 1024,
        enable_idempotence=False,
    )
    await producer.start()
    if speedup:  # paced: confirm sends often, so a refused one stops the stream at once
        window = min(window, 200)
    stats = SinkStats()
    began = time.perf_counter()
    truth = open(truth_path, "wb") if truth_path else None  # noqa: SIM115
    try:
        if truth:
            for line in _header(messages, header):
                truth.write(orjson.dumps(line) + b"\n")
        wall0, anchor = time.monotonic(), time.time()
        inflight: list[asyncio.Future[object]] = []
        for m in messages:
            if speedup:
                wait = wall0 + (m.timestamp_ms / 1000.0 - anchor) / speedup - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            fut = await producer.send(m.topic, m.value, key=m.key, timestamp_ms=m.timestamp_ms)
            inflight.append(fut)
            if truth:
                if m.incident_truth is not None:
                    truth.write(orjson.dumps(m.incident_truth) + b"\n")
                truth.write(orjson.dumps(m.truth) + b"\n")
            stats.messages += 1
            stats.bytes += len(m.value)
            if len(inflight) >= window:
                await asyncio.gather(*inflight)
                inflight.clear()
        await producer.flush()
        await asyncio.gather(*inflight)
    finally:
        if truth:
            truth.close()
        await producer.stop()
    stats.seconds = time.perf_counter() - began
    return stats


async def ensure_topics(bootstrap: str, names: list[str]) -> None:
    """Create the report topics when missing (partitions/replicas from settings)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    from streams.settings import get_settings

    s = get_settings()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        missing = [n for n in names if n not in set(await admin.list_topics())]
        if missing:
            new = [NewTopic(n, s.topic_partitions, s.topic_replicas) for n in missing]
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(new)
    finally:
        await admin.close()


def produce_kafka(
    messages: Iterable[SimMessage],
    bootstrap: str,
    *,
    truth_path: str | Path | None = None,
    header: list[dict[str, object]] | None = None,
    speedup: float | None = None,
) -> SinkStats:
    return asyncio.run(
        produce_kafka_async(
            messages, bootstrap, truth_path=truth_path, header=header, speedup=speedup
        )
    )
