"""PostgreSQL's statement time over one sync, statement by statement (``pg_stat_statements``).

The local cluster loads the extension counting nothing (`inboxsync.localenv`); `count` turns it
on for one database, for the sessions that connect after it (the sync's), and `top` reads what
those sessions' top-level statements took: execution time, which on a busy machine includes
waiting for a core. A statement of a SQL file is named by the first line of the comment that
opens it, else by its first words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from psycopg2 import sql

from inboxsync import warehouse

_SPACE = re.compile(r"\s+")
LABEL_CHARS = 100


@dataclass(frozen=True)
class StatementTime:
    """One statement's share of a sync: its label, executions and seconds."""

    statement: str
    calls: int
    seconds: float


def available(url: str) -> bool:
    """Whether the server at ``url`` has pg_stat_statements loaded."""
    with warehouse.transaction(url) as cur:
        cur.execute("SELECT 1 FROM pg_settings WHERE name = 'pg_stat_statements.track'")
        return cur.fetchone() is not None


def count(url: str) -> None:
    """Count the top-level statements of the sessions that connect to ``url``'s database from
    now on, from zero."""
    with warehouse.transaction(url) as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        cur.execute("SELECT current_database(), oid FROM pg_database"
                    " WHERE datname = current_database()")  # fmt: skip
        name, oid = cur.fetchone()
        cur.execute(
            sql.SQL("ALTER DATABASE {} SET pg_stat_statements.track = top").format(
                sql.Identifier(name)
            )
        )
        cur.execute("SELECT pg_stat_statements_reset(0, %s, 0)", (oid,))


def label(query: str) -> str:
    """A statement's name: the first line of its opening comment, else its first words."""
    text = query.strip()
    if text.startswith("--"):
        first = text.splitlines()[0].lstrip("-").strip()
        if first:
            return first[:LABEL_CHARS]
    return _SPACE.sub(" ", text)[:LABEL_CHARS]


def top(url: str, limit: int = 15) -> tuple[float, list[StatementTime]]:
    """Statement time in ``url``'s database since `count`: the total, and the ``limit``
    statements that took longest (statements with one label are added up)."""
    with warehouse.transaction(url) as cur:
        cur.execute(
            """
            SELECT s.query, s.calls, s.total_exec_time / 1000.0
            FROM pg_stat_statements s
            JOIN pg_database d ON d.oid = s.dbid
            WHERE d.datname = current_database() AND s.toplevel
            """
        )
        rows = cur.fetchall()
    totals: dict[str, list[float]] = {}
    for query, calls, seconds in rows:
        entry = totals.setdefault(label(query), [0, 0.0])
        entry[0] += calls
        entry[1] += seconds
    ranked = sorted(totals.items(), key=lambda item: (-item[1][1], item[0]))
    statements = [StatementTime(name, int(c), s) for name, (c, s) in ranked[:limit]]
    return sum(s for _, s in totals.values()), statements
