select
    message_key,
    role as address_role,
    email,
    display_name,
    position as address_position
from {{ source('inboxsync', 'message_addresses') }}
