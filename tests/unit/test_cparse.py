"""The C fast path (`inboxsync._cparse`) gives exactly the answer of the Python parse.

`inboxsync.parse` calls the C module first and runs its own general code when it answers None.
These tests feed both the same headers, from every corpus message and drawn by hypothesis around
the places where they could part (folds, ids, Dates, the classification's signals, lengths at the
limits), and require equal rows, compared by value and by repr (so a datetime in another zone or
a list for a tuple fails too). They also require that the C path is built and in use here, and
that it takes nearly every real header: a fast path that quietly stopped being fast fails too.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inboxsync import parse
from inboxsync.bench.corpus import read_mbox
from inboxsync.parse import (
    MAX_MESSAGE_ID,
    MAX_REFERENCES,
    MAX_SUBJECT,
    ParsedMessage,
    QuarantineError,
    header_fields_only,
    key_of_message_id,
)

CORPORA = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora"
requires_corpora = pytest.mark.skipif(
    not CORPORA.is_dir(), reason=f"real-mail corpora not found at {CORPORA}"
)
_MANY = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def fast() -> object:
    """The C module's parse, as `inboxsync.parse` uses it."""
    if os.environ.get("INBOXSYNC_PARSE") == "python":
        pytest.skip("the C fast path is turned off (INBOXSYNC_PARSE=python)")
    assert parse._FAST_PARSE is not None, (
        "the C fast path is not in use: it is built by `make install` (a C compiler and the "
        "Python headers are needed), and INBOXSYNC_PARSE=python turns it off"
    )
    return parse._FAST_PARSE


def _general(raw: bytes) -> ParsedMessage | None:
    try:
        return parse._parse_general(raw)
    except QuarantineError:
        return None


def _agrees(fast_parse: object, raw: bytes) -> bool:
    """Check the C path against the Python one on one header.

    Returns:
        True when the C path took the header, False when it left it to the Python code.
    """
    answer = fast_parse(raw)  # type: ignore[operator]
    if answer is None:
        return False
    expected = _general(raw)
    assert expected is not None, raw[:500]
    got = parse._from_fast_path(answer)
    assert got == expected, raw[:500]
    assert repr(got) == repr(expected), raw[:500]
    return True


# ---- real mail ----------------------------------------------------------------------------------


def _corpus_headers() -> tuple[list[bytes], list[bytes]]:
    """The lists' headers as the sync fetches them, and every other shape of every corpus file."""
    fetched: list[bytes] = []
    others: list[bytes] = []
    for path in sorted((CORPORA / "lists").glob("*.mbox.gz")):
        for raw in read_mbox(path):
            fetched.append(header_fields_only(raw))
            head = raw.split(b"\n\n", 1)[0]
            others.append(head.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + b"\r\n\r\n")
    for sub in ("tricky", "bounces", "replies"):
        for path in sorted(p for p in (CORPORA / sub).rglob("*") if p.is_file()):
            data = path.read_bytes()[:50_000]
            crlf = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            others += [data, header_fields_only(data), crlf]
    return fetched, others


@requires_corpora
def test_the_c_path_agrees_on_every_corpus_header(fast: object) -> None:
    fetched, others = _corpus_headers()
    taken = sum(_agrees(fast, raw) for raw in fetched)
    assert len(fetched) > 10_000
    # Nearly every fetched header is in the C path's shape (the rest still agree: Python's).
    assert taken > 0.95 * len(fetched), (taken, len(fetched))
    taken_others = sum(_agrees(fast, raw) for raw in others)
    assert taken_others > 1_000, taken_others


# ---- drawn headers ------------------------------------------------------------------------------

_NAMES = [name.encode() for name in parse.HEADER_FIELDS] + [b"X-Other", b"Received", b"fROM"]
_IDS = st.sampled_from([
    b"<a@b.example>", b"<a@b.example> <c@d.example>", b"<>", b"<a b@c>", b"<x\t@y>", b"a@b",
    b"<a<b@c>", b"<a@b.example", b"plain", b" ", b"", b"<a@b.example>, <a@b.example>",
    b"<" + b"x" * 1200 + b"@long.example>", b"(comment) <id@x>", b"<id@x> (comment)",
    b"<\x7f@x>", b"<=?utf-8?q?x?=@y>",
])  # fmt: skip
_WORDS = st.sampled_from([
    b"plain", b" ", b"\t", b"", b"a@b.example", b"Name <n@x.example>", b'"Q, N" <q@x.example>',
    b"=?utf-8?q?caf=C3=A9?=", b"=?", b"?=", b"<>", b";", b"(c)", b"(", b")", b"MAILER-DAEMON",
    b"postmaster@x", b"mailer-daemon <>", b"Dae mon", b"multipart/report",
    b"multipart/report; report-type=delivery-status", b"report-type=disposition-notification",
    b"Multipart/Mixed; boundary=x", b"text/plain", b"bulk", b"junk", b"list", b"auto_reply",
    b"auto-replied", b"no", b"No", b"false", b"0", b"off", b"yes", b"Out of Office",
    b"Automatic reply: x", b"Undelivered Mail", b"List <l.example>", b"<L.Example>", b"x" * 40,
    b"Re:", b"Mon, 29 Apr 2019 08:57:37 +1000", b"\x7f", b"\x00", b"\xe9", b"\n", b"\r",
])  # fmt: skip
_VALUES = st.one_of(_IDS, st.lists(_WORDS, max_size=5).map(b" ".join))
_MONTHS = [b"Jan", b"feb", b"MAR", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct",
           b"Nov", b"Dec", b"Foo", b"January"]  # fmt: skip


