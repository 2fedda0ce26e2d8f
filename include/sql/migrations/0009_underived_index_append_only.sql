-- The index of messages not derived yet (derive/pending.sql reads it) was keyed on message_key,
-- an md5: every loaded message went into a random leaf page of it. The derive step only asks for
-- the rows WHERE derived_at IS NULL, whatever the key, so key it on derived_at itself: every
-- entry is NULL, entries are appended to one end of the index (and deduplicated) instead of
-- splitting pages across it. 100,000-message sync (`make bench`), alternated runs: 17.70 ->
-- 16.86 s median.
DROP INDEX inboxsync.messages_underived_idx;
CREATE INDEX messages_underived_idx ON inboxsync.messages (derived_at) WHERE derived_at IS NULL;
