"""The `vigie` command: one entry point, one subcommand per module (`SUBCOMMANDS`).

Each module exposes `register(subparsers)`, which adds its command and sets the handler with
`parser.set_defaults(func=...)`; the handler receives the parsed args and returns an exit
code. A module that is not installed in this build leaves its command out; one that fails to
load shows it as unavailable (and says why when run) without taking the others down.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from importlib import metadata
from typing import Any

from pydantic import ValidationError

# (command, module)
SUBCOMMANDS = (
    ("worker", "streams.worker"),
    ("simulate", "offline.simulator.cli"),
    ("counts", "streams.counts"),
    ("refdata", "offline.refdata_build"),
    ("backtest", "offline.backtest"),
    ("eval", "offline.evaluation"),
    ("params", "offline.params_cli"),
    ("console", "streams.console_server"),
    ("partners", "streams.partners_cli"),
    ("diagnostic", "streams.diagnostic_cli"),
    ("feedback", "streams.feedback_cli"),
    ("webhooks", "streams.webhooks"),
)

DESCRIPTION = """\
Vigie: near-real-time processing of everyday-security reports from partners and citizens
(Essonne). Reports are validated, merged into incidents and scanned for unusual clusters,
which raise alerts; an ops-room console shows them.

Run `vigie COMMAND --help` for the options of a command. Settings come from VIGIE_*
environment variables (docs/sre.md, section Settings)."""


def version() -> str:
    """The installed package's version (`0+unknown` when run from a source tree that is not
    installed)."""
    try:
        return metadata.version("vigie")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _broken(name: str, error: BaseException) -> Any:
    def handler(_args: argparse.Namespace) -> int:
        raise SystemExit(f"vigie: the {name} module cannot be loaded: {error!r}")

    return handler


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vigie",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(
        dest="command", required=True, title="commands", metavar="COMMAND"
    )
    for command, name in SUBCOMMANDS:
        try:
            importlib.import_module(name).register(sub)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # that part is not installed in this build
            sub.add_parser(command, help="(unavailable)").set_defaults(func=_broken(name, exc))
        except Exception as exc:  # one broken subcommand must not take the others down
            sub.add_parser(command, help="(unavailable)").set_defaults(func=_broken(name, exc))
    return parser


EX_CONFIG = 78  # sysexits.h: configuration error


def _settings_prefixes() -> dict[str, str]:
    """Env prefix of every settings class loaded so far, by class name (a pydantic
    ValidationError names its model by `title`)."""
    from pydantic_settings import BaseSettings

    found: dict[str, str] = {}
    pending: list[type[BaseSettings]] = [BaseSettings]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = str(cls.model_config.get("env_prefix") or "")
        pending.extend(cls.__subclasses__())
    return found


def settings_error_line(exc: ValidationError) -> str | None:
    """One line naming each bad environment variable and what is wrong with it (never its
    value: some are secrets), or None when `exc` is not about settings."""
    prefix = _settings_prefixes().get(exc.title)
    if prefix is None:
        return None
    problems = [
        f"{prefix}{str(err['loc'][0]).upper()}: {err['msg']}" if err["loc"] else err["msg"]
        for err in exc.errors(include_url=False)
    ]
    return "vigie: invalid setting " + "; ".join(problems)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValidationError as exc:  # a VIGIE_* variable the settings refuse: no traceback
        line = settings_error_line(exc)
        if line is None:
            raise
        print(line, file=sys.stderr)
        return EX_CONFIG


if __name__ == "__main__":
    sys.exit(main())
