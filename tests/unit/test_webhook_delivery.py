"""The pure side of webhook delivery (`agents.core.delivery`): signature checked by an
independent implementation (openssl), idempotency key, backoff, data minimisation, matching
and the state folded from the logged events."""

from __future__ import annotations

import random
import shutil
import subprocess
from datetime import UTC, datetime

import orjson
import pytest

from agents.core import delivery as d
from agents.core.partners import (
    Contact,
    Credentials,
    DeliveryKind,
    Partner,
    PartnerKind,
    Perimeter,
    Subscription,
)
from agents.deliver import PostResult, attempt_outcome, counts_by_state, deliveries_of, queued_rows
from schemas.alert import Alert, AlertCenter, AlertStatus
from schemas.enums import Category, IncidentStatus, SourceKind
from schemas.incident import Incident
from schemas.report import Report, Reporter

SECRET = b"whsec-test-0123456789abcdef0123456789"
T0 = datetime(2026, 12, 3, 14, 0, tzinfo=UTC)


def incident(**changes: object) -> Incident:
    values: dict[str, object] = dict(
        incident_id="inc-1",
        version=3,
        status=IncidentStatus.OPEN,
        category=Category.VOL,
        report_ids=["r-secret-1", "r-secret-2"],
        report_count=2,
        source_kinds=[SourceKind.CITIZEN],
        first_occurred_at=T0,
        last_occurred_at=T0,
        lat=48.63,
        lon=2.44,
        insee="91228",
        commune="Évry-Courcouronnes",
        h3="881fb46701fffff",
        confidence=0.8,
        categories=[Category.VOL],
        report_source_kinds=[SourceKind.CITIZEN, SourceKind.POLICE_MUNICIPALE],
        report_source_orgs=["citizen-app", "pm-evry"],
    )
    values.update(changes)
    return Incident.model_validate(values)


def alert(**changes: object) -> Alert:
    values: dict[str, object] = dict(
        alert_id="al-1",
        status=AlertStatus.OPEN,
        category=Category.CAMBRIOLAGE,
        center=AlertCenter(lat=48.6, lon=2.4),
        radius_m=800.0,
        cells=["881fb46701fffff"],
        insee=["91228", "91174"],
        window_start=T0,
        window_end=T0,
        observed=9,
        expected=2.1,
        score=12.5,
        severity=3,
        emitted_at=T0,
        version=2,
    )
    values.update(changes)
    return Alert.model_validate(values)


# --- signature ----------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")
def test_signature_matches_openssl_hmac() -> None:
    body = orjson.dumps({"kind": "incident", "data": {"commune": "Évry"}})
    header = d.signature_header(SECRET, 1_780_000_000, body)
    out = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", SECRET.decode()],
        input=b"1780000000." + body,
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert header == f"t=1780000000,v1={out.split()[-1]}"


def test_verify_accepts_the_signed_body_only_when_fresh_and_untouched() -> None:
    body = b'{"kind":"alert"}'
    header = d.signature_header(SECRET, 1000, body)
    assert d.verify(SECRET, header, body, now=1000 + 299)
    assert not d.verify(SECRET, header, body, now=1000 + 301)  # stale: a replayed request
    assert not d.verify(SECRET, header, body + b" ", now=1000)
    assert not d.verify(b"another-secret-0123456789abcdef0123", header, body, now=1000)
    assert not d.verify(SECRET, "v1=" + header.split("v1=")[1], body, now=1000)  # no t
    assert not d.verify(SECRET, "t=abc,v1=00", body, now=1000)
    assert not d.verify(SECRET, header.replace("t=1000", "t=1001"), body, now=1000)


def test_delivery_id_is_stable_and_names_partner_kind_object_and_version() -> None:
    base = d.delivery_id("csp-evry", d.ObjectKind.INCIDENT, "inc-1", 3)
    assert base == d.delivery_id("csp-evry", d.ObjectKind.INCIDENT, "inc-1", 3)
    others = {
        d.delivery_id("pm-evry", d.ObjectKind.INCIDENT, "inc-1", 3),
        d.delivery_id("csp-evry", d.ObjectKind.ALERT, "inc-1", 3),
        d.delivery_id("csp-evry", d.ObjectKind.INCIDENT, "inc-2", 3),
        d.delivery_id("csp-evry", d.ObjectKind.INCIDENT, "inc-1", 4),
        # no ambiguity from the separator
        d.delivery_id("csp-evry", d.ObjectKind.INCIDENT, "inc-1\x1f3", 3),
    }
    assert base not in others and len(others) == 5
    assert base.startswith("whd_") and len(base) == 36


# --- backoff ------------------------------------------------------------------------------
def test_backoff_is_full_jitter_exponential_capped_then_parks() -> None:
    b = d.Backoff(max_attempts=4, base_seconds=2.0, max_seconds=10.0)
    rng = random.Random(7)
    for failures, cap in ((1, 2.0), (2, 4.0), (3, 8.0), (4, 10.0), (40, 10.0)):
        delays = [b.delay(failures, rng) for _ in range(400)]
        assert all(0.0 <= x <= cap for x in delays)
        assert max(delays) > 0.8 * cap  # the whole range is used (full jitter)
    assert [b.parks(n) for n in (1, 3, 4, 5)] == [False, False, True, True]


