"""COPY payloads: what `inboxsync.load` writes in COPY's text format reads back as the values."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from inboxsync import warehouse
from inboxsync.load import _copy_text

# Values a careless COPY writer would mangle.
TRICKY_TEXT = [
    None,
    "",
    " ",
    "\\N",
    "\\\\N",
    "N",
    "plain",
    'quote " inside',
    '"quoted"',
    "comma, inside",
    "tab\tinside",
    "line\nbreak",
    "crlf\r\nbreak",
    "bare\rcr",
    "back\\slash",
    "trailing\\",
    "nul\x00inside",
    "escape \x1b, zero-width \u200b",
    "ünïcødé ✓ 日本",
    "=?utf-8?q?encoded?=",
]


@pytest.fixture
def cur(warehouse_url):
    conn = warehouse.connect(warehouse_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE staged (i integer, t text, b boolean, d timestamptz, x bytea)"
            )
            yield cur
    finally:
        conn.rollback()
        conn.close()


def _round_trip(cur, rows):
    cur.copy_expert("COPY staged FROM STDIN", io.StringIO(_copy_text(rows)))
    cur.execute("SELECT i, t, b, d, x FROM staged ORDER BY i")
    return [(i, t, b, d, bytes(x) if x is not None else None) for i, t, b, d, x in cur.fetchall()]


@pytest.mark.parametrize("value", TRICKY_TEXT, ids=repr)
def test_a_tricky_value_reads_back_as_itself(cur, value):
    when = datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=UTC)
    rows = [(1, value, True, when, b"\x00\\\t\n"), (2, "ordinary", None, None, None)]
    expected = None if value is None else value.replace("\x00", "")  # text cannot hold NUL
    assert _round_trip(cur, rows) == [
        (1, expected, True, when, b"\x00\\\t\n"),
        (2, "ordinary", None, None, None),
    ]


def test_many_rows_of_mixed_values_read_back(cur):
    when = datetime(2001, 1, 1, tzinfo=UTC)
    safe = [v for v in TRICKY_TEXT if not (v and "\x00" in v)]
    rows = [
        (i, v, i % 3 == 0, when if i % 2 else None, bytes([i % 256]))
        for i, v in enumerate(safe * 50)
    ]
    assert _round_trip(cur, rows) == rows
