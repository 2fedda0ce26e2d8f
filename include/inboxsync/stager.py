"""Parse and stage a sync's batches in a worker process when the sync is, or turns out, long.

A sync's Python work is fetching (socket reads), parsing and staging (pure CPU), and handing the
staged text to PostgreSQL (`inboxsync.writer`). In one process they take turns on one GIL, and
parsing is the largest part: a long sync hands it to a worker process, so the fetching and the
writer threads run while it parses. Short syncs (the hourly run: a few batches) never start one.

The worker is ``python -m inboxsync.stager``, fed through its stdin and answering on its stdout
(length-prefixed pickles, in order); it imports nothing of the parent's ``__main__`` (an Airflow
task's main module is Airflow's CLI). `Stager.submit` returns a future of the `StagedBatch`
either way, resolved in submission order. If the worker cannot start or dies, batches are staged
in the sync's own process, as before workers existed: nothing is lost, only the overlap.
"""

from __future__ import annotations

import collections
import contextlib
import copyreg
import datetime
import io
import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from imapclient.fixed_offset import FixedOffset

from inboxsync import collector
from inboxsync.imap import FetchedCopy
from inboxsync.load import StagedBatch, build_batch, stage_batch

log = logging.getLogger(__name__)

_LENGTH = struct.Struct(">Q")


class WorkerGone(Exception):
    """The worker process exited before answering."""


def stage(fetched: Sequence[FetchedCopy], team: frozenset[str]) -> StagedBatch:
    """Parse fetched copies and build their COPY text: the work done for each batch."""
    return stage_batch(build_batch(fetched, team), team)


class Stager:
    """Stages batches inline, and in a worker process from the ``start_after``-th batch on (or
    at once when `expect` is told of more batches than that)."""

    def __init__(self, team: frozenset[str], *, start_after: int) -> None:
        """Args:
        team: The team's addresses (a batch's directions and is_team flags depend on it).
        start_after: Batches staged inline before the worker is started; 0: never start it.
        """
        self._team = team
        self._start_after = start_after
        self._submitted = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._waiting: collections.deque[Future[StagedBatch]] = collections.deque()
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None
        self._failed = False

    @property
    def in_worker(self) -> bool:
        """Whether batches go to the worker process now."""
        return self._proc is not None

    def expect(self, batches: int) -> None:
        """Start the worker now when the sync knows ``batches`` more are coming (more than
        ``start_after``): a backfill's first batches then overlap too, and the process's memory
        is what it will be for the rest of the sync from the start."""
        self._start_beyond(batches)

    def submit(self, fetched: Sequence[FetchedCopy]) -> Future[StagedBatch]:
        """The staged batch of ``fetched``, as a future (already resolved when staged here)."""
        self._submitted += 1
        self._start_beyond(self._submitted)
        if self._proc is not None:
            future: Future[StagedBatch] = Future()
            with self._lock:
                self._waiting.append(future)
            try:
                # Plain tuples: a dataclass pickles through Python code, a tuple in C.
                _send(self._proc.stdin, [astuple(c) for c in fetched])
                return future
            except OSError as exc:  # the worker is gone; its reader fails what it had
                self._give_up(f"the parse worker is gone ({exc})")
        done: Future[StagedBatch] = Future()
        try:
            done.set_result(stage(fetched, self._team))
        except Exception as exc:
            done.set_exception(exc)
        return done

    def result(self, future: Future[StagedBatch], fetched: Sequence[FetchedCopy]) -> StagedBatch:
        """The staged batch; a batch the worker died on is staged here instead."""
        try:
            return future.result()
        except WorkerGone:
            log.warning("the parse worker died: staging a batch in the sync's own process")
            return stage(fetched, self._team)

    def close(self) -> None:
        """Stop the worker (it answers what it was sent first)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        assert proc.stdin is not None
        with contextlib.suppress(OSError):
            proc.stdin.close()  # end of input: the worker exits after its last answer
        if self._reader is not None:
            self._reader.join()
        proc.wait()

    def __enter__(self) -> Stager:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _start_beyond(self, batches: int) -> None:
        """Start the worker when ``batches`` (submitted, or expected) exceed ``start_after``."""
        if self._proc is None and not self._failed and 0 < self._start_after < batches:
            self._start()

    def _start(self) -> None:
        # The worker imports the same inboxsync as this process.
        package_root = str(Path(__file__).resolve().parents[1])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "inboxsync.stager"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
            _send(proc.stdin, self._team)
        except OSError as exc:
            self._give_up(f"no parse worker could start ({exc})")
            return
        self._proc = proc
        self._reader = threading.Thread(
            target=self._read_answers, args=(proc.stdout,), name="inboxsync-stager", daemon=True
        )
        self._reader.start()
        log.info("long sync: parsing in a worker process (pid %d)", proc.pid)

    def _read_answers(self, out: IO[bytes]) -> None:
        """Resolve the waiting futures, in order, with the worker's answers."""
        while True:
            try:
                answer = _receive(out)
            except (EOFError, OSError, pickle.UnpicklingError):
                answer = None
            with self._lock:
                if answer is None:
                    while self._waiting:
                        self._waiting.popleft().set_exception(WorkerGone())
                    return
                future = self._waiting.popleft()
            ok, value = answer
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _give_up(self, why: str) -> None:
        log.warning("%s: staging batches in the sync's own process", why)
        self._failed = True
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()


def astuple(copy: FetchedCopy) -> tuple[Any, ...]:
    """A copy's fields in order (`FetchedCopy(*astuple(copy)) == copy`)."""
    return (copy.uid, copy.raw_header, copy.flags, copy.internal_date, copy.size, copy.gm_msgid,
            copy.gm_thrid, copy.gm_labels)  # fmt: skip


def _as_timezone(zone: FixedOffset) -> tuple[Any, tuple[datetime.timedelta]]:
    # IMAPClient's FixedOffset does not unpickle; the same offset as a datetime.timezone gives
    # the same timestamps (staging writes isoformat()).
    offset = zone.utcoffset(None)
    assert offset is not None
    return datetime.timezone, (offset,)


_DISPATCH = {**copyreg.dispatch_table, FixedOffset: _as_timezone}


def _send(stream: IO[bytes] | None, obj: Any) -> None:
    assert stream is not None
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _DISPATCH
    pickler.dump(obj)
    data = buf.getvalue()
    stream.write(_LENGTH.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream: IO[bytes] | None) -> Any:
    assert stream is not None
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError
    (size,) = _LENGTH.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


def _serve(inp: IO[bytes], out: IO[bytes]) -> None:
    """The worker: the team first, then batches until end of input; one answer per batch."""
    collector.relax()
    team = _receive(inp)
    while True:
        try:
            fetched = [FetchedCopy(*fields) for fields in _receive(inp)]
        except EOFError:
            return
        try:
            answer: tuple[bool, Any] = (True, stage(fetched, team))
        except Exception as exc:
            answer = (False, exc)
        try:
            _send(out, answer)
        except pickle.PicklingError:
            _send(out, (False, RuntimeError(repr(answer[1]))))


if __name__ == "__main__":
    # Answers go to the original stdout; anything printed by accident goes to stderr instead.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    _serve(sys.stdin.buffer, answers)
