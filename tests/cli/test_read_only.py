"""Commands that only read write nothing: no migration, no catalogue; and a downgrade
that deletes data asks first."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from mana_credits_adapters.settings import Settings
from mana_credits_adapters.sql import migrate
from mana_credits_adapters.sql.store import create_engine
from mana_credits_cli import db

from .conftest import invoke_split, runner, seed
from .test_setup_faults import READ_COMMANDS, assert_one_line, environment, mana_credits

pytestmark = pytest.mark.sqlite


def to_revision(url: str, revision: str) -> None:
    async def work() -> None:
        engine = create_engine(Settings(DATABASE_URL=url).effective_database_url)
        await migrate.downgrade(engine, revision)
        await engine.dispose()

    asyncio.run(work())


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("command", READ_COMMANDS[:-2], ids=" ".join)
def test_a_read_on_an_old_schema_is_refused_and_writes_nothing(
    command: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "c.db"
    url = f"sqlite:///{path}"
    seed(url)
    to_revision(url, "0003")
    before = digest(path)
    code, out, err = invoke_split(*command, "--database-url", url)
    assert code == 1, out
    assert err == (
        f"error: schema_outdated: {path} is at revision 0003, head is {migrate.head()},"
        " run mana-credits db upgrade\n"
    )
    assert digest(path) == before


def test_a_read_on_an_empty_database_says_it_has_no_schema(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    url = f"sqlite:///{home / 'credits.db'}"
    assert invoke_split("db", "upgrade", "--revision", "base", "--database-url", url)[0] == 0
    before = digest(home / "credits.db")
    result = mana_credits("packages", "list", env=environment(home))
    line = assert_one_line(result, "schema_outdated")
    assert f"{home / 'credits.db'} is at revision none, head is" in line
    assert digest(home / "credits.db") == before


def test_the_embedded_default_is_migrated_and_stocked_by_a_write_not_a_read(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    env = environment(home)
    write = ("credits", "grant", "alice", "5", "--reason", "hi", "--new-user")
    assert mana_credits(*write, env=env).returncode == 0
    listed = mana_credits("packages", "list", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert '"name"' in listed.stdout  # the default catalogue, stocked by the write


def test_downgrade_without_a_terminal_needs_yes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    seed(url)
    code, _out, err = invoke_split("db", "downgrade", "base", "--database-url", url)
    assert code == 1
    assert err == (
        "error: confirmation_required: db downgrade base drops tables and deletes their data,"
        " pass --yes to confirm\n"
    )
    assert invoke_split("credits", "balance", "alice", "--database-url", url)[0] == 0
    code, out, err = invoke_split("db", "downgrade", "base", "--yes", "--database-url", url)
    assert code == 0, err
    assert "database downgraded to base" in out


@pytest.mark.parametrize(("answer", "dropped"), [("n\n", False), ("y\n", True)])
def test_downgrade_on_a_terminal_asks(
    answer: str, dropped: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    seed(url)
    monkeypatch.setattr(db, "stdin_is_terminal", lambda: True)
    from mana_credits_cli.main import app

    result = runner.invoke(app, ["db", "downgrade", "base", "--database-url", url], input=answer)
    assert "Tables are dropped and their data is lost" in result.output
    assert result.exit_code == (0 if dropped else 1), result.output
    _code, out, _err = invoke_split("db", "current", "--database-url", url)
    assert out.startswith("none" if dropped else str(migrate.head()))
