"""The C reader of the usual FETCH answers (``inboxsync._cfetch``) reads them as the Python code.

``fetch_headers`` reads the answers of the one shape Dovecot gives it in C, straight from the
socket file's bytes (`imap_lines.read_usual_fetches`), and leaves everything from the first other
line on to imaplib's reading and `imap.read_fetch_response`. Each case here reads the same bytes
both ways on an imaplib connection whose socket file is the bytes, handed out a few at a time
(every split of an answer must read the same), and requires the same copies, the same tagged
result or exception, the same untagged responses and the same bytes left unread. The answers are
the real lists' headers as Dovecot sends them, with drawn flags, dates and sizes, and every shape
the C reader must leave to Python. tests/unit/test_fetch_reader.py runs its cases (hand-written
and drawn answers through a loopback server) with the C reader in use too.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inboxsync import imap as imap_module
from inboxsync import imap_lines, native
from inboxsync.bench.corpus import read_mbox
from inboxsync.imap import FetchedCopy
from inboxsync.parse import header_fields_only
from tests.unit.test_fetch_reader import HEADER_KEY, canon
from tests.unit.test_imap_lines import TAG, _Connection

CORPORA = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora"
OK = TAG + b" OK Fetch completed.\r\n"


@pytest.fixture(scope="module")
def scan() -> Any:
    """The C reader's scan, as `inboxsync.imap` uses it."""
    if os.environ.get("INBOXSYNC_FETCH") == "python":
        pytest.skip("the C reader is turned off (INBOXSYNC_FETCH=python)")
    assert imap_module._SCAN is not None, (
        "the C reader is not in use: it is built by `make install` (a C compiler and the "
        "Python headers are needed), and INBOXSYNC_FETCH=python turns it off"
    )
    return imap_module._SCAN


class _Trickle(io.BytesIO):
    """A socket file that hands out at most ``step`` bytes a read, as a socket may."""

    def __init__(self, data: bytes, step: int) -> None:
        super().__init__(data)
        self.step = step

    def read1(self, size: int = -1) -> bytes:
        return super().read1(self.step if size < 0 else min(size, self.step))


def _read(stream: bytes, scan: Any, step: int | None) -> tuple[Any, ...]:
    """Read one command's answer: with the C reader first when ``step`` is given (its socket
    file trickling ``step`` bytes a read), else as before it."""
    conn = _Connection(stream)
    if step is not None:
        conn.file = _Trickle(stream, step)
    usual: list[FetchedCopy] = []
    try:
        if step is not None:
            imap_lines.read_usual_fetches(conn, scan, usual)
        typ, data = imap_lines.command_complete(conn, "FETCH", TAG)
        result: Any = ("returned", typ)
        typ, data = conn._untagged_response(typ, data, "FETCH")
        response: dict[int, Any] = {}
        imap_module.add_answers(response, usual, imap_module._fetch_response(data, False))
        copies = {uid: imap_module.copy_of(uid, answer) for uid, answer in response.items()}
    except Exception as exc:
        result, copies = ("raised", type(exc).__name__, str(exc)), {}
    others = {k: v for k, v in conn.untagged_responses.items() if k != "FETCH"}
    return canon(copies), result, others, conn.tagged_commands, conn.file.read(), len(usual)


def assert_same(stream: bytes, scan: Any, steps: tuple[int, ...] = (1, 5, 64, 1 << 20)) -> int:
    """The C reader reads ``stream`` as the Python code does at every trickle; returns how
    many answers it read itself."""
    expected = _read(stream, scan, None)
    taken = set()
    for step in steps:
        got = _read(stream, scan, step)
        assert got[:-1] == expected[:-1], step
        taken.add(got[-1])
    assert len(taken) == 1, taken  # the same answers in C whatever the split
    return taken.pop()


def answer(
    uid: int,
    header: bytes,
    *,
    flags: str = "\\Seen",
    date: str = "05-Oct-2026 09:12:40 +0200",
    size: int = 1234,
    seq: int = 1,
    key: str = HEADER_KEY,
) -> bytes:
    return (
        (
            f'* {seq} FETCH (UID {uid} FLAGS ({flags}) INTERNALDATE "{date}" RFC822.SIZE {size} '
            f"{key} {{{len(header)}}}\r\n"
        ).encode()
        + header
        + b")\r\n"
    )


HEADER = b"From: Ana <ana@customer.example>\r\nSubject: (re) {5} x\r\n\r\n"


# -- the usual shape ----------------------------------------------------------------------------


def test_usual_answers_are_read_in_c_at_every_split(scan: Any) -> None:
    stream = b"".join([
        answer(1, HEADER),
        answer(2, b"", flags="", date=" 5-Oct-2026 23:59:59 -0500", size=0, seq=2),
        answer(7, HEADER + b"X: y\r\n", flags="\\Recent \\Seen $Forwarded Junk \\Answered",
               date="29-Feb-2024 00:00:00 +0530", seq=3),
        answer(8, b"\r\n", flags="\\recent", date="01-Jan-2026 12:00:00 -0000", seq=4,
               key="BODY[HEADER.FIELDS (From Subject)]"),
        answer(9, HEADER, flags="\\123 $1a", date="9-Dec-1999 00:00:00 +0199", seq=5),
    ]) + OK  # fmt: skip
    assert assert_same(stream, scan) == 5
    copies = _read(stream, scan, 64)[0]
    assert copies == canon({
        uid: copy
        for uid, copy in _python_copies(stream).items()
    })  # fmt: skip


