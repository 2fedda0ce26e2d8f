"""Local PostgreSQL and Dovecot for the demo, the tests and the benchmark.

This module is the one implementation of "start local services": ``make demo``, the pytest
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

Command line::

    python -m inboxsync.localenv up|down|status [--root DIR]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import grp
import hashlib
import itertools
import json
import logging
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2
from imapclient import imap_utf7
from psycopg2 import errors as pg_errors
from psycopg2 import sql

__all__ = [
    "HOST",
    "LocalEnvError",
    "LocalServices",
    "default_root",
    "main",
    "start",
    "status",
    "stop",
]

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
# Mail files need a non-zero owner; 5000 needs no /etc/passwd entry (Dovecot takes the uid
# from the userdb), so running as root never has to create OS users.
ROOT_MAIL_UID = 5000
ROOT_MAIL_GID = 5000
PG_SUPERUSER = "postgres"
DOVECOT_BIN = Path("/usr/sbin/dovecot")
DOVEADM_BIN = "doveadm"
DOVECOT_DH = Path("/usr/share/dovecot/dh.pem")
SPECIAL_FOLDERS: dict[str, str] = {
    "Sent": "\\Sent",
    "Drafts": "\\Drafts",
    "Trash": "\\Trash",
    "Junk": "\\Junk",
}
# sun_path is 108 bytes on Linux, including the terminating NUL.
MAX_UNIX_SOCKET_PATH = 107
# Dovecot's longest socket is <root>/dovecot/run/token-login/imap-urlauth (37 chars after root).
MAX_ROOT_PATH = MAX_UNIX_SOCKET_PATH - len("/dovecot/run/token-login/imap-urlauth")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
LOG_TAIL_LINES = 40

# Makes Maildir filenames unique across deliver() calls within one process.
_delivery_counter = itertools.count()


class LocalEnvError(RuntimeError):
    """A local service could not be installed, started, stopped or used."""


# --------------------------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """Every path under the root, in one place."""

    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / "services.json"

    @property
    def lock_file(self) -> Path:
        return self.root / ".lock"

    @property
    def pg_dir(self) -> Path:
        return self.root / "pg"

    @property
    def pg_data(self) -> Path:
        return self.pg_dir / "data"

    @property
    def pg_run(self) -> Path:
        return self.pg_dir / "run"

    @property
    def pg_log(self) -> Path:
        return self.pg_dir / "postgresql.log"

    @property
    def pg_pidfile(self) -> Path:
        return self.pg_data / "postmaster.pid"

    @property
    def pg_conf(self) -> Path:
        return self.pg_data / "inboxsync.conf"

    @property
    def dc_dir(self) -> Path:
        return self.root / "dovecot"

    @property
    def dc_conf(self) -> Path:
        return self.dc_dir / "dovecot.conf"

    @property
    def dc_run(self) -> Path:
        return self.dc_dir / "run"

    @property
    def dc_state(self) -> Path:
        return self.dc_dir / "state"

    @property
    def dc_log(self) -> Path:
        return self.dc_dir / "dovecot.log"

    @property
    def dc_startup_log(self) -> Path:
        return self.dc_dir / "startup.log"

    @property
    def dc_pidfile(self) -> Path:
        return self.dc_run / "master.pid"

    @property
    def dc_users(self) -> Path:
        return self.dc_dir / "users"

    @property
    def dc_mail(self) -> Path:
        return self.dc_dir / "mail"

    @property
    def tls_dir(self) -> Path:
        return self.dc_dir / "tls"

    @property
    def ca_file(self) -> Path:
        return self.tls_dir / "ca.crt"

    @property
    def server_cert(self) -> Path:
        return self.tls_dir / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.tls_dir / "server.key"


# --------------------------------------------------------------------------------------------
# The public handle
# --------------------------------------------------------------------------------------------


@dataclass
class LocalServices:
    """Running local PostgreSQL and Dovecot under one root directory.

    Attributes:
        root: Directory holding data, configs, logs and ``services.json``.
        pg_port: PostgreSQL TCP port on ``host``.
        imap_port: Plain IMAP port (STARTTLS offered, plaintext login allowed).
        imaps_port: Implicit-TLS IMAP port.
        ca_file: CA certificate that signed the server certificate; pass it to clients.
        pg_pid: Process id of the PostgreSQL postmaster.
        dovecot_pid: Process id of the Dovecot master.
        mail_uid: Owner uid of the mail folders (5000 when run as root).
        mail_gid: Owner gid of the mail folders.
        host: Address every service listens on.
    """

    root: Path
    pg_port: int
    imap_port: int
    imaps_port: int
    ca_file: Path
    pg_pid: int
    dovecot_pid: int
    mail_uid: int
    mail_gid: int
    host: str = HOST

    @property
    def _layout(self) -> _Layout:
        return _Layout(self.root)

    @property
    def dovecot_conf(self) -> Path:
        """Path of the generated Dovecot config file."""
        return self._layout.dc_conf

    # ---- PostgreSQL ------------------------------------------------------------------------

    def pg_url(self, dbname: str) -> str:
        """Return the libpq URL of a database on the local server.

        Args:
            dbname: Database name.

        Returns:
            ``postgresql://postgres@127.0.0.1:PORT/dbname``.
        """
        return f"postgresql://{PG_SUPERUSER}@{self.host}:{self.pg_port}/{dbname}"

    def create_database(self, name: str, *, drop: bool = False) -> str:
        """Create a database if it does not exist yet.

        Args:
            name: Database name.
            drop: Drop it first (``WITH (FORCE)``, disconnecting its sessions) and recreate.

        Returns:
            The database URL (see :meth:`pg_url`).
        """
        conn = psycopg2.connect(self.pg_url("postgres"), connect_timeout=10)
        try:
            # CREATE/DROP DATABASE cannot run inside a transaction block.
            conn.autocommit = True
            with conn.cursor() as cur:
                ident = sql.Identifier(name)
                if drop:
                    cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    # A concurrent caller may win the race between the check and the create.
                    with contextlib.suppress(pg_errors.DuplicateDatabase):
                        cur.execute(sql.SQL("CREATE DATABASE {}").format(ident))
        finally:
            conn.close()
        return self.pg_url(name)

    # ---- Dovecot ---------------------------------------------------------------------------

    def add_mail_user(self, username: str, password: str) -> None:
        """Create a mail user, or update its password; idempotent.

        Dovecot reads the user's passwd-file on the next login, no restart needed.

        Args:
            username: Login name, usually an email address such as ``alice@acme.example``.
                Dovecot lowercases logins, so the name is stored lowercased.
            password: Plain-text password (stored as a salted SHA-512 hash).
        """
        user = _normalize_user(username)
        home = self._home(user)
        _mkdir_owned(home, self.mail_uid, self.mail_gid, mode=0o700)
        self.maildir(user)
        path = self._layout.dc_users / user
        fields = f"{self.mail_uid}:{self.mail_gid}::{home}::"
        old = _read_passwd_entry(path)
        if old is not None and old[1] == fields and _ssha512_verify(password, old[0]):
            return
        _write_passwd_file(path, f"{user}:{_ssha512(password)}:{fields}\n")
        if old is not None:
            # Dovecot re-stats a passwd-file at most once per second: a login earlier in this
            # second would keep serving the old entry until the clock ticks over.
            _sleep_past_second()

    def maildir(self, username: str, folder: str = "INBOX") -> Path:
        """Return (and create) the Maildir directory of one folder.

        Args:
            username: Mail user.
            folder: IMAP folder name with "/" as separator; ``INBOX`` is ``~/Maildir``, other
                folders are Maildir++ ``.Name`` directories.

        Returns:
            The folder directory, containing ``cur``, ``new`` and ``tmp``.
        """
        user = _normalize_user(username)
        base = self._home(user) / "Maildir"
        path = base if folder.upper() == "INBOX" else base / _maildirpp_name(folder)
        uid, gid = self.mail_uid, self.mail_gid
        _mkdir_owned(self._home(user), uid, gid, mode=0o700)
        # INBOX first: creating a subfolder first would make its parent with the wrong mode.
        for directory in dict.fromkeys((base, path)):
            for sub in ("", "cur", "new", "tmp"):
                _mkdir_owned(directory / sub if sub else directory, uid, gid, mode=0o700)
        if path != base:
            # Dovecot and Courier mark Maildir++ subfolders with this empty file.
            marker = path / "maildirfolder"
            if not marker.exists():
                marker.touch(mode=0o600)
                _chown(marker, uid, gid)
        return path

    def deliver(
        self,
        username: str,
        folder: str,
        messages: Iterable[bytes],
        *,
        seen: bool = False,
    ) -> int:
        """Write messages straight into a Maildir folder (the fast seeding path).

        Each message is written to ``tmp/`` and renamed into ``new/`` (or ``cur/`` with the
        ``\\Seen`` flag when ``seen``), so Dovecot never sees a half-written file. Dovecot
        assigns UIDs when it next scans the folder; INTERNALDATE is the delivery time.

        Args:
            username: Mail user (see :meth:`add_mail_user`).
            folder: IMAP folder name, e.g. ``INBOX`` or ``Sent``.
            messages: Raw RFC 5322 messages.
            seen: Deliver them as already read.

        Returns:
            Number of messages written.
        """
        directory = self.maildir(username, folder)
        tmp_dir = directory / "tmp"
        dest_dir = directory / ("cur" if seen else "new")
        suffix = ":2,S" if seen else ""
        chown = os.geteuid() == 0
        prefix = _maildir_prefix()
        count = 0
        for message in messages:
            name = f"{prefix}Q{next(_delivery_counter)}.{_MAILDIR_HOST}"
            tmp_path = tmp_dir / name
            fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(fd, "wb") as fh:
                fh.write(message)
                if chown:
                    os.fchown(fh.fileno(), self.mail_uid, self.mail_gid)
            os.rename(tmp_path, dest_dir / f"{name}{suffix}")
            count += 1
        return count

    def doveadm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run ``doveadm -c dovecot.conf ARGS`` against the local Dovecot.

        Args:
            *args: doveadm arguments, e.g. ``"mailbox", "status", "-u", user, "messages", "*"``.
            check: Raise :class:`LocalEnvError` on a non-zero exit status.

        Returns:
            The finished process, stdout and stderr captured as text.
        """
        return _run([DOVEADM_BIN, "-c", str(self.dovecot_conf), *args], check=check)

    def stop(self) -> None:
        """Stop Dovecot and PostgreSQL (see :func:`stop`)."""
        stop(self.root)

    def restart_dovecot(self) -> None:
        """Stop Dovecot and start it again on the same ports (a fault the tests inject).

        Every process of the instance gets SIGTERM, open IMAP sessions included: stopping only
        the master leaves running sessions alive, which is no fault at all.
        """
        pid = _dovecot_running_pid(self._layout)
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(os.getpgid(pid), signal.SIGTERM)
            _wait_gone(pid, "Dovecot", self._layout.dc_log)
        start(self.root)

    def restart_postgres(self) -> None:
        """Stop PostgreSQL (fast: open sessions are cut) and start it again on the same port."""
        _stop_postgres(self._layout)
        start(self.root)

    def _home(self, user: str) -> Path:
        return self._layout.dc_mail / user


