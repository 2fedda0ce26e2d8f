"""Sync one inbox: the single code path behind the DAG's mapped tasks and ``inboxsync sync``.

A run works in two passes over the inbox's folders:

1. per folder: EXAMINE; if UIDVALIDITY changed, re-map known copies by Message-ID (X-GM-MSGID on
   Gmail); sync flags and deletions of known copies (CONDSTORE/QRESYNC when offered); load new
   mail above the high-water mark (``last_uid``);
2. history, newest first, below each folder's low-water mark (``backfill_uid``), one batch per
   folder in turn, until it is complete or the run's budget (messages, bytes) is spent.

Every batch commits with its checkpoint in one transaction, so a run can stop anywhere and the
next one continues where it left off.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field

import psycopg2
import psycopg2.extensions

from inboxsync import collector, derive, registry, settings, warehouse
from inboxsync.connections import get_connection
from inboxsync.imap import (
    FolderStatus,
    ImapSession,
    ImapSettings,
    InboxError,
    InboxThrottled,
    as_throttled,
)
from inboxsync.load import apply_changes, remap_folder, write_batch
from inboxsync.parse import QuarantineError, parse_header
from inboxsync.registry import Inbox
from inboxsync.stager import Stager
from inboxsync.writer import Writer

log = logging.getLogger(__name__)

# How often a long history pass reports progress in the task log.
_PROGRESS_SECONDS = 10.0


class InboxBusy(InboxError):
    """Another process is syncing this inbox right now."""


@dataclass
class Budget:
    """What one run may download from one inbox; None means no limit.

    Gmail suspends IMAP for a day past about 2,500 MB of downloads: the byte budget of an hourly
    run keeps a large backfill well below that.
    """

    messages: int | None = None
    bytes: int | None = None
    spent_messages: int = 0
    spent_bytes: int = 0

    @classmethod
    def for_inbox(cls, inbox: Inbox) -> Budget:
        """The budget of a scheduled run: the inbox's own, else the settings' defaults."""
        return cls(
            messages=inbox.budget_messages or settings.RUN_BUDGET_MESSAGES,
            bytes=inbox.budget_bytes or settings.RUN_BUDGET_BYTES,
        )

    @property
    def exhausted(self) -> bool:
        return (self.messages is not None and self.spent_messages >= self.messages) or (
            self.bytes is not None and self.spent_bytes >= self.bytes
        )

    def room(self, wanted: int) -> int:
        """How many of ``wanted`` more messages the budget lets this run fetch (a batch's size,
        or a backfill's whole remainder when planning its batches)."""
        if self.messages is None:
            return wanted
        return max(0, min(wanted, self.messages - self.spent_messages))

    def spend(self, messages: int, nbytes: int) -> None:
        self.spent_messages += messages
        self.spent_bytes += nbytes


@dataclass
class FolderResult:
    """What one folder's sync did; logged per folder and returned through XCom as counts."""

    folder: str
    uidvalidity: int
    fetched: int = 0
    loaded: int = 0
    quarantined: int = 0
    new_mail: int = 0
    history: int = 0
    batches: int = 0
    bytes: int = 0
    seconds: float = 0.0
    uidvalidity_changed: bool = False
    remapped: int = 0
    expunged: int = 0
    flags_updated: int = 0
    backfill_remaining: int = 0

    @property
    def rate(self) -> float:
        return self.fetched / self.seconds if self.seconds > 0 else 0.0

    def log_line(self) -> str:
        line = (
            f"folder {self.folder!r}: fetched {self.fetched}, loaded {self.loaded}, "
            f"quarantined {self.quarantined}, {self.seconds:.2f} s, {self.rate:,.0f} messages/s"
        )
        extras = [
            f"{n} {label}"
            for n, label in (
                (self.new_mail, "new"),
                (self.history, "history"),
                (self.backfill_remaining, "history remaining"),
                (self.flags_updated, "flag changes"),
                (self.expunged, "expunged"),
                (self.remapped, "re-mapped after a UIDVALIDITY change"),
            )
            if n
        ]
        return line + (f" ({', '.join(extras)})" if extras else "")


@dataclass
class InboxResult:
    """What one inbox's sync did."""

    inbox: str
    folders: list[FolderResult] = field(default_factory=list)
    budget_exhausted: bool = False
    throttled: bool = False
    # UIDs loaded as history (first sync, backfill): their replies fire no reply_event.
    history_ranges: list[derive.HistoryRange] = field(default_factory=list, repr=False)
    derived: derive.DeriveResult | None = None
    # Wall seconds of the whole sync_inbox call (folders and the writer's work overlap).
    seconds: float = 0.0

    @property
    def fetched(self) -> int:
        return sum(f.fetched for f in self.folders)

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self.folders)

    @property
    def backfill_remaining(self) -> int:
        return sum(f.backfill_remaining for f in self.folders)

    def as_dict(self) -> dict[str, object]:
        """Counts only (safe for XCom)."""
        return {
            "inbox": self.inbox,
            "fetched": self.fetched,
            "loaded": sum(f.loaded for f in self.folders),
            "quarantined": self.quarantined,
            "backfill_remaining": self.backfill_remaining,
            "budget_exhausted": self.budget_exhausted,
            "throttled": self.throttled,
            "folders": [asdict(f) for f in self.folders],
            "derive": self.derived.as_dict() if self.derived else None,
            "seconds": self.seconds,
        }


