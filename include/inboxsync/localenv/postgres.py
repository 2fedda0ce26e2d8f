"""The local PostgreSQL cluster: install, initdb, configure, start and stop it."""

from __future__ import annotations

import logging
import os
import pwd
from pathlib import Path

from inboxsync.localenv.layout import (
    HOST,
    MAX_UNIX_SOCKET_PATH,
    PG_SUPERUSER,
    STOP_TIMEOUT_S,
    Layout,
    LocalEnvError,
)
from inboxsync.localenv.system import (
    apt_install,
    clear_stale_pidfile,
    live_pid,
    mkdir_owned,
    output_tail,
    port_answers,
    reuse_or_pick_port,
    run,
    tail,
    wait_gone,
    write_if_changed,
)

log = logging.getLogger(__name__)


def ensure_postgres(layout: Layout, saved_port: int | None) -> tuple[int, int]:
    """Reuse or start PostgreSQL; return (port, postmaster pid)."""
    bindir = _pg_bindir(layout)
    pid = pg_running_pid(layout)
    if pid and saved_port == _pg_pidfile_port(layout) and port_answers(saved_port):
        if not _write_pg_conf(layout, saved_port, bindir):
            return saved_port, pid
        log.info("PostgreSQL settings changed: restarting")
    if pid:
        stop_postgres(layout)
    port = reuse_or_pick_port(saved_port, taken=set())
    _prepare_pg_dirs(layout)
    if not (layout.pg_data / "PG_VERSION").exists():
        _initdb(layout, bindir)
    _write_pg_conf(layout, port, bindir)
    clear_stale_pidfile(layout.pg_pidfile)
    _pg_ctl(layout, bindir, "start", "-l", str(layout.pg_log), "-w", "-t", "60")
    pid = pg_running_pid(layout)
    if not pid or not port_answers(port):
        raise LocalEnvError(
            f"PostgreSQL did not come up on {HOST}:{port}; log {layout.pg_log}:\n"
            f"{tail(layout.pg_log)}"
        )
    return port, pid


def stop_postgres(layout: Layout) -> None:
    pid = pg_running_pid(layout)
    if not pid:
        return
    bindir = _pg_bindir(layout, install=False)
    _pg_ctl(layout, bindir, "stop", "-m", "fast", "-w", "-t", str(int(STOP_TIMEOUT_S)))
    wait_gone(pid, "PostgreSQL", layout.pg_log)


def pg_running_pid(layout: Layout) -> int | None:
    return live_pid(layout.pg_pidfile, needle=str(layout.pg_data))


def _pg_pidfile_port(layout: Layout) -> int | None:
    """The port the running server listens on (line 4 of postmaster.pid)."""
    try:
        return int(layout.pg_pidfile.read_text().splitlines()[3])
    except (OSError, IndexError, ValueError):
        return None


def pg_version(layout: Layout) -> str | None:
    version_file = layout.pg_data / "PG_VERSION"
    return version_file.read_text().strip() if version_file.exists() else None


def _pg_bindir(layout: Layout, *, install: bool = True) -> Path:
    """Binaries matching the cluster's major version, else the newest installed."""
    available = _installed_pg_bindirs()
    if not available and install:
        apt_install(["postgresql"])
        available = _installed_pg_bindirs()
    if not available:
        raise LocalEnvError("no PostgreSQL binaries in /usr/lib/postgresql/*/bin")
    wanted = pg_version(layout)
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


def _prepare_pg_dirs(layout: Layout) -> None:
    """Create the PostgreSQL dirs, owned by the user the server runs as."""
    uid, gid = _pg_os_ids()
    for directory, mode in (
        (layout.pg_dir, 0o755),
        (layout.pg_data, 0o700),
        (layout.pg_run, 0o755),
    ):
        mkdir_owned(directory, uid, gid, mode=mode)


def _initdb(layout: Layout, bindir: Path) -> None:
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
    result = run(_as_pg_user(cmd), cwd=layout.pg_dir, check=False)
    if result.returncode != 0:
        raise LocalEnvError(f"initdb failed:\n{output_tail(result)}")
    with (layout.pg_data / "postgresql.conf").open("a") as fh:
        fh.write("\n# Settings managed by inboxsync.localenv\ninclude 'inboxsync.conf'\n")


def _utf8_c_locale() -> str:
    """``C.UTF-8`` if the OS has it (Debian does), else plain ``C``."""
    try:
        result = run(["locale", "-a"], check=False)
    except LocalEnvError:  # no `locale` binary: assume a minimal system
        return "C"
    names = {name.lower() for name in result.stdout.split()}
    return "C.UTF-8" if {"c.utf8", "c.utf-8"} & names else "C"


def _write_pg_conf(layout: Layout, port: int, bindir: Path) -> bool:
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
    if (bindir.parent / "lib" / "pg_stat_statements.so").exists():
        # Loaded (Debian's server package ships it) but counting nothing: `make bench`'s
        # profiled sync turns it on for its own database (inboxsync.bench.statements).
        text += "shared_preload_libraries = 'pg_stat_statements'\n"
        text += "pg_stat_statements.track = 'none'\n"
    uid, gid = _pg_os_ids()
    return write_if_changed(layout.pg_conf, text, uid=uid, gid=gid, mode=0o600)


def _pg_ctl(layout: Layout, bindir: Path, *args: str) -> None:
    cmd = [str(bindir / "pg_ctl"), "-D", str(layout.pg_data), "-s", *args]
    # pg_ctl redirects the server's stdio to the log, so capturing its output cannot hang.
    result = run(_as_pg_user(cmd), cwd=layout.pg_dir, check=False)
    if result.returncode != 0:
        raise LocalEnvError(
            f"pg_ctl {args[0]} failed:\n{output_tail(result)}\n"
            f"log {layout.pg_log}:\n{tail(layout.pg_log)}"
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
