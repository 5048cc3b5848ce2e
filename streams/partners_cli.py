"""`vigie partners`: manage the partner registry (the `partners` table of the store).

    vigie partners list [--json]
    vigie partners show ORG [--history]
    vigie partners add FILE.json | --org ORG --name NAME --kind KIND --communes 91228,...
    vigie partners update ORG [--name ...] [--communes ...] [--file changes.json] ...
    vigie partners disable ORG | enable ORG
    vigie partners rotate-secret ORG [--token] [--webhook-secret] [--secrets-out FILE]
    vigie partners import FILE.json          (a list of entries: adds new orgs, updates others)

Every change writes a new version of the entry (history kept) and takes effect in the
console within seconds, without a redeploy. Entries are validated against the served area
(unknown communes or jurisdictions, empty perimeters, bad URLs: every problem is listed and
nothing is written). A new partner's console token and webhook secret are shown once (or
written to `--secrets-out`, mode 0600); only the token's SHA-256 is stored.

With the embedded store (chDB), run it while the worker is stopped (one process at a time
opens a chDB directory); with a ClickHouse server, at any time. The console's "Partenaires"
page does the same for operators while Vigie runs.

Exit codes: 0 done, 1 store unavailable, 2 invalid entry / unknown partner / bad file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from agents.core.jurisdictions import Jurisdictions, load_jurisdictions
from agents.core.partners import DELIVERY_KINDS, PARTNER_KINDS, Partner, PartnerError
from agents.core.refdata import RefData, load_refdata
from agents.ports import partner_registry
from agents.ports.partner_registry import Issued
from agents.ports.store import Store
from streams.settings import get_settings
from streams.storage import StoreError, is_embedded, open_store

EX_STORE = 1
EX_INVALID = 2
CLI_USER = "cli"


def _by() -> str:
    return f"{CLI_USER}:{os.environ.get('USER', 'unknown')}"[:64]


def _read_json(path: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PartnerError([f"cannot read {path}: {exc}"]) from None


def _split(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def entry_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The JSON fields given on the command line (absent options are left out)."""
    data: dict[str, Any] = {}
    if getattr(args, "file", None):
        loaded = _read_json(args.file)
        if not isinstance(loaded, dict):
            raise PartnerError([f"{args.file}: expected one JSON object"])
        data.update(loaded)
    for key in ("org", "name", "kind"):
        if getattr(args, key, None) is not None:
            data[key] = getattr(args, key)
    perimeter = dict(data.get("perimeter") or {})
    for key in ("communes", "jurisdictions", "categories"):
        values = _split(getattr(args, key, None))
        if values is not None:
            perimeter[key] = values
    if perimeter:
        data["perimeter"] = perimeter
    contact = dict(data.get("contact") or {})
    if getattr(args, "webhook_url", None) is not None:
        contact["webhook_url"] = args.webhook_url
    if getattr(args, "email", None) is not None:
        contact["email"] = args.email
    if contact:
        data["contact"] = contact
    kinds = _split(getattr(args, "subscribe", None))
    if kinds is not None:
        data["subscriptions"] = (
            [{"kinds": kinds, "categories": _split(args.subscribe_categories) or []}]
            if kinds
            else []
        )
    return data


def _show(partner: Partner) -> str:
    return json.dumps(partner.public(), ensure_ascii=False, indent=2)


def _secrets(issued: Issued, out: str | None) -> None:
    """Show the secrets created (once), or write them to `out` (0600)."""
    shown = {"org": issued.partner.org}
    if issued.token:
        shown["console_token"] = issued.token
    if issued.webhook_secret:
        shown["webhook_secret"] = issued.webhook_secret
    if len(shown) == 1:
        return
    if out:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(shown, f)
            f.write("\n")
        os.chmod(path, 0o600)
        print(f"secrets of {issued.partner.org} written to {path} (0600)")
        return
    print("secrets (shown once, store them now):")
    for key, value in shown.items():
        if key != "org":
            print(f"  {key}: {value}")


def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    try:
        refdata = load_refdata(settings.refdata or None)
        juris = load_jurisdictions(settings.jurisdictions or None, refdata)
    except (OSError, ValueError) as exc:
        print(f"vigie partners: reference data: {exc}", file=sys.stderr)
        return EX_INVALID
    try:
        store = open_store(settings.clickhouse)
    except StoreError as exc:
        print(f"vigie partners: store: {exc}", file=sys.stderr)
        if is_embedded(settings.clickhouse):
            print(
                "vigie partners: the embedded store opens in one process at a time: while the"
                " worker runs, use the console's Partenaires page (operator token)",
                file=sys.stderr,
            )
        return EX_STORE
    try:
        store.ensure_schema()
        return dispatch(args, store, refdata, juris)
    except PartnerError as exc:
        print(f"vigie partners: {exc}", file=sys.stderr)
        return EX_INVALID
    except StoreError as exc:
        print(f"vigie partners: store: {exc}", file=sys.stderr)
        return EX_STORE
    finally:
        store.close()


