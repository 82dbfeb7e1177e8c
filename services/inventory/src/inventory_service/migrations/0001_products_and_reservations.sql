-- Products and the stock reservations orders hold against them.
CREATE TABLE IF NOT EXISTS products (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text          NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    price      numeric(12,2) NOT NULL CHECK (price >= 0),
    -- The database, not the code, guarantees stock never goes negative.
    stock      integer       NOT NULL CHECK (stock >= 0),
    created_at timestamptz   NOT NULL DEFAULT now(),
    updated_at timestamptz   NOT NULL DEFAULT now()
);

-- One reservation per order: the primary key makes reserve idempotent per order_id.
CREATE TABLE IF NOT EXISTS reservations (
    order_id    uuid          PRIMARY KEY,
    product_id  bigint        NOT NULL REFERENCES products (id),
    quantity    integer       NOT NULL CHECK (quantity >= 1),
    unit_price  numeric(12,2) NOT NULL,
    status      text          NOT NULL CHECK (status IN ('reserved', 'released')),
    created_at  timestamptz   NOT NULL DEFAULT now(),
    released_at timestamptz
);
CREATE INDEX IF NOT EXISTS reservations_product_id_idx ON reservations (product_id);
