-- Apply the thread links computed in Python (inboxsync.threads.link) from the staged tables
-- derive_links (message_key, thread_id), derive_nodes (node, thread_id) and
-- derive_merges (merged_thread_id, thread_id); then refresh the affected threads' rows.

-- Merges first: the surviving id replaces the merged one everywhere, and is recorded.
UPDATE inboxsync.thread_merges t SET thread_id = d.thread_id
FROM derive_merges d WHERE t.thread_id = d.merged_thread_id;
INSERT INTO inboxsync.thread_merges (merged_thread_id, thread_id)
SELECT merged_thread_id, thread_id FROM derive_merges
ON CONFLICT (merged_thread_id) DO UPDATE SET thread_id = EXCLUDED.thread_id, merged_at = now();
UPDATE inboxsync.thread_nodes n SET thread_id = d.thread_id
FROM derive_merges d WHERE n.thread_id = d.merged_thread_id;
UPDATE inboxsync.messages m SET thread_id = d.thread_id
FROM derive_merges d WHERE m.thread_id = d.merged_thread_id;
DELETE FROM inboxsync.threads t USING derive_merges d WHERE t.thread_id = d.merged_thread_id;

INSERT INTO inboxsync.thread_nodes AS n (node, thread_id)
SELECT node, thread_id FROM derive_nodes
ON CONFLICT (node) DO UPDATE SET thread_id = EXCLUDED.thread_id
WHERE n.thread_id <> EXCLUDED.thread_id;

UPDATE inboxsync.messages m SET thread_id = l.thread_id
FROM derive_links l
WHERE m.message_key = l.message_key AND m.thread_id IS DISTINCT FROM l.thread_id;

INSERT INTO derive_threads SELECT DISTINCT thread_id FROM derive_links ON CONFLICT DO NOTHING;

-- The affected threads' rows: the root is the first message by date. One pass over their
-- members (a per-thread lateral query costs a scan each when the statistics are stale).
ANALYZE derive_threads;
WITH members AS (
    SELECT m.thread_id, m.message_key, m.subject, m.sent_at
    FROM inboxsync.messages m JOIN derive_threads USING (thread_id)
), agg AS (
    SELECT thread_id, min(sent_at) AS first_at, max(sent_at) AS last_at, count(*) AS n
    FROM members GROUP BY thread_id
), root AS (
    SELECT DISTINCT ON (thread_id) thread_id, message_key, subject
    FROM members ORDER BY thread_id, sent_at NULLS LAST, message_key
)
INSERT INTO inboxsync.threads AS t (
    thread_id, root_message_key, subject, first_message_at, last_message_at, message_count)
SELECT thread_id, root.message_key, root.subject, agg.first_at, agg.last_at, agg.n
FROM agg JOIN root USING (thread_id)
ON CONFLICT (thread_id) DO UPDATE SET
    root_message_key = EXCLUDED.root_message_key, subject = EXCLUDED.subject,
    first_message_at = EXCLUDED.first_message_at, last_message_at = EXCLUDED.last_message_at,
    message_count = EXCLUDED.message_count, updated_at = now();
