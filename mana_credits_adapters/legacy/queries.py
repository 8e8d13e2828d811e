"""The reads of the old database, in SQL: the server groups, sums and compares rows.

User ids, app ids and purchase ids are ordered with the "C" collation: byte order, the
same as Python's order of the strings, whatever collation the old database uses. Ids
are read as text, days in UTC.
"""

from __future__ import annotations

COUNT = "SELECT count(*) FROM {table}"

_LEDGER = """
    SELECT user_id,
        sum(amount) FILTER (WHERE status = 'completed') AS net,
        sum(amount) FILTER (WHERE status = 'completed' AND amount > 0) AS earned,
        -sum(amount) FILTER (WHERE status = 'completed' AND amount < 0) AS spent,
        count(*) AS entries,
        min(created_at) AS first_at,
        max(created_at) AS last_at
    FROM credits.transactions GROUP BY user_id
"""
_HELD = """
    SELECT user_id, sum(amount) FILTER (WHERE status = 'reserved') AS held,
        min(created_at) AS first_at, max(created_at) AS last_at
    FROM credits.reservations GROUP BY user_id
"""
_NO_HELD = """
    SELECT NULL::text AS user_id, NULL::bigint AS held, NULL::timestamptz AS first_at,
        NULL::timestamptz AS last_at
"""


def users(*, has_reservations: bool) -> str:
    """Per user: the balances row, the ledger's sums and the credits still reserved."""
    held = _HELD if has_reservations else _NO_HELD
    return f"""
WITH ledger AS ({_LEDGER}), held AS ({held}),
known AS (
    SELECT user_id FROM credits.balances
    UNION SELECT user_id FROM ledger
    UNION SELECT user_id FROM held WHERE user_id IS NOT NULL
)
SELECT k.user_id, b.balance, b.total_earned, b.total_spent, b.created_at, b.updated_at,
    coalesce(l.net, 0), coalesce(l.earned, 0), coalesce(l.spent, 0), coalesce(l.entries, 0),
    coalesce(h.held, 0), least(l.first_at, h.first_at), greatest(l.last_at, h.last_at)
FROM known AS k
LEFT JOIN credits.balances AS b ON b.user_id = k.user_id
LEFT JOIN ledger AS l ON l.user_id = k.user_id
LEFT JOIN held AS h ON h.user_id = k.user_id
ORDER BY k.user_id COLLATE "C"
"""


ENTRIES = """
SELECT id::text, user_id, type::text, status::text, amount, balance_before, balance_after,
    app_id, description, metadata, idempotency_key, created_at, completed_at
FROM credits.transactions
ORDER BY created_at, id
"""

PACKAGES = """
SELECT id::text, name, description, credits, price_euro_cents, stripe_price_id, active,
    sort_order, metadata, created_at, updated_at
FROM credits.packages
ORDER BY id
"""

PURCHASES = """
SELECT id::text, user_id, coalesce(package_id::text, ''), credits, price_euro_cents,
    stripe_payment_intent_id, stripe_customer_id, status::text, metadata, created_at,
    completed_at
FROM credits.purchases
ORDER BY id
"""

USAGE = """
SELECT user_id, app_id, (date AT TIME ZONE 'UTC')::date AS day, sum(credits_used), count(*)
FROM credits.usage_stats
GROUP BY user_id, app_id, day
ORDER BY user_id COLLATE "C", app_id COLLATE "C", day
"""

CUSTOMERS = """
SELECT user_id, stripe_customer_id, created_at
FROM credits.stripe_customers
ORDER BY user_id COLLATE "C"
"""

# The newest completed Cloud Sync charge is not kept by the old layout: the ledger has it.
SUBSCRIPTIONS = """
SELECT s.user_id, s.active, s.billing_interval::text, s.amount_charged, s.activated_at,
    s.next_charge_at, s.paused_at, s.is_gifted, s.gifted_by, s.gifted_at, s.created_at,
    s.updated_at, c.last_charge_at
FROM credits.sync_subscriptions AS s
LEFT JOIN (
    SELECT user_id, max(created_at) AS last_charge_at
    FROM credits.transactions
    WHERE type = 'usage' AND app_id = 'sync' AND status = 'completed'
    GROUP BY user_id
) AS c ON c.user_id = s.user_id
ORDER BY s.user_id COLLATE "C"
"""

