"""Gift codes: public info, create, redeem, cancel, lists, and auto-redeem at sign-up."""

from __future__ import annotations

from aiohttp import web

from mana_credits_adapters.networks import parse_networks
from mana_credits_core.errors import GiftNotFound
from mana_credits_core.ports import Principal

from ..auth import require_service, require_user, signed_in
from ..body import read_body
from ..gift_models import (
    CancelGiftOut,
    CreateGiftBody,
    GiftCodeOut,
    GiftInfoOut,
    GiftRedemptionOut,
    RedeemBody,
    RedeemOut,
    RedeemPendingBody,
    RedeemPendingOut,
)
from ..jsonout import json_response
from ..keys import GIFT_LIMITER, SERVICES, SETTINGS
from ..ratelimit import client_key
from . import Route


def client_of(request: web.Request) -> str:
    """Whom the failed-lookup limit counts this request against: its peer address, or
    behind a trusted proxy (MANA_CREDITS_TRUSTED_PROXIES) the client it forwards for."""
    proxies = parse_networks(request.app[SETTINGS].trusted_proxies)
    return client_key(request.remote, request.headers.getall("X-Forwarded-For", ()), proxies)


def guesser_of(request: web.Request, user: Principal | None) -> str:
    """Whom a failed gift lookup counts against: a signed-in user by their id (many people
    share one address behind a NAT or a proxy; one of them guessing must not lock out the
    others), anyone else by `client_of`. The space keeps the two apart: no address has one.
    """
    return f"user {user.user_id}" if user is not None else client_of(request)


async def info(request: web.Request) -> web.Response:
    limiter = request.app[GIFT_LIMITER]
    client = guesser_of(request, await signed_in(request))
    limiter.check(client)
    try:
        gift = await request.app[SERVICES].gifts.info(request.match_info["code"])
    except GiftNotFound:
        limiter.failed(client)  # only misses count: they are what guessing looks like
        raise
    return json_response(GiftInfoOut.of(gift).render())


async def create(request: web.Request) -> web.Response:
    user = await require_user(request)
    body = await read_body(request, CreateGiftBody)
    credits, credits_field = body.amount()
    gift = await request.app[SERVICES].gifts.create(
        user,
        credits,
        type=body.type,
        target_email=body.target_email,
        message=body.message,
        expiration_days=body.expiration_days,
        expires_at=body.expiry(),
        source_app_id=body.source_app_id,
        credits_field=credits_field,
    )
    answer = GiftCodeOut.of(gift, request.app[SETTINGS].base_url)
    return json_response(answer.render(), status=201)


async def created(request: web.Request) -> web.Response:
    user = await require_user(request)
    gifts = await request.app[SERVICES].gifts.created(user.user_id)
    base_url = request.app[SETTINGS].base_url
    return json_response([GiftCodeOut.of(g, base_url).render() for g in gifts])


async def received(request: web.Request) -> web.Response:
    user = await require_user(request)
    redemptions = await request.app[SERVICES].gifts.received(user.user_id)
    return json_response([GiftRedemptionOut.of(r).render() for r in redemptions])


async def redeem(request: web.Request) -> web.Response:
    user = await require_user(request)
    limiter, client = request.app[GIFT_LIMITER], guesser_of(request, user)
    limiter.check(client)
    body = await read_body(request, RedeemBody) if request.body_exists else RedeemBody()
    try:
        done = await request.app[SERVICES].gifts.redeem(
            user, request.match_info["code"], source_app_id=body.source_app_id
        )
    except GiftNotFound:
        limiter.failed(client)
        raise
    answer = RedeemOut(
        credits_received=done.credits_received,
        credits=done.credits_received,
        message=done.message,
        creator_name=done.creator_name,
        new_balance=done.new_balance,
    )
    return json_response(answer.render())


async def cancel(request: web.Request) -> web.Response:
    user = await require_user(request)
    refunded = await request.app[SERVICES].gifts.cancel(user.user_id, request.match_info["gift_id"])
    return json_response(CancelGiftOut(refunded_credits=refunded).render())


async def redeem_pending(request: web.Request) -> web.Response:
    require_service(request)
    body = await read_body(request, RedeemPendingBody)
    done = await request.app[SERVICES].gifts.redeem_pending(body.user_id, body.email)
    answer = RedeemPendingOut(redeemed=done.redeemed, total_credits=done.total_credits)
    return json_response(answer.render())


ROUTES = [
    # The fixed paths come before `{code}`, which would otherwise match them.
    Route(
        "GET",
        "/api/v1/gifts/me/created",
        created,
        "Gifts you created, newest first",
        "user",
        response=GiftCodeOut,
        many=True,
    ),
    Route(
        "GET",
        "/api/v1/gifts/me/received",
        received,
        "Gifts you redeemed, newest first",
        "user",
        response=GiftRedemptionOut,
        many=True,
    ),
    Route(
        "GET",
        "/api/v1/gifts/{code}",
        info,
        "Public gift information (case-insensitive code; misses are rate-limited)",
        "none",
        response=GiftInfoOut,
    ),
    Route(
        "POST",
        "/api/v1/gifts",
        create,
        "Create a gift code; your credits move into it",
        "user",
        body=CreateGiftBody,
        response=GiftCodeOut,
        status=201,
    ),
    Route(
        "POST",
        "/api/v1/gifts/{code}/redeem",
        redeem,
        "Redeem a gift code",
        "user",
        body=RedeemBody,
        response=RedeemOut,
    ),
    Route(
        "DELETE",
        "/api/v1/gifts/{gift_id}",
        cancel,
        "Cancel your active gift; its credits come back",
        "user",
        response=CancelGiftOut,
    ),
    Route(
        "POST",
        "/api/v1/internal/gifts/redeem-pending",
        redeem_pending,
        "Redeem every personalized gift for a newly registered e-mail",
        "service",
        body=RedeemPendingBody,
        response=RedeemPendingOut,
    ),
]
