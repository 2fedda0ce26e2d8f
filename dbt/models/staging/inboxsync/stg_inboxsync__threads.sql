select
    thread_id,
    root_message_key,
    subject,
    first_message_at,
    last_message_at,
    message_count::integer as message_count,
    updated_at
from {{ source('inboxsync', 'threads') }}
