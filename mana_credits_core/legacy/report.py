"""What an import (or a dry run) found and did: counts, sums, anomalies and actions."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

from .records import LegacyLayout


class AnomalyKind(enum.StrEnum):
    """The kinds of old data that are not what this service would have written, each
    with what the import does about it (`ACTIONS`)."""

    DRIFT = "drift"
    TOTALS_DRIFT = "totals_drift"
    MISSING_BALANCE = "missing_balance"
    NEGATIVE_BALANCE = "negative_balance"
    DOUBLE_CREDIT = "double_credit"
    DUPLICATE_CHARGE = "duplicate_charge"
    BROKEN_CHAIN = "broken_chain"
    STUCK_RESERVATION = "stuck_reservation"
    PENDING_PURCHASE = "pending_purchase"
    PURCHASE_WITHOUT_PACKAGE = "purchase_without_package"
    EXPIRED_ACTIVE_GIFT = "expired_active_gift"
    GIFT_WITHOUT_EXPIRY = "gift_without_expiry"
    DUPLICATE_REDEMPTION = "duplicate_redemption"
    DUPLICATE_GRANT = "duplicate_grant"
    SYNC_PRICE = "sync_price"
    SYNC_OVERDUE = "sync_overdue"
    UNBACKED_GIFT = "unbacked_gift"
    METADATA_NOT_OBJECT = "metadata_not_object"
    GRANT_KEY_REPLACED = "grant_key_replaced"


ACTIONS: dict[AnomalyKind, str] = {
    AnomalyKind.DRIFT: "balance kept; one adjustment entry makes the ledger agree",
    AnomalyKind.TOTALS_DRIFT: "totals kept; the adjustment entry records the corrections",
    AnomalyKind.MISSING_BALANCE: "balance row created from the ledger (completed sum - held)",
    AnomalyKind.NEGATIVE_BALANCE: "imported as 0 with that much debt (settled by later credits)",
    AnomalyKind.DOUBLE_CREDIT: "kept as the old balance has it; listed for a claw-back decision",
    AnomalyKind.DUPLICATE_CHARGE: "kept as the old balance has it; listed for a refund decision",
    AnomalyKind.BROKEN_CHAIN: "copied as it is (before/after are history)",
    AnomalyKind.STUCK_RESERVATION: "imported held; the time-to-live sweep releases it",
    AnomalyKind.PENDING_PURCHASE: "imported pending; its Stripe webhook can still complete it",
    AnomalyKind.PURCHASE_WITHOUT_PACKAGE: "imported with an empty package id",
    AnomalyKind.EXPIRED_ACTIVE_GIFT: "imported active; the expiry sweep returns its credits",
    AnomalyKind.GIFT_WITHOUT_EXPIRY: "given the old default validity (90 days from creation)",
    AnomalyKind.DUPLICATE_REDEMPTION: "the first success is imported, the others are skipped",
    AnomalyKind.DUPLICATE_GRANT: "kept without an idempotency key (the first grant holds it)",
    AnomalyKind.SYNC_PRICE: "charged at this service's price from the next period",
    AnomalyKind.SYNC_OVERDUE: (
        "charged once by the next billing run, for the period running now; "
        "missed periods are not charged"
    ),
    AnomalyKind.UNBACKED_GIFT: (
        "imported as it is; reconcile lists it until it is redeemed, cancelled or expired "
        "(cancelling or expiring returns credits its creator may never have paid)"
    ),
    AnomalyKind.METADATA_NOT_OBJECT: 'kept under {"legacy": ...} (metadata is an object here)',
    AnomalyKind.GRANT_KEY_REPLACED: (
        "given the grant key of its referenceId (replays recognised); the old key is kept "
        "in metadata.legacyIdempotencyKey"
    ),
}


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One finding: its kind, what it is about (a user, purchase, gift or entry id) and
    the detail in words; the action is `ACTIONS[kind]`."""

    kind: AnomalyKind
    subject: str
    detail: str

    @property
    def action(self) -> str:
        return ACTIONS[self.kind]


@dataclass(frozen=True, slots=True)
class Adjustment:
    """A user whose old ledger did not agree with the old balance row (credits)."""

    user_id: str
    difference: int
    total_earned: int
    total_spent: int


@dataclass(slots=True)
class TableCount:
    """One target table: rows read from the old database, rows written, rows skipped
    because the store already held them (same id).

    `written + skipped` can differ from `source` where rows are combined (usage, per
    day here) or added (the adjustments in `transactions`).
    """

    table: str
    source: int = 0
    written: int = 0
    skipped: int = 0


@dataclass(slots=True)
class ImportReport:
    """Everything an import (or dry run) found and did. Credits everywhere."""

    dry_run: bool
    layout: LegacyLayout
    tables: dict[str, TableCount] = field(default_factory=dict)
    users: int = 0
    balance_before: int = 0  # sum of the old balances rows
    balance_after: int = 0  # sum of the imported users' balances in the store
    rebuilt: int = 0  # part of balance_after in rows rebuilt from the ledger (rows missing)
    raised: int = 0  # part of balance_after: old negative balances raised to 0 (now debt)
    debt_after: int = 0  # sum of the debts the import created (old negative balances)
    adjustments: list[Adjustment] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)
    seconds: float = 0.0

    def table(self, name: str) -> TableCount:
        return self.tables.setdefault(name, TableCount(name))

    def add(self, kind: AnomalyKind, subject: str, detail: str) -> None:
        self.anomalies.append(Anomaly(kind, subject, detail))

    def by_kind(self) -> dict[AnomalyKind, list[Anomaly]]:
        found: dict[AnomalyKind, list[Anomaly]] = {}
        for anomaly in self.anomalies:
            found.setdefault(anomaly.kind, []).append(anomaly)
        return found

    @property
    def skipped(self) -> int:
        return sum(t.skipped for t in self.tables.values())

    def as_json(self) -> dict[str, Any]:
        """The report as JSON-ready data (camelCase keys, like the HTTP API)."""
        return {
            "dryRun": self.dry_run,
            "layout": {
                "hasGrant": self.layout.has_grant,
                "hasReservations": self.layout.has_reservations,
            },
            "tables": [asdict(t) for t in self.tables.values()],
            "users": self.users,
            "balanceBefore": self.balance_before,
            "balanceAfter": self.balance_after,
            "rebuilt": self.rebuilt,
            "raised": self.raised,
            "debtAfter": self.debt_after,
            "adjustments": [
                {
                    "userId": a.user_id,
                    "difference": a.difference,
                    "totalEarned": a.total_earned,
                    "totalSpent": a.total_spent,
                }
                for a in self.adjustments
            ],
            "anomalies": [
                {"kind": a.kind.value, "subject": a.subject, "detail": a.detail, "action": a.action}
                for a in self.anomalies
            ],
            "seconds": round(self.seconds, 3),
        }
