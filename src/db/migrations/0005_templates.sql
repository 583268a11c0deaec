-- Meta message templates, one WhatsApp number (and so one WABA) each.
-- components is Meta's own component array, stored as sent (JSONB; TEXT on
-- SQLite). parameter_format is NULL when the client gave none (Meta's
-- default, POSITIONAL). status starts DRAFT; submit makes it PENDING with
-- meta_template_id set; webhooks and sync move it on from there.
-- (whatsapp_number_id, name, language) is unique: Meta's own key per WABA.

CREATE TABLE templates (
  id UUID PRIMARY KEY,
  organization_id UUID NOT NULL REFERENCES organizations (id),
  whatsapp_number_id UUID NOT NULL REFERENCES whatsapp_numbers (id),
  name TEXT NOT NULL,
  language TEXT NOT NULL,
  category TEXT NOT NULL,
  parameter_format TEXT
    CHECK (parameter_format IN ('POSITIONAL', 'NAMED')),
  components JSONB NOT NULL,
  status TEXT NOT NULL
    CHECK (status IN ('DRAFT', 'PENDING', 'APPROVED', 'REJECTED', 'PAUSED',
                      'DISABLED', 'ARCHIVED', 'DELETED')),
  rejected_reason TEXT,
  quality_score TEXT,
  meta_template_id TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  UNIQUE (whatsapp_number_id, name, language)
) STRICT;

-- GET /api/v1/templates: newest first within a tenant, keyset paging.
CREATE INDEX templates_org_created_idx
  ON templates (organization_id, created_at DESC, id DESC);
-- Webhooks find a template by Meta's id.
CREATE INDEX templates_meta_template_id_idx ON templates (meta_template_id);
