"""Cloud Sync billing: the user's subscription, admin gifts, and the internal billing run."""

from __future__ import annotations

from aiohttp import web

from mana_credits_core import validation

from ..auth import require_admin, require_service, require_user
from ..body import read_body
from ..jsonout import json_response
from ..keys import SERVICES
from ..models import iso
from ..sync_models import (
    ActivatedOut,
    BillingRunOut,
    ChangeIntervalBody,
    IntervalBody,
    IntervalChangedOut,
    SuccessOut,
    SyncGiftOut,
    SyncStatusOut,
)
from . import Route


async def status(request: web.Request) -> web.Response:
    user = await require_user(request)
    found = await request.app[SERVICES].sync.status(user.user_id)
    return json_response(SyncStatusOut.of(found).render())


async def activate(request: web.Request) -> web.Response:
    user = await require_user(request)
    body = await read_body(request, IntervalBody) if request.body_exists else IntervalBody()
    done = await request.app[SERVICES].sync.activate(user.user_id, body.interval)
    sub = done.subscription
    answer = ActivatedOut(
        interval=sub.billed_interval,
        next_charge_at=None if sub.next_charge_at is None else iso(sub.next_charge_at),
        amount_charged=done.amount_charged,
    )
    return json_response(answer.render())


async def deactivate(request: web.Request) -> web.Response:
    user = await require_user(request)
    await request.app[SERVICES].sync.deactivate(user.user_id)
    return json_response(SuccessOut().render())


async def change_interval(request: web.Request) -> web.Response:
    user = await require_user(request)
    body = await read_body(request, ChangeIntervalBody)
    sub = await request.app[SERVICES].sync.change_interval(user.user_id, body.interval)
    answer = IntervalChangedOut(
        interval=sub.billed_interval,
        # As the old service answered: the new interval's price per period, which the
        # next charge takes (nothing is charged now).
        amount_charged=await request.app[SERVICES].sync.period_price(sub.billed_interval),
        effective_at=None if sub.next_charge_at is None else iso(sub.next_charge_at),
    )
    return json_response(answer.render())


def target(request: web.Request) -> str:
    return validation.identifier(request.match_info["user_id"], "userId")


async def admin_status(request: web.Request) -> web.Response:
    await require_admin(request)
    found = await request.app[SERVICES].sync.status(target(request))
    return json_response(SyncStatusOut.of(found).render())


async def admin_gift(request: web.Request) -> web.Response:
    admin = await require_admin(request)
    sub = await request.app[SERVICES].sync.gift(target(request), admin.user_id)
    answer = SyncGiftOut(user_id=sub.user_id, gifted=True, active=True)
    return json_response(answer.render())


async def admin_revoke(request: web.Request) -> web.Response:
    await require_admin(request)
    sub = await request.app[SERVICES].sync.revoke_gift(target(request))
    answer = SyncGiftOut(user_id=sub.user_id, gifted=False, active=False)
    return json_response(answer.render())


async def internal_status(request: web.Request) -> web.Response:
    require_service(request)
    found = await request.app[SERVICES].sync.status(target(request))
    return json_response(SyncStatusOut.of(found).render())


async def charge_recurring(request: web.Request) -> web.Response:
    require_service(request)
    report = await request.app[SERVICES].sync.charge_due()
    answer = BillingRunOut(
        charged=report.charged, paused=report.paused, errors=report.errors, total=report.total
    )
    return json_response(answer.render())


ROUTES = [
    Route("GET", "/api/v1/sync/status", status, "Your Cloud Sync status", "user",
          response=SyncStatusOut),
    Route("POST", "/api/v1/sync/activate", activate,
          "Activate Cloud Sync; charges the first period now", "user",
          body=IntervalBody, response=ActivatedOut),
    Route("POST", "/api/v1/sync/deactivate", deactivate, "Stop Cloud Sync charges", "user",
          response=SuccessOut),
    Route("POST", "/api/v1/sync/change-interval", change_interval,
          "Change the billing interval from the next charge on", "user",
          body=ChangeIntervalBody, response=IntervalChangedOut),
    Route("GET", "/api/v1/admin/sync/{user_id}", admin_status, "A user's Cloud Sync status",
          "admin", response=SyncStatusOut),
    Route("POST", "/api/v1/admin/sync/{user_id}/gift", admin_gift,
          "Gift Cloud Sync (never charged, never paused; idempotent)", "admin",
          response=SyncGiftOut),
    Route("DELETE", "/api/v1/admin/sync/{user_id}/gift", admin_revoke,
          "Revoke a Cloud Sync gift", "admin", response=SyncGiftOut),
    Route("GET", "/api/v1/internal/sync/status/{user_id}", internal_status,
          "A user's Cloud Sync status", "service", response=SyncStatusOut),
    Route("POST", "/api/v1/internal/sync/charge-recurring", charge_recurring,
          "Run the Cloud Sync billing now", "service", response=BillingRunOut),
]  # fmt: skip
