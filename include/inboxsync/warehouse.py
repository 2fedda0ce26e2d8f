"""The warehouse: one way to connect, one way to migrate.

The warehouse is the Airflow connection ``inboxsync_warehouse``; DAG tasks and the CLI resolve it
through the same function, so ``AIRFLOW_CONN_INBOXSYNC_WAREHOUSE=postgresql://...`` points both at
one database.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import psycopg2.extensions

from inboxsync import settings
from inboxsync.connections import get_connection

log = logging.getLogger(__name__)

MIGRATIONS_DIR = settings.SQL_DIR / "migrations"
# Any constant works: it only has to be the same for every process that migrates this warehouse.
_MIGRATION_LOCK_KEY = 0x1B0C5
# A stable key per inbox serialises two syncs of the same inbox (a manual CLI sync beside the DAG).
_INBOX_LOCK_CLASS = 0x1B0C
# Warehouses whose collation this process has checked (`slow_collation`): one warning
# per task or CLI call, not one per migrate() call.
_collation_checked: set[str] = set()


def warehouse_url(conn_id: str = settings.WAREHOUSE_CONN_ID) -> str:
    """Build a libpq URL from the warehouse's Airflow connection.

    Args:
        conn_id: The Airflow connection id of the warehouse.

    Returns:
        A ``postgresql://`` URL with the password quoted.
    """
    # Imported here: SQLAlchemy takes a tenth of a second to import, and the parse worker
    # (`inboxsync.stager`), which imports this module through `inboxsync.load`, never needs it.
    from sqlalchemy.engine import URL

    conn = get_connection(conn_id)
    url = URL.create(
        "postgresql",
        username=conn.login or None,
        password=conn.password or None,
        host=conn.host or None,
        port=conn.port or None,
        database=conn.schema or None,
        query={k: str(v) for k, v in conn.extra_dejson.items() if k in _LIBPQ_EXTRAS},
    )
    return url.render_as_string(hide_password=False)


_LIBPQ_EXTRAS = frozenset({"sslmode", "sslrootcert", "sslcert", "sslkey", "application_name"})


def connect(url: str | None = None) -> psycopg2.extensions.connection:
    """Open a psycopg2 connection to the warehouse (autocommit off).

    Args:
        url: A libpq URL; defaults to the warehouse connection.

    Returns:
        An open connection.
    """
    # JIT compiles a query's expressions when its estimated cost is high, which the derive
    # step's statements over the growing tables are: compiling took longer than running them
    # (1 to 2 s a statement, measured by `make bench` with auto_explain). Off for our sessions.
    return psycopg2.connect(
        url or warehouse_url(), application_name="inboxsync", options="-c jit=off"
    )


@contextmanager
def transaction(
    url: str | None = None,
) -> Iterator[psycopg2.extensions.cursor]:
    """A cursor inside one transaction: committed on success, rolled back on any exception."""
    conn = connect(url)
    try:
        with conn, conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def migrate(url: str | None = None) -> list[str]:
    """Apply the numbered SQL migrations that this warehouse has not seen yet.

    Each migration runs in its own transaction together with its bookkeeping row; an advisory lock
    lets two processes (a DAG task and a CLI call, say) start at once safely.

    Args:
        url: A libpq URL; defaults to the warehouse connection.

    Returns:
        The versions applied by this call (empty when already up to date).
    """
    applied: list[str] = []
    conn = connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK_KEY,))
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {settings.SCHEMA}")
            cur.execute(
                f"CREATE TABLE IF NOT EXISTS {settings.SCHEMA}.schema_migrations ("
                " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            cur.execute(f"SELECT version FROM {settings.SCHEMA}.schema_migrations")
            done = {row[0] for row in cur.fetchall()}
            if conn.dsn not in _collation_checked:
                _collation_checked.add(conn.dsn)
                slow = slow_collation(cur)
                if slow:
                    log.warning(
                        "the warehouse database %s sorts text by the rules of %s: the keys,"
                        " addresses and Message-IDs a sync indexes and joins are compared by"
                        " them (31%% more PostgreSQL CPU for en_US.UTF-8 than for C in a sync);"
                        " create the warehouse with LC_COLLATE 'C' to compare bytes"
                        " (docs/warehouse.md, 'The database')",
                        conn.info.dbname,
                        slow,
                    )
        for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
            version = path.stem
            if version in done:
                continue
            with conn, conn.cursor() as cur:
                cur.execute(path.read_text())
                cur.execute(
                    f"INSERT INTO {settings.SCHEMA}.schema_migrations (version) VALUES (%s)",
                    (version,),
                )
            log.info("applied migration %s", version)
            applied.append(version)
    finally:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_unlock_all()")
        conn.commit()
        conn.close()
    return applied


def slow_collation(cur: psycopg2.extensions.cursor) -> str | None:
    """Name the current database's collation when it is not byte order.

    Under the C (or POSIX) collation of libc, and PostgreSQL 17's builtin provider, text
    compares as bytes; any other collation (libc's en_US.UTF-8, which the official Docker image
    and many managed services default to, or an ICU locale) calls the locale library for every
    comparison an index or a join makes.

    Args:
        cur: A cursor on the database.

    Returns:
        The provider and collation (e.g. ``"libc collation en_US.utf8"``), or None when the
        database compares bytes.
    """
    # to_jsonb reads whichever locale columns this server version has (datlocprovider since 15).
    cur.execute("SELECT to_jsonb(d) FROM pg_database d WHERE datname = current_database()")
    database = cur.fetchone()[0]
    provider = database.get("datlocprovider", "c")
    if provider == "b" or (provider == "c" and database["datcollate"] in ("C", "POSIX")):
        return None
    if provider == "i":
        return f"ICU locale {database.get('daticulocale') or database.get('datlocale')}"
    return f"libc collation {database['datcollate']}"


def lock_inbox(cur: psycopg2.extensions.cursor, inbox_id: int) -> bool:
    """Take the session-level lock that lets only one sync of an inbox run at a time.

    Returns:
        True when the lock was taken, False when another process holds it.
    """
    cur.execute("SELECT pg_try_advisory_lock(%s, %s)", (_INBOX_LOCK_CLASS, inbox_id))
    return bool(cur.fetchone()[0])


def unlock_inbox(cur: psycopg2.extensions.cursor, inbox_id: int) -> None:
    """Release the inbox's lock now (closing the connection frees it too, but only once the
    server process has exited, which can come after the next sync asks for the lock)."""
    cur.execute("SELECT pg_advisory_unlock(%s, %s)", (_INBOX_LOCK_CLASS, inbox_id))


def read_sql(name: str) -> str:
    """The text of a SQL file under include/sql (e.g. ``load/merge_batch.sql``)."""
    return (settings.SQL_DIR / name).read_text()
