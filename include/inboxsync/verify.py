"""Reconcile what the server holds with what the warehouse holds, folder by folder.

``inboxsync verify NAME`` is the check every reliability test ends with: after a sync, nothing on
the server is missing from the warehouse, nothing live in the warehouse is gone from the server,
and no copy's flags are stale.
"""

from __future__ import annotations

from dataclasses import dataclass

from inboxsync import registry, warehouse
from inboxsync.connections import get_connection
from inboxsync.imap import ImapSession, ImapSettings


@dataclass(frozen=True)
class FolderCheck:
    """One folder's reconciliation.

    Attributes:
        folder: The folder.
        uidvalidity: Its UIDVALIDITY on the server.
        on_server: Messages on the server.
        in_warehouse: Live copies plus quarantined copies of this UIDVALIDITY.
        missing: On the server, neither a copy nor quarantined.
        pending: Of ``missing``, those a backfill or the next run has yet to reach (outside the
            synced UID range); the rest are true gaps.
        extra: Live copies whose UID is gone from the server (or from an older UIDVALIDITY).
        stale: Copies whose flags differ from the server's.
    """

    folder: str
    uidvalidity: int
    on_server: int
    in_warehouse: int
    missing: int
    pending: int
    extra: int
    stale: int

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.stale)


def verify_inbox(name: str, *, url: str | None = None) -> list[FolderCheck]:
    """Compare the server's UID sets and flags with the warehouse, per synced folder."""
    url = url or warehouse.warehouse_url()
    with warehouse.transaction(url) as cur:
        inbox = registry.get_inbox(cur, name)
    cfg = ImapSettings.from_connection(get_connection(inbox.conn_id))
    checks = []
    with ImapSession(cfg) as imap, warehouse.transaction(url) as cur:
        for folder in imap.sync_folders(inbox.folders):
            status = imap.examine(folder)
            server = imap.changed_flags(None, imap.all_uids()).flags
            checks.append(_check(cur, inbox.inbox_id, folder, status.uidvalidity, server))
    return checks


def _check(cur, inbox_id: int, folder: str, uidvalidity: int, server: dict) -> FolderCheck:
    params = {"i": inbox_id, "f": folder, "v": uidvalidity}
    cur.execute(
        "SELECT uid, flags FROM inboxsync.message_copies WHERE inbox_id = %(i)s"
        " AND folder = %(f)s AND uidvalidity = %(v)s AND expunged_at IS NULL",
        params,
    )
    copies = {uid: tuple(sorted(flags)) for uid, flags in cur.fetchall()}
    cur.execute(
        "SELECT uid FROM inboxsync.quarantine WHERE inbox_id = %(i)s AND folder = %(f)s"
        " AND uidvalidity = %(v)s",
        params,
    )
    quarantined = {row[0] for row in cur.fetchall()}
    cur.execute(
        "SELECT count(*) FROM inboxsync.message_copies WHERE inbox_id = %(i)s AND folder = %(f)s"
        " AND uidvalidity <> %(v)s AND expunged_at IS NULL",
        params,
    )
    old_generation = cur.fetchone()[0]
    cur.execute(
        "SELECT last_uid, coalesce(backfill_uid, 1) FROM inboxsync.sync_state"
        " WHERE inbox_id = %(i)s AND folder = %(f)s AND uidvalidity = %(v)s",
        params,
    )
    row = cur.fetchone()
    last_uid, backfill_uid = row if row else (0, 1)
    missing = set(server) - set(copies) - quarantined
    pending = {uid for uid in missing if uid > last_uid or uid < backfill_uid}
    return FolderCheck(
        folder=folder,
        uidvalidity=uidvalidity,
        on_server=len(server),
        in_warehouse=len(copies) + len(quarantined),
        missing=len(missing),
        pending=len(pending),
        extra=len(set(copies) - set(server)) + old_generation,
        stale=sum(1 for uid, flags in copies.items() if uid in server and server[uid] != flags),
    )
