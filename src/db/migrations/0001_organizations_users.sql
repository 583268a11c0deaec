-- Organizations (tenants) and their users.
-- Ids are UUID v7 made in C; *_at are microseconds since the epoch, UTC.
-- Written for PostgreSQL; the runner rewrites types for SQLite (migrate.h).

CREATE TABLE organizations (
  id UUID PRIMARY KEY,
  name TEXT NOT NULL,
  slug TEXT NOT NULL UNIQUE,
  timezone TEXT NOT NULL DEFAULT 'UTC',
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
) STRICT;

-- email is stored lower-cased by the application, so UNIQUE is
-- case-insensitive in effect.
CREATE TABLE users (
  id UUID PRIMARY KEY,
  organization_id UUID NOT NULL REFERENCES organizations (id),
  email TEXT NOT NULL UNIQUE,
  password_hash TEXT NOT NULL,
  full_name TEXT NOT NULL,
  role TEXT NOT NULL
    CHECK (role IN ('super_admin', 'org_admin', 'agent', 'viewer')),
  is_active BOOLEAN NOT NULL,
  last_login_at BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
) STRICT;

CREATE INDEX users_organization_id_created_at_idx
  ON users (organization_id, created_at);
