select
    name as state_name,
    value as state_value,
    updated_at
from {{ source('inboxsync', 'derive_state') }}
