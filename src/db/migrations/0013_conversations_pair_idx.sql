-- A closed conversation is reopened by the next inbound message or send
-- of its (contact, number) (src/domain/conversations.h): finding the most
-- recent conversation of a pair, open or closed, walks this index instead
-- of the tenant's conversations. (0007's comment "the next inbound message
-- opens a new one" describes the behaviour before this migration.)
CREATE INDEX conversations_pair_idx
  ON conversations (contact_id, whatsapp_number_id, created_at DESC);
