"""Local PostgreSQL and Dovecot for the demo, the tests and the benchmark.

This package is the one implementation of "start local services": ``make demo``, the pytest
harness and the benchmark all call :func:`start`. Everything lives under one root directory::

    services.json            ports picked on first start, reused later while they stay free
    .lock                    serialises concurrent start/stop calls on the same root
    pg/data/                 PostgreSQL cluster (owned by the ``postgres`` user when run as root)
    pg/run/                  its unix socket
    pg/postgresql.log
    dovecot/dovecot.conf     the one generated Dovecot config (rewritten on every start)
    dovecot/run/ state/      base_dir and state_dir
    dovecot/dovecot.log
    dovecot/tls/             local CA (``ca.crt``) and the server certificate it signed
    dovecot/users/<user>     one passwd-file per mail user (passdb and userdb)
    dovecot/mail/<user>/Maildir

Modules: `services` (the handle, start, stop, status), `postgres`, `dovecot`, `tls`, `layout`
(paths and constants), `system` (processes, ports, packages, files), `command` (the command line)::

    python -m inboxsync.localenv up|down|status [--root DIR]
"""

from inboxsync.localenv.command import main
from inboxsync.localenv.dovecot import DovecotExtras
from inboxsync.localenv.layout import HOST, LocalEnvError
from inboxsync.localenv.services import LocalServices, default_root, start, status, stop
from inboxsync.localenv.system import ensure_command

__all__ = [
    "HOST",
    "DovecotExtras",
    "LocalEnvError",
    "LocalServices",
    "default_root",
    "ensure_command",
    "main",
    "start",
    "status",
    "stop",
]
