"""`mana-credits serve`: run the HTTP server."""

from __future__ import annotations

from typing import Annotated

import typer
from aiohttp import web

from mana_credits_adapters.settings import DEV_SERVICE_KEY, Settings
from mana_credits_http import create_app
from mana_credits_http.observability import configure_logging

from .runtime import console, err_console


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 only when asked.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int | None, typer.Option(help="Port (default: $PORT or 3061).")] = None,
) -> None:
    """Start the server. With nothing configured: the embedded default (SQLite, dev identity).

    Examples:
      mana-credits serve
      DATABASE_URL=postgresql://mana@db/mana_credits MANA_AUTH_URL=https://auth.example \\
        MANA_SERVICE_KEY=... mana-credits serve --host 0.0.0.0
    """
    settings = Settings()
    problems = settings.production_problems()
    if problems:
        for problem in problems:
            err_console.print(f"error: config: {problem}", markup=False)
        err_console.print("refusing to start in production mode", markup=False)
        raise typer.Exit(1)
    bind_port = port or settings.port
    configure_logging(settings.log_level)
    if settings.is_embedded:
        banner(settings, host, bind_port)
    web.run_app(
        create_app(settings),
        host=host,
        port=bind_port,
        print=None,
        access_log=None,
        shutdown_timeout=10.0,
    )


def banner(settings: Settings, host: str, port: int) -> None:
    lines = [
        "[bold]mana-credits — embedded default (development)[/bold]",
        f"  listening  http://{host}:{port}",
        f"  store      {settings.effective_database_url}",
    ]
    if settings.dev_identity:
        lines += [
            f"  identity   dev signing key in {settings.home} (JWKS at /api/auth/jwks)",
            "  token      mana-credits dev token --user alice",
        ]
    if DEV_SERVICE_KEY in settings.service_keys:
        lines.append(f"  service    X-Service-Key: {DEV_SERVICE_KEY}")
    lines.append("  not for production: set DATABASE_URL (PostgreSQL) and MANA_AUTH_URL")
    console.print("\n".join(lines))
