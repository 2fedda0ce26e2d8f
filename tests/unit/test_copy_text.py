"""The staging tables' line builders write exactly what the generic COPY text writer writes.

`inboxsync.load` builds each staged table's COPY text with one f-string per row (the fast path)
and keeps `_copy_text` as the generic writer. Here both get the same batches, from the real
corpora and built from awkward values, and must produce identical text; the reference rows below
follow the column order of include/sql/load/staging.sql (copies go in COPY's binary format:
tests/integration/test_copy_payloads.py). `_text` is checked against the plain
escaping rule on arbitrary strings. (tests/integration/test_copy_payloads.py sends `_copy_text`'s
output through a real COPY.)
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pytest
from conftest import corpus
from hypothesis import given
from hypothesis import strategies as st

from inboxsync import load
from inboxsync.bench.corpus import read_mbox
from inboxsync.imap import FetchedCopy
from inboxsync.load import (
    Batch,
    _address_lines,
    _contact_lines,
    _copy_text,
    _lines,
    _message_lines,
    _plain_copy_text,
    _reference_lines,
    _text,
    build_batch,
)
from inboxsync.parse import Address, ParsedMessage, email_domain

TEAM = frozenset({"alice@team.example", "back\\slash@team.example"})

AWKWARD = [
    "",
    " ",
    "\\N",
    "\\",
    "trailing\\",
    "back\\slash",
    "tab\tinside",
    "line\nbreak",
    "crlf\r\nbreak",
    "nul\x00inside",
    "escape \x1b and zero-width \u200b",
    "ünïcødé ✓ 日本",
    '"quoted", comma',
    "=?utf-8?q?encoded?=",
]


# -- reference rows (column order of staging.sql) ----------------------------------------------


def message_rows(batch: Batch):
    for key, m in batch.messages.items():
        yield (key, m.message_id, m.subject, m.sent_at, m.date_header, m.from_email, m.from_name,
               m.in_reply_to, m.kind, batch.directions[key], m.list_id, m.auto_submitted,
               m.content_type, batch.gm_thrids.get(key), batch.thread_ids[key])  # fmt: skip


def address_rows(batch: Batch):
    for key, m in batch.messages.items():
        for position, a in enumerate(m.addresses):
            yield (key, a.role, a.email, a.display_name, position)


def contact_rows(batch: Batch, team: frozenset[str]):
    """Each address once: the name of its latest dated message with a name (the greater name on
    a tie), else the greatest undated name at -infinity; the span of its messages' dates (Date,
    else the batch's earliest INTERNALDATE of the message)."""
    sightings: dict[str, list] = {}
    for key, m in batch.messages.items():
        at = m.sent_at if m.sent_at is not None else batch.internal_dates.get(key)
        for a in m.addresses:
            sightings.setdefault(a.email, []).append((at, a.display_name))
    for email, seen in sightings.items():
        dates = [at for at, _ in seen if at is not None]
        dated_names = [(at, name) for at, name in seen if at is not None and name is not None]
        undated_names = [name for at, name in seen if at is None and name is not None]
        if dated_names:
            name_at, name = max(dated_names)
        elif undated_names:
            name_at, name = "-infinity", max(undated_names)
        else:
            name_at = name = None
        yield (email, email_domain(email), email in team, name, name_at,
               min(dates, default=None), max(dates, default=None))  # fmt: skip


def reference_rows(batch: Batch):
    for key, m in batch.messages.items():
        for position, ref in enumerate(m.references):
            yield (key, position, ref)


def assert_same_text(batch: Batch) -> bool:
    """Check every line builder against the generic writer; True when the C fast path wrote the
    lines (it must write the same), False when it left the batch to Python or is not built."""
    assert _message_lines(batch) == _copy_text(message_rows(batch))
    assert _address_lines(batch) == _copy_text(address_rows(batch))
    assert _contact_lines(batch, TEAM) == _copy_text(contact_rows(batch, TEAM))
    assert _reference_lines(batch) == _copy_text(reference_rows(batch))
    expected = (_message_lines(batch), _address_lines(batch), _reference_lines(batch))
    assert _lines(batch) == expected
    if load._COPY_LINES is None:
        return False
    written = load._COPY_LINES(batch.messages, batch.directions, batch.gm_thrids, batch.thread_ids)
    assert written in (None, expected)
    return written is not None


# -- tests -------------------------------------------------------------------------------------


def _header(raw: bytes) -> bytes:
    end = raw.find(b"\n\n")
    return raw if end < 0 else raw[: end + 1]


def _fetched(headers: list[bytes]) -> list[FetchedCopy]:
    when = datetime(2024, 2, 29, 23, 59, 58, tzinfo=UTC)
    return [
        FetchedCopy(
            uid=uid,
            raw_header=h,
            flags=("\\Seen", "$Label\\x") if uid % 2 else (),
            internal_date=when if uid % 3 else None,
            size=len(h) if uid % 5 else None,
            gm_msgid=10**19 + uid if uid % 4 == 0 else None,
            gm_thrid=10**19 + uid // 4 if uid % 4 == 0 else None,
            gm_labels=("\\Inbox", "tab\tlabel", "日本") if uid % 4 == 0 else None,
        )
        for uid, h in enumerate(headers, start=1)
    ]


