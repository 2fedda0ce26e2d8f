{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        on_schema_change='sync_all_columns',
        pre_hook="{% if is_incremental() %}{{ timeline_changes() }}{% endif %}",
        indexes=[
            {'columns': ['timeline_id'], 'unique': true},
            {'columns': ['contact_email', 'sent_at']},
            {'columns': ['message_key']},
        ],
    )
}}

-- depends_on: {{ ref('stg_inboxsync__derive_states') }}, {{ ref('stg_inboxsync__inboxes') }}
-- (read by the pre-hook, macros/timeline_changes.sql)

-- Every message to or from an external contact, once per contact, with the connected inboxes
-- (team members) holding it. Incremental: see macros/timeline_changes.sql.
with contact_messages as (
    select * from {{ ref('int_contact_messages_joined') }}
),

messages as (
    select * from {{ ref('stg_inboxsync__messages') }}
    {% if is_incremental() %}
    where message_key in (select message_key from timeline_changes)
    {% endif %}
),

copies as (
    select * from {{ ref('int_message_copies_aggregated') }}
    where live_copy_count > 0
),

threads as (
    select * from {{ ref('stg_inboxsync__threads') }}
),

replies as (
    select distinct reply_message_key as message_key, recipient_email as contact_email
    from {{ ref('stg_inboxsync__reply_flags') }}
    where is_replied
)

select
    md5(contact_messages.contact_email || '|' || messages.message_key) as timeline_id,
    contact_messages.contact_email,
    messages.message_key,
    messages.message_id,
    messages.sent_at,
    messages.subject,
    messages.thread_id,
    messages.kind,
    messages.direction as message_direction,
    contact_messages.contact_role,
    messages.from_email,
    messages.from_name,
    replies.message_key is not null as is_reply_to_team,
    copies.inbox_ids,
    copies.inbox_names,
    copies.team_member_emails,
    cardinality(copies.inbox_ids) as inbox_count,
    greatest(messages.first_seen_at, messages.derived_at, copies.copies_changed_at,
             threads.updated_at) as changed_at
from messages
join contact_messages on contact_messages.message_key = messages.message_key
join copies on copies.message_key = messages.message_key
left join threads on threads.thread_id = messages.thread_id
left join replies
    on replies.message_key = messages.message_key
    and replies.contact_email = contact_messages.contact_email
