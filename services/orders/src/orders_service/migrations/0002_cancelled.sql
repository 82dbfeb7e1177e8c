-- Orders can be cancelled by their owner or an admin once completed (POST /orders/{id}/cancel).
ALTER TABLE orders DROP CONSTRAINT IF EXISTS orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled'));
