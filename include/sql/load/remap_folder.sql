-- A folder's UIDVALIDITY changed (recreated, migrated): move its known copies to the new UIDs.
-- stg_remap holds every UID of the new generation with the key its Message-ID gives (and
-- X-GM-MSGID on Gmail). Copies pair up by identity and, for duplicates, by order; copies left
-- without a partner are gone from the server and marked expunged. The folder starts its new
-- generation with every UID up to last_uid counted as history still to load (re-mapped UIDs are
-- skipped). Parameters: inbox_id, folder, uidvalidity, last_uid, uidnext.

WITH old AS (
    SELECT uidvalidity, uid,
           coalesce(gm_msgid::text, message_key) AS ident,
           row_number() OVER (PARTITION BY coalesce(gm_msgid::text, message_key)
                              ORDER BY uidvalidity, uid) AS rn
    FROM inboxsync.message_copies
    WHERE inbox_id = %(inbox_id)s AND folder = %(folder)s
      AND uidvalidity <> %(uidvalidity)s AND expunged_at IS NULL
), new AS (
    SELECT uid,
           coalesce(gm_msgid::text, message_key) AS ident,
           row_number() OVER (PARTITION BY coalesce(gm_msgid::text, message_key)
                              ORDER BY uid) AS rn
    FROM stg_remap
    WHERE coalesce(gm_msgid::text, message_key) IS NOT NULL
), pairs AS (
    SELECT old.uidvalidity AS old_uidvalidity, old.uid AS old_uid, new.uid AS new_uid
    FROM old JOIN new USING (ident, rn)
), moved AS (
    UPDATE inboxsync.message_copies c
    SET uidvalidity = %(uidvalidity)s, uid = pairs.new_uid
    FROM pairs
    WHERE c.inbox_id = %(inbox_id)s AND c.folder = %(folder)s
      AND c.uidvalidity = pairs.old_uidvalidity AND c.uid = pairs.old_uid
    RETURNING 1
), gone AS (
    UPDATE inboxsync.message_copies c
    SET expunged_at = now()
    WHERE c.inbox_id = %(inbox_id)s AND c.folder = %(folder)s
      AND c.uidvalidity <> %(uidvalidity)s AND c.expunged_at IS NULL
      AND NOT EXISTS (SELECT 1 FROM pairs
                      WHERE pairs.old_uidvalidity = c.uidvalidity AND pairs.old_uid = c.uid)
    RETURNING 1
), state AS (
    UPDATE inboxsync.sync_state
    SET uidvalidity = %(uidvalidity)s, last_uid = %(last_uid)s, backfill_uid = %(last_uid)s + 1,
        history_uid = %(last_uid)s,
        uidnext = %(uidnext)s, highest_modseq = NULL, backfill_done_at = NULL, updated_at = now()
    WHERE inbox_id = %(inbox_id)s AND folder = %(folder)s
    RETURNING 1
)
SELECT (SELECT count(*) FROM moved), (SELECT count(*) FROM gone);
