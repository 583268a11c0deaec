-- Authentication state: refresh tokens (grouped in families), revoked
-- access-token ids, and failed logins for the lock-out.
-- *_at are microseconds since the epoch, UTC (see 0001).

-- One row per refresh token ever issued. token_hash is the lower-case hex
-- SHA-256 of the opaque token; the token itself is never stored. A token is
-- used once (used_at); every token issued by rotating another shares its
-- family_id, so presenting a used one again revokes the whole family.
CREATE TABLE refresh_tokens (
  id UUID PRIMARY KEY,
  organization_id UUID NOT NULL REFERENCES organizations (id),
  user_id UUID NOT NULL REFERENCES users (id),
  family_id UUID NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  expires_at BIGINT NOT NULL,
  used_at BIGINT,
  revoked_at BIGINT,
  created_at BIGINT NOT NULL
) STRICT;

CREATE INDEX refresh_tokens_family_id_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_id_idx ON refresh_tokens (organization_id, user_id);

-- Access tokens revoked before their expiry (logout). A row is useless once
-- expires_at (the token's own exp) has passed and may be purged.
CREATE TABLE revoked_tokens (
  jti TEXT PRIMARY KEY,
  organization_id UUID NOT NULL,
  expires_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL
) STRICT;

CREATE INDEX revoked_tokens_expires_at_idx ON revoked_tokens (expires_at);

-- Failed logins per (lower-cased) email, for "5 failures in 15 minutes".
-- Not tied to users: unknown emails are counted too.
CREATE TABLE login_failures (
  email TEXT NOT NULL,
  failed_at BIGINT NOT NULL
) STRICT;

CREATE INDEX login_failures_email_failed_at_idx ON login_failures (email, failed_at);
-- For purging rows that left the window, whatever their email.
CREATE INDEX login_failures_failed_at_idx ON login_failures (failed_at);
