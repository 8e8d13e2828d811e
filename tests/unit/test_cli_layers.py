"""The CLI stays thin: apart from `db` (schema migrations), no module of it reaches
SQL; reads and lookups go through the core's use cases and the store ports."""

from __future__ import annotations

import ast
from pathlib import Path

import mana_credits_cli

CLI = Path(mana_credits_cli.__file__).parent
# Migrations are SQL by nature: `mana-credits db` and the readers' schema check.
ALLOWED = {"db.py"}
FORBIDDEN = ("sqlalchemy", "alembic", "psycopg", "aiosqlite", "mana_credits_adapters.sql")


def imported(source: str) -> set[str]:
    """Every module a source imports, at the top or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def forbidden(source: str) -> list[str]:
    return sorted(
        name
        for name in imported(source)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)
    )


def test_only_the_migrations_module_of_the_cli_imports_sql() -> None:
    modules = sorted(CLI.glob("*.py"))
    assert len(modules) > 10  # the package was found, with its commands
    offenders = {
        path.name: found
        for path in modules
        if path.name not in ALLOWED and (found := forbidden(path.read_text()))
    }
    assert offenders == {}


def test_the_scan_would_notice_sql_in_a_command() -> None:
    source = (
        "from mana_credits_adapters import sql\n"
        "async def f():\n"
        "    import sqlalchemy as sa\n"
        "    from mana_credits_adapters.sql.store import SqlStore\n"
    )
    assert forbidden(source) == [
        "mana_credits_adapters.sql",
        "mana_credits_adapters.sql.store",
        "mana_credits_adapters.sql.store.SqlStore",
        "sqlalchemy",
    ]
    assert forbidden("from mana_credits_adapters.bootstrap import bootstrap\n") == []
    assert "db.py" in {p.name for p in CLI.glob("*.py")}  # the allowance names a real file
