-- Accounts: users, device sessions with rotating refresh tokens, phone OTP requests.

CREATE TYPE user_role AS ENUM ('SUPER_ADMIN', 'EDITOR', 'USER');

CREATE TABLE users (
    id                 UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Empty for an account made by phone sign-in until its owner names it.
    name               TEXT NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    -- Stored normalised (trimmed, lower case) so uniqueness is case-insensitive.
    email              TEXT UNIQUE CHECK (email = lower(btrim(email)) AND length(email) <= 254),
    email_verified_at  TIMESTAMPTZ,
    -- E.164 only; parsing happens in the domain layer, this is the last line of defence.
    phone              TEXT UNIQUE CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    phone_verified_at  TIMESTAMPTZ,
    password_hash      TEXT,
    google_subject     TEXT UNIQUE,
    role               user_role NOT NULL DEFAULT 'USER',
    disabled_at        TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT users_has_identity CHECK (email IS NOT NULL OR phone IS NOT NULL)
);

-- One row per signed-in device. A session is also the family of its refresh tokens:
-- revoking it ends every token ever issued to that device.
CREATE TABLE sessions (
    id              UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_name     TEXT,
    user_agent      TEXT,
    ip              INET,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at      TIMESTAMPTZ NOT NULL,
    revoked_at      TIMESTAMPTZ,
    revoked_reason  TEXT
);
CREATE INDEX sessions_live_by_user ON sessions (user_id) WHERE revoked_at IS NULL;

-- Opaque refresh tokens, stored only as a hash. `used_at` marks a token that was rotated:
-- presenting it again is reuse, and revokes the whole session (token family).
CREATE TABLE refresh_tokens (
    id           UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id   UUID NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    token_hash   BYTEA NOT NULL UNIQUE,
    issued_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ NOT NULL,
    used_at      TIMESTAMPTZ,
    replaced_by  UUID REFERENCES refresh_tokens (id)
);
CREATE INDEX refresh_tokens_by_session ON refresh_tokens (session_id);

-- One row per code asked for. The send-OTP worker makes the code, sends it and stores only
-- its hash, so the code never sits in the database or on the queue.
CREATE TABLE otp_requests (
    id            UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    phone         TEXT NOT NULL CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    code_hash     TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL DEFAULT 5 CHECK (max_attempts > 0),
    requester_ip  INET,
    user_id       UUID REFERENCES users (id) ON DELETE CASCADE,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at    TIMESTAMPTZ NOT NULL,
    sent_at       TIMESTAMPTZ,
    consumed_at   TIMESTAMPTZ,
    CONSTRAINT otp_sent_has_code CHECK (sent_at IS NULL OR code_hash IS NOT NULL),
    CONSTRAINT otp_attempts_within_limit CHECK (attempts BETWEEN 0 AND max_attempts)
);
CREATE INDEX otp_requests_by_phone ON otp_requests (phone, created_at DESC);
CREATE INDEX otp_requests_by_ip ON otp_requests (requester_ip, created_at DESC);
