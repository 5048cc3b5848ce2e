"""The partner registry on a real store (chDB, and ClickHouse 18.16 with the `clickhouse`
marker): versions, validation, secrets shown once, import, and `vigie partners`."""

from __future__ import annotations

import argparse
import json
import os
import stat
from pathlib import Path

import pytest

from agents.core.jurisdictions import Jurisdictions, load_jurisdictions
from agents.core.partners import PartnerError
from agents.core.refdata import RefData, load_refdata
from agents.ports import partner_registry
from streams import partners_cli
from streams.storage import Store

DEMO = Path(__file__).resolve().parents[2] / "offline" / "simulator" / "demo_partners.json"
ENTRY = {
    "org": "pm-91228",
    "name": "Police municipale d'Évry-Courcouronnes",
    "kind": "police_municipale",
    "perimeter": {"communes": ["91228"]},
}


@pytest.fixture(scope="module")
def refdata() -> RefData:
    return load_refdata()


@pytest.fixture(scope="module")
def juris(refdata: RefData) -> Jurisdictions:
    return load_jurisdictions(None, refdata)


def cli(store: Store, refdata: RefData, juris: Jurisdictions, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    partners_cli.register(parser.add_subparsers())
    args = parser.parse_args(["partners", *argv])
    try:
        return partners_cli.dispatch(args, store, refdata, juris)
    except PartnerError as exc:
        print(f"vigie partners: {exc}")
        return partners_cli.EX_INVALID


def test_versions_are_kept_and_the_current_one_wins(
    store: Store, refdata: RefData, juris: Jurisdictions
) -> None:
    issued = partner_registry.add(store, ENTRY, refdata, juris, "alice")
    assert issued.token.startswith("vgp_") and issued.webhook_secret
    assert issued.partner.credentials.token_sha256 == partner_registry.token_digest(issued.token)
    stored_row = store.query("SELECT entry FROM partners")[0]["entry"]
    assert issued.token not in stored_row  # only its digest is stored
    changed = partner_registry.update(
        store, "pm-91228", {"perimeter": {"communes": ["91228", "91286"]}}, refdata, juris, "bob"
    )
    assert changed.version == 2 and changed.updated_by == "bob"
    assert changed.credentials == issued.partner.credentials  # secrets kept across changes
    snapshot = partner_registry.load(store)
    assert snapshot.partners["pm-91228"].perimeter.communes == frozenset({"91228", "91286"})
    found = snapshot.by_token_digest(partner_registry.token_digest(issued.token))
    assert found is not None and found.org == "pm-91228"
    assert [p.version for p in partner_registry.history(store, "pm-91228")] == [2, 1]
    with pytest.raises(PartnerError, match="already registered"):
        partner_registry.add(store, ENTRY, refdata, juris, "alice")
    with pytest.raises(PartnerError, match="changed meanwhile"):
        partner_registry.update(
            store, "pm-91228", {"name": "x"}, refdata, juris, "bob", expected_version=1
        )
    rotated = partner_registry.rotate(store, "pm-91228", "alice", token=True, webhook_secret=False)
    assert rotated.token and rotated.token != issued.token and rotated.webhook_secret == ""
    after = partner_registry.load(store)
    assert after.by_token_digest(partner_registry.token_digest(issued.token)) is None
    assert after.partners["pm-91228"].credentials.webhook_secret == issued.webhook_secret


def test_invalid_changes_write_nothing(
    store: Store, refdata: RefData, juris: Jurisdictions
) -> None:
    with pytest.raises(PartnerError) as caught:
        partner_registry.add(
            store, {**ENTRY, "perimeter": {"communes": ["99999"]}}, refdata, juris, "a"
        )
    assert "unknown communes" in str(caught.value) and "99999" in str(caught.value)
    partner_registry.add(store, ENTRY, refdata, juris, "a")
    with pytest.raises(PartnerError, match="empty perimeter"):
        partner_registry.update(store, "pm-91228", {"perimeter": {}}, refdata, juris, "a")
    with pytest.raises(PartnerError, match="unknown partner"):
        partner_registry.update(store, "nobody", {"name": "x"}, refdata, juris, "a")
    assert [p.version for p in partner_registry.history(store, "pm-91228")] == [1]


def test_import_checks_everything_first(
    store: Store, refdata: RefData, juris: Jurisdictions
) -> None:
    entries = json.loads(DEMO.read_text(encoding="utf-8"))
    bad = [*entries, {**ENTRY, "org": "broken", "perimeter": {"communes": ["00000"]}}]
    with pytest.raises(PartnerError, match=r"entry #5 \(broken\): unknown communes"):
        partner_registry.import_entries(store, bad, refdata, juris, "a")
    assert partner_registry.load(store).partners == {}  # nothing written
    done = partner_registry.import_entries(store, entries, refdata, juris, "a")
    assert len(done.added) == len(entries) == 4
    again = partner_registry.import_entries(store, entries, refdata, juris, "a")
    assert again.added == [] and again.updated == [] and len(again.unchanged) == 4
    entries[1]["name"] = "PM Évry"
    changed = partner_registry.import_entries(store, entries, refdata, juris, "a")
    assert [p.org for p in changed.updated] == ["pm-91228"]
    entries[1]["name"] = "PM Évry (seed)"
    seeded = partner_registry.import_entries(store, entries, refdata, juris, "a", add_only=True)
    assert seeded.updated == []  # the demo's seed never overwrites an operator's change


def test_the_cli(
    store: Store,
    refdata: RefData,
    juris: Jurisdictions,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "secrets.json"
    code = cli(
        store, refdata, juris, "add", "--org", "pm-91377", "--name", "PM Massy", "--kind",
        "police_municipale", "--communes", "91377", "--secrets-out", str(out),
    )  # fmt: skip
    assert code == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    secrets = json.loads(out.read_text())
    assert secrets["console_token"] not in capsys.readouterr().out
    assert cli(store, refdata, juris, "add", "--org", "x", "--name", "X", "--kind",
               "transport", "--communes", "99999") == 2  # fmt: skip
    assert "unknown communes" in capsys.readouterr().out
    assert cli(store, refdata, juris, "update", "pm-91377", "--communes", "91377,91228") == 0
    assert cli(store, refdata, juris, "disable", "pm-91377") == 0
    capsys.readouterr()
    assert cli(store, refdata, juris, "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(p["org"], p["version"], p["active"]) for p in listed] == [("pm-91377", 3, False)]
    assert "credentials" not in listed[0]
    assert cli(store, refdata, juris, "show", "pm-91377", "--history") == 0
    shown = capsys.readouterr().out
    assert secrets["webhook_secret"] not in shown and secrets["console_token"] not in shown
    assert cli(store, refdata, juris, "show", "nobody") == 2
    assert cli(store, refdata, juris, "rotate-secret", "pm-91377", "--webhook-secret") == 0
    rotated = capsys.readouterr().out
    assert "webhook_secret:" in rotated and "console_token" not in rotated
    assert cli(store, refdata, juris, "import", str(DEMO)) == 0
    assert "csp-evry-courcouronnes: ajouté" in capsys.readouterr().out
