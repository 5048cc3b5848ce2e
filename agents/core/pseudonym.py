"""Keyed pseudonymisation of personal data (citizen contact, free text).

HMAC-SHA256 with a secret key: the same contact always maps to the same token (so
independent reporters can be counted) while the clear value is neither stored nor
forwarded. Without the key a token cannot be reversed, not even by trying every French
mobile number: that is why the key must be secret and long (`MIN_SECRET_BYTES`), and why
the worker refuses to start without one outside development mode (`streams.settings`).

A contact is normalised before it is hashed (`normalise_contact`), so that one person
hashes once whichever way they write their phone number or e-mail address:

- phone numbers to E.164: French numbers by default (`06 12 34 56 78`, `+33 6 12.34.56.78`,
  `0033612345678`, `+33 (0)6 12 34 56 78` and `612345678`, a number that lost its leading 0
  in a spreadsheet, are all `+33612345678`); numbers written with `+` or `00` and another
  country code are kept as written, in E.164 form (`+44 20 7946 0958` -> `+442079460958`);
  a `(0)` trunk prefix is dropped.
- e-mail addresses: trimmed and lower-cased. Provider-specific folding (dots and `+tag`
  suffixes in Gmail local parts) is *not* applied: the rules belong to each provider, are
  unknown for every other domain (where `jean.dupont@` and `jeandupont@` are different
  people), and change; folding would merge different people, while not folding only splits
  a person who writes their own address two ways. It would not stop a deliberate reporter
  either: reports without any contact count as independent too.
- anything else: trimmed, inner white space collapsed, lower-cased.

Every form is first put in Unicode NFKC (full-width digits, no-break spaces).

The normaliser is a few rules, not a phone library: Google's `phonenumbers` (Apache-2.0)
gives the same E.164 strings for these inputs, but it installs 48 MB and costs ~45 µs per
number, about half the per-report budget of the ingest path; nor does it map French overseas
numbers written nationally (`0690…`) to their own country codes (`+590…`), the one case a
hand-written rule set also leaves out (both give `+33690…`).
"""

from __future__ import annotations

import hmac
import re
import secrets
import unicodedata

MIN_SECRET_BYTES = 32

# Digits with the separators people type between them, an optional leading `+` or `(+`.
_PHONE_LIKE = re.compile(r"\(?\+?[0-9 .\-/()]*[0-9][0-9 .\-/()]*")
_NOT_DIGIT = re.compile(r"[^0-9]")
_FRANCE = "33"


def normalise_phone(text: str) -> str:
    """E.164 form of a phone number (French by default); digits only if unrecognised.

    `text` must match `_PHONE_LIKE` (digits and separators, an optional leading `+`)."""
    lead = text.lstrip(" (")
    if lead.startswith(("+", "00")):
        digits = _NOT_DIGIT.sub("", text.replace("(0)", ""))  # "(0)": not dialled from abroad
        if not lead.startswith("+"):
            digits = digits[2:]  # the 00 international prefix
        if digits.startswith(_FRANCE):
            national = digits[2:]
            if national.startswith("0"):  # "+33 06 ...": the trunk 0 kept by habit
                national = national[1:]
            return f"+{_FRANCE}{national}"
        return f"+{digits}"
    digits = _NOT_DIGIT.sub("", text)
    if len(digits) == 10 and digits[0] == "0" and digits[1] != "0":
        return f"+{_FRANCE}{digits[1:]}"  # national French number: 0 + 9 digits
    if len(digits) == 9 and digits[0] != "0":
        return f"+{_FRANCE}{digits}"  # a French number that lost its leading 0
    return digits


def normalise_contact(value: str) -> str:
    """The canonical form of a contact before hashing (see the module docstring)."""
    text = unicodedata.normalize("NFKC", value).strip()
    if "@" in text:
        return text.lower()
    if _PHONE_LIKE.fullmatch(text):
        return normalise_phone(text)
    return " ".join(text.split()).lower()


class Pseudonymiser:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(
                f"pseudonymisation secret must be at least {MIN_SECRET_BYTES} bytes"
            )
        self._secret = secret

    @classmethod
    def ephemeral(cls) -> Pseudonymiser:
        """A pseudonymiser with a random key of this process only: for runs whose tokens
        never leave the process (`vigie backtest`, `vigie eval`) and development mode."""
        return cls(secrets.token_bytes(MIN_SECRET_BYTES))

    def token(self, value: str) -> str:
        """Keyed hash of `value` as given (128 bits, hex)."""
        # one-shot C implementation: the same HMAC as hmac.new(...).hexdigest(), ~3x cheaper
        return hmac.digest(self._secret, value.encode("utf-8"), "sha256").hex()[:32]

    def contact(self, value: str | None) -> str | None:
        """Token of a contact after normalisation; None when there is no contact."""
        if value is None or not value.strip():
            return None
        return self.token(normalise_contact(value))

    def text(self, value: str | None) -> str | None:
        return None if value is None else self.token(value)

    def reference(self, value: str) -> str:
        """A short keyed reference to an identifier, for logs (48 bits, hex): the same id
        gives the same reference, and a reference never equals a contact or text token."""
        data = b"log-reference\x00" + value.encode("utf-8")
        return hmac.digest(self._secret, data, "sha256").hex()[:12]
