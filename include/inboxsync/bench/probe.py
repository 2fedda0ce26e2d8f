"""One sync, measured: run in a child process so its peak RSS is its own (and its parse worker's).

``python -m inboxsync.bench.probe full|noop --inbox NAME --url URL`` calls
``inboxsync.sync.sync_inbox`` (the DAG task's code path) and prints one JSON line with the wall
time, seconds per stage, per-folder results and memory. Stages are timed by wrapping, inside this
process only, the functions the sync calls at their call sites (instrumentation, not a change of
behaviour): ``ImapSession.uids_after`` (search), ``ImapSession.fetch_headers`` (fetch),
``build_batch`` (parse), ``load_batch`` (load) and ``derive.run`` (derive). What no wrapper covers
(login, EXAMINE, planning, commits) is reported as other. A full sync runs with an unlimited
``Budget()``, as a backfill to the end does; the hourly DAG runs use the inboxes' own budgets.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import importlib
import json
import logging
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

#: (module, attribute, stage): the call sites wrapped for timing. Attributes that do not exist
#: (the code moved on) are skipped and listed in the result's ``unwrapped``.
STAGE_TARGETS: tuple[tuple[str, str, str], ...] = (
    ("inboxsync.imap:ImapSession", "uids_after", "search"),
    ("inboxsync.imap:ImapSession", "fetch_headers", "fetch"),
    ("inboxsync.stager", "stage", "parse and stage"),  # batches staged in this process
    ("inboxsync.sync", "write_batch", "load"),
    ("inboxsync.derive", "run", "derive"),
)


def thread_label() -> str:
    """Which of the run's threads calls: "sync" (its own), "writer" (the warehouse writer) or
    "derive" (derive steps beside the loading); their stages overlap."""
    name = threading.current_thread().name
    for prefix, label in (("inboxsync-writer", "writer"), ("inboxsync-derive", "derive")):
        if name.startswith(prefix):
            return label
    return "sync"


def memory_kb(pid: int | str = "self") -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process in kB, from /proc/<pid>/status."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def peak_rss_kb() -> int:
    """Peak RSS of this process plus that of each live child (the parse worker): the sum of
    their peaks, an upper bound of their peak together."""
    total = memory_kb()["VmHWM"]
    for children in Path("/proc/self/task").glob("*/children"):
        for pid in children.read_text().split():
            with contextlib.suppress(OSError):  # exited meanwhile
                total += memory_kb(pid).get("VmHWM", 0)
    return total


class StageTimer:
    """Accumulates seconds and calls per stage while its wrappers are installed."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.unwrapped: list[str] = []

    def wrap(self, stage: str, func: Callable[..., Any]) -> Callable[..., Any]:
        """A function that calls ``func`` and adds its duration to ``stage``."""

        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            key = f"{thread_label()}: {stage}"
            try:
                return func(*args, **kwargs)
            finally:
                self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - started
                self.calls[key] = self.calls.get(key, 0) + 1

        return timed

    @contextlib.contextmanager
    def installed(self) -> Iterator[StageTimer]:
        """Install the wrappers for the duration of the block, then restore the originals."""
        restore: list[tuple[object, str, object]] = []
        for target, attr, stage in STAGE_TARGETS:
            owner = _resolve(target)
            original = getattr(owner, attr, None) if owner is not None else None
            if original is None:
                self.unwrapped.append(f"{target}.{attr}")
                continue
            restore.append((owner, attr, original))
            setattr(owner, attr, self.wrap(stage, original))
        try:
            yield self
        finally:
            for owner, attr, original in reversed(restore):
                setattr(owner, attr, original)


class GcTimer:
    """Counts the cyclic garbage collector's runs in this process and the time they take (each
    holds the GIL), while installed (`gc.callbacks`)."""

    def __init__(self) -> None:
        self.collections = [0, 0, 0]  # by generation; 2 is a full collection
        self.seconds = 0.0
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.collections[info["generation"]] += 1

    @contextlib.contextmanager
    def installed(self) -> Iterator[GcTimer]:
        """Count the collections of the block."""
        gc.callbacks.append(self._callback)
        try:
            yield self
        finally:
            gc.callbacks.remove(self._callback)

    def as_dict(self) -> dict[str, Any]:
        return {"collections": sum(self.collections), "full": self.collections[2],
                "seconds": self.seconds}  # fmt: skip


