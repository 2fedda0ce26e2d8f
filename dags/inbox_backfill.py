"""
### inbox_backfill

Load the history of one connected inbox, newest first, outside the hourly budget.

Trigger it by hand with the params `inbox` (the inbox's name) and, optionally, `budget_messages`
(stop after that many messages; empty runs to the end). It runs the same code as `inbox_sync` and
`inboxsync backfill NAME`; progress (done, remaining, rate, ETA) goes to the task log and to
`inboxsync.sync_state`. While it runs, the hourly sync skips that inbox.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

from inboxsync.assets import REPLY_FLAGS


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=4,
    default_args={
        "owner": "inboxsync",
        "retries": 3,
        "retry_delay": timedelta(minutes=2),
        "retry_exponential_backoff": True,
    },
    params={
        "inbox": Param(type="string", minLength=1, description="Name of the connected inbox"),
        "budget_messages": Param(
            None, type=["null", "integer"], minimum=1, description="Stop after this many messages"
        ),
    },
    tags=["inboxsync", "imap", "backfill"],
    doc_md=__doc__,
)
def inbox_backfill() -> None:
    @task(execution_timeout=timedelta(hours=12), outlets=[REPLY_FLAGS])
    def backfill(params: dict | None = None) -> dict[str, object]:
        from inboxsync.tasks import backfill_task

        return backfill_task(params["inbox"], params.get("budget_messages"))

    backfill()


inbox_backfill()
