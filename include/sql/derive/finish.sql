-- End a derive run: the pending messages leave the queue, the team's fingerprint is remembered.
-- (thread_links.sql corrected the history of those it linked; this catches any other.)
-- (Only the derive step changes history, so a row that differs still has the loaded value.)
UPDATE inboxsync.messages m SET history = p.history, derived_at = now()
FROM derive_pending p
WHERE p.history_changes
  AND m.message_key = p.message_key AND m.history IS DISTINCT FROM p.history;

DELETE FROM inboxsync.derive_queue q USING derive_pending p WHERE q.message_key = p.message_key;

INSERT INTO inboxsync.derive_state (name, value) VALUES ('team', %(team)s)
ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
WHERE derive_state.value <> EXCLUDED.value;
