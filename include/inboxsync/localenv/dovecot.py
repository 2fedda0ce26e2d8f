"""The local Dovecot: its config, start and stop, its mail users and their Maildirs."""

from __future__ import annotations

import base64
import contextlib
import grp
import hashlib
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
import time
from dataclasses import dataclass
from pathlib import Path

from imapclient import imap_utf7

from inboxsync.localenv.layout import (
    DOVECOT_BIN,
    DOVECOT_DH,
    HOST,
    ROOT_MAIL_GID,
    ROOT_MAIL_UID,
    SPECIAL_FOLDERS,
    START_TIMEOUT_S,
    Layout,
    LocalEnvError,
)
from inboxsync.localenv.system import (
    apt_install,
    chown,
    live_pid,
    mkdir_owned,
    port_answers,
    reuse_or_pick_port,
    short_hash,
    tail,
    wait_gone,
    write_if_changed,
)
from inboxsync.localenv.tls import ensure_tls

log = logging.getLogger(__name__)


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


def ensure_dovecot(
    layout: Layout,
    saved_imap: int | None,
    saved_imaps: int | None,
    *,
    taken: set[int],
    extras: DovecotExtras,
) -> tuple[int, int, int]:
    """Reuse or start Dovecot; return (imap port, imaps port, master pid)."""
    if not DOVECOT_BIN.exists():
        apt_install(["dovecot-imapd"])
    if shutil.which("openssl") is None:
        apt_install(["openssl"])
    _prepare_dovecot_dirs(layout)
    new_cert = ensure_tls(layout)
    pid = dovecot_running_pid(layout)
    if (
        pid
        and saved_imap
        and saved_imaps
        and port_answers(saved_imap)
        and port_answers(saved_imaps)
    ):
        conf_changed = _write_dovecot_conf(layout, saved_imap, saved_imaps, extras)
        if not (conf_changed or new_cert):
            return saved_imap, saved_imaps, pid
        log.info("Dovecot config or certificate changed: restarting")
    if pid:
        stop_dovecot(layout)
    imap_port = reuse_or_pick_port(saved_imap, taken=taken)
    imaps_port = reuse_or_pick_port(saved_imaps, taken=taken | {imap_port})
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
            f"dovecot exited with {code}:\n{tail(layout.dc_startup_log)}\n"
            f"log {layout.dc_log}:\n{tail(layout.dc_log)}"
        )
    _wait_imap_ready(layout, imaps_port, tls=True)
    _wait_imap_ready(layout, imap_port, tls=False)
    pid = dovecot_running_pid(layout)
    if not pid:
        raise LocalEnvError(f"Dovecot has no live master.pid; log:\n{tail(layout.dc_log)}")
    return imap_port, imaps_port, pid


def stop_dovecot(layout: Layout) -> None:
    pid = dovecot_running_pid(layout)
    if not pid:
        return
    # SIGTERM is what `dovecot stop` sends; the master then stops all its children.
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    wait_gone(pid, "Dovecot", layout.dc_log)


def dovecot_running_pid(layout: Layout) -> int | None:
    return live_pid(layout.dc_pidfile, needle=str(layout.dc_conf))


def mail_ids() -> tuple[int, int]:
    if os.geteuid() == 0:
        return ROOT_MAIL_UID, ROOT_MAIL_GID
    return os.getuid(), os.getgid()


def _prepare_dovecot_dirs(layout: Layout) -> None:
    for directory in (layout.dc_dir, layout.dc_run, layout.dc_state, layout.tls_dir):
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    mkdir_owned(layout.dc_mail, os.geteuid(), os.getegid(), mode=0o755)
    # The auth process runs as the Debian `dovecot` user when root: it must read the users.
    auth_gid = _dovecot_auth_gid()
    mkdir_owned(layout.dc_users, os.geteuid(), auth_gid, mode=0o750)


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
    layout: Layout, imap_port: int, imaps_port: int, extras: DovecotExtras
) -> bool:
    """Write the one Dovecot config file; return True if it changed."""
    text = _dovecot_conf_text(layout, imap_port, imaps_port, extras)
    return write_if_changed(layout.dc_conf, text, mode=0o644)


def _dovecot_conf_text(
    layout: Layout, imap_port: int, imaps_port: int, extras: DovecotExtras
) -> str:
    uid, _gid = mail_ids()
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
instance_name = inboxsync-{short_hash(str(layout.root))}
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


def _wait_imap_ready(layout: Layout, port: int, *, tls: bool) -> None:
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
        f"log {layout.dc_log}:\n{tail(layout.dc_log)}"
    )


# ---- mail users and Maildir -----------------------------------------------------------------

_BAD_USER_CHARS = re.compile(r"[\s:/%\\\x00-\x1f\x7f]")


def normalize_user(username: str) -> str:
    """Lowercase like Dovecot's default ``auth_username_format = %Lu``; reject unsafe names."""
    user = username.strip().lower()
    if not user or user.startswith(".") or _BAD_USER_CHARS.search(user):
        raise ValueError(f"unusable mail user name: {username!r}")
    return user


def maildirpp_name(folder: str) -> str:
    """Map an IMAP folder name ("/" separated) to its Maildir++ directory name."""
    parts = folder.strip("/").split("/")
    if not all(parts) or any("." in part for part in parts):
        # Maildir++ uses "." as its on-disk hierarchy separator.
        raise ValueError(f"folder name not representable in Maildir++: {folder!r}")
    # Dovecot keeps mailbox names in modified UTF-7 on disk.
    return "." + ".".join(imap_utf7.encode(part).decode("ascii") for part in parts)


def maildir_prefix() -> str:
    now = time.time()
    return f"{int(now)}.M{int((now % 1) * 1_000_000)}P{os.getpid()}"


# Maildir filenames must not contain "/" or ":"; the spec escapes them as octal.
MAILDIR_HOST = socket.gethostname().replace("/", "\\057").replace(":", "\\072") or "localhost"


def ssha512(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.sha512(password.encode() + salt).digest()
    return "{SSHA512}" + base64.b64encode(digest + salt).decode("ascii")


def ssha512_verify(password: str, stored: str) -> bool:
    if not stored.startswith("{SSHA512}"):
        return False
    raw = base64.b64decode(stored.removeprefix("{SSHA512}"))
    digest, salt = raw[:64], raw[64:]
    return secrets.compare_digest(hashlib.sha512(password.encode() + salt).digest(), digest)


def read_passwd_entry(path: Path) -> tuple[str, str] | None:
    """Return (password hash, remaining fields) of a one-user passwd-file, if present."""
    try:
        line = path.read_text().strip()
    except FileNotFoundError:
        return None
    _user, password, rest = line.split(":", 2)
    return password, rest


def write_passwd_file(path: Path, text: str) -> None:
    previous = path.stat().st_mtime_ns if path.exists() else 0
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.chmod(0o640)
    chown(tmp, os.geteuid(), _dovecot_auth_gid())
    os.replace(tmp, path)
    # Dovecot notices a change by (mtime in seconds, size); a salted hash keeps the size, so
    # move the mtime to a later second than the previous version's.
    second = 1_000_000_000
    mtime = max(time.time_ns(), (previous // second + 1) * second)
    os.utime(path, ns=(mtime, mtime))


def sleep_past_second() -> None:
    time.sleep(1.0 - (time.time() % 1.0) + 0.02)
