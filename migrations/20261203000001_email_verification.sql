-- Codes that prove an account owns its email address. A Google sign-in links only to an account
-- whose email is proven (by one of these, or by Google itself), so nobody can register someone
-- else's address with a password and wait for its owner to sign in with Google.
CREATE TABLE email_verifications (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The address the code was sent to: it proves that address only, not one set later.
    email         TEXT NOT NULL,
    code_hash     TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL CHECK (max_attempts > 0),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at    TIMESTAMPTZ NOT NULL,
    sent_at       TIMESTAMPTZ,
    consumed_at   TIMESTAMPTZ,
    CONSTRAINT email_verification_sent_has_code CHECK (sent_at IS NULL OR code_hash IS NOT NULL),
    CONSTRAINT email_verification_attempts_within_limit CHECK (attempts BETWEEN 0 AND max_attempts)
);
CREATE INDEX email_verifications_by_user ON email_verifications (user_id, created_at DESC);
