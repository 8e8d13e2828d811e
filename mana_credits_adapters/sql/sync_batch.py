"""The billing run's batch on PostgreSQL, in a few statements whatever its size.

1. `DUE` locks the due subscriptions, then their owners' balances in user order.
2. `CHARGE` makes at once every charge whose outcome is plain (the first lot in burn
   order pays it all, nothing to expire, no replay) and returns those it made.
3. Only when some are left: the lot book decides them as it decides a batch of
   group-committed debits (`debit_sql`: the lots they can touch, read after the lock;
   every lot of users whose first lots fall short), and `WRITE` writes its decisions
   and the subscriptions, advanced or paused.

The caller's unit of work commits. Most batches cost two statements and the commit,
and little Python: the lot book runs only for the charges that need it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from sqlalchemy.ext.asyncio import AsyncConnection

from mana_credits_core.ledger import Debit
from mana_credits_core.lot_book import LotBook
from mana_credits_core.sync import (
    BatchOutcome,
    BillingInterval,
    SyncSubscription,
    advance,
    pause,
    period_paid,
)

from .debit_batch import book_of, look_up, parameters
from .debit_sql import LOCK, LOOK_UP

# Step 1: the due rows in billing order, locked; rows another run holds are skipped, so
# concurrent runs take disjoint batches instead of waiting on each other. Then their
# owners' balance rows, locked in user order as every writer of balances and lots
# locks them (a debit batch never waits on this one in a cycle).
DUE = """
WITH due AS (
    SELECT user_id, active, interval, next_interval, anchor_at, months_paid,
           next_charge_at, paused_at, is_gifted, gifted_by, gifted_at, created_at,
           updated_at
      FROM credits.sync_subscriptions
     WHERE active AND NOT is_gifted AND next_charge_at IS NOT NULL
       AND next_charge_at <= %(now)s
     -- Oldest first, in the order of the due index alone: a tie-break on user_id
     -- would sort every row due at the same instant (often most of them) each batch.
     ORDER BY next_charge_at
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
),
locked AS (
    -- `= ANY(ARRAY(...))`: a probe of the primary key per user (`IN` may be planned
    -- as a scan of every balance).
    SELECT b.user_id FROM credits.balances b
     WHERE b.user_id = ANY(ARRAY(SELECT user_id FROM due))
     ORDER BY b.user_id
       FOR UPDATE
)
SELECT d.* FROM due d WHERE (SELECT count(*) FROM locked) >= 0
 ORDER BY d.next_charge_at, d.user_id
