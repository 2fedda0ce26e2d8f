"""The derive step: threads, directions, reply flags and reply events, after each sync.

`run` is called by `inboxsync.sync.sync_inbox` once all folders of an inbox are loaded. It works
on the messages not derived yet (those in ``derive_queue``) and on the threads they touch,
never on the whole warehouse (except directions after the team changed), and does everything in
one transaction under a lock, so two inboxes finishing together derive one after the other, a
crash derives nothing, and a rerun finds nothing left to do. reply_events' ids therefore
increase in commit order, which lets consumers keep a plain offset.

SQL lives in include/sql/derive/*.sql; the thread linking is `inboxsync.threads.link`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from types import TracebackType

import psycopg2.extensions

from inboxsync import threads, warehouse
from inboxsync.load import _copy  # the one COPY writer

log = logging.getLogger(__name__)

# Any constant: it only has to be the same for every process deriving this warehouse.
_DERIVE_LOCK_KEY = 0x1B0C6


@dataclass(frozen=True)
class HistoryRange:
    """UIDs of a folder that were loaded as history (a first sync, a backfill batch).

    Replies among messages whose every copy lies in such ranges set flags but fire no
    reply_event, unless an inbox holding them has ``history_reply_events`` on.

    Attributes:
        inbox_id: The inbox.
        folder: The folder.
        uidvalidity: The folder's UIDVALIDITY when loaded.
        min_uid: Lowest UID of the range.
        max_uid: Highest UID of the range; None for no upper bound.
    """

    inbox_id: int
    folder: str
    uidvalidity: int
    min_uid: int = 1
    max_uid: int | None = None


@dataclass
class DeriveResult:
    """What one derive run did (counts only, safe for XCom)."""

    messages: int = 0
    new_threads: int = 0
    merged_threads: int = 0
    touched_threads: int = 0
    reclassified: int = 0  # messages whose direction was computed again (team changed since load)
    directions_changed: int = 0
    team_changed: bool = False
    flags_updated: int = 0
    new_events: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def run(
    url: str | None = None,
    *,
    history: bool = False,
    history_ranges: Collection[HistoryRange] = (),
    inbox_ids: Collection[int] = (),
) -> DeriveResult:
    """Derive everything the messages loaded since the last run imply.

    Args:
        url: Warehouse URL; defaults to the ``inboxsync_warehouse`` connection.
        history: Treat every pending message as history (a backfill run).
        history_ranges: Folder UID ranges loaded as history; a message is history when all its
            copies lie in them.
        inbox_ids: Inboxes whose sync lock the caller holds. Messages found only in inboxes
            that another session is syncing are left for that sync's own derive (which knows
            its history ranges).

    Returns:
        Counts of what changed.
    """
    started = time.monotonic()
    conn = warehouse.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_DERIVE_LOCK_KEY,))
            # A step sorts and hashes tens of thousands of rows (pending messages, their links):
            # PostgreSQL's default 4 MB spills them to temporary files.
            cur.execute("SET LOCAL work_mem = '64MB'")
            result = _derive(cur, history, list(history_ranges), list(inbox_ids))
    finally:
        conn.close()
    result.seconds = time.monotonic() - started
    log.info(
        "derive: %d messages, %d new / %d merged / %d touched threads, %d classified again,"
        " %d directions changed, %d flags updated, %d new reply events, %.2f s",
        result.messages, result.new_threads, result.merged_threads, result.touched_threads,
        result.reclassified, result.directions_changed, result.flags_updated, result.new_events,
        result.seconds,
    )  # fmt: skip
    return result


class Background:
    """The derive steps of a long sync, run on a thread (and connection) of their own.

    A step derives what was committed when it starts, so it need not wait for the batches the
    sync is still loading, nor they for it: PostgreSQL does both at once (the derive lock and
    the warehouse's row locks order them as they order two inboxes syncing side by side). One
    step runs at a time; `step` asks for one and is ignored while one runs (the next picks up
    everything pending). A failed step is raised by the next `step` or by `wait`.
    """

    def __init__(self, url: str, inbox_ids: Collection[int]) -> None:
        self._url = url
        self._inbox_ids = list(inbox_ids)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inboxsync-derive")
        self._running: Future[DeriveResult] | None = None
        self.results: list[DeriveResult] = []

    def step(self) -> bool:
        """Start a derive step unless one is running; returns whether one started."""
        if self._running is not None:
            if not self._running.done():
                return False
            self._collect()
        self._running = self._pool.submit(run, self._url, inbox_ids=self._inbox_ids)
        return True

    def wait(self) -> None:
        """Wait for the running step, if any; raise its failure."""
        if self._running is not None:
            self._collect()

    def _collect(self) -> None:
        running, self._running = self._running, None
        assert running is not None
        self.results.append(running.result())

    def __enter__(self) -> Background:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._pool.shutdown(wait=True)
        running = self._running
        if exc is not None and running is not None and running.exception() is not None:
            log.error("a derive step failed too: %s", running.exception())


def _derive(
    cur: psycopg2.extensions.cursor, history: bool, ranges: list[HistoryRange], own: list[int]
) -> DeriveResult:
    result = DeriveResult()
    # The team's fingerprint: when it differs from the last run's, every direction is refreshed.
    cur.execute(
        "SELECT inboxsync.team_fingerprint(),"
        " (SELECT value FROM inboxsync.derive_state WHERE name = 'team')"
    )
    team_fingerprint, last_fingerprint = cur.fetchone()
    cur.execute(
        warehouse.read_sql("derive/pending.sql"),
        {
            "team": team_fingerprint,
            "history": history,
            "h_inbox": [r.inbox_id for r in ranges],
            "h_folder": [r.folder for r in ranges],
            "h_uidvalidity": [r.uidvalidity for r in ranges],
            "h_min_uid": [r.min_uid for r in ranges],
            "h_max_uid": [r.max_uid for r in ranges],
            "lock_class": warehouse._INBOX_LOCK_CLASS,  # the sync lock of lock_inbox()
            "own_inboxes": own,
        },
    )
    result.team_changed = team_fingerprint != last_fingerprint
    cur.execute("SELECT count(*) FROM derive_pending")
    result.messages = cur.fetchone()[0]
    if result.messages == 0 and not result.team_changed:
        return result

    _link_threads(cur, result)
    cur.execute(warehouse.read_sql("derive/direction.sql"), {"refresh_all": result.team_changed})
    result.directions_changed = cur.fetchone()[0]
    cur.execute("SELECT count(*) FROM derive_scope")
    result.reclassified = cur.fetchone()[0]
    cur.execute("SELECT count(*) FROM derive_threads")
    result.touched_threads = cur.fetchone()[0]
    cur.execute(warehouse.read_sql("derive/reply_flags.sql"))
    fired = [row[0] for row in cur.fetchall()]
    result.flags_updated = len(fired)
    result.new_events = sum(fired)
    cur.execute(warehouse.read_sql("derive/finish.sql"), {"team": team_fingerprint})
    return result


def _link_threads(cur: psycopg2.extensions.cursor, result: DeriveResult) -> None:
    """Thread the pending messages (`inboxsync.threads.link`) and store the outcome."""
    cur.execute(
        """
        SELECT p.message_key, p.message_id, p.in_reply_to, p.sent_at,
               (SELECT array_agg(r.ref_message_id ORDER BY r.position)
                FROM inboxsync.message_references r WHERE r.message_key = p.message_key),
               p.loaded_thread_id, p.history_changes
        FROM derive_pending p
        """
    )
    pending: list[threads.NewMessage] = []
    # Per message: the thread the load guessed, and whether the step changes its history.
    loaded: dict[str, tuple[str | None, bool]] = {}
    for key, mid, irt, sent_at, refs, loaded_thread, history_changes in cur.fetchall():
        pending.append(threads.NewMessage(key, mid, refs or (), irt, sent_at))
        loaded[key] = (loaded_thread, history_changes)
    message_nodes = threads.nodes_by_message(pending)
    nodes = {node for msg_nodes in message_nodes.values() for node in msg_nodes}
    cur.execute("CREATE TEMP TABLE derive_lookup (node uuid) ON COMMIT DROP")
    _copy(cur, "derive_lookup", [(n,) for n in nodes], plain=True)
    # Analyzed, or the planner guesses its size and scans every thread node (20 ms of a 70 ms
    # hourly derive step at 100,000 messages, growing with the warehouse). Each node is looked up
    # by key (OFFSET 0 keeps the lookup per node): for a backfill step's ten thousand nodes the
    # planner hashed every node of the warehouse instead (a step of 10,000 messages: 42 ms with
    # 100,000 nodes, 200 ms with 1,000,000; looked up, 70 and 100 ms).
    cur.execute("ANALYZE derive_lookup")
    cur.execute(
        """
        SELECT n.node, n.thread_id, t.first_message_at
        FROM derive_lookup l
        CROSS JOIN LATERAL (
            SELECT node, thread_id FROM inboxsync.thread_nodes n WHERE n.node = l.node OFFSET 0
        ) n
        LEFT JOIN inboxsync.threads t USING (thread_id)
        """
    )
    found = cur.fetchall()
    existing_nodes: dict[threads.Node, str] = {node: thread_id for node, thread_id, _ in found}
    # One per thread (a row per node names it again).
    existing_threads: dict[str, threads.ExistingThread] = {}
    for _, thread_id, first_at in found:
        if thread_id not in existing_threads:
            existing_threads[thread_id] = threads.ExistingThread(thread_id, first_at)
    linked = threads.link(pending, existing_nodes, existing_threads, message_nodes)
    result.new_threads = len(linked.new_threads)
    result.merged_threads = len(linked.merges)

    cur.execute(
        "CREATE TEMP TABLE derive_links (message_key text, thread_id text, corrected boolean)"
        " ON COMMIT DROP;"
        "CREATE TEMP TABLE derive_nodes (node uuid, thread_id text, stored boolean)"
        " ON COMMIT DROP;"
        "CREATE TEMP TABLE derive_merges (merged_thread_id text, thread_id text) ON COMMIT DROP;"
    )
    # A link is marked corrected when the load's thread or history was wrong (about one in ten
    # in a backfill): the step rewrites those rows, and its UPDATE looks up only them.
    # Keys, nodes and thread ids never need COPY's escaping: joined as they are (plain).
    _copy(
        cur,
        "derive_links",
        [(key, thread_id, "t" if loaded[key][1] or loaded[key][0] != thread_id else "f")
         for key, thread_id in linked.message_threads.items()],
        plain=True,
    )  # fmt: skip
    _copy(
        cur,
        "derive_nodes",
        [(node, thread_id, "t" if node in existing_nodes else "f")
         for node, thread_id in linked.node_threads.items()
         if existing_nodes.get(node) != thread_id],
        plain=True,
    )  # fmt: skip
    _copy(cur, "derive_merges", list(linked.merges.items()), plain=True)
    cur.execute("ANALYZE derive_links; ANALYZE derive_merges")
    cur.execute(warehouse.read_sql("derive/thread_links.sql"))
