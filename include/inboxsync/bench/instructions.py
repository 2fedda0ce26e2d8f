"""The parse worker's work per message in CPU instructions: a figure the hour does not move.

Seconds on a shared VM move with the hour: a full sync of the same 100,000 messages took 11.5 s
in one session and 22-28 s in the next, and ``python -m timeit "sum(range(1000))"`` read 10.3 and
20.1 us. Valgrind's
callgrind counts the instructions a process executes instead, which is the same for the same
binary, inputs and environment whatever else the machine does, so a change to the parse or the
staging shows as a difference of this count from one session to the next.

`measure` writes a sample of the benchmark's headers to a file and runs this module on it in one
child process per stage, under ``valgrind --tool=callgrind``, collecting only while inside
``functools.reduce`` (``--toggle-collect``): the child reads the sample and imports outside it,
then parses (`inboxsync.parse.parse_header`) or parses and stages (`inboxsync.stager.stage`, the
worker's call, in batches of ``BATCH_SIZE``) the whole sample inside one ``reduce``. The
instructions divided by the sample's size are the figure. ``PYTHONHASHSEED`` is fixed: the same
command then counts the same instructions run after run (seen here: 1,511,751,195 twice, for
staging 3,000 headers), and a sample at another path within a few in ten thousand.

Both parse paths are counted, in the same run: the C fast path (`inboxsync._cparse`, what the
worker runs when it is built) and the pure Python parse (``INBOXSYNC_PARSE=python``, the
reference it stands in front of).

Not counted: the worker's pickling of batches in and out, and everything outside the worker.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from inboxsync import parse, settings, stager
from inboxsync.imap import FetchedCopy
from inboxsync.parse import QuarantineError, header_fields_only, parse_header

#: Headers in the sample: every `SAMPLE_STRIDE`-th of the benchmark's first messages.
SAMPLE_SIZE = 3000
SAMPLE_STRIDE = 4
#: What the child does with the sample: the parse alone, or the worker's whole staging.
STAGES = ("parse", "stage")
#: The C function of ``functools.reduce`` in CPython: callgrind counts only inside it.
TOGGLE = "functools_reduce"
_COLLECTED = re.compile(r"^==\d+== Collected : (\d+)$", re.MULTILINE)


class InstructionsUnavailable(RuntimeError):
    """valgrind is not installed, or its run gave no count."""


@dataclass(frozen=True)
class InstructionCounts:
    """Instructions per message of each stage over one sample.

    Attributes:
        messages: Headers in the sample.
        per_message: Stage ("parse", "stage") to instructions per message, as the worker runs.
        python_per_message: The same with the pure Python parse (``INBOXSYNC_PARSE=python``).
        fast_path: Whether the C fast path is built (when not, both counts are Python's).
    """

    messages: int
    per_message: dict[str, float]
    python_per_message: dict[str, float]
    fast_path: bool


def sample(messages: Iterable[bytes], size: int = SAMPLE_SIZE) -> list[bytes]:
    """Every `SAMPLE_STRIDE`-th message of ``messages``, up to ``size``, as HEADER.FIELDS answers.

    Args:
        messages: Whole messages in benchmark order (`inboxsync.bench.corpus.bench_messages`).
        size: How many to keep at most.

    Returns:
        Their header fields as the sync fetches them.
    """
    picked = itertools.islice(messages, 0, size * SAMPLE_STRIDE, SAMPLE_STRIDE)
    return [header_fields_only(raw) for raw in picked]


def measure(headers: list[bytes], *, valgrind: str | None = None) -> InstructionCounts:
    """Count the instructions per message of each of `STAGES` over ``headers``.

    Args:
        headers: Raw header fields, as `sample` returns them.
        valgrind: The valgrind executable; found on PATH when None.

    Returns:
        The counts.

    Raises:
        InstructionsUnavailable: valgrind is missing, or a child printed no count.
    """
    valgrind = valgrind or shutil.which("valgrind")
    if valgrind is None:
        raise InstructionsUnavailable(
            "valgrind is not installed (Debian: apt-get install valgrind)"
        )
    if not headers:
        raise ValueError("no headers to count")
    per_message: dict[str, float] = {}
    python_per_message: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="inboxsync-instructions-") as tmp:
        path = Path(tmp) / "headers.pickle"
        path.write_bytes(pickle.dumps(headers, protocol=pickle.HIGHEST_PROTOCOL))
        for stage in STAGES:
            per_message[stage] = count(valgrind, stage, path) / len(headers)
            python_per_message[stage] = count(valgrind, stage, path, parser="python") / len(headers)
    return InstructionCounts(
        messages=len(headers),
        per_message=per_message,
        python_per_message=python_per_message,
        fast_path=parse.built_fast_path() is not None,
    )


def count(valgrind: str, stage: str, path: Path, *, parser: str = "auto") -> int:
    """Instructions one child executes inside ``reduce`` doing ``stage`` to the headers at ``path``.

    Args:
        valgrind: The valgrind executable.
        stage: One of `STAGES`.
        path: A pickled list of raw headers.
        parser: ``INBOXSYNC_PARSE`` in the child: "auto" (the C fast path when built) or "python".

    Returns:
        The count.

    Raises:
        InstructionsUnavailable: As `collected`.
    """
    # The child imports inboxsync as every bench child does (`inboxsync.bench.run.probe`).
    env = {**os.environ, "PYTHONHASHSEED": "0", "INBOXSYNC_PARSE": parser}
    cmd = [valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null",
           "--collect-atstart=no", f"--toggle-collect={TOGGLE}",
           sys.executable, "-m", "inboxsync.bench.instructions", stage, str(path)]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return collected(proc.returncode, proc.stderr)


def collected(returncode: int, stderr: str) -> int:
    """The count callgrind printed at the end of a run ("==PID== Collected : N").

    Args:
        returncode: The run's exit status.
        stderr: What it printed there.

    Returns:
        The count.

    Raises:
        InstructionsUnavailable: The run failed, or printed no count, or a count of 0.
    """
    found = _COLLECTED.findall(stderr)
    if returncode != 0 or len(found) != 1:
        raise InstructionsUnavailable(
            f"callgrind exited {returncode} with {len(found)} counts:\n{stderr[-2000:]}"
        )
    if found[0] == "0":
        # The toggle names a C function of CPython's: another build may name it otherwise.
        raise InstructionsUnavailable(
            f"callgrind counted nothing inside {TOGGLE} (is that the C name of"
            f" functools.reduce in {sys.executable}?)"
        )
    return int(found[0])


def run_stage(stage: str, headers: list[bytes]) -> None:
    """Do ``stage`` to every header, inside one ``functools.reduce`` (what callgrind counts)."""
    if stage == "parse":

        def parse(_: object, raw: bytes) -> object:
            try:
                return parse_header(raw)
            except QuarantineError as exc:  # the worker quarantines it: counted too
                return exc

        functools.reduce(parse, headers, None)
    elif stage == "stage":
        when = datetime(2024, 1, 1, tzinfo=UTC)
        copies = [FetchedCopy(uid, raw, ("\\Seen",), when, len(raw), None, None, ())
                  for uid, raw in enumerate(headers, 1)]  # fmt: skip
        team = frozenset({"someone@team.example"})
        size = settings.BATCH_SIZE
        batches = [copies[i : i + size] for i in range(0, len(copies), size)]
        functools.reduce(lambda _, batch: stager.stage(batch, team), batches, None)
    else:
        raise ValueError(f"unknown stage {stage!r}: one of {', '.join(STAGES)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m inboxsync.bench.instructions",
        description="The child `measure` runs under callgrind (not useful alone).",
    )
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("headers", type=Path, help="a pickled list of raw headers")
    args = parser.parse_args(argv)
    run_stage(args.stage, pickle.loads(args.headers.read_bytes()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
