-- Rate cards: what Meta charges per delivered message, installation-wide
-- (not per organization: the prices are Meta's). Insert-only history: a
-- new card adds rows with their effective_from and never updates or
-- deletes old ones, so old rates stay in force for old moments.
--   market          Meta's market code ("BR", "NORTH_AMERICA", "OTHER")
--   calling_codes   space-separated country calling code prefixes of the
--                   market as this row's card defines them ("1", "55");
--                   '' for OTHER (used where no prefix matches)
--   category        marketing | utility | authentication | ...
--   rate            price of one message (NUMERIC(18,6); SQLite: INTEGER
--                   micro-units), never negative
--   currency        ISO 4217 code
--   effective_from  microseconds since the epoch, a date at 00:00 UTC
-- For (market, category) the rate in force at t is the row with the latest
-- effective_from <= t (see src/domain/pricing.h).
CREATE TABLE rate_cards (
  id UUID PRIMARY KEY,
  market TEXT NOT NULL,
  calling_codes TEXT NOT NULL,
  category TEXT NOT NULL,
  rate NUMERIC(18,6) NOT NULL CHECK (rate >= 0),
  currency TEXT NOT NULL,
  effective_from BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  UNIQUE (market, category, effective_from)
) STRICT;