# --- data minimisation --------------------------------------------------------------------
def test_every_field_of_the_published_schemas_is_classified() -> None:
    """A field added to Incident or Alert must be allowed or excluded explicitly."""
    for fields, excluded, model in (
        (d.INCIDENT_FIELDS, d.INCIDENT_EXCLUDED, Incident),
        (d.ALERT_FIELDS, d.ALERT_EXCLUDED, Alert),
    ):
        assert set(fields) | excluded == set(model.model_fields)
        assert not set(fields) & excluded
        assert len(set(fields)) == len(fields)


def test_no_report_contact_free_text_or_report_identity_can_leave() -> None:
    personal = {
        "contact",
        "description",
        "reporter",
        "report_ids",
        "report_source_orgs",
        "report_source_kinds",
    }
    assert "contact" in Reporter.model_fields and "description" in Report.model_fields
    for fields in (d.INCIDENT_FIELDS, d.ALERT_FIELDS):
        assert not personal & set(fields)
    obj = d.incident_object(incident().model_dump(mode="json"))
    text = orjson.dumps(obj.data).decode()
    for value in ("r-secret-1", "r-secret-2", "pm-evry", "citizen-app"):
        assert value not in text
    assert list(obj.data) == [f for f in d.INCIDENT_FIELDS if f in obj.data]
    assert set(obj.data) == set(d.INCIDENT_FIELDS)
    a = d.alert_object(alert().model_dump(mode="json"))
    assert set(a.data) == set(d.ALERT_FIELDS) and "detector" not in a.data


# --- matching -----------------------------------------------------------------------------
def sub(org: str = "csp-evry", **changes: object) -> d.WebhookSubscription:
    values: dict[str, object] = dict(
        org=org, url="https://hooks.example/v", secret=SECRET, insee=frozenset({"91228"})
    )
    values.update(changes)
    return d.WebhookSubscription(**values)  # type: ignore[arg-type]


def test_matching_by_kind_category_and_perimeter_one_per_partner() -> None:
    inc = d.incident_object(incident().model_dump(mode="json"))
    al = d.alert_object(alert().model_dump(mode="json"))
    assert d.matching([sub()], inc) == [sub()]
    assert d.matching([sub(insee=frozenset({"91001"}))], inc) == []
    assert d.matching([sub(categories=frozenset({"rodeo"}))], inc) == []
    assert d.matching([sub(kinds=frozenset({d.ObjectKind.ALERT}))], inc) == []
    assert d.matching([sub(insee=frozenset({"91174"}))], al)  # one commune of the alert
    two = [sub(), sub(url="https://other.example/v"), sub("pm-evry")]
    assert [s.org for s in d.matching(two, inc)] == ["csp-evry", "pm-evry"]
    assert "secret" not in repr(sub()) and SECRET.decode() not in repr(sub())


def partner(**changes: object) -> Partner:
    values: dict[str, object] = dict(
        org="csp-evry",
        name="CSP Évry",
        kind=PartnerKind.POLICE_NATIONALE,
        perimeter=Perimeter(communes=frozenset({"91228"}), categories=frozenset({"vol", "rodeo"})),
        contact=Contact(webhook_url="https://hooks.example/v"),
        subscriptions=(Subscription(frozenset({DeliveryKind.INCIDENT}), frozenset({"vol"})),),
        credentials=Credentials(webhook_secret="s" * 43),
    )
    values.update(changes)
    return Partner(**values)  # type: ignore[arg-type]


def test_subscriptions_of_the_registry() -> None:
    [got] = d.subscriptions_of([partner()], None)
    assert (got.org, got.url, got.secret) == ("csp-evry", "https://hooks.example/v", b"s" * 43)
    assert got.kinds == {d.ObjectKind.INCIDENT} and got.categories == {"vol"}
    assert got.insee == {"91228"}
    assert d.subscriptions_of([partner(active=False)], None) == []
    assert d.subscriptions_of([partner(credentials=Credentials())], None) == []
    assert d.subscriptions_of([partner(contact=Contact())], None) == []
    # a subscription's categories outside the perimeter's: nothing (not "every category")
    outside = (Subscription(frozenset({DeliveryKind.ALERT}), frozenset({"incendie"})),)
    assert d.subscriptions_of([partner(subscriptions=outside)], None) == []
    # no category on the subscription: the perimeter's
    every = (Subscription(frozenset({DeliveryKind.ALERT})),)
    [got] = d.subscriptions_of([partner(subscriptions=every)], None)
    assert got.categories == {"vol", "rodeo"}


@pytest.mark.parametrize(
    ("url", "allow", "problem"),
    [
        ("https://hooks.example/v", False, None),
        ("http://hooks.example/v", False, "plain http refused (https only)"),
        ("http://hooks.example/v", True, "plain http is allowed to a loopback host only"),
        ("http://127.0.0.1:8099/h", True, None),
        ("http://127.0.0.1:8099/h", False, "plain http refused (https only)"),
        ("http://[::1]:8099/h", True, None),
        ("ftp://hooks.example/v", True, "scheme must be https"),
        ("https://u:p@hooks.example/v", False, "credentials in the URL"),
        ("https://hooks.example:99999/v", False, "not a valid URL"),
    ],
)
def test_url_policy(url: str, allow: bool, problem: str | None) -> None:
    assert d.url_problem(url, allow_loopback_http=allow) == problem


