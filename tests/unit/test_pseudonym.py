"""The keyed hash of personal data: contacts normalised first (one person hashes once), a key of
32+ bytes, a per-process random key for runs whose tokens never leave the process."""

from __future__ import annotations

import pytest

from agents.core.pseudonym import (
    MIN_SECRET_BYTES,
    Pseudonymiser,
    normalise_contact,
    normalise_phone,
)

PSEUDO = Pseudonymiser(b"unit-test-pseudonym-key-0123456789abcdef")


@pytest.mark.parametrize(
    "written",
    [
        "06 12 34 56 78",
        "0612345678",
        "06.12.34.56.78",
        "06-12-34-56-78 ",
        "+33 6 12.34.56.78",
        "+33612345678",
        "0033612345678",
        "00 33 6 12 34 56 78",
        "+33 (0)6 12 34 56 78",
        "+33 06 12 34 56 78",
        "(+33) 6 12 34 56 78",
        "612345678",  # the leading 0 lost in a spreadsheet
        "06\u00a012\u00a034\u00a056\u00a078",  # no-break spaces
        "".join(chr(0xFF10 + int(d)) for d in "0612345678"),  # full-width digits
    ],
)
def test_every_way_of_writing_a_french_number_hashes_the_same(written: str) -> None:
    assert normalise_contact(written) == "+33612345678"
    assert PSEUDO.contact(written) == PSEUDO.token("+33612345678")


@pytest.mark.parametrize(
    ("written", "e164"),
    [
        ("+44 20 7946 0958", "+442079460958"),
        ("+44 (0)20 7946 0958", "+442079460958"),
        ("0044 20 7946 0958", "+442079460958"),
        ("+39 06 1234 5678", "+390612345678"),  # Italy keeps its 0 after the country code
        ("+1 (555) 010-9999", "+15550109999"),
        ("01 60 78 12 34", "+33160781234"),  # a landline of Essonne
    ],
)
def test_other_numbers_are_kept_in_e164(written: str, e164: str) -> None:
    assert normalise_contact(written) == e164


def test_unrecognised_numbers_keep_their_digits() -> None:
    # not 10 national digits: no country is guessed, but the separators still go
    assert normalise_phone("06 12 34 56 7") == normalise_phone("0612-3456-7") == "061234567"
    assert normalise_contact("17") == "17"


def test_different_numbers_stay_different() -> None:
    tokens = {PSEUDO.contact(n) for n in ("06 12 34 56 78", "06 12 34 56 79", "+44 612345678",
                                          "+33 1 12 34 56 78", "07 12 34 56 78")}
    assert len(tokens) == 5


def test_emails_are_trimmed_and_lower_cased_only() -> None:
    assert normalise_contact("  Jean.Dupont@Example.ORG ") == "jean.dupont@example.org"
    assert PSEUDO.contact("Jean.Dupont@Example.ORG") == PSEUDO.contact("jean.dupont@example.org ")
    # no provider-specific folding: dots and +tags are kept (see the module docstring)
    assert PSEUDO.contact("jean.dupont@gmail.com") != PSEUDO.contact("jeandupont@gmail.com")
    assert PSEUDO.contact("jean+vigie@gmail.com") != PSEUDO.contact("jean@gmail.com")
    # an address with digits only in its local part is still an address, not a number
    assert normalise_contact("0612345678@sms.example") == "0612345678@sms.example"


def test_other_contacts_are_lower_cased_with_white_space_collapsed() -> None:
    assert normalise_contact("  Gardien   Résidence\tdes Tilleuls ") == (
        "gardien résidence des tilleuls"
    )


def test_blank_contacts_have_no_token_and_text_is_hashed_as_given() -> None:
    assert PSEUDO.contact(None) is None and PSEUDO.contact("  ") is None
    assert PSEUDO.text("Deux Motos") != PSEUDO.text("deux motos")
    assert PSEUDO.text(None) is None


def test_the_key_changes_every_token() -> None:
    other = Pseudonymiser(b"another-unit-test-key-0123456789abcdef")
    assert PSEUDO.contact("06 12 34 56 78") != other.contact("06 12 34 56 78")
    assert len(PSEUDO.token("x")) == 32 and int(PSEUDO.token("x"), 16) >= 0


def test_a_short_key_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        Pseudonymiser(b"k" * (MIN_SECRET_BYTES - 1))
    Pseudonymiser(b"k" * MIN_SECRET_BYTES)


def test_ephemeral_keys_are_random() -> None:
    a, b = Pseudonymiser.ephemeral(), Pseudonymiser.ephemeral()
    assert a.contact("06 12 34 56 78") == a.contact("0612345678")
    assert a.contact("06 12 34 56 78") != b.contact("06 12 34 56 78")


def test_log_references_are_short_keyed_and_apart_from_tokens() -> None:
    ref = PSEUDO.reference("0612345678")
    assert len(ref) == 12 and ref == PSEUDO.reference("0612345678")
    assert ref != PSEUDO.reference("0612345679")
    assert not PSEUDO.token("0612345678").startswith(ref)
    assert ref != Pseudonymiser(b"another-unit-test-key-0123456789abcdef").reference("0612345678")


def test_the_intake_hashes_one_citizen_once() -> None:
    """Validation (the first step of every intake) hashes the normalised contact."""
    import orjson

    from agents.core.record import ReportRecord
    from agents.core.validation import validate_report

    def contact_hash(contact: str) -> str | None:
        raw = orjson.dumps({
            "report_id": contact, "source": {"kind": "citizen", "org": "citoyen"},
            "category": "rodeo", "occurred_at": "2026-11-25T21:00:00+01:00",
            "location": {"insee": "91228"}, "reporter": {"contact": contact},
        })
        rec = validate_report(raw, message_timestamp=-1, pseudonymiser=PSEUDO)
        assert isinstance(rec, ReportRecord)
        return rec.contact_hash

    assert contact_hash("06 12 34 56 78") == contact_hash("+33 6 12.34.56.78") == (
        contact_hash("0033612345678")
    )
    assert contact_hash("Jean@Example.org") == contact_hash(" jean@example.org")
