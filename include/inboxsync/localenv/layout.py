"""Where everything of the local services lives under one root, and the constants they share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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


class LocalEnvError(RuntimeError):
    """A local service could not be installed, started, stopped or used."""


@dataclass(frozen=True)
class Layout:
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
