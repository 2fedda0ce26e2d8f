"""A process-wide setting changed while any sync (or writer) of the process runs.

Syncs of one process may overlap (two in threads): the first changes the setting, and the
value of before the first comes back when the last ends, whatever their order. The garbage
collector's thresholds (`inboxsync.collector`) and the GIL's switch interval
(`inboxsync.writer`) are such settings.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class ProcessSetting(Generic[T]):
    """A setting read and written through two functions, changed while it has users."""

    def __init__(self, read: Callable[[], T], write: Callable[[T], None]) -> None:
        self._read = read
        self._write = write
        self._lock = threading.Lock()
        self._users = 0
        self._saved: T | None = None  # the value before the first user

    def acquire(self, change: Callable[[T], T]) -> None:
        """Count a user; the first one writes ``change`` of the current value."""
        with self._lock:
            if self._users == 0:
                self._saved = self._read()
                self._write(change(self._saved))
            self._users += 1

    def release(self) -> None:
        """Uncount a user; the last one writes back the value of before the first."""
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._saved is not None:
                self._write(self._saved)
                self._saved = None

    @contextlib.contextmanager
    def changed(self, change: Callable[[T], T]) -> Iterator[None]:
        """`acquire` for the block, `release` after it (also when it raises)."""
        self.acquire(change)
        try:
            yield
        finally:
            self.release()
