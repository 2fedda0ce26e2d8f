"""The benchmark's pure arithmetic: medians, profile summaries, the stage timer."""

from __future__ import annotations

import threading

import pytest

from inboxsync.bench.probe import StageTimer
from inboxsync.bench.report import collapsed_summary, median


def test_median():
    assert median([]) is None
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4, 1, 3, 2]) == 2.5


def test_collapsed_summary_counts_each_function_once_per_stack():
    lines = [
        "<module> (run.py:1);sync (sync.py:10);fetch (imap.py:5) 6",
        "<module> (run.py:1);sync (sync.py:12);parse (parse.py:7) 3",
        # Recursion: parse appears twice in one stack but counts once inclusively.
        "<module> (run.py:1);sync (sync.py:12);parse (parse.py:7);parse (parse.py:9) 1",
        "garbage line without a count",
        "",
    ]
    summary = collapsed_summary(lines, top=3)
    assert summary["samples"] == [("all", 10)]
    assert summary["inclusive"] == [
        ("<module> (run.py)", 1.0),
        ("sync (sync.py)", 1.0),
        ("fetch (imap.py)", 0.6),
    ]
    assert summary["self"] == [("fetch (imap.py)", 0.6), ("parse (parse.py)", 0.4)]


def test_collapsed_summary_of_nothing():
    assert collapsed_summary([]) == {"inclusive": [], "self": [], "samples": []}


class _Target:
    def work(self, x: int) -> int:
        return x * 2

    def fail(self) -> None:
        raise ValueError("boom")


def test_stage_timer_counts_calls_and_restores_the_original():
    timer = StageTimer()
    original = _Target.work
    _Target.work = timer.wrap("fetch", original)
    _Target.fail = timer.wrap("parse", _Target.fail)
    try:
        assert _Target().work(21) == 42
        assert _Target().work(1) == 2
        with pytest.raises(ValueError, match="boom"):
            _Target().fail()
    finally:
        _Target.work = original
    assert timer.calls == {"sync: fetch": 2, "sync: parse": 1}
    assert set(timer.seconds) == {"sync: fetch", "sync: parse"}
    assert all(s >= 0 for s in timer.seconds.values())


def test_stage_timer_tells_the_writer_thread_from_the_sync_thread():
    timer = StageTimer()
    work = timer.wrap("load", lambda: None)
    thread = threading.Thread(target=work, name="inboxsync-writer")
    thread.start()
    thread.join()
    work()
    derive_step = timer.wrap("derive", lambda: None)
    thread = threading.Thread(target=derive_step, name="inboxsync-derive_0")
    thread.start()
    thread.join()
    assert timer.calls == {"writer: load": 1, "sync: load": 1, "derive: derive": 1}


def test_stage_timer_installs_on_the_sync_call_sites_and_removes_them():
    from inboxsync import derive, stager, sync
    from inboxsync.imap import ImapSession

    def sites():
        return (ImapSession.fetch_headers, stager.stage, sync.write_batch, derive.run)

    before = sites()
    timer = StageTimer()
    with timer.installed():
        assert ImapSession.fetch_headers is not before[0]
        for wrapped, original in zip(sites(), before, strict=True):
            assert wrapped.__wrapped__ is original
    assert sites() == before
    assert timer.unwrapped == []


def test_collapsed_summary_within_a_function():
    lines = [
        "main (probe.py:1);import (x.py:1) 5",
        "main (probe.py:1);sync_inbox (sync.py:3);fetch (imap.py:5) 3",
        "main (probe.py:2);sync_inbox (sync.py:4);load (load.py:5) 1",
    ]
    summary = collapsed_summary(lines, top=2, within="sync_inbox")
    assert summary["samples"] == [("all", 4)]
    assert summary["inclusive"] == [("sync_inbox (sync.py)", 1.0), ("fetch (imap.py)", 0.75)]
    assert summary["self"] == [("fetch (imap.py)", 0.75), ("load (load.py)", 0.25)]


_BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\n{then}"


