-- The old service's database layout (docs: the cut-over's legacy database), as its ORM
-- created it. Applied in one piece by tests/legacy/fixture.py.
--
-- The blocks between `-- newest: begin` and `-- newest: end` are what the last versions
-- of the old service added (the `grant` ledger type, the reservations table); the
-- fixture leaves them out to build an older database.

CREATE SCHEMA credits;
CREATE SCHEMA gifts;

CREATE TYPE public.transaction_type AS ENUM ('purchase', 'usage', 'refund', 'gift');
-- newest: begin
ALTER TYPE public.transaction_type ADD VALUE 'grant';
-- newest: end
CREATE TYPE public.transaction_status AS ENUM ('pending', 'completed', 'failed', 'cancelled');
CREATE TYPE public.gift_code_type AS ENUM ('simple', 'personalized');
CREATE TYPE public.gift_code_status AS ENUM (
    'active', 'depleted', 'expired', 'cancelled', 'refunded'
);
CREATE TYPE public.gift_redemption_status AS ENUM (
    'success', 'failed_wrong_user', 'failed_depleted', 'failed_expired', 'failed_already_claimed'
);
CREATE TYPE public.sync_billing_interval AS ENUM ('monthly', 'quarterly', 'yearly');
-- newest: begin
CREATE TYPE public.reservation_status AS ENUM ('reserved', 'committed', 'refunded');
-- newest: end

CREATE TABLE credits.balances (
    user_id text PRIMARY KEY,
    balance integer NOT NULL DEFAULT 0,
    total_earned integer NOT NULL DEFAULT 0,
    total_spent integer NOT NULL DEFAULT 0,
    version integer NOT NULL DEFAULT 0,
    created_at timestamp with time zone NOT NULL DEFAULT now(),
    updated_at timestamp with time zone NOT NULL DEFAULT now()
);

CREATE TABLE credits.transactions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id text NOT NULL,
    type public.transaction_type NOT NULL,
    status public.transaction_status NOT NULL DEFAULT 'pending',
    amount integer NOT NULL,
    balance_before integer NOT NULL,
    balance_after integer NOT NULL,
    app_id text NOT NULL,
    description text NOT NULL,
    metadata jsonb,
    idempotency_key text UNIQUE,
    created_at timestamp with time zone NOT NULL DEFAULT now(),
    completed_at timestamp with time zone
);
CREATE INDEX transactions_user_id_idx ON credits.transactions (user_id);
CREATE INDEX transactions_app_id_idx ON credits.transactions (app_id);
CREATE INDEX transactions_created_at_idx ON credits.transactions (created_at);
CREATE INDEX transactions_idempotency_key_idx ON credits.transactions (idempotency_key);
CREATE INDEX transactions_reference_id_idx ON credits.transactions ((metadata ->> 'referenceId'))
    WHERE metadata ->> 'referenceId' IS NOT NULL;

CREATE TABLE credits.packages (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    description text,
    credits integer NOT NULL,
    price_euro_cents integer NOT NULL,
    stripe_price_id text UNIQUE,
    active boolean NOT NULL DEFAULT true,
    sort_order integer NOT NULL DEFAULT 0,
    metadata jsonb,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

CREATE TABLE credits.purchases (
    id uuid PRIMARY KEY,
    user_id text NOT NULL,
    package_id uuid REFERENCES credits.packages (id),
    credits integer NOT NULL,
    price_euro_cents integer NOT NULL,
    stripe_payment_intent_id text UNIQUE,
    stripe_customer_id text,
    status public.transaction_status NOT NULL DEFAULT 'pending',
    metadata jsonb,
    created_at timestamp with time zone NOT NULL,
    completed_at timestamp with time zone
);

CREATE TABLE credits.usage_stats (
    id uuid PRIMARY KEY,
    user_id text NOT NULL,
    app_id text NOT NULL,
    credits_used integer NOT NULL,
    date timestamp with time zone NOT NULL,
    metadata jsonb
);

CREATE TABLE credits.stripe_customers (
    user_id text PRIMARY KEY,
    stripe_customer_id text UNIQUE NOT NULL,
    email text,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

CREATE TABLE credits.sync_subscriptions (
    user_id text PRIMARY KEY,
    active boolean NOT NULL DEFAULT false,
    billing_interval public.sync_billing_interval NOT NULL DEFAULT 'monthly',
    amount_charged integer NOT NULL DEFAULT 30,
    activated_at timestamp with time zone,
    next_charge_at timestamp with time zone,
    paused_at timestamp with time zone,
    is_gifted boolean NOT NULL DEFAULT false,
    gifted_by text,
    gifted_at timestamp with time zone,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

-- newest: begin
CREATE TABLE credits.reservations (
    id uuid PRIMARY KEY,
    user_id text NOT NULL,
    amount integer NOT NULL,
    reason text NOT NULL,
    status public.reservation_status NOT NULL DEFAULT 'reserved',
    created_at timestamp with time zone NOT NULL,
    resolved_at timestamp with time zone
);
-- newest: end

CREATE TABLE gifts.gift_codes (
    id uuid PRIMARY KEY,
    code text UNIQUE NOT NULL,
    short_url text,
    creator_id text NOT NULL,
    creator_name text,
    total_credits integer NOT NULL,
    redeemed integer NOT NULL DEFAULT 0,
    type public.gift_code_type NOT NULL DEFAULT 'simple',
    status public.gift_code_status NOT NULL DEFAULT 'active',
    target_email text,
    message text,
    expires_at timestamp with time zone,
    reservation_transaction_id uuid,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);

CREATE TABLE gifts.gift_redemptions (
    id uuid PRIMARY KEY,
    gift_code_id uuid NOT NULL REFERENCES gifts.gift_codes (id) ON DELETE CASCADE,
    redeemer_user_id text NOT NULL,
    status public.gift_redemption_status NOT NULL,
    credits_received integer NOT NULL DEFAULT 0,
    credit_transaction_id uuid,
    source_app_id text,
    created_at timestamp with time zone NOT NULL
);
