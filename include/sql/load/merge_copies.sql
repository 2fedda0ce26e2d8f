-- A batch's copies when some of them exist already (load._write_copies): staged in stg_copies,
-- merged; an existing copy gets the flags and labels fetched now and is no longer expunged.
INSERT INTO inboxsync.message_copies AS c (
    inbox_id, folder, uidvalidity, uid, message_key, flags, internal_date, size, raw_header,
    gm_msgid, gm_thrid, gm_labels)
SELECT inbox_id, folder, uidvalidity, uid, message_key, flags, internal_date, size, raw_header,
       gm_msgid, gm_thrid, gm_labels
FROM stg_copies
ON CONFLICT (inbox_id, folder, uidvalidity, uid) DO UPDATE
    SET flags = EXCLUDED.flags, expunged_at = NULL;
