-- Backfills newest first, flag and deletion sync, Gmail's identifiers, per-inbox budgets.

-- sync_state keeps two checkpoints per (inbox, folder, uidvalidity):
--   last_uid      high-water mark: new mail is every UID above it;
--   backfill_uid  low-water mark: every UID from it up to last_uid is loaded; history is what lies
--                 below it and is fetched newest first. 1 means the history is complete.
ALTER TABLE inboxsync.sync_state
    ADD COLUMN backfill_uid bigint,
    ADD COLUMN backfill_remaining bigint,
    ADD COLUMN backfill_rate double precision,      -- messages/s of the last run's history pass
    ADD COLUMN backfill_done_at timestamptz,
    ADD COLUMN flags_synced_at timestamptz,
    ADD COLUMN last_run jsonb;                      -- the last run's counts and timings
-- Folders synced before this migration were loaded from UID 1 upwards: their history is complete.
UPDATE inboxsync.sync_state
SET backfill_uid = 1, backfill_remaining = 0, backfill_done_at = last_success_at
WHERE uidvalidity IS NOT NULL;

-- Gmail (X-GM-EXT-1): one message in many labels; All Mail is synced and labels stored.
ALTER TABLE inboxsync.message_copies
    ADD COLUMN gm_msgid numeric(20),
    ADD COLUMN gm_thrid numeric(20),
    ADD COLUMN gm_labels text[];
CREATE INDEX message_copies_gm_msgid_idx ON inboxsync.message_copies (gm_msgid)
    WHERE gm_msgid IS NOT NULL;

ALTER TABLE inboxsync.messages
    ADD COLUMN gm_thrid numeric(20);

-- Per-inbox budget of one scheduled run (NULL: the defaults in inboxsync.settings).
ALTER TABLE inboxsync.inboxes
    ADD COLUMN provider text NOT NULL DEFAULT 'imap'
        CHECK (provider IN ('imap', 'gmail', 'microsoft')),
    ADD COLUMN budget_messages integer CHECK (budget_messages > 0),
    ADD COLUMN budget_bytes bigint CHECK (budget_bytes > 0);
