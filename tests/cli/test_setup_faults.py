"""Setup faults in the CLI and `serve`: one line `error: <code>: ...`, exit 1, no traceback.

The real command runs as a child process where the absence of a traceback is the point;
CliRunner covers the rest.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mana_credits_adapters.identity.dev import KEY_FILE
from mana_credits_adapters.settings import Settings
from mana_credits_cli.main import app
from mana_credits_cli.runtime import run
from mana_credits_core.errors import StoreUnavailable

from ..damage import damaged_home, stocked_home
from ..postgres import free_port

ROOT = Path(__file__).resolve().parents[2]
# Every setting a developer's shell may carry is dropped: each case sets its own.
SETTINGS = {str(field.alias) for field in Settings.model_fields.values()}
WITHOUT_OVERRIDE = shutil.which("setpriv") or "setpriv"

runner = CliRunner()


def environment(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    return env | {"MANA_CREDITS_HOME": str(home), "HOME": str(home.parent), **extra}


def mana_credits(
    *args: str, env: dict[str, str], permissions_bind_root: bool = False
) -> subprocess.CompletedProcess[str]:
    """The real command; `permissions_bind_root`: as root, drop the capabilities that
    let root write into read-only folders (the interpreter lives in root's home, so
    switching to another user is not an option)."""
    command = [sys.executable, "-m", "mana_credits_cli", *args]
    if permissions_bind_root and os.geteuid() == 0:
        command = [WITHOUT_OVERRIDE, "--bounding-set=-dac_override,-dac_read_search", *command]
    return subprocess.run(
        command,
        env=env | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=env["HOME"],
    )


def assert_one_line(result: subprocess.CompletedProcess[str], code: str) -> str:
    """The failure is exactly one stderr line starting `error: <code>: `; returns it."""
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {code}: "), lines[0]
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_a_corrupt_credits_db(home: Path) -> None:
    home.mkdir()
    (home / "credits.db").write_bytes(b"\x00garbage" * 100)
    result = mana_credits("credits", "balance", "alice", env=environment(home))
    line = assert_one_line(result, "corrupt_database")
    assert f"{home / 'credits.db'} is not a SQLite database" in line


def test_a_corrupt_dev_signing_key(home: Path) -> None:
    home.mkdir()
    (home / KEY_FILE).write_text("garbage")
    result = mana_credits("dev", "token", "--user", "alice", env=environment(home))
    line = assert_one_line(result, "corrupt_signing_key")
    assert str(home / KEY_FILE) in line


def test_a_home_that_is_a_file(home: Path) -> None:
    home.write_text("")
    result = mana_credits("db", "upgrade", env=environment(home))
    assert f"MANA_CREDITS_HOME {home} is not a folder" in assert_one_line(result, "not_a_folder")


@pytest.mark.parametrize(
    "command", [["db", "upgrade"], ["dev", "token", "--user", "alice"], ["serve", "--port"]]
)
def test_a_read_only_home(command: list[str], tmp_path: Path) -> None:
    if command[-1] == "--port":
        command = [*command, str(free_port())]
    home = tmp_path / "home"
    home.mkdir()
    home.chmod(0o555)
    result = mana_credits(*command, env=environment(home), permissions_bind_root=True)
    line = assert_one_line(result, "not_writable")
    assert str(home) in line
    assert list(home.iterdir()) == []


@pytest.mark.parametrize(
    ("url", "code", "said"),
    [
        ("garbage", "invalid_database_url", "sqlite:////absolute/path/credits.db"),
        ("mysql://mana:s3cret@db/credits", "unsupported_database", "mysql://mana:***@db/credits"),
        (
            "postgresql://u:s3cret@127.0.0.1:notaport/db",
            "invalid_database_url",
            "postgresql://u:***@127.0.0.1:notaport/db",
        ),
        ("postgresql://u:s3cret@[::1/db", "invalid_database_url", "postgresql://u:***@[::1/db"),
    ],
)
def test_a_database_url_that_cannot_be_used(url: str, code: str, said: str, home: Path) -> None:
    serve = ["serve", "--port", str(free_port())]
    for command in (["db", "upgrade"], ["credits", "balance", "alice"], serve):
        result = mana_credits(*command, env=environment(home, DATABASE_URL=url))
        line = assert_one_line(result, code)
        assert said in line
        assert "s3cret" not in line


def test_an_unreachable_postgresql(home: Path) -> None:
    port = free_port()
    url = f"postgresql://mana:s3cret@127.0.0.1:{port}/credits"
    result = mana_credits("credits", "balance", "alice", env=environment(home, DATABASE_URL=url))
    line = assert_one_line(result, "database_unreachable")
    assert f"127.0.0.1:{port}" in line
    assert "refused" in line.lower()
    assert "s3cret" not in line


def test_serve_on_a_busy_port_says_so_before_any_banner(home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = mana_credits("serve", "--port", str(port), env=environment(home))
    line = assert_one_line(result, "port_in_use")
    assert line == (
        f"error: port_in_use: 127.0.0.1:{port} is in use, stop the other server or pass --port"
    )
    assert "listening" not in result.stdout


def test_serve_on_a_corrupt_credits_db(home: Path) -> None:
    home.mkdir()
    (home / "credits.db").write_text("garbage")
    result = mana_credits("serve", "--port", str(free_port()), env=environment(home))
    assert str(home / "credits.db") in assert_one_line(result, "corrupt_database")
    assert "listening" not in result.stdout


def test_serve_with_an_unusable_setting(home: Path) -> None:
    result = mana_credits("serve", env=environment(home, PORT="eighty"))
    assert "PORT='eighty'" in assert_one_line(result, "invalid_setting")


@pytest.mark.parametrize(
    ("args", "env", "said"),
    [
        (["serve", "--port", "70000"], {}, "--port 70000 is not a port, pass 0 to 65535"),
        (["serve", "--port", "-1"], {}, "--port -1 is not a port, pass 0 to 65535"),
        (["serve"], {"PORT": "70000"}, "PORT='70000': Input should be less than or equal"),
        (["credits", "balance", "alice"], {"PORT": "abc"}, "PORT='abc': Input should be"),
    ],
)
def test_a_port_that_is_no_port(
    args: list[str], env: dict[str, str], said: str, home: Path
) -> None:
    result = mana_credits(*args, env=environment(home, **env))
    assert said in assert_one_line(result, "invalid_setting")
    assert not home.exists()


@pytest.mark.parametrize("args", [["serve", "--port", "0"], ["credits", "top"]])
def test_an_unknown_log_level(args: list[str], home: Path) -> None:
    result = mana_credits(*args, env=environment(home, LOG_LEVEL="LOUD"))
    line = assert_one_line(result, "invalid_setting")
    assert "LOG_LEVEL='LOUD': pass one of DEBUG, INFO, WARNING, ERROR, CRITICAL" in line
    assert not home.exists()


def test_serve_in_production_mode_lists_the_missing_settings(home: Path) -> None:
    url = "postgresql://mana:s3cret@127.0.0.1:5/credits"
    env = environment(home, DATABASE_URL=url, MANA_AUTH_URL="https://auth.example")
    result = mana_credits("serve", "--port", str(free_port()), env=env)
    line = assert_one_line(result, "missing_setting")
    assert "MANA_SERVICE_KEY is not set; STRIPE_SECRET_KEY is not set;" in line
    assert "MANA_AUTH_URL" not in line
    assert "s3cret" not in line
    assert line.endswith("refuses to start, set them (README: Configuration)")


def test_serve_in_production_mode_with_one_setting_missing_says_set_it(home: Path) -> None:
    url = "postgresql://mana:s3cret@127.0.0.1:5/credits"
    env = environment(
        home, DATABASE_URL=url, MANA_AUTH_URL="https://auth.example",
        MANA_SERVICE_KEY="k" * 40, STRIPE_SECRET_KEY="sk_test_x",
    )  # fmt: skip
    result = mana_credits("serve", "--port", str(free_port()), env=env)
    line = assert_one_line(result, "missing_setting")
    assert line == (
        "error: missing_setting: STRIPE_WEBHOOK_SECRET is not set: production mode"
        " (PostgreSQL) refuses to start, set it (README: Configuration)"
    )


@pytest.mark.parametrize(
    "command", [["credits", "history", "user1"], ["reconcile"], ["credits", "balance", "user1"]]
)
def test_a_database_damaged_behind_its_header(command: list[str], home: Path) -> None:
    database = asyncio.run(damaged_home(home))
    result = mana_credits(*command, env=environment(home))
    line = assert_one_line(result, "corrupt_database")
    assert f"database file {database} is damaged" in line


def test_reading_a_database_the_user_may_not_write(home: Path) -> None:
    database = asyncio.run(stocked_home(home))
    database.chmod(0o444)
    home.chmod(0o555)
    try:
        result = mana_credits(
            "credits", "balance", "user1", env=environment(home), permissions_bind_root=True
        )
    finally:
        home.chmod(0o755)
    line = assert_one_line(result, "not_writable")
    assert str(database) in line


READ_COMMANDS = [
    ["credits", "balance", "alice"],
    ["credits", "history", "alice"],
    ["reconcile"],
    ["ledger", "export"],
    ["report", "usage"],
    ["report", "overview"],
    ["packages", "list"],
    ["gifts", "list"],
    ["gifts", "show", "ABCD-EFGH"],
    ["sync", "status", "alice"],
    ["db", "current"],
    ["db", "downgrade", "base", "--yes"],
]


def invoke(args: Sequence[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("command", READ_COMMANDS, ids=" ".join)
def test_a_command_that_reads_creates_no_database(
    command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = invoke([*command, "--database-url", "sqlite:///typo/x.db"])
    assert code == 1, out
    assert err == (
        f"error: no_database: no database at {tmp_path / 'typo' / 'x.db'}, check DATABASE_URL"
        " (sqlite:////absolute/path/credits.db) or run mana-credits db upgrade\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", READ_COMMANDS[:3], ids=" ".join)
def test_the_embedded_default_is_not_made_by_a_command_that_reads(
    command: list[str], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    code, _, err = invoke(command, env=environment(home))
    assert code == 1
    assert err.startswith(f"error: no_database: no database at {home / 'credits.db'}, ")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "command",
    [
        ["db", "upgrade"],
        ["credits", "grant", "alice", "5", "--reason", "welcome"],
        ["packages", "add", "--name", "Mega", "--credits", "13000", "--price", "10000"],
    ],
    ids=" ".join,
)
def test_a_command_that_writes_makes_no_folder(command: list[str], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/missing/x.db"
    code, _, err = invoke([*command, "--database-url", url])
    assert code == 1
    assert err.startswith(f"error: no_folder: folder {tmp_path / 'missing'} does not exist")
    assert list(tmp_path.iterdir()) == []


def test_a_command_that_writes_creates_the_file_in_an_existing_folder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/x.db"
    grant = [
        "credits",
        "grant",
        "alice",
        "5",
        "--reason",
        "hi",
        "--new-user",
        "--database-url",
        url,
    ]
    code, _, err = invoke(grant)
    assert code == 0, err
    code, out, _ = invoke(["credits", "balance", "alice", "--database-url", url, "--json"])
    assert code == 0
    assert '"balance": 5' in out


def test_an_unknown_revision_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/x.db"
    assert invoke(["db", "upgrade", "--database-url", url])[0] == 0
    code, _, err = invoke(["db", "downgrade", "nonsense", "--yes", "--database-url", url])
    assert code == 1
    assert err.startswith("error: invalid_input: ")
    assert err.count("\n") == 1
    assert "nonsense" in err


def test_a_store_that_fails_mid_command_is_named_with_the_drivers_cause(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def work() -> None:
        try:
            raise ConnectionResetError("connection reset by peer\n\tduring query")
        except OSError as exc:
            raise StoreUnavailable() from exc

    with pytest.raises(typer.Exit) as raised:
        run(work)
    assert raised.value.exit_code == 1
    assert capsys.readouterr().err == (
        "error: store_unavailable: Credit store temporarily unavailable"
        " (connection reset by peer during query), try again\n"
    )
