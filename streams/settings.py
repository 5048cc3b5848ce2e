"""Every setting of the worker and the offline tools, read from `VIGIE_*` environment
variables (the console's own `VIGIE_CONSOLE_*` settings are in `console.settings`).

The settings table of `docs/sre.md` is generated from this class
(`.venv/bin/python deploy/grafana/generate.py`); `tests/sre/test_drift.py` fails on a
setting that no code reads or a documented `VIGIE_*` name that is not a setting.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Literal, NoReturn

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.core.correlation.config import CorrelationConfig
from agents.core.pseudonym import MIN_SECRET_BYTES, Pseudonymiser
from agents.core.validation import PartnerTopics, TimeBounds
from schemas.report import CITIZEN_KINDS, PARTNER_KINDS

log = logging.getLogger(__name__)


class Settings(BaseSettings):
    # hide_input_in_errors: a refused value may be a secret; errors name the variable only
    model_config = SettingsConfigDict(
        env_prefix="VIGIE_", extra="ignore", hide_input_in_errors=True
    )

    # --- Kafka ---
    kafka_bootstrap: str = Field("localhost:19092", description="Kafka bootstrap servers")
    app_id: str = Field("vigie", description="Faust app id (consumer group, changelog prefix)")
    topic_partitions: int = Field(6, description="Partitions of topics Vigie creates")
    topic_replicas: int = Field(1, description="Replication factor of topics Vigie creates")
    topic_partner: str = Field("vigie.reports.partner.v1", description="Partner reports topic")
    topic_citizen: str = Field("vigie.reports.citizen.v1", description="Citizen reports topic")
    topic_rejected: str = Field("vigie.reports.rejected.v1", description="Dead-letter topic")
    topic_enriched: str = Field(
        "vigie.reports.enriched.v1", description="Internal: enriched reports, partitioned by area"
    )
    topic_incidents: str = Field("vigie.incidents.v1", description="Incident versions")
    topic_alerts: str = Field("vigie.alerts.v1", description="Alert lifecycle messages")
    topic_alert_actions: str = Field(
        "vigie.alerts.actions.v1", description="Operator acknowledgements and closures"
    )
    topic_feedback: str = Field(
        "vigie.reports.feedback.v1",
        description="Feedback to reporters: each report's status transitions (compacted)",
    )
    partner_topic_prefix: str = Field(
        "",
        description="Per-partner topics on: the worker also reads every topic "
        "`<prefix><org>.v1` (org: `[a-z0-9-]{1,64}`, e.g. `vigie.reports.partner.csp-evry.v1` "
        "with the prefix `vigie.reports.partner.`), and takes there only partner kinds with "
        "`source.org` = org (else `source_org_not_allowed_on_topic`). With one write ACL per "
        "partner principal on its own topic, a partner cannot write as another. Empty: off",
    )
    worker_data_dir: str = Field("var/worker", description="Faust worker data directory")
    table_store: Literal["rocksdb", "memory"] = Field(
        "rocksdb",
        description="Where the worker keeps its table state: `rocksdb` (RocksDB under the "
        "data directory, kept across restarts: a restart reads only the changelog's tail) or "
        "`memory` (the whole changelog is replayed at every start)",
    )
    web_port: int = Field(6066, description="Worker HTTP port (metrics, health, console)")
    web_host: str = Field("127.0.0.1", description="Worker HTTP bind address")
    kafka_max_message_bytes: int = Field(
        1_000_000,
        ge=16_384,
        description="Largest record the worker produces, key and value (the producer's "
        "`max_request_size`; keep it at most the broker's `message.max.bytes`, 1,048,588 by "
        "default). Dead letters and enriched bundles are cut to fit: a dead letter carries "
        "the first bytes of a larger original (whole bytes in ClickHouse `rejected`)",
    )

    # --- Validation of input reports ---
    timestamp_future_tolerance_seconds: float = Field(
        900.0,
        ge=0,
        description="`occurred_at`/`reported_at` more than this after the message's Kafka "
        "timestamp are rejected `timestamp_in_future` (producers' clock skew)",
    )
    timestamp_max_age_days: float = Field(
        30.0,
        gt=0,
        description="`occurred_at`/`reported_at` more than this before the message's Kafka "
        "timestamp are rejected `timestamp_too_old` (late partner uploads are accepted up "
        "to it)",
    )

    # --- ClickHouse ---
    clickhouse: str = Field(
        "chdb:///var/vigie/chdb",
        description="Store URL: chdb:///path (embedded) or clickhouse://user:pass@host:9000/db",
    )
    sink_batch_rows: int = Field(5000, description="Flush a batch at this many rows")
    # The ingest batch's linger: a report waits up to this long for its batch to close (the
    # latency floor of every stage after it); each batch is one insert per table, so it
    # also bounds those inserts to about 1/this a second per worker at low rates.
    sink_batch_seconds: float = Field(
        0.2, description="Close an ingest batch this many seconds after its first message "
        "(latency vs inserts a second)")
    ingest_max_skew_seconds: float = Field(
        60.0,
        description="Event-time alignment of the input partitions when reading a backlog: "
        "records are handed on in time order (`VIGIE_INGEST_ALIGN_ON`), and a partition "
        "whose time runs more than this ahead of the slowest partition that still has data "
        "pending waits (a caught-up or idle partition holds nothing back); -1: off, "
        "partitions are read as fetched (`agents/ingest_align.py`)",
    )
    ingest_align_on: Literal["message_time", "reported_at"] = Field(
        "message_time",
        description="The time the input partitions are aligned on: `message_time` (the Kafka "
        "timestamp: the order a real-time reader and `vigie backtest` see, late uploads "
        "included) or `reported_at` (the report's own, its partition's running maximum)",
    )
    correlate_batch_bundles: int = Field(
        20,
        description="Enriched bundles (up to 400 reports each) correlated per batch: bounds "
        "the work between two commits when catching up a backlog",
    )
    # The correlate agent's batch timer (Faust `take(within=)`): a bundle waits up to this
    # long after the previous batch ended; each batch is one `incidents` insert and one
    # round of changelog writes, so it bounds those to about 1/this a second at low rates.
    correlate_batch_seconds: float = Field(
        0.1, description="Correlate the bundles received every this many seconds (latency vs "
        "incident inserts a second)")
    # The ingest stage's store clock (`agents.ingest_loop`): each batch's dead letters and
    # enriched records are sent with it, but the batches' `reports`, `rejected` and
    # `report_feedback` rows and offsets are written together about this often, beside the
    # next batches. Each insert is a part the server merges again: ClickHouse's guidance is
    # a few large inserts a second at most across tables; the price of a longer clock is
    # that rows reach the tables (the console, the detector) and offsets are committed that
    # much later, and a crash replays that much more.
    ingest_store_seconds: float = Field(
        5.0, ge=0.0, description="Write the ingested batches' report, rejection and feedback "
        "rows, and commit them, this many seconds after the first was taken (or at "
        "`sink_batch_rows` rows); forwarding does not wait for it; 0: every batch")
    # The correlate agent's store clock (`agents.faust_agents.StoreClock`): versions are
    # published with every batch, but the batches' `incidents` rows, changelog states and
    # offsets are written together about this often, so each table gets ~1/this inserts a
    # second (each insert is a part the server merges again, docs/sre.md "Merges"); the
    # writes run beside the next batches, so the clock does not add to their latency.
    correlate_store_seconds: float = Field(
        5.0, ge=0.0, description="Write the correlated batches' incident rows and states, "
        "and commit them, this many seconds after the first was published (or at "
        "`sink_batch_rows` versions); publishing does not wait for it; 0: every batch")
    sink_max_retries: int = Field(
        5, description="Retries of a failing ClickHouse call that is not an outage (bad "
        "statement, schema mismatch) before the worker crashes"
    )
    sink_backoff_seconds: float = Field(0.5, description="Base of jittered exponential backoff")
    clickhouse_unready_seconds: float = Field(
        30.0, description="Readiness turns false after ClickHouse (or Kafka) is unreachable "
        "this long"
    )
    dependency_outage_seconds: float = Field(
        3600.0, description="How long a ClickHouse outage is waited out, batch held and input "
        "paused, before the worker exits (code 70) for a fresh start; 0: no waiting"
    )

    # --- Reference data, privacy ---
    refdata: str = Field("", description="Reference data file (default: packaged Essonne 91)")
    jurisdictions: str = Field(
        "", description="Commune → jurisdiction mapping CSV (default: packaged illustrative)"
    )
    pseudonym_secret: SecretStr = Field(
        SecretStr(""),
        description="Key of the keyed hash applied to personal data: 32+ random bytes, e.g. "
        "`openssl rand -hex 32`. No default: the worker refuses to start without it, except "
        "in development mode",
    )
    dev_mode: bool = Field(
        False,
        description="Development mode: without VIGIE_PSEUDONYM_SECRET the worker hashes "
        "personal data with a random key of its own process (and logs a warning). Never in "
        "production: hashes then change at every restart",
    )
    input_retention_hours: float = Field(
        168.0,
        description="Time retention (`retention.ms`) of the partner and citizen topics when "
        "Vigie creates them: they carry contacts in clear. -1: no time limit",
    )
    rejected_retention_hours: float = Field(
        336.0,
        description="Time retention (`retention.ms`) of the dead-letter topic when Vigie "
        "creates it: dead letters keep the original bytes. -1: no time limit",
    )

    @field_validator("partner_topic_prefix")
    @classmethod
    def _partner_prefix(cls, value: str) -> str:
        # topic names: [a-zA-Z0-9._-], at most 249 characters with the org and `.v1`
        if value and not re.fullmatch(r"[A-Za-z0-9._-]{1,180}", value):
            raise PydanticCustomError(
                "topic_prefix", "must be a Kafka topic name prefix: letters, digits, `.`, "
                "`_`, `-`, at most 180 characters"
            )
        return value

    @model_validator(mode="after")
    def _partner_topics_apart(self) -> Settings:
        """No topic of Vigie's own may look like a per-partner topic (the ingest would read
        its own dead letters or outputs as reports)."""
        partner = partner_topics(self)
        if partner is not None:
            own = [self.topic_partner, self.topic_citizen, self.topic_rejected,
                   self.topic_enriched, self.topic_incidents, self.topic_alerts,
                   self.topic_alert_actions, self.topic_feedback]
            clash = [t for t in own if partner.org_of(t) is not None]
            if clash:
                raise PydanticCustomError(
                    "topic_prefix", "VIGIE_PARTNER_TOPIC_PREFIX: per-partner topics would "
                    "include Vigie's own topic {clash}; choose another prefix",
                    {"clash": ", ".join(clash)},
                )
        return self

    @field_validator("input_retention_hours", "rejected_retention_hours")
    @classmethod
    def _retention(cls, value: float) -> float:
        if value <= 0 and value != -1:
            raise PydanticCustomError(
                "retention", "must be a positive number of hours, or -1 for no time limit"
            )
        return value

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
    correlation_max_reports: int = Field(
        500,
        ge=2,
        description="An incident holding this many reports takes no more (the next report of "
        "the event founds a new incident): bounds one incident's work and its Kafka records "
        "(keep them under VIGIE_KAFKA_MAX_MESSAGE_BYTES: about 1.2 KB a report at worst)",
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

    # --- Webhooks to partners (agents.deliver, docs/webhooks.md) ---
    webhooks_enabled: bool = Field(
        False,
        description="Deliver incidents and alerts to the partners' webhooks (partner "
        "registry subscriptions): signed POSTs from a ClickHouse outbox, retried, parked",
    )
    webhook_max_attempts: int = Field(
        8, ge=1, description="Failed attempts after which a delivery is parked (dead-letter)"
    )
    webhook_backoff_seconds: float = Field(
        2.0, gt=0, description="Base of the jittered exponential backoff between attempts"
    )
    webhook_backoff_max_seconds: float = Field(
        600.0, gt=0, description="Longest pause between two attempts of a delivery"
    )
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, description="Time limit of one POST (connection, answer)"
    )
    webhook_poll_seconds: float = Field(
        1.0, gt=0, description="How often the sender looks for due deliveries"
    )
    webhook_allow_http_loopback: bool = Field(
        False,
        description="Also deliver over plain http to a loopback host (local development "
        "only; https with a verified certificate otherwise)",
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
        max_reports=settings.correlation_max_reports,
    )


def topic_kinds(settings: Settings) -> dict[str, frozenset[str]]:
    """The source kinds each input topic accepts (contract v1): citizens on the citizen
    topic only, partner kinds on the partner topic only."""
    return {settings.topic_partner: PARTNER_KINDS, settings.topic_citizen: CITIZEN_KINDS}


def partner_topics(settings: Settings) -> PartnerTopics | None:
    """The per-partner topics (`VIGIE_PARTNER_TOPIC_PREFIX`), None when off."""
    prefix = settings.partner_topic_prefix
    return PartnerTopics(prefix) if prefix else None


def input_pattern(settings: Settings) -> str:
    """The regex of the ingest consumer's topics ("" without per-partner topics: it then
    subscribes to the partner and citizen topics by name)."""
    partner = partner_topics(settings)
    if partner is None:
        return ""
    return partner.subscription((settings.topic_partner, settings.topic_citizen))


def time_bounds(settings: Settings) -> TimeBounds:
    """How far a report's times may lie from its message time (worker and backtest)."""
    return TimeBounds(future_s=settings.timestamp_future_tolerance_seconds,
                      max_age_s=settings.timestamp_max_age_days * 86400.0)


