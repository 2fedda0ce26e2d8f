"""PostgreSQL's binary COPY format, for the few column types the load sends that way.

A field is its length (int32, -1 for NULL) followed by its bytes in the type's binary
representation (the type's ``send`` function; PostgreSQL's documentation, "COPY", "Binary
Format"). The load sends message copies this way (`inboxsync.load`): their raw headers go in as
they are, where COPY's text format doubles them into hex and PostgreSQL decodes them again.

Text is encoded as UTF-8 and the connection receiving it must use UTF-8 as its client encoding
(`inboxsync.load._write_copies` sees to it); NUL cannot be stored in text and is dropped, as the
text format's writer drops it.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

#: Signature, flags (no OIDs), header extension length (none).
HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
#: A field count of -1 ends the data.
TRAILER = struct.pack(">h", -1)
NULL = struct.pack(">i", -1)

_INT4 = struct.Struct(">ii")  # length 4, value
_INT8 = struct.Struct(">iq")  # length 8, value
_LENGTH = struct.Struct(">i")
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # PostgreSQL's timestamp epoch
_MICROSECOND = timedelta(microseconds=1)
_TEXT_OID = 25


def field_count(n: int) -> bytes:
    """The start of a row of ``n`` fields."""
    return struct.pack(">h", n)


def int4(value: int | None) -> bytes:
    return NULL if value is None else _INT4.pack(4, value)


def int8(value: int | None) -> bytes:
    return NULL if value is None else _INT8.pack(8, value)


def text(value: str | None) -> bytes:
    if value is None:
        return NULL
    data = value.encode()
    if b"\x00" in data:
        data = data.replace(b"\x00", b"")
    return _LENGTH.pack(len(data)) + data


def bytea(value: bytes | None) -> bytes:
    return NULL if value is None else _LENGTH.pack(len(value)) + value


def timestamptz(value: datetime | None) -> bytes:
    """Microseconds since 2000-01-01 UTC; a naive datetime is taken as UTC."""
    if value is None:
        return NULL
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return _INT8.pack(8, (value - _EPOCH) // _MICROSECOND)


def numeric(value: int | None) -> bytes:
    """A non-negative integer as numeric: base-10000 digits, most significant first."""
    if value is None:
        return NULL
    if value < 0:
        raise ValueError(f"numeric() takes non-negative integers, not {value}")
    digits: list[int] = []
    while value:
        value, digit = divmod(value, 10000)
        digits.append(digit)
    weight = len(digits) - 1  # of the most significant digit, in powers of 10000
    while digits and digits[0] == 0:  # trailing zero digits are implied by the weight
        digits.pop(0)
    digits.reverse()
    body = struct.pack(f">hhHh{len(digits)}h", len(digits), weight if digits else 0, 0, 0, *digits)
    return _LENGTH.pack(len(body)) + body


def text_array(values: tuple[str, ...] | list[str] | None) -> bytes:
    """A one-dimensional text[] (an empty array has no dimensions)."""
    if values is None:
        return NULL
    if not values:
        body = struct.pack(">iii", 0, 0, _TEXT_OID)
    else:
        # dimensions, has-nulls, element type, then length and lower bound of the dimension
        body = struct.pack(">iiiii", 1, 0, _TEXT_OID, len(values), 1) + b"".join(
            [_element(v) for v in values]
        )
    return _LENGTH.pack(len(body)) + body


def _element(value: str) -> bytes:
    if type(value) is not str:  # the array is declared without NULLs
        raise TypeError(f"text[] elements must be str, not {type(value).__name__}")
    return text(value)