def dispatch(
    args: argparse.Namespace, store: Store, refdata: RefData, juris: Jurisdictions | None
) -> int:
    """Run the subcommand on `store` (PartnerError/StoreError propagate)."""
    action = args.action
    if action == "list":
        snapshot = partner_registry.load(store)
        if args.json:
            items = [p.public() for p in snapshot.partners.values()]
            print(json.dumps(items, ensure_ascii=False, indent=2))
        else:
            for p in snapshot.partners.values():
                state = "actif" if p.active else "désactivé"
                communes = len(p.perimeter.expand(juris))
                line = f"{p.org:24} v{p.version:<3} {p.kind.value:18} {communes:4} communes"
                print(f"{line}  {state}")
            for org, reason in snapshot.unreadable.items():
                print(f"{org:24} UNREADABLE: {reason}")
        return 0
    if action == "show":
        versions = partner_registry.history(store, args.org, 50 if args.history else 1)
        if not versions:
            raise PartnerError(["unknown partner"], args.org)
        for p in versions:
            print(_show(p))
        return 0
    if action == "add":
        issued = partner_registry.add(store, entry_from_args(args), refdata, juris, _by())
        print(_show(issued.partner))
        _secrets(issued, args.secrets_out)
        return 0
    if action == "update":
        changes = entry_from_args(args)
        if changes.get("org") == args.org:
            del changes["org"]  # the same org, given in the file
        if not changes:
            raise PartnerError(["nothing to change (give options or --file)"], args.org)
        partner = partner_registry.update(store, args.org, changes, refdata, juris, _by())
        print(_show(partner))
        return 0
    if action in ("disable", "enable"):
        partner = partner_registry.update(
            store, args.org, {"active": action == "enable"}, refdata, juris, _by()
        )
        print(f"{partner.org}: {'activé' if partner.active else 'désactivé'} (v{partner.version})")
        return 0
    if action == "rotate-secret":
        both = not args.token and not args.webhook_secret
        issued = partner_registry.rotate(
            store,
            args.org,
            _by(),
            token=args.token or both,
            webhook_secret=args.webhook_secret or both,
        )
        _secrets(issued, args.secrets_out)
        return 0
    if action == "import":
        return import_file(store, args.path, refdata, juris, args.secrets_out)
    raise PartnerError([f"unknown action {action}"])


def import_file(
    store: Store,
    path: str,
    refdata: RefData,
    juris: Jurisdictions | None,
    secrets_out: str | None = None,
) -> int:
    """Add the new orgs of FILE (a JSON list of entries) and update the changed ones. Every
    entry is validated first: one invalid entry and nothing is written."""
    entries = _read_json(path)
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise PartnerError([f"{path}: expected a JSON list of objects"])
    result = partner_registry.import_entries(store, entries, refdata, juris, _by())
    for issued in result.added:
        print(f"{issued.partner.org}: ajouté (v{issued.partner.version})")
        _secrets(issued, f"{secrets_out}.{issued.partner.org}.json" if secrets_out else None)
    for partner in result.updated:
        print(f"{partner.org}: mis à jour (v{partner.version})")
    for org in result.unchanged:
        print(f"{org}: inchangé")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "partners",
        help="partner registry: list, add, update, disable, rotate secrets, import",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every partner (current version)")
    listing.add_argument("--json", action="store_true", help="JSON (without secrets)")
    show = actions.add_parser("show", help="one partner (without secrets)")
    show.add_argument("org")
    show.add_argument("--history", action="store_true", help="every version, newest first")

    def entry_options(p: argparse.ArgumentParser, creating: bool) -> None:
        p.add_argument("--file", help="a JSON entry (options given as well override it)")
        if creating:
            p.add_argument("--org", help="the partner's source.org (slug [a-z0-9-])")
        p.add_argument("--name", help="display name")
        p.add_argument("--kind", choices=PARTNER_KINDS, help="partner kind")
        p.add_argument("--communes", help="INSEE codes, comma-separated")
        p.add_argument("--jurisdictions", help="jurisdiction ids, comma-separated")
        p.add_argument("--categories", help="categories handled (empty: all), comma-separated")
        p.add_argument("--webhook-url", help="https URL deliveries are posted to")
        p.add_argument("--email", help="the partner desk's e-mail (for the ops room)")
        p.add_argument(
            "--subscribe",
            help=f"delivered kinds, comma-separated ({', '.join(DELIVERY_KINDS)}; '' for none)",
        )
        p.add_argument("--subscribe-categories", help="categories of that subscription")

    add = actions.add_parser("add", help="register a partner (prints its secrets once)")
    entry_options(add, True)
    add.add_argument("--secrets-out", help="write the secrets to this file (0600) instead")
    update = actions.add_parser("update", help="change a partner (a new version)")
    update.add_argument("org")
    entry_options(update, False)
    for name, text in (("disable", "disable a partner (it sees nothing)"), ("enable", "enable")):
        actions.add_parser(name, help=text).add_argument("org")
    rotate = actions.add_parser("rotate-secret", help="new console token and/or webhook secret")
    rotate.add_argument("org")
    rotate.add_argument("--token", action="store_true", help="the console token only")
    rotate.add_argument("--webhook-secret", action="store_true", help="the webhook secret only")
    rotate.add_argument("--secrets-out", help="write the secrets to this file (0600)")
    importing = actions.add_parser("import", help="add/update the entries of a JSON list")
    importing.add_argument("path")
    importing.add_argument(
        "--secrets-out", help="write new partners' secrets to PREFIX.<org>.json (0600)"
    )
    parser.set_defaults(func=run)
