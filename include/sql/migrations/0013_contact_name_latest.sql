-- A contact's display name is the one on its most recent message, whatever order inboxes and
-- batches load in.
--
-- The merge kept the first name it met (coalesce(existing, new)), and within a batch the least
-- one in text order: which name a contact got depended on which inbox's task merged first and on
-- batch boundaries (tests/integration/test_celery.py had to ignore the column). The load now
-- takes, per address, the name on the batch's latest message that carries one (by Date, or the
-- copy's INTERNALDATE without one; the greater name on a tie: inboxsync.load.contacts_seen),
-- and replaces the contact's name only with a name seen on a later message. display_name_at
-- records when the kept name was seen:
--   a time      the Date of the latest message carrying the name;
--   -infinity   a name from mail whose time is unknown (no Date, no INTERNALDATE; or loaded
--               before this migration): any later name from mail replaces it;
--   NULL        no name yet, or a name given by hand (created_by 'manual'): mail only fills a
--               missing name, never replaces one given by hand.
ALTER TABLE inboxsync.contacts ADD COLUMN display_name_at timestamptz;

UPDATE inboxsync.contacts SET display_name_at = '-infinity'
WHERE display_name IS NOT NULL AND created_by <> 'manual';

-- Whether a contact whose name is old_name, seen at old_at, takes new_name seen at new_at (the
-- merge's one rule, load/merge_batch.sql; inlined by the planner). Names tie-break in code point
-- order, as the load ranks a batch's names (inboxsync.load.contacts_seen), whatever the
-- database's collation.
CREATE FUNCTION inboxsync.takes_name(
    old_name text, old_at timestamptz, new_name text, new_at timestamptz
) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT new_name IS NOT NULL
       AND (old_name IS NULL
            OR (old_at IS NOT NULL
                AND (new_at, new_name COLLATE "C") > (old_at, old_name COLLATE "C")))
$$;
