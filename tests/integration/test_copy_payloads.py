"""COPY payloads: the CSV fast path stages exactly what COPY's text format stages."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from inboxsync import warehouse
from inboxsync.load import _copy_text, _payload

# Values that CSV and the text format treat differently if done carelessly.
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
    "ünïcødé ✓ 日本",
    "=?utf-8?q?encoded?=",
]


@pytest.fixture
def cur(warehouse_url):
    conn = warehouse.connect(warehouse_url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TEMP TABLE via_text (i integer, t text, b boolean, d timestamptz);"
                "CREATE TEMP TABLE via_payload (LIKE via_text)"
            )
            yield cur
    finally:
        conn.rollback()
        conn.close()


def _load_both(cur, rows):
    cur.copy_expert("COPY via_text FROM STDIN", io.StringIO(_copy_text(rows)))
    options, payload = _payload(lambda: iter(rows))
    cur.copy_expert(f"COPY via_payload FROM STDIN{options}", io.StringIO(payload))
    cur.execute("SELECT * FROM via_text ORDER BY i")
    via_text = cur.fetchall()
    cur.execute("SELECT * FROM via_payload ORDER BY i")
    return options, via_text, cur.fetchall()


@pytest.mark.parametrize("value", TRICKY_TEXT, ids=repr)
def test_one_tricky_value_stages_the_same_either_way(cur, value):
    when = datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=UTC)
    rows = [(1, value, True, when), (2, "ordinary", None, None), (3, value, False, when)]
    options, via_text, via_payload = _load_both(cur, rows)
    assert via_payload == via_text
    assert via_text[1] == (2, "ordinary", None, None)
    # Only a value the CSV path cannot carry sends the rows through the text format.
    must_fall_back = value == "\\N" or (value is not None and "\x00" in value)
    assert (options == "") is must_fall_back


def test_many_rows_of_mixed_values_stage_the_same(cur):
    when = datetime(2001, 1, 1, tzinfo=UTC)
    safe = [v for v in TRICKY_TEXT if v != "\\N" and not (v and "\x00" in v)]
    rows = [(i, v, i % 3 == 0, when if i % 2 else None) for i, v in enumerate(safe * 50)]
    options, via_text, via_payload = _load_both(cur, rows)
    assert options  # all CSV
    assert via_payload == via_text
    assert len(via_text) == len(rows)
    assert [r[1] for r in via_text] == [v for _, v, _, _ in rows]