def _python_copies(stream: bytes) -> dict[int, FetchedCopy]:
    conn = _Connection(stream)
    typ, data = imap_lines.command_complete(conn, "FETCH", TAG)
    typ, data = conn._untagged_response(typ, data, "FETCH")
    return {uid: imap_module.copy_of(uid, items)
            for uid, items in imap_module._fetch_response(data, False).items()}  # fmt: skip


def test_the_copies_are_what_fetch_headers_gives() -> None:
    copies = _python_copies(answer(3, HEADER, flags="\\Recent \\Seen \\Answered") + OK)
    copy = copies[3]
    assert copy.flags == ("\\Answered", "\\Seen")
    assert copy.internal_date.utcoffset().total_seconds() == 7200
    assert (copy.raw_header, copy.size, copy.gm_labels) == (HEADER, 1234, None)


def _corpus_answers(limit: int) -> list[bytes]:
    headers: list[bytes] = []
    for path in sorted((CORPORA / "lists").glob("*.mbox.gz")):
        for raw in read_mbox(path):
            headers.append(header_fields_only(raw))
            if len(headers) == limit:
                return headers
    return headers


@pytest.mark.skipif(not CORPORA.is_dir(), reason=f"real-mail corpora not found at {CORPORA}")
def test_real_headers_as_dovecot_sends_them(scan: Any) -> None:
    headers = _corpus_answers(3000)
    assert len(headers) == 3000
    flags = ["", "\\Seen", "\\Seen \\Answered", "\\Recent", "$label1 \\Flagged \\Seen"]
    stream = b"".join(
        answer(uid, h, flags=flags[uid % 5], seq=uid, size=len(h) * 3)
        for uid, h in enumerate(headers, 1)
    ) + OK  # fmt: skip
    assert assert_same(stream, scan, steps=(1500, 1 << 16)) == 3000


# -- what the C reader leaves to the Python code ------------------------------------------------

OTHERS = {
    "a keyword of digits": answer(5, HEADER, flags="\\Seen 123"),
    "NIL among the flags": answer(5, HEADER, flags="NIL"),
    "an 8-bit flag": answer(5, HEADER, flags="caf\xe9".encode("latin-1").decode("latin-1")),
    "two spaces between flags": answer(5, HEADER, flags="\\Seen  \\Answered"),
    "a space after the flags": answer(5, HEADER, flags="\\Seen "),
    "a date of another form": answer(5, HEADER, date="Tue, 05 Oct 2026 09:12:40 +0200"),
    "a date that is no day": answer(5, HEADER, date="31-Feb-2026 09:12:40 +0200"),
    "second 60": answer(5, HEADER, date="30-Jun-2026 23:59:60 +0000"),
    "a year 0999": answer(5, HEADER, date="01-Jan-0999 00:00:00 +0000"),
    "a month in lower case": answer(5, HEADER, date="01-jan-2026 00:00:00 +0000"),
    "items in another order": (
        f'* 1 FETCH (FLAGS (\\Seen) UID 5 INTERNALDATE "05-Oct-2026 09:12:40 +0200" '
        f"RFC822.SIZE 9 {HEADER_KEY} {{{len(HEADER)}}}\r\n"
    ).encode() + HEADER + b")\r\n",
    "an item after the header": answer(5, HEADER)[:-3] + b" MODSEQ (7))\r\n",
    "more after the closing parenthesis": answer(5, HEADER)[:-2] + b" \r\n",
    "a UID with a leading zero": answer(5, HEADER).replace(b"UID 5", b"UID 05"),
    "a line ending in LF only": answer(5, HEADER).replace(b"}\r\n", b"}\n", 1),
    "a literal shorter than said": answer(5, HEADER).replace(b"{%d}" % len(HEADER),
                                                             b"{%d}" % (len(HEADER) + 2)),
    "a header as NIL": b'* 1 FETCH (UID 5 FLAGS () INTERNALDATE "05-Oct-2026 09:12:40 +0200"'
                       b" RFC822.SIZE 9 " + HEADER_KEY.encode() + b" NIL)\r\n",
    "an unsolicited EXISTS": b"* 23 EXISTS\r\n",
    "flags of another message": b"* 4 FETCH (UID 40 FLAGS (\\Seen))\r\n",
    "a second answer for a UID": answer(1, b"Subject: again\r\n\r\n", flags="\\Deleted"),
}  # fmt: skip


