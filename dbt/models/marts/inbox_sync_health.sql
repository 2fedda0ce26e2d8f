-- Per connected inbox and folder: how far behind the warehouse is (lag since the last success,
-- backlog of history still to load), the last success and the last error.
with inboxes as (
    select * from {{ ref('stg_inboxsync__inboxes') }}
),

states as (
    select * from {{ ref('stg_inboxsync__sync_states') }}
),

copies as (
    select inbox_id, folder, count(*) as messages_synced, max(synced_at) as last_message_synced_at
    from {{ ref('stg_inboxsync__message_copies') }}
    where expunged_at is null
    group by inbox_id, folder
),

quarantined as (
    select inbox_id, folder, count(*) as messages_quarantined
    from {{ ref('stg_inboxsync__quarantined_copies') }}
    group by inbox_id, folder
)

select
    states.inbox_id || ':' || states.folder as inbox_folder_id,
    states.inbox_id,
    inboxes.inbox_name,
    inboxes.owner_email,
    inboxes.provider,
    inboxes.is_enabled,
    states.folder,
    states.last_success_at,
    extract(epoch from {{ as_of() }} - states.last_success_at)::bigint as lag_seconds,
    states.messages_on_server,
    coalesce(copies.messages_synced, 0) as messages_synced,
    coalesce(quarantined.messages_quarantined, 0) as messages_quarantined,
    coalesce(states.backfill_remaining, 0) as backlog_messages,
    states.backfill_done_at,
    copies.last_message_synced_at,
    states.last_error,
    states.last_error_at,
    case
        when states.last_error is not null then 'error'
        when states.last_success_at is null then 'never_synced'
        when coalesce(states.backfill_remaining, 0) > 0 then 'backfilling'
        else 'ok'
    end as health_status
from states
join inboxes on inboxes.inbox_id = states.inbox_id
left join copies on copies.inbox_id = states.inbox_id and copies.folder = states.folder
left join quarantined
    on quarantined.inbox_id = states.inbox_id and quarantined.folder = states.folder
