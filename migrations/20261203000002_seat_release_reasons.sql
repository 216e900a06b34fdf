-- Why a booking let a seat go. A payment that lands after its hold lapsed may take back the
-- seats the hold had (if they are still free), and only those: never seats an admin moved the
-- booking away from, nor seats refunded or cancelled.
CREATE TYPE seat_release_reason AS ENUM ('LAPSED', 'CANCELED', 'REFUNDED', 'MOVED');

ALTER TABLE booking_seats ADD COLUMN release_reason seat_release_reason;

-- Claims released before this migration: the booking's status says why, as well as it can.
UPDATE booking_seats bs
SET release_reason = CASE b.status
        WHEN 'EXPIRED' THEN 'LAPSED'::seat_release_reason
        WHEN 'CANCELED' THEN 'CANCELED'::seat_release_reason
        WHEN 'REFUNDED' THEN 'REFUNDED'::seat_release_reason
        WHEN 'REFUND_PENDING' THEN 'REFUNDED'::seat_release_reason
        ELSE 'MOVED'::seat_release_reason
    END
FROM bookings b
WHERE b.id = bs.booking_id AND bs.released_at IS NOT NULL;

ALTER TABLE booking_seats ADD CONSTRAINT booking_seats_release_has_reason
    CHECK ((released_at IS NULL) = (release_reason IS NULL));