@pytest.mark.parametrize("archive", ["util-linux.mbox.gz", "notmuch-list.mbox.gz"])
def test_corpus_batches_stage_the_same_text(archive: str) -> None:
    path = corpus("lists", archive)
    headers = [_header(m) for m in itertools.islice(read_mbox(path), 3000)]
    for start in range(0, len(headers), 1000):
        batch = build_batch(_fetched(headers[start : start + 1000]), TEAM)
        assert batch.messages
        # The C fast path writes real mail's lines (where it is built, as `make install` does).
        assert assert_same_text(batch) or load._COPY_LINES is None


def test_tricky_corpus_headers_stage_the_same_text() -> None:
    root = corpus("tricky")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.stat().st_size < 200_000)
    headers = [_header(p.read_bytes()) for p in files]
    batch = build_batch(_fetched(headers), TEAM)
    assert len(batch.messages) > 100
    assert_same_text(batch)


def test_awkward_values_in_every_column_stage_the_same_text() -> None:
    batch = Batch()
    west = timezone(timedelta(hours=-3))
    moments = [None, datetime(1970, 1, 1, tzinfo=UTC), datetime(2024, 2, 29, 1, 2, 3, 45, west)]
    for i, (value, when) in enumerate(itertools.product([None, *AWKWARD], moments)):
        key = f"{i:032x}"
        batch.messages[key] = ParsedMessage(
            message_key=key, message_id=value, subject=value, sent_at=when, date_header=value,
            from_email=value, from_name=value, in_reply_to=value,
            references=tuple(v for v in AWKWARD if v),
            addresses=(Address("to", value or "x@y", value),
                       Address("cc", "back\\slash@team.example", None),
                       Address("from", "alice@team.example", "Alice")),
            kind="human", list_id=value, auto_submitted=value, content_type=value,
        )  # fmt: skip
        batch.directions[key] = "inbound"
        batch.thread_ids[key] = key
        if i % 2:
            batch.gm_thrids[key] = 2**63 + i
        if when is None and i % 4:  # no Date: the copy's INTERNALDATE dates its contacts
            batch.internal_dates[key] = datetime(2023, 1, 1 + i % 28, tzinfo=west)
    batch.copies = [(c, f"{c.uid:032x}") for c in _fetched([v.encode() for v in AWKWARD] * 3)]
    assert assert_same_text(batch) or load._COPY_LINES is None
    assert _message_lines(batch).count("\n") == len(batch.messages)  # newlines all escaped


def _one_message_batch(values: list[str | None], when: datetime | None) -> Batch:
    batch = Batch()
    key = "k" * 32
    batch.messages[key] = ParsedMessage(
        message_key=key, message_id=values[0], subject=values[1], sent_at=when,
        date_header=values[2], from_email=values[3], from_name=values[4], in_reply_to=values[5],
        references=tuple(v for v in values if v), kind="human", list_id=values[6],
        auto_submitted=values[0], content_type=values[1],
        addresses=(Address("to", values[3] or "x@y", values[4]),),
    )  # fmt: skip
    batch.directions[key] = "outbound"
    batch.thread_ids[key] = key
    return batch


@given(
    st.lists(st.one_of(st.none(), st.text(max_size=12), st.sampled_from(AWKWARD)),
             min_size=7, max_size=7),
    st.sampled_from([None, datetime(1901, 1, 1, tzinfo=UTC),
                     datetime(2024, 2, 29, 23, 59, 58, tzinfo=UTC),
                     datetime(2024, 2, 29, 23, 59, 58, 5, tzinfo=UTC),
                     datetime(2024, 2, 29, 1, 2, 3, tzinfo=timezone(timedelta(hours=2)))]),
)  # fmt: skip
def test_drawn_values_stage_the_same_text(values: list[str | None], when: datetime | None) -> None:
    assert_same_text(_one_message_batch(values, when))


def test_a_non_ascii_value_to_escape_is_left_to_python() -> None:
    batch = _one_message_batch(["ü\tab"] * 7, None)
    if load._COPY_LINES is not None:
        assert load._COPY_LINES(batch.messages, {}, {}, {}) is None  # declined before any lookup
    assert not assert_same_text(batch)
    assert "\\tab" in _lines(batch)[0]


def _escaped(value: str) -> str:
    """COPY's text-format escaping, spelled out."""
    table = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": ""}
    return "".join(table.get(ch, ch) for ch in value)


@given(st.text())
def test_text_escapes_exactly_the_four_characters_and_drops_nul(value: str) -> None:
    assert _text(value) == _escaped(value)


@pytest.mark.parametrize("value", [*AWKWARD, None])
def test_text_of_awkward_values(value: str | None) -> None:
    assert _text(value) == ("\\N" if value is None else _escaped(value))
    if value is not None:
        assert _text(value) != "\\N"  # a string never reads back as NULL


@given(st.lists(st.tuples(st.text(), st.text(), st.sampled_from(["t", "f"])), max_size=20))
def test_plain_rows_are_the_generic_writers_text_whatever_their_values(
    rows: list[tuple[str, str, str]],
) -> None:
    # The derive step's tables (keys, nodes, thread ids): joined as they are when no value
    # needs escaping, else written by the generic writer; the text is the same either way.
    assert _plain_copy_text(rows) == _copy_text(rows)


@pytest.mark.parametrize("value", ["a\tb", "a\tb\tc", "a\nb", "a\\b", "a\rb", "a\x00b", ""])
def test_plain_rows_with_a_value_that_needs_escaping_take_the_generic_writer(value: str) -> None:
    rows = [("0123abcd", "t"), (value, "f"), ("ffff", "t")]
    assert _plain_copy_text(rows) == _copy_text(rows)
    assert _plain_copy_text(rows).count("\n") == 3
    assert _plain_copy_text([]) == ""
