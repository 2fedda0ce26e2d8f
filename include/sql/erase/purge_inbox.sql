-- inboxsync inbox remove NAME --purge, step 1 (inboxsync.erase.purge_inbox): what goes.
-- The inbox's copies and quarantine rows, and every message no other inbox holds a copy of.
-- Parameters: inbox_id. Then erase/erase.sql deletes it all in the same transaction.
CREATE TEMP TABLE erase_copies ON COMMIT DROP AS
SELECT inbox_id, folder, uidvalidity, uid, message_key
FROM inboxsync.message_copies WHERE inbox_id = %(inbox_id)s;

CREATE TEMP TABLE erase_quarantine ON COMMIT DROP AS
SELECT inbox_id, folder, uidvalidity, uid
FROM inboxsync.quarantine WHERE inbox_id = %(inbox_id)s;

-- Expunged copies count as held: they are the other inbox's record of the message.
CREATE TEMP TABLE erase_messages ON COMMIT DROP AS
SELECT DISTINCT message_key FROM erase_copies
EXCEPT
SELECT message_key FROM inboxsync.message_copies WHERE inbox_id <> %(inbox_id)s;

-- No address is forgotten by a purge: contacts go only when nothing is left of them (erase.sql).
CREATE TEMP TABLE erase_forgotten (email text) ON COMMIT DROP;
