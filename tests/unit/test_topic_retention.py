"""The topics that hold personal data in clear get a time retention (settings, `retention.ms`)
wherever Vigie creates them: `create_missing_topics` (checked on a real broker in
`tests/integration/test_topics.py`) and Faust's own declaration."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from streams.app import create_app
from streams.settings import Settings, topic_retention_ms
from streams.topics import topic_configs

HOUR_MS = 3_600_000


def test_default_retentions(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("INPUT_RETENTION_HOURS", "REJECTED_RETENTION_HOURS", "TOPIC_PARTNER",
                 "TOPIC_CITIZEN", "TOPIC_REJECTED", "TOPIC_FEEDBACK"):
        monkeypatch.delenv(f"VIGIE_{name}", raising=False)
    assert topic_configs(Settings()) == {
        "vigie.reports.partner.v1": {"retention.ms": str(168 * HOUR_MS)},
        "vigie.reports.citizen.v1": {"retention.ms": str(168 * HOUR_MS)},
        "vigie.reports.rejected.v1": {"retention.ms": str(336 * HOUR_MS)},
        # the latest status of each report, kept by key (no personal data)
        "vigie.reports.feedback.v1": {"cleanup.policy": "compact"},
    }


def test_faust_declares_the_same_configs() -> None:
    settings = Settings(input_retention_hours=12, rejected_retention_hours=-1)
    _, topics = create_app(settings)
    assert topics.reports.topics == (settings.topic_partner, settings.topic_citizen)
    assert topics.reports.config == {"retention.ms": str(12 * HOUR_MS)}
    assert topics.rejected.config == {"retention.ms": "-1"}
    for other in (topics.enriched, topics.incidents, topics.alerts, topics.alert_actions):
        assert other.config == {}


def test_hours_to_retention_ms() -> None:
    assert topic_retention_ms(1.5) == "5400000"
    assert topic_retention_ms(-1) == "-1"


@pytest.mark.parametrize("hours", [0, -2, -0.5])
def test_a_retention_that_would_delete_everything_is_refused(hours: float) -> None:
    with pytest.raises(ValidationError, match="positive number of hours, or -1"):
        Settings(input_retention_hours=hours)
    with pytest.raises(ValidationError, match="positive number of hours, or -1"):
        Settings(rejected_retention_hours=hours)
