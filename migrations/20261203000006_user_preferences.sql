-- What a user chose for themselves: where they usually book, the language they read, and which
-- messages they want. A user without a row has the defaults (see accounts::preferences).
CREATE TABLE user_preferences (
    user_id       UUID PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    default_city  TEXT CHECK (length(default_city) BETWEEN 1 AND 100),
    language      TEXT NOT NULL CHECK (language ~ '^[a-z]{2,3}(-[A-Z]{2})?$'),
    -- Booking confirmations, refunds and reminders, by channel.
    notify_email  BOOLEAN NOT NULL,
    notify_sms    BOOLEAN NOT NULL,
    -- News of shows and offers: never without an explicit yes.
    notify_offers BOOLEAN NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
