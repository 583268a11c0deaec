-- WhatsApp Business phone numbers, one organization each.
-- Credentials are write-only and stored sealed (AES-256-GCM, base64 text;
-- see src/core/crypto.h): a fresh nonce per value and the row id as
-- associated data, so a value copied to another row does not open.
-- Delete is SOFT (deleted_at set, credentials scrubbed: access_token_enc =
-- '', the others NULL), so templates and conversations keep their number.
-- phone_number_id is unique among live numbers across the whole
-- installation; a deleted number can be connected again.
-- webhook_path: random base64url (256 bits), the number's webhook URL is
-- /webhooks/meta/{webhook_path}; unique for every row, live or deleted.

CREATE TABLE whatsapp_numbers (
  id UUID PRIMARY KEY,
  organization_id UUID NOT NULL REFERENCES organizations (id),
  phone_number_id TEXT NOT NULL,
  waba_id TEXT NOT NULL,
  display_phone_number TEXT NOT NULL,
  access_token_enc TEXT NOT NULL,
  app_secret_enc TEXT,
  verify_token_enc TEXT,
  throughput_mps INTEGER NOT NULL DEFAULT 80
    CHECK (throughput_mps BETWEEN 1 AND 1000),
  quality_rating TEXT,
  messaging_limit_tier TEXT,
  webhook_path TEXT NOT NULL UNIQUE,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  deleted_at BIGINT
) STRICT;

CREATE UNIQUE INDEX whatsapp_numbers_live_phone_number_id_idx
  ON whatsapp_numbers (phone_number_id) WHERE deleted_at IS NULL;
CREATE INDEX whatsapp_numbers_waba_id_idx ON whatsapp_numbers (waba_id);
-- GET /api/v1/whatsapp-numbers: newest first within a tenant, keyset paging.
CREATE INDEX whatsapp_numbers_org_created_idx
  ON whatsapp_numbers (organization_id, created_at DESC, id DESC);
