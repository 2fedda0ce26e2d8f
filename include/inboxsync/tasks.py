"""What the DAGs' task bodies call: thin adapters from Airflow's world to the package's."""

from __future__ import annotations

import logging

from inboxsync.imap import InboxError
from inboxsync.registry import UnknownInbox
from inboxsync.sync import Budget, InboxBusy, enabled_inboxes, sync_inbox

log = logging.getLogger(__name__)


def list_inboxes_task(provider: str, only: str | None = None) -> list[str]:
    """The names of the enabled inboxes of one provider, one mapped sync task each.

    Args:
        provider: "imap", "gmail" or "microsoft".
        only: Sync this inbox alone (a run triggered with conf ``{"inbox": NAME}``).

    Raises:
        UnknownInbox: ``only`` names no enabled inbox.
    """
    inboxes = enabled_inboxes()
    if only is not None:
        if only not in {i.name for i in inboxes}:
            raise UnknownInbox(f"no enabled inbox named {only!r} (see `inboxsync inbox list`)")
        inboxes = [i for i in inboxes if i.name == only]
        log.info("this run syncs inbox %r alone (run conf)", only)
    names = [i.name for i in inboxes if i.provider == provider]
    log.info("%d enabled %s inbox(es): %s", len(names), provider, ", ".join(names) or "none")
    return names


def sync_inbox_task(inbox: str) -> dict[str, object]:
    """Sync one inbox inside a mapped task; returns counts for XCom.

    A problem no retry can fix (bad credentials, an untrusted certificate) fails the task at
    once; a network problem raises normally so Airflow retries it.
    """
    from airflow.sdk import get_current_context

    context = get_current_context()
    context["inbox_name"] = inbox  # shown by map_index_template
    counts = _run(inbox, budget=None)
    announce_reply_events(context, counts)
    return counts


def announce_reply_events(context, counts: dict[str, object]) -> None:
    """Put the number of new reply events on the task's REPLY_FLAGS asset event.

    Args:
        context: The running task's context (its ``outlet_events``).
        counts: What `sync_inbox_task` returns (``derive`` holds the derive step's counts).
    """
    from inboxsync.assets import REPLY_FLAGS

    derived = counts.get("derive") or {}
    folders = counts.get("folders") or []
    context["outlet_events"][REPLY_FLAGS].extra = {
        "inbox": counts["inbox"],
        "new_events": int(derived.get("new_events", 0)),
        # The run's figures for this inbox, for whoever watches the asset.
        "fetched": counts.get("fetched", 0),
        "loaded": counts.get("loaded", 0),
        "quarantined": counts.get("quarantined", 0),
        "backfill_remaining": counts.get("backfill_remaining", 0),
        "seconds": round(sum(float(f.get("seconds", 0.0)) for f in folders), 3),
    }


def reply_automation_task() -> int:
    """The example consumer: mark every contact that replied as engaged, once per event."""
    from inboxsync.reply_consumer import consume, mark_engaged

    return consume("reply_automation", mark_engaged)


def backfill_task(inbox: str, budget_messages: int | None) -> dict[str, object]:
    """Load an inbox's history newest first, to the end or up to ``budget_messages``."""
    from airflow.sdk import get_current_context

    counts = _run(inbox, budget=Budget(messages=budget_messages))
    announce_reply_events(get_current_context(), counts)
    return counts


def _run(inbox: str, *, budget: Budget | None) -> dict[str, object]:
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    try:
        result = sync_inbox(inbox, budget=budget)
    except InboxBusy as exc:
        # A backfill (or a manual sync) holds the inbox: this run has nothing to add.
        raise AirflowSkipException(str(exc)) from None
    except UnknownInbox as exc:
        # Removed after `list_inboxes` named it, or while it synced (`load.InboxRemoved`): no
        # retry can sync it, and nothing of it is left to load.
        raise AirflowSkipException(f"inbox {inbox!r} is no longer connected: {exc}") from None
    except InboxError as exc:
        if exc.retryable:
            raise
        raise AirflowFailException(f"inbox {inbox!r}: {exc}") from None
    log.info("inbox %r done: %d fetched, %d quarantined", inbox, result.fetched, result.quarantined)
    return result.as_dict()
