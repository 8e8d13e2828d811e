"""mana-credits HTTP server (aiohttp)."""

from .app import ROUTES as ROUTES
from .app import create_app as create_app

__all__ = ["ROUTES", "create_app"]
