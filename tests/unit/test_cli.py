"""The `vigie` entry point: a help text for users that lists every command, and --version."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest

from vigie import cli


def test_help_describes_vigie_and_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: vigie")
    assert "everyday-security reports" in out and "vigie COMMAND --help" in out
    assert "register(" not in out and "subparsers" not in out  # no developer notes
    listed = out.split("commands:", 1)[1]
    for command, _module in cli.SUBCOMMANDS:
        # argparse puts the help of a name longer than 8 characters on the next line
        assert f"\n    {command} " in listed or f"\n    {command}\n" in listed, command
    assert "(unavailable)" not in listed  # every command of this build loads


def test_version_comes_from_the_installed_package(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"vigie {metadata.version('vigie')}\n"


def test_version_without_package_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(_name: str) -> str:
        raise metadata.PackageNotFoundError("vigie")

    monkeypatch.setattr(metadata, "version", missing)
    assert cli.version() == "0+unknown"


def test_the_installed_script_answers_version() -> None:
    script = subprocess.run(
        [sys.executable, "-m", "vigie", "--version"], capture_output=True, text=True, check=True
    )
    assert script.stdout.strip() == f"vigie {metadata.version('vigie')}"
