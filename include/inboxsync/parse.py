"""Turn the header fields fetched over IMAP into one message row: pure functions, no I/O.

The sync fetches ``BODY.PEEK[HEADER.FIELDS (...)]`` with `HEADER_FIELDS` and hands the raw bytes
to `parse_header`. Whatever the bytes, `parse_header` either returns a `ParsedMessage` whose
strings can go straight into PostgreSQL ``text`` columns, or raises `QuarantineError` with a
stable reason code; no other exception escapes, so one bad message never stops a run.

Speed matters (the pipeline targets more than 10,000 messages/s), hence the stdlib ``email``
parser with ``policy=compat32`` and ``getaddresses`` instead of ``policy.default`` (about five
times slower), and fast paths for the shapes nearly all mail has, each giving exactly the answer
of the general code it stands in front of (unit tests compare them): a regex that splits a header
of well-formed fields as the stdlib parser would, ASCII headers, values without encoded words,
plain address lists (read by a regex that gives ``getaddresses``' answer), plain ASCII addresses,
and Dates of the common ``Mon, 29 Apr 2019 08:57:37 +1000`` shape.

In front of all that sits `inboxsync._cparse`, the same fast paths written in C for the header
shape of nearly every IMAP answer (ASCII, CRLF, well-formed fields, a bracketed Message-ID, no
delivery-report signal): it returns the row's parts, or None and the Python code below decides.
The Python code is the reference (tests/unit/test_cparse.py compares the two on every corpus
header); the C module is used only when it was built from the source beside it, and
``INBOXSYNC_PARSE=python`` turns it off.
"""

from __future__ import annotations

import binascii
import collections.abc
import functools
import hashlib
import logging
import os
import re
import types
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.errors import MissingHeaderBodySeparatorDefect
from email.parser import Parser
from email.policy import compat32
from email.utils import getaddresses, parsedate_tz
from pathlib import Path

from inboxsync import native
from inboxsync.classify import AUTO_REPLY, classify_fields, vacation_subject

log = logging.getLogger(__name__)

HEADER_FIELDS: tuple[str, ...] = (
    "From",
    "Sender",
    "Reply-To",
    "To",
    "Cc",
    "Bcc",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Auto-Submitted",
    "X-Autoreply",
    "X-Autorespond",
    "Precedence",
    "List-Id",
    "List-Unsubscribe",
    "Content-Type",
    "Return-Path",
)

# Address fields and the role each one gets in message_addresses.
ADDRESS_ROLES: dict[str, str] = {
    "from": "from",
    "sender": "sender",
    "reply-to": "reply_to",
    "to": "to",
    "cc": "cc",
    "bcc": "bcc",
}
# A message needs at least one of these to be filed anywhere (timeline, thread, contact).
_IDENTITY_FIELDS: tuple[str, ...] = ("from", "sender", "message-id", "date", "subject", "to")
# Fields left out of the fallback key of a message without Message-ID: Return-Path is stamped by
# the final delivery (per-recipient VERP on list mail) and Bcc only survives in the sender's
# copy, so including them would give one email a different key in each inbox.
_KEY_FIELDS = frozenset(name.lower() for name in HEADER_FIELDS) - {"return-path", "bcc"}

MAX_SUBJECT = 2000
MAX_DISPLAY_NAME = 500
MAX_EMAIL = 320
MAX_MESSAGE_ID = 998  # RFC 5322's line length limit: no real id is longer
MAX_REFERENCES = 500
MAX_SHORT_TEXT = 500  # Date, List-Id, Content-Type, Auto-Submitted
MAX_REASON_DETAIL = 300
#: Address-field values whose parse is kept (`_address_list`, `_role_addresses`): a few MB at most.
ADDRESS_CACHE_SIZE = 8192

