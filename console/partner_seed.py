"""The demo's partner registrations: a JSON list of entries registered when the console starts
(`VIGIE_CONSOLE_PARTNERS_SEED`), only for orgs not in the registry yet."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from aiohttp import web

from agents.core.partners import PartnerError
from agents.ports import partner_registry
from console.context import CTX

log = logging.getLogger(__name__)


def install_partner_seed(app: web.Application, path: str) -> None:
    """At start, register the partners of the JSON list at `path` whose org is not in the
    registry yet (never overwriting an operator's change): the demo's partners. Nothing when
    `path` is empty; an unreadable or invalid file is logged (every problem) and skipped."""
    if not path:
        return

    async def seed(app: web.Application) -> None:
        ctx = app[CTX]
        directory = ctx.partners
        try:
            entries = json.loads(Path(path).read_text(encoding="utf-8"))
            if not isinstance(entries, list):
                raise PartnerError([f"{path}: expected a JSON list of entries"])
            juris = directory.jurisdictions if directory is not None else None
            done = await ctx.run_blocking(
                lambda: partner_registry.import_entries(
                    ctx.store, entries, ctx.refdata, juris, "seed", add_only=True
                )
            )
        except (OSError, ValueError) as exc:  # PartnerError is a ValueError
            log.warning("partner seed %s not registered: %s", path, exc)
            return
        except Exception as exc:  # the store is down: the console still starts
            log.warning("partner seed %s not registered (store): %s", path, exc)
            return
        if done.added:
            log.info("partner seed: %d partners registered", len(done.added))
        if directory is not None:
            await directory.refresh(force=True)

    app.on_startup.append(seed)
