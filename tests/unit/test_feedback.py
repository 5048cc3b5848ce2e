"""Feedback to reporters, the pure part (`agents.core.feedback`): one French message per
rejection reason, deterministic messages, the contract's fields only, and which transitions
each input makes."""

from __future__ import annotations

import orjson
import pytest

from agents.core import feedback
from agents.core.feedback import FeedbackEvent
from agents.core.record import ReportKey
from agents.core.validation import Rejection
from schemas.export import OUT, render
from schemas.feedback import FEEDBACK_FIELDS, Feedback, FeedbackStatus, Outcome
from schemas.rejection import RejectReason

KEY = ReportKey("citizen", "citoyen", "app-000017")
# fields a feedback message must never carry (personal data, free text, precise places)
PERSONAL = {"contact", "reporter", "description", "comment", "lat", "lon", "h3", "location"}


def test_every_reason_status_and_outcome_has_its_french_text() -> None:
    assert set(feedback.REJECT_MESSAGES) == set(RejectReason)
    assert set(feedback.STATUS_LABELS) == set(FeedbackStatus)
    assert set(feedback.OUTCOME_LABELS) == set(Outcome)
    assert all(text.endswith(".") for text in feedback.REJECT_MESSAGES.values())


def _every_kind_of_event() -> list[FeedbackEvent]:
    v = {
        "incident_id": "inc-1",
        "updated_at": 1_780_000_600.0,
        "last_occurred_at": 1.0,
        "report_ids": ["a", "app-000017"],
        "report_source_kinds": ["transport", "citizen"],
        "report_source_orgs": ["sncf", "citoyen"],
    }
    rejection = Rejection(RejectReason.OUT_OF_AREA, "x", "app-000017", "citizen", "citoyen")
    rejected = feedback.rejected(rejection, 1_780_000_000.5, "t/0/7")
    assert rejected is not None
    return [
        FeedbackEvent(KEY, feedback.RECU, 1_780_000_000),
        rejected,
        *feedback.attached(v, KEY),
        *feedback.handled([KEY], "inc-1", FeedbackStatus.PRIS_EN_COMPTE, "act-1", 1_780_001_000),
        *feedback.handled(
            [KEY], "inc-1", FeedbackStatus.CLOS, "act-2", 1_780_002_000, Outcome.INTERPELLATION
        ),
    ]


def test_messages_follow_the_contract_and_carry_no_personal_data() -> None:
    events = _every_kind_of_event()
    assert {e.status for e in events} == set(FeedbackStatus)
    for event in events:
        message = orjson.loads(event.encode())
        assert set(message) == FEEDBACK_FIELDS
        assert not set(message) & PERSONAL
        parsed = Feedback.model_validate(message)
        assert parsed.feedback_id == event.feedback_id
        identity = [message["source_kind"], message["source_org"], message["report_id"]]
        assert orjson.loads(event.kafka_key()) == identity == list(event.key)


def test_the_same_transition_gives_the_same_bytes_others_another_id() -> None:
    first, again = _every_kind_of_event(), _every_kind_of_event()
    assert [e.encode() for e in first] == [e.encode() for e in again]
    ids = [e.feedback_id for e in first]
    assert len(set(ids)) == len(ids)
    # another rejected message of the same report is another transition
    rejection = Rejection(RejectReason.OUT_OF_AREA, "x", "app-000017", "citizen", "citoyen")
    one = feedback.rejected(rejection, 1.0, "t/0/7")
    other = feedback.rejected(rejection, 1.0, "t/0/8")
    assert one is not None and other is not None and one.feedback_id != other.feedback_id


def test_the_texts_a_citizen_app_shows() -> None:
    rejection = Rejection(RejectReason.TIMESTAMP_IN_FUTURE, "detail", "r1", "citizen", "citoyen")
    event = feedback.rejected(rejection, 10.0, "t/1/2")
    assert event is not None
    message = event.message()
    assert message["reason"] == "timestamp_in_future"
    assert message["message"] == "La date indiquée est dans le futur."
    assert message["label"] == "Signalement refusé"
    assert message["at"] == "1970-01-01T00:00:10Z"
    version = {
        "incident_id": "inc-9",
        "updated_at": 100.0,
        "last_occurred_at": 90.0,
        "report_ids": ["1", "2", "3", "4", "r5"],
        "report_source_kinds": ["citizen"] * 5,
        "report_source_orgs": ["citoyen"] * 5,
    }
    [joined] = feedback.attached(version, ReportKey("citizen", "citoyen", "r5"))
    assert joined.message()["other_reports"] == 4
    assert "4 autres signalements" in joined.message()["message"]
    [closed] = feedback.handled([KEY], "inc-9", FeedbackStatus.CLOS, "a", 5, Outcome.SANS_SUITE)
    assert closed.message()["outcome_label"] == "Classé sans suite"
    assert closed.message()["message"].endswith("est clos : classé sans suite.")