ProgressHook = Callable[[FolderResult], None]


@dataclass
class _FolderRun:
    """One folder during a run: its checkpoints and the history still to fetch."""

    name: str
    status: FolderStatus
    last_uid: int
    backfill_uid: int
    result: FolderResult
    history: list[int] = field(default_factory=list)  # UIDs below backfill_uid, newest first


@dataclass
class _Run:
    """What every step of one inbox's run needs."""

    conn: psycopg2.extensions.connection
    imap: ImapSession
    inbox: Inbox
    team: frozenset[str]
    batch_size: int
    budget: Budget
    on_batch: ProgressHook | None
    url: str
    writer: Writer
    stager: Stager
    derive_steps: derive.Background
    current_folder: str | None = None
    since_derive: int = 0  # messages loaded since the last derive step


def sync_inbox(
    name: str,
    *,
    url: str | None = None,
    batch_size: int | None = None,
    budget: Budget | None = None,
    on_batch: ProgressHook | None = None,
) -> InboxResult:
    """Sync every folder of inbox ``name`` into the warehouse.

    Args:
        name: The inbox's name in the registry.
        url: Warehouse URL; defaults to the ``inboxsync_warehouse`` connection.
        batch_size: UIDs per batch; defaults to ``settings.BATCH_SIZE``.
        budget: What this run may download; defaults to the inbox's hourly budget. Pass
            ``Budget()`` to run a backfill to the end.
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
            cfg = ImapSettings.from_connection(get_connection(inbox.conn_id))
            budget = budget if budget is not None else Budget.for_inbox(inbox)
            started = time.monotonic()
            try:
                with collector.fewer_collections():
                    result = _sync_with_backoff(
                        conn, cfg, inbox, team, batch_size, budget, on_batch, url
                    )
                result.seconds = time.monotonic() - started
            except InboxError as exc:
                conn.rollback()
                _record_error(conn, inbox, str(exc))
                raise
            return result
        finally:
            with contextlib.suppress(psycopg2.Error):
                conn.rollback()
                with conn.cursor() as cur:
                    warehouse.unlock_inbox(cur, inbox.inbox_id)
                conn.commit()
    finally:
        conn.close()


def _sync_with_backoff(
    conn: psycopg2.extensions.connection,
    cfg: ImapSettings,
    inbox: Inbox,
    team: frozenset[str],
    batch_size: int | None,
    budget: Budget,
    on_batch: ProgressHook | None,
    url: str,
) -> InboxResult:
    """Run the sync; when the server throttles, back off and try again, then give up politely.

    Batches committed before the server pushed back stay committed. A server that keeps
    throttling does not fail the run: the inbox is left for the next one, with the reason in
    ``sync_state.last_error``.
    """
    attempts = settings.THROTTLE_RETRIES + 1
    for attempt in range(1, attempts + 1):
        try:
            with (
                ImapSession(cfg) as imap,
                Stager(team, start_after=settings.PARSE_WORKER_AFTER) as stager,
                derive.Background(url, [inbox.inbox_id]) as steps,
                Writer(url) as writer,
            ):
                size = batch_size or settings.BATCH_SIZE
                run = _Run(
                    conn, imap, inbox, team, size, budget, on_batch, url, writer, stager, steps
                )
                result = _sync(run)
                writer.flush()
                steps.wait()
                # Threads, directions, reply flags and events for what is left; still under
                # this inbox's sync lock.
                final = derive.run(
                    url, history_ranges=result.history_ranges, inbox_ids=[inbox.inbox_id]
                )
                result.derived = _total([*steps.results, final])
                return result
        except InboxError as exc:
            conn.rollback()
            error = as_throttled(exc)
            if not isinstance(error, InboxThrottled):
                raise error from None
            if attempt == attempts:
                message = f"{error}; gave up after {attempts} attempts, the next run tries again"
                log.warning("inbox %r: %s", inbox.name, message)
                _record_error(conn, inbox, message)
                return InboxResult(inbox.name, budget_exhausted=budget.exhausted, throttled=True)
            delay = settings.THROTTLE_BACKOFF_SECONDS * 3 ** (attempt - 1)
            log.warning("inbox %r: %s; retrying in %.1f s", inbox.name, error, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def _sync(run: _Run) -> InboxResult:
    run.imap.enable_qresync()
    # STATUS of the folders synced before, ahead of LIST: Dovecot answers STATUS from its list
    # index in about a millisecond, but recomputes it (tens of ms on a large folder) after LIST.
    quiet = _quiet_folders(run)
    folders = [
        quiet.get(name) or _prepare_folder(run, name)
        for name in run.imap.sync_folders(run.inbox.folders)
    ]
    _backfill(run, folders)
    result = InboxResult(run.inbox.name, budget_exhausted=run.budget.exhausted)
    for folder in folders:
        _finish_folder(run, folder)
        log.info("inbox %r %s", run.inbox.name, folder.result.log_line())
        result.folders.append(folder.result)
        if folder.result.history:
            # Everything below the low-water mark this run started from is history.
            result.history_ranges.append(derive.HistoryRange(
                run.inbox.inbox_id, folder.name, folder.status.uidvalidity,
                max_uid=folder.backfill_uid - 1,
            ))  # fmt: skip
    return result


@contextlib.contextmanager
def _tx(run: _Run) -> Iterator[psycopg2.extensions.cursor]:
    """A transaction on the run's own connection, once the writer has committed what it holds
    (the run's reads and writes see, and come after, every batch handed over before them)."""
    run.writer.flush()
    with run.conn, run.conn.cursor() as cur:
        yield cur


# -- pass 1: plan, re-map, changes, new mail ----------------------------------------------------


def _examine(run: _Run, folder: str) -> FolderStatus:
    status = run.imap.examine(folder)
    run.current_folder = folder
    return status


def _quiet_folders(run: _Run) -> dict[str, _FolderRun]:
    """Folders with nothing to do since the last run: the hourly no-op, one STATUS each.

    Only under QRESYNC, where an unchanged HIGHESTMODSEQ also means no flag changed and nothing
    was expunged, and only for folders whose history is complete.
    """
    if not run.imap.has("QRESYNC"):
        return {}
    with _tx(run) as cur:
        cur.execute(
            "SELECT folder, uidvalidity, last_uid, highest_modseq FROM inboxsync.sync_state"
            " WHERE inbox_id = %s AND uidvalidity IS NOT NULL AND highest_modseq IS NOT NULL"
            " AND coalesce(backfill_uid, 1) <= 1",
            (run.inbox.inbox_id,),
        )
        rows = cur.fetchall()
    quiet = {}
    for name, uidvalidity, last_uid, modseq in rows:
        started = time.monotonic()
        try:
            status = run.imap.status(name)
        except InboxError:
            continue  # renamed or deleted: discovery and EXAMINE will tell
        if (
            status.uidvalidity == uidvalidity
            and status.highest_modseq == modseq
            and status.uidnext is not None
            and status.uidnext <= last_uid + 1
        ):
            result = FolderResult(name, uidvalidity, seconds=time.monotonic() - started)
            quiet[name] = _FolderRun(name, status, last_uid, 1, result)
    return quiet


def _prepare_folder(run: _Run, name: str) -> _FolderRun:
    started = time.monotonic()
    row = _read_state(run, name)
    status = _examine(run, name)
    result = FolderResult(name, status.uidvalidity)
    if row is None or row[0] is None:
        # A first sync: the folder's size tells already whether the parse worker will be wanted
        # (`_backfill` tells it again, from the UIDs to fetch); its start-up then overlaps the
        # searches instead of holding up the first batch.
        _expect(run, status.exists)
        last_uid, backfill_uid = _start_folder(run, status)
    elif row[0] != status.uidvalidity:
        result.uidvalidity_changed = True
        last_uid, backfill_uid = _remap(run, status, row[0], result)
    else:
        last_uid, backfill_uid = row[1], row[2]
    folder = _FolderRun(name, status, last_uid, backfill_uid, result)
    stored_modseq = row[3] if row is not None and not result.uidvalidity_changed else None
    _sync_changes(run, folder, since_modseq=stored_modseq)
    if status.uidnext is None or status.uidnext > last_uid + 1:
        # UIDNEXT above the high-water mark: new mail (else skip the SEARCH: one round trip).
        new = run.imap.uids_after(last_uid)
        _load(run, folder, new, history=False)
    if backfill_uid > 1:
        known = _known_uids_below(run, folder)
        folder.history = [u for u in reversed(run.imap.uids_below(backfill_uid)) if u not in known]
        result.backfill_remaining = len(folder.history)
    result.seconds += time.monotonic() - started
    return folder


def _read_state(run: _Run, folder: str) -> tuple | None:
    with _tx(run) as cur:
        cur.execute(
            "SELECT uidvalidity, last_uid, coalesce(backfill_uid, 1), highest_modseq"
            " FROM inboxsync.sync_state WHERE inbox_id = %s AND folder = %s",
            (run.inbox.inbox_id, folder),
        )
        return cur.fetchone()


def _start_folder(run: _Run, status: FolderStatus) -> tuple[int, int]:
    """First sync of a folder: everything on the server now is history, fetched newest first."""
    top = status.uidnext - 1 if status.uidnext else max(run.imap.all_uids(), default=0)
    with _tx(run) as cur:
        cur.execute(
            """
            INSERT INTO inboxsync.sync_state
                (inbox_id, folder, uidvalidity, last_uid, backfill_uid, history_uid, uidnext)
            VALUES (%s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (inbox_id, folder) DO UPDATE SET
                uidvalidity = EXCLUDED.uidvalidity, last_uid = EXCLUDED.last_uid,
                backfill_uid = EXCLUDED.backfill_uid, history_uid = EXCLUDED.history_uid,
                uidnext = EXCLUDED.uidnext, highest_modseq = NULL, updated_at = now()
            """,
            (
                run.inbox.inbox_id,
                status.name,
                status.uidvalidity,
                top,
                top + 1,
                top,
                status.uidnext,
            ),
        )
    return top, top + 1


def _remap(run: _Run, status: FolderStatus, old_uidvalidity: int, result: FolderResult):
    """A new UIDVALIDITY: re-key known copies by Message-ID instead of downloading them again.

    Only the Message-ID header (X-GM-MSGID on Gmail) of each UID is fetched; copies whose
    message is still there move to their new UIDs, the others are marked expunged, and the
    rest of the folder is loaded as history (UIDs already re-mapped are skipped).
    """
    log.warning(
        "inbox %r folder %r: UIDVALIDITY changed from %s to %s; re-mapping known copies",
        run.inbox.name, status.name, old_uidvalidity, status.uidvalidity,
    )  # fmt: skip
    uids = run.imap.all_uids()
    identities = [
        (uid, _key_of_id_header(raw), gm_msgid)
        for uid, (raw, gm_msgid) in run.imap.fetch_ids(uids).items()
    ]
    top = status.uidnext - 1 if status.uidnext else max(uids, default=0)
    with _tx(run) as cur:
        result.remapped, result.expunged = remap_folder(
            cur,
            identities,
            inbox_id=run.inbox.inbox_id,
            folder=status.name,
            uidvalidity=status.uidvalidity,
            last_uid=top,
            uidnext=status.uidnext,
        )
    return top, top + 1


def _key_of_id_header(raw: bytes) -> str | None:
    """The message key a Message-ID header alone gives (None without an id)."""
    try:
        parsed = parse_header(raw)
    except QuarantineError:
        return None
    return parsed.message_key if parsed.message_id else None


def _sync_changes(run: _Run, folder: _FolderRun, *, since_modseq: int | None) -> None:
    """Flags and deletions of the copies the warehouse already holds.

    Under QRESYNC the server reports flag changes and deletions since the stored MODSEQ, and an
    unchanged HIGHESTMODSEQ means nothing changed at all: no round trip. Otherwise the flags of
    every known copy are fetched and the UID sets compared.
    """
    qresync = since_modseq is not None and run.imap.has("QRESYNC")
    if qresync and folder.status.highest_modseq == since_modseq:
        return
    # Only the fallback needs the known UIDs; the UPDATEs ignore UIDs the warehouse lacks.
    known = None if qresync else _live_uids(run, folder)
    if known is not None and not known:
        return
    changes = run.imap.changed_flags(since_modseq, sorted(known or ()))
    vanished = changes.vanished
    if vanished is None:
        vanished = frozenset(known - set(run.imap.all_uids()))
    with _tx(run) as cur:
        updated, expunged = apply_changes(
            cur,
            changes.flags,
            sorted(vanished),
            labels=changes.labels,
            inbox_id=run.inbox.inbox_id,
            folder=folder.name,
            uidvalidity=folder.status.uidvalidity,
        )
    folder.result.flags_updated += updated
    folder.result.expunged += expunged


def _live_uids(run: _Run, folder: _FolderRun) -> set[int]:
    with _tx(run) as cur:
        cur.execute(
            "SELECT uid FROM inboxsync.message_copies WHERE inbox_id = %s AND folder = %s"
            " AND uidvalidity = %s AND expunged_at IS NULL",
            (run.inbox.inbox_id, folder.name, folder.status.uidvalidity),
        )
        return {row[0] for row in cur.fetchall()}


def _known_uids_below(run: _Run, folder: _FolderRun) -> set[int]:
    """UIDs under the low-water mark that are loaded already (re-mapped copies, quarantine)."""
    with _tx(run) as cur:
        cur.execute(
            "SELECT uid FROM inboxsync.message_copies WHERE inbox_id = %(i)s AND folder = %(f)s"
            " AND uidvalidity = %(v)s AND uid < %(b)s"
            " UNION SELECT uid FROM inboxsync.quarantine WHERE inbox_id = %(i)s"
            " AND folder = %(f)s AND uidvalidity = %(v)s AND uid < %(b)s",
            {
                "i": run.inbox.inbox_id,
                "f": folder.name,
                "v": folder.status.uidvalidity,
                "b": folder.backfill_uid,
            },
        )
        return {row[0] for row in cur.fetchall()}


# -- loading batches ----------------------------------------------------------------------------


def _chunks(uids: Sequence[int], run: _Run) -> Iterator[list[int]]:
    start = 0
    while start < len(uids):
        size = run.budget.room(run.batch_size)
        if size == 0:
            return
        yield list(uids[start : start + size])
        start += size


def _load(run: _Run, folder: _FolderRun, uids: Sequence[int], *, history: bool) -> int:
    """Fetch, parse and load ``uids`` in batches; returns how many UIDs were processed."""
    done = 0
    for chunk in _chunks(uids, run):
        if run.current_folder != folder.name:
            status = _examine(run, folder.name)
            if status.uidvalidity != folder.status.uidvalidity:
                log.warning("folder %r changed UIDVALIDITY mid-run: next run re-maps", folder.name)
                folder.history = []
                return done
        _load_batch(run, folder, chunk, history=history)
        done += len(chunk)
        if run.budget.exhausted:
            break
    return done


def _load_batch(run: _Run, folder: _FolderRun, chunk: list[int], *, history: bool) -> None:
    """Fetch one batch here, have it parsed and staged (`Stager`), and hand it to the writer to
    commit with its checkpoint."""
    started = time.monotonic()
    fetched = run.imap.fetch_headers(chunk)
    staging = run.stager.submit(fetched)
    nbytes = sum(len(c.raw_header) for c in fetched)
    if history:
        folder.history = folder.history[len(chunk) :]
    r = folder.result
    write = functools.partial(
        write_batch,
        inbox_id=run.inbox.inbox_id,
        folder=folder.name,
        uidvalidity=folder.status.uidvalidity,
        last_uid=None if history else chunk[-1],
        backfill_uid=min(chunk) if history else None,
        backfill_remaining=len(folder.history) if history else None,
        create_contacts=run.inbox.create_contacts,
        created_by=f"sync:{run.inbox.name}",
    )

    def commit(conn: psycopg2.extensions.connection) -> None:
        staged = run.stager.result(staging, fetched)
        with conn, conn.cursor() as cur:
            write(cur, staged)
        r.loaded += staged.loaded
        r.quarantined += staged.quarantined
        if run.on_batch:
            run.on_batch(r)

    run.writer.submit(commit)
    run.budget.spend(len(fetched), nbytes)
    r.fetched += len(fetched)
    r.bytes += nbytes
    r.batches += 1
    if history:
        r.history += len(fetched)
        r.backfill_remaining = len(folder.history)
    else:
        r.new_mail += len(fetched)
    r.seconds += time.monotonic() - started
    run.since_derive += len(fetched)
    # Long backfills derive as they go: reply flags of recent mail arrive early, and each derive
    # step stays small (its cost grows faster than the messages it handles). A step runs beside
    # the loading (`derive.Background`); while one runs, the next waits for a later batch.
    if run.since_derive >= settings.DERIVE_EVERY and run.derive_steps.step():
        run.since_derive = 0


def _total(results: Sequence[derive.DeriveResult]) -> derive.DeriveResult | None:
    """One derive result for the whole run (the sum of its steps)."""
    if not results:
        return None
    total = derive.DeriveResult()
    for r in results:
        for name, value in vars(r).items():
            if isinstance(value, bool):
                setattr(total, name, getattr(total, name) or value)
            else:
                setattr(total, name, getattr(total, name) + value)
    return total


# -- pass 2: history, newest first --------------------------------------------------------------


def _backfill(run: _Run, folders: list[_FolderRun]) -> None:
    """Load history one batch per folder in turn, so every folder's recent mail comes first."""
    total = sum(len(f.history) for f in folders)
    if not total:
        return
    _expect(run, total)
    started = last_report = time.monotonic()
    done = 0
    while not run.budget.exhausted and any(f.history for f in folders):
        for folder in folders:
            if folder.history and not run.budget.exhausted:
                first = folder.history[: run.budget.room(run.batch_size)]
                done += _load(run, folder, first, history=True)
        now = time.monotonic()
        if now - last_report >= _PROGRESS_SECONDS:
            last_report = now
            _log_progress(run, done, total, now - started)
    _log_progress(run, done, total, time.monotonic() - started)


def _expect(run: _Run, messages: int) -> None:
    """Tell the stager how many batches ``messages`` more will take, within the run's budget."""
    run.stager.expect(-(-run.budget.room(messages) // run.batch_size))  # rounded up


def _log_progress(run: _Run, done: int, total: int, seconds: float) -> None:
    rate = done / seconds if seconds > 0 else 0.0
    remaining = total - done
    eta = f"{remaining / rate:,.0f} s" if rate and remaining else "-"
    log.info(
        "inbox %r backfill: done %d, remaining %d, %.0f messages/s, ETA %s",
        run.inbox.name, done, remaining, rate, eta,
    )  # fmt: skip


# -- bookkeeping --------------------------------------------------------------------------------


def _finish_folder(run: _Run, folder: _FolderRun) -> None:
    r, status = folder.result, folder.status
    history_rate = r.history / r.seconds if r.history and r.seconds else None
    with _tx(run) as cur:
        cur.execute(
            """
            UPDATE inboxsync.sync_state
            SET last_success_at = now(), last_error = NULL, last_error_at = NULL,
                uidnext = %(uidnext)s, highest_modseq = %(modseq)s,
                messages_on_server = %(exists)s, flags_synced_at = now(),
                backfill_remaining = %(remaining)s,
                backfill_rate = coalesce(%(rate)s, backfill_rate),
                backfill_done_at = CASE WHEN %(remaining)s = 0
                    THEN coalesce(backfill_done_at, now()) END,
                last_run = %(last_run)s, updated_at = now()
            WHERE inbox_id = %(inbox_id)s AND folder = %(folder)s
            """,
            {
                "uidnext": status.uidnext,
                "modseq": status.highest_modseq,
                "exists": status.exists,
                "remaining": len(folder.history),
                "rate": history_rate,
                "last_run": json.dumps(asdict(r)),
                "inbox_id": run.inbox.inbox_id,
                "folder": folder.name,
            },
        )


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


def enabled_inboxes(url: str | None = None) -> list[Inbox]:
    """The enabled inboxes (what the hourly DAG maps over)."""
    url = url or warehouse.warehouse_url()
    warehouse.migrate(url)
    with warehouse.transaction(url) as cur:
        return registry.list_inboxes(cur, enabled_only=True)
