"""A bookkeeper that writes rows the way the old service did, for the hand-written data set.

Each call is one thing the old service did (a purchase completed, a debit, a gift made,
a reservation held...) and produces the rows it wrote, with `balance_before`/`after`
and the balances row kept as the old service kept them. The anomalies of real old
databases are made on purpose with the explicit knobs (`shown_before`, `balance_row`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Row = dict[str, Any]

# Readable, fixed ids: one prefix per table, a serial number after it.
ID_PREFIX = {
    "transactions": "7a000000",
    "usage_stats": "75000000",
    "packages": "9a000000",
    "purchases": "9b000000",
    "reservations": "7e000000",
    "gift_codes": "6c000000",
    "gift_redemptions": "6d000000",
}


def at(text: str) -> datetime:
    """`2026-02-03 10:00[:00[.000]]` as an aware UTC datetime."""
    for layout in ("%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f"):
        try:
            return datetime.strptime(text, layout).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise ValueError(f"not a time: {text}")


@dataclass
class Account:
    """What the old balances row says (kept as the old service kept it)."""

    balance: int = 0
    total_earned: int = 0
    total_spent: int = 0
    version: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def touch(self, when: datetime, *, moved: bool = True) -> None:
        self.created_at = self.created_at or when
        self.updated_at = when
        if moved:
            self.version += 1


@dataclass
class Hold:
    """A reservation as written (newest layout) or only remembered (older layout)."""

    id: str
    user_id: str
    amount: int
    row: Row | None


@dataclass
class Book:
    """Rows of every old table, built by the old service's operations.

    `newest`: the last layout (grants and reservations). On an older layout a grant is
    written as a `gift` credit of the same app and metadata, and a reservation is not
    written: its commit becomes a plain debit, and a hold never committed leaves nothing.
    """

    newest: bool
    accounts: dict[str, Account] = field(default_factory=dict)
    tables: dict[str, list[Row]] = field(default_factory=dict)
    no_balance_row: set[str] = field(default_factory=set)
    _serial: Counter[str] = field(default_factory=Counter)

    def new_id(self, table: str) -> str:
        self._serial[table] += 1
        return f"{ID_PREFIX[table]}-0000-4000-8000-{self._serial[table]:012d}"

    def add(self, table: str, row: Row) -> Row:
        self.tables.setdefault(table, []).append(row)
        return row

    def account(self, user_id: str) -> Account:
        return self.accounts.setdefault(user_id, Account())

    def open(self, user_id: str, when: datetime) -> None:
        """A balances row made without any credit moving (the user opened an app)."""
        self.account(user_id).touch(when, moved=False)

    def entry(
        self,
        user_id: str,
        type: str,
        amount: int,
        app_id: str,
        description: str,
        when: datetime,
        *,
        status: str = "completed",
        metadata: dict[str, Any] | None = None,
        key: str | None = None,
        shown_before: int | None = None,
        usage_metadata: dict[str, Any] | None = None,
    ) -> str:
        """One transaction. A completed one moves the balance; `shown_before` writes the
        stale balance a racing request read (the balance itself still moves right)."""
        if type == "grant" and not self.newest:
            type = "gift"
        account = self.account(user_id)
        if status == "completed":
            before = account.balance if shown_before is None else shown_before
            after = before + amount
            account.balance += amount
            if amount > 0:
                account.total_earned += amount
            else:
                account.total_spent -= amount
            account.touch(when)
        else:
            before = after = account.balance
        entry_id = self.new_id("transactions")
        self.add(
            "transactions",
            {
                "id": entry_id,
                "user_id": user_id,
                "type": type,
                "status": status,
                "amount": amount,
                "balance_before": before,
                "balance_after": after,
                "app_id": app_id,
                "description": description,
                "metadata": metadata,
                "idempotency_key": key,
                "created_at": when,
                "completed_at": when if status == "completed" else None,
            },
        )
        if type == "usage" and status == "completed":
            self.add(
                "usage_stats",
                {
                    "id": self.new_id("usage_stats"),
                    "user_id": user_id,
                    "app_id": app_id,
                    "credits_used": -amount,
                    "date": when,
                    "metadata": usage_metadata,
                },
            )
        return entry_id

    def hold(self, user_id: str, amount: int, reason: str, when: datetime) -> Hold:
        """Credits reserved: the balance drops now, no transaction until commit."""
        reservation_id = self.new_id("reservations") if self.newest else ""
        row: Row | None = None
        if self.newest:
            account = self.account(user_id)
            account.balance -= amount
            account.touch(when)
            row = self.add(
                "reservations",
                {
                    "id": reservation_id,
                    "user_id": user_id,
                    "amount": amount,
                    "reason": reason,
                    "status": "reserved",
                    "created_at": when,
                    "resolved_at": None,
                },
            )
        return Hold(reservation_id, user_id, amount, row)

    def commit(self, hold: Hold, app_id: str, description: str, when: datetime) -> str:
        """The held credits spent: the `usage` transaction is written only now."""
        if hold.row is None:
            return self.entry(hold.user_id, "usage", -hold.amount, app_id, description, when)
        hold.row.update(status="committed", resolved_at=when)
        account = self.account(hold.user_id)
        account.balance += hold.amount  # moved at hold time: the entry shows that move
        return self.entry(hold.user_id, "usage", -hold.amount, app_id, description, when)

    def release(self, hold: Hold, when: datetime) -> None:
        """The held credits given back, without a transaction."""
        if hold.row is None:
            return
        hold.row.update(status="refunded", resolved_at=when)
        account = self.account(hold.user_id)
        account.balance += hold.amount
        account.touch(when)

    def balance_rows(self, overrides: dict[str, dict[str, int]]) -> list[Row]:
        """The balances rows: each account as kept, `overrides` where the old data drifted."""
        rows = []
        for user_id, account in sorted(self.accounts.items()):
            if user_id in self.no_balance_row:
                continue
            assert account.created_at is not None
            assert account.updated_at is not None
            row: Row = {
                "user_id": user_id,
                "balance": account.balance,
                "total_earned": account.total_earned,
                "total_spent": account.total_spent,
                "version": account.version,
                "created_at": account.created_at,
                "updated_at": account.updated_at,
            }
            row.update(overrides.get(user_id, {}))
            rows.append(row)
        return rows
