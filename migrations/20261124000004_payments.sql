-- Payments through Razorpay, refunds, and the webhook events that report on both.

CREATE TYPE payment_status AS ENUM ('CREATED', 'AUTHORIZED', 'CAPTURED', 'FAILED', 'REFUNDED');
CREATE TYPE refund_status AS ENUM ('REQUESTED', 'PENDING', 'PROCESSED', 'FAILED');

CREATE TABLE payments (
    id                   UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    booking_id           UUID NOT NULL REFERENCES bookings (id),
    provider_order_id    TEXT NOT NULL UNIQUE,
    provider_payment_id  TEXT UNIQUE,
    amount_paise         BIGINT NOT NULL CHECK (amount_paise >= 0),
    currency             CHAR(3) NOT NULL DEFAULT 'INR',
    status               payment_status NOT NULL DEFAULT 'CREATED',
    method               TEXT,
    -- Every status change with its source (verify call or webhook event id), oldest first.
    status_history       JSONB NOT NULL DEFAULT '[]'::jsonb,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- One order per booking unless the previous attempt failed.
CREATE UNIQUE INDEX payments_one_open_order_per_booking ON payments (booking_id)
    WHERE status <> 'FAILED';
CREATE INDEX payments_by_status ON payments (status, created_at DESC);

-- One row per refund request; its id is the idempotency key sent to the provider.
CREATE TABLE refunds (
    id                  UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    payment_id          UUID NOT NULL REFERENCES payments (id),
    booking_id          UUID NOT NULL REFERENCES bookings (id),
    amount_paise        BIGINT NOT NULL CHECK (amount_paise > 0),
    status              refund_status NOT NULL DEFAULT 'REQUESTED',
    provider_refund_id  TEXT UNIQUE,
    reason              TEXT NOT NULL,
    requested_by        UUID REFERENCES users (id),
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX refunds_by_payment ON refunds (payment_id);

-- Deduplicated by the provider's event id; the raw body is kept as received.
CREATE TABLE webhook_events (
    event_id          TEXT PRIMARY KEY,
    event_type        TEXT NOT NULL,
    payload           JSONB NOT NULL,
    received_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    processed_at      TIMESTAMPTZ,
    processing_error  TEXT
);
CREATE INDEX webhook_events_unprocessed ON webhook_events (received_at) WHERE processed_at IS NULL;
