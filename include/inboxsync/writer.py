"""The warehouse writer of one sync run: commits batches on a thread of its own.

A sync run is two kinds of work: fetching and parsing (Python, on the IMAP socket) and merging
into PostgreSQL (mostly the server's CPU). Done one after the other, each waits for the other;
`Writer` lets them overlap: the run's thread hands over each staged batch and goes on fetching
the next while this thread writes it, on its own connection, in its own transaction.

Order and the invariants stay as they were: jobs run one at a time in the order they were
submitted, each batch still commits with its checkpoint in one transaction, and at most
``depth`` jobs wait (memory stays bounded; the fetching thread waits when the writer is behind).
A job that fails stops the writer: the jobs queued after it are dropped (nothing after a failed
checkpoint may commit) and its exception is raised in the run's thread by the next `submit` or
`flush`. Leaving the ``with`` block waits for every queued job, also when the block raises, so
batches fetched before an IMAP error are committed as they were before the writer existed.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sys
import threading
from collections.abc import Callable
from types import TracebackType

import psycopg2.extensions

from inboxsync import warehouse
from inboxsync.process_settings import ProcessSetting

log = logging.getLogger(__name__)

#: A unit of work: called with the writer's connection; commits its own transaction.
Job = Callable[[psycopg2.extensions.connection], None]

_STOP = object()

#: The GIL switch interval while a writer runs (Python's default is 0.005 s).
SWITCH_INTERVAL_S = 0.0005

# Each round trip to PostgreSQL gives up the GIL and must take it back from the fetching thread,
# which keeps it for the interpreter's switch interval (5 ms) when busy: a batch makes about ten
# round trips. A shorter interval while writers run cuts that wait; writers of one process may
# overlap, and the interval of before the first comes back when the last closes.
_switch_interval: ProcessSetting[float] = ProcessSetting(
    sys.getswitchinterval, sys.setswitchinterval
)


class Writer:
    """One thread and one warehouse connection that run jobs in submission order."""

    def __init__(self, url: str, *, depth: int = 2, name: str = "inboxsync-writer") -> None:
        """Open the connection and start the thread.

        Args:
            url: Warehouse URL.
            depth: Jobs that may wait behind the running one before `submit` blocks.
            name: The thread's name (shows in py-spy and thread dumps).
        """
        self._conn = warehouse.connect(url)
        with self._conn, self._conn.cursor() as cur:
            # A batch's commit need not wait for its WAL to reach the disk: a server crash can
            # only lose the last commits whole, checkpoint included, and the next run fetches
            # those batches again ("as if aborted cleanly", PostgreSQL's documentation says).
            # The derive step, whose reply_events consumers may already have read, keeps
            # synchronous commits on its own connection.
            cur.execute("SET synchronous_commit = off")
        _switch_interval.acquire(lambda interval: min(interval, SWITCH_INTERVAL_S))
        self._closed = False
        self._jobs: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> None:
        """Queue ``job``; raise the failure of an earlier job instead, if there was one."""
        self._raise_failure()
        self._jobs.put(job)

    def flush(self) -> None:
        """Wait until every submitted job has run; raise the first failure."""
        self._jobs.join()
        self._raise_failure()

    def close(self) -> None:
        """Wait for the queued jobs, stop the thread and close the connection."""
        if self._thread.is_alive():
            self._jobs.put(_STOP)
            self._thread.join()
        self._conn.close()
        if not self._closed:
            self._closed = True
            _switch_interval.release()

    def __enter__(self) -> Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is None:
                self.flush()
                return
            # The block failed (an IMAP error, say): still commit what it handed over, and let
            # its exception be the one that propagates.
            self._jobs.join()
            if self._error is not None and self._error is not exc:
                log.error("the warehouse writer failed too: %s", self._error)
        finally:
            self.close()

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise self._error

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                if job is _STOP:
                    return
                if self._error is None:
                    job(self._conn)  # type: ignore[operator]
            except BaseException as exc:  # re-raised in the run's thread
                self._error = exc
                with contextlib.suppress(psycopg2.Error):
                    self._conn.rollback()
            finally:
                self._jobs.task_done()
