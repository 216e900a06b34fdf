-- What the stats read by: payments by the time they were captured, bookings by when they
-- were made.
CREATE INDEX payments_by_capture ON payments (captured_at) WHERE status IN ('CAPTURED', 'REFUNDED');
CREATE INDEX bookings_by_creation ON bookings (created_at);
