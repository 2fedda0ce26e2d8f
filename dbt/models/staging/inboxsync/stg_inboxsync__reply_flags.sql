select
    message_key,
    recipient_email,
    sent_at,
    replied as is_replied,
    reply_message_key,
    replied_at,
    response_seconds,
    detected_at
from {{ source('inboxsync', 'reply_flags') }}
