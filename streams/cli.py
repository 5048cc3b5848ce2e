"""The `vigie` command. Each subcommand lives in its own module exposing `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

# (command, module): each module exposes `register(subparsers) -> None`, which adds the
# command and sets its handler with `parser.set_defaults(func=...)`; the handler receives
# the parsed args and returns an exit code.
SUBCOMMANDS = (
    ("worker", "streams.worker"),
    ("simulate", "streams.simulator.cli"),
    ("counts", "streams.counts"),
    ("refdata", "streams.refdata_build"),
    ("backtest", "streams.backtest"),
    ("eval", "streams.evaluation"),
    ("console", "console.server"),
)


def _broken(name: str, error: BaseException) -> Any:
    def handler(_args: argparse.Namespace) -> int:
        raise SystemExit(f"vigie: the {name} module cannot be loaded: {error!r}")

    return handler


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vigie", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
