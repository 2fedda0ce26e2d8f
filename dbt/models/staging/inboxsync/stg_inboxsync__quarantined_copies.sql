select
    inbox_id::integer as inbox_id,
    folder,
    uidvalidity,
    uid,
    reason,
    quarantined_at
from {{ source('inboxsync', 'quarantine') }}
