"""Fewer runs of CPython's cyclic garbage collector while a sync turns mail into rows.

A sync allocates millions of small objects (fetched lines, parsed fields, rows), and nearly all
of them are freed by reference counting the moment they are done with. CPython still starts a
collection every 700 new container objects, and now and then a full one over every object of the
process, which in an Airflow task or the CLI means all of Airflow's modules too; each holds the
GIL, stopping the fetching, writer and derive threads. Measured in a 100,000-message sync of
`make bench`'s inbox: about 870 collections, 1.4-1.9 s (6 or 7 full ones, 1.0-1.3 s). With
the first generation waiting for `settings.GC_GENERATION0` new objects: one collection, 0.02 s.
Cyclic garbage (rare here) waits a little longer for its collection: a few MB at most.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

from inboxsync import settings
from inboxsync.process_settings import ProcessSetting

_thresholds: ProcessSetting[tuple[int, int, int]] = ProcessSetting(
    gc.get_threshold, lambda thresholds: gc.set_threshold(*thresholds)
)


def _relaxed(thresholds: tuple[int, int, int]) -> tuple[int, int, int]:
    _, older, oldest = thresholds
    return (settings.GC_GENERATION0, older, oldest) if settings.GC_GENERATION0 > 0 else thresholds


def relax() -> None:
    """Raise the first generation's threshold for the rest of the process (the parse worker)."""
    gc.set_threshold(*_relaxed(gc.get_threshold()))


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Raise the first generation's threshold while the block runs, then restore it.

    Syncs of one process may overlap: the thresholds of before the first come back when the
    last ends.
    """
    with _thresholds.changed(_relaxed):
        yield
