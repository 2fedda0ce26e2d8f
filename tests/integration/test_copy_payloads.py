"""COPY payloads: what `inboxsync.load` writes in COPY's text and binary formats reads back as
the values."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone

import pytest

from inboxsync import warehouse
from inboxsync.imap import FetchedCopy
from inboxsync.load import _copy_text, _write_copies, build_batch, stage_batch

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


# -- message copies, in COPY's binary format (`load._write_copies`) ------------------------------

GM_IDS = [None, 0, 1, 9999, 10000, 10001, 10**8, 10**19 + 7, 2**64 - 1]
LABELS = [None, (), ("\\Inbox",), ("tab\tlabel", "日本", '"quoted"', "{braces}", "a,b", "nul\x00")]


def _copies(n: int, flags=("\\Seen", "$Label\\x")) -> list[FetchedCopy]:
    zones = [UTC, timezone(timedelta(hours=-7, minutes=-30)), timezone(timedelta(hours=13))]
    out = []
    for uid in range(1, n + 1):
        raw = f"Message-ID: <{uid}@copies.example>\r\nSubject: copy {uid}\r\n\r\n".encode()
        out.append(FetchedCopy(
            uid=uid,
            raw_header=raw + bytes(range(256)) if uid % 2 else raw,
            flags=flags if uid % 3 else (),
            internal_date=(datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=zones[uid % 3])
                           if uid % 5 else None),
            size=len(raw) * uid if uid % 7 else None,
            gm_msgid=GM_IDS[uid % len(GM_IDS)],
            gm_thrid=GM_IDS[(uid + 3) % len(GM_IDS)],
            gm_labels=LABELS[uid % len(LABELS)],
        ))  # fmt: skip
    return out


def _stored(cur, folder: str):
    cur.execute(
        "SELECT uid, message_key, flags, internal_date, size, raw_header, gm_msgid, gm_thrid,"
        " gm_labels, expunged_at IS NOT NULL FROM inboxsync.message_copies"
        " WHERE inbox_id = 7 AND folder = %s AND uidvalidity = %s ORDER BY uid",
        (folder, 2**40),
    )
    return [(uid, key, tuple(flags), when, size, bytes(raw),
             None if msgid is None else int(msgid), None if thrid is None else int(thrid),
             None if labels is None else tuple(labels), expunged)
            for uid, key, flags, when, size, raw, msgid, thrid, labels, expunged
            in cur.fetchall()]  # fmt: skip


def _expected(batch, flags_of=None):
    return [(c.uid, key, c.flags if flags_of is None else flags_of(c), c.internal_date, c.size,
             c.raw_header, c.gm_msgid, c.gm_thrid,
             None if c.gm_labels is None else tuple(v.replace("\x00", "") for v in c.gm_labels),
             False)
            for c, key in batch.copies]  # fmt: skip


@pytest.mark.parametrize("folder", ["INBOX", 'Ünïcødé/日本 "quoted"\ttab'])
def test_copies_in_binary_read_back_as_fetched(cur, folder):
    batch = build_batch(_copies(40), frozenset())
    staged = stage_batch(batch, frozenset())
    _write_copies(cur, staged.copy_rows, inbox_id=7, folder=folder, uidvalidity=2**40)
    assert _stored(cur, folder) == _expected(batch)


def test_copies_that_exist_already_are_merged_not_duplicated(cur):
    first = build_batch(_copies(12), frozenset())
    _write_copies(cur, stage_batch(first, frozenset()).copy_rows,
                  inbox_id=7, folder="INBOX", uidvalidity=2**40)  # fmt: skip
    cur.execute("UPDATE inboxsync.message_copies SET expunged_at = now() WHERE uid = 4")
    # The same UIDs again (a checkpoint moved back), flags changed, plus two new copies.
    again = build_batch(_copies(14, flags=("\\Answered",)), frozenset())
    _write_copies(cur, stage_batch(again, frozenset()).copy_rows,
                  inbox_id=7, folder="INBOX", uidvalidity=2**40)  # fmt: skip
    assert _stored(cur, "INBOX") == _expected(again)
    cur.execute("SELECT 1")  # the transaction is still usable after the savepoint's rollback
