"""`make run`: register the demo partner whose webhook is the local receiver
(`scripts/webhook_receiver.py`), and write its signing secret to a 0600 file for the receiver.

Run before the worker starts (with chDB, one process at a time opens the store). A partner
already registered (KEEP_DATA=1) keeps its entry; its secret file is then kept too.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from agents.core.jurisdictions import load_jurisdictions
from agents.core.partners import PartnerError
from agents.core.refdata import load_refdata
from agents.ports import partner_registry
from streams.settings import get_settings
from streams.storage import open_store

ORG = "demo-webhooks"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the receiver's URL")
    parser.add_argument("--secret-file", required=True, help="where to write the secret")
    args = parser.parse_args()
    secret_file = Path(args.secret_file)
    settings = get_settings()
    refdata = load_refdata(settings.refdata or None)
    jurisdictions = load_jurisdictions(settings.jurisdictions or None, refdata)
    store = open_store(settings.clickhouse)
    try:
        store.ensure_schema()
        if partner_registry.get(store, ORG) is not None and secret_file.is_file():
            print(f"demo webhook partner {ORG} already registered")
            return 0
        entry = {
            "org": ORG,
            "name": "Démo webhooks (récepteur local)",
            "kind": "collectivite",
            "perimeter": {"jurisdictions": ["csp-evry"]},
            "contact": {"webhook_url": args.url},
            "subscriptions": [{"kinds": ["alert", "incident"]}],
        }
        try:
            if partner_registry.get(store, ORG) is None:
                issued = partner_registry.add(store, entry, refdata, jurisdictions, by="make run")
            else:  # registered, but its secret file is gone: a new secret
                issued = partner_registry.rotate(
                    store, ORG, "make run", token=False, webhook_secret=True
                )
        except PartnerError as exc:
            print(f"demo webhook partner not registered: {exc}", file=sys.stderr)
            return 2
    finally:
        store.close()
    fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(issued.webhook_secret)
    print(f"demo webhook partner {ORG} registered (secret in {secret_file})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
