"""``python -m inboxsync.localenv up|down|status [--root DIR]``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from inboxsync.localenv.layout import HOST, LocalEnvError
from inboxsync.localenv.services import LocalServices, default_root, start, status, stop
from inboxsync.localenv.system import absolute


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m inboxsync.localenv up|down|status [--root DIR]``.

    Args:
        argv: Arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        Exit status: 0 on success; for ``status``, 1 if a service is not running.
    """
    parser = argparse.ArgumentParser(
        prog="python -m inboxsync.localenv",
        description="Start, stop or inspect the local PostgreSQL and Dovecot.",
    )
    parser.add_argument("command", choices=("up", "down", "status"))
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="state directory (default: $INBOXSYNC_LOCAL_DIR or <repo>/.local)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    root = args.root or default_root()
    try:
        if args.command == "up":
            _print_services(start(root))
            return 0
        if args.command == "down":
            stop(root)
            print(f"stopped local services under {absolute(root)}")
            return 0
        return _print_status(root)
    except LocalEnvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _print_services(services: LocalServices) -> None:
    print(f"root        {services.root}")
    print(f"postgresql  {services.pg_url('postgres')}  (pid {services.pg_pid})")
    print(f"imap        {services.host}:{services.imap_port}  (STARTTLS)")
    print(f"imaps       {services.host}:{services.imaps_port}  (pid {services.dovecot_pid})")
    print(f"ca_file     {services.ca_file}")


def _print_status(root: Path) -> int:
    report = status(root)
    pg, dc = report["postgresql"], report["dovecot"]
    print(f"root        {absolute(root)}")
    if pg["running"]:
        print(f"postgresql  running, pid {pg['pid']}, {HOST}:{pg['port']}")
    else:
        print("postgresql  not running")
    if dc["running"]:
        print(
            f"dovecot     running, pid {dc['pid']}, imap {HOST}:{dc['imap_port']}, "
            f"imaps {HOST}:{dc['imaps_port']}, ca_file {dc['ca_file']}"
        )
    else:
        print("dovecot     not running")
    return 0 if pg["running"] and dc["running"] else 1
