"""The warehouse floor: the rows a full sync stored, written again with nothing else to do.

After a full sync, every row it left in the tables it fills (messages and their copies,
addresses and references, contacts, threads and thread nodes, reply flags and events,
quarantine) is read out in batches of the sync's size, each message's rows in its batch, and
then written by binary COPY into a fresh warehouse, migrated like any other (same tables, same
indexes), one transaction per batch. No parsing, staging, merging or deriving: what PostgreSQL
spends here is what keeping these rows and their indexes costs, the warehouse's counterpart of
the raw IMAP ceiling (:mod:`inboxsync.bench.ceiling`).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg2.extensions

from inboxsync import warehouse
from inboxsync.bench import cpu

#: The tables a sync writes rows into, in an order their foreign keys accept (reply flags name
#: their messages). inboxes, sync_state and the derive bookkeeping are not the sync's output.
STORED = (
    "messages",
    "message_copies",
    "message_addresses",
    "message_references",
    "contacts",
    "threads",
    "thread_nodes",
    "thread_merges",
    "reply_flags",
    "reply_events",
    "quarantine",
)


@dataclass(frozen=True)
class FloorResult:
    """One load of a synced warehouse's rows into an empty one."""

    messages: int
    rows: int
    batches: int
    seconds: float
    pg_cpu_s: float


def measure(
    source_url: str, target_url: str, work_dir: Path, *, batch_size: int, pg_pid: int
) -> FloorResult:
    """Write the rows of the synced warehouse at ``source_url`` into the empty ``target_url``.

    Args:
        source_url: A warehouse a full sync has filled.
        target_url: A migrated warehouse with no rows yet (the source's inboxes are copied into
            it first, untimed: quarantine rows name them).
        work_dir: Where the batches wait between reading and writing (emptied and removed).
        batch_size: Messages a transaction, the sync's batch size.
        pg_pid: The postmaster both databases run under; its process tree's CPU time while the
            batches are written is ``pg_cpu_s``.

    Returns:
        Messages and rows written, and the wall time and PostgreSQL CPU time of writing them.
    """
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    try:
        columns, messages, batches = _read(source_url, work_dir, batch_size)
        _copy_table(source_url, target_url, "inboxes", work_dir / "inboxes")
        return _write(target_url, work_dir, columns, messages, batches, pg_pid)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _read(source_url: str, work_dir: Path, batch_size: int) -> tuple[dict[str, str], int, int]:
    """Write each batch of each table to ``work_dir`` as binary COPY data; return the tables'
    column lists, the message count and the batch count."""
    with warehouse.transaction(source_url) as cur:
        # A message's batch is the place of its first copy in UID order, as the sync met it.
        cur.execute(
            """
            CREATE TEMP TABLE floor_batch ON COMMIT DROP AS
            SELECT message_key,
                   (row_number() OVER (ORDER BY first_uid, message_key) - 1) / %s AS batch
            FROM (SELECT m.message_key, min(c.uid) AS first_uid
                  FROM inboxsync.messages m
                  LEFT JOIN inboxsync.message_copies c USING (message_key)
                  GROUP BY m.message_key) firsts
            """,
            (batch_size,),
        )
        cur.execute("CREATE INDEX ON floor_batch (message_key); ANALYZE floor_batch")
        cur.execute("SELECT count(*), coalesce(max(batch) + 1, 0) FROM floor_batch")
        messages, batches = cur.fetchone()
        columns = {table: _columns(cur, table) for table in STORED}
        for table, cols in columns.items():
            # A row that names a message goes with it; the others (contacts, threads, thread
            # nodes, quarantine) are spread over the batches evenly.
            keyed = "message_key" in cols.split(", ")
            batch = "b.batch" if keyed else f"ntile({max(batches, 1)}) OVER () - 1"
            join = "JOIN floor_batch b USING (message_key)" if keyed else ""
            cur.execute(
                f"CREATE TEMP TABLE floor_rows ON COMMIT DROP AS"
                f" SELECT {batch} AS floor_batch, t.* FROM inboxsync.{table} t {join};"
                f" CREATE INDEX ON floor_rows (floor_batch); ANALYZE floor_rows"
            )
            for k in range(batches):
                query = cur.mogrify(
                    f"COPY (SELECT {cols} FROM floor_rows WHERE floor_batch = %s)"
                    " TO STDOUT (FORMAT binary)",
                    (k,),
                )
                with (work_dir / f"{k}.{table}").open("wb") as out:
                    cur.copy_expert(query.decode(), out)
            cur.execute("DROP TABLE floor_rows")
    return columns, messages, batches


def _columns(cur: psycopg2.extensions.cursor, table: str) -> str:
    """The table's columns a COPY can write (not the generated ones), in order."""
    cur.execute(
        "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute"
        " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped"
        " AND attgenerated = ''",
        (f"inboxsync.{table}",),
    )
    return cur.fetchone()[0]


def _copy_in(cur: psycopg2.extensions.cursor, table: str, cols: str, path: Path) -> None:
    """COPY the binary data in ``path`` into ``table``."""
    with path.open("rb") as data:
        cur.copy_expert(f"COPY inboxsync.{table} ({cols}) FROM STDIN (FORMAT binary)", data)


def _copy_table(source_url: str, target_url: str, table: str, path: Path) -> None:
    """Copy every row of ``table`` from one warehouse to the other."""
    with warehouse.transaction(source_url) as cur, path.open("wb") as out:
        cols = _columns(cur, table)
        cur.copy_expert(f"COPY inboxsync.{table} ({cols}) TO STDOUT (FORMAT binary)", out)
    with warehouse.transaction(target_url) as cur:
        _copy_in(cur, table, cols, path)


def _write(
    target_url: str,
    work_dir: Path,
    columns: dict[str, str],
    messages: int,
    batches: int,
    pg_pid: int,
) -> FloorResult:
    conn = warehouse.connect(target_url)
    try:
        rows = 0
        with conn.cursor() as cur:
            # As the sync's writer does (inboxsync.writer): a crash may lose the last commits.
            cur.execute("SET synchronous_commit = off")
            conn.commit()
            cpu_before, started = cpu.tree_seconds(pg_pid), time.perf_counter()
            for k in range(batches):
                for table, cols in columns.items():
                    _copy_in(cur, table, cols, work_dir / f"{k}.{table}")
                    rows += cur.rowcount
                conn.commit()
            seconds = time.perf_counter() - started
            pg_cpu = cpu.tree_seconds(pg_pid) - cpu_before
        return FloorResult(messages, rows, batches, seconds, pg_cpu)
    finally:
        conn.close()
