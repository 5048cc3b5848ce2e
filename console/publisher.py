"""Publishing operator actions on `vigie.alerts.actions.v1` (key = alert_id, JSON value).

An action publisher is any `async (event: dict) -> None` callable that returns once the
event is confirmed by Kafka and raises otherwise. Event fields: `action_id`, `alert_id`,
`action` (`ack`/`close`), `comment`, `operator`, `role`, `at` (RFC 3339 UTC).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

ActionPublisher = Callable[[dict[str, Any]], Awaitable[None]]


class LazyKafkaProducer:
    """One aiokafka producer (acks=all, idempotent) for `topic`, started on first use and
    stopped by `close`: the console's publishers send through it."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=self.bootstrap,
                    acks="all",
                    enable_idempotence=True,
                    request_timeout_ms=10_000,
                )
                await producer.start()
                self._producer = producer
            return self._producer

    async def close(self) -> None:
        async with self._lock:
            if self._producer is not None:
                await self._producer.stop()
                self._producer = None


class KafkaActionPublisher(LazyKafkaProducer):
    """Default publisher of the alert actions."""

    def __init__(self, bootstrap: str, topic: str = "vigie.alerts.actions.v1") -> None:
        super().__init__(bootstrap, topic)

    async def __call__(self, event: dict[str, Any]) -> None:
        producer = await self._started()
        await producer.send_and_wait(
            self.topic, value=orjson.dumps(event), key=str(event["alert_id"]).encode()
        )
