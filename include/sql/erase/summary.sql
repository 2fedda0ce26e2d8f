-- What an erasure is about to delete (after purge_inbox.sql or forget_contact.sql).
SELECT
    (SELECT count(*) FROM erase_messages) AS messages,
    (SELECT count(*) FROM erase_copies) AS copies,
    (SELECT count(*) FROM erase_quarantine) AS quarantined,
    (SELECT count(*) FROM inboxsync.message_addresses JOIN erase_messages USING (message_key))
        AS addresses,
    (SELECT count(*) FROM inboxsync.message_references JOIN erase_messages USING (message_key))
        AS references_,
    (SELECT count(*) FROM inboxsync.reply_flags f
     WHERE f.message_key IN (SELECT message_key FROM erase_messages)
        OR f.recipient_email IN (SELECT email FROM erase_forgotten)) AS reply_flags,
    (SELECT count(*) FROM inboxsync.reply_events r
     WHERE r.message_key IN (SELECT message_key FROM erase_messages)
        OR r.reply_message_key IN (SELECT message_key FROM erase_messages)
        OR r.recipient_email IN (SELECT email FROM erase_forgotten)) AS reply_events;
