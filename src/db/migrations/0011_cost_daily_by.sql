-- Per-dimension daily roll-up of priced messages (issue 8: a month
-- summary in milliseconds). cost_daily (0010) is keyed by the full grain
-- (day x category x market x number x campaign), so one org month is
-- tens of thousands of rows to aggregate per request. cost_daily_by holds
-- the same sums per (dimension, day, group_key): a month grouped by any one
-- dimension reads at most 31 x keys rows through the primary key.
--   dimension  day | category | campaign | market | whatsapp_number
--   group_key  the day itself (dimension day), the category, the campaign
--              id (empty outside campaigns), the market, the number id
-- Maintained by the transaction that prices each message, next to the
-- cost_daily upsert (src/domain/costs.c); both always hold equal sums.
CREATE TABLE cost_daily_by (
  organization_id UUID NOT NULL REFERENCES organizations (id),
  dimension TEXT NOT NULL CHECK (dimension IN ('day', 'category', 'campaign',
                                               'market', 'whatsapp_number')),
  day TEXT NOT NULL,
  group_key TEXT NOT NULL,
  currency TEXT NOT NULL,
  messages BIGINT NOT NULL CHECK (messages >= 0),
  amount NUMERIC(18,6) NOT NULL,
  PRIMARY KEY (organization_id, dimension, day, group_key, currency)
) STRICT;

-- Backfill from what has been priced already.
INSERT INTO cost_daily_by (organization_id, dimension, day, group_key, currency,
                           messages, amount)
SELECT organization_id, 'day', day, day, currency, SUM(messages), SUM(amount)
  FROM cost_daily GROUP BY organization_id, day, currency
UNION ALL
SELECT organization_id, 'category', day, category, currency, SUM(messages), SUM(amount)
  FROM cost_daily GROUP BY organization_id, day, category, currency
UNION ALL
SELECT organization_id, 'campaign', day, campaign_id, currency, SUM(messages), SUM(amount)
  FROM cost_daily GROUP BY organization_id, day, campaign_id, currency
UNION ALL
SELECT organization_id, 'market', day, market, currency, SUM(messages), SUM(amount)
  FROM cost_daily GROUP BY organization_id, day, market, currency
UNION ALL
SELECT organization_id, 'whatsapp_number', day, whatsapp_number_id, currency,
       SUM(messages), SUM(amount)
  FROM cost_daily GROUP BY organization_id, day, whatsapp_number_id, currency;
