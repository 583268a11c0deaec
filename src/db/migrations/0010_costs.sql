-- Costs (API.md "Costs", src/domain/costs.h): what each message cost, a
-- daily roll-up that summaries read, monthly budgets and budget alerts.
-- Money is NUMERIC(18,6) (SQLite: INTEGER micro-units); *_at are
-- microseconds since the epoch, UTC.

-- The pricing record of a message, written once (priced_at IS NULL guard)
-- by the first status webhook that reports it billable or free:
--   pricing_market       the rate card market of the recipient ("BR", "OTHER")
--   pricing_rate         the rate in force at priced_at (0 for free types)
--   priced_at            the status's timestamp: the moment whose rate applies
--   pricing_free_reason  the free type ("free_customer_service", ...), NULL
--                        when billable
-- cost and currency (migration 0007) hold the amount (= rate, one message).
ALTER TABLE messages ADD COLUMN pricing_market TEXT;
ALTER TABLE messages ADD COLUMN pricing_rate NUMERIC(18,6);
ALTER TABLE messages ADD COLUMN priced_at BIGINT;
ALTER TABLE messages ADD COLUMN pricing_free_reason TEXT;

-- Daily roll-up of priced messages, maintained in the transaction that
-- prices each message (upsert adding messages and amount). day is the
-- local date (YYYY-MM-DD) of priced_at in the organization's time zone;
-- campaign_id is '' for messages outside campaigns (a key column cannot be
-- NULL). Free messages count in messages with amount 0.
CREATE TABLE cost_daily (
  organization_id UUID NOT NULL REFERENCES organizations (id),
  day TEXT NOT NULL,
  category TEXT NOT NULL,
  market TEXT NOT NULL,
  whatsapp_number_id TEXT NOT NULL,
  campaign_id TEXT NOT NULL,
  currency TEXT NOT NULL,
  messages BIGINT NOT NULL CHECK (messages >= 0),
  amount NUMERIC(18,6) NOT NULL,
  PRIMARY KEY (organization_id, day, category, market, whatsapp_number_id,
               campaign_id, currency)
) STRICT;

-- One monthly budget per organization.
CREATE TABLE budgets (
  organization_id UUID PRIMARY KEY REFERENCES organizations (id),
  monthly_limit NUMERIC(18,6) NOT NULL CHECK (monthly_limit >= 0),
  alert_threshold_percent INTEGER NOT NULL DEFAULT 80
    CHECK (alert_threshold_percent BETWEEN 1 AND 100),
  currency TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
) STRICT;

-- Alerts raised when month-to-date spend reaches the threshold or the
-- limit: at most one of each kind per (organization, local month).
CREATE TABLE cost_alerts (
  id UUID PRIMARY KEY,
  organization_id UUID NOT NULL REFERENCES organizations (id),
  kind TEXT NOT NULL CHECK (kind IN ('threshold', 'limit')),
  month TEXT NOT NULL,
  spent NUMERIC(18,6) NOT NULL,
  limit_amount NUMERIC(18,6) NOT NULL,
  currency TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  UNIQUE (organization_id, kind, month)
) STRICT;

-- GET /api/v1/costs/alerts: newest first within a tenant.
CREATE INDEX cost_alerts_org_created_idx
  ON cost_alerts (organization_id, created_at DESC, id DESC);
