"""What the DAGs' task bodies call: thin adapters from Airflow's world to the package's."""

from __future__ import annotations

import logging

from inboxsync.imap import InboxError
from inboxsync.registry import UnknownInbox
from inboxsync.sync import Budget, InboxBusy, enabled_inbox_names, sync_inbox

log = logging.getLogger(__name__)


def list_inboxes_task(only: str | None = None) -> list[str]:
    """The enabled inboxes' names, one mapped sync task each.

    Args:
        only: Sync this inbox alone (a run triggered with conf ``{"inbox": NAME}``).

    Raises:
        UnknownInbox: ``only`` names no enabled inbox.
    """
    names = enabled_inbox_names()
    if only is not None:
        if only not in names:
            raise UnknownInbox(f"no enabled inbox named {only!r} (see `inboxsync inbox list`)")
        log.info("this run syncs inbox %r alone (run conf)", only)
        return [only]
    log.info("%d enabled inbox(es): %s", len(names), ", ".join(names) or "none")
    return names


def sync_inbox_task(inbox: str) -> dict[str, object]:
    """Sync one inbox inside a mapped task; returns counts for XCom.

    A problem no retry can fix (bad credentials, an untrusted certificate) fails the task at
    once; a network problem raises normally so Airflow retries it.
    """
    from airflow.sdk import get_current_context

    get_current_context()["inbox_name"] = inbox  # shown by map_index_template
    return _run(inbox, budget=None)


def backfill_task(inbox: str, budget_messages: int | None) -> dict[str, object]:
    """Load an inbox's history newest first, to the end or up to ``budget_messages``."""
    return _run(inbox, budget=Budget(messages=budget_messages))


def _run(inbox: str, *, budget: Budget | None) -> dict[str, object]:
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    try:
        result = sync_inbox(inbox, budget=budget)
    except InboxBusy as exc:
        # A backfill (or a manual sync) holds the inbox: this run has nothing to add.
        raise AirflowSkipException(str(exc)) from None
    except InboxError as exc:
        if exc.retryable:
            raise
        raise AirflowFailException(f"inbox {inbox!r}: {exc}") from None
    log.info("inbox %r done: %d fetched, %d quarantined", inbox, result.fetched, result.quarantined)
    return result.as_dict()
