-- Every API instance asks every few seconds which users' sessions, role or standing changed
-- since it last looked, instead of checking each request's session in Postgres.
CREATE INDEX sessions_by_revocation ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX users_by_change ON users (updated_at);
