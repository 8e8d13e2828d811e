"""Service-to-service credits (X-Service-Key): balances, debits, refunds, rewards,
reservations."""

from __future__ import annotations

from aiohttp import web

from mana_credits_core import validation

from ..auth import require_service
from ..body import read_body
from ..charges import operation_of, required
from ..internal_models import GrantBody, GrantOut, InternalBalanceOut
from ..jsonout import json_response
from ..keys import SERVICES
from ..lot_models import LotsOut
from ..models import (
    BalanceOut,
    CommitBody,
    CommitOut,
    DeletedUserOut,
    InternalRefundBody,
    InternalUseCreditsBody,
    RefundedBalanceOut,
    RefundOut,
    RefundReservationOut,
    ReservationIdBody,
    ReserveBody,
    ReserveOut,
    TransactionOut,
    UseCreditsOut,
    UserIdBody,
)
from . import Route
from .credits import ALREADY_PROCESSED, debit, use_answer


async def balance(request: web.Request) -> web.Response:
    require_service(request)
    user_id = validation.identifier(request.match_info["user_id"], "userId")
    found = await request.app[SERVICES].credits.balance_summary(user_id)
    return json_response(InternalBalanceOut.of_summary(found).render())


async def delete_user(request: web.Request) -> web.Response:
    """Account deletion (GDPR art. 17): the auth service calls this once the person
    deleted their account. `?email=` (optional) also finds gifts still addressed to them."""
    require_service(request)
    user_id = validation.identifier(request.match_info["user_id"], "userId")
    email = request.query.get("email")
    done = await request.app[SERVICES].users.delete(user_id, email=email)
    return json_response(DeletedUserOut(deleted_count=done.deleted_count).render())


async def use(request: web.Request) -> web.Response:
    require_service(request)
    body = await read_body(request, InternalUseCreditsBody)
    result = await debit(request, body.user_id, body)
    return json_response(use_answer(result))


async def refund(request: web.Request) -> web.Response:
    require_service(request)
    body = await read_body(request, InternalRefundBody)
    credits = request.app[SERVICES].credits
    result = await credits.refund(
        body.user_id,
        body.amount,
        body.description,
        app_id=body.app_id,
        idempotency_key=body.idempotency_key,
        metadata=body.metadata,
    )
    # A replay reports the balance as it is now; the credit was applied once.
    after = result.balance or await credits.balance(body.user_id)
    answer = RefundOut(
        transaction=TransactionOut.of(result.entry),
        new_balance=RefundedBalanceOut(balance=after.balance),
        message=ALREADY_PROCESSED if result.replayed else None,
    )
    return json_response(answer.render())


async def grant(request: web.Request) -> web.Response:
    require_service(request)
    body = await read_body(request, GrantBody)
    reward = await request.app[SERVICES].credits.reward(
        body.user_id,
        body.amount,
        body.reason,
        body.reference_id,
        description=body.description,
        expires_at=body.expires_at,
        priority=body.priority,
    )
    return json_response(GrantOut.of(reward).render())


async def lots(request: web.Request) -> web.Response:
    require_service(request)
    found = await request.app[SERVICES].lots.open_lots(request.match_info["user_id"])
    return json_response(LotsOut.of(found).render())


async def init(request: web.Request) -> web.Response:
    require_service(request)
    body = await read_body(request, UserIdBody)
    found = await request.app[SERVICES].credits.init_balance(body.user_id)
    return json_response(BalanceOut.of(found).render())


async def reserve(request: web.Request) -> web.Response:
    app_id = require_service(request)
    body = await read_body(request, ReserveBody)
    reservations = request.app[SERVICES].reservations
    operation = operation_of(body.amount, body.operation, body.quantity)
    if operation is not None:
        # The hold's app is the operation's: X-App-Id names the caller, which may call
        # for several apps (a gateway), so it is not held against the operation.
        held = await reservations.reserve_operation(
            body.user_id, operation, body.quantity, reason=body.reason
        )
    else:
        amount, reason = required(body.amount, "amount"), required(body.reason, "reason")
        held = await reservations.reserve(body.user_id, amount, reason, app_id=app_id)
    answer = ReserveOut(reservation_id=held.reservation.id, balance=held.balance)
    return json_response(answer.render())


async def commit(request: web.Request) -> web.Response:
    require_service(request)
    body = await read_body(request, CommitBody)
    entry = await request.app[SERVICES].reservations.commit(
        body.reservation_id, body.description, amount=body.amount, quantity=body.quantity
    )
    # A usage entry's amount is what it took (negative, or 0 when an operation's cost
    # only accrued).
    return json_response(CommitOut(transaction_id=entry.id, charged=-entry.amount).render())


async def refund_reservation(request: web.Request) -> web.Response:
    require_service(request)
    body = await read_body(request, ReservationIdBody)
    balance_after = await request.app[SERVICES].reservations.refund(body.reservation_id)
    return json_response(RefundReservationOut(balance=balance_after).render())


PREFIX = "/api/v1/internal/credits"
ROUTES = [
    Route(
        "GET",
        PREFIX + "/balance/{user_id}",
        balance,
        "A user's balance (created at zero if absent) and their number of ledger entries",
        "service",
        response=InternalBalanceOut,
    ),
    Route(
        "DELETE",
        PREFIX + "/balance/{user_id}",
        delete_user,
        "Delete a user's data: pseudonymize the accounts, forfeit the balance (idempotent)",
        "service",
        response=DeletedUserOut,
    ),
    Route(
        "POST",
        PREFIX + "/use",
        use,
        "Debit a user (idempotent with idempotencyKey)",
        "service",
        body=InternalUseCreditsBody,
        response=UseCreditsOut,
    ),
    Route(
        "POST",
        PREFIX + "/refund",
        refund,
        "Credit a user back",
        "service",
        body=InternalRefundBody,
        response=RefundOut,
    ),
    Route(
        "POST",
        PREFIX + "/grant",
        grant,
        "Reward a user: grant credits once per referenceId (repeats answer the original);"
        " optional expiresAt and priority shape the credits' lot",
        "service",
        body=GrantBody,
        response=GrantOut,
    ),
    Route(
        "GET",
        PREFIX + "/lots/{user_id}",
        lots,
        "A user's credit lots with credits left, in burn order (none for an unknown user)",
        "service",
        response=LotsOut,
    ),
    Route(
        "POST",
        PREFIX + "/init",
        init,
        "Create a zero balance (idempotent)",
        "service",
        body=UserIdBody,
        response=BalanceOut,
    ),
    Route(
        "POST",
        PREFIX + "/reserve",
        reserve,
        "Hold credits for a two-phase debit: an amount, or what an operation of the price"
        " list may cost",
        "service",
        body=ReserveBody,
        response=ReserveOut,
    ),
    Route(
        "POST",
        PREFIX + "/commit",
        commit,
        "Commit a reservation to the ledger (once): all it holds, or less (amount or"
        " quantity), the rest released in the same step",
        "service",
        body=CommitBody,
        response=CommitOut,
    ),
    Route(
        "POST",
        PREFIX + "/refund-reservation",
        refund_reservation,
        "Release a reservation's credits (once)",
        "service",
        body=ReservationIdBody,
        response=RefundReservationOut,
    ),
]
