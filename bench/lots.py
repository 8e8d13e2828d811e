"""Rows 8 and 9: credit lots on the bench's PostgreSQL.

Row 8 runs the library's debits (`CreditsService.use`, group commit on, as row 2) for
users holding one lot each and for users holding 20 lots each, with the same clients
and seconds: a debit reads every open lot of its user to pick the one to burn, so the
20-lot figure over the 1-lot figure is what many lots cost.

Row 9 times the expiry sweep (`LotsService.expire`) over lots already past their
expiry.

Both seed their users with SQL, consistent with what the service would have written:
each lot is a grant lot with its own completed `grant` entry (`entry_id`), and each
balance holds the sum of its lots.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass

from mana_credits_adapters.bootstrap import bootstrap
from mana_credits_adapters.settings import Settings
from mana_credits_core.lots import DEFAULT_PRIORITY

from .setup import FUNDS, BenchDatabase

MANY_LOTS = 20
SWEEP_CREDITS = 100  # credits in each lot the sweep expires


@dataclass(frozen=True)
class DebitsWithLots:
    users: int  # in each group
    lots: int  # lots of each user in the second group
    clients: int
    one_lot: float  # debits per second, users holding one lot each
    many_lots: float  # debits per second, users holding `lots` lots each
    writes: Writes  # what the 1-lot group's debits wrote


@dataclass(frozen=True)
class Writes:
    """What a run of debits made PostgreSQL write: WAL bytes and records per debit, and
    the share of lot updates made in place (heap-only tuples: no new index entries)."""

    wal_bytes: float
    wal_records: float
    hot_share: float  # 0..1


@dataclass(frozen=True)
class Sweep:
    users: int
    lots: int  # lots expired, all users
    seconds: float  # the whole `LotsService.expire()` call

    @property
    def lots_per_second(self) -> float:
        return self.lots / self.seconds


def seed_grants(
    db: BenchDatabase,
    prefix: str,
    users: int,
    lots: int,
    amount: int,
    *,
    priority: str,
    expires_at: str,
) -> None:
    """Users `prefix`-1 .. -`users`, each with `lots` grant lots of `amount` credits,
    their grant entries, and a balance of `lots` x `amount`.

    `priority` and `expires_at` are SQL expressions over `k`, the lot's number 1..`lots`
    of its user (oldest first).
    """
    db.sql(
        "INSERT INTO credits.balances (user_id, balance, total_earned, total_spent,"
        " created_at, updated_at)"
        f" SELECT '{prefix}-' || n, {lots * amount}, {lots * amount}, 0, now(), now()"
        f" FROM generate_series(1, {users}) n"
    )
    db.sql(
        "WITH g AS MATERIALIZED (SELECT '" + prefix + "-' || n AS user_id, k,"
        " gen_random_uuid()::text AS entry_id, gen_random_uuid()::text AS lot_id,"
        f" now() - ({lots} - k + 1) * interval '1 minute' AS at"
        f" FROM generate_series(1, {users}) n, generate_series(1, {lots}) k),"
        " entries AS (INSERT INTO credits.transactions (id, user_id, type, status, amount,"
        " balance_before, balance_after, app_id, description, created_at, completed_at)"
        f" SELECT entry_id, user_id, 'grant', 'completed', {amount}, (k - 1) * {amount},"
        f" k * {amount}, 'bench', 'seeded grant', at, at FROM g)"
        " INSERT INTO credits.credit_lots (id, user_id, source, amount, remaining, held,"
        " priority, expires_at, created_at, entry_id)"
        f" SELECT lot_id, user_id, 'grant', {amount}, {amount}, 0, {priority}, {expires_at},"
        " at, entry_id FROM g"
    )
    db.sql("ANALYZE credits.balances; ANALYZE credits.transactions; ANALYZE credits.credit_lots")


async def _debits(
    url: str, prefix: str, clients: int, users: int, seconds: float
) -> tuple[int, float]:
    """(debits, seconds taken) of `clients` concurrent callers of `CreditsService.use`
    over users `prefix`-1 .. -`users` (as bench/library.py, other users)."""
    async with bootstrap(Settings(DATABASE_URL=url), migrate=False) as services:
        credits = services.credits
        deadline = time.perf_counter() + seconds

        async def client() -> int:
            done = 0
            while time.perf_counter() < deadline:
                who = f"{prefix}-{random.randint(1, users)}"
                await credits.use(who, 1, "bench", "debit", idempotency_key=str(uuid.uuid4()))
                done += 1
            return done

        started = time.perf_counter()
        total = sum(await asyncio.gather(*(client() for _ in range(clients))))
        return total, time.perf_counter() - started


COUNTERS = (
    "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, (SELECT wal_records FROM pg_stat_wal),"
    " n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables"
    " WHERE schemaname = 'credits' AND relname = 'credit_lots'"
)
STATS_DELAY = 1.5
"""Seconds for the server processes to report their table statistics (PostgreSQL 15+
sends them at most once a second) before the counters are read."""


def _counters(db: BenchDatabase) -> tuple[int, ...]:
    time.sleep(STATS_DELAY)
    return tuple(int(float(v)) for v in db.sql(COUNTERS).split("|"))


ROUNDS = 4
"""Row 8 alternates its two groups this many times, so that whatever else the machine
does during the run weighs on both alike."""


def debits_with_lots(
    db: BenchDatabase, users: int, clients: int, seconds: float, lots: int = MANY_LOTS
) -> DebitsWithLots:
    """Debits per second for `users` users holding one lot each, and for `users` others
    holding `lots` lots each (differing priorities and expiries, none due during the
    run), `clients` callers, the two groups taking turns `ROUNDS` times for `seconds`
    seconds in all each. Lots are large enough that no debit ever empties one."""
    seed_grants(db, "one-lot", users, 1, FUNDS, priority=str(DEFAULT_PRIORITY), expires_at="NULL")
    # Priorities 30..70 and expiries 31..50 days ahead, every fourth lot never expiring:
    # the burn order has to weigh all three keys.
    seed_grants(
        db,
        "many-lots",
        users,
        lots,
        FUNDS // lots,
        priority="30 + (k % 5) * 10",
        expires_at="CASE WHEN k % 4 = 0 THEN NULL ELSE now() + (30 + k) * interval '1 day' END",
    )
    one: list[float] = []
    many: list[float] = []
    written = [0, 0, 0, 0]  # WAL bytes, WAL records, lot updates, in place: 1-lot group
    debited = 0
    for _ in range(ROUNDS):
        before = _counters(db)
        done, took = asyncio.run(_debits(db.url, "one-lot", clients, users, seconds / ROUNDS))
        after = _counters(db)
        written = [w + a - b for w, a, b in zip(written, after, before, strict=True)]
        debited += done
        one.append(done / took)
        done, took = asyncio.run(_debits(db.url, "many-lots", clients, users, seconds / ROUNDS))
        many.append(done / took)
    writes = Writes(written[0] / debited, written[1] / debited, written[3] / max(written[2], 1))
    return DebitsWithLots(users, lots, clients, sum(one) / ROUNDS, sum(many) / ROUNDS, writes)


async def _sweep(url: str) -> tuple[int, float]:
    async with bootstrap(Settings(DATABASE_URL=url), migrate=False) as services:
        started = time.perf_counter()
        expired = await services.lots.expire()
        return expired, time.perf_counter() - started


def expiry_sweep(db: BenchDatabase, users: int, lots_per_user: int) -> Sweep:
    """Seed `users` users with `lots_per_user` lots each, all expired an hour ago, then
    time one `LotsService.expire()` over them (default batch size)."""
    seed_grants(
        db,
        "expiring",
        users,
        lots_per_user,
        SWEEP_CREDITS,
        priority=str(DEFAULT_PRIORITY),
        expires_at="now() - interval '1 hour' + k * interval '1 second'",
    )
    expired, seconds = asyncio.run(_sweep(db.url))
    assert expired == users * lots_per_user, (expired, users * lots_per_user)
    return Sweep(users, expired, seconds)
