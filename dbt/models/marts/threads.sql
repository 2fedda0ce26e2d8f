-- One row per thread: participants, the last message and its direction, and a status for the
-- team's follow-up, read from the replies step's reply_flags:
--   closed          no message for var('thread_close_after_days') days, or the team never wrote
--                   to an external contact in the thread (nothing to await);
--   awaiting_reply  the team's last email to external contacts has no reply yet;
--   replied         a recipient of that email replied.
with threads as (
    select * from {{ ref('stg_inboxsync__threads') }}
),

messages as (
    select * from {{ ref('stg_inboxsync__messages') }}
    where thread_id is not null
),

addresses as (
    select * from {{ ref('stg_inboxsync__message_addresses') }}
    where address_role in ('from', 'sender', 'to', 'cc', 'bcc')
),

team as (
    select contact_email from {{ ref('stg_inboxsync__contacts') }} where is_team
),

participants as (
    select
        messages.thread_id,
        array_agg(distinct addresses.email order by addresses.email) as participant_emails,
        coalesce(array_agg(distinct addresses.email order by addresses.email)
            filter (where team.contact_email is null), '{}') as external_participant_emails
    from messages
    join addresses on addresses.message_key = messages.message_key
    left join team on team.contact_email = addresses.email
    group by messages.thread_id
),

last_message as (
    select distinct on (thread_id)
        thread_id,
        message_key as last_message_key,
        from_email as last_message_from_email,
        direction as last_message_direction,
        kind as last_message_kind
    from messages
    order by thread_id, sent_at desc nulls last, message_key desc
),

flags as (
    select flags.*, messages.thread_id
    from {{ ref('stg_inboxsync__reply_flags') }} as flags
    join messages on messages.message_key = flags.message_key
),

last_outbound as (
    -- The team's last email with reply flags in each thread, and whether any recipient replied.
    select distinct on (thread_id)
        thread_id,
        message_key as last_outbound_message_key,
        sent_at as last_outbound_at
    from flags
    order by thread_id, sent_at desc nulls last, message_key desc
),

last_outbound_replies as (
    select
        last_outbound.thread_id,
        bool_or(flags.is_replied) as any_replied,
        min(flags.replied_at) as first_replied_at
    from last_outbound
    join flags on flags.message_key = last_outbound.last_outbound_message_key
    group by last_outbound.thread_id
)

select
    threads.thread_id,
    threads.subject,
    threads.root_message_key,
    threads.first_message_at,
    threads.last_message_at,
    threads.message_count,
    coalesce(participants.participant_emails, '{}') as participant_emails,
    coalesce(participants.external_participant_emails, '{}') as external_participant_emails,
    cardinality(coalesce(participants.participant_emails, '{}')) as participant_count,
    last_message.last_message_key,
    last_message.last_message_from_email,
    last_message.last_message_direction,
    last_message.last_message_kind,
    last_outbound.last_outbound_message_key,
    last_outbound.last_outbound_at,
    last_outbound_replies.first_replied_at as last_outbound_replied_at,
    case
        when last_outbound.thread_id is null then 'closed'
        when threads.last_message_at
            < {{ as_of() }} - interval '{{ var("thread_close_after_days") }} days' then 'closed'
        when last_outbound_replies.any_replied then 'replied'
        else 'awaiting_reply'
    end as status
from threads
left join participants on participants.thread_id = threads.thread_id
left join last_message on last_message.thread_id = threads.thread_id
left join last_outbound on last_outbound.thread_id = threads.thread_id
left join last_outbound_replies on last_outbound_replies.thread_id = threads.thread_id