"""

# Step 2, a statement of its own after the locks (under READ COMMITTED it sees what
# their previous holders committed): the charges whose outcome is plain, made at once.
# A charge is plain when its period key is not in the ledger yet, none of its user's
# lots is past its expiry with free credits not expired yet (the lot book would expire
# those first), the balance covers it and so do the free credits of the user's first
# spendable lot in burn order (`lots.burn_key`; the order of the open-lots index,
# ids compared byte by byte as Python compares them). The lot book would then burn
# that one lot and nothing else, and that is what this does: the balance and the lot
# go down by the price, one entry, one allocation, the day's usage, and the
# subscription moves to its next period (computed by the core's `advance`). Every
# other charge (a replay, expiring lots, a first lot that falls short, credits
# lacking, no balance) is left for the lot book and returned as not charged.
CHARGE = """
WITH given AS (
    SELECT * FROM unnest(
        %(users)b::varchar[], %(ids)b::varchar[], %(amounts)b::bigint[],
        %(types)b::varchar[], %(apps)b::varchar[], %(descriptions)b::varchar[],
        %(metadata)b::text[], %(keys)b::varchar[], %(at)b::timestamptz[],
        %(days)b::date[], %(usage)b::boolean[], %(intervals)b::varchar[],
        %(months_paid)b::integer[], %(next_charge_at)b::timestamptz[])
      AS g(user_id, entry_id, amount, type, app_id, description, metadata, key, at, day,
           usage, interval, months_paid, next_charge_at)
),
checked AS (
    -- Every read is a probe of an index per charge, whatever the planner guesses of the
    -- arrays' length and the tables' sizes (a generic plan guesses ten rows): the
    -- balance and the first lot as LATERAL subqueries with a LIMIT, which stay
    -- subqueries, and the two checks as EXISTS in the select list, fenced by OFFSET 0
    -- (a NOT EXISTS in the WHERE clause becomes a join, and an EXISTS without the fence
    -- may be hashed: either may be planned as a scan of the whole table).
    SELECT g.*, b.balance, f.id AS lot_id, f.free,
           EXISTS (
               SELECT FROM credits.credit_lots d
                WHERE d.user_id = g.user_id AND d.is_open AND d.has_free
                  AND d.expires_at <= g.at AND d.expired_at IS NULL OFFSET 0) AS lapsed,
           EXISTS (
               SELECT FROM credits.transactions t
                WHERE t.user_id = g.user_id AND t.idempotency_key = g.key OFFSET 0) AS replayed
      FROM given g
     CROSS JOIN LATERAL (
        SELECT b.balance FROM credits.balances b WHERE b.user_id = g.user_id LIMIT 1
     ) AS b
     CROSS JOIN LATERAL (
        SELECT l.id, l.remaining - l.held AS free FROM credits.credit_lots l
         WHERE l.user_id = g.user_id AND l.is_open AND l.has_free
           AND (l.expires_at IS NULL OR l.expires_at > g.at)
         ORDER BY l.priority, l.expires_at, l.created_at, l.id COLLATE "C"
         LIMIT 1
     ) AS f
),
plain AS (
    SELECT * FROM checked
     WHERE balance >= amount AND free >= amount AND NOT lapsed AND NOT replayed
),
moved AS (
    UPDATE credits.balances b
       SET balance = b.balance - p.amount, total_spent = b.total_spent + p.amount,
           updated_at = %(latest)s
      FROM plain p
     WHERE b.user_id = p.user_id
),
burned AS (
    UPDATE credits.credit_lots l
       SET remaining = l.remaining - p.amount
      FROM plain p
     WHERE l.id = p.lot_id
),
allocated AS (
    INSERT INTO credits.lot_allocations (entry_id, lot_id, amount)
    SELECT entry_id, lot_id, amount FROM plain
),
entries AS (
    INSERT INTO credits.transactions
        (id, user_id, type, status, amount, balance_before, balance_after, app_id,
         description, metadata, idempotency_key, created_at, completed_at)
    SELECT entry_id, user_id, type, 'completed', -amount, balance, balance - amount,
           app_id, description, CAST(metadata AS jsonb), key, at, at
      FROM plain
),
counted AS (
    INSERT INTO credits.usage_stats AS u (user_id, app_id, day, credits_used, operations)
    SELECT user_id, app_id, day, amount, 1 FROM plain WHERE usage
    ON CONFLICT (user_id, app_id, day) DO UPDATE
       SET credits_used = u.credits_used + EXCLUDED.credits_used,
           operations = u.operations + EXCLUDED.operations
),
advanced AS (
    UPDATE credits.sync_subscriptions s
       SET interval = p.interval, next_interval = NULL, months_paid = p.months_paid,
           next_charge_at = p.next_charge_at, updated_at = %(now)s
      FROM plain p
     WHERE s.user_id = p.user_id
)
SELECT user_id FROM plain
"""

# The batch's writes in one statement: balances, lots, allocations, entries, usage and
# subscriptions. Each table's rows travel as typed arrays, one per column, zipped back
# into rows by `unnest` and joined on the key, also given as `= ANY` so that the update
# runs on the primary key whatever the planner guesses of the arrays' length. (Debit
# batches look rows up with `array_position` instead, cheap for their tens of rows but
# quadratic for a billing batch's thousand.)
WRITE = """
WITH moved AS (
    UPDATE credits.balances b
       SET balance = m.balance, total_spent = m.spent, updated_at = %(m_at)s
      FROM unnest(%(m_users)b::varchar[], %(m_balance)b::bigint[], %(m_spent)b::bigint[])
        AS m(user_id, balance, spent)
     WHERE b.user_id = m.user_id AND b.user_id = ANY(%(m_users)b::varchar[])
),
burned AS (
    UPDATE credits.credit_lots l
       SET remaining = v.remaining, expired_at = COALESCE(l.expired_at, v.expired)
      FROM unnest(%(l_ids)b::varchar[], %(l_remaining)b::bigint[],
                  %(l_expired)b::timestamptz[]) AS v(id, remaining, expired)
     WHERE l.id = v.id AND l.id = ANY(%(l_ids)b::varchar[])
),
allocated AS (
    INSERT INTO credits.lot_allocations (entry_id, lot_id, amount)
    SELECT * FROM unnest(%(a_entries)b::varchar[], %(a_lots)b::varchar[],
                         %(a_amounts)b::bigint[])
),
entries AS (
    INSERT INTO credits.transactions
        (id, user_id, type, status, amount, balance_before, balance_after, app_id,
         description, metadata, idempotency_key, created_at, completed_at)
    SELECT e.id, e.user_id, e.type, 'completed', e.amount, e.balance_before,
           e.balance_after, e.app_id, e.description, CAST(e.metadata AS jsonb),
           e.idempotency_key, e.at, e.at
      FROM unnest(%(e_ids)b::varchar[], %(e_users)b::varchar[], %(e_types)b::varchar[],
                  %(e_amounts)b::bigint[], %(e_before)b::bigint[], %(e_after)b::bigint[],
                  %(e_apps)b::varchar[], %(e_descriptions)b::varchar[],
                  %(e_metadata)b::text[], %(e_keys)b::varchar[], %(e_at)b::timestamptz[])
        AS e(id, user_id, type, amount, balance_before, balance_after, app_id,
             description, metadata, idempotency_key, at)
),
counted AS (
    INSERT INTO credits.usage_stats AS u (user_id, app_id, day, credits_used, operations)
    SELECT * FROM unnest(%(u_users)b::varchar[], %(u_apps)b::varchar[], %(u_days)b::date[],
                         %(u_used)b::bigint[], %(u_operations)b::bigint[])
    ON CONFLICT (user_id, app_id, day) DO UPDATE
       SET credits_used = u.credits_used + EXCLUDED.credits_used,
           operations = u.operations + EXCLUDED.operations
)
UPDATE credits.sync_subscriptions s
   SET active = v.active, interval = v.interval, next_interval = v.next_interval,
       months_paid = v.months_paid, next_charge_at = v.next_charge_at,
       paused_at = v.paused_at, updated_at = v.updated_at
  FROM unnest(%(s_users)b::varchar[], %(s_active)b::boolean[], %(s_interval)b::varchar[],
              %(s_next_interval)b::varchar[], %(s_months_paid)b::integer[],
              %(s_next_charge_at)b::timestamptz[], %(s_paused_at)b::timestamptz[],
              %(s_updated_at)b::timestamptz[])
    AS v(user_id, active, interval, next_interval, months_paid, next_charge_at, paused_at,
         updated_at)
 WHERE s.user_id = v.user_id AND s.user_id = ANY(%(s_users)b::varchar[])
