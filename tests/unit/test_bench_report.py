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
