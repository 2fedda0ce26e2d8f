select
    message_key,
    message_id,
    subject,
    sent_at,
    from_email,
    from_name,
    thread_id,
    kind,
    direction,
    first_seen_at,
    derived_at
from {{ source('inboxsync', 'messages') }}
