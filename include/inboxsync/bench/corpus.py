"""Benchmark mail: the real list archives, repeated with rewritten ids to reach N messages.

Repetition ``r`` of the archives is the archives with every msg-id in ``Message-ID``,
``In-Reply-To`` and ``References`` prefixed by ``r<r>.``: the same function maps an id wherever it
appears, so each repetition's threads are exactly the archives' threads, and the prefix (applied
to repetition 0 too) makes the mapping injective, so no two repetitions share an id. Nothing else
in a message changes.

Everything streams: the gzipped mbox files are read again for each repetition, so memory holds one
message at a time, whatever N is.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

#: Header fields whose msg-ids are rewritten (lowercase).
ID_FIELDS = frozenset({b"message-id", b"in-reply-to", b"references"})

_BRACKETED = re.compile(rb"<(\s*)([^<>\s][^<>]*)>")
# Bare ids (no angle brackets anywhere in the value): tokens with an "@", as the parser reads them.
_BARE = re.compile(rb"[^\s,;<>]+@[^\s,;<>]+")
_QUOTED_FROM = re.compile(rb"^>(>*From )", re.MULTILINE)
_CHUNK = 1 << 22


def corpus_paths(directory: Path) -> list[Path]:
    """The ``*.mbox.gz`` archives in ``directory`` by name (a fixed order keeps runs comparable)."""
    paths = sorted(directory.glob("*.mbox.gz"))
    if not paths:
        raise FileNotFoundError(f"no *.mbox.gz archives in {directory}")
    return paths


def read_mbox(path: Path) -> Iterator[bytes]:
    """Stream the messages of a (gzipped) mboxrd file, one at a time.

    A line starting with ``From `` starts a message and is not part of it; ``>From `` quoting is
    undone one level (mboxrd); the blank line that precedes each separator is dropped.

    Args:
        path: An ``.mbox`` or ``.mbox.gz`` file.

    Yields:
        Each message's bytes, as it would be delivered.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        pending = b""
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            pending += chunk
            start = 0
            while (end := pending.find(b"\nFrom ", start)) >= 0:
                yield from _message(pending[start : end + 1])
                start = end + 1
            pending = pending[start:]
        yield from _message(pending)


def _message(text: bytes) -> Iterator[bytes]:
    """The message in ``text`` (its ``From `` line first), or nothing for text before any."""
    if not text.startswith(b"From "):
        return
    newline = text.find(b"\n")
    body = text[newline + 1 :] if newline >= 0 else b""
    if body.endswith(b"\n\n"):
        body = body[:-1]
    elif body.endswith(b"\n\r\n"):
        body = body[:-2]
    yield _QUOTED_FROM.sub(rb"\1", body)


def rewrite_id(msg_id: bytes, repetition: int) -> bytes:
    """The id of ``msg_id`` (without brackets) in repetition ``repetition``."""
    return b"r%d.%s" % (repetition, msg_id)


def rewrite_ids(raw: bytes, repetition: int) -> bytes:
    """Rewrite the msg-ids of a message's Message-ID, In-Reply-To and References fields.

    Only the header section is touched (up to the first empty line); folded fields are rewritten
    whole, so an id split over two lines is still one id. Bracketed ids keep their brackets and
    whitespace; a value without any ``<`` has its ``@`` tokens rewritten instead.

    Args:
        raw: The message.
        repetition: Which repetition of the archives this copy belongs to.

    Returns:
        The message with its ids rewritten.
    """
    end = _header_end(raw)
    header, rest = raw[:end], raw[end:]
    out: list[bytes] = []
    for field in _fields(header):
        name, colon, value = field.partition(b":")
        if colon and name.strip().lower() in ID_FIELDS:
            field = name + colon + _rewrite_value(value, repetition)
        out.append(field)
    return b"".join(out) + rest


def _rewrite_value(value: bytes, repetition: int) -> bytes:
    if b"<" in value:
        return _BRACKETED.sub(
            lambda m: b"<" + m.group(1) + rewrite_id(m.group(2), repetition) + b">", value
        )
    return _BARE.sub(lambda m: rewrite_id(m.group(), repetition), value)


def _header_end(raw: bytes) -> int:
    """Offset of the empty line that ends the header section (len(raw) when there is none)."""
    if raw.startswith((b"\n", b"\r\n")):
        return 0
    found = [i + 1 for i in (raw.find(b"\n\n"), raw.find(b"\n\r\n")) if i >= 0]
    return min(found) if found else len(raw)


def _fields(header: bytes) -> Iterator[bytes]:
    """Split a header section into fields, each with its continuation lines and line ends."""
    field: list[bytes] = []
    for line in header.splitlines(keepends=True):
        if field and not line[:1].isspace():
            yield b"".join(field)
            field = []
        field.append(line)
    if field:
        yield b"".join(field)


def bench_messages(paths: Iterable[Path], n: int) -> Iterator[bytes]:
    """Exactly ``n`` messages: the archives in order, repeated with rewritten ids.

    Args:
        paths: The mbox archives (see :func:`corpus_paths`).
        n: How many messages to yield.

    Yields:
        Message ``k`` is message ``k mod C`` of the archives (C messages in all) with its ids
        rewritten for repetition ``k // C``.
    """
    paths = list(paths)
    count = 0
    repetition = 0
    while count < n:
        before = count
        for path in paths:
            for raw in read_mbox(path):
                if count >= n:
                    return
                yield rewrite_ids(raw, repetition)
                count += 1
        if count == before:
            raise ValueError("the archives hold no messages")
        repetition += 1