_PARSER = Parser(policy=compat32)
# A fold inside an encoded word, where it means nothing at all.
_FOLD_IN_WORD = re.compile(r"(?:[\r\n]+[ \t]*)+")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _field_regexes(line_break: str, line_char: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Compile the regexes that read well-formed fields, for one kind of line break.

    A well-formed field is what the stdlib parser reads as one: a name of printable ASCII but
    colon (its headerRE), the colon, whitespace it drops, the value (continuation lines
    included, with their line breaks), then the line break or the end. Repeats are possessive,
    so a line that is not a field fails at once instead of backtracking.

    Args:
        line_break: Regex of one line break.
        line_char: Regex of one character that is not a line break.

    Returns:
        The field regex (groups: name, value) and the regex of a header made only of such
        fields, ended by an empty line or the end of the text.
    """
    value = rf"{line_char}*+(?:{line_break}[ \t]{line_char}*+)*+"
    field = rf"([!-9;-~]+):[ \t]*+({value})(?:{line_break}|\Z)"
    header = rf"(?:[!-9;-~]+:{value}(?:{line_break}|\Z))*+(?:{line_break}|\Z)"
    return re.compile(field), re.compile(header)


# Line breaks as the stdlib reads them: CRLF, LF or a bare CR. When the text holds only CRLF or
# only LF, a single excluded character lets the regex engine scan lines several times faster.
_ANY_BREAK_FIELDS = _field_regexes(r"(?:\r\n|\r|\n)", r"[^\r\n]")
_CRLF_FIELDS = _field_regexes(r"\r\n", r"[^\r]")
_LF_FIELDS = _field_regexes(r"\n", r"[^\n]")
# A field name followed by optional whitespace and the colon (RFC 5322 section 4.5.1 obs-optional).
_OBSOLETE_FIELD = re.compile(r"([!-9;-~]+)[ \t]*:")
# What PostgreSQL text cannot hold (NUL), what breaks CSV/COPY and logs (other C0 controls but
# tab), and lone surrogates that cannot be encoded as UTF-8.
_UNSAFE_CHARS = re.compile("[\x00-\x08\x0a-\x1f\ud800-\udfff]")
_EMAIL_REJECT = re.compile(r"[\s\x00-\x1f\x7f]")
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([qQbB])\?([^?]*)\?=")
# One element of a plain address list: '"Quoted" <a@b>', 'Phrase <a@b>' or 'a@b', then a comma
# or the end. The excluded characters are the RFC 5322 specials that need the full parser. The
# phrase is possessive: it stops at the first special anyway, and the whitespace it takes before
# "<" goes when the phrase's whitespace is collapsed.
_SPECIALS = r"\"\\<>()\[\],;:@"
_ADDR_SPEC = rf"[^\s{_SPECIALS}]+@[^\s{_SPECIALS}]+"
_SIMPLE_ADDRESS = re.compile(
    rf"[ \t]*(?:(?:\"(?P<quoted>[^\"\\]*)\"|(?P<phrase>[^{_SPECIALS}]*+))"
    rf"[ \t]*<(?P<angle>{_ADDR_SPEC})>|(?P<bare>{_ADDR_SPEC}))[ \t]*(?:,|\Z)"
)
_BRACKETED_ID = re.compile(r"<([^<>]*)>")
_ID_SEPARATORS = re.compile(r"[\s,]+")
# Charsets that mail agents declare but whose text is really in a superset.
_CHARSET_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "iso-8859-8-i": "iso-8859-8",
    "x-sjis": "shift_jis",
    "unknown-8bit": "utf-8",
    "x-unknown": "utf-8",
}
# A Date as nearly all mail writes it, with an optional simple comment such as "(UTC)".
_SIMPLE_DATE = re.compile(
    r"[ \t]*(?:[A-Za-z]+,[ \t]*)?([0-9]{1,2})[ \t]+([A-Za-z]{3})[ \t]+([0-9]{4})[ \t]+"
    r"([0-9]{2}):([0-9]{2}):([0-9]{2})[ \t]+([+-])([0-9]{2})([0-9]{2})(?:[ \t]*\([^()]*\))?[ \t]*"
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_SHA_PREFIX_MID = b"mid:"
_SHA_PREFIX_HDR = b"hdr:"
_MIN_YEAR = 1900
_MAX_YEAR = 2200


@dataclass(frozen=True, slots=True)
class Address:
    """One address of one role in a message (a message_addresses row).

    Attributes:
        role: "from", "sender", "reply_to", "to", "cc" or "bcc".
        email: Normalized address, see `normalize_email`.
        display_name: Decoded display name with quotes removed and whitespace collapsed, or
            None when the address has none.
    """

    role: str
    email: str
    display_name: str | None


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """The row-ready content of one message header.

    Attributes:
        message_key: 32 hex chars identifying the email across inboxes and folders.
        message_id: Message-ID without angle brackets, or None.
        subject: Decoded, unfolded subject, or None.
        sent_at: Timezone-aware UTC Date, or None when missing, unparseable or implausible.
        date_header: Raw Date value, for the record.
        from_email: First From address, normalized.
        from_name: Display name of that address.
        in_reply_to: First msg-id of In-Reply-To, without brackets.
        references: msg-ids of References, oldest first, de-duplicated, the last 500 kept.
        addresses: Every address of every role, de-duplicated per (role, email), in header order.
        kind: "bounce", "auto_reply", "list", "bulk" or "human" (see `inboxsync.classify`).
        list_id: The id inside ``<...>`` of List-Id, lower-cased.
        auto_submitted: The Auto-Submitted value.
        content_type: Media type without parameters, lower-cased, e.g. "multipart/report".
    """

    message_key: str
    message_id: str | None
    subject: str | None
    sent_at: datetime | None
    date_header: str | None
    from_email: str | None
    from_name: str | None
    in_reply_to: str | None
    references: tuple[str, ...]
    addresses: tuple[Address, ...]
    kind: str
    list_id: str | None
    auto_submitted: str | None
    content_type: str | None


class QuarantineError(Exception):
    """Header cannot be turned into a message row; `reason` is a short stable code plus detail.

    Codes: ``empty_header``, ``no_header_fields``, ``no_identity``, ``parse_error``.

    Attributes:
        reason: ``"<code>: <detail>"``, safe to store in a text column.
        code: The code alone, for counting.
    """

    def __init__(self, code: str, detail: str) -> None:
        """Build the error.

        Args:
            code: One of the stable codes above.
            detail: Human-readable detail; sanitized and shortened here.
        """
        self.code = code
        self.reason = f"{code}: {_clean(detail, MAX_REASON_DETAIL) or '-'}"
        super().__init__(self.reason)


def parse_header(raw: bytes) -> ParsedMessage:
    """Parse the raw header fields of one message.

    Args:
        raw: Header bytes as fetched with ``BODY.PEEK[HEADER.FIELDS (...)]``; any line endings.

    Returns:
        The parsed message.

    Raises:
        QuarantineError: When the bytes cannot make a message row; never anything else.
    """
    try:
        return _parse(raw)
    except QuarantineError:
        raise
    except Exception as exc:
        # The contract: bad mail is quarantined with its reason, it never stops a run.
        raise QuarantineError("parse_error", f"{type(exc).__name__}: {exc}") from exc


def normalize_email(address: str) -> str | None:
    """Normalize an email address so that one mailbox always has one spelling.

    The whole address is lower-cased, local part included: RFC 5321 allows case-sensitive local
    parts, but every large provider treats them case-insensitively and CRM contacts must match
    however a correspondent typed the address. ``xn--`` domain labels are decoded to Unicode so
    that the punycode and the Unicode spelling of an IDN are one contact; bad punycode is kept
    as is. A trailing dot of the (fully qualified) domain is dropped.

    Args:
        address: An addr-spec such as ``"Alice@Example.COM"``.

    Returns:
        The normalized address (at most 320 chars), or None when it has no ``@``, an empty local
        part or domain, or contains whitespace or control characters.
    """
    if address.isascii() and address.isprintable() and " " not in address:
        # The common case: nothing to strip, reject or decode, so one lower() does it all.
        lowered = address.lower()
        local, at, domain = lowered.rpartition("@")
        if local and at and domain and not domain.endswith(".") and "xn--" not in domain:
            return lowered[:MAX_EMAIL]
    return _normalize_any_email(address)


def _normalize_any_email(address: str) -> str | None:
    """Do the work of `normalize_email` for any address; its fast path must agree with this.

    Args:
        address: An addr-spec.

    Returns:
        As `normalize_email`.
    """
    address = address.strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or _EMAIL_REJECT.search(address) or _has_surrogates(address):
        return None
    domain = domain.lower().rstrip(".")
    if not domain:
        return None
    if "xn--" in domain:
        domain = ".".join(_decode_idn_label(label) for label in domain.split("."))
    return f"{local.lower()}@{domain}"[:MAX_EMAIL]


def email_domain(email: str) -> str:
    """Return the domain of a normalized address.

    Args:
        email: A normalized address, as returned by `normalize_email`.

    Returns:
        The part after the last ``@``; "" when there is none.
    """
    _, at, domain = email.rpartition("@")
    return domain if at else ""


def header_fields_only(raw: bytes, fields: tuple[str, ...] = HEADER_FIELDS) -> bytes:
    """Keep only some fields of a raw header, as an IMAP ``HEADER.FIELDS`` fetch returns them.

    Stops at the first empty line (the end of the header), keeps continuation lines with their
    field, drops lines that are not fields, and ends lines with CRLF plus a final empty line, as
    IMAP servers do. Used by tests and benchmarks to feed whole messages through `parse_header`
    exactly as the sync does.

    Args:
        raw: A message or its header, any line endings.
        fields: Field names to keep, matched case-insensitively.

    Returns:
        The kept fields in their original order, CRLF-terminated, followed by CRLF.
    """
    wanted = frozenset(name.lower() for name in fields)
    kept = [line + b"\r\n" for line in _field_lines(raw, wanted)]
    kept.append(b"\r\n")
    return b"".join(kept)


def _parse(raw: bytes) -> ParsedMessage:
    """Do the work of `parse_header`, letting unexpected exceptions through.

    Args:
        raw: Raw header bytes.

    Returns:
        The parsed message.
    """
    if _FAST_PARSE is not None:
        fast = _FAST_PARSE(raw)
        if fast is not None:
            return _from_fast_path(fast)
    return _parse_general(raw)


def _parse_general(raw: bytes) -> ParsedMessage:
    """Do the work of `_parse` in Python, for any header: the reference of the C fast path.

    Args:
        raw: Raw header bytes.

    Returns:
        The parsed message.
    """
    if not raw or raw.isspace():
        raise QuarantineError("empty_header", "no bytes" if not raw else "only whitespace")
    # Field names lower-cased once: the first values, the address roles and classify read them.
    items = [(name.lower(), value) for name, value in _parse_fields(_bytes_to_text(raw))]
    raw_first = _first_values(items)
    if not raw_first:
        raise QuarantineError("no_header_fields", f"no 'Name: value' field in {len(raw)} bytes")
    first = {name: _unfold(value) for name, value in raw_first.items()}
    if not any(first.get(name, "").strip() for name in _IDENTITY_FIELDS):
        raise QuarantineError(
            "no_identity", "none of From, Sender, Message-ID, Date, Subject, To present"
        )
    message_id = _first_msg_id(first.get("message-id", ""))
    # Decoded before unfolding: a fold inside an encoded word must vanish, not become a space.
    subject = _clean(_unfold(_decode_words(raw_first.get("subject", ""))), MAX_SUBJECT)
    addresses = _addresses(
        [(role, value) for name, value in items if (role := ADDRESS_ROLES.get(name))]
    )
    sender = next((a for a in addresses if a.role == "from"), None)
    date_header = _clean(first.get("date", ""), MAX_SHORT_TEXT)
    return ParsedMessage(
        message_key=_message_key(message_id, raw),
        message_id=message_id,
        subject=subject,
        sent_at=parse_date(first.get("date", "")),
        date_header=date_header,
        from_email=sender.email if sender else None,
        from_name=sender.display_name if sender else None,
        in_reply_to=_first_msg_id(first.get("in-reply-to", "")),
        references=_references(first.get("references", "")),
        addresses=addresses,
        kind=classify_fields({**first, "subject": subject or ""}),
        list_id=_list_id(first.get("list-id", "")),
        auto_submitted=_clean(first.get("auto-submitted", ""), MAX_SHORT_TEXT),
        content_type=_content_type(first.get("content-type", "")),
    )


def _from_fast_path(fast: tuple) -> ParsedMessage:
    """Finish the C fast path's answer: the parts it leaves to the Python code, then the row.

    Args:
        fast: `inboxsync._cparse.parse`'s tuple (its source says what each item is).

    Returns:
        The parsed message, as `_parse`'s general code would give it.
    """
    (
        message_key,
        message_id,
        subject,
        subject_encoded,
        sent_at,
        date_header,
        in_reply_to,
        references,
        address_fields,
        kind,
        check_vacation,
        list_id,
        auto_submitted,
        content_type,
    ) = fast
    if subject_encoded:
        subject = _clean(_unfold(_decode_words(subject)), MAX_SUBJECT)
    if isinstance(sent_at, str):
        sent_at = parse_date(sent_at)
    if check_vacation and vacation_subject(subject or ""):
        kind = AUTO_REPLY
    addresses = _addresses(address_fields)
    sender = next((a for a in addresses if a.role == "from"), None)
    # ParsedMessage(...) with its fields in order, built in C (a frozen dataclass's __init__
    # costs more than the rest of this function).
    return _MESSAGE(
        message_key,
        message_id,
        subject,
        sent_at,
        date_header,
        sender.email if sender else None,
        sender.display_name if sender else None,
        in_reply_to,
        references,
        addresses,
        kind,
        list_id,
        auto_submitted,
        content_type,
    )


def _parse_fields(text: str) -> list[tuple[str, str]]:
    """Split header text into its fields, as the stdlib parser would.

    Args:
        text: Decoded header text.

    Returns:
        (name, raw value) pairs in header order, see `_split_fields`.
    """
    items = _split_fields(text)
    if items is None:
        items = _parse_fields_stdlib(text)
    return items


def _split_fields(text: str) -> list[tuple[str, str]] | None:
    """Split a header made only of well-formed fields, giving `_parse_fields_stdlib`'s answer.

    The fast path for the shape nearly every fetched header has: ``Name: value`` lines and their
    continuation lines, then an empty line or the end. Each value is what compat32 keeps: the
    text after the colon without its leading spaces and tabs, continuation lines with their
    line breaks (CRLF, LF or bare CR as written), without the final line break. Anything else
    (a ``From `` line, a continuation line first, ``:`` first, ``Name :``, a line that is not a
    field) returns None and goes to the stdlib parser, whose defects and repair decide.

    Args:
        text: Decoded header text.

    Returns:
        (name, raw value) pairs in header order, or None when the text is not of that shape.
    """
    field, header = _field_regexes_for(text)
    match = header.match(text)
    if match is None:
        return None
    return field.findall(text, 0, match.end())


def _field_regexes_for(text: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Pick the field regexes for the line breaks of a text.

    Args:
        text: Decoded header text.

    Returns:
        The CRLF-only regexes when every CR and LF of the text is in a CRLF, the LF-only ones
        when it has no CR, else the ones that read any line break.
    """
    carriage_returns = text.count("\r")
    if not carriage_returns:
        return _LF_FIELDS
    if text.count("\n") == carriage_returns == text.count("\r\n"):
        return _CRLF_FIELDS
    return _ANY_BREAK_FIELDS


def _parse_fields_stdlib(text: str) -> list[tuple[str, str]]:
    """Parse header text with the stdlib parser, retrying once on obsolete or broken syntax.

    The general path, for any text. The stdlib parser stops at the first line that is not a
    well-formed field, so one ``Subject :`` (obsolete space before the colon) or one stray line
    would hide every field after it. Only then is the text repaired and parsed again.

    Args:
        text: Decoded header text.

    Returns:
        (name, raw value) pairs in header order, as compat32's ``raw_items()``.
    """
    message = _PARSER.parsestr(text, headersonly=True)
    if any(isinstance(defect, MissingHeaderBodySeparatorDefect) for defect in message.defects):
        repaired = _PARSER.parsestr(_repair_header(text), headersonly=True)
        if len(repaired) > len(message):
            message = repaired
    # raw_items() skips compat32's per-access re-check for undecoded bytes: the text was decoded
    # before parsing, so values are plain str.
    return list(message.raw_items())


def _repair_header(text: str) -> str:
    """Rewrite a header so the stdlib parser reads all of it.

    Drops lines that are neither a field nor a continuation (an IMAP server would not return
    them for HEADER.FIELDS either) and removes whitespace before a field's colon.

    Args:
        text: Decoded header text.

    Returns:
        The repaired header, ending with an empty line.
    """
    kept: list[str] = []
    for line in _LINE_BREAK.split(text):
        if not line:
            break
        if line[0] in " \t":
            if kept:
                kept.append(line)
            continue
        match = _OBSOLETE_FIELD.match(line)
        if match:
            kept.append(f"{match[1]}:{line[match.end() :]}")
    kept.append("\n")
    return "\n".join(kept)


def _bytes_to_text(raw: bytes) -> str:
    """Decode raw header bytes: ASCII, else UTF-8, else each line as UTF-8 or latin-1.

    Decoding before parsing (instead of BytesParser's surrogateescape) gives real text for
    8-bit headers, which compat32 would otherwise hand back as opaque Header objects. Falling
    back line by line keeps valid UTF-8 fields intact next to a latin-1 one.

    Args:
        raw: Raw header bytes.

    Returns:
        The text.
    """
    if raw.isascii():
        return raw.decode("ascii")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return "".join(_decode_line(line) for line in raw.splitlines(keepends=True))


def _decode_line(line: bytes) -> str:
    """Decode one line as UTF-8 when valid, else latin-1 (which never fails).

    Args:
        line: Raw bytes.

    Returns:
        The text.
    """
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line.decode("latin-1")


def _first_values(items: list[tuple[str, str]]) -> dict[str, str]:
    """Map each field name to the raw value of its first occurrence.

    Args:
        items: `_parse_fields`' (name, raw value) pairs, names lower-cased.

    Returns:
        Field name to its first value (names in no particular order).
    """
    # Read from the end, so that the first occurrence of a name is the one written last.
    return dict(reversed(items))


def _unfold(value: str) -> str:
    """Unfold a header value: each line break and the whitespace around it become one space.

    A fold is a run of spaces, tabs and line breaks holding at least one line break (obsolete
    syntax even allows whitespace-only lines inside a fold); it reads as one space. The value is
    cut at each CR and LF and the pieces are stripped and joined, which gives the same text as
    the regex substitution ``[ \\t]*(?:[\\r\\n]+[ \\t]*)+`` -> ``" "`` at a fraction of its
    cost (that regex tries a match at every character of long References values).

    Args:
        value: A raw value, possibly folded.

    Returns:
        The value on one line.
    """
    if "\n" not in value and "\r" not in value:
        return value
    pieces = value.replace("\r", "\n").split("\n")
    last = pieces.pop().lstrip(" \t")
    # A piece of only spaces and tabs (or nothing, as inside CRLF) between two line breaks belongs
    # to the fold around it.
    inner = [piece for piece in (piece.strip(" \t") for piece in pieces[1:]) if piece]
    inner.append(last)
    return pieces[0].rstrip(" \t") + " " + " ".join(inner)


def _clean(value: str, limit: int) -> str | None:
    """Make text safe for a PostgreSQL text column: no controls but tab, stripped, bounded.

    Args:
        value: Unfolded text.
        limit: Maximum length in characters; longer text is truncated.

    Returns:
        The text, or None when nothing is left.
    """
    # isprintable() is False for every character the regex removes, and much cheaper.
    if not value.isprintable() and _UNSAFE_CHARS.search(value):
        value = _UNSAFE_CHARS.sub("", value)
    value = value.strip()
    return value[:limit].rstrip() or None


def _has_surrogates(value: str) -> bool:
    """Tell whether a string holds lone surrogates (text that cannot be encoded as UTF-8).

    Args:
        value: Any string.

    Returns:
        True when UTF-8 encoding would fail.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words, tolerating the ways real mail breaks the rules.

    Adjacent encoded words in one charset are joined before decoding (mailers split multi-byte
    characters across words), whitespace between encoded words is dropped as RFC 2047 says,
    unknown charsets fall back to UTF-8 then latin-1, and undecodable payloads stay as text.

    Args:
        value: An unfolded header value.

    Returns:
        The decoded text.
    """
    if "=?" not in value:
        return value
    parts: list[str] = []
    pending = bytearray()
    pending_codec = ""
    position = 0
    after_word = False

    def flush() -> None:
        if pending:
            parts.append(_decode_bytes(bytes(pending), pending_codec))
            pending.clear()

    for match in _ENCODED_WORD.finditer(value):
        gap = value[position : match.start()]
        position = match.end()
        codec = _codec_for(match[1].split("*", 1)[0].lower())  # drop an RFC 2231 language tag
        payload = _decode_payload(match[2], match[3], codec)
        if payload is None:
            # Undecodable: the word stays as it was written.
            flush()
            parts.append(gap + match[0])
            after_word = False
            continue
        adjacent = after_word and not gap.strip()
        if not adjacent or codec != pending_codec:
            flush()
        if not adjacent:
            parts.append(gap)
        pending.extend(payload)
        pending_codec = codec
        after_word = True
    flush()
    parts.append(value[position:])
    return "".join(parts)


@functools.lru_cache(maxsize=256)
def _codec_for(charset: str) -> str:
    """Map a declared charset to a Python text codec.

    Args:
        charset: The charset of an encoded word, lower-cased.

    Returns:
        The codec name, or "" when the charset is unknown or not a text encoding.
    """
    codec = _CHARSET_SUPERSETS.get(charset, charset)
    # Python's *escape codecs are not charsets: they would interpret backslashes.
    if "escape" in codec:
        return ""
    try:
        b"".decode(codec)  # raises for unknown names and for bytes-to-bytes codecs (base64, zlib)
    except (LookupError, ValueError):
        return ""
    return codec


def _decode_payload(encoding: str, text: str, codec: str) -> bytes | None:
    """Decode the payload of one encoded word to bytes in its charset.

    Args:
        encoding: "B" or "Q" (either case).
        text: The encoded text.
        codec: The word's codec from `_codec_for` ("" when unknown).

    Returns:
        The bytes, or None when the payload is not valid for its encoding.
    """
    try:
        if encoding in "bB":
            data = "".join(text.split()).encode("ascii", "ignore")
            return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
        text = _FOLD_IN_WORD.sub("", text)
        return binascii.a2b_qp(_text_to_bytes(text, codec), header=True)
    except (binascii.Error, ValueError):
        return None


def _text_to_bytes(text: str, codec: str) -> bytes:
    """Turn Q-encoded text back into bytes of its charset.

    Some mailers put raw 8-bit characters inside encoded words; they were already decoded with
    the rest of the line, so they are re-encoded in the word's own charset to come out unchanged.

    Args:
        text: The Q-encoded text.
        codec: The word's codec ("" when unknown).

    Returns:
        The bytes.
    """
    if text.isascii():
        return text.encode("ascii")
    try:
        return text.encode(codec or "utf-8")
    except (LookupError, ValueError):
        return text.encode("utf-8", "replace")


def _decode_bytes(data: bytes, codec: str) -> str:
    """Decode encoded-word bytes, falling back to UTF-8 then latin-1 for unknown charsets.

    Args:
        data: The joined payloads of adjacent encoded words.
        codec: Their codec ("" when unknown).

    Returns:
        The text; bytes invalid in the charset become U+FFFD.
    """
    if codec:
        try:
            return data.decode(codec, "replace")
        except (LookupError, ValueError, TypeError):
            pass  # codecs such as idna reject the "replace" error handler
    return _decode_line(data)


def parse_date(value: str) -> datetime | None:
    """Parse a Date value into UTC, refusing dates that cannot be true.

    Args:
        value: The raw Date value.

    Returns:
        A timezone-aware UTC datetime, or None when the value is missing, unparseable or its
        year is outside 1900..2200 (real archives hold years 100-104 and literal
        ``$(date -R)``).
    """
    if not value.strip():
        return None
    parts = _simple_date(value)
    try:
        if parts is None:
            parts = parsedate_tz(_strip_comments(value))
        if parts is None:
            return None
        local = datetime(*parts[:6], tzinfo=UTC)
        # A missing zone or "-0000" means UTC per RFC 5322; offsets beyond +-24h are nonsense.
        offset = parts[9] or 0
        if abs(offset) >= 86400:
            return None
        sent_at = local - timedelta(seconds=offset) if offset else local
    except (ValueError, OverflowError, TypeError, IndexError):
        return None
    if not _MIN_YEAR <= sent_at.year <= _MAX_YEAR:
        return None
    return sent_at


def _simple_date(value: str) -> tuple[int, ...] | None:
    """Read a Date in the common RFC 5322 shape, giving ``parsedate_tz``'s answer.

    The fast path for ``[Day,] D Mon YYYY HH:MM:SS +ZZZZ [(comment)]``, which nearly all mail
    uses; anything else (zone names, two-digit or tiny years, missing seconds or zone, full
    month names, nested comments) returns None for ``parsedate_tz``.

    Args:
        value: The raw Date value.

    Returns:
        ``parsedate_tz``'s 10-tuple (the zone offset in seconds last), or None.
    """
    match = _SIMPLE_DATE.fullmatch(value)
    if match is None:
        return None
    day, month_name, year, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
    month = _MONTHS.get(month_name.lower())
    # parsedate_tz turns years below 100 into 19xx or 20xx: left to it.
    if month is None or int(year) < 100:
        return None
    offset = int(zone_hours) * 3600 + int(zone_minutes) * 60
    if sign == "-":
        offset = -offset
    return (int(year), month, int(day), int(hour), int(minute), int(second), 0, 1, -1, offset)


def _strip_comments(value: str) -> str:
    """Remove RFC 5322 comments, nested ones included (``parsedate_tz`` stumbles on them).

    Args:
        value: A structured header value.

    Returns:
        The value with each comment replaced by a space.
    """
    if "(" not in value:
        return value
    # One pass with a stack of open parentheses, not a regex repeated per nesting level: that
    # was quadratic, and a Date of 500,000 nested parentheses took hours.
    opened: list[int] = []
    spans: list[tuple[int, int]] = []  # every balanced "( ... )", inner ones included
    for position, char in enumerate(value):
        if char == "(":
            opened.append(position)
        elif char == ")" and opened:
            spans.append((opened.pop(), position + 1))
    parts: list[str] = []
    end = 0
    for start, stop in sorted(spans):
        if start >= end:  # an outermost comment (nested ones lie inside the previous span)
            parts.append(value[end:start] + " ")
            end = stop
    parts.append(value[end:])
    return "".join(parts)


def _message_key(message_id: str | None, raw: bytes) -> str:
    """Derive the key that identifies one email across inboxes and folders.

    Args:
        message_id: The normalized Message-ID, or None.
        raw: The raw header, used when there is no Message-ID.

    Returns:
        32 lowercase hex chars of a SHA-256.
    """
    if message_id:
        return key_of_message_id(message_id)
    return hashlib.sha256(_SHA_PREFIX_HDR + _canonical_header(raw)).hexdigest()[:32]


def key_of_message_id(message_id: str) -> str:
    """The message key of the message whose Message-ID is ``message_id``, held or not.

    Args:
        message_id: A normalized Message-ID (as `ParsedMessage.message_id` and its references).

    Returns:
        32 lowercase hex chars of a SHA-256.
    """
    return hashlib.sha256(_SHA_PREFIX_MID + message_id.encode("utf-8")).hexdigest()[:32]


def _canonical_header(raw: bytes) -> bytes:
    """Return the header bytes that identify a message without Message-ID.

    Only `HEADER_FIELDS` count (so a full header and a HEADER.FIELDS fetch agree), minus the
    per-copy fields, with LF line endings (so CRLF and LF stores agree).

    Args:
        raw: Raw header bytes.

    Returns:
        The canonical bytes.
    """
    return b"".join(line + b"\n" for line in _field_lines(raw, _KEY_FIELDS))


def _field_lines(raw: bytes, wanted: frozenset[str]) -> list[bytes]:
    """Return the lines (without line ends) of the wanted fields of a raw header.

    Args:
        raw: Raw bytes; the header ends at the first empty line.
        wanted: Lower-cased field names to keep.

    Returns:
        The lines of the kept fields, continuation lines included, in order.
    """
    kept: list[bytes] = []
    keeping = False
    for line in raw.splitlines():
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            if keeping:
                kept.append(line)
            continue
        name, colon, _ = line.partition(b":")
        keeping = bool(colon) and name.strip().decode("latin-1").lower() in wanted
        if keeping:
            kept.append(line)
    return kept


def _msg_ids(value: str) -> list[str]:
    """Extract msg-ids from a References or In-Reply-To value, without brackets.

    Args:
        value: An unfolded value.

    Returns:
        The ids in order; empty ids dropped, whitespace inside an id removed. When the value has
        no complete ``<...>``, tokens containing ``@`` are taken instead (some mailers omit the
        brackets or cut the last one off).
    """
    ids = _BRACKETED_ID.findall(value)
    if not ids:
        ids = [token.strip("<>") for token in _ID_SEPARATORS.split(value) if "@" in token]
    joined = "".join(ids)
    if joined.isprintable() and " " not in joined:
        # No whitespace to remove, and nothing for `_clean` to do but the length limit.
        return [msg_id[:MAX_MESSAGE_ID] for msg_id in ids if msg_id]
    cleaned = (_clean("".join(msg_id.split()), MAX_MESSAGE_ID) for msg_id in ids)
    return [msg_id for msg_id in cleaned if msg_id]


def _first_msg_id(value: str) -> str | None:
    """Return the first msg-id of a Message-ID or In-Reply-To value.

    Args:
        value: An unfolded value.

    Returns:
        The id without brackets, or None.
    """
    ids = _msg_ids(value)
    if ids:
        return ids[0]
    if "<" in value:
        return None
    # A bare id without brackets or "@" (seen from some gateways) is still an id if it is one token.
    token = value.strip()
    if token and len(token.split()) == 1:
        return _clean(token, MAX_MESSAGE_ID)
    return None


def _references(value: str) -> tuple[str, ...]:
    """Return the References chain: de-duplicated, the nearest 500 ancestors, oldest first.

    Args:
        value: The unfolded References value.

    Returns:
        The msg-ids.
    """
    if not value:
        return ()
    unique = list(dict.fromkeys(_msg_ids(value)))
    return tuple(unique[-MAX_REFERENCES:])


def _addresses(fields: list[tuple[str, str]]) -> tuple[Address, ...]:
    """Return every address of every role, de-duplicated per (role, email), in header order.

    ``getaddresses`` runs on the raw (encoded) values and each display name is decoded after, so
    a comma inside an encoded name cannot split an address in two.

    Args:
        fields: The address fields' (role, raw value) pairs in header order (`ADDRESS_ROLES`).

    Returns:
        The addresses.
    """
    if len({role for role, _ in fields}) == len(fields):
        # The usual message: each role in one field, whose own duplicates its parse dropped.
        return tuple(address for role, value in fields for address in _role_addresses(role, value))
    found: list[Address] = []
    seen: set[tuple[str, str]] = set()
    for role, value in fields:
        for address in _role_addresses(role, value):
            if (role, address.email) not in seen:
                seen.add((role, address.email))
                found.append(address)
    return tuple(found)


@functools.lru_cache(maxsize=ADDRESS_CACHE_SIZE)
def _role_addresses(role: str, value: str) -> tuple[Address, ...]:
    """The addresses of one address field's raw value in one role, each email once (the first).

    Cached as `_address_list` is (the same From and To lines recur from message to message):
    an Address is immutable, so messages share them.

    Args:
        role: The role the field gives its addresses.
        value: The field's raw (folded, encoded) value.

    Returns:
        The addresses in order.
    """
    found: dict[str, Address] = {}
    for email, display_name in _address_list(value):
        if email not in found:
            found[email] = Address(role, email, display_name)
    return tuple(found.values())


@functools.lru_cache(maxsize=ADDRESS_CACHE_SIZE)
def _address_list(value: str) -> tuple[tuple[str, str | None], ...]:
    """The (email, display name) pairs of one raw address-list value, in order.

    Cached: the same values recur from message to message (a list's address, a colleague's
    From line): 86% of the 33,125 address fields of ``../shared/corpora/lists`` repeat one seen
    before. Pure, so a cached answer is the answer; the cache is bounded, so memory stays flat.

    Args:
        value: A raw (folded, encoded) value of an address field.

    Returns:
        The addresses that normalize, with their decoded display names (duplicates kept).
    """
    pairs = []
    for display_name, addr in _split_addresses(_unfold(value)):
        email = normalize_email(addr)
        if email is not None:
            pairs.append((email, _display_name(display_name)))
    return tuple(pairs)


def _split_addresses(value: str) -> list[tuple[str, str]]:
    """Split an address-list value into (display name, addr-spec) pairs, like ``getaddresses``.

    Most values are plain ``Name <a@b>``, ``"Name" <a@b>`` or ``a@b`` lists; a regex reads those
    several times faster than ``getaddresses`` with the same result (a unit test compares both
    on a real archive). Anything else (comments, groups, escapes, routes, obsolete syntax) goes
    to ``getaddresses``.

    Args:
        value: An unfolded address-list value.

    Returns:
        The pairs in order; names are not yet decoded.
    """
    pairs: list[tuple[str, str]] = []
    position = 0
    end = len(value)
    while position < end:
        match = _SIMPLE_ADDRESS.match(value, position)
        if match is None:
            return getaddresses([value])
        quoted, phrase, angle, bare = match.groups()
        if bare is not None:
            pairs.append(("", bare))
        else:
            pairs.append((quoted if quoted is not None else " ".join(phrase.split()), angle))
        position = match.end()
    return pairs


def _display_name(value: str) -> str | None:
    """Decode and tidy a display name.

    Args:
        value: The name as ``getaddresses`` returns it (quotes already removed).

    Returns:
        The decoded name without surrounding quotes and with whitespace collapsed, or None.
    """
    if not value:
        return None
    name = " ".join(_decode_words(value).split())
    # Encoded words may carry their own quotes: '=?utf-8?q?=22Doe=22?=' decodes to '"Doe"'.
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "\"'":
        name = name[1:-1].strip()
    return _clean(name, MAX_DISPLAY_NAME)


def _decode_idn_label(label: str) -> str:
    """Decode one ``xn--`` domain label to Unicode, keeping it as is when it is not valid.

    Args:
        label: A lower-cased label.

    Returns:
        The Unicode label, or the label unchanged.
    """
    if not label.startswith("xn--"):
        return label
    try:
        decoded = label[4:].encode("ascii").decode("punycode").lower()
    except (UnicodeError, ValueError, OverflowError):
        return label
    # A real A-label decodes to non-ASCII; anything else is not punycode worth trusting.
    if decoded.isascii() or _EMAIL_REJECT.search(decoded) or _has_surrogates(decoded):
        return label
    return decoded


def _list_id(value: str) -> str | None:
    """Return the list identifier of a List-Id value (RFC 2919), lower-cased.

    Args:
        value: e.g. ``"Util-Linux <util-linux.vger.kernel.org>"``.

    Returns:
        ``"util-linux.vger.kernel.org"``; for a value without brackets, its last word.
    """
    match = _BRACKETED_ID.search(value)
    list_id = match[1] if match else (value.split() or [""])[-1]
    return _clean("".join(list_id.split()).lower(), MAX_SHORT_TEXT)


def _content_type(value: str) -> str | None:
    """Return the media type of a Content-Type value, lower-cased, without parameters.

    Args:
        value: e.g. ``"multipart/report; report-type=delivery-status"``.

    Returns:
        ``"multipart/report"``, or None when the value has no type/subtype.
    """
    media_type = "".join(value.split(";", 1)[0].split()).lower()
    if "/" not in media_type:
        return None
    return _clean(media_type, MAX_SHORT_TEXT)


CPARSE_SOURCE = Path(__file__).with_name("_cparse.c")


def built_fast_path(source: Path = CPARSE_SOURCE) -> types.ModuleType | None:
    """The C fast path's module when it is built from the source beside it, whatever
    ``INBOXSYNC_PARSE`` says.

    Args:
        source: The C source the module must have been built from (checked when it exists: an
            installed package without its sources trusts its binary).

    Returns:
        `inboxsync._cparse`; None when it is not built (no compiler at install) or was built from
        another source (a stale binary: ``make install`` rebuilds it).
    """
    return native.built("_cparse", source)


def _load_fast_path(
    source: Path = CPARSE_SOURCE,
) -> collections.abc.Callable[[bytes], tuple | None] | None:
    """The C fast path's `parse`, when it is built (`built_fast_path`) and not turned off.

    Args:
        source: As for `built_fast_path`.

    Returns:
        `inboxsync._cparse.parse`, configured with this module's limits; None when the module is
        not built from ``source`` or ``INBOXSYNC_PARSE=python`` asks for the Python path.
    """
    if os.environ.get("INBOXSYNC_PARSE", "auto") == "python":
        return None
    _cparse = built_fast_path(source)
    if _cparse is None:
        return None
    _cparse.configure(
        max_subject=MAX_SUBJECT,
        max_short_text=MAX_SHORT_TEXT,
        max_message_id=MAX_MESSAGE_ID,
        max_references=MAX_REFERENCES,
        message_type=ParsedMessage,
    )
    return _cparse.parse


_FAST_PARSE = _load_fast_path()
#: The C fast path's module when the parse uses it (`inboxsync.load` takes its COPY lines from
#: it too), else None.
FAST_PATH: types.ModuleType | None = None
if _FAST_PARSE is not None:
    from inboxsync import _cparse
    from inboxsync._cparse import message as _MESSAGE

    FAST_PATH = _cparse