def pseudonymiser(settings: Settings) -> Pseudonymiser:
    """The keyed hash of the worker: VIGIE_PSEUDONYM_SECRET, else, in development mode only,
    a random key of this process (with a warning).

    A secret shorter than 32 bytes, or none outside development mode, raises the settings'
    own `ValidationError`, so that `vigie` stops with one line naming VIGIE_PSEUDONYM_SECRET
    and exit code 78 (EX_CONFIG), as for any bad setting. Checked here, when a command is
    about to hash, not when the settings are read: commands that hash nothing (`vigie
    counts`, `vigie simulate`) need no key. There is no default key: a key in the code is
    public, and with it every hashed phone number is found by trying them all."""
    secret = settings.pseudonym_secret.get_secret_value().encode()
    if len(secret) >= MIN_SECRET_BYTES:
        return Pseudonymiser(secret)
    if secret:
        _refuse(settings, "secret_too_short", f"shorter than {MIN_SECRET_BYTES} bytes (use 32+ "
                "random bytes, e.g. `openssl rand -hex 32`)")
    if settings.dev_mode:
        log.warning(
            "development mode (VIGIE_DEV_MODE): VIGIE_PSEUDONYM_SECRET is not set, personal "
            "data is hashed with a random key of this process; hashes will not match those "
            "of another process or a restart. Never use development mode in production"
        )
        return _development_pseudonymiser()
    _refuse(settings, "secret_missing", "not set: the key of the hash applied to personal "
            "data (32+ random bytes, e.g. `openssl rand -hex 32`; VIGIE_DEV_MODE=1 uses a "
            "random key of this process)")


def _refuse(settings: Settings, kind: str, message: str) -> NoReturn:
    """Raise a settings `ValidationError` on VIGIE_PSEUDONYM_SECRET (never showing it)."""
    error = InitErrorDetails(type=PydanticCustomError(kind, message), loc=("pseudonym_secret",),
                             input="")
    raise ValidationError.from_exception_data(type(settings).__name__, [error])


@lru_cache(maxsize=1)
def _development_pseudonymiser() -> Pseudonymiser:
    """One random key per process: every stage of the process hashes alike."""
    return Pseudonymiser.ephemeral()


def topic_retention_ms(hours: float) -> str:
    """`retention.ms` for a retention in hours (-1: no time limit)."""
    return "-1" if hours == -1 else str(round(hours * 3_600_000))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
