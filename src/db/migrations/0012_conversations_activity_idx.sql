-- GET /api/v1/conversations orders an org's conversations by most recent
-- activity, COALESCE(last_message_at, created_at) DESC, id DESC, keyset
-- paged on that pair (src/domain/conversations.h). The index of 0007 was
-- on last_message_at itself, which cannot give that order: every page
-- read and sorted all of the org's conversations (and, on SQLite, joined
-- each one's contact before the sort). Indexed on the expression itself,
-- a page is a walk of limit + 1 index entries on both engines (the
-- integration test test_conversations.py::test_list_plan_uses_the_index
-- checks the plan). Nothing else orders by last_message_at alone.
DROP INDEX IF EXISTS conversations_org_last_idx;
CREATE INDEX IF NOT EXISTS conversations_org_activity_idx
  ON conversations (organization_id, (COALESCE(last_message_at, created_at)) DESC, id DESC);
