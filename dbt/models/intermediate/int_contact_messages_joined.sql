-- One row per (external contact, message the contact sent or received): the contact's strongest
-- role on it (from, to, cc, bcc). Reply-To alone does not put a message on a contact's timeline.
with addresses as (
    select * from {{ ref('stg_inboxsync__message_addresses') }}
),

contacts as (
    select * from {{ ref('stg_inboxsync__contacts') }}
    where not is_team
),

roles as (
    select
        addresses.message_key,
        addresses.email as contact_email,
        case addresses.address_role when 'sender' then 'from' else addresses.address_role end
            as contact_role,
        case addresses.address_role
            when 'from' then 1 when 'sender' then 1 when 'to' then 2 when 'cc' then 3 else 4
        end as role_rank
    from addresses
    join contacts on contacts.contact_email = addresses.email
    where addresses.address_role in ('from', 'sender', 'to', 'cc', 'bcc')
)

select distinct on (contact_email, message_key)
    contact_email,
    message_key,
    contact_role
from roles
order by contact_email, message_key, role_rank
