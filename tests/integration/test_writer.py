"""The warehouse writer (`inboxsync.writer.Writer`) on a real PostgreSQL: order, failure, and
the GIL switch interval it shortens while it runs."""

from __future__ import annotations

import sys

import psycopg2
import pytest

from inboxsync.writer import SWITCH_INTERVAL_S, Writer


@pytest.fixture
def own_interval():
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.004)
    yield 0.004
    sys.setswitchinterval(before)


def _insert(value: int):
    def job(conn: psycopg2.extensions.connection) -> None:
        with conn, conn.cursor() as cur:
            cur.execute("INSERT INTO written (n) VALUES (%s)", (value,))

    return job


def _fail(conn: psycopg2.extensions.connection) -> None:
    with conn, conn.cursor() as cur:
        cur.execute("SELECT 1 / 0")


def test_jobs_commit_in_order_and_a_failure_drops_the_jobs_behind_it(warehouse_url):
    with psycopg2.connect(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE written (k serial PRIMARY KEY, n integer)")
    with pytest.raises(psycopg2.errors.DivisionByZero), Writer(warehouse_url) as writer:
        for n in (1, 2, 3):
            writer.submit(_insert(n))
        writer.flush()
        writer.submit(_fail)
        writer.submit(_insert(4))  # queued behind the failure: never runs
        writer.flush()
    with psycopg2.connect(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT n FROM written ORDER BY k")
        assert [n for (n,) in cur.fetchall()] == [1, 2, 3]


def test_the_interval_is_short_while_a_writer_runs_and_the_processs_own_after(
    warehouse_url, own_interval
):
    with Writer(warehouse_url) as writer:
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)
        writer.close()  # closed twice (here and on leaving the block): restored once
    assert sys.getswitchinterval() == pytest.approx(own_interval)
    with pytest.raises(RuntimeError), Writer(warehouse_url):
        raise RuntimeError("the sync failed")
    assert sys.getswitchinterval() == pytest.approx(own_interval)


def test_overlapping_writers_restore_the_interval_of_before_the_first_when_the_last_closes(
    warehouse_url, own_interval
):
    first = Writer(warehouse_url)
    second = Writer(warehouse_url)
    first.close()
    assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)  # the second still runs
    second.close()
    assert sys.getswitchinterval() == pytest.approx(own_interval)