def test_tree_seconds_counts_live_and_reaped_children():
    import os
    import subprocess
    import sys

    from inboxsync.bench.cpu import tree_seconds

    me = os.getpid()
    before = tree_seconds(me)
    # A child that burns 0.4 s of CPU and exits (reaped by run()): in this process's cutime.
    subprocess.run([sys.executable, "-c", _BURN.format(s=0.4, then="")], check=True)
    reaped = tree_seconds(me) - before
    assert 0.35 <= reaped < 1.5  # plus the interpreter's start (/proc counts 1/100 s ticks)
    # A child that burns 0.4 s and then waits: read live, under this process.
    child = subprocess.Popen(
        [sys.executable, "-c", _BURN.format(s=0.4, then="print(flush=True); input()")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        child.stdout.readline()
        live = tree_seconds(me) - before - reaped
        assert 0.35 <= live < 1.5
        assert tree_seconds(child.pid) == pytest.approx(live, abs=0.1)
    finally:
        child.communicate("\n")


def test_cpu_by_process_in_the_summary_and_the_table():
    from inboxsync.bench.report import table
    from inboxsync.bench.run import summarise_full

    def run(wall, sync_cpu, worker, pg, dovecot):
        return {"wall_s": wall, "stages_s": {}, "peak_rss_kb": 1, "peak_rss_at_kb": {},
                "cpu_s": sync_cpu, "worker_cpu_s": worker,
                "server_cpu_s": {"PostgreSQL": pg, "Dovecot": dovecot}}  # fmt: skip

    full = summarise_full([run(10, 4, 6, 8, 2), run(12, 5, 7, 9, 3), run(11, 6, 8, 10, 1)], 1000)
    # Each figure is the median over the runs; "all" is the median of the runs' totals.
    assert full["median_cpu_s"] == {
        "PostgreSQL": 9, "Dovecot": 2, "sync process": 5, "parse worker": 7, "all": 24
    }  # fmt: skip
    text = table({"n": 1000, "ceiling": {"median_s": 1.0, "median_rate": 1000.0,
                                         "cold_rate": 900.0},
                  "full_sync": full, "machine": {"cores": 2}})  # fmt: skip
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in text.splitlines()}
    assert rows["CPU time of the full sync, all processes"] == (
        "24.00 s: 2.18 cores busy on average of 2"
    )
    assert rows["CPU time: PostgreSQL"] == "9.00 s (38%)"
    assert rows["CPU time: parse worker"] == "7.00 s (29%)"


def test_the_warehouse_floor_in_the_summary_and_the_table():
    from inboxsync.bench.floor import FloorResult
    from inboxsync.bench.report import table
    from inboxsync.bench.run import summarise_floor, summarise_full

    floors = [FloorResult(990, 9000, 10, s, cpu) for s, cpu in ((2.0, 1.5), (4.0, 2.5), (3.0, 3.5))]
    summary = summarise_floor(floors, 1000)
    # Medians; the rate counts the messages the sync fetched (1,000), as the sync's rate does.
    assert summary["median_s"] == 3.0 and summary["median_pg_cpu_s"] == 2.5
    assert summary["median_rate"] == pytest.approx(1000 / 3.0)
    full = summarise_full([{"wall_s": 6.0, "stages_s": {}, "peak_rss_kb": 1, "peak_rss_at_kb": {},
                            "cpu_s": 1, "worker_cpu_s": 1, "server_cpu_s": {}}], 1000)  # fmt: skip
    text = table({"n": 1000, "ceiling": {"median_s": 1.0, "median_rate": 1000.0, "cold_rate": 900.0,
                                         "median_dovecot_cpu_s": 0.75},
                  "floor": summary, "floor_ratio": 0.5, "full_sync": full})  # fmt: skip
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in text.splitlines()}
    assert rows["CPU time: Dovecot, ceiling pass"] == "0.75 s"
    assert rows["warehouse floor: the sync's rows by binary COPY, nothing else"] == (
        "3.00 s, 333 messages/s"
    )
    assert rows["CPU time: PostgreSQL, floor"] == "2.50 s"
    assert rows["sync / warehouse floor"] == "50.0%"


