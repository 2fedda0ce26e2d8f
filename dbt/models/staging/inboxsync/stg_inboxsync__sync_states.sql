select
    inbox_id::integer as inbox_id,
    folder,
    uidvalidity,
    last_uid,
    uidnext,
    messages_on_server,
    backfill_uid,
    backfill_remaining,
    backfill_done_at,
    last_success_at,
    last_error,
    last_error_at,
    updated_at
from {{ source('inboxsync', 'sync_state') }}
