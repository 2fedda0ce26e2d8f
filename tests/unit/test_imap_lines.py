"""`imap_lines.command_complete` reads a command's answer exactly as imaplib's own reading does.

Each case feeds the same bytes to imaplib's ``_command_complete`` and to ``command_complete`` on
two fresh connections (an ``imaplib.IMAP4`` whose socket file is the bytes) and requires the same
result or the same exception with the same text, the same untagged responses in the same order,
the same continuation, and the same bytes left unread. The cases are written by hand in the
shapes servers send (FETCH answers with and without literals, unsolicited EXISTS, EXPUNGE and
FLAGS, bracketed codes, BYE, cut connections), then drawn by hypothesis from those pieces.
"""

from __future__ import annotations

import imaplib
import io
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inboxsync import imap_lines

TAG = b"ABCD7"


class _Connection(imaplib.IMAP4):
    """An imaplib connection reading ``stream`` instead of a socket, with one command sent."""

    def __init__(self, stream: bytes, *, utf8: bool = False) -> None:  # no socket, no greeting
        self.debug = 0
        self.state = "SELECTED"
        self.literal = None
        self.tagged_commands: dict[bytes, Any] = {TAG: None}
        self.untagged_responses: dict[str, list[Any]] = {}
        self.continuation_response = ""
        self.is_readonly = False
        self.tagnum = 8
        self._tls_established = False
        self._cmd_log_len = 10
        self._cmd_log_idx = 0
        self._cmd_log: dict[int, Any] = {}
        self._mode_ascii()
        if utf8:
            self._mode_utf8()
        self.tagpre = b"ABCD"
        self.tagre = re.compile(rb"(?P<tag>" + self.tagpre + rb"\d+) (?P<type>[A-Z]+) (?P<data>.*)",
                                re.ASCII)  # fmt: skip
        self.file = io.BytesIO(stream)


def _outcome(read: Any, stream: bytes, utf8: bool) -> tuple[Any, ...]:
    conn = _Connection(stream, utf8=utf8)
    try:
        result: Any = ("returned", read(conn))
    except Exception as exc:
        result = ("raised", type(exc).__name__, str(exc))
    return (result, conn.untagged_responses, conn.continuation_response,
            conn.tagged_commands, conn.file.read())  # fmt: skip


def assert_same(stream: bytes, *, utf8: bool = False) -> tuple[Any, ...]:
    expected = _outcome(lambda c: c._command_complete("FETCH", TAG), stream, utf8)
    got = _outcome(lambda c: imap_lines.command_complete(c, "FETCH", TAG), stream, utf8)
    assert got == expected
    return got


HEADER = b"From: ana@customer.example\r\nSubject: {5} (x)\r\n\r\n"
ANSWER = (
    b'* 1 FETCH (UID 11 FLAGS (\\Seen) INTERNALDATE "05-Oct-2026 09:12:40 +0200" '
    b"RFC822.SIZE 120 BODY[HEADER.FIELDS (FROM SUBJECT)] {%d}\r\n%s)\r\n" % (len(HEADER), HEADER)
)
OK = TAG + b" OK Fetch completed.\r\n"