# --------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------


def default_root() -> Path:
    """Return ``$INBOXSYNC_LOCAL_DIR`` or ``<repo>/.local``."""
    env = os.environ.get("INBOXSYNC_LOCAL_DIR")
    if env:
        return Path(env)
    # include/inboxsync/localenv.py -> the repository root is two levels above the package.
    return Path(__file__).resolve().parents[2] / ".local"


@dataclass(frozen=True)
class DovecotExtras:
    """Extra Dovecot configuration for tests that need a differently behaving server.

    Attributes:
        settings: Text appended to the config (e.g. ``imap_capability = IMAP4rev1 ...`` to
            switch CONDSTORE/QRESYNC off, or ``mail_max_userip_connections``).
        first_passdb: A passdb block placed before the passwd-file one (e.g. OAuth2).
        auth_mechanisms: Replaces ``plain login``.
    """

    settings: str = ""
    first_passdb: str = ""
    auth_mechanisms: str = "plain login"


def start(root: Path, *, dovecot: DovecotExtras | None = None) -> LocalServices:
    """Start PostgreSQL and Dovecot under ``root``, or reuse them if already running.

    Idempotent: services whose pidfile names a live process that answers on its saved port are
    reused as they are. Otherwise they are (re)started on the saved ports if still free, else
    on new free ports; ``services.json`` and the configs are rewritten accordingly. Missing
    packages are installed with apt (through sudo when not root).

    Args:
        root: Directory for all data, configs and logs (created if missing).
        dovecot: Extra Dovecot configuration; a root started with other extras is restarted.

    Returns:
        Handle on the running services.

    Raises:
        LocalEnvError: A service could not be installed or started (the message includes the
            tail of its log).
    """
    began = time.monotonic()
    layout = _Layout(_absolute(root))
    _check_root_path(layout.root)
    layout.root.mkdir(parents=True, exist_ok=True)
    with _locked(layout):
        if os.geteuid() == 0:
            _grant_traverse(layout.root)
        saved = _load_state(layout)
        pg_port, pg_pid = _ensure_postgres(layout, saved.get("pg_port"))
        imap_port, imaps_port, dc_pid = _ensure_dovecot(
            layout,
            saved.get("imap_port"),
            saved.get("imaps_port"),
            taken={pg_port},
            extras=dovecot or DovecotExtras(),
        )
        _save_state(
            layout,
            {
                "pg_port": pg_port,
                "imap_port": imap_port,
                "imaps_port": imaps_port,
                "pg_version": _pg_version(layout),
                "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )
    uid, gid = _mail_ids()
    log.info("local services ready under %s in %.2fs", layout.root, time.monotonic() - began)
    return LocalServices(
        root=layout.root,
        pg_port=pg_port,
        imap_port=imap_port,
        imaps_port=imaps_port,
        ca_file=layout.ca_file,
        pg_pid=pg_pid,
        dovecot_pid=dc_pid,
        mail_uid=uid,
        mail_gid=gid,
    )


def stop(root: Path) -> None:
    """Stop Dovecot and PostgreSQL under ``root``; a no-op for what is not running.

    Args:
        root: The directory given to :func:`start`.
    """
    layout = _Layout(_absolute(root))
    if not layout.root.is_dir():
        return
    with _locked(layout):
        _stop_dovecot(layout)
        _stop_postgres(layout)


def status(root: Path) -> dict[str, dict[str, Any]]:
    """Report what runs under ``root``.

    Args:
        root: The directory given to :func:`start`.

    Returns:
        ``{"postgresql": {...}, "dovecot": {...}}``, each with ``running`` (bool), ``pid`` and
        ports as saved in ``services.json``.
    """
    layout = _Layout(_absolute(root))
    saved = _load_state(layout) if layout.root.is_dir() else {}
    pg_pid = _pg_running_pid(layout)
    dc_pid = _dovecot_running_pid(layout)
    pg_port = saved.get("pg_port")
    imap_port, imaps_port = saved.get("imap_port"), saved.get("imaps_port")
    return {
        "postgresql": {
            "running": bool(pg_pid and pg_port and _port_answers(pg_port)),
            "pid": pg_pid,
            "port": pg_port,
        },
        "dovecot": {
            "running": bool(dc_pid and imaps_port and _port_answers(imaps_port)),
            "pid": dc_pid,
            "imap_port": imap_port,
            "imaps_port": imaps_port,
            "ca_file": str(layout.ca_file),
        },
    }


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


def _ensure_postgres(layout: _Layout, saved_port: int | None) -> tuple[int, int]:
    """Reuse or start PostgreSQL; return (port, postmaster pid)."""
    bindir = _pg_bindir(layout)
    pid = _pg_running_pid(layout)
    if pid and saved_port == _pg_pidfile_port(layout) and _port_answers(saved_port):
        if not _write_pg_conf(layout, saved_port):
            return saved_port, pid
        log.info("PostgreSQL settings changed: restarting")
    if pid:
        _stop_postgres(layout)
    port = _reuse_or_pick_port(saved_port, taken=set())
    _prepare_pg_dirs(layout)
    if not (layout.pg_data / "PG_VERSION").exists():
        _initdb(layout, bindir)
    _write_pg_conf(layout, port)
    _clear_stale_pidfile(layout.pg_pidfile)
    _pg_ctl(layout, bindir, "start", "-l", str(layout.pg_log), "-w", "-t", "60")
    pid = _pg_running_pid(layout)
    if not pid or not _port_answers(port):
        raise LocalEnvError(
            f"PostgreSQL did not come up on {HOST}:{port}; log {layout.pg_log}:\n"
            f"{_tail(layout.pg_log)}"
        )
    return port, pid


def _stop_postgres(layout: _Layout) -> None:
    pid = _pg_running_pid(layout)
    if not pid:
        return
    bindir = _pg_bindir(layout, install=False)
    _pg_ctl(layout, bindir, "stop", "-m", "fast", "-w", "-t", str(int(STOP_TIMEOUT_S)))
    _wait_gone(pid, "PostgreSQL", layout.pg_log)


def _pg_running_pid(layout: _Layout) -> int | None:
    return _live_pid(layout.pg_pidfile, needle=str(layout.pg_data))


def _pg_pidfile_port(layout: _Layout) -> int | None:
    """The port the running server listens on (line 4 of postmaster.pid)."""
    try:
        return int(layout.pg_pidfile.read_text().splitlines()[3])
    except (OSError, IndexError, ValueError):
        return None


def _pg_version(layout: _Layout) -> str | None:
    version_file = layout.pg_data / "PG_VERSION"
    return version_file.read_text().strip() if version_file.exists() else None


def _pg_bindir(layout: _Layout, *, install: bool = True) -> Path:
    """Binaries matching the cluster's major version, else the newest installed."""
    available = _installed_pg_bindirs()
    if not available and install:
        _apt_install(["postgresql"])
        available = _installed_pg_bindirs()
    if not available:
        raise LocalEnvError("no PostgreSQL binaries in /usr/lib/postgresql/*/bin")
    wanted = _pg_version(layout)
    if wanted is None:
        return available[max(available)]
    if int(wanted) not in available:
        raise LocalEnvError(
            f"{layout.pg_data} was created by PostgreSQL {wanted}, but only versions "
            f"{sorted(available)} are installed; install postgresql-{wanted} or delete the dir"
        )
    return available[int(wanted)]


def _installed_pg_bindirs() -> dict[int, Path]:
    found: dict[int, Path] = {}
    for bindir in Path("/usr/lib/postgresql").glob("*/bin"):
        if bindir.parent.name.isdigit() and (bindir / "pg_ctl").exists():
            found[int(bindir.parent.name)] = bindir
    return found


def _prepare_pg_dirs(layout: _Layout) -> None:
    """Create the PostgreSQL dirs, owned by the user the server runs as."""
    uid, gid = _pg_os_ids()
    for directory, mode in (
        (layout.pg_dir, 0o755),
        (layout.pg_data, 0o700),
        (layout.pg_run, 0o755),
    ):
        _mkdir_owned(directory, uid, gid, mode=mode)


def _initdb(layout: _Layout, bindir: Path) -> None:
    cmd = [
        str(bindir / "initdb"),
        "-D",
        str(layout.pg_data),
        "-U",
        PG_SUPERUSER,
        "--auth=trust",
        "--encoding=UTF8",
        # Codepoint order (fast, the same everywhere); Unicode-aware lower()/upper() if possible.
        "--lc-collate=C",
        f"--lc-ctype={_utf8_c_locale()}",
        "--lc-messages=C",
        "--lc-monetary=C",
        "--lc-numeric=C",
        "--lc-time=C",
        # Skipping the final fsync of a throwaway dev cluster saves seconds on a cold start.
        "--no-sync",
    ]
    result = _run(_as_pg_user(cmd), cwd=layout.pg_dir, check=False)
    if result.returncode != 0:
        raise LocalEnvError(f"initdb failed:\n{_output_tail(result)}")
    with (layout.pg_data / "postgresql.conf").open("a") as fh:
        fh.write("\n# Settings managed by inboxsync.localenv\ninclude 'inboxsync.conf'\n")


def _utf8_c_locale() -> str:
    """``C.UTF-8`` if the OS has it (Debian does), else plain ``C``."""
    try:
        result = _run(["locale", "-a"], check=False)
    except LocalEnvError:  # no `locale` binary: assume a minimal system
        return "C"
    names = {name.lower() for name in result.stdout.split()}
    return "C.UTF-8" if {"c.utf8", "c.utf-8"} & names else "C"


def _write_pg_conf(layout: _Layout, port: int) -> bool:
    """Write the managed settings file; return True if it changed."""
    socket_dir = str(layout.pg_run)
    if len(f"{socket_dir}/.s.PGSQL.{port}") > MAX_UNIX_SOCKET_PATH:
        # A unix socket path longer than sun_path cannot exist: serve TCP only.
        log.warning("root path too long for a unix socket; PostgreSQL serves TCP only")
        socket_dir = ""
    text = (
        "# Generated by inboxsync.localenv on every start: edit the code, not this file.\n"
        f"listen_addresses = '{HOST}'\n"
        f"port = {port}\n"
        f"unix_socket_directories = '{socket_dir}'\n"
        "max_connections = 200\n"
        "shared_buffers = 128MB\n"
        "log_line_prefix = '%m [%p] %q%u@%d '\n"
        "log_timezone = 'UTC'\n"
    )
    uid, gid = _pg_os_ids()
    return _write_if_changed(layout.pg_conf, text, uid=uid, gid=gid, mode=0o600)


def _pg_ctl(layout: _Layout, bindir: Path, *args: str) -> None:
    cmd = [str(bindir / "pg_ctl"), "-D", str(layout.pg_data), "-s", *args]
    # pg_ctl redirects the server's stdio to the log, so capturing its output cannot hang.
    result = _run(_as_pg_user(cmd), cwd=layout.pg_dir, check=False)
    if result.returncode != 0:
        raise LocalEnvError(
            f"pg_ctl {args[0]} failed:\n{_output_tail(result)}\n"
            f"log {layout.pg_log}:\n{_tail(layout.pg_log)}"
        )


def _as_pg_user(cmd: list[str]) -> list[str]:
    """Run as ``postgres`` when root: initdb and postgres refuse to run as root."""
    if os.geteuid() != 0:
        return cmd
    _pg_os_ids()  # fail early and clearly if the user is missing
    return ["runuser", "-u", "postgres", "--", *cmd]


def _pg_os_ids() -> tuple[int, int]:
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError as exc:
        raise LocalEnvError(
            "running as root needs the 'postgres' OS user (created by the Debian "
            "postgresql package): apt-get install -y postgresql"
        ) from exc
    return entry.pw_uid, entry.pw_gid


# --------------------------------------------------------------------------------------------
# Dovecot
# --------------------------------------------------------------------------------------------


def _ensure_dovecot(
    layout: _Layout,
    saved_imap: int | None,
    saved_imaps: int | None,
    *,
    taken: set[int],
    extras: DovecotExtras,
) -> tuple[int, int, int]:
    """Reuse or start Dovecot; return (imap port, imaps port, master pid)."""
    if not DOVECOT_BIN.exists():
        _apt_install(["dovecot-imapd"])
    if shutil.which("openssl") is None:
        _apt_install(["openssl"])
    _prepare_dovecot_dirs(layout)
    new_cert = _ensure_tls(layout)
    pid = _dovecot_running_pid(layout)
    if (
        pid
        and saved_imap
        and saved_imaps
        and _port_answers(saved_imap)
        and _port_answers(saved_imaps)
    ):
        conf_changed = _write_dovecot_conf(layout, saved_imap, saved_imaps, extras)
        if not (conf_changed or new_cert):
            return saved_imap, saved_imaps, pid
        log.info("Dovecot config or certificate changed: restarting")
    if pid:
        _stop_dovecot(layout)
    imap_port = _reuse_or_pick_port(saved_imap, taken=taken)
    imaps_port = _reuse_or_pick_port(saved_imaps, taken=taken | {imap_port})
    _write_dovecot_conf(layout, imap_port, imaps_port, extras)
    # Stale sockets from an earlier run make Dovecot's processes retry connecting for
    # seconds (the disabled anvil-auth-penalty one for 5 s); it recreates what it needs.
    shutil.rmtree(layout.dc_run, ignore_errors=True)
    layout.dc_run.mkdir(mode=0o755)
    with layout.dc_startup_log.open("w") as out:
        # Output goes to a file, not a pipe: the daemon could keep a pipe open forever.
        code = subprocess.call(
            [str(DOVECOT_BIN), "-c", str(layout.dc_conf)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=layout.dc_dir,
        )
    if code != 0:
        raise LocalEnvError(
            f"dovecot exited with {code}:\n{_tail(layout.dc_startup_log)}\n"
            f"log {layout.dc_log}:\n{_tail(layout.dc_log)}"
        )
    _wait_imap_ready(layout, imaps_port, tls=True)
    _wait_imap_ready(layout, imap_port, tls=False)
    pid = _dovecot_running_pid(layout)
    if not pid:
        raise LocalEnvError(f"Dovecot has no live master.pid; log:\n{_tail(layout.dc_log)}")
    return imap_port, imaps_port, pid


def _stop_dovecot(layout: _Layout) -> None:
    pid = _dovecot_running_pid(layout)
    if not pid:
        return
    # SIGTERM is what `dovecot stop` sends; the master then stops all its children.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    _wait_gone(pid, "Dovecot", layout.dc_log)


def _dovecot_running_pid(layout: _Layout) -> int | None:
    return _live_pid(layout.dc_pidfile, needle=str(layout.dc_conf))


def _mail_ids() -> tuple[int, int]:
    if os.geteuid() == 0:
        return ROOT_MAIL_UID, ROOT_MAIL_GID
    return os.getuid(), os.getgid()


def _prepare_dovecot_dirs(layout: _Layout) -> None:
    for directory in (layout.dc_dir, layout.dc_run, layout.dc_state, layout.tls_dir):
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    _mkdir_owned(layout.dc_mail, os.geteuid(), os.getegid(), mode=0o755)
    # The auth process runs as the Debian `dovecot` user when root: it must read the users.
    auth_gid = _dovecot_auth_gid()
    _mkdir_owned(layout.dc_users, os.geteuid(), auth_gid, mode=0o750)


def _dovecot_auth_gid() -> int:
    if os.geteuid() != 0:
        return os.getgid()
    try:
        return grp.getgrnam("dovecot").gr_gid
    except KeyError as exc:
        raise LocalEnvError(
            "the 'dovecot' group is missing; reinstall dovecot-core (apt-get install "
            "--reinstall dovecot-core)"
        ) from exc


def _write_dovecot_conf(
    layout: _Layout, imap_port: int, imaps_port: int, extras: DovecotExtras
) -> bool:
    """Write the one Dovecot config file; return True if it changed."""
    text = _dovecot_conf_text(layout, imap_port, imaps_port, extras)
    return _write_if_changed(layout.dc_conf, text, mode=0o644)


def _dovecot_conf_text(
    layout: _Layout, imap_port: int, imaps_port: int, extras: DovecotExtras
) -> str:
    uid, _gid = _mail_ids()
    if os.geteuid() == 0:
        # Debian's dovecot/dovenull users (the defaults) serve internal and login processes.
        identity = ""
        unchrooted = ""
    else:
        me = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        # Without the group line Dovecot tries to chown its sockets to the `dovecot` group.
        identity = (
            f"default_internal_user = {me}\ndefault_internal_group = {group}\n"
            f"default_login_user = {me}\n"
        )
        # chroot needs root; without these two lines a non-root Dovecot refuses to start.
        unchrooted = "  chroot =\n"
    dh = f"ssl_dh = <{DOVECOT_DH}\n" if DOVECOT_DH.exists() else ""
    mailboxes = "".join(
        f"  mailbox {name} {{\n    special_use = {flag}\n"
        + ("    auto = subscribe\n" if name == "Sent" else "")
        + "  }\n"
        for name, flag in SPECIAL_FOLDERS.items()
    )
    users = layout.dc_users
    return f"""\
# Generated by inboxsync.localenv on every start: edit the code, not this file.
instance_name = inboxsync-{_short_hash(str(layout.root))}
base_dir = {layout.dc_run}
state_dir = {layout.dc_state}
log_path = {layout.dc_log}
protocols = imap
listen = {HOST}
{identity}first_valid_uid = {uid}

ssl = yes
ssl_cert = <{layout.server_cert}
ssl_key = <{layout.server_key}
ssl_min_protocol = TLSv1.2
{dh}
# Plain port: STARTTLS is offered, but tests may also log in without it.
disable_plaintext_auth = no
auth_mechanisms = {extras.auth_mechanisms}
auth_verbose = yes
# Tests try wrong passwords on purpose: answer them at once (default 2 s).
auth_failure_delay = 0

mail_location = maildir:~/Maildir

# One passwd-file per user: Dovecot re-reads a changed file on the next lookup, and a new
# user's file is read fresh, so add_mail_user never needs a reload.
{extras.first_passdb}
passdb {{
  driver = passwd-file
  args = scheme=SSHA512 {users}/%Lu
}}
userdb {{
  driver = passwd-file
  args = {users}/%Lu
}}

namespace inbox {{
  inbox = yes
  separator = /
{mailboxes}}}

protocol imap {{
  mail_max_userip_connections = 100
}}

service imap {{
  # The index cache of a folder of 200,000 messages is about 220 MB, over the default 256 MB
  # address-space limit once mapped (make bench at N=200,000 ran the imap process out of memory).
  vsz_limit = 1G
}}

service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {imap_port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {imaps_port}
    ssl = yes
  }}
{unchrooted}}}
service anvil {{
{unchrooted}  # No per-IP auth penalty: after a failed login from 127.0.0.1 every later login,
  # good or bad, would wait 2-15 s for 29 s. Mode 0 disables the listener.
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{extras.settings}
"""


def _ensure_tls(layout: _Layout) -> bool:
    """Create a local CA and a server certificate for 127.0.0.1/localhost if needed.

    Returns:
        True if new files were made (a running Dovecot still serves the old certificate).
    """
    files = (layout.ca_file, layout.server_cert, layout.server_key)
    if all(f.exists() for f in files) and _cert_valid_for_a_day(layout.server_cert):
        return False
    tls = layout.tls_dir
    cnf = tls / "openssl.cnf"
    cnf.write_text(_OPENSSL_CNF)
    ca_key = tls / "ca.key"
    csr = tls / "server.csr"
    for key in (ca_key, layout.server_key):
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key)
        key.chmod(0o600)
    _openssl(
        "req", "-config", cnf, "-new", "-x509", "-key", ca_key, "-out", layout.ca_file,
        "-days", "3650", "-subj", "/CN=inboxsync local CA", "-extensions", "v3_ca",
    )  # fmt: skip
    _openssl(
        "req", "-config", cnf, "-new", "-key", layout.server_key, "-out", csr,
        "-subj", "/CN=localhost",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", csr, "-CA", layout.ca_file, "-CAkey", ca_key,
        "-set_serial", f"0x{secrets.token_hex(16)}", "-days", "825",
        "-extfile", cnf, "-extensions", "v3_server", "-out", layout.server_cert,
    )  # fmt: skip
    csr.unlink()
    layout.ca_file.chmod(0o644)
    layout.server_cert.chmod(0o644)
    return True


# Strict enough for Python 3.13's VERIFY_X509_STRICT (key identifiers, critical constraints).
_OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = inboxsync
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


def _openssl(*args: str | Path) -> None:
    result = _run(["openssl", *map(str, args)], check=False)
    if result.returncode != 0:
        raise LocalEnvError(f"openssl {args[0]} failed:\n{_output_tail(result)}")


def _cert_valid_for_a_day(cert: Path) -> bool:
    cmd = ["openssl", "x509", "-checkend", "86400", "-noout", "-in", str(cert)]
    return _run(cmd, check=False).returncode == 0


def _wait_imap_ready(layout: _Layout, port: int, *, tls: bool) -> None:
    """Wait for an IMAP greeting; with ``tls`` the certificate must verify against the CA."""
    context = ssl.create_default_context(cafile=str(layout.ca_file)) if tls else None
    deadline = time.monotonic() + START_TIMEOUT_S
    error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=5) as raw:
                conn = context.wrap_socket(raw, server_hostname=HOST) if context else raw
                with conn:
                    greeting = conn.recv(1024)
            if greeting.startswith(b"* OK"):
                return
            error = LocalEnvError(f"unexpected greeting {greeting[:100]!r}")
        except ssl.SSLCertVerificationError as exc:
            raise LocalEnvError(f"IMAPS certificate does not verify: {exc}") from exc
        except OSError as exc:
            error = exc
        time.sleep(0.05)
    raise LocalEnvError(
        f"Dovecot did not answer on {HOST}:{port} ({'IMAPS' if tls else 'IMAP'}): {error}\n"
        f"log {layout.dc_log}:\n{_tail(layout.dc_log)}"
    )


# ---- mail users and Maildir -----------------------------------------------------------------

_BAD_USER_CHARS = re.compile(r"[\s:/%\\\x00-\x1f\x7f]")


def _normalize_user(username: str) -> str:
    """Lowercase like Dovecot's default ``auth_username_format = %Lu``; reject unsafe names."""
    user = username.strip().lower()
    if not user or user.startswith(".") or _BAD_USER_CHARS.search(user):
        raise ValueError(f"unusable mail user name: {username!r}")
    return user


def _maildirpp_name(folder: str) -> str:
    """Map an IMAP folder name ("/" separated) to its Maildir++ directory name."""
    parts = folder.strip("/").split("/")
    if not all(parts) or any("." in part for part in parts):
        # Maildir++ uses "." as its on-disk hierarchy separator.
        raise ValueError(f"folder name not representable in Maildir++: {folder!r}")
    # Dovecot keeps mailbox names in modified UTF-7 on disk.
    return "." + ".".join(imap_utf7.encode(part).decode("ascii") for part in parts)


def _maildir_prefix() -> str:
    now = time.time()
    return f"{int(now)}.M{int((now % 1) * 1_000_000)}P{os.getpid()}"


# Maildir filenames must not contain "/" or ":"; the spec escapes them as octal.
_MAILDIR_HOST = socket.gethostname().replace("/", "\\057").replace(":", "\\072") or "localhost"


def _ssha512(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.sha512(password.encode() + salt).digest()
    return "{SSHA512}" + base64.b64encode(digest + salt).decode("ascii")


def _ssha512_verify(password: str, stored: str) -> bool:
    if not stored.startswith("{SSHA512}"):
        return False
    raw = base64.b64decode(stored.removeprefix("{SSHA512}"))
    digest, salt = raw[:64], raw[64:]
    return secrets.compare_digest(hashlib.sha512(password.encode() + salt).digest(), digest)


def _read_passwd_entry(path: Path) -> tuple[str, str] | None:
    """Return (password hash, remaining fields) of a one-user passwd-file, if present."""
    try:
        line = path.read_text().strip()
    except FileNotFoundError:
        return None
    _user, password, rest = line.split(":", 2)
    return password, rest


def _write_passwd_file(path: Path, text: str) -> None:
    previous = path.stat().st_mtime_ns if path.exists() else 0
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.chmod(0o640)
    _chown(tmp, os.geteuid(), _dovecot_auth_gid())
    os.replace(tmp, path)
    # Dovecot notices a change by (mtime in seconds, size); a salted hash keeps the size, so
    # move the mtime to a later second than the previous version's.
    second = 1_000_000_000
    mtime = max(time.time_ns(), (previous // second + 1) * second)
    os.utime(path, ns=(mtime, mtime))


def _sleep_past_second() -> None:
    time.sleep(1.0 - (time.time() % 1.0) + 0.02)


# --------------------------------------------------------------------------------------------
# Processes, ports, files
# --------------------------------------------------------------------------------------------


def _live_pid(pidfile: Path, *, needle: str) -> int | None:
    """Pid from a pidfile if that process is alive and is ours (its command line has needle)."""
    try:
        pid = int(pidfile.read_text().split()[0])
    except (FileNotFoundError, IndexError, ValueError, PermissionError):
        return None
    if not _pid_alive(pid):
        return None
    # A reused pid must never be mistaken for our server (and then signalled).
    cmdline = _cmdline(pid)
    if cmdline is not None and needle not in cmdline:
        return None
    return pid


def _cmdline(pid: int) -> str | None:
    """A process's command line, or None where /proc is unavailable."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        # Either the process just exited or there is no /proc (not Linux).
        return "" if Path("/proc/self").exists() else None
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clear_stale_pidfile(pidfile: Path) -> None:
    """Remove a pidfile whose process is gone or is someone else's (servers refuse to start)."""
    if pidfile.exists():
        pidfile.unlink()


def _wait_gone(pid: int, name: str, logfile: Path) -> None:
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not _pid_alive(pid) or _is_zombie(pid):
            return
        time.sleep(0.05)
    raise LocalEnvError(f"{name} (pid {pid}) did not stop; log {logfile}:\n{_tail(logfile)}")


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _port_answers(port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Servers bind with SO_REUSEADDR too, so lingering TIME_WAIT sockets do not count.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _reuse_or_pick_port(saved: int | None, *, taken: set[int]) -> int:
    if saved and saved not in taken and _port_is_free(saved):
        return saved
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port not in taken:
            if saved:
                log.info("port %d is taken, using %d", saved, port)
            return port


def ensure_command(command: str, package: str) -> str:
    """The path of ``command``, installing Debian's ``package`` first when it is missing.

    Raises:
        LocalEnvError: It is missing and could not be installed.
    """
    path = shutil.which(command)
    if path is None:
        _apt_install([package])
        path = shutil.which(command)
    if path is None:
        raise LocalEnvError(f"{package} is installed but {command!r} is not on PATH")
    return path


def _apt_install(packages: Sequence[str]) -> None:
    """Install Debian packages, via sudo when not root; `apt-get update` once if needed."""
    prefix: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") is None:
            raise LocalEnvError(f"please install {' '.join(packages)} (no sudo available)")
        prefix = ["sudo"]
    if shutil.which("apt-get") is None:
        raise LocalEnvError(f"please install {' '.join(packages)} (apt-get not found)")
    base = [*prefix, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]
    log.info("installing %s with apt-get", " ".join(packages))
    result = _run([*base, "install", "-y", *packages], check=False)
    if result.returncode != 0:
        _run([*base, "update"], check=False)
        result = _run([*base, "install", "-y", *packages], check=False)
    if result.returncode != 0:
        raise LocalEnvError(f"apt-get install {' '.join(packages)} failed:\n{_output_tail(result)}")


def _run(
    cmd: Sequence[str], *, cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            list(cmd),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError as exc:
        raise LocalEnvError(f"command not found: {cmd[0]}") from exc
    if check and result.returncode != 0:
        raise LocalEnvError(
            f"{' '.join(cmd)} exited with {result.returncode}:\n{_output_tail(result)}"
        )
    return result


def _output_tail(result: subprocess.CompletedProcess[str]) -> str:
    text = (result.stdout or "") + (result.stderr or "")
    return "\n".join(text.strip().splitlines()[-LOG_TAIL_LINES:])


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


def _write_if_changed(
    path: Path, text: str, *, uid: int | None = None, gid: int | None = None, mode: int = 0o644
) -> bool:
    """Atomically write ``text`` unless the file already holds it; return True if written."""
    with contextlib.suppress(FileNotFoundError):
        if path.read_text() == text:
            return False
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    if uid is not None and gid is not None:
        _chown(tmp, uid, gid)
    os.replace(tmp, path)
    return True


def _mkdir_owned(path: Path, uid: int, gid: int, *, mode: int) -> None:
    if not path.is_dir():
        path.mkdir(mode=mode, parents=True, exist_ok=True)
        path.chmod(mode)  # mkdir's mode is filtered by the umask
    _chown(path, uid, gid)


def _chown(path: Path, uid: int, gid: int) -> None:
    """chown when root; a normal user owns what it creates already."""
    if os.geteuid() != 0:
        return
    st = path.stat()
    if (st.st_uid, st.st_gid) != (uid, gid):
        os.chown(path, uid, gid)


def _grant_traverse(root: Path) -> None:
    """Let the postgres, dovecot and mail users reach ``root`` (o+x on it and its parents).

    Only search permission is added, never read: e.g. pytest's 0700 ``/tmp/pytest-of-root``
    would otherwise stop the server processes, which run as other users, at the door.
    """
    for directory in (root, *root.parents):
        mode = directory.stat().st_mode
        if mode & 0o001:
            continue
        log.info("adding o+x to %s so service users can reach %s", directory, root)
        try:
            directory.chmod((mode & 0o7777) | 0o001)
        except OSError as exc:  # e.g. root-squashed NFS: the service log will say more
            log.warning("cannot add o+x to %s: %s", directory, exc)


def _check_root_path(root: Path) -> None:
    # Dovecot splits passwd-file args on spaces and expands "%"; its sockets live in base_dir.
    if re.search(r"[\s%]", str(root)):
        raise LocalEnvError(f"root path must not contain whitespace or '%': {root}")
    if len(str(root)) > MAX_ROOT_PATH:
        raise LocalEnvError(
            f"root path is too long for Dovecot's unix sockets (max {MAX_ROOT_PATH} chars): "
            f"{root}; set INBOXSYNC_LOCAL_DIR or --root to a shorter directory"
        )


def _absolute(root: Path) -> Path:
    return Path(root).expanduser().resolve()


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:8]


@contextlib.contextmanager
def _locked(layout: _Layout) -> Iterator[None]:
    """Hold an exclusive lock on the root so concurrent starts do not race."""
    with layout.lock_file.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _load_state(layout: _Layout) -> dict[str, Any]:
    try:
        data = json.loads(layout.state_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_state(layout: _Layout, state: dict[str, Any]) -> None:
    _write_if_changed(layout.state_file, json.dumps(state, indent=2) + "\n", mode=0o644)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


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
            print(f"stopped local services under {_absolute(root)}")
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
    print(f"root        {_absolute(root)}")
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


if __name__ == "__main__":
    raise SystemExit(main())
