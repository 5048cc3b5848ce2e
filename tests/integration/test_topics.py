"""The worker creates its missing topics before its consumers start (real broker)."""

from __future__ import annotations

import os

import pytest
from kafka.admin import KafkaAdminClient

from streams.app import create_app
from streams.settings import Settings
from streams.topics import create_missing_topics, topic_names
from tests.infra.kafka import KafkaBroker

pytestmark = pytest.mark.kafka


def partitions_of(bootstrap: str, names: list[str]) -> dict[str, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="vigie-tests")
    try:
        return {t["name"]: len(t["partitions"]) for t in admin.describe_topics(names)}
    finally:
        admin.close()


def test_missing_topics_are_created_once_with_the_configured_partitions(
    kafka_broker: KafkaBroker,
) -> None:
    tag = f"t{os.getpid()}"
    settings = Settings(
        kafka_bootstrap=kafka_broker.bootstrap, app_id=f"topics-{tag}", topic_partitions=3,
        topic_partner=f"{tag}.partner", topic_citizen=f"{tag}.citizen",
        topic_rejected=f"{tag}.rejected", topic_enriched=f"{tag}.enriched",
        topic_incidents=f"{tag}.incidents", topic_alerts=f"{tag}.alerts",
        topic_alert_actions=f"{tag}.actions", topic_feedback=f"{tag}.feedback",
    )
    _, topics = create_app(settings)
    kafka_broker.create_topics([settings.topic_partner], partitions=1)  # provisioned by ops

    created = create_missing_topics(settings, topics)

    names = topic_names(topics)
    assert len(names) == 8
    assert sorted(created) == sorted(n for n in names if n != settings.topic_partner)
    assert partitions_of(kafka_broker.bootstrap, names) == {
        n: 1 if n == settings.topic_partner else 3 for n in names}
    assert create_missing_topics(settings, topics) == []  # a second worker finds them all


def test_no_broker_leaves_the_topics_to_faust(monkeypatch: pytest.MonkeyPatch) -> None:
    # The admin client gives up on an unreachable bootstrap after its `bootstrap_timeout_ms`
    # (30 s by default): a short one takes the same path (KafkaTimeoutError, no topic
    # created, the topics left to Faust) without waiting it out.
    monkeypatch.setitem(KafkaAdminClient.DEFAULT_CONFIG, "bootstrap_timeout_ms", 1000)
    settings = Settings(kafka_bootstrap="127.0.0.1:1")
    _, topics = create_app(settings)
    assert create_missing_topics(settings, topics, wait_s=0.0) == []


def topic_configs_of(bootstrap: str, names: list[str]) -> dict[str, dict[str, str]]:
    """The configs set on each topic (not the broker's defaults)."""
    from kafka.admin import ConfigResource, ConfigResourceType

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="vigie-tests")
    try:
        found = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
    finally:
        admin.close()
    return {name: {key: entry["value"] for key, entry in found["topic"][name].items()}
            for name in names}


def test_created_topics_with_personal_data_carry_a_retention(kafka_broker: KafkaBroker) -> None:
    tag = f"r{os.getpid()}"
    settings = Settings(
        kafka_bootstrap=kafka_broker.bootstrap, app_id=f"retention-{tag}", topic_partitions=1,
        topic_partner=f"{tag}.partner", topic_citizen=f"{tag}.citizen",
        topic_rejected=f"{tag}.rejected", topic_enriched=f"{tag}.enriched",
        topic_incidents=f"{tag}.incidents", topic_alerts=f"{tag}.alerts",
        topic_alert_actions=f"{tag}.actions", topic_feedback=f"{tag}.feedback",
        input_retention_hours=36, rejected_retention_hours=240,
    )
    _, topics = create_app(settings)
    # provisioned by ops with their own retention: left as it is
    kafka_broker.create_topics([settings.topic_citizen], config={"retention.ms": "3600000"})

    create_missing_topics(settings, topics)

    names = topic_names(topics)
    assert topic_configs_of(kafka_broker.bootstrap, names) == {
        settings.topic_partner: {"retention.ms": str(36 * 3_600_000)},
        settings.topic_citizen: {"retention.ms": "3600000"},
        settings.topic_rejected: {"retention.ms": str(240 * 3_600_000)},
        # pseudonymised or derived data: the broker's retention
        settings.topic_enriched: {}, settings.topic_incidents: {},
        settings.topic_alerts: {}, settings.topic_alert_actions: {},
        # keyed by report, no personal data: the latest status of each report stays
        settings.topic_feedback: {"cleanup.policy": "compact"},
    }


def test_no_time_limit_is_kafkas_minus_one(kafka_broker: KafkaBroker) -> None:
    tag = f"u{os.getpid()}"
    settings = Settings(
        kafka_bootstrap=kafka_broker.bootstrap, app_id=f"unlimited-{tag}", topic_partitions=1,
        topic_partner=f"{tag}.partner", topic_citizen=f"{tag}.citizen",
        topic_rejected=f"{tag}.rejected", topic_enriched=f"{tag}.enriched",
        topic_incidents=f"{tag}.incidents", topic_alerts=f"{tag}.alerts",
        topic_alert_actions=f"{tag}.actions", input_retention_hours=-1,
    )
    _, topics = create_app(settings)
    create_missing_topics(settings, topics)
    found = topic_configs_of(kafka_broker.bootstrap, [settings.topic_partner,
                                                      settings.topic_rejected])
    assert found == {settings.topic_partner: {"retention.ms": "-1"},
                     settings.topic_rejected: {"retention.ms": str(336 * 3_600_000)}}
