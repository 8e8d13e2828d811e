"""What an import of an old database must produce, read from that old database.

Expectations come from the old rows themselves (and the cut-over guide's rules), never
from numbers typed into the tests, so a change to the data set cannot make them stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from mana_credits_core.ledger import LedgerEntry
from mana_credits_core.rewards import reward_key

from .fixture import held_credits, ledger_sums, old_balances, query

ENTRY_FIELDS = (
    "id",
    "user_id",
    "type",
    "status",
    "amount",
    "balance_before",
    "balance_after",
    "app_id",
    "description",
    "metadata",
    "idempotency_key",
    "created_at",
    "completed_at",
)
OLD_GIFT_VALIDITY = timedelta(days=90)  # the old service's default, docs/cutover.md


@dataclass(frozen=True)
class Opening:
    """A user's balances row here: credits, lifetime totals, debt."""

    balance: int
    total_earned: int
    total_spent: int
    debt: int


@dataclass(frozen=True)
class Correction:
    """A user's adjustment: its amount and its corrections of the totals."""

    difference: int
    total_earned: int
    total_spent: int


def fields(entry: LedgerEntry) -> dict[str, Any]:
    """A ledger entry here, as the old row's fields."""
    values = {name: getattr(entry, name) for name in ENTRY_FIELDS}
    return values | {"type": entry.type.value, "status": entry.status.value}


def old_entries(url: str) -> dict[str, dict[str, Any]]:
    """Every old transaction by id, field by field (timestamps aware, UTC)."""
    rows = query(
        url,
        """SELECT id::text, user_id, type::text, status::text, amount, balance_before,
                  balance_after, app_id, description, metadata, idempotency_key, created_at,
                  completed_at
           FROM credits.transactions""",
    )
    return {row[0]: dict(zip(ENTRY_FIELDS, row, strict=True)) for row in rows}


def keyless_grants(entries: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        e
        for e in entries.values()
        if e["type"] == "grant" and e["idempotency_key"] is None and e["metadata"]
    ]


def as_imported(old: dict[str, Any]) -> dict[str, Any]:
    """An old transaction as the import writes it: an old grant without a key gets the
    key this service's grant uses for its referenceId; everything else is unchanged."""
    if old["type"] == "grant" and old["idempotency_key"] is None and old["metadata"]:
        return old | {"idempotency_key": reward_key(old["metadata"]["referenceId"])}
    return old


def old_users(url: str) -> set[str]:
    """Everyone the old database knows: a balances row, a transaction or a reservation."""
    users = {user for (user,) in query(url, "SELECT user_id FROM credits.balances")}
    users |= {user for (user,) in query(url, "SELECT user_id FROM credits.transactions")}
    if query(url, "SELECT to_regclass('credits.reservations')")[0][0]:
        users |= {user for (user,) in query(url, "SELECT user_id FROM credits.reservations")}
    return users


def openings(url: str) -> dict[str, Opening]:
    """Each user's balances row after the import: the old row (a negative balance as 0
    with that much debt), or for a user without one the old ledger less what is held."""
    rows, sums, held = old_balances(url), ledger_sums(url), held_credits(url)
    found: dict[str, Opening] = {}
    for user in old_users(url):
        if user in rows:
            balance, earned, spent = rows[user]
            found[user] = Opening(max(balance, 0), earned, spent, max(-balance, 0))
        else:
            net, earned, spent = sums.get(user, (0, 0, 0))
            found[user] = Opening(net - held.get(user, 0), earned, spent, 0)
    return found


def corrections(url: str) -> dict[str, Correction]:
    """The users whose old ledger (less what is held) does not sum to the balance here,
    or whose credits and debits do not sum to the old totals: what their adjustment holds."""
    sums, held = ledger_sums(url), held_credits(url)
    found: dict[str, Correction] = {}
    for user, opening in openings(url).items():
        net, earned, spent = sums.get(user, (0, 0, 0))
        fix = Correction(
            opening.balance - (net - held.get(user, 0)),
            opening.total_earned - earned,
            opening.total_spent - spent,
        )
        if fix != Correction(0, 0, 0):
            found[user] = fix
    return found


def usage_days(url: str) -> int:
    """Rows of usage here: the old per-use rows per user, app and UTC day."""
    rows = query(
        url,
        """SELECT count(DISTINCT (user_id, app_id, (date AT TIME ZONE 'UTC')::date))
           FROM credits.usage_stats""",
    )
    return int(rows[0][0])


def overdue_gifts(url: str, now: datetime) -> dict[str, tuple[str, int]]:
    """Active old gifts whose expiry (or the old default validity) is past at `now`:
    id -> (creator, credits)."""
    rows = query(
        url,
        """SELECT id::text, creator_id, total_credits FROM gifts.gift_codes
           WHERE status = 'active'
             AND coalesce(expires_at, created_at + %(validity)s) <= %(now)s""",
        {"validity": OLD_GIFT_VALIDITY, "now": now},
    )
    return {gift: (creator, credits) for gift, creator, credits in rows}


def held_reservations(url: str, cutoff: datetime) -> dict[str, tuple[str, int]]:
    """Old reservations still `reserved` since `cutoff` or before: id -> (user, credits)."""
    rows = query(
        url,
        """SELECT id::text, user_id, amount FROM credits.reservations
           WHERE status = 'reserved' AND created_at <= %(cutoff)s""",
        {"cutoff": cutoff},
    )
    return {reservation: (user, amount) for reservation, user, amount in rows}


def count(url: str, statement: str) -> int:
    return int(query(url, statement)[0][0])
