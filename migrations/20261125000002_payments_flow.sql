-- Payments and refunds as state machines, refunds of single seats, show refund rules, and the
-- webhook events indexed by what they are about.

-- A payment only moves forward. FAILED -> AUTHORIZED | CAPTURED is forward too: a UPI payment
-- can be reported failed and then succeed on a retry of the same payment.
CREATE FUNCTION payment_transition_allowed(from_status payment_status, to_status payment_status)
RETURNS BOOLEAN LANGUAGE sql IMMUTABLE AS $$
    SELECT from_status = to_status OR (from_status::text, to_status::text) IN (
        ('CREATED', 'AUTHORIZED'),
        ('CREATED', 'CAPTURED'),
        ('CREATED', 'FAILED'),
        ('AUTHORIZED', 'CAPTURED'),
        ('AUTHORIZED', 'FAILED'),
        ('FAILED', 'AUTHORIZED'),
        ('FAILED', 'CAPTURED'),
        ('CAPTURED', 'REFUNDED')
    )
$$;

CREATE FUNCTION payments_guard_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT payment_transition_allowed(OLD.status, NEW.status) THEN
        RAISE EXCEPTION 'payment % cannot move from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'payment_status_transition';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER payments_guard_transition
    BEFORE UPDATE OF status ON payments
    FOR EACH ROW EXECUTE FUNCTION payments_guard_transition();

ALTER TABLE payments
    ADD COLUMN captured_at TIMESTAMPTZ,
    ADD COLUMN failure_reason TEXT,
    ADD COLUMN refunded_paise BIGINT NOT NULL DEFAULT 0,
    ADD CONSTRAINT payments_refund_within_amount
        CHECK (refunded_paise >= 0 AND refunded_paise <= amount_paise);

CREATE FUNCTION refund_transition_allowed(from_status refund_status, to_status refund_status)
RETURNS BOOLEAN LANGUAGE sql IMMUTABLE AS $$
    SELECT from_status = to_status OR (from_status::text, to_status::text) IN (
        ('REQUESTED', 'PENDING'),
        ('REQUESTED', 'PROCESSED'),
        ('REQUESTED', 'FAILED'),
        ('PENDING', 'PROCESSED'),
        ('PENDING', 'FAILED')
    )
$$;

CREATE FUNCTION refunds_guard_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT refund_transition_allowed(OLD.status, NEW.status) THEN
        RAISE EXCEPTION 'refund % cannot move from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'refund_status_transition';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER refunds_guard_transition
    BEFORE UPDATE OF status ON refunds
    FOR EACH ROW EXECUTE FUNCTION refunds_guard_transition();

ALTER TABLE refunds
    -- The seats refunded; empty for the whole payment.
    ADD COLUMN seat_ids UUID[] NOT NULL DEFAULT '{}',
    ADD COLUMN failure_reason TEXT,
    ADD COLUMN processed_at TIMESTAMPTZ;
-- One open refund of a whole payment at a time: a second request while one runs is refused.
CREATE UNIQUE INDEX refunds_one_open_whole_refund_per_payment ON refunds (payment_id)
    WHERE status IN ('REQUESTED', 'PENDING') AND seat_ids = '{}';

-- How long before a showtime starts its buyers may still cancel a paid booking for a refund.
-- NULL: they may not (an admin still can).
ALTER TABLE shows ADD COLUMN refund_cutoff_hours INTEGER CHECK (refund_cutoff_hours >= 0);

ALTER TABLE webhook_events
    ADD COLUMN provider_order_id TEXT,
    ADD COLUMN provider_payment_id TEXT,
    ADD COLUMN provider_refund_id TEXT;
CREATE INDEX webhook_events_by_order ON webhook_events (provider_order_id);
