-- End a derive run: the pending messages are derived, the team's fingerprint remembered.
UPDATE inboxsync.messages m SET derived_at = now(), history = p.history
FROM derive_pending p WHERE m.message_key = p.message_key;

INSERT INTO inboxsync.derive_state (name, value) VALUES ('team', %(team)s)
ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
WHERE derive_state.value <> EXCLUDED.value;
