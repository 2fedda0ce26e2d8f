-- Which copies came with an inbox's history, kept where a crash cannot lose it.
-- history_uid: every UID up to it was already on the server when the folder's first sync (or
-- the re-map after a UIDVALIDITY change) began. Replies among those copies set reply flags but
-- fire no reply event (unless the inbox's history_reply_events is on), whenever they are derived.
ALTER TABLE inboxsync.sync_state ADD COLUMN history_uid bigint;
