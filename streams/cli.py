"""The `vigie` command. Each subcommand lives in its own module exposing `register(subparsers)`."""

from __future__ import annotations

import argparse
import importlib
import sys

# (module, ...) each exposing `register(subparsers) -> None`; the handler is set with
# `parser.set_defaults(func=...)` and receives the parsed args, returning an exit code.
SUBCOMMAND_MODULES = (
    "streams.worker",
    "streams.simulator.cli",
    "streams.counts",
    "streams.refdata_build",
    "streams.backtest",
    "streams.evaluation",
    "streams.topics_cli",
    "console.server",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vigie", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # that part is not installed in this build
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
