"""The price list, public like the credit packages: the web app shows what each
operation costs before anyone signs in."""

from __future__ import annotations

import hashlib

from aiohttp import ETag, web
from aiohttp.helpers import ETAG_ANY

from ..jsonout import dumps, json_body
from ..keys import SERVICES
from ..price_models import PriceOut
from . import Route

CACHE_CONTROL = "public, max-age=60"


def etag_of(body: bytes) -> str:
    """A strong validator of the body's bytes: any change to a price changes them."""
    return hashlib.sha256(body).hexdigest()[:32]


def not_modified(tags: tuple[ETag, ...] | None, etag: str) -> bool:
    """Whether `If-None-Match` (parsed by aiohttp: `*` or a list of tags) matches `etag`,
    compared weakly as RFC 9110 (13.1.2) asks of If-None-Match: `W/"x"` matches `"x"`."""
    if tags is None:
        return False
    return any(tag.value in (ETAG_ANY, etag) for tag in tags)


async def prices(request: web.Request) -> web.Response:
    found = await request.app[SERVICES].prices.list()
    body = dumps([PriceOut.of(p).render() for p in found])
    etag = etag_of(body)
    if not_modified(request.if_none_match, etag):
        response = web.Response(status=304)
    else:
        response = json_body(body)
    response.etag = etag
    response.headers["Cache-Control"] = CACHE_CONTROL
    return response


ROUTES = [
    Route(
        "GET",
        "/api/v1/credits/prices",
        prices,
        "The price list: what each operation costs, by app then operation (public;"
        " ETag and If-None-Match, cacheable for 60 s)",
        "none",
        response=PriceOut,
        many=True,
    ),
]
