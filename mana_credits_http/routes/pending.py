"""Routes of the contract whose features are not built yet: 501, never a fake success."""

from __future__ import annotations

from aiohttp import web

from ..auth import require_admin, require_service, require_user
from ..errors import envelope
from ..keys import Handler
from . import Auth, Route


def not_implemented(auth: Auth) -> Handler:
    """A 501 that still checks the route family's credential, as the real route will."""

    async def handler(request: web.Request) -> web.Response:
        if auth == "user":
            await require_user(request)
        elif auth == "admin":
            await require_admin(request)
        elif auth == "service":
            require_service(request)
        return envelope(501, "Not implemented yet", "not_implemented")

    return handler


PENDING: list[tuple[str, str, str, Auth]] = [
    ("GET", "/api/v1/sync/status", "Your Cloud Sync status", "user"),
    ("POST", "/api/v1/sync/activate", "Activate Cloud Sync", "user"),
    ("POST", "/api/v1/sync/deactivate", "Deactivate Cloud Sync", "user"),
    ("POST", "/api/v1/sync/change-interval", "Change the billing interval", "user"),
    ("GET", "/api/v1/admin/sync/{user_id}", "A user's Cloud Sync status", "admin"),
    ("POST", "/api/v1/admin/sync/{user_id}/gift", "Gift Cloud Sync", "admin"),
    ("DELETE", "/api/v1/admin/sync/{user_id}/gift", "Revoke a Cloud Sync gift", "admin"),
    ("GET", "/api/v1/internal/sync/status/{user_id}", "A user's Cloud Sync status", "service"),
    ("POST", "/api/v1/internal/sync/charge-recurring", "Run Cloud Sync billing", "service"),
]

ROUTES = [
    Route(method, path, not_implemented(auth), f"{summary} (not implemented yet: 501)", auth)
    for method, path, summary, auth in PENDING
]
