"""
### inbox_sync

Hourly sync of every connected inbox into the warehouse (schema `inboxsync`).

`list_inboxes` reads the enabled inboxes from `inboxsync.inboxes`; `sync_inbox` runs once per
inbox (the mapped task is named after it). Each task examines INBOX and the Sent folder, fetches the
header fields of new messages in UID batches, and loads each batch with its checkpoint in one
transaction. A bad inbox fails its own task only; `inboxsync sync NAME` runs the same code outside
the scheduler.

A run triggered with conf `{"inbox": "NAME"}` syncs that inbox alone: `inboxsync inbox add` starts
a new inbox's first sync that way.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task


@dag(
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "inboxsync",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "retry_exponential_backoff": True,
    },
    tags=["inboxsync", "imap", "sync"],
    params={"inbox": Param(None, type=["null", "string"], description="sync this inbox only")},
    doc_md=__doc__,
)
def inbox_sync() -> None:
    @task
    def list_inboxes(params: dict | None = None) -> list[str]:
        from inboxsync.tasks import list_inboxes_task

        return list_inboxes_task(only=(params or {}).get("inbox"))

    @task(map_index_template="{{ inbox_name }}", execution_timeout=timedelta(minutes=55))
    def sync_inbox(inbox: str) -> dict[str, object]:
        from inboxsync.tasks import sync_inbox_task

        return sync_inbox_task(inbox)

    sync_inbox.expand(inbox=list_inboxes())


inbox_sync()