@pytest.mark.parametrize(
    "rejection",
    [
        Rejection(RejectReason.NOT_JSON, "x"),  # no identity at all
        Rejection(RejectReason.MISSING_FIELD, "x", "r1"),  # no source
        Rejection(RejectReason.UNKNOWN_SOURCE_KIND, "x", "r1", None, "org"),
        Rejection(RejectReason.INVALID_FIELD, "x", "r" * 129, "citizen", "citoyen"),
        Rejection(RejectReason.INVALID_FIELD, "x", "r1", "citizen", ""),
        # the identity is a report already taken in: its status stands
        Rejection(RejectReason.ID_REUSED_WITH_DIFFERENT_CONTENT, "x", "r1", "citizen", "c"),
    ],
)
def test_rejections_without_someone_to_tell_send_nothing(rejection: Rejection) -> None:
    assert feedback.rejected(rejection, 0.0, "t/0/0") is None


def _version(keys: list[ReportKey], status: str = "open") -> dict[str, object]:
    return {
        "incident_id": "inc-7",
        "status": status,
        "updated_at": 500.0,
        "last_occurred_at": 400.0,
        "report_ids": [k.report_id for k in keys],
        "report_source_kinds": [k.source_kind for k in keys],
        "report_source_orgs": [k.source_org for k in keys],
    }


def test_attached_once_the_founder_with_the_second_report() -> None:
    a, b, c = (ReportKey("citizen", "citoyen", x) for x in "abc")
    assert feedback.attached(_version([a]), a) == []  # alone: nothing to attach to
    second = feedback.attached(_version([a, b]), b)
    assert [(e.key, e.other_reports) for e in second] == [(a, 1), (b, 1)]
    third = feedback.attached(_version([a, b, c]), c)
    assert [(e.key, e.other_reports) for e in third] == [(c, 2)]  # a and b were told already
    assert all(e.at == 500 and e.incident_id == "inc-7" for e in second + third)
    # a version that is not the record's join (another incident closing) attaches nobody
    assert feedback.attached(_version([a, b], "closed"), c) == []
    assert feedback.attached(_version([a, b]), a) == []


def test_a_closure_needs_an_outcome_and_only_console_statuses_are_handled() -> None:
    with pytest.raises(ValueError):
        feedback.handled([KEY], "i", FeedbackStatus.CLOS, "a", 1)
    with pytest.raises(ValueError):
        feedback.handled([KEY], "i", FeedbackStatus.RECU, "a", 1)
    [ack] = feedback.handled(
        [KEY], "i", FeedbackStatus.PRIS_EN_COMPTE, "a", 1, Outcome.INTERVENTION
    )
    assert ack.outcome is None


def test_the_published_json_schema_is_current() -> None:
    assert (OUT / "feedback.v1.schema.json").read_text() == render(Feedback)


def test_the_console_offers_the_outcomes_under_the_same_labels() -> None:
    """The console's closing form (console/static/app.js) lists every outcome with the label
    reporters are told."""
    from pathlib import Path

    script = (Path(__file__).parents[2] / "console" / "static" / "app.js").read_text()
    for outcome, label in feedback.OUTCOME_LABELS.items():
        assert f'["{outcome.value}", "{label}"]' in script


def test_a_report_is_told_attached_once_whatever_incident_a_replay_puts_it_in() -> None:
    """A correlator restored after a crash may attach a report to another incident than
    the first time: the transition keeps its `feedback_id` (the recorded bytes are then
    re-sent), so the report is not told `rattache` twice."""
    a, b = (ReportKey("citizen", "citoyen", x) for x in "ab")
    first = feedback.attached(_version([a, b]), b)
    elsewhere = {**_version([a, b]), "incident_id": "inc-8", "updated_at": 900.0}
    replayed = feedback.attached(elsewhere, b)
    assert [e.feedback_id for e in first] == [e.feedback_id for e in replayed]
    assert [e.incident_id for e in replayed] == ["inc-8", "inc-8"]