RESERVATIONS = """
SELECT id::text, user_id, amount, reason, status::text, created_at, resolved_at
FROM credits.reservations
ORDER BY id
"""

GIFTS = """
SELECT id::text, code, short_url, creator_id, creator_name, total_credits, redeemed,
    type::text, status::text, target_email, message, expires_at,
    reservation_transaction_id::text, created_at, updated_at
FROM gifts.gift_codes
ORDER BY id
"""

REDEMPTIONS = """
SELECT id::text, gift_code_id::text, redeemer_user_id, status::text, credits_received,
    credit_transaction_id::text, source_app_id, created_at
FROM gifts.gift_redemptions
ORDER BY id
"""

# A purchase is named by the entry's metadata: its purchase id, or (older entries) its
# payment intent, resolved to the purchase holding that intent where there is one.
DOUBLE_CREDITS = """
WITH credited AS (
    SELECT t.id, t.user_id, t.amount, t.created_at,
        coalesce(t.metadata ->> 'purchaseId', p.id::text, t.metadata ->> 'paymentIntentId')
            AS purchase_id
    FROM credits.transactions AS t
    LEFT JOIN credits.purchases AS p
        ON t.metadata ->> 'purchaseId' IS NULL
        AND p.stripe_payment_intent_id = t.metadata ->> 'paymentIntentId'
    WHERE t.type = 'purchase' AND t.status = 'completed'
)
SELECT purchase_id, user_id, array_agg(id::text ORDER BY created_at, id), sum(amount)
FROM credited
WHERE purchase_id IS NOT NULL
GROUP BY purchase_id, user_id
HAVING count(*) > 1
ORDER BY purchase_id COLLATE "C", user_id COLLATE "C"
"""

# A period is 28 days a month: the shortest month, so a charge on the same day of the
# next month is never taken for a duplicate. The months come from the price charged.
DUPLICATE_CHARGES = """
WITH charges AS (
    SELECT id, user_id, amount, created_at,
        lag(id) OVER by_user AS previous_id,
        lag(created_at) OVER by_user AS previous_at
    FROM credits.transactions
    WHERE type = 'usage' AND app_id = 'sync' AND status = 'completed'
    WINDOW by_user AS (PARTITION BY user_id ORDER BY created_at, id)
)
SELECT user_id, id::text, previous_id::text, abs(amount), created_at, previous_at
FROM charges
WHERE previous_id IS NOT NULL
    AND created_at - previous_at < make_interval(
        days => 28 * CASE abs(amount) WHEN 90 THEN 3 WHEN 360 THEN 12 ELSE 1 END)
ORDER BY user_id COLLATE "C", created_at, id
"""

BROKEN_CHAINS = """
WITH chain AS (
    SELECT id, user_id, balance_before, created_at,
        lag(balance_after) OVER (PARTITION BY user_id ORDER BY created_at, id) AS previous_after
    FROM credits.transactions
    WHERE status = 'completed'
)
SELECT user_id, id::text, previous_after, balance_before
FROM chain
WHERE previous_after <> balance_before
ORDER BY user_id COLLATE "C", created_at, id
"""

DUPLICATE_REDEMPTIONS = """
SELECT gift_code_id::text, array_agg(id::text ORDER BY created_at, id)
FROM gifts.gift_redemptions
WHERE status = 'success'
GROUP BY gift_code_id
HAVING count(*) > 1
ORDER BY gift_code_id
"""

UNBACKED_GIFTS = """
SELECT g.id::text, g.code, g.creator_id, g.total_credits
FROM gifts.gift_codes AS g
LEFT JOIN credits.transactions AS t
    ON t.id = g.reservation_transaction_id AND t.status = 'completed'
    AND t.amount = -g.total_credits
WHERE g.status = 'active' AND t.id IS NULL
ORDER BY g.id
"""
