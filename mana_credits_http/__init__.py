"""mana-credits HTTP server (aiohttp)."""

from .app import create_app as create_app

__all__ = ["create_app"]
