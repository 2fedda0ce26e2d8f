-- Delete what purge_inbox.sql or forget_contact.sql selected, in the caller's transaction:
--   erase_messages (message_key)      messages that go, with everything derived from them;
--   erase_copies, erase_quarantine    copies and quarantined copies that go;
--   erase_forgotten (email)           an address forgotten everywhere (empty for a purge).
-- Returns (contacts deleted, threads deleted, threads renamed).

-- What hangs on the messages, captured before they go.
CREATE TEMP TABLE erase_addresses ON COMMIT DROP AS
SELECT DISTINCT a.email FROM inboxsync.message_addresses a JOIN erase_messages USING (message_key);
-- (A message not derived yet may carry a guess that names no thread: migration 0010.)
CREATE TEMP TABLE erase_threads ON COMMIT DROP AS
SELECT DISTINCT m.thread_id FROM inboxsync.messages m JOIN erase_messages USING (message_key)
WHERE m.thread_id IN (SELECT thread_id FROM inboxsync.threads);
-- Their thread nodes: their own (md5 of the Message-ID, or of 'key:' || key) and their ancestry.
CREATE TEMP TABLE erase_nodes ON COMMIT DROP AS
SELECT md5(id)::uuid AS node, id FROM (
    SELECT coalesce(m.message_id, 'key:' || m.message_key) AS id
    FROM inboxsync.messages m JOIN erase_messages USING (message_key)
    UNION SELECT r.ref_message_id FROM inboxsync.message_references r JOIN erase_messages USING (message_key)
    UNION SELECT m.in_reply_to FROM inboxsync.messages m JOIN erase_messages USING (message_key)
    WHERE m.in_reply_to IS NOT NULL
) ids;

-- Reply events and flags about them; a flag whose reply goes is unreplied again.
DELETE FROM inboxsync.reply_events r
WHERE r.message_key IN (SELECT message_key FROM erase_messages)
   OR r.reply_message_key IN (SELECT message_key FROM erase_messages)
   OR r.recipient_email IN (SELECT email FROM erase_forgotten);
DELETE FROM inboxsync.reply_flags f
WHERE f.message_key IN (SELECT message_key FROM erase_messages)
   OR f.recipient_email IN (SELECT email FROM erase_forgotten);
UPDATE inboxsync.reply_flags f
SET replied = false, reply_message_key = NULL, replied_at = NULL, response_seconds = NULL,
    detected_at = NULL, history = NULL, event_id = NULL
WHERE f.reply_message_key IN (SELECT message_key FROM erase_messages);

-- Copies, quarantined copies, then the messages with their addresses and references (no
-- foreign key cascades to them since migration 0007).
DELETE FROM inboxsync.message_copies c USING erase_copies e
WHERE (c.inbox_id, c.folder, c.uidvalidity, c.uid) = (e.inbox_id, e.folder, e.uidvalidity, e.uid);
DELETE FROM inboxsync.quarantine q USING erase_quarantine e
WHERE (q.inbox_id, q.folder, q.uidvalidity, q.uid) = (e.inbox_id, e.folder, e.uidvalidity, e.uid);
DELETE FROM inboxsync.message_addresses a USING erase_messages e WHERE a.message_key = e.message_key;
DELETE FROM inboxsync.message_references r USING erase_messages e
WHERE r.message_key = e.message_key;
DELETE FROM inboxsync.derive_queue q USING erase_messages e WHERE q.message_key = e.message_key;
DELETE FROM inboxsync.messages m USING erase_messages e WHERE m.message_key = e.message_key;

-- Thread nodes no remaining message has or references.
DELETE FROM inboxsync.thread_nodes n USING erase_nodes e
WHERE n.node = e.node
  AND NOT EXISTS (SELECT 1 FROM inboxsync.messages m WHERE m.message_id = e.id)
  AND NOT EXISTS (SELECT 1 FROM inboxsync.message_references r WHERE r.ref_message_id = e.id)
  AND e.id NOT IN (SELECT in_reply_to FROM inboxsync.messages WHERE in_reply_to IS NOT NULL);