@st.composite
def _dates(draw: st.DrawFn) -> bytes:
    """Dates of the common shape and near it: every part at and beyond its limits."""
    blank = st.sampled_from([b" ", b"  ", b"\t", b" \t "])
    day = draw(st.integers(0, 40))
    year = draw(st.sampled_from([1899, 1900, 1901, 1970, 1969, 2000, 2024, 2199, 2200, 2201, 99,
                                 10000, 2100, 1904]))  # fmt: skip
    parts = [
        draw(st.sampled_from([b"", b"Mon, ", b"Tue,", b"Tue ,", b"Sunday, ", b" Sat,\t", b"1, "])),
        draw(st.sampled_from([b"%d", b"%02d", b"%03d"])) % day,
        draw(blank),
        draw(st.sampled_from(_MONTHS)),
        draw(blank),
        draw(st.sampled_from([b"%04d", b"%d", b"%05d"])) % year,
        draw(blank),
        b"%02d:%02d:%02d" % tuple(draw(st.integers(0, limit)) for limit in (25, 61, 61)),
        draw(st.sampled_from([b" ", b"\t", b""])),
        draw(st.sampled_from([b"+", b"-", b""])),
        b"%02d%02d" % (draw(st.integers(0, 30)), draw(st.integers(0, 99))),
        draw(st.sampled_from([b"", b" (UTC)", b"(CET)", b" ((x))", b" (x", b" GMT", b" ", b"x"])),
    ]  # fmt: skip
    return b"".join(parts)


@st.composite
def _headers(draw: st.DrawFn) -> bytes:
    """CRLF headers of the fetched fields with values around the C path's limits."""
    lines: list[bytes] = []
    for _ in range(draw(st.integers(1, 12))):
        name = draw(st.sampled_from(_NAMES))
        if draw(st.booleans()):
            name = name.upper() if draw(st.booleans()) else name.lower()
        lower = name.lower()
        if lower in (b"message-id", b"in-reply-to", b"references"):
            value = draw(_IDS)
        elif lower == b"date":
            value = draw(st.one_of(_dates(), _VALUES))
        else:
            value = draw(_VALUES)
        lines.append(name + draw(st.sampled_from([b": ", b":", b":\t", b" : "])) + value)
        for _ in range(draw(st.integers(0, 2))):
            lines.append(draw(st.sampled_from([b" ", b"\t", b"  "])) + draw(_VALUES))
    raw = b"\r\n".join(lines)
    return raw + draw(st.sampled_from([b"", b"\r\n", b"\r\n\r\n", b"\r\n\r\nBody: x\r\n"]))


@_MANY
@given(_headers())
def test_the_c_path_agrees_on_drawn_headers(fast: object, raw: bytes) -> None:
    _agrees(fast, raw)


@_MANY
@given(st.binary(max_size=300))
def test_the_c_path_agrees_on_any_bytes(fast: object, raw: bytes) -> None:
    _agrees(fast, raw)


# ---- the edges, one by one ----------------------------------------------------------------------

_BASE = b"From: Ann <ann@x.example>\r\nTo: bob@y.example\r\nMessage-ID: <m1@x.example>\r\n"


