-- Campaigns: bulk template sends (API.md "Campaigns"), their materialised
-- recipients, and the per-number pacing state the dispatcher shares across
-- every process on the database (src/jobs/dispatcher.h).
-- *_at are microseconds since the epoch, UTC; money is NUMERIC(18,6)
-- (SQLite: INTEGER micro-units).

-- status: draft | scheduled | running | paused | completed | cancelled | failed
-- audience: {"contact_ids": [..], "tags": [..]}; parameters: the template
-- parameters with "{{contact.*}}" placeholders resolved per recipient.
CREATE TABLE campaigns (
  id UUID PRIMARY KEY,
  organization_id UUID NOT NULL REFERENCES organizations (id),
  name TEXT NOT NULL,
  whatsapp_number_id UUID NOT NULL REFERENCES whatsapp_numbers (id),
  template_id UUID NOT NULL REFERENCES templates (id),
  audience JSONB NOT NULL,
  parameters JSONB,
  status TEXT NOT NULL CHECK (status IN ('draft', 'scheduled', 'running', 'paused',
                                         'completed', 'cancelled', 'failed')),
  scheduled_at BIGINT,
  budget_limit NUMERIC(18,6),
  currency TEXT,
  estimated_cost NUMERIC(18,6),
  error_message TEXT,
  started_at BIGINT,
  completed_at BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
) STRICT;

CREATE INDEX campaigns_org_created_idx
  ON campaigns (organization_id, created_at DESC, id DESC);
CREATE INDEX campaigns_status_idx ON campaigns (status);

-- One row per audience member, made when the campaign starts.
-- status: pending | sending | sent | failed | skipped (delivered/read are
-- read from the message row: counters are derived, they cannot drift).
-- idempotency_key = "campaign_id:recipient_id", sent to Meta as
-- biz_opaque_callback_data so a status webhook can name the recipient.
CREATE TABLE campaign_recipients (
  id UUID PRIMARY KEY,
  organization_id UUID NOT NULL REFERENCES organizations (id),
  campaign_id UUID NOT NULL REFERENCES campaigns (id),
  contact_id UUID NOT NULL REFERENCES contacts (id),
  phone TEXT,
  status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'delivered', 'read',
                                         'failed', 'skipped')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at BIGINT NOT NULL DEFAULT 0,
  claimed_by TEXT,
  claim_expires_at BIGINT,
  idempotency_key TEXT NOT NULL UNIQUE,
  message_id UUID,
  wamid TEXT,
  error_code BIGINT,
  error_message TEXT,
  cost NUMERIC(18,6),
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  UNIQUE (campaign_id, contact_id)
) STRICT;

-- The claimer: due pending rows of a campaign.
CREATE INDEX campaign_recipients_due_idx
  ON campaign_recipients (campaign_id, status, next_attempt_at);
-- Crash recovery: expired claims.
CREATE INDEX campaign_recipients_claim_idx
  ON campaign_recipients (status, claim_expires_at);
-- GET /campaigns/{id}/recipients: keyset paging (created_at DESC, id DESC).
CREATE INDEX campaign_recipients_list_idx
  ON campaign_recipients (campaign_id, created_at DESC, id DESC);

-- The 6-second pair rule looks up recent outbound sends per (number, contact).
CREATE INDEX messages_number_contact_sent_idx
  ON messages (whatsapp_number_id, contact_id, sent_at);

-- Pacing of a number across processes (GCRA / virtual scheduling):
-- next_slot_at is the earliest moment the next send may start; taking n
-- sends moves it n x (1 s / effective rate) forward in one locked update.
-- slow_until: after Meta's 130429 the effective rate is halved until then.
CREATE TABLE number_rate_state (
  whatsapp_number_id UUID PRIMARY KEY REFERENCES whatsapp_numbers (id),
  next_slot_at BIGINT NOT NULL,
  slow_until BIGINT NOT NULL DEFAULT 0,
  updated_at BIGINT NOT NULL
) STRICT;
