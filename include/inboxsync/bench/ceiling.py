"""The raw ceiling: plain imaplib FETCH of the sync's header fields, in UID batches, no parsing.

It asks the server for exactly what the sync asks for (the ``HEADER_FIELDS`` of
:mod:`inboxsync.parse` with FLAGS, INTERNALDATE and RFC822.SIZE), over the same TLS port and in
batches of the same size, and only counts the messages that come back: what is left between the
sync and this figure is the client's own work.
"""

from __future__ import annotations

import contextlib
import imaplib
import ssl
import time
from dataclasses import dataclass

from inboxsync.imap import allow_long_lines
from inboxsync.parse import HEADER_FIELDS

FETCH_ITEMS = "(BODY.PEEK[HEADER.FIELDS ({})] FLAGS INTERNALDATE RFC822.SIZE)".format(
    " ".join(f.upper() for f in HEADER_FIELDS)
)


@dataclass(frozen=True)
class CeilingResult:
    """One pass over a folder."""

    messages: int
    header_bytes: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


def raw_fetch(
    host: str,
    port: int,
    username: str,
    password: str,
    *,
    ca_file: str,
    folder: str = "INBOX",
    batch_size: int = 1000,
) -> CeilingResult:
    """Fetch the header fields of every message in ``folder`` with imaplib, without parsing.

    Args:
        host: IMAP host.
        port: Implicit-TLS port (the sync's own transport).
        username: Login.
        password: Password.
        ca_file: CA that signed the server's certificate.
        folder: The folder to read (opened with EXAMINE).
        batch_size: UIDs per FETCH command.

    Returns:
        Messages and header bytes received, and the seconds from the first FETCH to the last.
    """
    allow_long_lines()  # the SEARCH ALL answer of a large folder is one long line
    ctx = ssl.create_default_context(cafile=ca_file)
    client = imaplib.IMAP4_SSL(host, port, ssl_context=ctx)
    try:
        client.login(username, password)
        client.select(f'"{folder}"', readonly=True)
        typ, data = client.uid("SEARCH", "ALL")
        uids = sorted(int(u) for u in data[0].split()) if typ == "OK" and data[0] else []
        messages = header_bytes = 0
        started = time.perf_counter()
        for start in range(0, len(uids), batch_size):
            chunk = uids[start : start + batch_size]
            # Consecutive UIDs of the SEARCH answer: the range holds exactly these messages.
            typ, data = client.uid("FETCH", f"{chunk[0]}:{chunk[-1]}", FETCH_ITEMS)
            if typ != "OK":
                raise RuntimeError(f"UID FETCH failed: {data!r}")
            for item in data:
                if isinstance(item, tuple):
                    messages += 1
                    header_bytes += len(item[1])
        seconds = time.perf_counter() - started
    finally:
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            client.logout()
    return CeilingResult(messages, header_bytes, seconds)
