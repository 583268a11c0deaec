-- The audit log: one row per change made through the API (written in the
-- same transaction as the change), plus logins, logouts and system actions
-- (user_id NULL). Append-only: nothing updates or deletes these rows.
-- changes is {field: [old, new]} without secrets (JSONB; TEXT on SQLite).
-- record_id is TEXT, not UUID, so a table keyed otherwise can be audited.

CREATE TABLE audit_logs (
  id UUID PRIMARY KEY,
  organization_id UUID NOT NULL REFERENCES organizations (id),
  user_id UUID,
  action TEXT NOT NULL,
  table_name TEXT NOT NULL,
  record_id TEXT,
  changes JSONB NOT NULL,
  ip TEXT,
  request_id TEXT,
  created_at BIGINT NOT NULL
) STRICT;

-- GET /api/v1/audit-logs: newest first within a tenant, keyset paging.
CREATE INDEX audit_logs_org_created_idx
  ON audit_logs (organization_id, created_at DESC, id DESC);
-- The filters (each also ordered for the paging).
CREATE INDEX audit_logs_org_table_idx
  ON audit_logs (organization_id, table_name, created_at DESC, id DESC);
CREATE INDEX audit_logs_org_user_idx
  ON audit_logs (organization_id, user_id, created_at DESC, id DESC);
CREATE INDEX audit_logs_org_action_idx
  ON audit_logs (organization_id, action, created_at DESC, id DESC);
CREATE INDEX audit_logs_org_record_idx
  ON audit_logs (organization_id, record_id, created_at DESC, id DESC);
