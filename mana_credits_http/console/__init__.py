"""`/console`: the operator console, an HTML front end on the same use cases as the API
and the CLI (docs/console.md).

A sub-application of its own: its session middleware and templates touch no API route.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp_session import session_middleware

from mana_credits_adapters.console_key import console_key
from mana_credits_adapters.settings import Settings

from ..routes import add_route
from . import actions, catalogue, overview, pages, prices, signin
from .session import ConsoleCookies

HERE = Path(__file__).parent


def path_segment(value: object) -> str:
    """`value` percent-encoded whole, `/` included (Jinja's own `urlencode` keeps `/`,
    so a user id holding one would point at another route)."""
    return quote(str(value), safe="")


def console_app(settings: Settings) -> web.Application:
    """The console, to mount at `/console`. Reads (or creates) its session key now:
    raises what `console_key` raises."""
    key = console_key(settings.console_secret, settings.home)
    https = settings.base_url.startswith("https://")
    app = web.Application(middlewares=[session_middleware(ConsoleCookies(key, https=https))])
    templates = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
    )
    templates.filters["urlencode"] = path_segment
    for method, path, handler in [
        *signin.ROUTES,
        *overview.ROUTES,
        *pages.ROUTES,
        *actions.ROUTES,
        *catalogue.ROUTES,
        *prices.ROUTES,
    ]:
        add_route(app, method, path, handler)
    app.router.add_static("/static", HERE / "static", append_version=False)
    return app
