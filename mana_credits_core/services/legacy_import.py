"""The legacy import: the old service's database into this service's store, exactly.

Reads the old database through a `LegacySource`, decides every row with the pure
rules of `legacy.rules`, and writes through an `ImportTarget` in ONE transaction: a
run that stops anywhere (an error, a kill) leaves nothing, a dry run is the same run
rolled back, and a rerun matches rows by id, so it writes nothing twice.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..gifts import GiftCode, GiftRedemption, GiftStatus
from ..ledger import LedgerEntry
from ..legacy import rules
from ..legacy.copying import Progress, Steps, each, objects
from ..legacy.errors import TargetHoldsOtherData
from ..legacy.ports import ImportTarget, ImportWriter, LegacySource
from ..legacy.records import ImportedBalance, LegacyFindings
from ..legacy.report import Adjustment, AnomalyKind, ImportReport
from ..lots import Allocation, opening_lot_id
from ..purchases import Purchase, PurchaseStatus
from ..reservations import Reservation, ReservationStatus
from ..sync import BillingInterval, SyncSubscription

SHOWN_CONFLICTS = 5  # users named in a refusal
BATCH = 5000  # rows per write of what the import builds itself


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """`now`: the moment the import runs (aware UTC), to tell what is already overdue;
    `reservation_ttl`: the time-to-live after which the sweep releases a hold."""

    now: datetime
    reservation_ttl: timedelta
    dry_run: bool = False


class LegacyImport:
    """Brings the old service's database across (docs/cutover.md)."""

    def __init__(self, source: LegacySource, target: ImportTarget) -> None:
        self._source = source
        self._target = target

    async def run(self, options: ImportOptions, progress: Progress | None = None) -> ImportReport:
        """Import everything (or, with `options.dry_run`, do it all and roll it back).

        Returns the report: rows per table (read, written, skipped as already there),
        the sums of balances before and after, the users adjusted and every anomaly
        with the action taken. Raises `NotLegacyLayout` for a source that is not the
        old layout and `TargetHoldsOtherData` when the store already holds other data
        for the imported users; both leave the store unchanged.
        """
        layout = await self._source.layout()
        counts = await self._source.counts()
        findings = await self._source.findings()
        report = ImportReport(options.dry_run, layout)
        step = Steps(report, counts, progress)
        async with self._target.transaction(commit=not options.dry_run) as writer:
            openings = await self._openings(writer, report, step)
            await self._entries(writer, report, step, openings, findings)
            await step.copy(
                "packages", each(self._source.packages(), report), writer.write_packages
            )
            await self._purchases(writer, report, step, findings)
            await self._usage(writer, report, step)
            await step.copy("stripe_customers", self._source.customers(), writer.write_customers)
            await self._subscriptions(writer, report, step, options)
            await self._reservations(writer, report, step, options)
            await self._gifts(writer, report, step, options)
            for gift in findings.unbacked_gifts:
                report.add(
                    AnomalyKind.UNBACKED_GIFT,
                    gift.gift_id,
                    f"code {gift.code}: {gift.credits} credits of {gift.creator_id}, "
                    "no creation debit of that amount",
                )
            await self._redemptions(writer, report, step, findings)
            await self._verify(writer, report, openings)
        return report

    async def _openings(
        self, writer: ImportWriter, report: ImportReport, step: Steps
    ) -> dict[str, rules.Opening]:
        """Plan every user's balances row; refuse if the store holds other data for any."""
        existing = await writer.balances()
        existing_entries = await writer.entry_counts()
        openings: dict[str, rules.Opening] = {}
        conflicts: list[str] = []
        old_entries: dict[str, int] = {}
        async for batch in self._source.users():
            for user in batch:
                plan = rules.opening(user)
                openings[user.user_id] = plan
                old_entries[user.user_id] = user.entries
                report.balance_before += user.balance or 0
                held = existing.get(user.user_id)
                if held is not None and held != plan.balance:
                    conflicts.append(f"{user.user_id} (balance {held.balance.balance} here)")
                elif existing_entries.get(user.user_id, 0) > user.entries + plan.entries:
                    extra = existing_entries[user.user_id] - user.entries - plan.entries
                    conflicts.append(f"{user.user_id} ({extra} ledger entries not in the source)")
        if conflicts:
            shown = ", ".join(conflicts[:SHOWN_CONFLICTS])
            more = len(conflicts) - SHOWN_CONFLICTS
            raise TargetHoldsOtherData(
                f"the target already holds other data for {len(conflicts)} of the imported "
                f"users: {shown}{f' and {more} more' if more > 0 else ''}; import into a new "
                "database (mana-credits db upgrade on an empty one)",
                users=len(conflicts),
            )
        report.users = len(openings)
        self._note_openings(report, openings)
        rows = [plan.balance for plan in openings.values()]
        total = step.counts.get("balances", 0)  # old rows; missing ones are rebuilt
        for start in range(0, len(rows), BATCH):
            await step.write(
                "balances", rows[start : start + BATCH], writer.write_balances, source=0
            )
        step.report.table("balances").source = total
        step.advance("balances", total, total)
        lots = [plan.lot for plan in openings.values() if plan.lot is not None]
        for start in range(0, len(lots), BATCH):
            await writer.write_lots(lots[start : start + BATCH])
        return openings

    @staticmethod
    def _note_openings(report: ImportReport, openings: dict[str, rules.Opening]) -> None:
        for user_id, plan in openings.items():
            if plan.missing_row:
                report.rebuilt += plan.balance.balance.balance
                owed = f" ({plan.balance.balance.debt} owed as debt)" if plan.negative else ""
                report.add(
                    AnomalyKind.MISSING_BALANCE,
                    user_id,
                    f"no balances row; rebuilt as {plan.balance.balance.balance} credits{owed}",
                )
            elif plan.negative:
                report.raised -= plan.negative
            if plan.negative:
                report.add(AnomalyKind.NEGATIVE_BALANCE, user_id, f"balance {plan.negative}")
            if plan.adjustment is None:
                continue
            report.adjustments.append(
                Adjustment(user_id, plan.difference, plan.earned_correction, plan.spent_correction)
            )
            if plan.difference and not plan.missing_row and not plan.negative:
                report.add(
                    AnomalyKind.DRIFT,
                    user_id,
                    f"ledger - held = {plan.balance.balance.balance - plan.difference}, "
                    f"balance = {plan.balance.balance.balance}: adjustment {plan.difference:+d}",
                )
            if plan.earned_correction or plan.spent_correction:
                report.add(
                    AnomalyKind.TOTALS_DRIFT,
                    user_id,
                    f"totalEarned {plan.earned_correction:+d}, "
                    f"totalSpent {plan.spent_correction:+d} against the ledger",
                )

    async def _entries(
        self,
        writer: ImportWriter,
        report: ImportReport,
        step: Steps,
        openings: dict[str, rules.Opening],
        findings: LegacyFindings,
    ) -> None:
        keys = rules.GrantKeys()

        async def mapped() -> AsyncIterator[list[LedgerEntry]]:
            async for batch in self._source.entries():
                yield [keys.entry(objects(report, entry)) for entry in batch]

        await step.copy("transactions", mapped(), writer.write_entries)
        adjustments = [p.adjustment for p in openings.values() if p.adjustment is not None]
        await step.write("transactions", adjustments, writer.write_entries, source=0)
        for entry in keys.rekeyed:
            report.add(
                AnomalyKind.GRANT_KEY_REPLACED,
                entry.id,
                f"user {entry.user_id}: old key {entry.idempotency_key}",
            )
        for entry in keys.duplicates:
            reference = (entry.metadata or {}).get("referenceId")
            report.add(
                AnomalyKind.DUPLICATE_GRANT,
                entry.id,
                f"user {entry.user_id}: referenceId {reference} granted again",
            )
        for double in findings.double_credits:
            report.add(
                AnomalyKind.DOUBLE_CREDIT,
                double.purchase_id,
                f"user {double.user_id}: {len(double.entry_ids)} purchase entries "
                f"({', '.join(double.entry_ids)}) credited {double.credits} credits",
            )
        for charge in findings.duplicate_charges:
            report.add(
                AnomalyKind.DUPLICATE_CHARGE,
                charge.entry_id,
                f"user {charge.user_id}: {charge.amount} credits on "
                f"{charge.charged_at.isoformat()}, {charge.previous_entry_id} already charged on "
                f"{charge.previous_at.isoformat()}",
            )
        for chain in findings.broken_chains:
            report.add(
                AnomalyKind.BROKEN_CHAIN,
                chain.entry_id,
                f"user {chain.user_id}: balanceBefore {chain.balance_before}, "
                f"previous balanceAfter {chain.previous_after}",
            )

    async def _purchases(
        self, writer: ImportWriter, report: ImportReport, step: Steps, findings: LegacyFindings
    ) -> None:
        async def noted() -> AsyncIterator[list[Purchase]]:
            async for batch in self._source.purchases():
                for purchase in batch:
                    if purchase.status is PurchaseStatus.PENDING:
                        report.add(
                            AnomalyKind.PENDING_PURCHASE,
                            purchase.id,
                            f"user {purchase.user_id}: {purchase.credits} credits, payment "
                            f"{purchase.stripe_payment_intent_id or 'none'}",
                        )
                    if not purchase.package_id:
                        report.add(AnomalyKind.PURCHASE_WITHOUT_PACKAGE, purchase.id, "no package")
                yield [objects(report, purchase) for purchase in batch]

        await step.copy("purchases", noted(), writer.write_purchases)

    async def _usage(self, writer: ImportWriter, report: ImportReport, step: Steps) -> None:
        # Old rows are per use, rows here per day: progress counts the old rows.
        total = step.counts.get("usage_stats", 0)
        async for batch in self._source.usage():
            written = await writer.write_usage(batch)
            count = report.table("usage_stats")
            count.written += written
            count.skipped += len(batch) - written
            uses = sum(u.operations for u in batch)
            count.source += uses
            step.advance("usage_stats", uses, total)

    async def _subscriptions(
        self, writer: ImportWriter, report: ImportReport, step: Steps, options: ImportOptions
    ) -> None:
        async def mapped() -> AsyncIterator[list[SyncSubscription]]:
            async for batch in self._source.subscriptions():
                for old in batch:
                    interval = BillingInterval(old.billing_interval)
                    if old.active and not old.is_gifted and old.amount_charged != interval.price:
                        report.add(
                            AnomalyKind.SYNC_PRICE,
                            old.user_id,
                            f"{old.amount_charged} credits per {interval.value} period, "
                            f"the price here is {interval.price}",
                        )
                    late = rules.overdue(old, options.now)
                    if late is not None:
                        missed = (
                            f", {late.missed} missed periods not charged" if late.missed else ""
                        )
                        report.add(
                            AnomalyKind.SYNC_OVERDUE,
                            old.user_id,
                            f"due since {late.due_since.isoformat()}: charged for the period "
                            f"from {late.charged_from.isoformat()}{missed}",
                        )
                yield [rules.subscription(old, options.now) for old in batch]

        await step.copy("sync_subscriptions", mapped(), writer.write_subscriptions)

    async def _reservations(
        self, writer: ImportWriter, report: ImportReport, step: Steps, options: ImportOptions
    ) -> None:
        cutoff = options.now - options.reservation_ttl

        async def mapped() -> AsyncIterator[list[Reservation]]:
            async for batch in self._source.reservations():
                for old in batch:
                    if old.status == "reserved" and old.created_at <= cutoff:
                        report.add(
                            AnomalyKind.STUCK_RESERVATION,
                            old.id,
                            f"user {old.user_id}: {old.amount} credits held since "
                            f"{old.created_at.isoformat()}",
                        )
                held = [rules.reservation(old) for old in batch]
                # Pending ones hold their credits from the user's opening lot.
                await writer.write_holds(
                    [
                        (r.id, Allocation(opening_lot_id(r.user_id), r.amount))
                        for r in held
                        if r.status == ReservationStatus.PENDING
                    ]
                )
                yield held

        await step.copy("reservations", mapped(), writer.write_reservations)

    async def _gifts(
        self, writer: ImportWriter, report: ImportReport, step: Steps, options: ImportOptions
    ) -> None:
        async def mapped() -> AsyncIterator[list[GiftCode]]:
            async for batch in self._source.gifts():
                gifts = [rules.gift(old) for old in batch]
                for old, new in zip(batch, gifts, strict=True):
                    if old.expires_at is None:
                        report.add(AnomalyKind.GIFT_WITHOUT_EXPIRY, old.id, f"code {old.code}")
                    # Against the expiry it gets here: one given the old default validity
                    # may be past it too, and the sweep returns its credits as well.
                    if old.status == GiftStatus.ACTIVE and new.expires_at <= options.now:
                        report.add(
                            AnomalyKind.EXPIRED_ACTIVE_GIFT,
                            old.id,
                            f"code {old.code}: {old.total_credits} credits of {old.creator_id}, "
                            f"expired {new.expires_at.isoformat()}",
                        )
                yield gifts

        await step.copy("gift_codes", mapped(), writer.write_gifts)

    async def _redemptions(
        self, writer: ImportWriter, report: ImportReport, step: Steps, findings: LegacyFindings
    ) -> None:
        # One successful redemption per gift is a constraint here: later ones stay out.
        dropped = {rid for d in findings.duplicate_redemptions for rid in d.redemption_ids[1:]}
        for duplicate in findings.duplicate_redemptions:
            report.add(
                AnomalyKind.DUPLICATE_REDEMPTION,
                duplicate.gift_code_id,
                f"successful redemptions {', '.join(duplicate.redemption_ids)}",
            )

        async def kept() -> AsyncIterator[list[GiftRedemption]]:
            async for batch in self._source.redemptions():
                yield [r for r in batch if r.id not in dropped]

        await step.copy("gift_redemptions", kept(), writer.write_redemptions)
        if dropped:
            report.table("gift_redemptions").source += len(dropped)

    @staticmethod
    async def _verify(
        writer: ImportWriter, report: ImportReport, openings: dict[str, rules.Opening]
    ) -> None:
        """Read the balances back: every imported user holds exactly the planned row."""
        stored = await writer.balances()
        wrong = [
            user_id
            for user_id, plan in openings.items()
            if _values(stored.get(user_id)) != _values(plan.balance)
        ]
        if wrong:
            raise TargetHoldsOtherData(
                f"{len(wrong)} balances changed while importing (e.g. {wrong[0]}); "
                "stop every server writing to the target and run the import again",
                users=len(wrong),
            )
        report.balance_after = sum(stored[u].balance.balance for u in openings)
        report.debt_after = sum(stored[u].balance.debt for u in openings)


def _values(row: ImportedBalance | None) -> tuple[int, int, int, int] | None:
    if row is None:
        return None
    b = row.balance
    return b.balance, b.total_earned, b.total_spent, b.debt