def test_the_sync_beside_a_large_warehouse_in_the_table():
    from inboxsync.bench.report import table
    from inboxsync.bench.run import summarise_full

    full = summarise_full([{"wall_s": 6.0, "stages_s": {}, "peak_rss_kb": 1, "peak_rss_at_kb": {},
                            "cpu_s": 1, "worker_cpu_s": 1, "server_cpu_s": {}}], 1000)  # fmt: skip
    beside = {"clones": 9, "messages_beside": 8_991, "median_wall_s": 8.0, "median_rate": 125.0,
              "median_derive_s": 5.5, "median_pg_cpu_s": 7.25}  # fmt: skip
    text = table({"n": 1000, "ceiling": {"median_s": 1.0, "median_rate": 1000.0,
                                         "cold_rate": 900.0},
                  "full_sync": full, "large": beside})  # fmt: skip
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in text.splitlines()}
    assert rows["full sync beside 8,991 messages of 9 other inboxes"] == "8.00 s, 125 messages/s"
    assert rows["beside them: derive steps"] == "5.50 s"
    assert rows["beside them: CPU time, PostgreSQL"] == "7.25 s"
    assert "full sync beside" not in table({**{"n": 1000, "full_sync": full},
                                            "ceiling": {"median_s": 1.0, "median_rate": 1000.0,
                                                        "cold_rate": 900.0}})  # fmt: skip


def test_the_workers_instruction_counts_in_the_table():
    from inboxsync.bench.report import table
    from inboxsync.bench.run import summarise_full

    full = summarise_full([{"wall_s": 6.0, "stages_s": {}, "peak_rss_kb": 1, "peak_rss_at_kb": {},
                            "cpu_s": 1, "worker_cpu_s": 1, "server_cpu_s": {}}], 1000)  # fmt: skip
    base = {"n": 1000, "full_sync": full,
            "ceiling": {"median_s": 1.0, "median_rate": 1000.0, "cold_rate": 900.0}}  # fmt: skip
    counted = {"messages": 3000, "per_message": {"parse": 389037.6, "stage": 528146.8}}

    def rows(results):
        return {line.split("|")[1].strip(): line.split("|")[2].strip()
                for line in table(results).splitlines()}  # fmt: skip

    assert (
        rows({**base, "instructions": counted})[
            "parse worker: instructions per message (callgrind, 3,000 headers)"
        ]
        == "parse 389,038; parse and stage 528,147"
    )
    missing = {"error": "valgrind is not installed (Debian: apt-get install valgrind)"}
    assert (
        rows({**base, "instructions": missing})[
            "parse worker: instructions per message (callgrind)"
        ]
        == "not counted: valgrind is not installed (Debian: apt-get install valgrind)"
    )
    assert "callgrind" not in table(base)
    both = {**counted, "python_per_message": {"parse": 389494.1, "stage": 529292.4},
            "fast_path": True}  # fmt: skip
    assert (
        rows({**base, "instructions": both})[
            "parse worker: instructions per message (callgrind, 3,000 headers)"
        ]
        == "parse 389,038; parse and stage 528,147 (pure Python parse: 389,494; 529,292)"
    )
    assert rows({**base, "instructions": {**both, "fast_path": False}})[
        "parse worker: instructions per message (callgrind, 3,000 headers)"
    ].endswith("(the C fast path is not built: both are the pure Python parse)")


def test_the_sync_with_the_pure_python_parse_in_the_table():
    from inboxsync.bench.report import table
    from inboxsync.bench.run import summarise_full, summarise_python_parse

    def run(wall, worker):
        return {"wall_s": wall, "stages_s": {}, "peak_rss_kb": 1, "peak_rss_at_kb": {},
                "cpu_s": 1.0, "worker_cpu_s": worker, "server_cpu_s": {}}  # fmt: skip

    full = summarise_full([run(6.0, 2.0), run(5.0, 1.5), run(7.0, 2.5)], 1000)
    python = summarise_python_parse([run(9.0, 6.0), run(8.0, 5.0), run(12.0, 7.0)], full, 1000)
    assert python["median_wall_s"] == 9.0 and python["slower"] == 1.5
    assert summarise_python_parse([], full, 1000) is None
    ceiling = {"median_s": 1.0, "median_rate": 1000.0, "cold_rate": 900.0}
    text = table({"n": 1000, "full_sync": full, "python_parse": python, "ceiling": ceiling})
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in text.splitlines()}
    assert rows[
        "the same sync in pure Python (`INBOXSYNC_PARSE=python INBOXSYNC_FETCH=python`)"
    ] == (
        "9.00 s, 111 messages/s: 1.50 times the wall; the worker's CPU 6.00 s against 2.00 s;"
        " the sync process's 1.00 s against 1.00 s"
    )


