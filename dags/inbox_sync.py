"""
### inbox_sync

Hourly sync of every connected inbox into the warehouse (schema `inboxsync`).

`list_inboxes` reads the enabled inboxes from `inboxsync.inboxes`; `sync_inbox` runs once per
inbox (the mapped task is named after it); `list_gmail_inboxes` / `sync_gmail_inbox` and
`list_microsoft_inboxes` / `sync_microsoft_inbox` do the same for Gmail and Microsoft 365, each
in its provider's pool (`inboxsync_imap`, `inboxsync_gmail`, `inboxsync_microsoft`) so a
provider's connection limit holds. Each task examines INBOX and the Sent folder (All Mail on
Gmail), syncs flags and deletions, fetches the header fields of new mail in UID batches, then
history newest first within the run's budget, and loads each batch with its checkpoint in one
transaction. A bad inbox fails its own task only; `inboxsync sync NAME` runs the same code
outside the scheduler.

A run triggered with conf `{"inbox": "NAME"}` syncs that inbox alone: `inboxsync inbox add` starts
a new inbox's first sync that way.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

from inboxsync.assets import REPLY_FLAGS
from inboxsync.settings import PROVIDER_POOLS


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
    def list_inboxes(provider: str, params: dict | None = None) -> list[str]:
        from inboxsync.tasks import list_inboxes_task

        return list_inboxes_task(provider, only=(params or {}).get("inbox"))

    # Each sync ends with the derive step; its asset event carries the new reply events' count.
    @task(
        map_index_template="{{ inbox_name }}",
        execution_timeout=timedelta(minutes=55),
        outlets=[REPLY_FLAGS],
    )
    def sync_inbox(inbox: str) -> dict[str, object]:
        from inboxsync.tasks import sync_inbox_task

        return sync_inbox_task(inbox)

    # One mapped task per provider, each in its provider's pool (a pool belongs to a task, not
    # to a mapped instance).
    for provider, (pool, _slots) in PROVIDER_POOLS.items():
        suffix = "" if provider == "imap" else f"_{provider}"
        inboxes = list_inboxes.override(task_id=f"list{suffix}_inboxes")(provider)
        sync = sync_inbox.override(task_id=f"sync{suffix}_inbox", pool=pool)
        sync.expand(inbox=inboxes)


inbox_sync()