CASES = {
    "one answer": ANSWER + OK,
    "no answer": OK,
    "two literals in one answer": (
        b"* 2 FETCH (UID 12 BODY[HEADER] {3}\r\nabc BODY[TEXT] {2}\r\nxy)\r\n" + OK
    ),
    "an empty literal": b"* 3 FETCH (UID 13 BODY[HEADER] {0}\r\n)\r\n" + OK,
    "a literal holding a CRLF and a brace": (
        b"* 4 FETCH (UID 14 BODY[HEADER] {7}\r\n{1}\r\n\r\n)\r\n" + OK
    ),
    "unsolicited responses between answers": (
        ANSWER + b"* 9 EXISTS\r\n* 2 EXPUNGE\r\n* OK [HIGHESTMODSEQ 77] ok\r\n"
        b"* FLAGS (\\Seen \\Answered)\r\n* 5 FETCH (FLAGS (\\Deleted))\r\n" + ANSWER + OK
    ),
    "FETCH without data": b"* 5 FETCH\r\n* 6 FETCH \r\n" + OK,
    "a lower-case fetch": b"* 5 fetch (UID 1)\r\n" + OK,
    "a tagged NO": ANSWER + TAG + b" NO [SERVERBUG] try later\r\n",
    "a tagged BAD": TAG + b" BAD Error in IMAP command UID FETCH\r\n",
    "BYE before the end": ANSWER + b"* BYE shutting down\r\n" + OK,
    "BYE and the connection closed": ANSWER + b"* BYE server restarting\r\n",
    "cut mid-line": ANSWER[:40],
    "cut mid-literal": ANSWER[:-20],
    "cut after a literal": ANSWER[:-3],
    "a line without CRLF": ANSWER + b"* 9 EXISTS\n" + OK,
    "another command's tag": b"ABCD3 OK done\r\n" + OK,
    "garbage": b"?? what\r\n" + OK,
    "a continuation": b"+ go ahead\r\n" + OK,
    "a NO with a code": b"* NO [ALERT] quota\r\n" + OK,
    "bytes after the answer": ANSWER + OK + b"* 10 EXISTS\r\n",
    "eight-bit data": b"* 7 FETCH (UID 17 BODY[HEADER] {4}\r\n\xc3\xa9t\xe9)\r\n" + OK,
}


@pytest.mark.parametrize("stream", CASES.values(), ids=CASES.keys())
@pytest.mark.parametrize("utf8", [False, True], ids=["ascii", "utf8"])
def test_answers_read_as_imaplib_reads_them(stream: bytes, utf8: bool) -> None:
    assert_same(stream, utf8=utf8)


def test_fetch_answers_are_stored_as_imaplib_stores_them() -> None:
    result, untagged, *_ = assert_same(CASES["unsolicited responses between answers"])
    assert result == ("returned", ("OK", [b"Fetch completed."]))
    first = (b"1 (UID 11 FLAGS (\\Seen) INTERNALDATE \"05-Oct-2026 09:12:40 +0200\" RFC822.SIZE"
             b" 120 BODY[HEADER.FIELDS (FROM SUBJECT)] {%d}" % len(HEADER), HEADER)  # fmt: skip
    assert untagged["FETCH"] == [first, b")", b"5 (FLAGS (\\Deleted))", first, b")"]
    assert untagged["EXISTS"] == [b"9"]
    assert untagged["HIGHESTMODSEQ"] == [b"77"]


def test_errors_name_the_command() -> None:
    result, *_ = assert_same(CASES["cut mid-literal"])
    assert result[:2] == ("raised", "abort")
    assert result[2].startswith("command: FETCH => ")
    result, *_ = assert_same(CASES["a tagged BAD"])
    bad = "FETCH command error: BAD [b'Error in IMAP command UID FETCH']"
    assert result == ("raised", "error", bad)


PIECES = [
    ANSWER,
    b"* 2 FETCH (UID 12 BODY[HEADER] {3}\r\nabc BODY[TEXT] {2}\r\nxy)\r\n",
    b"* 3 FETCH (FLAGS ())\r\n",
    b"* 4 FETCH\r\n",
    b"* 9 EXISTS\r\n",
    b"* 2 EXPUNGE\r\n",
    b"* OK [HIGHESTMODSEQ 77] ok\r\n",
    b"* VANISHED (EARLIER) 1:3\r\n",
    b"* BYE going\r\n",
    b"+ more\r\n",
    b"* 5 FETCH (UID 15 BODY[HEADER] {1}\r\n",
    b"\r\n",
    b"x",
    TAG + b" NO no\r\n",
    OK,
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=8), st.booleans())
def test_drawn_answers_read_as_imaplib_reads_them(pieces: list[bytes], utf8: bool) -> None:
    assert_same(b"".join(pieces), utf8=utf8)
