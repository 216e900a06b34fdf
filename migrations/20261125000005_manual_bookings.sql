-- Bookings an admin makes for a user: they skip the sale window and the per-buyer cap (never the
-- seat invariants), and a comp booking costs nothing and is confirmed as soon as it is held.
ALTER TABLE bookings
    ADD COLUMN created_by UUID REFERENCES users (id),
    ADD COLUMN comp BOOLEAN NOT NULL DEFAULT false,
    ADD CONSTRAINT bookings_comp_is_manual CHECK (NOT comp OR created_by IS NOT NULL);

-- An admin may cancel a confirmed booking without a refund (its seats go back on sale).
CREATE OR REPLACE FUNCTION booking_transition_allowed(from_status booking_status, to_status booking_status)
RETURNS BOOLEAN LANGUAGE sql IMMUTABLE AS $$
    SELECT from_status = to_status OR (from_status::text, to_status::text) IN (
        ('PENDING', 'RESERVED'),
        ('PENDING', 'REJECTED'),
        ('RESERVED', 'CONFIRMED'),
        ('RESERVED', 'EXPIRED'),
        ('RESERVED', 'CANCELED'),
        ('EXPIRED', 'CONFIRMED'),
        ('CONFIRMED', 'REFUND_PENDING'),
        ('CONFIRMED', 'CANCELED'),
        ('REFUND_PENDING', 'REFUNDED'),
        ('REFUND_PENDING', 'CONFIRMED')
    )
$$;