def test_gc_timer_counts_collections_and_their_time_while_installed():
    import gc

    from inboxsync.bench.probe import GcTimer

    timer = GcTimer()
    with timer.installed():
        gc.collect(0)
        gc.collect()  # a full collection
    gc.collect()  # after the block: not counted
    assert timer.collections[0] == 1 and timer.collections[2] == 1
    assert timer.as_dict()["collections"] == 2 and timer.as_dict()["full"] == 1
    assert timer.seconds > 0
    assert timer._callback not in gc.callbacks


def test_the_sync_process_collections_in_the_summary_and_the_table():
    from inboxsync.bench.report import table
    from inboxsync.bench.run import summarise_full

    def run(collections, full, seconds):
        return {"wall_s": 10, "stages_s": {}, "peak_rss_kb": 1, "peak_rss_at_kb": {},
                "cpu_s": 1, "worker_cpu_s": 1, "server_cpu_s": {},
                "gc": {"collections": collections, "full": full, "seconds": seconds}}  # fmt: skip

    full = summarise_full([run(6, 0, 0.02), run(890, 7, 1.6), run(8, 1, 0.05)], 1000)
    assert full["median_gc"] == {"collections": 8, "full": 1, "seconds": 0.05}
    text = table({"n": 1000, "ceiling": {"median_s": 1.0, "median_rate": 1000.0,
                                         "cold_rate": 900.0}, "full_sync": full})  # fmt: skip
    rows = {line.split("|")[1].strip(): line.split("|")[2].strip() for line in text.splitlines()}
    assert rows["garbage collections in the sync process"] == "8 (1 full), 0.05 s with the GIL held"
    # Results of a probe without the counts (older JSON) make no row.
    older = summarise_full([{k: v for k, v in run(1, 0, 0.0).items() if k != "gc"}], 1000)
    assert older["median_gc"] is None
    assert "garbage collections" not in table(
        {"n": 1000, "ceiling": {"median_s": 1.0, "median_rate": 1000.0, "cold_rate": 900.0},
         "full_sync": older}
    )  # fmt: skip


def test_a_statement_is_named_by_its_opening_comment_else_its_first_words():
    from inboxsync.bench.statements import LABEL_CHARS, label

    sql = "-- Merge one staged batch into the contract tables.\n-- More.\nWITH x AS (SELECT 1)"
    assert label(sql) == "Merge one staged batch into the contract tables."
    assert label("  ANALYZE\n   derive_pending ") == "ANALYZE derive_pending"
    assert label("--\nSELECT 1") == "-- SELECT 1"  # an empty comment line names nothing
    assert len(label("SELECT " + "x, " * 100)) == LABEL_CHARS


def test_statements_table_shares_of_the_total():
    from inboxsync.bench.report import statements_table

    results = {"profile": {"statements": {"total_s": 4.0, "top": [
        {"statement": "Merge one batch", "calls": 1200, "seconds": 3.0},
        {"statement": "ANALYZE derive_pending", "calls": 11, "seconds": 0.5},
    ]}}}  # fmt: skip
    text = statements_table(results)
    heading = text.splitlines()[0]
    assert heading.startswith("PostgreSQL statement time over the profiled full sync: 4.00 s")
    assert "| Merge one batch        | 1,200 | 3.00 s | 75%   |" in text
    assert "| ANALYZE derive_pending | 11    | 0.50 s | 12%   |" in text
