"""CPU seconds of a process tree, read from /proc: how busy PostgreSQL and Dovecot were in a sync.

The sync's own process and its parse worker time themselves (`inboxsync.bench.probe`); the
servers serve from processes of their own (a PostgreSQL backend per connection, a Dovecot
``imap`` process per login) that come and go during the sync. Their master process accounts for
them: a child that has exited and been reaped is in the master's ``cutime``/``cstime``, a live
one is read directly. The difference of two readings is the tree's CPU time in between.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def tree_seconds(pid: int) -> float:
    """User plus system CPU seconds of ``pid``, its reaped children and its live descendants.

    Args:
        pid: The master process (the postmaster, Dovecot's master).

    Returns:
        Seconds; a difference of two readings is the CPU the tree used in between.

    Raises:
        OSError: ``pid`` is not running (or this is not Linux).
    """
    total = _own_and_reaped(pid)
    for child in _children(pid):
        total += _tree_live(child)
    return total / _TICKS


def _tree_live(pid: int) -> int:
    # A live descendant: its own time and its reaped children's (its live ones are walked).
    try:
        ticks = _own_and_reaped(pid)
    except OSError:  # exited meanwhile: its master's cutime has it now, or will
        return 0
    return ticks + sum(_tree_live(child) for child in _children(pid))


def _own_and_reaped(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the command name, which is in parentheses and may hold spaces: state is
    # field 3, utime 14, stime 15, cutime 16, cstime 17.
    fields = stat[stat.rindex(")") + 2 :].split()
    return sum(int(v) for v in fields[11:15])


def _children(pid: int) -> list[int]:
    # The process, or one of its threads, may exit while its tasks are listed or read: what has
    # gone has no live children left to walk.
    children: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").glob("*/children"))
    except OSError:
        return children
    for task in tasks:
        try:
            children += [int(p) for p in task.read_text().split()]
        except OSError:
            continue
    return children
