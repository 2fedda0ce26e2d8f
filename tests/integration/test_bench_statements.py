"""`make bench`'s statement profile (`inboxsync.bench.statements`) on the local cluster, which
loads pg_stat_statements counting nothing: one database's sessions are counted once asked."""

from __future__ import annotations

from pathlib import Path

import psycopg2
import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not any(Path("/usr/lib/postgresql").glob("*/lib/pg_stat_statements.so")),
        reason="this PostgreSQL does not ship pg_stat_statements",
    ),
]


def _run(url: str, *sql: str) -> None:
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            for statement in sql:
                cur.execute(statement)
    finally:
        conn.close()


def test_the_statements_of_one_database_are_counted_once_asked(services):
    from inboxsync.bench import statements

    url = services.create_database("bench_statements_test", drop=True)
    other = services.create_database("bench_statements_other", drop=True)
    assert statements.available(url)
    _run(url, "SELECT count(*) FROM pg_class")  # before counting: not counted
    statements.count(url)
    _run(url, "-- Count the classes.\nSELECT count(*) FROM pg_class", "SELECT pg_sleep(0.05)")
    _run(url, "-- Count the classes.\nSELECT count(*) FROM pg_class WHERE relpages >= 0")
    _run(other, "SELECT pg_sleep(0.05)")  # another database: not counted here

    total, ranked = statements.top(url)
    by_name = {s.statement: s for s in ranked}
    assert by_name["Count the classes."].calls == 2  # two statements, one label
    assert by_name["SELECT pg_sleep($1)"].calls == 1
    assert by_name["SELECT pg_sleep($1)"].seconds >= 0.05
    assert "SELECT count(*) FROM pg_class" not in by_name
    assert 0.05 <= total < 5
    assert ranked[0].statement == "SELECT pg_sleep($1)"  # longest first