@pytest.mark.parametrize("other", OTHERS.values(), ids=OTHERS.keys())
@pytest.mark.parametrize("where", ["first", "between", "last"])
def test_other_lines_go_to_the_python_reading(scan: Any, other: bytes, where: str) -> None:
    first, last = answer(1, HEADER, seq=1), answer(2, HEADER, flags="", seq=2)
    stream = {
        "first": other + first + last,
        "between": first + other + last,
        "last": first + last + other,
    }[where] + OK
    taken = assert_same(stream, scan, steps=(1, 7, 1 << 20))
    # The C reader stops at the first other line: what follows is the Python reading's. (A
    # second answer for UID 1 is usual until the first one has been read: it stops there.)
    expected = {"first": 0, "between": 1, "last": 2}[where]
    if other == OTHERS["a second answer for a UID"] and where == "first":
        expected = 1
    assert taken == expected


@pytest.mark.parametrize(
    "end",
    [
        TAG + b" NO [SERVERBUG] no\r\n",
        TAG + b" BAD [PARSE] no\r\n",
        b"* BYE shutting down\r\n",
        b"",  # the connection ends
        b"* 3 FETCH (UID 3 FLAGS () INTERNALDATE",  # ... in the middle of a line
        answer(3, HEADER)[:-10],  # ... in the middle of a literal
        b"x" * (imap_lines.READ_SIZE * 2),  # a line longer than the C reader waits for
    ],
    ids=["NO", "BAD", "BYE", "end", "end mid-line", "end mid-literal", "long line"],
)
def test_ends_and_errors_are_the_python_readings(scan: Any, end: bytes) -> None:
    assert_same(answer(1, HEADER) + end, scan, steps=(3, 1 << 20))


def test_bytes_read_ahead_are_read_before_the_socket_file(scan: Any) -> None:
    # Read ahead past the tagged result: the next command's answer must still find its bytes.
    later = b"* 9 EXISTS\r\nABCD8 OK later\r\n"
    conn = _Connection(answer(1, HEADER) + OK + later)
    usual: list[FetchedCopy] = []
    imap_lines.read_usual_fetches(conn, scan, usual)
    assert [c.uid for c in usual] == [1]
    assert imap_lines.command_complete(conn, "FETCH", TAG) == ("OK", [b"Fetch completed."])
    assert conn.file.readline(5) == b"* 9 E"
    assert conn.file.readline() == b"XISTS\r\n"
    assert conn.file.read(3) == b"ABC"
    assert conn.file.read1(100) == b"D8 OK later\r\n"
    assert isinstance(conn.file, io.BytesIO)  # all read: the socket file is back in its place


# -- drawn answers ------------------------------------------------------------------------------

_FLAG = st.sampled_from(["\\Seen", "\\Recent", "\\recent", "\\Answered", "$label", "Junk", "1",
                         "\\1", "NIL", "a(b", "", "\\", "x]"])  # fmt: skip
_DATE = st.one_of(
    st.builds(
        "{}-{}-{} {:02d}:{:02d}:{:02d} {}{:02d}{:02d}".format,
        st.sampled_from(["1", " 1", "01", "31", "29", "30", "00", "7"]),
        st.sampled_from(["Jan", "Feb", "Jun", "Dec", "feb"]),
        st.sampled_from(["2024", "2023", "1900", "9999", "0999"]),
        st.integers(0, 24), st.integers(0, 60), st.integers(0, 60),
        st.sampled_from(["+", "-"]), st.integers(0, 22), st.integers(0, 99),
    ),
    st.sampled_from(["", "x", "05-Oct-2026 09:12:40", "05-Oct-2026 09:12:40 +02000"]),
)  # fmt: skip


@st.composite
def _stream(draw: st.DrawFn) -> bytes:
    pieces = []
    for seq in range(1, draw(st.integers(1, 6)) + 1):
        uid = draw(st.integers(1, 4))
        header = draw(st.sampled_from([HEADER, b"", b"\r\n", b"Subject: )\r\n\r\n", b"x" * 300]))
        pieces.append(answer(uid, header, seq=seq, size=draw(st.integers(0, 10**6)),
                             flags=" ".join(draw(st.lists(_FLAG, max_size=3))),
                             date=draw(_DATE)))  # fmt: skip
        if draw(st.integers(0, 5)) == 0:
            pieces.append(draw(st.sampled_from(list(OTHERS.values()))))
    return b"".join(pieces) + draw(st.sampled_from([OK, TAG + b" NO no\r\n", b""]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stream=_stream(), step=st.integers(1, 400))
def test_drawn_answers_read_as_the_python_code_reads_them(
    scan: Any, stream: bytes, step: int
) -> None:
    assert_same(stream, scan, steps=(step, 1 << 20))


# -- the module ---------------------------------------------------------------------------------


def test_a_binary_from_another_source_is_not_used(tmp_path: Path) -> None:
    edited = tmp_path / "_cfetch.c"
    edited.write_bytes(imap_module.CFETCH_SOURCE.read_bytes() + b"\n")
    assert native.built("_cfetch", edited) is None
    assert native.built("_cfetch", imap_module.CFETCH_SOURCE) is not None


def test_scan_refuses_wrong_arguments(scan: Any) -> None:
    with pytest.raises(TypeError):
        scan(b"", 0, [], [])
    with pytest.raises(ValueError):
        scan(b"abc", 4, set(), [])
