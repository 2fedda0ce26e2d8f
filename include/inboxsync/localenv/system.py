"""Processes, ports, packages, files and the state file: what the services have in common."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from inboxsync.localenv.layout import (
    HOST,
    LOG_TAIL_LINES,
    MAX_ROOT_PATH,
    STOP_TIMEOUT_S,
    Layout,
    LocalEnvError,
)

log = logging.getLogger(__name__)


def live_pid(pidfile: Path, *, needle: str) -> int | None:
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


def clear_stale_pidfile(pidfile: Path) -> None:
    """Remove a pidfile whose process is gone or is someone else's (servers refuse to start)."""
    if pidfile.exists():
        pidfile.unlink()


def wait_gone(pid: int, name: str, logfile: Path) -> None:
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline:
        if not _pid_alive(pid) or _is_zombie(pid):
            return
        time.sleep(0.05)
    raise LocalEnvError(f"{name} (pid {pid}) did not stop; log {logfile}:\n{tail(logfile)}")


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def port_answers(port: int, timeout: float = 1.0) -> bool:
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


def reuse_or_pick_port(saved: int | None, *, taken: set[int]) -> int:
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
        apt_install([package])
        path = shutil.which(command)
    if path is None:
        raise LocalEnvError(f"{package} is installed but {command!r} is not on PATH")
    return path


def apt_install(packages: Sequence[str]) -> None:
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
    result = run([*base, "install", "-y", *packages], check=False)
    if result.returncode != 0:
        run([*base, "update"], check=False)
        result = run([*base, "install", "-y", *packages], check=False)
    if result.returncode != 0:
        raise LocalEnvError(f"apt-get install {' '.join(packages)} failed:\n{output_tail(result)}")


def run(
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
            f"{' '.join(cmd)} exited with {result.returncode}:\n{output_tail(result)}"
        )
    return result


def output_tail(result: subprocess.CompletedProcess[str]) -> str:
    text = (result.stdout or "") + (result.stderr or "")
    return "\n".join(text.strip().splitlines()[-LOG_TAIL_LINES:])


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


def write_if_changed(
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
        chown(tmp, uid, gid)
    os.replace(tmp, path)
    return True


def mkdir_owned(path: Path, uid: int, gid: int, *, mode: int) -> None:
    if not path.is_dir():
        path.mkdir(mode=mode, parents=True, exist_ok=True)
        path.chmod(mode)  # mkdir's mode is filtered by the umask
    chown(path, uid, gid)


def chown(path: Path, uid: int, gid: int) -> None:
    """chown when root; a normal user owns what it creates already."""
    if os.geteuid() != 0:
        return
    st = path.stat()
    if (st.st_uid, st.st_gid) != (uid, gid):
        os.chown(path, uid, gid)


def grant_traverse(root: Path) -> None:
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


def check_root_path(root: Path) -> None:
    # Dovecot splits passwd-file args on spaces and expands "%"; its sockets live in base_dir.
    if re.search(r"[\s%]", str(root)):
        raise LocalEnvError(f"root path must not contain whitespace or '%': {root}")
    if len(str(root)) > MAX_ROOT_PATH:
        raise LocalEnvError(
            f"root path is too long for Dovecot's unix sockets (max {MAX_ROOT_PATH} chars): "
            f"{root}; set INBOXSYNC_LOCAL_DIR or --root to a shorter directory"
        )


def absolute(root: Path) -> Path:
    return Path(root).expanduser().resolve()


def short_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:8]


@contextlib.contextmanager
def locked(layout: Layout) -> Iterator[None]:
    """Hold an exclusive lock on the root so concurrent starts do not race."""
    with layout.lock_file.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def load_state(layout: Layout) -> dict[str, Any]:
    try:
        data = json.loads(layout.state_file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def save_state(layout: Layout, state: dict[str, Any]) -> None:
    write_if_changed(layout.state_file, json.dumps(state, indent=2) + "\n", mode=0o644)
