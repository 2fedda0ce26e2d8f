"""
### reply_automation

Example consumer of reply events: runs whenever `inbox_sync` updates the asset
`inboxsync_reply_flags`, reads `inboxsync.reply_events` after its stored offset
(`inboxsync.consumer_offsets`, consumer `reply_automation`) and marks each replying contact as
engaged in `inboxsync.engaged_contacts`. The action and the offset commit in one transaction, so a
retry or a second run never acts twice on an event. Copy it to write your own (README, "Acting on
replies").
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from inboxsync.assets import REPLY_FLAGS


@dag(
    schedule=[REPLY_FLAGS],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "inboxsync", "retries": 2, "retry_delay": timedelta(minutes=1)},
    tags=["inboxsync", "automation", "replies"],
    doc_md=__doc__,
)
def reply_automation() -> None:
    @task
    def mark_engaged_contacts() -> int:
        from inboxsync.tasks import reply_automation_task

        return reply_automation_task()

    mark_engaged_contacts()


reply_automation()
