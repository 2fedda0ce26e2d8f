"""The worker's instruction counts (`inboxsync.bench.instructions`): real callgrind runs of the
real parse and staging, counted only inside the measured work, the same count run after run."""

from __future__ import annotations

import pickle
import shutil

import pytest

from inboxsync.bench import instructions
from inboxsync.parse import header_fields_only
from tests.conftest import corpus, read_mbox


@pytest.fixture(scope="module")
def valgrind() -> str:
    if shutil.which("valgrind") is None:  # as `make bench` does
        from inboxsync.localenv.system import apt_install

        apt_install(["valgrind"])
    found = shutil.which("valgrind")
    assert found is not None
    return found


@pytest.fixture(scope="module")
def headers() -> list[bytes]:
    mail = read_mbox(corpus("lists", "util-linux.mbox.gz"))[:60]
    return [header_fields_only(raw) for raw in mail]


def test_counts_per_message_only_the_measured_work_and_repeat(valgrind, headers, tmp_path):
    counted = instructions.measure(headers[:20], valgrind=valgrind)
    assert counted.messages == 20
    parse, stage = counted.per_message["parse"], counted.per_message["stage"]
    # A real header's parse takes some hundred thousand instructions; staging adds to it.
    assert 50_000 < parse < stage < 5_000_000
    # The worker runs the C fast path here, and the pure Python parse costs more than twice as
    # much (389,000 against 112,000 a message on the benchmark's sample).
    assert counted.fast_path
    python = counted.python_per_message
    assert python["parse"] > 2 * parse and python["stage"] - python["parse"] > 0.5 * (stage - parse)

    small, large = tmp_path / "small.pickle", tmp_path / "large.pickle"
    small.write_bytes(pickle.dumps(headers[:20]))
    large.write_bytes(pickle.dumps(headers))
    # The same work, the same count to within 1%: only the file's path and the environment
    # differ, which move where the interpreter allocates (a fresh clone's CI run counted 0.35%
    # fewer than `measure` in the same test; staging adds over 30%, an import billions).
    assert instructions.count(valgrind, "parse", small) == pytest.approx(parse * 20, rel=0.01)
    # Only the parse is counted (the interpreter's start and imports run billions of
    # instructions outside it): three times the headers, two to three times the count (the
    # first headers also fill the address caches, a larger share since the parse is in C).
    assert 2 * parse * 20 < instructions.count(valgrind, "parse", large) < 3.5 * parse * 20


def test_a_run_that_never_enters_the_counted_function_is_refused(
    valgrind, headers, tmp_path, monkeypatch
):
    path = tmp_path / "headers.pickle"
    path.write_bytes(pickle.dumps(headers[:2]))
    monkeypatch.setattr(instructions, "TOGGLE", "no_such_function_in_python")
    with pytest.raises(instructions.InstructionsUnavailable, match="counted nothing"):
        instructions.count(valgrind, "parse", path)


def test_a_failed_run_has_no_count():
    assert instructions.collected(0, "==12== Events : Ir\n==12== Collected : 4321\n") == 4321
    with pytest.raises(instructions.InstructionsUnavailable, match="exited 1"):
        instructions.collected(1, "==12== Collected : 4321\n")
    with pytest.raises(instructions.InstructionsUnavailable, match="0 counts"):
        instructions.collected(0, "valgrind: no such tool\n")


def test_sample_takes_every_fourth_message_as_the_sync_fetches_it(headers):
    mail = read_mbox(corpus("lists", "util-linux.mbox.gz"))[:60]
    picked = instructions.sample(iter(mail), size=10)
    assert picked == [header_fields_only(raw) for raw in mail[0:40:4]]
    assert picked[1] == headers[4]
