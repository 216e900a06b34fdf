-- Jobs whose publish failed (times = 0: the sweep publishes them at its next round), and when
-- the sweep last published a job again and how often, so that a job whose copy may still be
-- on its way is not published over and over (the wait doubles each time).
CREATE TABLE republished_jobs (
    kind TEXT NOT NULL,
    job_id UUID NOT NULL,
    republished_at TIMESTAMPTZ NOT NULL,
    times INTEGER NOT NULL CHECK (times >= 0),
    PRIMARY KEY (kind, job_id)
);
CREATE INDEX republished_jobs_by_age ON republished_jobs (republished_at);

-- The sweep looks for bookings still PENDING; on the night they are few among many.
CREATE INDEX bookings_pending_by_age ON bookings (created_at) WHERE status = 'PENDING';
