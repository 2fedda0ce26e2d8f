"""Sync one inbox: the single code path behind the DAG's mapped task and ``inboxsync sync``.

For each folder: plan (UIDVALIDITY and UIDNEXT against ``sync_state``), fetch header fields in UID
batches, parse, and load each batch together with its checkpoint in one transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import psycopg2.extensions

from inboxsync import registry, settings, warehouse
from inboxsync.connections import get_connection
from inboxsync.imap import FolderStatus, ImapSession, ImapSettings, InboxError
from inboxsync.load import build_batch, load_batch
from inboxsync.registry import Inbox

log = logging.getLogger(__name__)


class InboxBusy(InboxError):
    """Another process is syncing this inbox right now."""


@dataclass
class FolderResult:
    """What one folder's sync did; logged per folder and returned through XCom as counts."""

    folder: str
    uidvalidity: int
    fetched: int = 0
    loaded: int = 0
    quarantined: int = 0
    batches: int = 0
    seconds: float = 0.0
    uidvalidity_changed: bool = False

    @property
    def rate(self) -> float:
        return self.fetched / self.seconds if self.seconds > 0 else 0.0

    def log_line(self) -> str:
        return (
            f"folder {self.folder!r}: fetched {self.fetched}, loaded {self.loaded}, "
            f"quarantined {self.quarantined}, {self.seconds:.2f} s, {self.rate:,.0f} messages/s"
        )


@dataclass
class InboxResult:
    """What one inbox's sync did."""

    inbox: str
    folders: list[FolderResult] = field(default_factory=list)

    @property
    def fetched(self) -> int:
        return sum(f.fetched for f in self.folders)

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self.folders)

    def as_dict(self) -> dict[str, object]:
        """Counts only (safe for XCom)."""
        return {
            "inbox": self.inbox,
            "fetched": self.fetched,
            "loaded": sum(f.loaded for f in self.folders),
            "quarantined": self.quarantined,
            "folders": [asdict(f) for f in self.folders],
        }


ProgressHook = Callable[[FolderResult], None]


def sync_inbox(
    name: str,
    *,
    url: str | None = None,
    batch_size: int | None = None,
    on_batch: ProgressHook | None = None,
) -> InboxResult:
    """Sync every folder of inbox ``name`` into the warehouse.

    Args:
        name: The inbox's name in the registry.
        url: Warehouse URL; defaults to the ``inboxsync_warehouse`` connection.
        batch_size: UIDs per batch; defaults to ``settings.BATCH_SIZE``.
        on_batch: Called after each committed batch (progress reporting).

    Returns:
        Per-folder counts.

    Raises:
        InboxError: The inbox could not be synced; the message says what to check.
    """
    url = url or warehouse.warehouse_url()
    warehouse.migrate(url)
    conn = warehouse.connect(url)
    try:
        with conn.cursor() as cur:
            inbox = registry.get_inbox(cur, name)
            if not warehouse.lock_inbox(cur, inbox.inbox_id):
                raise InboxBusy(f"inbox {name!r} is being synced by another process; try later")
            team = registry.team_addresses(cur)
        conn.commit()
        try:
            return _sync_folders(conn, inbox, team, batch_size or settings.BATCH_SIZE, on_batch)
        except InboxError as exc:
            conn.rollback()
            _record_error(conn, inbox, str(exc))
            raise
    finally:
        conn.close()  # also releases the session-level inbox lock


def _sync_folders(
    conn: psycopg2.extensions.connection,
    inbox: Inbox,
    team: frozenset[str],
    batch_size: int,
    on_batch: ProgressHook | None,
) -> InboxResult:
    cfg = ImapSettings.from_connection(get_connection(inbox.conn_id))
    result = InboxResult(inbox.name)
    with ImapSession(cfg) as imap:
        for folder in imap.sync_folders(inbox.folders):
            folder_result = _sync_folder(conn, imap, inbox, team, folder, batch_size, on_batch)
            log.info("inbox %r %s", inbox.name, folder_result.log_line())
            result.folders.append(folder_result)
    return result


