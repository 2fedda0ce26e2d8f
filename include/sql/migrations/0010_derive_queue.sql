-- Messages wait for the derive step in a queue of their own instead of being marked in their row.
--
-- The load now writes each new message with the thread it most likely belongs to
-- (inboxsync.threads.thread_at_load: the key of its thread's root, which names the thread when the
-- root is the thread's first message) and with whether it came with history; the derive step
-- rewrites a message only where it corrects one of them (about one message in ten in a backfill of
-- the bench's list mail). Marking every message derived in its own row rewrote all of them: a new
-- row version and an entry in each of the six indexes of messages, then autovacuum's cleaning.
--
-- derive_queue holds the key of every message loaded and not derived yet; the load inserts it in
-- the transaction that inserts the message, the derive step deletes it in the transaction that
-- derives the message. No index: it is read whole by each derive step and holds only what the
-- running syncs loaded since the last one.
-- messages.derived_at now tells when the derive step last changed the row (its thread, direction
-- or history); NULL when it kept what the load wrote.
CREATE TABLE inboxsync.derive_queue (
    message_key text NOT NULL,
    queued_at   timestamptz NOT NULL DEFAULT now()
);
INSERT INTO inboxsync.derive_queue (message_key)
SELECT message_key FROM inboxsync.messages WHERE derived_at IS NULL;
DROP INDEX inboxsync.messages_underived_idx;
