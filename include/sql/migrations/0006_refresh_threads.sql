-- One definition of a thread's row (root = first message by date, subject, first/last message,
-- count), shared by the derive step and by erasure. Threads with no member left get no row here;
-- callers delete those.
CREATE FUNCTION inboxsync.refresh_threads(thread_ids text[]) RETURNS void
LANGUAGE sql AS $$
    WITH members AS (
        SELECT m.thread_id, m.message_key, m.subject, m.sent_at
        FROM inboxsync.messages m JOIN unnest(thread_ids) AS r (thread_id) USING (thread_id)
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
$$;
