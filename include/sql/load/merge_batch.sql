-- Merge one staged batch into the contract tables and advance the folder's checkpoint.
-- Runs in the same transaction as the COPYs that filled the staging tables, and as the COPY of
-- the batch's copies into message_copies (load._write_copies) (invariant 2).
-- Parameters: inbox_id, folder, uidvalidity, last_uid and backfill_uid (the checkpoint this batch
-- advances; the other is NULL), backfill_remaining, create_contacts, created_by, team (the
-- fingerprint of the team the batch was classified with, or NULL).

-- A message seen before (another inbox, another folder, an earlier batch) keeps its first row;
-- its addresses and references come with it, once. They are inserted only for the messages this
-- statement inserted, and the parser gives each message one row per (role, email) and per
-- reference position, so they cannot conflict: a plain INSERT (ON CONFLICT's speculative
-- insertion cost a tenth of the sync's wall time, `make bench`). Erasure deletes a message's
-- addresses and references with it (erase/erase.sql), so no earlier rows wait for its key.
-- A new message comes with the thread it most likely belongs to (inboxsync.threads.thread_at_load)
-- and whether it is history (this batch is history when it moves the low-water mark); it waits in
-- derive_queue for the derive step, which rewrites it only where it corrects them (migration 0010),
-- with the fingerprint of the team its direction was computed with (migration 0012).
WITH new_messages AS (
    INSERT INTO inboxsync.messages AS m (
        message_key, message_id, subject, sent_at, date_header, from_email, from_name,
        in_reply_to, kind, direction, list_id, auto_submitted, content_type, gm_thrid,
        thread_id, history)
    SELECT message_key, message_id, subject, sent_at, date_header, from_email, from_name,
           in_reply_to, kind, direction, list_id, auto_submitted, content_type, gm_thrid,
           thread_id, %(backfill_uid)s::bigint IS NOT NULL
    FROM stg_messages
    ON CONFLICT (message_key) DO NOTHING
    RETURNING m.message_key
), queued AS (
    INSERT INTO inboxsync.derive_queue (message_key, team)
    SELECT message_key, %(team)s FROM new_messages
), new_addresses AS (
    INSERT INTO inboxsync.message_addresses (message_key, role, email, display_name, position)
    SELECT a.message_key, a.role, a.email, a.display_name, a.position
    FROM stg_addresses a JOIN new_messages USING (message_key)
)
INSERT INTO inboxsync.message_references (message_key, position, ref_message_id)
SELECT r.message_key, r.position, r.ref_message_id
FROM stg_references r JOIN new_messages USING (message_key);

INSERT INTO inboxsync.quarantine (
    inbox_id, folder, uidvalidity, uid, reason, raw_header, flags, internal_date, size)
SELECT %(inbox_id)s, %(folder)s, %(uidvalidity)s, uid, reason, raw_header,
       string_to_array(flags, ' '), internal_date, size
FROM stg_quarantine
ON CONFLICT DO NOTHING;

-- Contacts: every address of the batch, once, with its latest name and the span of its
-- messages' dates (stg_contacts, load.contacts_seen: by Date, or the earliest INTERNALDATE of the
-- message's copies in the batch without one). With the inbox's create-contacts switch off, only
-- addresses that already are contacts are touched.
-- Rows are locked in email order, as every statement that updates several contacts does: two
-- inboxes' batches (and a derive step) touching the same contacts then wait for each other
-- instead of deadlocking.
-- A contact is created with the is_team flag the batch was staged with, computed with the team
-- its sync read when it started. If the team has changed since (a colleague added during a long
-- backfill), a new contact asks the team of now instead: the derive step corrects the contacts
-- of the messages it classifies again, but not those this batch creates for messages loaded
-- before (by an inbox whose create-contacts switch is off), and it re-reads every contact only
-- when the team changes after its own last run.
WITH team_now AS (
    SELECT %(team)s::text IS NOT DISTINCT FROM inboxsync.team_fingerprint() AS staged_is_current
), created AS (
    INSERT INTO inboxsync.contacts AS ct (
        email, display_name, display_name_at, domain, is_team, created_by, first_seen_at,
        last_seen_at)
    SELECT email, display_name, display_name_at, domain,
           CASE WHEN (SELECT staged_is_current FROM team_now) THEN is_team
                ELSE inboxsync.is_team(email) END,
           %(created_by)s, first_seen_at, last_seen_at
    FROM stg_contacts
    WHERE %(create_contacts)s
    ORDER BY email
    -- A name seen on a later message replaces the contact's; a name given by hand stays
    -- (inboxsync.takes_name, migration 0013). First and last seen widen.
    ON CONFLICT (email) DO UPDATE SET
        display_name = CASE WHEN inboxsync.takes_name(ct.display_name, ct.display_name_at,
                                                      EXCLUDED.display_name,
                                                      EXCLUDED.display_name_at)
                            THEN EXCLUDED.display_name ELSE ct.display_name END,
        display_name_at = CASE WHEN inboxsync.takes_name(ct.display_name, ct.display_name_at,
                                                         EXCLUDED.display_name,
                                                         EXCLUDED.display_name_at)
                               THEN EXCLUDED.display_name_at ELSE ct.display_name_at END,
        first_seen_at = least(ct.first_seen_at, EXCLUDED.first_seen_at),
        last_seen_at = greatest(ct.last_seen_at, EXCLUDED.last_seen_at)
    -- Only a contact that changes is written (most of a batch's contacts are known already and
    -- seen before and after it): a write is a new row version, and dead ones for autovacuum.
    -- The row is locked all the same.
    WHERE inboxsync.takes_name(ct.display_name, ct.display_name_at,
                               EXCLUDED.display_name, EXCLUDED.display_name_at)
       OR (ct.first_seen_at, ct.last_seen_at) IS DISTINCT FROM (
           least(ct.first_seen_at, EXCLUDED.first_seen_at),
           greatest(ct.last_seen_at, EXCLUDED.last_seen_at))
), locked AS (
    SELECT ct.email FROM inboxsync.contacts ct JOIN stg_contacts USING (email)
    WHERE NOT %(create_contacts)s
    ORDER BY ct.email
    FOR UPDATE OF ct
)
UPDATE inboxsync.contacts ct SET
    display_name = CASE WHEN inboxsync.takes_name(ct.display_name, ct.display_name_at,
                                                  seen.display_name, seen.display_name_at)
                        THEN seen.display_name ELSE ct.display_name END,
    display_name_at = CASE WHEN inboxsync.takes_name(ct.display_name, ct.display_name_at,
                                                     seen.display_name, seen.display_name_at)
                           THEN seen.display_name_at ELSE ct.display_name_at END,
    first_seen_at = least(ct.first_seen_at, seen.first_seen_at),
    last_seen_at = greatest(ct.last_seen_at, seen.last_seen_at)
FROM stg_contacts seen JOIN locked USING (email)
WHERE ct.email = seen.email
  AND (inboxsync.takes_name(ct.display_name, ct.display_name_at,
                            seen.display_name, seen.display_name_at)
       OR (ct.first_seen_at, ct.last_seen_at) IS DISTINCT FROM (
           least(ct.first_seen_at, seen.first_seen_at),
           greatest(ct.last_seen_at, seen.last_seen_at)));

-- greatest() and least() ignore NULL: a batch of new mail moves only last_uid, history only
-- backfill_uid.
UPDATE inboxsync.sync_state
SET last_uid = greatest(last_uid, %(last_uid)s),
    backfill_uid = least(backfill_uid, %(backfill_uid)s),
    backfill_remaining = coalesce(%(backfill_remaining)s, backfill_remaining),
    updated_at = now()
WHERE inbox_id = %(inbox_id)s AND folder = %(folder)s AND uidvalidity = %(uidvalidity)s;
