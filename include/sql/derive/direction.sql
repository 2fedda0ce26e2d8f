-- Direction and contacts.is_team from the team's one definition (inboxsync.is_team): for the
-- pending messages, or for all of them when the team changed (parameter refresh_all).
-- Load computes a direction already; this makes team domains count and corrects old rows.
-- Threads whose messages changed direction get their reply flags recomputed.
UPDATE inboxsync.contacts c SET is_team = inboxsync.is_team(c.email)
WHERE (%(refresh_all)s OR c.email IN (
        SELECT a.email FROM inboxsync.message_addresses a JOIN derive_pending USING (message_key)))
  AND c.is_team IS DISTINCT FROM inboxsync.is_team(c.email);

INSERT INTO derive_threads
SELECT DISTINCT m.thread_id FROM inboxsync.messages m
WHERE %(refresh_all)s AND m.thread_id IS NOT NULL
  AND (m.direction = 'outbound'
       OR m.message_key IN (SELECT message_key FROM inboxsync.reply_flags))
ON CONFLICT DO NOTHING;

WITH computed AS (
    SELECT m.message_key,
           CASE WHEN m.from_email IS NULL OR NOT inboxsync.is_team(m.from_email) THEN 'inbound'
                WHEN EXISTS (SELECT 1 FROM inboxsync.message_addresses a
                             WHERE a.message_key = m.message_key AND a.role IN ('to', 'cc', 'bcc')
                               AND NOT inboxsync.is_team(a.email)) THEN 'outbound'
                ELSE 'internal' END AS direction
    FROM inboxsync.messages m
    WHERE %(refresh_all)s OR m.message_key IN (SELECT message_key FROM derive_pending)
), changed AS (
    UPDATE inboxsync.messages m SET direction = c.direction
    FROM computed c
    WHERE m.message_key = c.message_key AND m.direction IS DISTINCT FROM c.direction
    RETURNING m.thread_id
), affected AS (
    INSERT INTO derive_threads SELECT DISTINCT thread_id FROM changed WHERE thread_id IS NOT NULL
    ON CONFLICT DO NOTHING
)
SELECT count(*) FROM changed;
