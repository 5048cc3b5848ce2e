"""Topic declarations of the Faust app (one place for names, codecs and partition counts).

The topics that hold personal data in clear get a time retention when Vigie creates them
(`topic_configs`): the partner and citizen topics (contacts, free text) keep
`VIGIE_INPUT_RETENTION_HOURS`, the dead-letter topic (original bytes) keeps
`VIGIE_REJECTED_RETENTION_HOURS`. Kafka applies `retention.ms` to record timestamps, which
producers set (CreateTime): a record stamped further back than the retention is deleted
within a retention check (`log.retention.check.interval.ms`), read or not. Replays and
simulations of past data must therefore use -1 (no time limit) or a retention that covers
their oldest timestamp. Topics that already exist keep their configuration.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, fields

import faust

from streams.settings import Settings, topic_retention_ms

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Topics:
    reports: faust.TopicT  # both report topics, consumed by the ingest agent
    rejected: faust.TopicT
    enriched: faust.TopicT
    incidents: faust.TopicT
    alerts: faust.TopicT
    alert_actions: faust.TopicT
    feedback: faust.TopicT

    def all(self) -> list[faust.TopicT]:
        return [getattr(self, field.name) for field in fields(self)]


def topic_configs(settings: Settings) -> dict[str, dict[str, str]]:
    """Topic configs that Vigie sets when it creates a topic, by topic name."""
    inputs = {"retention.ms": topic_retention_ms(settings.input_retention_hours)}
    return {
        settings.topic_partner: inputs,
        settings.topic_citizen: inputs,
        settings.topic_rejected: {
            "retention.ms": topic_retention_ms(settings.rejected_retention_hours)
        },
        # keyed by report: the latest status of each report stays (no personal data)
        settings.topic_feedback: {"cleanup.policy": "compact"},
    }


def declare_topics(app: faust.App, settings: Settings) -> Topics:
    configs = topic_configs(settings)

    def raw(*names: str) -> faust.TopicT:
        return app.topic(
            *names,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.topic_partitions,
            replicas=settings.topic_replicas,
            internal=True,  # lets the worker create them when missing
            config=configs.get(names[0]),  # the same for both report topics
        )

    return Topics(
        reports=raw(settings.topic_partner, settings.topic_citizen),
        rejected=raw(settings.topic_rejected),
        enriched=raw(settings.topic_enriched),
        incidents=raw(settings.topic_incidents),
        alerts=raw(settings.topic_alerts),
        alert_actions=raw(settings.topic_alert_actions),
        feedback=raw(settings.topic_feedback),
    )


def topic_names(topics: Topics) -> list[str]:
    return [name for topic in topics.all() for name in topic.topics]


def create_missing_topics(settings: Settings, topics: Topics, *,
                          wait_s: float = 60.0) -> list[str]:
    """Create the worker's topics that do not exist yet, before its consumers start.

    Faust also declares them, but concurrently with its consumer group's first assignment:
    a topic created a moment too late is left out ("Ignoring missing topic") until the
    consumer's next metadata refresh, up to 5 minutes later, and the correlate agent sat
    idle that long on a fresh cluster. Waits `wait_s` for a starting broker; on failure
    (no broker, no right to create) it logs and leaves the topics to Faust. Returns the
    names it created."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    deadline = time.monotonic() + wait_s
    while True:
        try:
            admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","),
                                     client_id=f"{settings.app_id}-admin")
            break
        except KafkaError as exc:
            if time.monotonic() >= deadline:
                log.warning("topics not checked: no broker", extra={"error": repr(exc)})
                return []
            time.sleep(1.0)
    created = []
    configs = topic_configs(settings)
    try:
        existing = set(admin.list_topics())
        for name in topic_names(topics):
            if name in existing:
                continue
            spec = {"num_partitions": settings.topic_partitions,
                    "replication_factor": settings.topic_replicas,
                    "configs": configs.get(name, {})}
            try:
                admin.create_topics({name: spec}, wait_for_metadata=True)
                created.append(name)
            except TopicAlreadyExistsError:
                pass  # another worker was first
    except KafkaError as exc:
        log.warning("topics not created, left to Faust", extra={"error": repr(exc)})
    finally:
        admin.close()
    if created:
        log.info("topics created", extra={"topics": created})
    return created