-- A thread is named after its first message's key: a thread that lives on but whose name is an
-- erased message's key takes its new first message's key.
CREATE TEMP TABLE erase_renames ON COMMIT DROP AS
SELECT DISTINCT ON (m.thread_id) m.thread_id AS old_id, m.message_key AS new_id
FROM inboxsync.messages m
WHERE m.thread_id IN (SELECT thread_id FROM erase_threads)
  AND m.thread_id IN (SELECT message_key FROM erase_messages)
ORDER BY m.thread_id, m.sent_at NULLS LAST, m.message_key;
UPDATE inboxsync.messages m SET thread_id = r.new_id FROM erase_renames r WHERE m.thread_id = r.old_id;
UPDATE inboxsync.thread_nodes n SET thread_id = r.new_id FROM erase_renames r
WHERE n.thread_id = r.old_id;
UPDATE inboxsync.thread_merges t SET thread_id = r.new_id FROM erase_renames r
WHERE t.thread_id = r.old_id;
UPDATE inboxsync.threads t SET thread_id = r.new_id FROM erase_renames r WHERE t.thread_id = r.old_id;
DELETE FROM inboxsync.thread_merges
WHERE merged_thread_id = thread_id OR merged_thread_id IN (SELECT message_key FROM erase_messages);

-- Threads left without messages go with their nodes and merge records; the others' rows are
-- computed again, as derive/thread_links.sql does. (Membership is kept: a thread whose only
-- link between two parts was an erased message stays one thread.)
CREATE TEMP TABLE erase_refresh ON COMMIT DROP AS
SELECT DISTINCT coalesce(r.new_id, t.thread_id) AS thread_id
FROM erase_threads t LEFT JOIN erase_renames r ON r.old_id = t.thread_id;
CREATE TEMP TABLE erase_empty_threads ON COMMIT DROP AS
SELECT thread_id FROM erase_refresh e
WHERE NOT EXISTS (SELECT 1 FROM inboxsync.messages m WHERE m.thread_id = e.thread_id);
DELETE FROM inboxsync.thread_nodes WHERE thread_id IN (SELECT thread_id FROM erase_empty_threads);
DELETE FROM inboxsync.thread_merges WHERE thread_id IN (SELECT thread_id FROM erase_empty_threads);
DELETE FROM inboxsync.threads WHERE thread_id IN (SELECT thread_id FROM erase_empty_threads);
SELECT inboxsync.refresh_threads(ARRAY(SELECT thread_id FROM erase_refresh));

-- Contacts: the forgotten address, and addresses seen by sync only in the erased messages (a
-- manual or team contact stays); the others' first and last seen come from what remains.
CREATE TEMP TABLE erase_contacts ON COMMIT DROP AS
SELECT email FROM inboxsync.contacts WHERE email IN (SELECT email FROM erase_forgotten)
UNION
SELECT c.email FROM inboxsync.contacts c JOIN erase_addresses USING (email)
WHERE c.created_by LIKE 'sync:%' AND NOT c.is_team
  AND NOT EXISTS (SELECT 1 FROM inboxsync.message_addresses a WHERE a.email = c.email);
DELETE FROM inboxsync.engaged_contacts
WHERE email IN (SELECT email FROM erase_contacts) OR email IN (SELECT email FROM erase_forgotten);
DELETE FROM inboxsync.contacts WHERE email IN (SELECT email FROM erase_contacts);
UPDATE inboxsync.contacts c SET first_seen_at = s.first_at, last_seen_at = s.last_at
FROM (
    SELECT a.email, min(m.sent_at) AS first_at, max(m.sent_at) AS last_at
    FROM inboxsync.message_addresses a JOIN inboxsync.messages m USING (message_key)
    WHERE a.email IN (SELECT email FROM erase_addresses)
    GROUP BY a.email
) s
WHERE c.email = s.email;

SELECT (SELECT count(*) FROM erase_contacts),
       (SELECT count(*) FROM erase_empty_threads),
       (SELECT count(*) FROM erase_renames);
