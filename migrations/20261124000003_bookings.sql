-- Bookings and per-showtime seat inventory.
--
-- The invariant this file exists for: a seat of a showtime belongs to at most one live booking
-- at any moment. Three things enforce it, each on its own:
--   1. `showtime_seats` has one row per (showtime, seat) holding at most one `booking_id`;
--   2. `booking_seats_one_live_booking_per_seat` refuses a second unreleased claim on a seat;
--   3. the transition triggers refuse moves a state machine does not allow, such as handing a
--      sold seat to another booking or taking over a hold that has not expired yet.

CREATE TYPE booking_status AS ENUM (
    'PENDING', 'RESERVED', 'REJECTED', 'CONFIRMED', 'EXPIRED', 'CANCELED',
    'REFUND_PENDING', 'REFUNDED'
);
CREATE TYPE booking_reject_reason AS ENUM (
    'SOLD_OUT', 'SEAT_TAKEN', 'NOT_ON_SALE', 'LIMIT_REACHED', 'INVALID_SEATS'
);
CREATE TYPE seat_status AS ENUM ('AVAILABLE', 'RESERVED', 'SOLD');

CREATE TABLE bookings (
    id               UUID PRIMARY KEY,
    user_id          UUID NOT NULL REFERENCES users (id),
    showtime_id      UUID NOT NULL REFERENCES showtimes (id),
    status           booking_status NOT NULL DEFAULT 'PENDING',
    -- What the buyer asked for (named seats, or a quantity in a section), as submitted.
    request          JSONB NOT NULL,
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    reject_reason    booking_reject_reason,
    hold_expires_at  TIMESTAMPTZ,
    total_paise      BIGINT NOT NULL DEFAULT 0 CHECK (total_paise >= 0),
    currency         CHAR(3) NOT NULL DEFAULT 'INR',
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT bookings_rejection_has_reason
        CHECK ((status = 'REJECTED') = (reject_reason IS NOT NULL)),
    CONSTRAINT bookings_hold_has_deadline
        CHECK (status <> 'RESERVED' OR hold_expires_at IS NOT NULL)
);
CREATE INDEX bookings_by_user ON bookings (user_id, created_at DESC);
CREATE INDEX bookings_by_showtime ON bookings (showtime_id, status);
CREATE INDEX bookings_live_holds ON bookings (hold_expires_at) WHERE status = 'RESERVED';

CREATE FUNCTION booking_transition_allowed(from_status booking_status, to_status booking_status)
RETURNS BOOLEAN LANGUAGE sql IMMUTABLE AS $$
    SELECT from_status = to_status OR (from_status::text, to_status::text) IN (
        ('PENDING', 'RESERVED'),
        ('PENDING', 'REJECTED'),
        ('RESERVED', 'CONFIRMED'),
        ('RESERVED', 'EXPIRED'),
        ('RESERVED', 'CANCELED'),
        -- A payment that lands after expiry confirms the booking if its seats are still free.
        ('EXPIRED', 'CONFIRMED'),
        ('CONFIRMED', 'REFUND_PENDING'),
        ('REFUND_PENDING', 'REFUNDED'),
        -- A refund the provider refused leaves the booking as it was.
        ('REFUND_PENDING', 'CONFIRMED')
    )
$$;

CREATE FUNCTION bookings_guard_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT booking_transition_allowed(OLD.status, NEW.status) THEN
        RAISE EXCEPTION 'booking % cannot move from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'booking_status_transition';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER bookings_guard_transition
    BEFORE UPDATE OF status ON bookings
    FOR EACH ROW EXECUTE FUNCTION bookings_guard_transition();

