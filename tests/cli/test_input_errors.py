"""A person's mistake on the command line: one line `error: <code>: ...`, exit 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import invoke, invoke_split, seed
from .test_setup_faults import assert_one_line, environment, mana_credits


def one_error_line(code: int, err: str, prefix: str) -> str:
    assert code == 1, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(prefix), lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["ledger", "export", "--format", "xml"], "'xml' is not one of 'csv', 'jsonl'"),
        (["credits", "top", "--by", "foo"], "'foo' is not one of 'balance', 'spent'"),
        (["credits", "balance"], "Missing argument 'USER'"),
        (["credits", "balance", "alice", "--bogus"], "No such option: --bogus"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], said: str) -> None:
    code, out, err = invoke_split(*args)
    line = one_error_line(code, err, "error: usage: ")
    assert said in line
    command = " ".join(a for a in args[:2] if not a.startswith("-"))
    assert line.endswith(f", see mana-credits {command} --help"), line
    assert out == ""


# Every option that takes a date; tests/cli/test_help.py shows them as `--since DATE`.
DATE_OPTIONS = [
    ["credits", "history", "alice", "--since"],
    ["credits", "top", "--by", "spent", "--since"],
    ["ledger", "export", "--since"],
]


@pytest.mark.parametrize("option", DATE_OPTIONS, ids=lambda args: " ".join(args[:2]))
@pytest.mark.parametrize("value", ["yesterday", "2026-13-45", "01.11.2026", ""])
def test_a_date_option_says_what_to_pass(option: list[str], value: str) -> None:
    code, out, err = invoke_split(*option, value)
    line = one_error_line(code, err, "error: usage: ")
    assert line == (
        f"error: usage: Invalid value for '--since': {value!r} is not a date, pass YYYY-MM-DD"
        " or an ISO 8601 time such as 2026-11-01T12:00:00Z,"
        f" see mana-credits {option[0]} {option[1]} --help"
    )
    assert out == ""


def test_every_date_option_is_checked_that_way() -> None:
    """No option outside DATE_OPTIONS takes a date (its help would say DATE)."""
    from .test_help import PATHS

    taking_dates = []
    for path in PATHS:
        _code, out = invoke(*path, "--help")
        taking_dates += [(path, line.split()[0]) for line in out.splitlines() if " DATE " in line]
    assert taking_dates == [(args[:2], "--since") for args in DATE_OPTIONS]


def test_help_and_version_still_exit_0() -> None:
    for args in (["--help"], ["--version"], ["credits", "top", "--help"]):
        code, out = invoke(*args)
        assert code == 0, out
        assert "error" not in out


def test_a_usage_error_in_the_real_command(tmp_path: Path) -> None:
    result = mana_credits("ledger", "export", "--format", "xml", env=environment(tmp_path / "home"))
    assert "--format" in assert_one_line(result, "usage")


@pytest.mark.sqlite
@pytest.mark.parametrize(
    ("target", "said"),
    [
        ("missing/dir/x.csv", "folder {tmp}/missing/dir does not exist"),
        (".", "{tmp} is a folder, pass a file name"),
    ],
)
def test_an_export_path_that_cannot_be_written(tmp_path: Path, target: str, said: str) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    seed(url)
    path = tmp_path if target == "." else tmp_path / target
    code, _out, err = invoke_split("ledger", "export", "-o", str(path), "--database-url", url)
    line = one_error_line(code, err, "error: cannot_write: ")
    assert said.format(tmp=tmp_path) in line


@pytest.mark.sqlite
def test_an_export_path_problem_in_the_real_command(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert mana_credits("db", "upgrade", env=environment(home)).returncode == 0
    result = mana_credits("ledger", "export", "-o", str(tmp_path), env=environment(home))
    assert str(tmp_path) in assert_one_line(result, "cannot_write")
    target = tmp_path / "ledger.csv"
    result = mana_credits("ledger", "export", "-o", str(target), env=environment(home))
    assert (result.returncode, result.stdout) == (0, "")
    assert result.stderr == f"exported 0 entries to {target}\n"  # no blank line before it


@pytest.mark.sqlite
def test_an_export_to_a_file_says_so_on_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    seed(url)
    target = tmp_path / "ledger.csv"
    code, out, err = invoke_split("ledger", "export", "-o", str(target), "--database-url", url)
    assert code == 0, err
    assert err == f"exported 2 entries to {target}\n"
    assert out == ""
    assert target.read_text().count("\n") == 3  # CSV (the name says so): header, 2 rows


@pytest.mark.sqlite
def test_an_export_of_an_unknown_user_is_an_error_and_writes_no_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    seed(url)
    target = tmp_path / "x.jsonl"
    code, _out, err = invoke_split(
        "ledger", "export", "--user", "nobody", "-o", str(target), "--database-url", url
    )
    assert "nobody" in one_error_line(code, err, "error: user_not_found: ")
    assert not target.exists()


@pytest.mark.sqlite
@pytest.mark.parametrize(
    ("name", "options", "written"),
    [
        ("ledger.csv", [], "csv"),
        ("LEDGER.CSV", [], "csv"),
        ("ledger.jsonl", [], "jsonl"),
        ("ledger.json", [], "jsonl"),
        ("ledger.txt", [], "jsonl"),
        ("ledger", [], "jsonl"),
        ("ledger.csv", ["--format", "jsonl"], "jsonl"),
        ("ledger.jsonl", ["--format", "csv"], "csv"),
    ],
)
def test_an_export_to_a_file_is_in_the_format_its_name_says(
    tmp_path: Path, name: str, options: list[str], written: str
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    seed(url)
    target = tmp_path / name
    code, _out, err = invoke_split(
        "ledger", "export", "-o", str(target), *options, "--database-url", url
    )
    assert code == 0, err
    lines = target.read_text().splitlines()
    if written == "csv":
        assert lines[0].startswith("id,userId,type,"), lines
        assert len(lines) == 3
    else:
        assert [json.loads(line)["amount"] for line in lines] == [100, -30]


@pytest.mark.sqlite
@pytest.mark.parametrize(("options", "written"), [([], "jsonl"), (["--format", "csv"], "csv")])
def test_an_export_to_stdout_is_json_lines_unless_told(
    tmp_path: Path, options: list[str], written: str
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    seed(url)
    code, out, err = invoke_split("ledger", "export", *options, "--database-url", url)
    assert code == 0, err
    assert out.startswith("id,userId,type,") if written == "csv" else out.startswith("{")


@pytest.mark.parametrize("since", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00+01:00"])
def test_a_since_out_of_range_in_utc_is_one_line(since: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/x.db"
    code, out = invoke("credits", "top", "--by", "spent", "--since", since, "--database-url", url)
    assert code == 1
    assert "is out of range in UTC" in out
    assert "Traceback" not in out
