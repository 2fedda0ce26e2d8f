{#- contact_timeline's incremental run, first step (its pre-hook): the messages whose timeline rows
    must be re-derived go to the temp table timeline_changes, and their old rows are deleted; the
    model then inserts their fresh rows. Computing the set once keeps delete and insert in step.

    A message changes when it is loaded or derived, when one of its copies is added or expunged,
    or when its thread is refreshed (a new message, a merge, new reply flags). Everything is
    re-derived when the team changed (directions and contacts' is_team move) or when an inbox a
    row names was removed (its copies went without a trace). -#}
{% macro timeline_changes() %}
drop table if exists pg_temp.timeline_changes;
create temp table timeline_changes as
with watermark as (
    select coalesce(max(changed_at), '-infinity'::timestamptz)
        - '{{ var("timeline_lookback") }}'::interval as since
    from {{ this }}
),

rebuild as (
    select
        coalesce((
            select max(updated_at) from {{ ref('stg_inboxsync__derive_states') }}
            where state_name = 'team'
        ) > (select since from watermark), false)
        or exists (
            select 1 from {{ this }} as t
            cross join unnest(t.inbox_ids) as held (inbox_id)
            where held.inbox_id not in (select inbox_id from {{ ref('stg_inboxsync__inboxes') }})
        ) as everything
)

select messages.message_key
from {{ ref('stg_inboxsync__messages') }} as messages
left join {{ ref('int_message_copies_aggregated') }} as copies
    on copies.message_key = messages.message_key
left join {{ ref('stg_inboxsync__threads') }} as threads
    on threads.thread_id = messages.thread_id
where (select everything from rebuild)
    or greatest(messages.first_seen_at, messages.derived_at, copies.copies_changed_at,
                threads.updated_at) > (select since from watermark);

delete from {{ this }}
where message_key in (select message_key from timeline_changes)
{% endmacro %}
