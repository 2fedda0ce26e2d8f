"""The parser's fast paths give exactly the answer of the general code they stand in front of.

Each fast path of `inboxsync.parse` (and the subject regexes of `inboxsync.classify`) reads the
shapes nearly all mail has and hands anything else to general code that stays in the module. These
tests feed both the same inputs, drawn by hypothesis around the shapes where they could part
(continuation lines, bare CR, obsolete ``Name :`` fields, junk lines, ``From `` lines, empty
values, 8-bit bytes, odd whitespace) and taken from the real corpora, and require identical
results: a fast path that drifts from its general path fails here instead of changing rows.
Where the general code is the pre-optimisation expression itself (a regex, a few lines), the test
keeps that expression as its reference.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import getaddresses, parsedate_tz
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inboxsync import classify as classify_module
from inboxsync.bench.corpus import read_mbox
from inboxsync.parse import (
    _ANY_BREAK_FIELDS,
    _BRACKETED_ID,
    _ID_SEPARATORS,
    _UNSAFE_CHARS,
    MAX_MESSAGE_ID,
    _bytes_to_text,
    _clean,
    _msg_ids,
    _normalize_any_email,
    _parse_fields,
    _parse_fields_stdlib,
    _simple_date,
    _split_addresses,
    _split_fields,
    _strip_comments,
    _unfold,
    header_fields_only,
    normalize_email,
    parse_date,
)

CORPORA = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora"
requires_corpora = pytest.mark.skipif(
    not CORPORA.is_dir(), reason=f"real-mail corpora not found at {CORPORA}"
)
_MANY = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---- the field splitter ---------------------------------------------------------------------


def _assert_splitter_agrees(text: str) -> bool:
    """Check `_split_fields` against the stdlib path on one text.

    Args:
        text: Decoded header text.

    Returns:
        True when the fast path took the text, False when it left it to the stdlib.
    """
    general = _parse_fields_stdlib(text)
    fast = _split_fields(text)
    if fast is not None:
        assert fast == general, repr(text[:500])
    assert _parse_fields(text) == general
    # The CRLF-only and LF-only regexes must read what the any-line-break regex reads.
    field, header = _ANY_BREAK_FIELDS
    match = header.match(text)
    assert fast == (field.findall(text, 0, match.end()) if match else None)
    return fast is not None


_NAME = st.one_of(
    st.sampled_from([b"Subject", b"FROM", b"to", b"Cc", b"Message-ID", b"Date", b"From", b"A",
                     b"References", b"X-!#$%&'*+-.^_`{|}~"]),
    st.from_regex(rb"\A[!-9;-~]{1,8}\Z"),
)  # fmt: skip
# Pieces of a value; never a CR or LF, which would end the line.
_PIECE = st.sampled_from([
    b"plain", b" ", b"\t", b"", b"a@b.example", b"Name <n@x.example>", b"<id@x.example>",
    b"=?utf-8?q?caf=C3=A9?=", b":", b"From ", b" :", b"\xe9", b"\xc3\xa9", b"\xff\xfe", b"\x00",
    b"\x0b", b"\x0c", b"\x1c", b"\x7f", b"\xc2\x85", b"\xe2\x80\xa8", b"\xe2\x80\xa9",
])  # fmt: skip
_VALUE = st.lists(_PIECE, max_size=5).map(b"".join)
_FIELD_LINE = st.builds(
    lambda name, sep, value: name + sep + value,
    _NAME,
    st.sampled_from([b":", b": ", b":\t", b":  \t"]),
    _VALUE,
)
_CONTINUATION = st.builds(lambda lead, value: lead + value, st.sampled_from([b" ", b"\t"]), _VALUE)
_ODD_LINE = st.one_of(
    st.builds(lambda name, value: name + b" :" + value, _NAME, _VALUE),  # obsolete "Name :"
    st.builds(lambda value: b":" + value, _VALUE),  # no name
    st.builds(lambda value: b"From " + value, _VALUE),  # mbox envelope line
    st.from_regex(rb"\A[^:\r\n]{1,12}\Z"),  # junk without a colon
    st.sampled_from([b"Sub\xe9ject: 8-bit name", b"Sub ject: space in name", b""]),
)
_BREAK = st.sampled_from([b"\r\n", b"\n", b"\r"])


@st.composite
def _well_formed_headers(draw: st.DrawFn) -> bytes:
    """Fields and continuation lines only, one kind of line break or a random mix."""
    lines = [draw(_FIELD_LINE)]
    lines += draw(st.lists(st.one_of(_FIELD_LINE, _CONTINUATION), max_size=10))
    style = draw(st.sampled_from([b"\r\n", b"\n", b"\r", None]))
    breaks = [style or draw(_BREAK) for _ in lines]
    raw = b"".join(line + brk for line, brk in zip(lines, breaks, strict=True))
    if draw(st.booleans()):
        raw = raw[: -len(breaks[-1])]  # no line break after the last field
    elif draw(st.booleans()):
        raw += breaks[-1] + draw(st.sampled_from([b"", b"Body: after the empty line\r\n", b" x"]))
    return raw


@st.composite
def _any_headers(draw: st.DrawFn) -> bytes:
    """Any mix of fields, continuations and odd lines, with any line breaks."""
    lines = draw(
        st.lists(st.one_of(_FIELD_LINE, _FIELD_LINE, _CONTINUATION, _ODD_LINE), max_size=10)
    )
    return b"".join(line + draw(_BREAK) for line in lines) + draw(st.sampled_from([b"", b"\r\n"]))


@_MANY
@given(_well_formed_headers())
def test_splitter_takes_well_formed_headers_and_agrees_with_stdlib(raw: bytes) -> None:
    assert _assert_splitter_agrees(_bytes_to_text(raw)), raw


@_MANY
@given(_any_headers())
def test_splitter_agrees_with_stdlib_or_leaves_the_header_to_it(raw: bytes) -> None:
    _assert_splitter_agrees(_bytes_to_text(raw))


@pytest.mark.parametrize(
    ("raw", "fast"),
    [
        (b"Subject: a\r\n b\r\n\tc\r\nTo: x@y\r\n\r\n", True),
        (b"Subject:\r\n folded after an empty first line\r\n\r\n", True),
        (b"Subject: \r\nX-Empty:\r\nTo:\t\r\n\r\n", True),
        (b"Subject: x\r\n \r\n\t\r\n y\r\n\r\n", True),  # whitespace-only continuation lines
        (b"To: a@b\rCc: c@d\r e@f\rSubject: bare CR\r\r", True),
        (b"To: a@b\nCc: c@d\r\nSubject: mixed\r \n\n", True),
        (b"Subject: no line break at the end", True),
        (b"Subject: x\r\n\r\nTo: after the empty line\r\n", True),
        (b"Subject: caf\xe9 latin-1\r\nTo: caf\xc3\xa9 <u@x>\r\n\r\n", True),
        (b"Subject: a\x0bb\x0cc\x1cd\x1ee \xc2\x85 f \xe2\x80\xa8 g\r\n\r\n", True),
        (b"Subject: a\x00b\r\n\r\n", True),
        (b"\r\nSubject: after a leading empty line\r\n", True),
        (b"", True),
        (b"Subject : obsolete space\r\nTo: a@b\r\n\r\n", False),
        (b"From alice@x Mon Jan  1 00:00:00 2024\r\nSubject: mbox\r\n\r\n", False),
        (b"Subject: a\r\nFrom bob\r\nTo: b@c\r\n\r\n", False),
        (b"Subject: a\r\nTo: b@c\r\nFrom bob\r\n\r\n", False),
        (b" leading continuation\r\nSubject: a\r\n\r\n", False),
        (b": no name\r\nSubject: a\r\n\r\n", False),
        (b"Subject: a\r\njunk line\r\nTo: b@c\r\n\r\n", False),
        (b"Sub\xe9ject: 8-bit name\r\nTo: b@c\r\n\r\n", False),
    ],
)
def test_splitter_on_tricky_shapes(raw: bytes, fast: bool) -> None:
    assert _assert_splitter_agrees(_bytes_to_text(raw)) is fast


def _corpus_texts() -> list[str]:
    """Header texts from every corpus message, as fetched and in other line-ending shapes."""
    texts: list[str] = []
    for path in sorted((CORPORA / "lists").glob("*.mbox.gz")):
        for raw in read_mbox(path):
            texts.append(_bytes_to_text(header_fields_only(raw)))
            texts.append(_bytes_to_text(raw.split(b"\n\n", 1)[0] + b"\n\n"))
    for sub in ("tricky", "bounces", "replies"):
        for path in sorted(p for p in (CORPORA / sub).rglob("*") if p.is_file()):
            data = path.read_bytes()[:50_000]
            lf = data.replace(b"\r\n", b"\n")
            for raw in (data, header_fields_only(data), lf, lf.replace(b"\n", b"\r")):
                texts.append(_bytes_to_text(raw))
    return texts


@requires_corpora
def test_splitter_agrees_with_stdlib_on_every_corpus_header() -> None:
    texts = _corpus_texts()
    taken = sum(_assert_splitter_agrees(text) for text in texts)
    assert len(texts) > 25_000
    # Nearly every real header is in the fast path's shape; the rest still agree above.
    assert taken > 0.9 * len(texts)


# ---- unfolding --------------------------------------------------------------------------------

# What `_unfold` did before: a regex substitution, kept here as the reference.
_FOLD = re.compile(r"[ \t]*(?:[\r\n]+[ \t]*)+")


@_MANY
@given(st.text(alphabet=" \t\r\nab\x0b\x0c\x1c\x85\u2028", max_size=40))
def test_unfold_equals_the_fold_regex(value: str) -> None:
    assert _unfold(value) == _FOLD.sub(" ", value)


# ---- dates ------------------------------------------------------------------------------------


@st.composite
def _dates(draw: st.DrawFn) -> str:
    """Date values in and around the shape `_simple_date` reads."""
    parts = [
        draw(st.sampled_from(["", " ", "\t"])),
        draw(st.sampled_from(["", "Mon, ", "Mon,", "mon,\t ", "Xyz, ", "Mon ", "Monday, ", ","])),
        draw(st.sampled_from(["1", "01", "29", "31", "32", "0", "00", "123", "", "1,"])),
        draw(st.sampled_from(["Apr", "apr", "APR", "May", "Sep", "Sept", "Foo", "April", "Ap"])),
        draw(st.sampled_from(["2019", "1999", "0099", "0100", "0000", "19", "101", "9999", "2201",
                              "1899", "12345"])),
        draw(st.sampled_from(["08:57:37", "8:57:37", "08:57", "23:59:60", "24:00:00", "08.57.37",
                              "08:57:37:00", "99:99:99"])),
        draw(st.sampled_from(["+1000", "-0700", "-0000", "+0000", "+2400", "+9959", "-2359", "GMT",
                              "UT", "EST", "Z", "", "+10", "+10000", "0700"])),
        draw(st.sampled_from(["", " (PDT)", "(PDT)", "\t(GMT+08:00)", " (a (b) c)", " (", " )",
                              " (UTC) x", " ()"])),
        draw(st.sampled_from(["", " ", "\t", "  "])),
    ]  # fmt: skip
    seps = draw(st.lists(st.sampled_from([" ", "  ", "\t", " \t"]), min_size=4, max_size=4))
    lead, day_name, day, month, year, clock, zone, comment, trail = parts
    return (
        f"{lead}{day_name}{day}{seps[0]}{month}{seps[1]}{year}{seps[2]}{clock}{seps[3]}{zone}"
        f"{comment}{trail}"
    )


def _reference_parse_date(value: str) -> datetime | None:
    """`parse_date` as it was before its fast path: `parsedate_tz` on every value."""
    if not value.strip():
        return None
    value = _strip_comments(value)
    try:
        parts = parsedate_tz(value)
        if parts is None:
            return None
        local = datetime(*parts[:6])
        offset = parts[9] or 0
        if abs(offset) >= 86400:
            return None
        sent_at = (local - timedelta(seconds=offset)).replace(tzinfo=UTC)
    except (ValueError, OverflowError, TypeError, IndexError):
        return None
    if not 1900 <= sent_at.year <= 2200:
        return None
    return sent_at


@_MANY
@given(_dates())
def test_simple_date_agrees_with_parsedate_tz(value: str) -> None:
    fast = _simple_date(value)
    if fast is not None:
        assert fast == parsedate_tz(_strip_comments(value))
    assert parse_date(value) == _reference_parse_date(value)


@pytest.mark.parametrize(
    ("value", "fast"),
    [
        ("Mon, 29 Apr 2019 08:57:37 +1000", True),
        ("Sun, 28 Apr 2019 04:18:22 -0700 (PDT)", True),
        ("Mon,  6 May 2019 13:43:28 +0200", True),
        ("09 Sep 2020 03:39:56 -0000", True),
        ("Wed, 16 Sep 2020 20:33:08 +0800 (GMT+08:00)", True),
        ("Fri, 31 Feb 2020 10:00:00 +0000", True),  # read, then refused by datetime
        ("Thu, 23 Jun 2022 15:11:32 GMT", False),
        ("Sun, 06 Oct 19 22:36:59 GMT", False),
        ("Wed, 20 Dec 95 19:59 CST", False),
        ("Fri, 16 Mar 0099 16:12:03 -0800", False),
        ("Thu 29 Apr 2010 23:34:45 +0900", False),
    ],
)
def test_simple_date_reads_the_common_shape(value: str, fast: bool) -> None:
    assert (_simple_date(value) is not None) is fast
    assert parse_date(value) == _reference_parse_date(value)


# ---- addresses ----------------------------------------------------------------------------------

_LABEL = st.sampled_from(["example", "EXAMPLE", "xn--bcher-kva", "XN--BCHER-KVA", "xn--zz--",
                          "münchen", "", "a b", "x\ty", "a\x00", "a\x7f", "\ud800",
                          " ex "])  # fmt: skip


@st.composite
def _emails(draw: st.DrawFn) -> str:
    """Addresses around the plain ASCII shape `normalize_email` reads fast."""
    local = draw(st.sampled_from(["Alice", "a.b+c", "", " bob", "\u00e9", "a@b", "x y", "\x1f"]))
    domain = ".".join(draw(st.lists(_LABEL, min_size=1, max_size=3)))
    end = draw(st.sampled_from(["", ".", "..", " ", "\t", "\u3000"]))
    return f"{local}@{domain}{end}"


@_MANY
@given(st.one_of(_emails(), st.text(max_size=30)))
def test_normalize_email_fast_path_agrees_with_the_general_path(address: str) -> None:
    assert normalize_email(address) == _normalize_any_email(address)


_ADDRESS_PIECE = st.sampled_from(['"Doe, J."', "Doe", " ", "\t", "<", ">", "a@b.example", ",",
                                  "J. R.", "=?utf-8?q?D=C3=B6e?=", "\u00e9", "\x0b", "(c)", ":",
                                  ";", '"', "\\", "@", "x"])  # fmt: skip


@_MANY
@given(st.lists(_ADDRESS_PIECE, max_size=10).map("".join))
def test_address_fast_path_agrees_with_getaddresses(value: str) -> None:
    fast = [(" ".join(name.split()), addr) for name, addr in _split_addresses(value)]
    slow = [(" ".join(name.split()), addr) for name, addr in getaddresses([value])]
    assert fast == slow


# ---- cleaning and message ids ---------------------------------------------------------------

_ANY_CHAR = st.one_of(
    st.characters(), st.sampled_from(["\ud800", "\udfff", "\x00", "\t", "\r\n", " ", "\x85"])
)


def _reference_clean(value: str, limit: int) -> str | None:
    """`_clean` as it was before its isprintable() shortcut."""
    if _UNSAFE_CHARS.search(value):
        value = _UNSAFE_CHARS.sub("", value)
    value = value.strip()
    return value[:limit].rstrip() or None


@_MANY
@given(st.lists(_ANY_CHAR, max_size=30).map("".join), st.sampled_from([3, 20, 500]))
def test_clean_agrees_with_its_reference(value: str, limit: int) -> None:
    assert _clean(value, limit) == _reference_clean(value, limit)


def _reference_msg_ids(value: str) -> list[str]:
    """`_msg_ids` as it was before its shortcut for ids without whitespace."""
    ids = _BRACKETED_ID.findall(value)
    if not ids:
        ids = [token.strip("<>") for token in _ID_SEPARATORS.split(value) if "@" in token]
    cleaned = (_clean("".join(msg_id.split()), MAX_MESSAGE_ID) for msg_id in ids)
    return [msg_id for msg_id in cleaned if msg_id]


_ID_PIECE = st.sampled_from(["<", ">", "a@b", "id", " ", "\t", "\r\n ", "\x00", "\u00e9", ",",
                             "@", "\ud800", "x" * 600, "\x85"])  # fmt: skip


@_MANY
@given(st.lists(_ID_PIECE, max_size=12).map("".join))
def test_msg_ids_agree_with_their_reference(value: str) -> None:
    assert _msg_ids(value) == _reference_msg_ids(value)


@pytest.mark.parametrize(
    "value",
    ["<a@b>", "< >", "<a b@c>", "<a@b> <c d@e>", "a b@c", "<\x00a@b>", "<a@b\r\n >", "<>",
     "<" + "x" * 1000 + ">", "<\u00e9@x>", "<a@b>,<a@b>", "a@b, c@d", "<a\u3000b@c>"],
)  # fmt: skip
def test_msg_ids_on_tricky_values(value: str) -> None:
    assert _msg_ids(value) == _reference_msg_ids(value)


# ---- classify ---------------------------------------------------------------------------------

# Letters whose case folding is unusual (long s, Kelvin sign, dotted and dotless i), the first
# letters of the subject words, and pieces of the words themselves.
_SUBJECT_PIECE = st.sampled_from(["ſ", "K", "İ", "ı", "A", "a", "O", "F", "R", "V", "é", "É", "自",
                                  "動", " ", "out of office", "OUT OF THE OFFICE", "auto-reply",
                                  "AUTORESPONSE", "Réponse automatique", "undeliverable",
                                  "NON-DELIVERY", "failure notice",
                                  "returned to sender"])  # fmt: skip


@_MANY
@given(st.lists(_SUBJECT_PIECE, max_size=8).map("".join))
def test_subject_regexes_match_like_the_plain_alternation(subject: str) -> None:
    for words, pattern in (
        (classify_module._VACATION_WORDS, classify_module._VACATION_SUBJECT),
        (classify_module._BOUNCE_WORDS, classify_module._BOUNCE_SUBJECT),
    ):
        plain = re.compile("|".join(words), re.IGNORECASE).search(subject)
        found = pattern.search(subject)
        assert (found and found.span()) == (plain and plain.span())


_ASCII_SUBJECT_PIECE = st.one_of(
    _SUBJECT_PIECE.filter(str.isascii),
    st.sampled_from(["Reponse AUTOMATIQUE", "respuesta Automatica", "Vacation", "On Leave",
                     "KELVIN", "k", "S", "s", "i", "I", "Away From", "-", "x"]),
    st.text(st.characters(max_codepoint=127), max_size=6),
)  # fmt: skip


@_MANY
@given(st.lists(_ASCII_SUBJECT_PIECE, max_size=8).map("".join))
def test_vacation_words_in_lower_cased_ascii_match_as_under_ignorecase(subject: str) -> None:
    expected = bool(
        re.compile("|".join(classify_module._VACATION_WORDS), re.IGNORECASE).search(subject)
    )
    assert classify_module.vacation_subject(subject) is expected


def _reference_sender_is_daemon(value: str | None) -> bool:
    """`classify._sender_is_daemon` as it was before its substring shortcut."""
    if not value:
        return False
    match = classify_module._ANGLE_ADDR.search(value)
    if match is None:
        address = classify_module._COMMENT.sub(" ", value)
    elif match[1].strip():
        address = match[1]
    else:
        address = value[: match.start()]
    address = address.strip().split(",", 1)[0].strip()
    local_part = address.rsplit("@", 1)[0].strip().strip('"').lower()
    return local_part in classify_module._BOUNCE_LOCAL_PARTS


_SENDER_PIECE = st.sampled_from(["MAILER-DAEMON", "mailer_daemon", "PostMaster", "post_master",
                                 "DAEMON", "Master", "K", "İ", "<", ">", "@", "x.example", " ",
                                 '"', ",", "(", ")", "Team"])  # fmt: skip


@_MANY
@given(st.lists(_SENDER_PIECE, max_size=8).map("".join))
def test_sender_is_daemon_agrees_with_its_reference(value: str) -> None:
    assert classify_module._sender_is_daemon(value) == _reference_sender_is_daemon(value)


@_MANY
@given(st.lists(st.sampled_from(["bulk", "(", ")", " ", ";", "x=y", "Junk", "\t"]), max_size=8))
def test_first_token_agrees_with_its_reference(pieces: list[str]) -> None:
    value = "".join(pieces)
    token = classify_module._COMMENT.sub(" ", value).split(";", 1)[0].strip().lower()
    assert classify_module._first_token(value) == (token.split()[0] if token else "")
