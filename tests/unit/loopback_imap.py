"""A hand-written IMAP server on loopback, served from a thread, and a session logged into it."""

from __future__ import annotations

import contextlib
import socketserver
import threading
from collections.abc import Iterator

from inboxsync.imap import ImapSession, ImapSettings


@contextlib.contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[None]:
    """Serve ``server`` on a daemon thread for the block, then shut it down."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def session(server: socketserver.TCPServer, *, timeout: float = 10) -> Iterator[ImapSession]:
    """An `ImapSession` logged into ``server`` (plain text, loopback) with INBOX examined."""
    cfg = ImapSettings(
        host="127.0.0.1",
        port=server.server_address[1],
        username="ana@team.example",
        password="pw",
        security="none",
        timeout=timeout,
    )
    with ImapSession(cfg) as imap:
        imap.examine("INBOX")
        yield imap