CREATE TABLE showtime_seats (
    showtime_id      UUID NOT NULL REFERENCES showtimes (id) ON DELETE CASCADE,
    seat_id          UUID NOT NULL,
    section_id       UUID NOT NULL,
    price_tier_id    UUID NOT NULL,
    -- Copied from the layout (which never changes under a published showtime) so that
    -- best-available ordering is an index scan of this table alone.
    row_rank         INTEGER NOT NULL,
    row_label        TEXT NOT NULL,
    seat_number      INTEGER NOT NULL,
    status           seat_status NOT NULL DEFAULT 'AVAILABLE',
    booking_id       UUID REFERENCES bookings (id),
    hold_expires_at  TIMESTAMPTZ,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (showtime_id, seat_id),
    FOREIGN KEY (seat_id, section_id) REFERENCES seats (id, section_id),
    FOREIGN KEY (price_tier_id, showtime_id) REFERENCES price_tiers (id, showtime_id),
    CONSTRAINT showtime_seats_holder_matches_status CHECK (
        (status = 'AVAILABLE' AND booking_id IS NULL AND hold_expires_at IS NULL)
        OR (status = 'RESERVED' AND booking_id IS NOT NULL AND hold_expires_at IS NOT NULL)
        OR (status = 'SOLD' AND booking_id IS NOT NULL AND hold_expires_at IS NULL)
    )
);
CREATE INDEX showtime_seats_available
    ON showtime_seats (showtime_id, section_id, row_rank, row_label, seat_number)
    WHERE status = 'AVAILABLE';
CREATE INDEX showtime_seats_holds ON showtime_seats (showtime_id, hold_expires_at)
    WHERE status = 'RESERVED';
CREATE INDEX showtime_seats_by_booking ON showtime_seats (booking_id)
    WHERE booking_id IS NOT NULL;

CREATE FUNCTION showtime_seats_guard_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'SOLD' AND NEW.status = 'RESERVED'
       OR OLD.status = 'SOLD' AND NEW.status = 'SOLD' AND NEW.booking_id IS DISTINCT FROM OLD.booking_id
       OR OLD.status = 'RESERVED' AND NEW.status IN ('RESERVED', 'SOLD')
          AND NEW.booking_id IS DISTINCT FROM OLD.booking_id AND OLD.hold_expires_at > now()
    THEN
        RAISE EXCEPTION 'seat % of showtime % cannot move from % (booking %) to % (booking %)',
            OLD.seat_id, OLD.showtime_id, OLD.status, OLD.booking_id, NEW.status, NEW.booking_id
            USING ERRCODE = 'check_violation', CONSTRAINT = 'showtime_seat_transition';
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER showtime_seats_guard_transition
    BEFORE UPDATE OF status, booking_id ON showtime_seats
    FOR EACH ROW EXECUTE FUNCTION showtime_seats_guard_transition();

-- The seats a booking held or bought, with the price each was sold at. A row is live until
-- the booking lets the seat go (expiry, cancellation, refund).
CREATE TABLE booking_seats (
    booking_id   UUID NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    showtime_id  UUID NOT NULL,
    seat_id      UUID NOT NULL,
    price_paise  BIGINT NOT NULL CHECK (price_paise >= 0),
    released_at  TIMESTAMPTZ,
    PRIMARY KEY (booking_id, seat_id),
    FOREIGN KEY (showtime_id, seat_id) REFERENCES showtime_seats (showtime_id, seat_id)
);
CREATE UNIQUE INDEX booking_seats_one_live_booking_per_seat
    ON booking_seats (showtime_id, seat_id) WHERE released_at IS NULL;

CREATE TABLE tickets (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    booking_id   UUID NOT NULL REFERENCES bookings (id),
    showtime_id  UUID NOT NULL,
    seat_id      UUID NOT NULL,
    code         TEXT NOT NULL UNIQUE,
    issued_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    voided_at    TIMESTAMPTZ,
    FOREIGN KEY (showtime_id, seat_id) REFERENCES showtime_seats (showtime_id, seat_id)
);
CREATE INDEX tickets_by_booking ON tickets (booking_id);
CREATE UNIQUE INDEX tickets_one_valid_per_seat ON tickets (showtime_id, seat_id)
    WHERE voided_at IS NULL;
