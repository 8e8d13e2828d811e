"""Checks: `nox` runs lint, typecheck and tests (memory, SQLite and PostgreSQL).

`./run check [ARGS]` is `nox ARGS` from a venv in the checkout (see the README). Every
test is bounded by pytest-timeout (pyproject.toml); the longer sessions raise the bound.
"""

from __future__ import annotations

import os
import shutil

import nox

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

LONG_TEST = 3600  # seconds one test of `stateful` or `faults` may take (many examples)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff lint and format check."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the four packages and the tests."""
    session.install("-e", ".[dev]")
    session.run("mypy")


# Test processes of `nox -s tests` (pytest-xdist); `-n N` among the arguments overrides.
# Most tests wait (on PostgreSQL, on a CLI or server process, on a browser), so on two
# cores three processes finish first: the whole suite in under half the time of one.
TEST_WORKERS = 3


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite on every store; PostgreSQL is started by the session itself."""
    install_compiled(session)
    session.run("pytest", "-n", str(TEST_WORKERS), *session.posargs)


PACKAGES = ("mana_credits_core", "mana_credits_adapters", "mana_credits_http", "mana_credits_cli")


def install_compiled(session: nox.Session, extras: str = "test") -> None:
    """Install the project and its test tools with their bytecode compiled up front.

    Many tests start the CLI or the server as a process of its own. Without a bytecode
    cache (uv writes none by default, and PYTHONDONTWRITEBYTECODE stops Python writing
    one) every such process compiles SQLAlchemy, aiohttp and the rest from source again:
    about 2 s each instead of under 1 s.
    """
    session.install("-e", f".[{extras}]", env={"UV_COMPILE_BYTECODE": "1"})
    session.run("python", "-m", "compileall", "-q", *PACKAGES, "tests", silent=True)


@nox.session
def stateful(session: nox.Session) -> None:
    """The model-based test and the API fuzzing with many random examples (CI: a fixed few)."""
    install_compiled(session)
    examples = session.posargs[0] if session.posargs else "500"
    session.env["MANA_CREDITS_STATEFUL_EXAMPLES"] = examples
    session.env["MANA_CREDITS_FUZZ_EXAMPLES"] = examples
    session.env["MANA_CREDITS_STATEFUL_RANDOM"] = "1"
    session.run(
        "pytest",
        f"--timeout={LONG_TEST}",
        "tests/reliability/test_stateful.py",
        "tests/reliability/test_api_fuzz.py",
    )


@nox.session
def faults(session: nox.Session) -> None:
    """The fault tests, the SIGKILL storm with more rounds and debits than CI runs."""
    install_compiled(session)
    session.env["MANA_CREDITS_FAULT_ROUNDS"] = "10"
    session.env["MANA_CREDITS_FAULT_DEBITS"] = "3000"
    session.run(
        "pytest",
        f"--timeout={LONG_TEST}",
        "tests/reliability/test_faults.py",
        "tests/reliability/test_database_faults.py",
        *session.posargs,
    )


@nox.session
def bench(session: nox.Session) -> None:
    """The debit path against pgbench, the server under wrk, reads, billing: a table."""
    if shutil.which("wrk") is None and shutil.which("apt-get") and os.geteuid() == 0:
        session.run("apt-get", "install", "-y", "-q", "wrk", external=True)
    install_compiled(session, "test,bench")  # py-spy for BENCH_PROFILE
    session.run("python", "-m", "bench", *session.posargs)
