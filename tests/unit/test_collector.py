"""The garbage collector's threshold while syncs run: raised inside, the process's own after."""

from __future__ import annotations

import gc
import io
import threading

import pytest

from inboxsync import collector, settings, stager


@pytest.fixture(autouse=True)
def own_thresholds():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_a_sync_raises_the_first_threshold_and_restores_all_three_after():
    gc.set_threshold(900, 11, 12)
    with collector.fewer_collections():
        assert gc.get_threshold() == (settings.GC_GENERATION0, 11, 12)
    assert gc.get_threshold() == (900, 11, 12)


def test_a_failed_sync_restores_them_too():
    with pytest.raises(RuntimeError), collector.fewer_collections():
        raise RuntimeError("the inbox failed")
    assert gc.get_threshold() == (700, 10, 10)


def test_overlapping_syncs_restore_the_thresholds_of_before_the_first_when_the_last_ends():
    first_inside, second_started, first_done = (threading.Event() for _ in range(3))
    seen: dict[str, tuple[int, int, int]] = {}

    def first() -> None:
        with collector.fewer_collections():
            first_inside.set()
            second_started.wait()
        seen["after first"] = gc.get_threshold()
        first_done.set()

    def second() -> None:
        first_inside.wait()
        with collector.fewer_collections():
            second_started.set()
            first_done.wait()  # the first ends while this one runs
            seen["second, first gone"] = gc.get_threshold()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == {
        "after first": (settings.GC_GENERATION0, 10, 10),
        "second, first gone": (settings.GC_GENERATION0, 10, 10),
    }
    assert gc.get_threshold() == (700, 10, 10)


def test_zero_keeps_cpythons_thresholds(monkeypatch):
    monkeypatch.setattr(settings, "GC_GENERATION0", 0)
    with collector.fewer_collections():
        assert gc.get_threshold() == (700, 10, 10)
    collector.relax()
    assert gc.get_threshold() == (700, 10, 10)


def test_the_parse_worker_keeps_the_raised_threshold_for_good():
    collector.relax()
    assert gc.get_threshold() == (settings.GC_GENERATION0, 10, 10)


def test_the_parse_worker_raises_the_first_threshold_for_its_whole_life():
    requests = io.BytesIO()
    stager._send(requests, frozenset({"team@example.com"}))  # the team, then end of input
    requests.seek(0)
    stager._serve(requests, io.BytesIO())
    assert gc.get_threshold() == (settings.GC_GENERATION0, 10, 10)


def test_a_threshold_of_zero_leaves_the_collector_as_it_is(monkeypatch):
    monkeypatch.setattr(settings, "GC_GENERATION0", 0)
    collector.relax()
    with collector.fewer_collections():
        assert gc.get_threshold() == (700, 10, 10)


def test_the_parse_worker_starts_without_sqlalchemy():
    # A tenth of a second of imports that the worker never uses, on the way to a long sync's
    # first batch (`inboxsync.warehouse` imports it where it builds a URL).
    import subprocess
    import sys

    code = "import sys, inboxsync.stager; print('sqlalchemy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
