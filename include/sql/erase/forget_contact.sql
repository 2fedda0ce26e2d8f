-- inboxsync contact forget EMAIL, step 1 (inboxsync.erase.forget_contact): what goes.
-- Every message the address sent or received in any role (from, sender, reply_to, to, cc, bcc),
-- every message whose raw header mentions it anywhere else (a Return-Path, a display name, an
-- address the parser could not read), all their copies in every inbox, and every quarantined
-- copy whose raw header mentions it. Raw headers are compared case-insensitively, byte for byte
-- (Latin-1 on both sides, so UTF-8 addresses match their UTF-8 bytes).
-- Parameters: email (normalized). Then erase/erase.sql deletes it all in the same transaction.
CREATE TEMP TABLE erase_forgotten ON COMMIT DROP AS SELECT %(email)s::text AS email;

CREATE TEMP TABLE erase_messages ON COMMIT DROP AS
SELECT message_key FROM inboxsync.message_addresses WHERE email = %(email)s
UNION
SELECT message_key FROM inboxsync.messages WHERE from_email = %(email)s
UNION
SELECT message_key FROM inboxsync.message_copies
WHERE strpos(lower(convert_from(raw_header, 'LATIN1')),
             lower(convert_from(convert_to(%(email)s, 'UTF8'), 'LATIN1'))) > 0;

CREATE TEMP TABLE erase_copies ON COMMIT DROP AS
SELECT c.inbox_id, c.folder, c.uidvalidity, c.uid, c.message_key
FROM inboxsync.message_copies c JOIN erase_messages USING (message_key);

CREATE TEMP TABLE erase_quarantine ON COMMIT DROP AS
SELECT inbox_id, folder, uidvalidity, uid FROM inboxsync.quarantine
WHERE strpos(lower(convert_from(raw_header, 'LATIN1')),
             lower(convert_from(convert_to(%(email)s, 'UTF8'), 'LATIN1'))) > 0;
