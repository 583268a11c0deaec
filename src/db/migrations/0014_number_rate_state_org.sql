-- number_rate_state gets the tenant column every tenant table has
-- (organization_id), so it can be scoped, audited and exported like the
-- others. The rows are only the dispatcher's pacing cursor (next_slot_at,
-- slow_until): recreated empty, they start again from "now" on the next
-- claim (src/jobs/dispatcher.c: pace_lock), which at worst lets a number
-- that was sending during the upgrade start its next second afresh.
DROP TABLE number_rate_state;
CREATE TABLE number_rate_state (
  whatsapp_number_id UUID PRIMARY KEY REFERENCES whatsapp_numbers (id),
  organization_id UUID NOT NULL REFERENCES organizations (id),
  next_slot_at BIGINT NOT NULL,
  slow_until BIGINT NOT NULL DEFAULT 0,
  updated_at BIGINT NOT NULL
) STRICT;
