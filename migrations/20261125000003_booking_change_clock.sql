-- A booking's updated_at orders its status changes: the Redis copy of a status is replaced only
-- by a newer one. now() is the transaction's start, which can be earlier in a transaction that
-- changed the booking later (it waited for the row lock), so the trigger takes the clock at
-- the change itself.
CREATE OR REPLACE FUNCTION bookings_guard_transition() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT booking_transition_allowed(OLD.status, NEW.status) THEN
        RAISE EXCEPTION 'booking % cannot move from % to %', OLD.id, OLD.status, NEW.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'booking_status_transition';
    END IF;
    NEW.updated_at := clock_timestamp();
    RETURN NEW;
END
$$;
