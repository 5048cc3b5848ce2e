"""HTTP pages of a worker (Faust's web server): /metrics, /healthz, /readyz, /counts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import faust

from streams import metrics
from streams.health import Health
from streams.runtime import run_blocking
from streams.storage.base import Store


def stored_counts(store: Store) -> dict[str, Any]:
    """Aggregate counts for `vigie counts` (no personal data, no per-report rows)."""
    from streams.storage import queries

    day_ago = time.time() - 86_400
    return {
        "reports": queries.count_reports(store),
        "reports_last_24h": queries.count_reports(store, since_epoch=day_ago),
        "by_category": queries.counts_by(store, "category"),
        "by_source_kind": queries.counts_by(store, "source_kind"),
        "by_jurisdiction": queries.counts_by(store, "jurisdiction"),
        "top_communes": dict(list(queries.counts_by(store, "commune").items())[:10]),
        "rejected_by_reason": queries.count_rejected_by_reason(store),
        "incidents": queries.count_incidents(store),
    }


def install_worker_pages(
    app: faust.App, health: Health, store: Store, counts: Callable[[Store], dict[str, Any]]
) -> None:
    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(metrics.render(), content_type=metrics.CONTENT_TYPE.split(";")[0])

    @app.page("/healthz")
    async def liveness(web: Any, request: Any) -> Any:
        status, body = health.liveness()
        return web.json(body, status=status)

    @app.page("/readyz")
    async def readiness(web: Any, request: Any) -> Any:
        status, body = health.readiness()
        return web.json(body, status=status)

    @app.page("/counts")
    async def counts_page(web: Any, request: Any) -> Any:
        if request.query.get("only") == "reports":  # cheap probe (benchmarks, scripts)
            from streams.storage import queries

            return web.json({"reports": await run_blocking(queries.count_reports, store)})
        return web.json(await run_blocking(counts, store))

    @app.timer(1.0)
    async def heartbeat() -> None:
        health.tick()

    @app.task
    async def started() -> None:
        health.mark_started()
