-- One row per message with at least one copy: the connected inboxes (and so the team members)
-- holding it now, and when its copies last changed (for contact_timeline's incremental runs).
with copies as (
    select * from {{ ref('stg_inboxsync__message_copies') }}
),

inboxes as (
    select * from {{ ref('stg_inboxsync__inboxes') }}
)

select
    copies.message_key,
    coalesce(array_agg(distinct copies.inbox_id order by copies.inbox_id)
        filter (where copies.expunged_at is null), '{}') as inbox_ids,
    coalesce(array_agg(distinct inboxes.inbox_name order by inboxes.inbox_name)
        filter (where copies.expunged_at is null), '{}') as inbox_names,
    coalesce(array_agg(distinct inboxes.owner_email order by inboxes.owner_email)
        filter (where copies.expunged_at is null and inboxes.owner_email is not null), '{}')
        as team_member_emails,
    count(*) filter (where copies.expunged_at is null) as live_copy_count,
    max(greatest(copies.synced_at, copies.expunged_at)) as copies_changed_at
from copies
join inboxes on inboxes.inbox_id = copies.inbox_id
group by copies.message_key
