-- Contacts, conversations and messages (the shared inbox), plus statuses
-- that arrived before their message. Filled by the webhook processor
-- (src/jobs/webhook_processor.h) and, later, by the contacts/messages API.
-- *_at are microseconds since the epoch, UTC; JSON is JSONB (TEXT on SQLite).

-- A person an organization talks to, known by phone (wa_id: digits-only
-- E.164) and/or by Meta's business-scoped user id (bsuid); at least one.
-- tags is a JSON array of strings, attributes a JSON object.
CREATE TABLE contacts (
  id UUID PRIMARY KEY,
  organization_id UUID NOT NULL REFERENCES organizations (id),
  wa_id TEXT,
  bsuid TEXT,
  name TEXT,
  email TEXT,
  tags JSONB NOT NULL DEFAULT '[]',
  attributes JSONB NOT NULL DEFAULT '{}',
  opted_out BOOLEAN NOT NULL DEFAULT FALSE,
  opted_out_at BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  CHECK (wa_id IS NOT NULL OR bsuid IS NOT NULL),
  UNIQUE (organization_id, wa_id),
  UNIQUE (organization_id, bsuid)
) STRICT;

-- GET /api/v1/contacts: newest first within a tenant, keyset paging.
CREATE INDEX contacts_org_created_idx
  ON contacts (organization_id, created_at DESC, id DESC);

-- One thread of messages between a contact and one of the org's numbers.
-- At most one OPEN conversation per (contact, number); a closed one stays
-- as history and the next inbound message opens a new one.
-- window_expires_at: last inbound message time + 24 h (the customer
-- service window in which free-form text may be sent).
CREATE TABLE conversations (
  id UUID PRIMARY KEY,
  organization_id UUID NOT NULL REFERENCES organizations (id),
  contact_id UUID NOT NULL REFERENCES contacts (id),
  whatsapp_number_id UUID NOT NULL REFERENCES whatsapp_numbers (id),
  status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
  assigned_to UUID REFERENCES users (id),
  last_message_at BIGINT,
  last_inbound_at BIGINT,
  window_expires_at BIGINT,
  unread_count INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
) STRICT;

CREATE UNIQUE INDEX conversations_one_open_idx
  ON conversations (contact_id, whatsapp_number_id) WHERE status = 'open';
-- GET /api/v1/conversations: most recent activity first within a tenant.
CREATE INDEX conversations_org_last_idx
  ON conversations (organization_id, last_message_at DESC, id DESC);

-- Messages in and out. wamid is Meta's message id: unique (inbound
-- deliveries are deduplicated by it), NULL while an outbound message is
-- still queued. status only moves forward: queued < sent < delivered <
-- read; failed is terminal; inbound messages are 'received'.
-- content is the type's own object as Meta sent it (media id + mime type,
-- interactive reply, location, ...); text is the text body (or caption).
-- pricing_* come from status webhooks; cost/currency are filled by the
-- costs module (NUMERIC(18,6); INTEGER micro-units on SQLite).
CREATE TABLE messages (
  id UUID PRIMARY KEY,
  organization_id UUID NOT NULL REFERENCES organizations (id),
  conversation_id UUID NOT NULL REFERENCES conversations (id),
  whatsapp_number_id UUID NOT NULL REFERENCES whatsapp_numbers (id),
  contact_id UUID NOT NULL REFERENCES contacts (id),
  direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound')),
  type TEXT NOT NULL,
  text TEXT,
  content JSONB,
  status TEXT NOT NULL
    CHECK (status IN ('queued', 'sent', 'delivered', 'read', 'failed', 'received')),
  wamid TEXT UNIQUE,
  error_code BIGINT,
  error_message TEXT,
  created_at BIGINT NOT NULL,
  sent_at BIGINT,
  delivered_at BIGINT,
  read_at BIGINT,
  failed_at BIGINT,
  pricing_billable BOOLEAN,
  pricing_type TEXT,
  pricing_category TEXT,
  pricing_model TEXT,
  cost NUMERIC(18,6),
  currency TEXT,
  campaign_id UUID,
  biz_opaque_callback_data TEXT
) STRICT;

-- GET /api/v1/conversations/{id}/messages: oldest first.
CREATE INDEX messages_conversation_created_idx
  ON messages (conversation_id, created_at, id);
CREATE INDEX messages_org_created_idx
  ON messages (organization_id, created_at DESC, id DESC);
CREATE INDEX messages_campaign_idx
  ON messages (campaign_id) WHERE campaign_id IS NOT NULL;

-- Statuses Meta reported for a wamid we do not know yet (the status
-- webhook can overtake the send's answer). payload is the status object
-- as Meta sent it; the processor applies and deletes these rows when the
-- message appears (webhook_apply_pending). One row per (wamid, status):
-- repeats are dropped.
CREATE TABLE pending_statuses (
  wamid TEXT NOT NULL,
  status TEXT NOT NULL,
  organization_id UUID REFERENCES organizations (id),
  status_at BIGINT NOT NULL,      -- the status's own timestamp
  payload JSONB NOT NULL,
  received_at BIGINT NOT NULL,
  PRIMARY KEY (wamid, status)
) STRICT;

CREATE INDEX pending_statuses_received_idx ON pending_statuses (received_at);
