select
    inbox_id::integer as inbox_id,
    name as inbox_name,
    email_address as inbox_email,
    owner_email,
    provider,
    enabled as is_enabled,
    create_contacts as creates_contacts
from {{ source('inboxsync', 'inboxes') }}
