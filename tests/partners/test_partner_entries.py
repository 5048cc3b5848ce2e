"""Partner entries: parsing, validation against the served area, access scopes (pure)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from agents.core.jurisdictions import Jurisdictions, load_jurisdictions
from agents.core.partners import (
    AccessScope,
    Credentials,
    DeliveryKind,
    PartnerError,
    PartnerKind,
    Perimeter,
    partner_from_dict,
    partner_to_dict,
    stored_partner,
    validate_partner,
)
from agents.core.refdata import RefData, load_refdata

ENTRY = {
    "org": "pm-91228",
    "name": "Police municipale d'Évry-Courcouronnes",
    "kind": "police_municipale",
    "perimeter": {"communes": ["91228"], "categories": ["vol", "rodeo"]},
    "contact": {"webhook_url": "https://pm.example.org/hook", "email": "pm@example.org"},
    "subscriptions": [{"kinds": ["alert"], "categories": ["rodeo"]}],
}


@pytest.fixture(scope="module")
def refdata() -> RefData:
    return load_refdata()


@pytest.fixture(scope="module")
def juris(refdata: RefData) -> Jurisdictions:
    return load_jurisdictions(None, refdata)


def test_a_valid_entry_round_trips(refdata: RefData, juris: Jurisdictions) -> None:
    partner = partner_from_dict(ENTRY)
    assert partner.kind is PartnerKind.POLICE_MUNICIPALE
    assert partner.subscriptions[0].kinds == frozenset({DeliveryKind.ALERT})
    assert validate_partner(partner, refdata, juris) == []
    assert partner.version == 0 and partner.credentials == Credentials()


def test_credentials_never_in_the_public_form() -> None:
    partner = partner_from_dict(ENTRY)
    with_secret = replace(partner, credentials=Credentials("webhook-secret-x", "digest-y"))
    public = with_secret.public()
    assert "credentials" not in public
    assert "webhook-secret-x" not in str(public) and "digest-y" not in str(public)
    assert "webhook-secret-x" not in repr(with_secret)
    stored = partner_to_dict(with_secret, with_credentials=True)
    assert stored_partner(stored).credentials == with_secret.credentials


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"perimeter": {"communes": ["99999"]}}, "unknown communes"),
        ({"perimeter": {"communes": []}}, "empty perimeter"),
        ({"perimeter": {"jurisdictions": ["csp-nowhere"]}}, "unknown jurisdictions: csp-nowhere"),
        ({"perimeter": {"communes": ["91228"], "categories": ["cambriolages"]}}, "unknown categ"),
        ({"org": "PM Évry"}, "slug"),
        ({"name": " "}, "name must be"),
        ({"contact": {"webhook_url": "http://pm.example.org/hook"}}, "must use https"),
        ({"contact": {"webhook_url": "ftp://pm.example.org/"}}, "https:// URL"),
        ({"contact": {"webhook_url": "https://u:p@pm.example.org/"}}, "credentials"),
        ({"contact": {"email": "not-an-address"}}, "e-mail"),
        ({"contact": {}}, "subscriptions need a webhook URL"),
        ({"subscriptions": [{"kinds": []}]}, "no kind"),
        ({"subscriptions": [{"kinds": ["alert"], "categories": ["violence"]}]}, "outside the per"),
    ],
)
def test_invalid_entries_are_explained(
    refdata: RefData, juris: Jurisdictions, change: dict[str, object], problem: str
) -> None:
    entry = {**ENTRY, **change}
    if change.get("contact") == {}:
        entry["contact"] = {"email": "pm@example.org"}
    partner = partner_from_dict(entry)
    problems = validate_partner(partner, refdata, juris)
    assert any(problem in p for p in problems), problems


def test_a_former_commune_code_is_pointed_to_its_current_code(refdata: RefData) -> None:
    former = next(iter(refdata.aliases), None)
    if former is None:
        pytest.skip("no former commune code in the reference data")
    partner = partner_from_dict({**ENTRY, "perimeter": {"communes": [former]}})
    [problem] = validate_partner(partner, refdata, None)
    assert f"{former} (now {refdata.aliases[former]})" in problem


def test_loopback_http_is_allowed_for_development(refdata: RefData) -> None:
    for url in ("http://127.0.0.1:9000/hook", "http://localhost/hook", "http://[::1]:81/"):
        partner = partner_from_dict({**ENTRY, "contact": {"webhook_url": url}})
        assert validate_partner(partner, refdata, None) == [], url


def test_structural_errors_are_all_listed() -> None:
    with pytest.raises(PartnerError) as caught:
        partner_from_dict(
            {
                "org": "x",
                "kind": "citizen",
                "perimeter": "91228",
                "subscriptions": [{"kinds": ["sms"]}],
                "colour": "red",
            }
        )
    text = str(caught.value)
    for expected in (
        "unknown fields: colour",
        "kind must be one of",
        "perimeter must be",
        "kinds must be among",
    ):
        assert expected in text


def test_an_update_keeps_what_it_does_not_change() -> None:
    base = partner_from_dict(ENTRY)
    changed = partner_from_dict({"perimeter": {"communes": ["91377"]}}, base=base)
    assert changed.perimeter.communes == frozenset({"91377"})
    assert changed.contact == base.contact and changed.name == base.name
    with pytest.raises(PartnerError, match="org cannot change"):
        partner_from_dict({"org": "other"}, base=base)


def test_access_scopes(juris: Jurisdictions) -> None:
    assert AccessScope.ALL.allows("91228", "vol") and AccessScope.ALL.unrestricted
    assert not AccessScope.NOTHING.allows("91228", "vol")
    partner = partner_from_dict(ENTRY)
    scope = partner.scope(juris)
    assert scope.allows("91228", "vol") and scope.allows(["91377", "91228"], "rodeo")
    assert not scope.allows("91377", "vol")  # another commune
    assert not scope.allows("91228", "violence")  # another category
    assert not scope.allows(None, "vol")
    assert replace(partner, active=False).scope(juris) == AccessScope.NOTHING
    evry = Perimeter(jurisdictions=frozenset({"csp-evry"}))
    covered = evry.expand(juris)
    assert "91228" in covered and "91377" not in covered and len(covered) > 1
