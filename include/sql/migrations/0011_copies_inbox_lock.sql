-- A copy's inbox is checked once per batch instead of once per copy.
--
-- message_copies.inbox_id's foreign key ran a trigger for every copy inserted: a lookup of the
-- inbox and a share lock on its row, 4 to 7 us a copy (5,000 copies: 92-114 ms with the key,
-- 72-76 ms without, on `make bench`'s warehouse), all for the one inbox the batch belongs to.
-- The load now takes that lock itself, once per batch (load.write_batch: FOR KEY SHARE on the
-- inbox's row, and an error naming the inbox when the row is gone), so a batch still cannot add
-- copies to an inbox removed meanwhile: a removal waits for the batch, and the next batch fails.
-- Removing an inbox still removes its copies, by the trigger below instead of ON DELETE CASCADE.
-- dbt's relationships test checks every copy's inbox (stg_inboxsync__message_copies).
ALTER TABLE inboxsync.message_copies DROP CONSTRAINT message_copies_inbox_id_fkey;

CREATE FUNCTION inboxsync.delete_inbox_copies() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM inboxsync.message_copies WHERE inbox_id = OLD.inbox_id;
    RETURN OLD;
END
$$;

CREATE TRIGGER inboxes_delete_copies AFTER DELETE ON inboxsync.inboxes
FOR EACH ROW EXECUTE FUNCTION inboxsync.delete_inbox_copies();
