"""Read side of the Inboxes page: one status row per connected inbox.

The warehouse says what was synced (folders, messages, backlog, last success and error, the last
run's throughput); Airflow's metadata database says which task instance synced it last, so the
page can link to its logs. Both are read-only queries; nothing here touches IMAP.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from inboxsync import warehouse

DAG_ID = "inbox_sync"
#: The mapped sync tasks of inbox_sync, one per provider pool (see dags/inbox_sync.py).
SYNC_TASK_IDS = ("sync_inbox", "sync_gmail_inbox", "sync_microsoft_inbox")

_STATUS_SQL = """
SELECT i.name,
       i.owner_email,
       i.conn_id,
       i.enabled,
       coalesce(array_agg(s.folder ORDER BY s.folder)
                FILTER (WHERE s.uidvalidity IS NOT NULL), '{}') AS folders,
       (SELECT count(*) FROM inboxsync.message_copies c
            WHERE c.inbox_id = i.inbox_id AND c.expunged_at IS NULL) AS messages,
       coalesce(sum(s.backfill_remaining), 0) AS backlog,
       max(s.last_success_at) AS last_success_at,
       (array_agg(s.last_error ORDER BY s.last_error_at DESC NULLS LAST)
            FILTER (WHERE s.last_error IS NOT NULL))[1] AS last_error,
       max(s.last_error_at) AS last_error_at,
       sum((s.last_run ->> 'fetched')::bigint) AS last_run_fetched,
       sum((s.last_run ->> 'seconds')::double precision) AS last_run_seconds
FROM inboxsync.inboxes i
LEFT JOIN inboxsync.sync_state s USING (inbox_id)
GROUP BY i.inbox_id
ORDER BY i.name
"""


@dataclass
class InboxStatus:
    """What the Inboxes page shows for one inbox (no secrets: the connection's id only)."""

    name: str
    owner: str | None
    conn_id: str
    enabled: bool
    folders: list[str]
    messages: int
    backlog: int
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    last_run_fetched: int | None
    last_run_seconds: float | None
    last_task_state: str | None = None
    log_url: str | None = None

    @property
    def last_run_rate(self) -> float | None:
        """Messages per second of the last successful run (None before any)."""
        if not self.last_run_fetched or not self.last_run_seconds:
            return None
        return self.last_run_fetched / self.last_run_seconds

    def as_json(self) -> dict[str, Any]:
        """A JSON-ready dict: datetimes as ISO 8601, the rate included."""
        data = asdict(self)
        for key in ("last_success_at", "last_error_at"):
            data[key] = data[key].isoformat() if data[key] else None
        data["last_run_rate"] = self.last_run_rate
        return data


def inbox_statuses(url: str | None = None) -> list[InboxStatus]:
    """Every connected inbox's status from the warehouse, by name."""
    with warehouse.transaction(url) as cur:
        cur.execute(_STATUS_SQL)
        return [
            InboxStatus(
                name=r[0],
                owner=r[1],
                conn_id=r[2],
                enabled=r[3],
                folders=list(r[4]),
                messages=int(r[5]),
                backlog=int(r[6]),
                last_success_at=r[7],
                last_error=r[8],
                last_error_at=r[9],
                last_run_fetched=int(r[10]) if r[10] is not None else None,
                last_run_seconds=float(r[11]) if r[11] is not None else None,
            )
            for r in cur.fetchall()
        ]


def task_log_url(run_id: str, task_id: str, map_index: int) -> str:
    """The Airflow UI's page (logs first) of one mapped sync task instance."""
    return f"/dags/{DAG_ID}/runs/{quote(run_id, safe='')}/tasks/{task_id}/mapped/{map_index}"


def attach_task_links(statuses: list[InboxStatus], session: Any) -> None:
    """Fill in each inbox's latest sync task instance: its state and its log page.

    Args:
        statuses: Rows from :func:`inbox_statuses`.
        session: A SQLAlchemy session on Airflow's metadata database.
    """
    from airflow.models.taskinstance import TaskInstance as TI
    from sqlalchemy import select

    wanted = {s.name: s for s in statuses}
    rows = session.execute(
        select(TI.rendered_map_index, TI.run_id, TI.task_id, TI.map_index, TI.state)
        .where(TI.dag_id == DAG_ID, TI.task_id.in_(SYNC_TASK_IDS))
        .where(TI.rendered_map_index.in_(list(wanted)))
        .order_by(TI.start_date.desc().nulls_last(), TI.run_id.desc())
    ).all()
    for name, run_id, task_id, map_index, state in rows:
        status = wanted.pop(name, None)
        if status is not None:
            status.last_task_state = str(state) if state is not None else None
            status.log_url = task_log_url(run_id, task_id, map_index)
