"""Personal credits (bearer JWT): balance, debit, history."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from mana_credits_core import Balance, InsufficientCredits
from mana_credits_core.services import LedgerResult

from ..auth import require_user
from ..body import query_int, read_body
from ..charges import operation_of, required
from ..jsonout import json_body, json_response
from ..keys import METRICS, SERVICES
from ..lot_models import LotsOut
from ..models import BalanceOut, TransactionOut, UseCreditsBody, UseCreditsOut
from . import Route

ALREADY_PROCESSED = "Transaction already processed"


async def balance(request: web.Request) -> web.Response:
    user = await require_user(request)
    found = await request.app[SERVICES].credits.balance(user.user_id)
    return json_response(balance_answer(found))


def balance_answer(found: Balance) -> dict[str, Any]:
    """`BalanceOut.of(found).render()` built directly, as `use_answer` is (every balance
    read answers one; tests/unit/test_render.py keeps the two identical)."""
    return {
        "balance": found.balance,
        "totalEarned": found.total_earned,
        "totalSpent": found.total_spent,
        "accruedMilliCredits": found.accrued_milli,
    }


async def use(request: web.Request) -> web.Response:
    user = await require_user(request)
    body = await read_body(request, UseCreditsBody)
    result = await debit(request, user.user_id, body)
    return json_response(use_answer(result))


async def debit(request: web.Request, user_id: str, body: UseCreditsBody) -> LedgerResult:
    """The debit shared by the user and internal routes, counted in the metrics: `amount`
    credits, or `quantity` units of an `operation` at its price (`charges.operation_of`
    says which, and refuses bodies that mix them)."""
    metrics = request.app[METRICS]
    credits = request.app[SERVICES].credits
    try:
        operation = operation_of(body.amount, body.operation, body.quantity)
        if operation is not None:
            result = await credits.use_operation(
                user_id,
                operation,
                body.quantity,
                description=body.description,
                app_id=body.app_id,
                idempotency_key=body.idempotency_key,
                metadata=body.metadata,
            )
        else:
            result = await credits.use(
                user_id,
                required(body.amount, "amount"),
                required(body.app_id, "appId"),
                required(body.description, "description"),
                idempotency_key=body.idempotency_key,
                metadata=body.metadata,
            )
    except InsufficientCredits:
        metrics.insufficient.inc()
        raise
    if not result.replayed:
        metrics.debits.inc()
    return result


def use_answer(result: LedgerResult) -> dict[str, Any]:
    """`UseCreditsOut` rendered, built directly: every debit answers one, and the model's
    validation and dump cost more than the debit's own checks (tests/unit/test_render.py
    keeps the two identical)."""
    answer: dict[str, Any] = {
        "success": True,
        "transaction": TransactionOut.render_entry(result.entry),
    }
    if result.balance is None:
        answer["message"] = ALREADY_PROCESSED
    else:
        balance = result.balance
        answer["newBalance"] = {
            "balance": balance.balance,
            "totalSpent": balance.total_spent,
            "accruedMilliCredits": balance.accrued_milli,
        }
    return answer


async def transactions(request: web.Request) -> web.Response:
    user = await require_user(request)
    limit = query_int(request, "limit")
    offset = query_int(request, "offset")
    # The store writes the body (on PostgreSQL the database does): no entry is built.
    body = await request.app[SERVICES].credits.transactions_json(
        user.user_id, limit=50 if limit is None else limit, offset=offset or 0
    )
    return json_body(body)


async def lots(request: web.Request) -> web.Response:
    user = await require_user(request)
    found = await request.app[SERVICES].lots.open_lots(user.user_id)
    return json_response(LotsOut.of(found).render())


ROUTES = [
    Route("GET", "/api/v1/credits/balance", balance, "Your balance", "user", response=BalanceOut),
    Route(
        "POST",
        "/api/v1/credits/use",
        use,
        "Use credits: an amount, or an operation of the price list (idempotent with"
        " idempotencyKey)",
        "user",
        body=UseCreditsBody,
        response=UseCreditsOut,
    ),
    Route(
        "GET",
        "/api/v1/credits/transactions",
        transactions,
        "Your ledger, newest first (?limit≤100&offset)",
        "user",
        response=TransactionOut,
        many=True,
    ),
    Route(
        "GET",
        "/api/v1/credits/lots",
        lots,
        "Your credit lots with credits left, in burn order (the next debit takes the first)",
        "user",
        response=LotsOut,
    ),
]
