"""Every setting of Vigie, read from `VIGIE_*` environment variables (one documented table).

`docs/settings.md` is generated from this class (`vigie settings --markdown`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.core.correlation.config import CorrelationConfig


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIE_", extra="ignore")

    # --- Kafka ---
    kafka_bootstrap: str = Field("localhost:19092", description="Kafka bootstrap servers")
    app_id: str = Field("vigie", description="Faust app id (consumer group, changelog prefix)")
    topic_partitions: int = Field(6, description="Partitions of topics Vigie creates")
    topic_replicas: int = Field(1, description="Replication factor of topics Vigie creates")
    topic_partner: str = Field("vigie.reports.partner.v1", description="Partner reports topic")
    topic_citizen: str = Field("vigie.reports.citizen.v1", description="Citizen reports topic")
    topic_rejected: str = Field("vigie.reports.rejected.v1", description="Dead-letter topic")
    topic_enriched: str = Field(
        "vigie.reports.enriched.v1", description="Internal: enriched reports keyed by area"
    )
    topic_incidents: str = Field("vigie.incidents.v1", description="Incident versions")
    topic_alerts: str = Field("vigie.alerts.v1", description="Alert lifecycle messages")
    topic_alert_actions: str = Field(
        "vigie.alerts.actions.v1", description="Operator acknowledgements and closures"
    )
    worker_data_dir: str = Field("var/worker", description="Faust worker data directory")
    web_port: int = Field(6066, description="Worker HTTP port (metrics, health, console)")
    web_host: str = Field("127.0.0.1", description="Worker HTTP bind address")

    # --- ClickHouse ---
    clickhouse: str = Field(
        "chdb:///var/vigie/chdb",
        description="Store URL: chdb:///path (embedded) or clickhouse://user:pass@host:9000/db",
    )
    sink_batch_rows: int = Field(5000, description="Flush a batch at this many rows")
    sink_batch_seconds: float = Field(1.0, description="Flush a batch after this many seconds")
    correlate_batch_bundles: int = Field(
        20,
        description="Enriched bundles (up to 400 reports each) correlated per batch: bounds "
        "the work between two commits when catching up a backlog",
    )
    sink_max_retries: int = Field(5, description="Insert retries before the worker crashes")
    sink_backoff_seconds: float = Field(0.5, description="Base of jittered exponential backoff")
    clickhouse_unready_seconds: float = Field(
        30.0, description="Readiness turns false after ClickHouse is unreachable this long"
    )

    # --- Reference data, privacy ---
    refdata: str = Field("", description="Reference data file (default: packaged Essonne 91)")
    jurisdictions: str = Field(
        "", description="Commune → jurisdiction mapping CSV (default: packaged illustrative)"
    )
    pseudonym_secret: SecretStr = Field(
        SecretStr("dev-only-secret-change-me-0000"),
        description="Key of the keyed hash applied to personal data (set in production!)",
    )
    dedup_retention_hours: float = Field(
        168.0, description="How long a report_id is remembered for exact re-delivery drops"
    )

    # --- Correlation ---
    allowed_lateness_hours: float = Field(
        48.0, description="Reports this late (event time) still merge into incidents"
    )
    correlation_compatible: str = Field(
        "",
        description="Category pairs that may merge although they differ (citizens mislabel), "
        "`a:b` comma-separated, replacing the built-in table (empty: built-in, "
        "`agents/core/correlation/config.py`)",
    )
    correlation_chronic_places: bool = Field(
        True,
        description="Learn chronic dealing/hall places, where each night is its own incident "
        "(false: one long window everywhere)",
    )

    # --- Detection ---
    detect_interval_seconds: float = Field(60.0, description="Detection period")
    false_alerts_per_day: float = Field(
        1.0, description="Target false-alert rate for the whole served area"
    )
    detector_clock: Literal["wall", "data"] = Field(
        "wall",
        description="Detector clock: `wall` (production) or `data` (the newest first-seen "
        "time in the store; for replays and simulations faster than real time)",
    )

    console_embedded: bool | None = Field(
        None,
        description="Serve the console from the worker process (default: yes with chDB, whose "
        "directory only one process may open; in server mode run `vigie console` instead)",
    )

    log_level: str = Field("INFO", description="Log level")


def correlation_config(settings: Settings) -> CorrelationConfig:
    """The correlation parameters the settings ask for (worker and `vigie backtest` alike);
    a pair naming an unknown category is refused, so a typo cannot silently disable it."""
    base = CorrelationConfig()
    known = base.categories()
    pairs = base.compatible_pairs
    if settings.correlation_compatible.strip():
        parsed: list[tuple[str, str]] = []
        for item in settings.correlation_compatible.split(","):
            a, sep, b = item.strip().partition(":")
            if not sep or a.strip() not in known or b.strip() not in known:
                raise ValueError(
                    f"VIGIE_CORRELATION_COMPATIBLE: {item.strip()!r} is not `a:b` with known "
                    f"categories ({', '.join(sorted(known))})"
                )
            parsed.append((a.strip(), b.strip()))
        pairs = tuple(parsed)
    return CorrelationConfig(
        allowed_lateness_s=settings.allowed_lateness_hours * 3600.0,
        compatible_pairs=pairs,
        chronic=base.chronic if settings.correlation_chronic_places else None,
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
