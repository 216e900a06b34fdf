-- A refund recorded FAILED may turn out paid after all: Razorpay answered 409 to one run while
-- another run's request was still being processed, or failed it and processed it on a retry.
-- Razorpay's word that it was processed wins over our earlier FAILED.
CREATE OR REPLACE FUNCTION refund_transition_allowed(from_status refund_status, to_status refund_status)
RETURNS BOOLEAN LANGUAGE sql IMMUTABLE AS $$
    SELECT from_status = to_status OR (from_status::text, to_status::text) IN (
        ('REQUESTED', 'PENDING'),
        ('REQUESTED', 'PROCESSED'),
        ('REQUESTED', 'FAILED'),
        ('PENDING', 'PROCESSED'),
        ('PENDING', 'FAILED'),
        ('FAILED', 'PROCESSED')
    )
$$;
