-- An account may be known by its Google identity alone: when a Google sign-in proves an address
-- that a Google-linked account had changed to without proving it, the address goes to the one
-- who proved it and that account keeps its Google identity.
ALTER TABLE users DROP CONSTRAINT users_has_identity;
ALTER TABLE users ADD CONSTRAINT users_has_identity
    CHECK (email IS NOT NULL OR phone IS NOT NULL OR google_subject IS NOT NULL);
