"""`mana-credits serve`: run the HTTP server."""

from __future__ import annotations

from typing import Annotated

import typer
from aiohttp import web

from mana_credits_adapters.settings import Settings
from mana_credits_http import create_app

from .runtime import console


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 only when asked.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int | None, typer.Option(help="Port (default: $PORT or 3061).")] = None,
) -> None:
    """Start the server (with nothing configured: the embedded SQLite default).

    Example: mana-credits serve --port 3061
    """
    settings = Settings()
    bind_port = port or settings.port
    console.print(
        f"mana-credits on http://{host}:{bind_port}  store: {settings.effective_database_url}"
    )
    web.run_app(create_app(settings), host=host, port=bind_port, print=None)
