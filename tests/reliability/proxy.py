"""A TCP proxy on loopback that can cut an IMAP connection in the middle of a FETCH response.

The sync talks plain IMAP to the proxy, which forwards to Dovecot. Armed with an offset, the
proxy counts the bytes the server sends in answer to header FETCH commands (from the command to
its tagged completion) and, when the count reaches the offset, closes both sides at once: the
client sees the connection drop part-way through a response, as it would on a flaky network.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from contextlib import suppress

_FETCH_COMMAND = re.compile(rb"^(\S+) UID FETCH \S+ \(BODY\.PEEK\[HEADER\.FIELDS", re.MULTILINE)


class CuttingProxy:
    """Forward 127.0.0.1:<port> to ``upstream``; optionally cut one connection mid-FETCH."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._cut_at: int | None = None
        self.cuts = 0
        self.fetch_bytes = 0  # FETCH response bytes seen since the last reset
        self.delay = 0.0  # seconds to hold each server chunk: a slow link
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, offset: int) -> None:
        """Cut the next connection once ``offset`` FETCH-response bytes have gone through."""
        with self._lock:
            self._cut_at = offset
            self.fetch_bytes = 0

    def disarm(self) -> None:
        with self._lock:
            self._cut_at = None
            self.fetch_bytes = 0

    def close(self) -> None:
        with suppress(OSError):
            self._listener.close()

    # -- plumbing -------------------------------------------------------------------------------

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            _Connection(self, client, server).start()

    def _count(self, nbytes: int) -> int | None:
        """Add FETCH-response bytes; where among them to cut when the armed offset is reached."""
        with self._lock:
            before = self.fetch_bytes
            self.fetch_bytes += nbytes
            if self._cut_at is not None and before < self._cut_at <= self.fetch_bytes:
                position = self._cut_at - before
                self._cut_at = None  # one cut per arming
                self.cuts += 1
                return position
            return None


class _Connection:
    def __init__(self, proxy: CuttingProxy, client: socket.socket, server: socket.socket) -> None:
        self.proxy, self.client, self.server = proxy, client, server
        self.fetch_tags: list[bytes] = []  # header FETCH commands awaiting their completion
        self.tail = b""  # the end of the last server chunk, to find a completion split in two

    def start(self) -> None:
        threading.Thread(target=self._upstream, daemon=True).start()
        threading.Thread(target=self._downstream, daemon=True).start()

    def _close(self) -> None:
        for sock in (self.client, self.server):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with suppress(OSError):
                sock.close()

    def _upstream(self) -> None:
        try:
            while data := self.client.recv(65536):
                self.fetch_tags.extend(m.group(1) for m in _FETCH_COMMAND.finditer(data))
                self.server.sendall(data)
        except OSError:
            pass
        self._close()

    def _downstream(self) -> None:
        try:
            while data := self.server.recv(65536):
                if self.proxy.delay:
                    time.sleep(self.proxy.delay)
                if self.fetch_tags:
                    cut = self._cut_point(data)
                    if cut is not None:
                        self.client.sendall(data[:cut])
                        break
                self.client.sendall(data)
        except OSError:
            pass
        self._close()

    def _cut_point(self, data: bytes) -> int | None:
        """Where in ``data`` to cut, if the armed offset falls inside this FETCH response."""
        window = self.tail + data
        done = re.search(rb"\r\n" + re.escape(self.fetch_tags[0]) + rb" (OK|NO|BAD)", window)
        counted = len(data) if done is None else max(0, done.start() - len(self.tail))
        self.tail = window[-64:]
        if done is not None:
            self.fetch_tags.pop(0)
        return self.proxy._count(counted)
