-- Start a derive run: the messages not derived yet, whether each came with an inbox's history,
-- and an empty set of affected threads. Runs under the derive lock, in the run's transaction.
-- Parameters: history (every pending message is history), h_inbox / h_folder / h_uidvalidity /
-- h_min_uid / h_max_uid (parallel arrays: UID ranges of folders loaded as history), team (the
-- team's fingerprint now, inboxsync.team_fingerprint()).
CREATE TEMP TABLE derive_history ON COMMIT DROP AS
SELECT * FROM unnest(%(h_inbox)s::integer[], %(h_folder)s::text[], %(h_uidvalidity)s::bigint[],
                     %(h_min_uid)s::bigint[], %(h_max_uid)s::bigint[])
    AS h (inbox_id, folder, uidvalidity, min_uid, max_uid)
-- What each folder's sync_state marks as history (survives a crash between load and derive).
UNION ALL
SELECT inbox_id, folder, uidvalidity, 1, history_uid FROM inboxsync.sync_state
WHERE history_uid IS NOT NULL AND uidvalidity IS NOT NULL;

-- Inboxes another session is syncing right now (their sync lock, warehouse.lock_inbox): messages
-- found only there are left for that sync's own derive, which knows which of them are history.
CREATE TEMP TABLE derive_busy ON COMMIT DROP AS
SELECT objid::bigint::integer AS inbox_id FROM pg_locks
WHERE locktype = 'advisory' AND granted AND objsubid = 2
  AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND classid = %(lock_class)s::oid AND pid <> pg_backend_pid()
  AND NOT objid::bigint::integer = ANY (%(own_inboxes)s::integer[]);

-- The messages waiting in derive_queue (the load wrote each with its likely thread and whether it
-- is history, migration 0010), copied and analyzed first: the queue's own statistics lag behind
-- its contents, and a planner that takes it for large scans every message and copy instead of
-- looking the queued ones up (over the derive steps of a 100,000-message `make bench` sync:
-- 1.78 s before, 1.47 s with the copy; in an hourly step, a scan of the whole warehouse).
-- A message is classified again (direction.sql) unless the load classified it with the team of now
-- (migration 0012).
CREATE TEMP TABLE derive_queued ON COMMIT DROP AS
SELECT message_key, bool_or(team IS DISTINCT FROM %(team)s) AS reclassify
FROM inboxsync.derive_queue GROUP BY message_key;
ANALYZE derive_queued;

-- A message is history when every copy of it lies in one of the given history ranges.
-- Each queued message's copies and row are looked up by its key (OFFSET 0 keeps a subquery from
-- being flattened into a join): the planner hashed every message of the warehouse to find a
-- step's ten thousand, a scan that grows with the warehouse (this statement in a step of 10,000
-- messages: 89 ms in a warehouse of 100,000 messages, 285 ms in one of 1,000,000, 157 ms looked
-- up).
CREATE TEMP TABLE derive_pending ON COMMIT DROP AS
SELECT m.message_key, m.message_id, m.in_reply_to, m.sent_at, m.thread_id AS loaded_thread_id,
       q.reclassify, q.history,
       -- Counted by ANALYZE below: the planner then knows how few of the step's messages change
       -- history (finish.sql), which it cannot tell from the two columns.
       q.history IS DISTINCT FROM m.history AS history_changes
FROM (
    SELECT q.message_key, q.reclassify,
           %(history)s OR coalesce(bool_and(EXISTS (
               SELECT 1 FROM derive_history h
               WHERE h.inbox_id = c.inbox_id AND h.folder = c.folder
                 AND h.uidvalidity = c.uidvalidity AND c.uid >= h.min_uid
                 AND (h.max_uid IS NULL OR c.uid <= h.max_uid))), false) AS history
    FROM derive_queued q
    LEFT JOIN LATERAL (
        SELECT c.inbox_id, c.folder, c.uidvalidity, c.uid FROM inboxsync.message_copies c
        WHERE c.message_key = q.message_key AND c.expunged_at IS NULL
        OFFSET 0
    ) c ON true
    GROUP BY q.message_key, q.reclassify
    HAVING NOT coalesce(bool_and(c.inbox_id IN (SELECT inbox_id FROM derive_busy)), false)
) q
CROSS JOIN LATERAL (
    SELECT * FROM inboxsync.messages m WHERE m.message_key = q.message_key OFFSET 0
) m;
ALTER TABLE derive_pending ADD PRIMARY KEY (message_key);
-- Only the columns the step's statements join and filter on: the ids and dates are only read
-- out, and their statistics cost most of the ANALYZE.
ANALYZE derive_pending (message_key, reclassify, history, history_changes);

CREATE TEMP TABLE derive_threads (thread_id text PRIMARY KEY) ON COMMIT DROP;