# --- outbox rows and the folded state ----------------------------------------------------
def ev(
    seq: int, event: d.DeliveryEvent, at: float, next_at: float = 0.0, payload: str = ""
) -> d.EventRow:
    return d.EventRow("whd_x", seq, event, at, next_at, payload)


def test_fold_follows_the_events() -> None:
    q = ev(0, d.DeliveryEvent.QUEUED, 10, 10, "{}")
    assert d.fold([q]) == d.Fold("whd_x", d.DeliveryState.PENDING, 0, 1, 10, "{}")
    f1 = ev(1, d.DeliveryEvent.FAILED, 11, 15)
    f2 = ev(2, d.DeliveryEvent.FAILED, 16, 30)
    assert d.fold([f2, q, f1]) == d.Fold("whd_x", d.DeliveryState.PENDING, 2, 3, 30, "{}")
    parked = ev(3, d.DeliveryEvent.PARKED, 16)
    assert d.fold([q, f1, f2, parked]).state is d.DeliveryState.PARKED
    replayed = d.fold([q, f1, f2, parked, ev(4, d.DeliveryEvent.REPLAYED, 99, 99)])
    assert (replayed.state, replayed.failures, replayed.due_at, replayed.next_seq) == (
        d.DeliveryState.PENDING,
        0,
        99,
        5,
    )
    done = d.fold([q, f1, ev(2, d.DeliveryEvent.DELIVERED, 20), q])  # a re-queued copy
    assert done.state is d.DeliveryState.DELIVERED and done.payload == "{}"
    with pytest.raises(ValueError):
        d.fold([])


def test_queued_rows_carry_the_signed_body_and_the_idempotency_key() -> None:
    obj = d.incident_object(incident().model_dump(mode="json"))
    [row] = queued_rows(
        obj,
        [sub(), sub("pm-evry", insee=frozenset({"91001"}))],
        "vigie.incidents.v1",
        2,
        now=1000.0,
    )
    did = d.delivery_id("csp-evry", d.ObjectKind.INCIDENT, "inc-1", 3)
    assert (row["delivery_id"], row["seq"], row["event"]) == (did, 0, "queued")
    assert (row["source_topic"], row["source_partition"], row["next_at"]) == (
        "vigie.incidents.v1",
        2,
        1000,
    )
    body = orjson.loads(row["payload"])
    assert body == {"kind": "incident", "delivery_id": did, "data": dict(obj.data)}
    assert SECRET.decode() not in str(row)
    rows = [
        {
            "delivery_id": did,
            "seq": 0,
            "event": "queued",
            "at_s": 1000,
            "next_s": 1000,
            "payload": row["payload"],
            "org": "csp-evry",
            "kind": "incident",
            "object_id": "inc-1",
            "object_version": 3,
            "source_topic": "t",
            "source_partition": 2,
        }
    ]
    [back] = deliveries_of(rows)
    assert back.state.payload == row["payload"] and back.source_partition == 2


def test_attempt_outcomes_and_backlog_counts_are_bounded() -> None:
    assert attempt_outcome(PostResult(204, "", 0.1)) == "delivered"
    assert attempt_outcome(PostResult(500, "http 500", 0.1)) == "http_error"
    assert attempt_outcome(PostResult(0, "timeout", 5)) == "timeout"
    assert attempt_outcome(PostResult(0, "connection_error: ClientOSError", 0)) == (
        "connection_error"
    )
    rows = [
        {"last_event": "queued", "n": 2},
        {"last_event": "failed", "n": 1},
        {"last_event": "replayed", "n": 1},
        {"last_event": "parked", "n": 4},
        {"last_event": "delivered", "n": 9},
    ]
    assert counts_by_state(rows) == {
        d.DeliveryState.PENDING: 4,
        d.DeliveryState.PARKED: 4,
        d.DeliveryState.DELIVERED: 9,
    }


def test_the_demo_receiver_verifies_like_the_documented_scheme() -> None:
    """`scripts/webhook_receiver.py` (its own code, as a partner's) accepts what Vigie signs
    and refuses a changed body, another secret or a stale timestamp."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "webhook_receiver.py"
    spec = importlib.util.spec_from_file_location("webhook_receiver", path)
    assert spec is not None and spec.loader is not None
    receiver = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(receiver)
    body = b'{"kind":"incident","data":{}}'
    header = d.signature_header(SECRET, 5000, body)
    assert receiver.verified(SECRET, header, body, 5000)
    assert not receiver.verified(SECRET, header, body + b"x", 5000)
    assert not receiver.verified(b"x" * 40, header, body, 5000)
    assert not receiver.verified(SECRET, header, body, 5000 + 301)
    assert not receiver.verified(SECRET, "garbage", body, 5000)