"""


async def charge_batch(
    connection: AsyncConnection,
    now: datetime,
    limit: int,
    charge: Callable[[SyncSubscription], Debit],
) -> BatchOutcome:
    """Lock up to `limit` subscriptions due at `now` (skipping rows another run holds),
    debit each one's `charge(sub)` as `LotBook.debit` decides (see the module), and
    save each advanced (charged or replayed) or paused. `connection` is a PostgreSQL
    unit of work's, whose transaction this joins (the caller commits).

    The balances are locked in user order after the subscriptions, as debit batches
    lock them (nothing locks the two the other way round), and every read of lots and
    keys comes in a statement after the locks. Raises `psycopg.Error` (a key claimed
    meanwhile, a deadlock) and `LotsOutOfStep`; the caller rolls back.
    """
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, psycopg.AsyncConnection)
    cursor = driver.cursor()
    await cursor.execute(DUE, {"now": now, "limit": limit})
    due = [_subscription(row) for row in await cursor.fetchall()]
    if not due:
        return BatchOutcome(processed=0, charged=0, paused=[])
    debits = [charge(sub) for sub in due]
    advanced = [advance(sub, now) for sub in due]
    plain = driver.cursor()
    await plain.execute(CHARGE, _plain(debits, advanced, now))
    charged = {user_id for (user_id,) in await plain.fetchall()}
    rest = [i for i, sub in enumerate(due) if sub.user_id not in charged]
    stopped: list[tuple[str, BillingInterval]] = []
    if rest:
        book = await _book(driver, [debits[i] for i in rest])
        saved: list[SyncSubscription] = []
        for i in rest:
            if period_paid(book.debit(debits[i])):
                saved.append(advanced[i])
            else:
                saved.append(pause(due[i], now))
                stopped.append((due[i].user_id, due[i].billed_interval))
        # The book's writes as debit batches send theirs, plus the subscriptions.
        await driver.cursor().execute(WRITE, parameters(book.writes, now) | _saved(saved))
    return BatchOutcome(processed=len(due), charged=len(due) - len(stopped), paused=stopped)


async def _book(driver: psycopg.AsyncConnection[Any], debits: Sequence[Debit]) -> LotBook:
    """Lock the debits' balances, read the lots and prior entries they can touch: the
    `LotBook` that decides them, as a debit batch builds it (`debit_batch.book_of`)."""
    asked, asking = look_up(debits)
    async with driver.pipeline():
        locking = driver.cursor(row_factory=dict_row)
        await locking.execute(LOCK, {"users": asking["users"]})
        reading = driver.cursor(row_factory=dict_row)
        await reading.execute(LOOK_UP, asking)
    return await book_of(driver, asked, asking, locking, reading)


def _utc(value: datetime | None) -> datetime | None:
    """A timestamp as the SQL repositories return it: aware, in UTC."""
    return None if value is None else value.astimezone(UTC)


def _subscription(row: tuple[Any, ...]) -> SyncSubscription:
    """A row of `DUE` (its columns in the order of `SyncSubscription`'s fields)."""
    (user_id, active, interval, following, anchor_at, months_paid, next_charge_at,
     paused_at, is_gifted, gifted_by, gifted_at, created_at, updated_at) = row  # fmt: skip
    return SyncSubscription(
        user_id,
        active,
        BillingInterval(interval),
        None if following is None else BillingInterval(following),
        anchor_at.astimezone(UTC),
        months_paid,
        _utc(next_charge_at),
        _utc(paused_at),
        is_gifted,
        gifted_by,
        _utc(gifted_at),
        created_at.astimezone(UTC),
        updated_at.astimezone(UTC),
    )


def _plain(
    debits: Sequence[Debit], advanced: Sequence[SyncSubscription], now: datetime
) -> dict[str, object]:
    """`CHARGE`'s parameters: each charge and its subscription once advanced."""
    return {
        "users": [d.user_id for d in debits],
        "ids": [d.entry_id for d in debits],
        "amounts": [d.amount for d in debits],
        "types": [d.type.value for d in debits],
        "apps": [d.app_id for d in debits],
        "descriptions": [d.description for d in debits],
        "metadata": [None if d.metadata is None else json.dumps(d.metadata) for d in debits],
        "keys": [d.idempotency_key for d in debits],
        "at": [d.now for d in debits],
        "days": [d.usage_day for d in debits],
        "usage": [d.counts_as_usage for d in debits],
        "intervals": [s.interval.value for s in advanced],
        "months_paid": [s.months_paid for s in advanced],
        "next_charge_at": [s.next_charge_at for s in advanced],
        "latest": max(d.now for d in debits),
        "now": now,
    }


def _saved(subs: Sequence[SyncSubscription]) -> dict[str, object]:
    """`WRITE`'s parameters for the subscriptions: one array per column the billing run
    changes."""
    return {
        "s_users": [s.user_id for s in subs],
        "s_active": [s.active for s in subs],
        "s_interval": [s.interval.value for s in subs],
        "s_next_interval": [
            None if s.next_interval is None else s.next_interval.value for s in subs
        ],
        "s_months_paid": [s.months_paid for s in subs],
        "s_next_charge_at": [s.next_charge_at for s in subs],
        "s_paused_at": [s.paused_at for s in subs],
        "s_updated_at": [s.updated_at for s in subs],
    }
