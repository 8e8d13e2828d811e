"""`mana-credits credits`: balances, history, rankings and ledger corrections."""

from __future__ import annotations

import enum
import re
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from mana_credits_core import Balance, InvalidInput, LedgerEntry, LedgerResult
from mana_credits_core.errors import BalanceNotFound, InsufficientCredits
from mana_credits_core.pricing import PRICING_KEY, format_credits
from mana_credits_core.services.credits import ADMIN_APP
from mana_credits_core.validation import MAX_CREDITS, MAX_DESCRIPTION, MAX_PAGE_SIZE

from . import lots, rewards
from .runtime import (
    CHECK_USER_ID,
    DatabaseUrl,
    JsonOutput,
    NewUser,
    Operator,
    UserArg,
    console,
    creditable,
    date_option,
    err_console,
    known_user,
    open_services,
    operator_name,
    print_json,
    print_table,
    run,
    single_line,
)

if TYPE_CHECKING:
    from mana_credits_core.services import Services

app = typer.Typer(
    help="Read balances, rank users and correct the ledger.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def balance_json(found: Balance) -> dict[str, object]:
    """A balance for `--json`: credits, and `accruedMilliCredits` (0..999) that priced
    operations cost beyond the whole credits they charged, due with the next one."""
    return {
        "userId": found.user_id,
        "balance": found.balance,
        "totalEarned": found.total_earned,
        "totalSpent": found.total_spent,
        "accruedMilliCredits": found.accrued_milli,
    }


@app.command()
def balance(user: UserArg, database_url: DatabaseUrl = None, json: JsonOutput = False) -> None:
    """Show USER's balance.

    A user never seen is an error (nothing is created).

    \b
    Example:
      mana-credits credits balance alice --json
    """

    async def work() -> Balance:
        async with open_services(database_url, read_only=True) as services:
            return await known_user(services, user)

    found = run(work)
    if json:
        print_json(balance_json(found))
    else:
        console.print(
            f"{found.user_id}: [bold]{found.balance}[/bold] credits "
            f"(earned {found.total_earned}, spent {found.total_spent}: app usage, gift codes"
            " and claw-backs)"
        )
        if found.accrued_milli:
            console.print(
                f"accrued {found.accrued_milli} milli-credits"
                f" ({format_credits(found.accrued_milli)} credits) of priced operations,"
                " charged with the next one",
                highlight=False,
            )


@app.command()
def history(
    user: UserArg,
    limit: Annotated[
        int, typer.Option(help="How many entries, newest first.", min=1, max=MAX_PAGE_SIZE)
    ] = 50,
    since: Annotated[
        datetime | None, date_option("Only entries from this date/time on (UTC).")
    ] = None,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """List USER's ledger entries, newest first.

    \b
    Example:
      mana-credits credits history alice --limit 10 --since 2026-11-01
    """

    async def work() -> list[LedgerEntry]:
        async with open_services(database_url, read_only=True) as services:
            await known_user(services, user)
            entries = await services.credits.transactions(user, limit=limit)
        start = utc(since)
        return [e for e in entries if start is None or e.created_at >= start]

    entries = run(work)
    if json:
        print_json([entry_json(e) for e in entries])
        return
    table = Table("when", "type", "amount", "after", "app", "description")
    for e in entries:
        table.add_row(
            e.created_at.isoformat(timespec="seconds"),
            # An entry that moved nothing (pending, failed, cancelled) says so.
            e.type.value if e.status == "completed" else f"{e.type.value} ({e.status.value})",
            f"{e.amount:+d}",
            str(e.balance_after),
            e.app_id,
            described(e),
        )
    print_table(table, shortened=False)


def described(entry: LedgerEntry) -> str:
    """An entry's description; for a debit by operation also what it priced, since its
    amount (often 0: the cost accrued) does not say: "Chat (local model)
    (ai_chat_ollama x1, cost 0.1)"."""
    record = (entry.metadata or {}).get(PRICING_KEY)
    if not isinstance(record, dict) or not isinstance(record.get("costMilli"), int):
        return entry.description
    cost = format_credits(record["costMilli"])
    return f"{entry.description} ({record.get('operation')} x{record.get('quantity')}, cost {cost})"


class RankBy(enum.StrEnum):
    BALANCE = "balance"
    SPENT = "spent"


@app.command()
def top(
    by: Annotated[
        RankBy,
        typer.Option(
            "--by", help="balance: who holds most; spent: whom apps charged most (usage only)."
        ),
    ] = RankBy.BALANCE,
    since: Annotated[
        datetime | None, date_option("With --by spent: from this day on (UTC); default: ever.")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many users.", min=1, max=MAX_PAGE_SIZE)] = 10,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Rank users by the credits they hold, or by what apps charged them.

    Spending is what apps charged (usage): credits held for gift codes and claw-backs
    are not spending.

    \b
    Examples:
      mana-credits credits top
      mana-credits credits top --by spent --since 2026-11-01 --limit 20 --json
    """
    if since is not None and by == RankBy.BALANCE:
        raise_usage("--since goes with --by spent (balances have no period)")
    start = utc(since)  # a time with an offset counts from its day in UTC
    day: date | None = None if start is None else start.date()

    async def work() -> list[tuple[str, int]]:
        async with open_services(database_url, read_only=True) as services:
            if by == RankBy.SPENT:
                return await services.credits.top_spenders(day, limit)
            return [(b.user_id, b.balance) for b in await services.credits.top_balances(limit)]

    ranked = run(work)
    if json:
        print_json([{"userId": user, by.value: credits} for user, credits in ranked])
        return
    # "used by apps", not "spent": `credits balance` says spent for every debit (gift
    # holds and claw-backs too), this ranking counts app usage only.
    used = f"used by apps since {day}" if day else "used by apps"
    title = used if by == RankBy.SPENT else "balance"
    table = Table("#", "user", title)
    for rank, (user, credits) in enumerate(ranked, 1):
        table.add_row(str(rank), user, str(credits))
    print_table(table, shortened=False)
    if not ranked:
        console.print("no users yet" if by == RankBy.BALANCE else "no app usage in this period")


def raise_usage(message: str) -> None:
    err_console.print(f"error: invalid_input: {message}", markup=False, highlight=False)
    raise typer.Exit(1)


AMOUNT_SETTINGS = {"ignore_unknown_options": True}  # "-5" reaches the rules as an amount
Amount = Annotated[
    str, typer.Argument(metavar="AMOUNT", help="Credits (a whole number, 1..100000000).")
]


def amount_of(text: str) -> int:
    """Parsed here, not by the option parser, so bad amounts exit 1 like other errors;
    the range (1..MAX_CREDITS) is the core's rule."""
    # ASCII digits only: `int()` would take " 5" and full-width digits as 5.
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        raise InvalidInput(
            "amount",
            f"AMOUNT must be a whole number of credits in ASCII digits (e.g. 500), not {text!r}",
        )
    # Length first: a 4300-digit number is not worth converting.
    if len(text.lstrip("+-").lstrip("0")) > len(str(MAX_CREDITS)) or int(text) > MAX_CREDITS:
        raise InvalidInput("amount", f"AMOUNT must be at most {MAX_CREDITS}")
    value = int(text)
    if value < 1:
        raise InvalidInput("amount", f"AMOUNT must be at least 1, not {text}")
    return value


Reason = Annotated[
    str,
    typer.Option(
        "--reason",
        metavar="TEXT",
        help=f"Why: recorded on the ledger entry (one line, ≤ {MAX_DESCRIPTION} characters).",
        callback=single_line(MAX_DESCRIPTION),
    ),
]
# The reason is stored as the entry's description.
AS_REASON = {"description": "--reason"}
Key = Annotated[
    str | None,
    typer.Option("--idempotency-key", metavar="KEY", help="Makes a retry of this command a no-op."),
]


async def applied(services: Services, result: LedgerResult) -> tuple[LedgerResult, int]:
    """The result with the balance as it is now (a replay's entry holds the old one)."""
    if result.balance is not None:
        return result, result.balance.balance
    return result, (await known_user(services, result.entry.user_id)).balance


def show_result(outcome: tuple[LedgerResult, int], json: bool) -> None:
    result, now = outcome
    if json:
        print_json(entry_json(result.entry) | {"replayed": result.replayed, "balance": now})
        return
    e = result.entry
    if result.replayed:
        console.print(
            f"{e.user_id}: {e.type.value} {e.amount:+d} was already applied, nothing changed; "
            f"balance now {now}"
        )
    else:
        console.print(f"{e.user_id}: {e.type.value} {e.amount:+d}, balance {now}")


@app.command(context_settings=AMOUNT_SETTINGS)
def grant(
    user: UserArg,
    amount: Amount,
    reason: Reason,
    operator: Operator = None,
    idempotency_key: Key = None,
    expires_in: lots.ExpiresIn = None,
    priority: lots.Priority = None,
    new_user: NewUser = False,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Give USER credits (an audited `grant` entry).

    The entry names the operator and the reason. The credits may expire and be spent
    before or after others (`credits lots` shows them).

    \b
    Example:
      mana-credits credits grant alice 500 --reason "support ticket 4711" --expires-in 30d
    """

    async def work() -> tuple[LedgerResult, int]:
        who = operator_name(operator)
        expiry = lots.expires_at(expires_in)
        async with open_services(database_url) as services:
            await creditable(services, user, new_user)
            result = await services.credits.grant(
                user,
                amount_of(amount),
                reason,
                who,
                idempotency_key=idempotency_key,
                expires_at=expiry,
                priority=priority,
            )
            return await applied(services, result)

    show_result(run(work, AS_REASON | lots.LOT_FIELDS), json)


@app.command(context_settings=AMOUNT_SETTINGS)
def refund(
    user: UserArg,
    amount: Amount,
    reason: Reason,
    operator: Operator = None,
    idempotency_key: Key = None,
    new_user: NewUser = False,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Credit USER back (a `refund` entry), e.g. for a failed paid operation.

    \b
    Example:
      mana-credits credits refund alice 25 --reason "image job failed"
    """

    async def work() -> tuple[LedgerResult, int]:
        who = operator_name(operator)
        async with open_services(database_url) as services:
            await creditable(services, user, new_user)
            result = await services.credits.refund(
                user,
                amount_of(amount),
                reason,
                app_id=ADMIN_APP,
                idempotency_key=idempotency_key,
                metadata={"operator": who, "reason": reason},
            )
            return await applied(services, result)

    show_result(run(work, AS_REASON), json)


@app.command(context_settings=AMOUNT_SETTINGS)
def debit(
    user: UserArg,
    amount: Amount,
    reason: Reason,
    app_id: Annotated[
        str, typer.Option("--app", metavar="APP", help="The app to book it on.")
    ] = ADMIN_APP,
    operator: Operator = None,
    idempotency_key: Key = None,
    database_url: DatabaseUrl = None,
    json: JsonOutput = False,
) -> None:
    """Take credits from USER as a correction.

    Under the same rules as the API: never below zero.

    \b
    Example:
      mana-credits credits debit alice 10 --reason "duplicate grant"
    """

    async def work() -> tuple[LedgerResult, int]:
        who = operator_name(operator)
        async with open_services(database_url) as services:
            try:
                result = await services.credits.use(
                    user,
                    amount_of(amount),
                    app_id,
                    reason,
                    idempotency_key=idempotency_key,
                    metadata={"operator": who, "reason": reason},
                )
            except InsufficientCredits as exc:
                raise InsufficientCredits(
                    exc.required,
                    exc.available,
                    f"{user} has {exc.available} spendable credits, {exc.required} required; "
                    "debit less or grant first",
                ) from exc
            except BalanceNotFound as exc:  # the core's words name no one
                raise BalanceNotFound(f"no such user {user}, {CHECK_USER_ID}", userId=user) from exc
            return await applied(services, result)

    show_result(run(work, AS_REASON), json)


def utc(moment: datetime | None) -> datetime | None:
    """Dates typed on the command line are UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def entry_json(e: LedgerEntry) -> dict[str, object]:
    return {
        "id": e.id,
        "userId": e.user_id,
        "type": e.type.value,
        "status": e.status.value,
        "amount": e.amount,
        "balanceBefore": e.balance_before,
        "balanceAfter": e.balance_after,
        "appId": e.app_id,
        "description": e.description,
        "metadata": e.metadata,
        "idempotencyKey": e.idempotency_key,
        "createdAt": e.created_at.isoformat(),
        "completedAt": None if e.completed_at is None else e.completed_at.isoformat(),
    }


app.command(context_settings=AMOUNT_SETTINGS)(rewards.reward)
app.command()(lots.lots)
app.command()(lots.expire)
