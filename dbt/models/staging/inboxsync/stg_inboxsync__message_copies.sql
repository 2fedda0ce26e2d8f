select
    inbox_id::integer as inbox_id,
    folder,
    uidvalidity,
    uid,
    message_key,
    internal_date,
    size as size_bytes,
    synced_at,
    expunged_at
from {{ source('inboxsync', 'message_copies') }}
