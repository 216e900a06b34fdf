-- Idempotency keys for retried client requests, and the append-only audit log.

-- The stored response is written in the same transaction as the business change it
-- describes. A row without a response is a request still in flight.
CREATE TABLE idempotency_keys (
    user_id              UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key                  TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_fingerprint  TEXT NOT NULL,
    response_status      SMALLINT,
    response_body        JSONB,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);

CREATE TABLE audit_log (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor_id       UUID REFERENCES users (id),
    actor_role     user_role,
    action         TEXT NOT NULL,
    resource_type  TEXT NOT NULL,
    resource_id    TEXT NOT NULL,
    ip             INET,
    request_id     TEXT,
    before         JSONB,
    after          JSONB
);
CREATE INDEX audit_log_by_resource ON audit_log (resource_type, resource_id, occurred_at DESC);
CREATE INDEX audit_log_by_actor ON audit_log (actor_id, occurred_at DESC);

CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only'
        USING ERRCODE = 'insufficient_privilege', CONSTRAINT = 'audit_log_append_only';
END
$$;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
