"""Every command's --help: conventional metavars, whole summaries, `mana-credits`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from mana_credits_cli.main import COMMANDS, load_command

from .conftest import invoke
from .test_setup_faults import environment, mana_credits


def command_paths() -> Iterator[list[str]]:
    yield []
    for name in COMMANDS:
        yield [name]
        for sub in getattr(load_command(name), "commands", None) or {}:
            yield [name, sub]


PATHS = list(command_paths())


def summaries(text: str) -> list[str]:
    """The lines of the Commands: section."""
    _before, _, after = text.partition("\nCommands:\n")
    return [line for line in after.splitlines() if line.startswith("  ")]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "mana-credits")
def test_help_is_conventional(path: list[str]) -> None:
    code, out = invoke(*path, "--help")
    assert code == 0, out
    assert out.startswith(f"Usage: {' '.join(['mana-credits', *path])} "), out
    assert not re.search(r"<[a-z][a-z ]*>", out), out  # Typer's <str>, <int range>
    assert not re.search(r"\{[A-Z_]+\}", out), out  # Typer's {USER}
    for line in summaries(out):
        assert not line.endswith("..."), line
    if path:
        assert "--install-completion" not in out  # the top level installs completion
    if "Example" in out:
        # A \b block keeps each example on its own line: none is joined to the heading.
        assert not re.search(r"Examples?: +\S", out), out


def runs_something(path: list[str]) -> bool:
    """A command that does something, not a group that only lists its subcommands."""
    return len(path) == 2 or (
        len(path) == 1 and not getattr(load_command(path[0]), "commands", None)
    )


@pytest.mark.parametrize("path", [p for p in PATHS if runs_something(p)], ids=lambda p: " ".join(p))
def test_every_command_shows_an_example(path: list[str]) -> None:
    code, out = invoke(*path, "--help")
    assert code == 0, out
    # Examples under their heading, each a command line that runs mana-credits.
    assert re.search(r"\n  Examples?:\n    \S*mana-credits \S", out), out


def test_examples_keep_their_lines() -> None:
    code, out = invoke("serve", "--help")
    assert code == 0
    assert "\n  Examples:\n    mana-credits serve\n" in out


def test_the_program_is_mana_credits_when_run_as_a_module(tmp_path: Path) -> None:
    result = mana_credits("credits", "--help", env=environment(tmp_path / "home"))
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: mana-credits credits ")
    assert "python -m" not in result.stdout
