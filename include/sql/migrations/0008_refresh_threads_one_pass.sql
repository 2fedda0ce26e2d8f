-- inboxsync.refresh_threads in one pass over the threads' messages. The first version joined
-- two CTEs over the same messages (per-thread aggregates, and each thread's first message);
-- with the unnest()ed ids estimated at 10 rows the planner joined them by a nested loop that
-- sorted every member once per thread: 3 to 5 s for 3,000 threads in each derive step of
-- `make bench`, where this version takes tens of milliseconds. Same rows: the root is the first
-- message by date (undated last), then key; first/last dates ignore undated messages.
CREATE OR REPLACE FUNCTION inboxsync.refresh_threads(thread_ids text[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO inboxsync.threads AS t (
        thread_id, root_message_key, subject, first_message_at, last_message_at, message_count)
    SELECT m.thread_id,
           (array_agg(m.message_key ORDER BY m.sent_at NULLS LAST, m.message_key))[1],
           (array_agg(m.subject ORDER BY m.sent_at NULLS LAST, m.message_key))[1],
           min(m.sent_at), max(m.sent_at), count(*)
    FROM inboxsync.messages m
    WHERE m.thread_id = ANY (thread_ids)
    GROUP BY m.thread_id
    ON CONFLICT (thread_id) DO UPDATE SET
        root_message_key = EXCLUDED.root_message_key, subject = EXCLUDED.subject,
        first_message_at = EXCLUDED.first_message_at, last_message_at = EXCLUDED.last_message_at,
        message_count = EXCLUDED.message_count, updated_at = now();
$$;
