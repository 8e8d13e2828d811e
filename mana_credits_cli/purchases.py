"""`mana-credits purchases`: what buyers paid for, and refunds."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from mana_credits_core.ledger import LedgerEntry, TransactionType
from mana_credits_core.purchases import Purchase, PurchaseStatus
from mana_credits_core.services.purchases import RefundResult
from mana_credits_core.validation import MAX_PAGE_SIZE, MAX_REASON

from .ids import full_id
from .runtime import (
    DatabaseUrl,
    JsonOutput,
    Operator,
    WideOutput,
    cell_id,
    console,
    open_services,
    operator_name,
    print_json,
    print_table,
    run,
    single_line,
)

app = typer.Typer(
    help="Credit purchases: list, inspect, refund.", no_args_is_help=True, rich_markup_mode=None
)

PurchaseId = Annotated[
    str,
    typer.Argument(
        metavar="PURCHASE_ID", help="The purchase id, or its first characters as tables show."
    ),
]


def purchase_json(p: Purchase) -> dict[str, object]:
    return {
        "id": p.id,
        "userId": p.user_id,
        "packageId": p.package_id,
        "packageName": (p.metadata or {}).get("packageName"),
        "credits": p.credits,
        "priceEuroCents": p.price_euro_cents,
        "status": p.status.value,
        "clawedBack": p.clawed_back,
        "stripePaymentIntentId": p.stripe_payment_intent_id,
        "stripeCheckoutSessionId": p.stripe_checkout_session_id,
        "stripeChargeId": p.stripe_charge_id,
        "stripeCustomerId": p.stripe_customer_id,
        "createdAt": p.created_at.isoformat(),
        "completedAt": None if p.completed_at is None else p.completed_at.isoformat(),
    }


def euros(cents: int) -> str:
    return f"{cents / 100:.2f} €"


@app.command("list")
def list_purchases(
    user: Annotated[
        str | None, typer.Option("--user", metavar="USER", help="One buyer's only.")
    ] = None,
    status: Annotated[
        PurchaseStatus | None, typer.Option(help="Only purchases in this status.")
    ] = None,
    clawed_back: Annotated[
        bool,
        typer.Option(
            "--clawed-back",
            help="Only purchases whose credits were taken back, in part or in full (refunds).",
        ),
    ] = False,
    limit: Annotated[
        int, typer.Option(help="How many, newest first.", min=1, max=MAX_PAGE_SIZE)
    ] = 50,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
    wide: WideOutput = False,
) -> None:
    """List purchases of every buyer, newest first.

    A refunded purchase keeps its status (completed); --clawed-back finds those whose
    credits were taken back, and the table's "clawed back" column says how many.

    \b
    Examples:
      mana-credits purchases list --user alice --status completed --wide
      mana-credits purchases list --clawed-back
    """
    wanted = None if status is None else status.value

    async def work() -> list[Purchase]:
        async with open_services(database_url, read_only=True) as services:
            return await services.purchases.all_purchases(
                limit, user_id=user, status=wanted, clawed_back=clawed_back
            )

    found = run(work)
    if json:
        print_json([purchase_json(p) for p in found])
        return
    table = Table("id", "user", "credits", "price", "status", "clawed back", "created")
    for p in found:
        table.add_row(
            cell_id(p.id, wide), p.user_id, str(p.credits), euros(p.price_euro_cents),
            p.status.value, str(p.clawed_back) if p.clawed_back else "-",
            p.created_at.strftime("%Y-%m-%d %H:%M"),
        )  # fmt: skip
    print_table(table, wide)
    if not found:
        console.print("no purchases")


@app.command()
def show(
    purchase_id: PurchaseId, database_url: DatabaseUrl = None, json: JsonOutput = False
) -> None:
    """Show one purchase, its Stripe ids and claw-backs.

    Buyer, package, amounts, status, Stripe ids, claw-backs and credits given back.

    \b
    Example:
      mana-credits purchases show 0b6d2c4e-8f1a-4d3b-9c7e-5a2f1e0d9c8b
    """

    async def work() -> tuple[Purchase, list[LedgerEntry]]:
        async with open_services(database_url, read_only=True) as services:
            purchase = await services.purchases.get(
                await full_id(services, "purchase", purchase_id)
            )
            moves = [
                e
                async for e in services.credits.export(user_id=purchase.user_id)
                if e.type in (TransactionType.CLAWBACK, TransactionType.REINSTATEMENT)
                and (e.metadata or {}).get("purchaseId") == purchase.id
            ]
            return purchase, moves

    found, moves = run(work)
    clawbacks = [e for e in moves if e.type == TransactionType.CLAWBACK]
    given_back = [e for e in moves if e.type == TransactionType.REINSTATEMENT]
    shape = purchase_json(found) | {
        "clawbacks": [
            {
                "entryId": e.id,
                "credits": -e.amount,
                "description": e.description,
                "operator": (e.metadata or {}).get("operator"),
                "reason": (e.metadata or {}).get("reason"),
                "refundId": (e.metadata or {}).get("refundId"),
                "createdAt": e.created_at.isoformat(),
            }
            for e in clawbacks
        ],
        "reinstatements": [
            {
                "entryId": e.id,
                "credits": e.amount,
                "description": e.description,
                "createdAt": e.created_at.isoformat(),
            }
            for e in given_back
        ],
    }
    if json:
        print_json(shape)
        return
    shape["priceEuroCents"] = f"{found.price_euro_cents} ({euros(found.price_euro_cents)})"
    del shape["clawbacks"], shape["reinstatements"]
    for key, value in shape.items():
        console.print(
            f"{key:>23}  {'-' if value is None else value}", markup=False, highlight=False
        )
    for e in clawbacks:
        who = (e.metadata or {}).get("operator")
        by = f" by {who}: {(e.metadata or {}).get('reason')}" if who else ""
        console.print(
            f"{'claw-back':>23}  {-e.amount} credits on {e.created_at:%Y-%m-%d %H:%M} UTC{by}",
            markup=False,
            highlight=False,
        )
    for e in given_back:
        console.print(
            f"{'given back':>23}  {e.amount} credits on {e.created_at:%Y-%m-%d %H:%M} UTC",
            markup=False,
            highlight=False,
        )


@app.command()
def refund(
    purchase_id: PurchaseId,
    reason: Annotated[
        str,
        typer.Option(
            "--reason",
            metavar="TEXT",
            help=f"Why: recorded with the claw-back (one line, ≤ {MAX_REASON} characters).",
            callback=single_line(MAX_REASON),
        ),
    ],
    operator: Operator = None,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Refund a completed purchase in full and take its credits back.

    The refund goes through the payment provider; what the balance cannot cover becomes
    debt, collected from the next top-up. Running it again changes nothing.

    \b
    Example:
      mana-credits purchases refund 0b6d2c4e --reason "charged twice, ticket 4711"
    """

    async def work() -> RefundResult:
        who = operator_name(operator)
        async with open_services(database_url) as services:
            found = await full_id(services, "purchase", purchase_id)
            return await services.purchases.refund(found, reason, who)

    result = run(work)
    if json:
        print_json(
            {
                "purchase": purchase_json(result.purchase),
                "refundId": None if result.refund is None else result.refund.id,
                "refundedEuroCents": None if result.refund is None else result.refund.amount,
                "outcome": result.outcome,
            }
        )
        return
    p = result.purchase
    if result.refund is None:
        console.print(f"{p.id}: {result.outcome} ({p.clawed_back} credits taken back earlier)")
        return
    console.print(
        f"{p.id}: refunded {euros(result.refund.amount)} ({result.refund.id}) to {p.user_id}; "
        f"{result.outcome}"
    )


@app.command()
def sync(
    purchase_id: PurchaseId, database_url: DatabaseUrl = None, json: JsonOutput = False
) -> None:
    """Read a purchase's payment from Stripe and settle the purchase.

    What a webhook about the payment would do: completed if paid, failed if declined,
    credits taken back or given back as refunds and disputes now stand. For payments
    whose webhooks were missed. Running it again changes nothing.

    \b
    Example:
      mana-credits purchases sync 0b6d2c4e
    """

    async def work() -> tuple[str, Purchase]:
        async with open_services(database_url) as services:
            found = await full_id(services, "purchase", purchase_id)
            outcome = await services.purchases.reconcile(found)
            return outcome, await services.purchases.get(found)

    outcome, purchase = run(work)
    if json:
        print_json({"purchase": purchase_json(purchase), "outcome": outcome})
        return
    console.print(f"{purchase.id}: {outcome}", markup=False, highlight=False)