@pytest.mark.parametrize(
    "extra",
    [
        b"Date: Sat, 1 Jan 1901 00:30:00 +0100",  # the day before, a year before
        b"Date: 31 Dec 2199 23:59:59 -2359",
        b"Date: 29 Feb 2024 12:00:00 +0000",
        b"Date: 29 Feb 2023 12:00:00 +0000",  # no such day: Python's None
        b"Date: 1 Jan 1970 00:00:00 +0001",  # before the epoch
        b"Date: 1 Mar 2000 00:00:00 +0100",  # back over a leap day
        b"Date: Mon, 29 Apr 2019 08:57:37 -0000",
        b"Date: 29 Apr 2019 08:57:37 +2400",  # an offset of a day: None
        b"Date: 29 Apr 2019 24:00:00 +0000",
        b"Date: 29 Apr 19 08:57:37 +0000",  # two-digit year: parsedate_tz's
        b"Date: 29 Apr 2019 08:57 +0000",
        b"Date: 29 Apr 2019 08:57:37 EST",
        b"Date: \t",
        b"Subject: " + b"s" * (MAX_SUBJECT + 50),
        b"Subject: " + b"s" * (MAX_SUBJECT - 1) + b" \t tail",
        b"Subject: folded\r\n \r\n\tover\r\n  lines \r\n ",
        b"Subject: =?utf-8?q?caf=C3=A9?=\r\n =?utf-8?q?_au_lait?=",
        b"References: " + b" ".join(b"<r%d@x>" % (i % 700) for i in range(1400)),
        b"References: <a@x> <b@x> <a@x>\r\n <c@x>",
        b"References: " + b"<" + b"r" * (MAX_MESSAGE_ID + 5) + b"@x>",
        b"In-Reply-To: <>",
        b"In-Reply-To: <p@x> <q@x>",
        b"Precedence: bulk\r\nSubject: Out of office",
        b"Precedence: junk\r\nSubject: hello",
        b"Precedence: Bulk; x=y\r\nList-Id: L <l.x>",
        b"Precedence: auto_reply",
        b"Precedence: list",
        b"Auto-Submitted: no\r\nX-Autoreply: yes",
        b"Auto-Submitted: " + b"a" * 60,
        b"List-Unsubscribe: <mailto:u@x>",
        b"List-Id: \t Some List \t",
        b"List-Id: <>",
        b"Content-Type: Text/Plain ; charset=x",
        b"Content-Type: multipart",
        b"Return-Path: <bounce+x@lists.example>",
        b"Sender: owner@lists.example\r\nReply-To: a@x.example, a@x.example",
        b"Cc: c@x.example\r\nCc: c@x.example, d@x.example\r\nTo: e@x.example",
    ],
)
def test_the_c_path_on_edges(fast: object, extra: bytes) -> None:
    assert _agrees(fast, _BASE + extra + b"\r\n\r\n") or extra.startswith(b"Date: 29 Apr 19 ")


@pytest.mark.parametrize(
    "raw",
    [
        _BASE.replace(b"\r\n", b"\n"),  # LF line breaks
        _BASE + b"Subject: caf\xc3\xa9\r\n",  # 8-bit
        _BASE + b"Subject: a\x00b\r\n",  # a control character
        _BASE + b"Subject :obsolete\r\n",
        b" continuation first\r\n" + _BASE,
        _BASE.replace(b"<m1@x.example>", b"m1@x.example"),  # no brackets: the token path
        _BASE.replace(b"<m1@x.example>", b""),  # no Message-ID: keyed by the header
        _BASE + b"Return-Path: <>\r\n",
        _BASE + b"Return-Path: <MAILER-DAEMON@x>\r\n",
        _BASE.replace(b"Ann <ann", b"Mail Delivery System <mailer-daemon"),
        _BASE + b"Content-Type: multipart/report; report-type=delivery-status\r\n",
        _BASE + b"Precedence: bulk (newsletter)\r\n",
        b"X-Other: only an unknown field\r\n\r\n",
        b"",
    ],
)
def test_the_c_path_leaves_other_shapes_to_python(fast: object, raw: bytes) -> None:
    assert fast(raw) is None  # type: ignore[operator]
    assert parse.parse_header(raw) if _general(raw) else True


def test_the_key_is_sha256_of_the_message_id_at_every_length(fast: object) -> None:
    # Across the padding's edges: 55, 56 and 64 bytes with the "mid:" prefix, and several blocks.
    for length in range(1, 300):
        message_id = "k" * (length - 1) + "@"
        answer = fast(b"From: a@x.example\r\nMessage-ID: <%s>\r\n" % message_id.encode())  # type: ignore[operator]
        assert answer[0] == key_of_message_id(message_id)
        assert answer[0] == hashlib.sha256(b"mid:" + message_id.encode()).hexdigest()[:32]


def test_references_keep_the_nearest_ancestors(fast: object) -> None:
    ids = b" ".join(b"<r%d@x>" % i for i in range(MAX_REFERENCES + 20))
    answer = fast(_BASE + b"References: " + ids + b"\r\n")  # type: ignore[operator]
    assert answer[7] == tuple(f"r{i}@x" for i in range(20, MAX_REFERENCES + 20))


# ---- loading the module ----------------------------------------------------------------------


def test_a_binary_built_from_another_source_is_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    edited = tmp_path / "_cparse.c"
    edited.write_bytes(parse.CPARSE_SOURCE.read_bytes() + b"/* edited */\n")
    with caplog.at_level(logging.WARNING, logger="inboxsync.native"):
        assert parse.built_fast_path(edited) is None
    assert "built from another source" in caplog.text
    assert parse.built_fast_path(parse.CPARSE_SOURCE) is not None
    # An installed package without its sources trusts its binary.
    assert parse.built_fast_path(tmp_path / "missing.c") is not None


def test_the_python_path_can_be_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INBOXSYNC_PARSE", "python")
    assert parse._load_fast_path() is None


def test_the_message_builder_sets_every_field_in_order(fast: object) -> None:
    from inboxsync import _cparse

    names = ParsedMessage.__slots__
    built = _cparse.message(*names)
    assert [getattr(built, name) for name in names] == list(names)
    with pytest.raises(TypeError, match="takes 14 values"):
        _cparse.message(*names[:-1])
    with pytest.raises(AttributeError):
        built.subject = "frozen still"  # type: ignore[misc]
