"""Topic declarations of the Faust app (one place for names, codecs and partition counts)."""

from __future__ import annotations

from dataclasses import dataclass

import faust

from streams.settings import Settings


@dataclass(frozen=True)
class Topics:
    reports: faust.TopicT  # both report topics, consumed by the ingest agent
    rejected: faust.TopicT
    enriched: faust.TopicT
    incidents: faust.TopicT
    alerts: faust.TopicT
    alert_actions: faust.TopicT


def declare_topics(app: faust.App, settings: Settings) -> Topics:
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
        )

    return Topics(
        reports=raw(settings.topic_partner, settings.topic_citizen),
        rejected=raw(settings.topic_rejected),
        enriched=raw(settings.topic_enriched),
        incidents=raw(settings.topic_incidents),
        alerts=raw(settings.topic_alerts),
        alert_actions=raw(settings.topic_alert_actions),
    )
