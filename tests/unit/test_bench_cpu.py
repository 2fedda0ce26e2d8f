"""CPU seconds of a server's process tree (`inboxsync.bench.cpu`), read from /proc.

A server's processes come and go while the bench reads them (a PostgreSQL backend per
connection, a Dovecot imap process per login): a process that exits mid-walk must count what
it has, or nothing, and never fail the bench.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from inboxsync.bench import cpu


def _exited_child() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_process_gone_before_its_times_are_read_counts_nothing():
    pid = _exited_child()
    assert cpu._children(pid) == []
    assert cpu._tree_live(pid) == 0


def test_a_process_gone_while_its_threads_are_listed_has_no_children(monkeypatch):
    # /proc/<pid>/task existed when glob looked, and was gone when it listed it (seen in a
    # `make bench` run: FileNotFoundError out of pathlib's scandir).
    pid = _exited_child()
    real_glob = Path.glob

    def glob(self: Path, pattern: str) -> object:
        if str(self) == f"/proc/{pid}/task":
            raise FileNotFoundError(2, "No such file or directory", str(self))
        return real_glob(self, pattern)

    monkeypatch.setattr(Path, "glob", glob)
    monkeypatch.setattr(cpu, "_own_and_reaped", lambda p: 7 if p == pid else 0)
    assert cpu._tree_live(pid) == 7


def test_a_master_that_is_not_running_is_an_error():
    with pytest.raises(OSError):
        cpu.tree_seconds(_exited_child())
