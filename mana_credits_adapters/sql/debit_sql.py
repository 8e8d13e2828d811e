"""The SQL of a batch of group-committed debits on PostgreSQL (`debit_batch` runs it).

Step 1 locks the batch's balances, step 2 reads the lots and keys it needs, step 3
(rarely) reads the lots of users whose first lots fall short, step 4 writes everything.
"""

# The writer's connection is in autocommit mode: it opens and ends its transactions.
BEGIN = "BEGIN"
COMMIT = "COMMIT"

# The writer's statements are prepared once per connection and planned once: left to
# choose, PostgreSQL plans them afresh at every execution (a plan for the given arrays
# looks cheaper than one for any arrays), and planning cost more than running them. Their
# generic plans walk the same indexes: every read and write goes through `= ANY` of the
# batch's keys or a lateral look-up per key. Reset before the connection goes back to the
# pool.
GENERIC_PLANS = "SET plan_cache_mode = force_generic_plan"
DEFAULT_PLANS = "RESET plan_cache_mode"

ENTRY_BY_KEY = (
    "SELECT * FROM credits.transactions WHERE user_id = %(user_id)s AND idempotency_key = %(key)s"
)

# Step 1: lock the batch's balance rows in user order (two writers never deadlock).
LOCK = """
SELECT json_agg(b ORDER BY b.user_id) AS balances FROM (
    SELECT user_id, balance, total_earned, total_spent, debt, accrued_milli
      FROM credits.balances
     WHERE user_id = ANY(CAST(%(users)s AS varchar[])) ORDER BY user_id FOR UPDATE
) AS b
"""

# Step 2, a statement of its own after the lock: under READ COMMITTED it sees what the
# lock's previous holder committed (a read inside the locking statement would see the
# snapshot taken before the lock waited). A key claimed by another process after this
# read makes the write fail on the unique constraint: the batch is then retried one by
# one.
#
# Of a user's lots it reads only those the batch can touch: every lot past its expiry
# and not expired yet (a debit expires those first), and the first `FIRST_LOTS`
# spendable lots in burn order, cut after the first whose free credits reach what the
# batch asks of the user. The ORDER BY is `lots.burn_key` (NULL expiries sort last; ids
# compared byte by byte, as Python compares them): the index of open lots in that very
# order since migration 0008, so the read stops after those lots and a user with 20
# lots costs a debit what a user with one does. The lots left out all
# come after the ones read, so no debit of the batch would burn them, unless the first
# lots fall short (`short_users`): those users' lots are then read in full.
FIRST_LOTS = 2
LOOK_UP = f"""
WITH asked AS (
    SELECT * FROM unnest(CAST(%(users)s AS varchar[]), CAST(%(needs)s AS bigint[]))
      AS a(user_id, credits)
),
wanted AS (
    SELECT f.* FROM asked a CROSS JOIN LATERAL (
        SELECT s.*, sum(s.remaining - s.held) OVER (
                   ORDER BY s.priority, s.expires_at, s.created_at, s.id COLLATE "C"
               ) - (s.remaining - s.held) AS before
          FROM (SELECT {{LOT_COLUMNS}} FROM credits.credit_lots l
                 WHERE l.user_id = a.user_id AND l.is_open AND l.has_free
                   AND (l.expires_at IS NULL OR l.expires_at > CAST(%(now)s AS timestamptz))
                 ORDER BY l.priority, l.expires_at, l.created_at, l.id COLLATE "C"
                 LIMIT {FIRST_LOTS}) AS s
    ) AS f
     WHERE f.before < a.credits
    UNION ALL
    SELECT d.*, 0 FROM asked a CROSS JOIN LATERAL (
        SELECT {{LOT_COLUMNS}} FROM credits.credit_lots l
         WHERE l.user_id = a.user_id AND l.is_open AND l.has_free
           AND l.expires_at <= CAST(%(now)s AS timestamptz) AND l.expired_at IS NULL
    ) AS d
)
SELECT (SELECT json_agg(w) FROM wanted w) AS lots,
       (SELECT json_agg(t)
          FROM unnest(CAST(%(key_users)s AS varchar[]), CAST(%(keys)s AS varchar[]))
            AS k(user_id, key)
         CROSS JOIN LATERAL (
            -- LIMIT 1 (the key is unique) keeps this a look-up in the key's index per
            -- key: joined freely, a small ledger's statistics would pick a scan of the
            -- whole table.
            SELECT * FROM credits.transactions t
             WHERE t.user_id = k.user_id AND t.idempotency_key = k.key LIMIT 1
         ) AS t) AS prior
""".replace(
    "{LOT_COLUMNS}",
    "l.id, l.user_id, l.source, l.amount, l.remaining, l.held, l.priority, l.expires_at,"
    " l.created_at, l.entry_id, l.purchase_id, l.expired_at",
)

