-- Raw Meta webhook events: one row per accepted (signature-checked) POST,
-- committed before the 200 is sent (group commit, see
-- src/meta/webhook_ingest.h). The processor (src/jobs) drains them in id
-- order and fills the routing columns; see src/meta/webhook_store.h for the
-- contract between ingestion and processing.
--   id            arrival order (one writer thread commits in queue order)
--   received_at   microseconds since the epoch, when the POST was accepted
--   source        'app' for POST /webhooks/meta, else the whatsapp_numbers.id
--                 whose /webhooks/meta/{webhook_path} received it
--   body          the raw request body, byte for byte (Meta sends compact
--                 JSON with non-ASCII escaped, so TEXT holds it exactly)
--   organization_id, whatsapp_number_id, field: NULL until the processor
--                 routes the event (an event for an unknown number stays
--                 unrouted but is visible to operators)
--   parent_id     set on routed child rows the processor may split a
--                 multi-number POST into (NULL on rows made by ingestion)
--   processed_at  NULL while pending; attempts/error record failures

-- pg-only
CREATE TABLE webhook_events (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  received_at BIGINT NOT NULL,
  source TEXT NOT NULL,
  body TEXT NOT NULL,
  organization_id UUID REFERENCES organizations (id),
  whatsapp_number_id UUID REFERENCES whatsapp_numbers (id),
  field TEXT,
  parent_id BIGINT,
  processed_at BIGINT,
  attempts INTEGER NOT NULL DEFAULT 0,
  error TEXT
);
-- end
-- sqlite-only
CREATE TABLE webhook_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  received_at BIGINT NOT NULL,
  source TEXT NOT NULL,
  body TEXT NOT NULL,
  organization_id UUID REFERENCES organizations (id),
  whatsapp_number_id UUID REFERENCES whatsapp_numbers (id),
  field TEXT,
  parent_id BIGINT,
  processed_at BIGINT,
  attempts INTEGER NOT NULL DEFAULT 0,
  error TEXT
) STRICT;
-- end

-- The processor's scan: pending events in arrival order.
CREATE INDEX webhook_events_pending_idx
  ON webhook_events (id) WHERE processed_at IS NULL;
-- GET /api/v1/webhooks/events: newest first within a tenant, keyset paging.
CREATE INDEX webhook_events_org_received_idx
  ON webhook_events (organization_id, received_at DESC, id DESC);
