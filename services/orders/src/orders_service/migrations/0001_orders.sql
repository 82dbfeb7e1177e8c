-- Orders and their flow state. Idempotency keys are per user; NULL keys (no header) never collide.
CREATE TABLE IF NOT EXISTS orders (
    id               uuid PRIMARY KEY,
    user_id          text NOT NULL,
    product_id       bigint NOT NULL,
    quantity         integer NOT NULL CHECK (quantity >= 1),
    shipping_address text NOT NULL CHECK (char_length(shipping_address) BETWEEN 1 AND 500),
    status           text NOT NULL CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    amount           numeric(14, 2),
    payment_id       uuid,
    failure_reason   text,
    idempotency_key  text,
    request_hash     text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT orders_idempotency_key_per_user UNIQUE (user_id, idempotency_key)
);

-- Finds orders whose flow was interrupted.
CREATE INDEX IF NOT EXISTS orders_unfinished ON orders (updated_at) WHERE status IN ('pending', 'processing');
