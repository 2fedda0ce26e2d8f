-- Per-connection staging tables: filled by COPY, merged, emptied at commit.
-- stg_copies has message_copies' columns and types: a batch's binary COPY goes to either
-- (load._write_copies).
CREATE TEMP TABLE IF NOT EXISTS stg_copies (
    inbox_id integer, folder text, uidvalidity bigint, uid bigint, message_key text,
    flags text[], internal_date timestamptz, size bigint, raw_header bytea,
    gm_msgid numeric(20), gm_thrid numeric(20), gm_labels text[]
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stg_messages (
    message_key text, message_id text, subject text, sent_at timestamptz, date_header text,
    from_email text, from_name text, in_reply_to text, kind text, direction text, list_id text,
    auto_submitted text, content_type text, gm_thrid numeric(20), thread_id text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stg_addresses (
    message_key text, role text, email text, display_name text, position integer
) ON COMMIT DELETE ROWS;
-- Each address of the batch once, as its contact sees it (load.contacts_seen).
CREATE TEMP TABLE IF NOT EXISTS stg_contacts (
    email text, domain text, is_team boolean, display_name text, display_name_at timestamptz,
    first_seen_at timestamptz, last_seen_at timestamptz
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stg_references (
    message_key text, position integer, ref_message_id text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stg_quarantine (
    uid bigint, reason text, raw_header bytea, flags text, internal_date timestamptz, size bigint
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stg_flags (
    uid bigint, flags text, gm_labels jsonb
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS stg_remap (
    uid bigint, message_key text, gm_msgid numeric(20)
) ON COMMIT DELETE ROWS;