# Step 3, rarely: the lots of users whose first lots fall short of what the batch asks.
ALL_LOTS = """
SELECT json_agg(l) AS lots FROM credits.credit_lots l
 WHERE l.user_id = ANY(CAST(%(users)s AS varchar[])) AND l.is_open
"""

# Step 4: the batch travels as typed arrays, one per column (`unnest` zips them back
# into rows), and lands in six tables in one statement (balances with what priced
# debits accrued, lots, allocations, entries, priced usage, usage).
WRITE_BATCH = """
WITH moved AS (
    -- `= ANY` keeps the updates on the primary key whatever the table's size; a join
    -- with the batch would be planned for a guessed row count and may scan the table.
    UPDATE credits.balances b
       SET balance = m.balance[array_position(m.users, b.user_id)],
           total_spent = m.spent[array_position(m.users, b.user_id)],
           accrued_milli = m.accrued[array_position(m.users, b.user_id)],
           updated_at = m.at
      FROM (SELECT CAST(%(m_users)b AS varchar[]) AS users,
                   CAST(%(m_balance)b AS bigint[]) AS balance,
                   CAST(%(m_spent)b AS bigint[]) AS spent,
                   CAST(%(m_accrued)b AS bigint[]) AS accrued,
                   CAST(%(m_at)b AS timestamptz) AS at) AS m
     WHERE b.user_id = ANY(CAST(%(m_users)b AS varchar[]))
),
burned AS (
    UPDATE credits.credit_lots l
       SET remaining = v.remaining[array_position(v.ids, l.id)],
           expired_at = COALESCE(l.expired_at, v.expired[array_position(v.ids, l.id)])
      FROM (SELECT CAST(%(l_ids)b AS varchar[]) AS ids,
                   CAST(%(l_remaining)b AS bigint[]) AS remaining,
                   CAST(%(l_expired)b AS timestamptz[]) AS expired) AS v
     WHERE l.id = ANY(CAST(%(l_ids)b AS varchar[]))
),
allocated AS (
    INSERT INTO credits.lot_allocations (entry_id, lot_id, amount)
    SELECT * FROM unnest(CAST(%(a_entries)b AS varchar[]), CAST(%(a_lots)b AS varchar[]),
                         CAST(%(a_amounts)b AS bigint[]))
),
entries AS (
    INSERT INTO credits.transactions
        (id, user_id, type, status, amount, balance_before, balance_after, app_id,
         description, metadata, idempotency_key, created_at, completed_at)
    SELECT e.id, e.user_id, e.type, 'completed', e.amount, e.balance_before,
           e.balance_after, e.app_id, e.description, CAST(e.metadata AS jsonb),
           e.idempotency_key, e.at, e.at
      FROM unnest(CAST(%(e_ids)b AS varchar[]), CAST(%(e_users)b AS varchar[]),
                  CAST(%(e_types)b AS varchar[]), CAST(%(e_amounts)b AS bigint[]),
                  CAST(%(e_before)b AS bigint[]), CAST(%(e_after)b AS bigint[]),
                  CAST(%(e_apps)b AS varchar[]), CAST(%(e_descriptions)b AS varchar[]),
                  CAST(%(e_metadata)b AS text[]), CAST(%(e_keys)b AS varchar[]),
                  CAST(%(e_at)b AS timestamptz[]))
        AS e(id, user_id, type, amount, balance_before, balance_after, app_id,
             description, metadata, idempotency_key, at)
),
priced AS (
    -- Priced usage per (user, operation, day); empty arrays for amount-only debits.
    INSERT INTO credits.operation_usage AS o
        (user_id, operation, day, calls, quantity, cost_milli)
    SELECT * FROM unnest(CAST(%(o_users)b AS varchar[]), CAST(%(o_operations)b AS varchar[]),
                         CAST(%(o_days)b AS date[]), CAST(%(o_calls)b AS bigint[]),
                         CAST(%(o_quantity)b AS bigint[]), CAST(%(o_cost)b AS bigint[]))
    ON CONFLICT (user_id, operation, day) DO UPDATE
       SET calls = o.calls + EXCLUDED.calls,
           quantity = o.quantity + EXCLUDED.quantity,
           cost_milli = o.cost_milli + EXCLUDED.cost_milli
)
INSERT INTO credits.usage_stats AS u (user_id, app_id, day, credits_used, operations)
SELECT s.user_id, s.app_id, s.day, s.used, s.operations
  FROM unnest(CAST(%(u_users)b AS varchar[]), CAST(%(u_apps)b AS varchar[]),
              CAST(%(u_days)b AS date[]), CAST(%(u_used)b AS bigint[]),
              CAST(%(u_operations)b AS bigint[]))
    AS s(user_id, app_id, day, used, operations)
ON CONFLICT (user_id, app_id, day) DO UPDATE
   SET credits_used = u.credits_used + EXCLUDED.credits_used,
       operations = u.operations + EXCLUDED.operations
"""