def _sync_folder(
    conn: psycopg2.extensions.connection,
    imap: ImapSession,
    inbox: Inbox,
    team: frozenset[str],
    folder: str,
    batch_size: int,
    on_batch: ProgressHook | None,
) -> FolderResult:
    started = time.monotonic()
    status = imap.examine(folder)
    last_uid, changed = _plan(conn, inbox, status)
    result = FolderResult(folder, status.uidvalidity, uidvalidity_changed=changed)
    # UIDNEXT at or below the checkpoint means nothing arrived: skip the SEARCH.
    has_new = status.exists and (status.uidnext is None or status.uidnext > last_uid + 1)
    uids = imap.uids_after(last_uid) if has_new else []
    for start in range(0, len(uids), batch_size):
        chunk = uids[start : start + batch_size]
        fetched = imap.fetch_headers(chunk)
        batch = build_batch(fetched, team)
        with conn, conn.cursor() as cur:
            load_batch(
                cur,
                batch,
                inbox_id=inbox.inbox_id,
                folder=folder,
                uidvalidity=status.uidvalidity,
                last_uid=chunk[-1],
                create_contacts=inbox.create_contacts,
                created_by=f"sync:{inbox.name}",
                team=team,
            )
        result.fetched += len(fetched)
        result.loaded += len(batch.copies)
        result.quarantined += len(batch.quarantined)
        result.batches += 1
        result.seconds = time.monotonic() - started
        if on_batch:
            on_batch(result)
    with conn, conn.cursor() as cur:
        cur.execute(
            """
            UPDATE inboxsync.sync_state
            SET last_success_at = now(), last_error = NULL, last_error_at = NULL,
                uidnext = %s, highest_modseq = %s, messages_on_server = %s, updated_at = now()
            WHERE inbox_id = %s AND folder = %s
            """,
            (status.uidnext, status.highest_modseq, status.exists, inbox.inbox_id, folder),
        )
    result.seconds = time.monotonic() - started
    return result


def _plan(
    conn: psycopg2.extensions.connection, inbox: Inbox, status: FolderStatus
) -> tuple[int, bool]:
    """Return the folder's checkpoint (last UID loaded) and whether UIDVALIDITY changed.

    A new UIDVALIDITY starts the folder over at UID 0. Copies are keyed by UIDVALIDITY, so the
    old generation's rows stay as they were and messages are not duplicated (they are keyed by
    Message-ID); re-mapping and expunging the old copies belongs to the resync logic.
    """
    with conn, conn.cursor() as cur:
        cur.execute(
            "SELECT uidvalidity, last_uid FROM inboxsync.sync_state"
            " WHERE inbox_id = %s AND folder = %s FOR UPDATE",
            (inbox.inbox_id, status.name),
        )
        row = cur.fetchone()
        if row is not None and row[0] == status.uidvalidity:
            return int(row[1]), False
        cur.execute(
            """
            INSERT INTO inboxsync.sync_state (inbox_id, folder, uidvalidity, last_uid)
            VALUES (%s, %s, %s, 0)
            ON CONFLICT (inbox_id, folder) DO UPDATE
                SET uidvalidity = EXCLUDED.uidvalidity, last_uid = 0, updated_at = now()
            """,
            (inbox.inbox_id, status.name, status.uidvalidity),
        )
    changed = row is not None and row[0] is not None
    if changed:
        log.warning(
            "inbox %r folder %r: UIDVALIDITY changed from %s to %s; syncing the folder anew",
            inbox.name, status.name, row[0], status.uidvalidity,
        )  # fmt: skip
    return 0, changed


def _record_error(conn: psycopg2.extensions.connection, inbox: Inbox, message: str) -> None:
    """Keep the last error on the inbox's folders so the UI and BI can show it."""
    with conn, conn.cursor() as cur:
        cur.execute(
            """
            INSERT INTO inboxsync.sync_state (inbox_id, folder, last_error, last_error_at)
            SELECT %s, 'INBOX', %s, now()
            WHERE NOT EXISTS (SELECT 1 FROM inboxsync.sync_state WHERE inbox_id = %s)
            """,
            (inbox.inbox_id, message, inbox.inbox_id),
        )
        cur.execute(
            "UPDATE inboxsync.sync_state SET last_error = %s, last_error_at = now()"
            " WHERE inbox_id = %s",
            (message, inbox.inbox_id),
        )


def enabled_inbox_names(url: str | None = None) -> list[str]:
    """Names of the enabled inboxes (what the hourly DAG maps over)."""
    url = url or warehouse.warehouse_url()
    warehouse.migrate(url)
    with warehouse.transaction(url) as cur:
        return [i.name for i in registry.list_inboxes(cur, enabled_only=True)]
