-- Apply the thread links computed in Python (inboxsync.threads.link) from the staged tables
-- derive_links (message_key, thread_id, corrected: the link or the history differs from what
-- the load wrote), derive_nodes (node, thread_id, stored: whether the
-- step's lookup found the node) and derive_merges (merged_thread_id, thread_id); then refresh
-- the affected threads' rows.

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

-- Nodes the lookup did not find are new: only derive steps add nodes, one at a time under the
-- derive lock, so a plain INSERT (ON CONFLICT's speculative insertion made this statement about
-- 40% slower: 10,000 new nodes in 140 ms instead of 95 ms at 100,000 messages).
INSERT INTO inboxsync.thread_nodes (node, thread_id)
SELECT node, thread_id FROM derive_nodes WHERE NOT stored;
-- Stored nodes that change thread (an erasure may have removed one meanwhile: it comes back).
INSERT INTO inboxsync.thread_nodes AS n (node, thread_id)
SELECT node, thread_id FROM derive_nodes WHERE stored
ON CONFLICT (node) DO UPDATE SET thread_id = EXCLUDED.thread_id
WHERE n.thread_id <> EXCLUDED.thread_id;

-- The load wrote each message with its likely thread and history (migration 0010): only the
-- messages where the step corrects one of them are rewritten (an UPDATE of a message writes a new
-- row version and an entry in each of its indexes). A guessed thread that exists is refreshed
-- below, having lost the message (a guess that names no thread was never counted anywhere).
-- Only the links marked corrected are looked up (joining all of a step's messages to their rows
-- to compare took most of this statement's time); a merge above may already have moved a
-- message to the thread the link names, hence the comparison.
WITH corrected AS (
    UPDATE inboxsync.messages m SET thread_id = l.thread_id, history = p.history, derived_at = now()
    FROM derive_links l JOIN derive_pending p USING (message_key)
    WHERE l.corrected AND m.message_key = l.message_key
      AND (m.thread_id IS DISTINCT FROM l.thread_id OR m.history IS DISTINCT FROM p.history)
    RETURNING p.loaded_thread_id
)
INSERT INTO derive_threads
SELECT DISTINCT c.loaded_thread_id FROM corrected c
JOIN inboxsync.threads t ON t.thread_id = c.loaded_thread_id
ON CONFLICT DO NOTHING;

INSERT INTO derive_threads SELECT DISTINCT thread_id FROM derive_links ON CONFLICT DO NOTHING;

-- The affected threads' rows (inboxsync.refresh_threads, migration 0006).
ANALYZE derive_threads;
SELECT inboxsync.refresh_threads(ARRAY(SELECT thread_id FROM derive_threads));
