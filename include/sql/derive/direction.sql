-- Direction and contacts.is_team from the team's one definition (inboxsync.is_team): for the
-- pending messages the load classified with another team than today's (derive_pending.reclassify,
-- migration 0012), or for all messages when the team changed since the last run (parameter
-- refresh_all). The load's classification of the others stands: it used this very team.
-- Threads whose messages changed direction get their reply flags recomputed.

-- The messages concerned, in a table of their own: a "refresh_all OR key IN (pending)" filter
-- keeps PostgreSQL from joining (it plans sub-selects before it folds the constant), so every
-- step scanned all messages and addresses of the warehouse (0.17 s of an hourly step at 100,000
-- messages, growing with the warehouse) to find those of the pending ones.
CREATE TEMP TABLE derive_scope ON COMMIT DROP AS
SELECT message_key FROM derive_pending WHERE reclassify AND NOT %(refresh_all)s
UNION ALL
SELECT message_key FROM inboxsync.messages WHERE %(refresh_all)s;
ANALYZE derive_scope;

-- Every address of those messages, asked once each whether it is the team's: is_team costs an
-- executor start per call, and an address recurs in thousands of messages.
CREATE TEMP TABLE derive_emails ON COMMIT DROP AS
SELECT email, inboxsync.is_team(email) AS is_team
FROM (
    SELECT a.email FROM derive_scope s JOIN inboxsync.message_addresses a USING (message_key)
    UNION
    SELECT m.from_email FROM derive_scope s JOIN inboxsync.messages m USING (message_key)
    WHERE m.from_email IS NOT NULL
) e;
ALTER TABLE derive_emails ADD PRIMARY KEY (email);
ANALYZE derive_emails;

-- Contacts are locked in email order, as the load's merge locks them (load/merge_batch.sql).
WITH locked AS (
    SELECT c.email, coalesce(e.is_team, inboxsync.is_team(c.email)) AS is_team
    FROM inboxsync.contacts c
    LEFT JOIN derive_emails e USING (email)
    WHERE (e.email IS NOT NULL OR %(refresh_all)s)
      AND c.is_team IS DISTINCT FROM coalesce(e.is_team, inboxsync.is_team(c.email))
    ORDER BY c.email
    FOR UPDATE OF c
)
UPDATE inboxsync.contacts c SET is_team = l.is_team
FROM locked l
WHERE c.email = l.email;

INSERT INTO derive_threads
SELECT DISTINCT m.thread_id FROM inboxsync.messages m
WHERE %(refresh_all)s AND m.thread_id IS NOT NULL
  AND (m.direction = 'outbound'
       OR m.message_key IN (SELECT message_key FROM inboxsync.reply_flags))
ON CONFLICT DO NOTHING;

WITH computed AS (
    SELECT m.message_key,
           CASE WHEN f.is_team IS NOT TRUE THEN 'inbound'
                WHEN EXISTS (SELECT 1 FROM inboxsync.message_addresses a
                             JOIN derive_emails r USING (email)
                             WHERE a.message_key = m.message_key AND a.role IN ('to', 'cc', 'bcc')
                               AND NOT r.is_team) THEN 'outbound'
                ELSE 'internal' END AS direction
    FROM derive_scope s
    JOIN inboxsync.messages m USING (message_key)
    LEFT JOIN derive_emails f ON f.email = m.from_email
), changed AS (
    UPDATE inboxsync.messages m SET direction = c.direction, derived_at = now()
    FROM computed c
    WHERE m.message_key = c.message_key AND m.direction IS DISTINCT FROM c.direction
    RETURNING m.thread_id
), affected AS (
    INSERT INTO derive_threads SELECT DISTINCT thread_id FROM changed WHERE thread_id IS NOT NULL
    ON CONFLICT DO NOTHING
)
SELECT count(*) FROM changed;
