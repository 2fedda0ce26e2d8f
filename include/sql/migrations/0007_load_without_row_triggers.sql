-- The merge of each batch inserts a message's addresses, references and copies in the same
-- statement or transaction as the message itself (include/sql/load/merge_batch.sql), so their
-- foreign keys to messages never caught anything; they cost a trigger and a row lock on the
-- message per child row: about 8,000 per batch of 1,000 messages, 40% of the merge's time
-- (measured by `make bench`). Integrity stays where it is checked: the merge joins children to
-- the messages it inserted, erasure deletes children before their message (erase/erase.sql),
-- and dbt's relationships tests check every staging model against stg_inboxsync__messages.
ALTER TABLE inboxsync.message_addresses DROP CONSTRAINT message_addresses_message_key_fkey;
ALTER TABLE inboxsync.message_references DROP CONSTRAINT message_references_message_key_fkey;
ALTER TABLE inboxsync.message_copies DROP CONSTRAINT message_copies_message_key_fkey;