def _resolve(target: str) -> object | None:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    return getattr(module, attr, None) if attr else module


def run_full(inbox: str, url: str, checkpoints: list[int]) -> dict[str, Any]:
    """A full sync of ``inbox``, timed per stage, with peak RSS at message-count checkpoints.

    Args:
        inbox: The inbox's registry name (its warehouse holds no copies yet).
        url: Warehouse URL.
        checkpoints: Message counts at which to record the peak RSS so far.

    Returns:
        JSON-ready figures.
    """
    from inboxsync import registry, sync, warehouse
    from inboxsync.connections import get_connection

    # Resolve the inbox's connection once first: importing Airflow is interpreter start-up, not
    # sync work (the DAG's task process has done it before the task body runs).
    warm_started = time.perf_counter()
    with warehouse.transaction(url) as cur:
        get_connection(registry.get_inbox(cur, inbox).conn_id)
    warm_up = time.perf_counter() - warm_started
    rss_before = memory_kb()

    pending = sorted(checkpoints)
    at: dict[str, int] = {}
    done_before: dict[str, int] = {}
    total = {"n": 0}
    peak = {"kb": 0}  # this process and its parse worker, read after each batch

    def on_batch(folder_result: Any) -> None:
        done_before[folder_result.folder] = folder_result.fetched
        total["n"] = sum(done_before.values())
        peak["kb"] = max(peak["kb"], peak_rss_kb())
        while pending and total["n"] >= pending[0]:
            at[str(pending.pop(0))] = peak["kb"]

    # A backfill to the end: no per-run download budget (when the sync has one).
    unlimited = {"budget": sync.Budget()} if hasattr(sync, "Budget") else {}
    timer = StageTimer()
    collections = GcTimer()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with timer.installed(), collections.installed():
        started, cpu_started = time.perf_counter(), time.process_time()
        result = sync.sync_inbox(inbox, url=url, on_batch=on_batch, **unlimited)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    mem = memory_kb()
    # The parse worker has exited (sync_inbox waits for it): its CPU time.
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker_cpu = (children.ru_utime + children.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    if worker_cpu > 0:
        timer.seconds["worker: parse and stage (CPU time)"] = worker_cpu
    return {
        "mode": "full",
        "wall_s": wall,
        "cpu_s": cpu,  # this process (every thread), not its parse worker
        "worker_cpu_s": worker_cpu,
        "warm_up_s": warm_up,
        "result": result.as_dict(),
        "stages_s": timer.seconds,
        "stage_calls": timer.calls,
        "gc": collections.as_dict(),  # the sync process's; the parse worker is another process
        "unwrapped": timer.unwrapped,
        "rss_before_kb": rss_before["VmRSS"],
        "peak_rss_kb": max(mem["VmHWM"], peak["kb"]),
        "ru_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "peak_rss_at_kb": at,
    }


def run_noop(inbox: str, url: str, repeats: int) -> dict[str, Any]:
    """Sync an up-to-date inbox ``repeats`` times in one warm process.

    Returns:
        The first call (includes Airflow's import) and each later call's wall and folder seconds.
    """
    from inboxsync.sync import sync_inbox

    calls = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        result = sync_inbox(inbox, url=url)
        calls.append({"wall_s": time.perf_counter() - started, "result": result.as_dict()})
    return {"mode": "noop", "first_call": calls[0], "calls": calls[1:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inboxsync.bench.probe")
    parser.add_argument("mode", choices=["full", "noop"])
    parser.add_argument("--inbox", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--checkpoints", default="", help="comma-separated message counts")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.mode == "full":
        points = [int(p) for p in args.checkpoints.split(",") if p]
        out = run_full(args.inbox, args.url, points)
    else:
        out = run_noop(args.inbox, args.url, args.repeats)
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
