select
    email as contact_email,
    display_name,
    domain,
    is_team,
    created_by,
    first_seen_at,
    last_seen_at
from {{ source('inboxsync', 'contacts') }}
