"""Airflow's long-running components for integration tests: api-server, scheduler, workers.

Each stack gets its own AIRFLOW_HOME and metadata database (derived from the harness's Airflow
environment): a scheduler started here must not schedule runs in the database that other test
sessions use for `airflow dags test`. Every process is started in its own process group and
stopped by that group's id.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
ADMIN = "admin"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AirflowStack:
    """Airflow components on loopback, on a metadata database of their own.

    Args:
        services: The harness's PostgreSQL and Dovecot.
        base_env: The harness's Airflow environment (``airflow_env`` fixture).
        root: Folder for AIRFLOW_HOME and the components' logs.
        name: Names the metadata database (``airflow_<name>``).
        extra_env: Settings on top (executor, broker, ...).
    """

    def __init__(self, services, base_env: dict[str, str], root: Path, name: str, extra_env=None):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.password = secrets.token_urlsafe(12)
        passwords = root / "passwords.json"
        passwords.write_text(json.dumps({ADMIN: self.password}))
        metadata = services.create_database(f"airflow_{name}", drop=True)
        self.env = {
            **base_env,
            "AIRFLOW_HOME": str(root),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata.replace(
                "postgresql://", "postgresql+psycopg2://"
            ),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
            **(extra_env or {}),
        }
        self.procs: dict[str, subprocess.Popen] = {}
        self.url = f"http://127.0.0.1:{self.port}"

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run an ``airflow`` command to completion in this stack's environment."""
        proc = subprocess.run(
            [AIRFLOW, *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)}: {proc.stdout[-2000:]}{proc.stderr[-3000:]}"
            )
        return proc

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        """Start a long-running ``airflow`` component; its output goes to ``<root>/<name>.log``."""
        log = (self.root / f"{name}.log").open("w")
        self.procs[name] = subprocess.Popen(
            [AIRFLOW, *args],
            env={**os.environ, **self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as one below
        )

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")

    def start_api_server(self, timeout: float = 120) -> None:
        """Start the api-server and wait until it answers its health check."""
        self.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(self.port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs["api-server"].poll() is not None:
                raise RuntimeError("api-server exited:\n" + self.log("api-server")[-3000:])
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.5)
        raise RuntimeError("api-server did not answer:\n" + self.log("api-server")[-3000:])

    def token(self) -> str:
        """A JWT for the admin user, from the simple auth manager's /auth/token."""
        r = httpx.post(
            f"{self.url}/auth/token",
            json={"username": ADMIN, "password": self.password},
            timeout=10,
        )
        r.raise_for_status()
        return r.json()["access_token"]

    def client(self) -> httpx.Client:
        """An HTTP client on the api-server, logged in as admin."""
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token()}"}, timeout=30
        )

    def stop(self) -> None:
        """Stop every component started here (SIGTERM to its group, then SIGKILL)."""
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.procs.clear()


def worker_hostname() -> str:
    """``[core] hostname_callable`` for test workers: the name in INBOXSYNC_TEST_WORKER.

    Two Celery workers on one machine share its host name; this tells their task instances
    apart in ``task_instance.hostname``.
    """
    return os.environ.get("INBOXSYNC_TEST_WORKER") or socket.getfqdn()
