-- One row per external contact: first and last contact, messages each way, their last reply to
-- the team, their median response time, and whether the team awaits their reply. Replies and
-- "awaiting" come from the replies step (reply_flags, contact_reply_status), not recomputed here.
with contacts as (
    select * from {{ ref('stg_inboxsync__contacts') }}
    where not is_team
),

timeline as (
    select * from {{ ref('contact_timeline') }}
),

activity as (
    select
        contact_email,
        min(sent_at) as first_contact_at,
        max(sent_at) as last_contact_at,
        count(*) filter (where contact_role = 'from') as messages_from_contact,
        count(*) filter (where contact_role <> 'from') as messages_to_contact,
        count(distinct thread_id) as thread_count
    from timeline
    group by contact_email
),

replies as (
    select
        recipient_email as contact_email,
        count(*) as emails_from_team,
        count(*) filter (where is_replied) as emails_replied,
        max(replied_at) as last_reply_at,
        percentile_cont(0.5) within group (order by response_seconds)
            filter (where is_replied) as median_response_seconds
    from {{ ref('stg_inboxsync__reply_flags') }}
    group by recipient_email
),

reply_status as (
    select * from {{ ref('stg_inboxsync__contact_reply_statuses') }}
)

select
    contacts.contact_email,
    contacts.display_name,
    contacts.domain,
    contacts.created_by,
    activity.first_contact_at,
    activity.last_contact_at,
    coalesce(activity.messages_from_contact, 0) as messages_from_contact,
    coalesce(activity.messages_to_contact, 0) as messages_to_contact,
    coalesce(activity.thread_count, 0) as thread_count,
    coalesce(replies.emails_from_team, 0) as emails_from_team,
    coalesce(replies.emails_replied, 0) as emails_replied,
    replies.last_reply_at,
    replies.median_response_seconds::bigint as median_response_seconds,
    reply_status.last_outbound_at as last_email_from_team_at,
    coalesce(reply_status.is_awaiting_reply, false) as is_awaiting_reply
from contacts
left join activity on activity.contact_email = contacts.contact_email
left join replies on replies.contact_email = contacts.contact_email
left join reply_status on reply_status.contact_email = contacts.contact_email
