"""The hexagon holds: the core imports nothing but the standard library."""

from __future__ import annotations

import sys

from ..processes import run

FORBIDDEN = ("sqlalchemy", "aiohttp", "stripe", "typer", "jwt", "psycopg", "pydantic", "alembic")


def test_core_imports_only_the_standard_library() -> None:
    probe = (
        "import sys, mana_credits_core, mana_credits_core.services, mana_credits_core.ports;"
        f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))"
    )
    loaded = run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()
    assert loaded == ""


def test_the_probe_would_notice_a_forbidden_import() -> None:
    probe = (
        "import sys, mana_credits_adapters.sql.tables;"
        f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))"
    )
    loaded = run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()
    assert "sqlalchemy" in loaded.split(",")
