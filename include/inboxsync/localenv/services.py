"""The public handle on the local services: start, stop, status, and `LocalServices`."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg2
from psycopg2 import errors as pg_errors
from psycopg2 import sql

from inboxsync.localenv.dovecot import (
    MAILDIR_HOST,
    DovecotExtras,
    dovecot_running_pid,
    ensure_dovecot,
    mail_ids,
    maildir_prefix,
    maildirpp_name,
    normalize_user,
    read_passwd_entry,
    sleep_past_second,
    ssha512,
    ssha512_verify,
    stop_dovecot,
    write_passwd_file,
)
from inboxsync.localenv.layout import DOVEADM_BIN, HOST, PG_SUPERUSER, Layout
from inboxsync.localenv.postgres import ensure_postgres, pg_running_pid, pg_version, stop_postgres
from inboxsync.localenv.system import (
    absolute,
    check_root_path,
    chown,
    grant_traverse,
    load_state,
    locked,
    mkdir_owned,
    port_answers,
    run,
    save_state,
    wait_gone,
)

log = logging.getLogger(__name__)

# Makes Maildir filenames unique across deliver() calls within one process.
_delivery_counter = itertools.count()

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
    def _layout(self) -> Layout:
        return Layout(self.root)

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

    def create_database(self, name: str, *, drop: bool = False, template: str | None = None) -> str:
        """Create a database if it does not exist yet.

        Args:
            name: Database name.
            drop: Drop it first (``WITH (FORCE)``, disconnecting its sessions) and recreate.
            template: Copy this database (its sessions must have ended), file by file where the
                server can (PostgreSQL 15 otherwise copies through the WAL, several times slower
                for a few GB).

        Returns:
            The database URL (see :meth:`pg_url`).
        """
        if drop:
            self.drop_databases(name)
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn = psycopg2.connect(self.pg_url("postgres"), connect_timeout=10)
        try:
            # CREATE/DROP DATABASE cannot run inside a transaction block.
            conn.autocommit = True
            if template is not None and conn.server_version >= 150000:
                create += sql.SQL(" STRATEGY FILE_COPY")
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    # A concurrent caller may win the race between the check and the create.
                    with contextlib.suppress(pg_errors.DuplicateDatabase):
                        cur.execute(create)
        finally:
            conn.close()
        return self.pg_url(name)

    def drop_databases(self, *names: str) -> None:
        """Drop the databases that exist (``WITH (FORCE)``, disconnecting their sessions)."""
        conn = psycopg2.connect(self.pg_url("postgres"), connect_timeout=10)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                for name in names:
                    cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(name)))  # fmt: skip
        finally:
            conn.close()

    # ---- Dovecot ---------------------------------------------------------------------------

    def add_mail_user(self, username: str, password: str) -> None:
        """Create a mail user, or update its password; idempotent.

        Dovecot reads the user's passwd-file on the next login, no restart needed.

        Args:
            username: Login name, usually an email address such as ``alice@acme.example``.
                Dovecot lowercases logins, so the name is stored lowercased.
            password: Plain-text password (stored as a salted SHA-512 hash).
        """
        user = normalize_user(username)
        home = self._home(user)
        mkdir_owned(home, self.mail_uid, self.mail_gid, mode=0o700)
        self.maildir(user)
        path = self._layout.dc_users / user
        fields = f"{self.mail_uid}:{self.mail_gid}::{home}::"
        old = read_passwd_entry(path)
        if old is not None and old[1] == fields and ssha512_verify(password, old[0]):
            return
        write_passwd_file(path, f"{user}:{ssha512(password)}:{fields}\n")
        if old is not None:
            # Dovecot re-stats a passwd-file at most once per second: a login earlier in this
            # second would keep serving the old entry until the clock ticks over.
            sleep_past_second()

    def maildir(self, username: str, folder: str = "INBOX") -> Path:
        """Return (and create) the Maildir directory of one folder.

        Args:
            username: Mail user.
            folder: IMAP folder name with "/" as separator; ``INBOX`` is ``~/Maildir``, other
                folders are Maildir++ ``.Name`` directories.

        Returns:
            The folder directory, containing ``cur``, ``new`` and ``tmp``.
        """
        user = normalize_user(username)
        base = self._home(user) / "Maildir"
        path = base if folder.upper() == "INBOX" else base / maildirpp_name(folder)
        uid, gid = self.mail_uid, self.mail_gid
        mkdir_owned(self._home(user), uid, gid, mode=0o700)
        # INBOX first: creating a subfolder first would make its parent with the wrong mode.
        for directory in dict.fromkeys((base, path)):
            for sub in ("", "cur", "new", "tmp"):
                mkdir_owned(directory / sub if sub else directory, uid, gid, mode=0o700)
        if path != base:
            # Dovecot and Courier mark Maildir++ subfolders with this empty file.
            marker = path / "maildirfolder"
            if not marker.exists():
                marker.touch(mode=0o600)
                chown(marker, uid, gid)
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
        as_root = os.geteuid() == 0
        prefix = maildir_prefix()
        count = 0
        for message in messages:
            name = f"{prefix}Q{next(_delivery_counter)}.{MAILDIR_HOST}"
            tmp_path = tmp_dir / name
            fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with open(fd, "wb") as fh:
                fh.write(message)
                if as_root:
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
        return run([DOVEADM_BIN, "-c", str(self.dovecot_conf), *args], check=check)

    def stop(self) -> None:
        """Stop Dovecot and PostgreSQL (see :func:`stop`)."""
        stop(self.root)

    def restart_dovecot(self) -> None:
        """Stop Dovecot and start it again on the same ports (a fault the tests inject).

        Every process of the instance gets SIGTERM, open IMAP sessions included: stopping only
        the master leaves running sessions alive, which is no fault at all.
        """
        pid = dovecot_running_pid(self._layout)
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(os.getpgid(pid), signal.SIGTERM)
            wait_gone(pid, "Dovecot", self._layout.dc_log)
        start(self.root)

    def restart_postgres(self) -> None:
        """Stop PostgreSQL (fast: open sessions are cut) and start it again on the same port."""
        stop_postgres(self._layout)
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
    # include/inboxsync/localenv/services.py: the repository root is three levels up.
    return Path(__file__).resolve().parents[3] / ".local"


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
    layout = Layout(absolute(root))
    check_root_path(layout.root)
    layout.root.mkdir(parents=True, exist_ok=True)
    with locked(layout):
        if os.geteuid() == 0:
            grant_traverse(layout.root)
        saved = load_state(layout)
        pg_port, pg_pid = ensure_postgres(layout, saved.get("pg_port"))
        imap_port, imaps_port, dc_pid = ensure_dovecot(
            layout,
            saved.get("imap_port"),
            saved.get("imaps_port"),
            taken={pg_port},
            extras=dovecot or DovecotExtras(),
        )
        save_state(
            layout,
            {
                "pg_port": pg_port,
                "imap_port": imap_port,
                "imaps_port": imaps_port,
                "pg_version": pg_version(layout),
                "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )
    uid, gid = mail_ids()
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
    layout = Layout(absolute(root))
    if not layout.root.is_dir():
        return
    with locked(layout):
        stop_dovecot(layout)
        stop_postgres(layout)


def status(root: Path) -> dict[str, dict[str, Any]]:
    """Report what runs under ``root``.

    Args:
        root: The directory given to :func:`start`.

    Returns:
        ``{"postgresql": {...}, "dovecot": {...}}``, each with ``running`` (bool), ``pid`` and
        ports as saved in ``services.json``.
    """
    layout = Layout(absolute(root))
    saved = load_state(layout) if layout.root.is_dir() else {}
    pg_pid = pg_running_pid(layout)
    dc_pid = dovecot_running_pid(layout)
    pg_port = saved.get("pg_port")
    imap_port, imaps_port = saved.get("imap_port"), saved.get("imaps_port")
    return {
        "postgresql": {
            "running": bool(pg_pid and pg_port and port_answers(pg_port)),
            "pid": pg_pid,
            "port": pg_port,
        },
        "dovecot": {
            "running": bool(dc_pid and imaps_port and port_answers(imaps_port)),
            "pid": dc_pid,
            "imap_port": imap_port,
            "imaps_port": imaps_port,
            "ca_file": str(layout.ca_file),
        },
    }
