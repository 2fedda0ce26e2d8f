select
    email as contact_email,
    last_outbound_at,
    last_inbound_at,
    awaiting_reply as is_awaiting_reply,
    last_outbound_message_key
from {{ source('inboxsync', 'contact_reply_status') }}
