-- Payments: one row per charge attempt, keyed per caller by the Idempotency-Key.
CREATE TABLE IF NOT EXISTS payments (
    id                 uuid PRIMARY KEY,
    owner_id           text NOT NULL,
    order_id           uuid NOT NULL,
    amount             numeric(12, 2) NOT NULL CHECK (amount > 0),
    currency           char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    status             text NOT NULL CHECK (status IN ('authorized', 'declined', 'refunded')),
    decline_reason     text,
    provider_reference text,
    idempotency_key    text NOT NULL,
    request_hash       text NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    refunded_at        timestamptz,
    CONSTRAINT payments_idempotency_key_per_owner UNIQUE (owner_id, idempotency_key)
);

-- At most one live (authorized) charge per order, whatever keys the callers use.
CREATE UNIQUE INDEX IF NOT EXISTS payments_one_authorized_per_order
    ON payments (order_id) WHERE status = 'authorized';

CREATE INDEX IF NOT EXISTS payments_order_id ON payments (order_id);
