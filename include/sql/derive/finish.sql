-- End a derive run: the pending messages are derived, the team's fingerprint remembered.
-- (thread_links.sql marked those it linked; derived_at IS NULL finds the rest, if any.)
UPDATE inboxsync.messages m SET derived_at = now(), history = p.history
FROM derive_pending p WHERE m.message_key = p.message_key AND m.derived_at IS NULL;

INSERT INTO inboxsync.derive_state (name, value) VALUES ('team', %(team)s)
ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
WHERE derive_state.value <> EXCLUDED.value;
