-- Per team member (the sender of the team's email) and ISO week (Monday, UTC) the email was
-- sent: emails and recipients that reply detection tracks, replies, response rate and times.
-- A reply counts wherever it landed: reply_flags already follows a thread across inboxes.
with flags as (
    select * from {{ ref('stg_inboxsync__reply_flags') }}
),

messages as (
    select * from {{ ref('stg_inboxsync__messages') }}
),

sent as (
    select
        messages.from_email as team_member_email,
        (date_trunc('week', flags.sent_at at time zone 'UTC'))::date as week_start,
        flags.message_key,
        flags.is_replied,
        flags.response_seconds
    from flags
    join messages on messages.message_key = flags.message_key
    where flags.sent_at is not null
)

select
    md5(team_member_email || '|' || week_start::text) as reply_metric_id,
    team_member_email,
    week_start,
    count(distinct message_key) as emails_sent,
    count(*) as recipients,
    count(*) filter (where is_replied) as recipients_replied,
    round(count(*) filter (where is_replied)::numeric / count(*), 4) as response_rate,
    percentile_cont(0.5) within group (order by response_seconds)
        filter (where is_replied)::bigint as median_response_seconds,
    round(avg(response_seconds) filter (where is_replied))::bigint as avg_response_seconds,
    min(response_seconds) filter (where is_replied) as min_response_seconds,
    max(response_seconds) filter (where is_replied) as max_response_seconds
from sent
group by team_member_email, week_start
