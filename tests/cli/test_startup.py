"""The command starts light: `--help` and `--version` import no store, server or SDK."""

from __future__ import annotations

import io
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from mana_credits_cli.main import COMMANDS, load_command

from .conftest import invoke, seed

HEAVY = ("sqlalchemy", "alembic", "aiohttp", "stripe", "psycopg", "pydantic_settings")
ROOT = Path(__file__).resolve().parent.parent.parent


def loaded_after(statement: str) -> list[str]:
    probe = (
        f"import sys; {statement}; "
        f"print('loaded:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    last = out.strip().splitlines()[-1]
    assert last.startswith("loaded:")
    return [m for m in last.removeprefix("loaded:").split(",") if m]


def test_importing_the_command_loads_nothing_heavy() -> None:
    assert loaded_after("import mana_credits_cli.main") == []
    run_help = (
        "import mana_credits_cli.main as m; sys.argv = ['mana-credits', '--help']\n"
        "try:\n    m.run()\nexcept SystemExit:\n    pass"
    )
    assert loaded_after(f"exec({run_help!r})") == []


def test_the_probe_would_notice_a_heavy_import() -> None:
    heavy = loaded_after("import mana_credits_adapters.sql.migrate")
    assert "alembic" in heavy
    assert "sqlalchemy" in heavy


def test_help_lists_every_command_with_its_own_first_line() -> None:
    code, out = invoke("--help")
    assert code == 0
    for name, (_module, _attribute, summary) in COMMANDS.items():
        command = load_command(name)
        first_line = (command.help or "").strip().splitlines()[0]
        assert summary == first_line, name
        assert f"\n  {name} " in out


def walk(command: Any, path: list[str]) -> list[list[str]]:
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found += walk(sub, [*path, name])
    return found


def test_no_help_shows_a_placeholder_for_a_flag() -> None:
    paths = [p for name in COMMANDS for p in walk(load_command(name), [name])]
    assert ["credits", "grant"] in paths
    assert ["billing", "run"] in paths
    for path in [[], *paths]:
        code, out = invoke(*path, "--help")
        assert code == 0, path
        assert "<bool>" not in out, path
    code, out = invoke("billing", "run", "--help")
    assert "--dry-run  " in out


def test_version() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    code, out = invoke("--version")
    assert code == 0
    assert out.startswith(f"mana-credits {project['version']}")


@pytest.mark.sqlite
def test_reconcile_shows_progress_only_on_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mana_credits_cli.reconcile as reconcile_cli

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    seed(url)
    code, out = invoke("reconcile", "--database-url", url)
    assert (code, out) == (0, "ok: 1 user checked, no drift\n")
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=80)
    monkeypatch.setattr(reconcile_cli, "err_console", terminal)
    code, out = invoke("reconcile", "--database-url", url)
    assert (code, out) == (0, "ok: 1 user checked, no drift\n")
    assert "checking: 1 users" in screen.getvalue()
