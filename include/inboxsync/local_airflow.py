"""Airflow on the local services: the environment, the metadata database, `airflow dags test`.

Used by ``make demo``, the test harness and the benchmark, so all three run Airflow the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from inboxsync import settings
from inboxsync.localenv import LocalServices

REPO = Path(__file__).resolve().parents[2]


def _fernet_key(home: Path) -> str:
    """A Fernet key kept beside AIRFLOW_HOME, so connection passwords are encrypted at rest."""
    path = home / "fernet.key"
    if not path.exists():
        from cryptography.fernet import Fernet

        home.mkdir(parents=True, exist_ok=True)
        path.write_bytes(Fernet.generate_key())
        path.chmod(0o600)
    return path.read_text().strip()


def airflow_env(
    services: LocalServices, home: Path, *, metadata_db: str, warehouse_db: str
) -> dict[str, str]:
    """Environment variables that point Airflow and inboxsync at the local services.

    Args:
        services: The running local PostgreSQL and Dovecot.
        home: AIRFLOW_HOME.
        metadata_db: Database (created if missing) for Airflow's metadata.
        warehouse_db: Database (created if missing) for the warehouse.

    Returns:
        The variables to add to the environment.
    """
    services.create_database(metadata_db)
    warehouse_url = services.create_database(warehouse_db)
    metadata_url = services.pg_url(metadata_db).replace("postgresql://", "postgresql+psycopg2://")
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__FERNET_KEY": _fernet_key(home),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": os.environ.get("INBOXSYNC_UI_PORT", "8080"),
        "AIRFLOW_CONN_INBOXSYNC_WAREHOUSE": warehouse_url,
        # astronomer-cosmos (the marts DAG) reports usage to a server on the internet by default.
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
    }


def airflow(env: dict[str, str], *args: str, log_path: Path | None = None, check: bool = True):
    """Run the ``airflow`` command of this virtualenv with ``env`` added to the environment.

    Args:
        env: Variables from :func:`airflow_env`.
        *args: The command's arguments.
        log_path: Where to write its output (it is returned instead when None).
        check: Raise when it exits non-zero.

    Returns:
        The completed process.
    """
    cmd = [str(Path(sys.executable).with_name("airflow")), *args]
    full_env = {**os.environ, **env}
    if log_path is None:
        proc = subprocess.run(cmd, env=full_env, capture_output=True, text=True)
    else:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("w") as out:
            proc = subprocess.run(cmd, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    if check and proc.returncode != 0:
        where = f"see {log_path}" if log_path else (proc.stdout or "")[-3000:] + proc.stderr[-3000:]
        raise RuntimeError(f"airflow {' '.join(args)} exited {proc.returncode}: {where}")
    return proc


def migrate_metadata(env: dict[str, str]) -> None:
    """Create or upgrade Airflow's metadata database and its pools (idempotent)."""
    airflow(env, "db", "migrate")
    pools = Path(env["AIRFLOW_HOME"]) / "inboxsync-pools.json"
    pools.write_text(json.dumps(pool_definitions(), indent=2))
    airflow(env, "pools", "import", str(pools))


def pool_definitions() -> dict[str, dict[str, object]]:
    """The per-provider pools in the format of ``airflow pools import``."""
    return {
        pool: {
            "slots": slots,
            "description": f"inboxsync: IMAP connections to {provider} servers",
            "include_deferred": False,
        }
        for provider, (pool, slots) in settings.PROVIDER_POOLS.items()
    }


def apply_env(env: dict[str, str]) -> None:
    """Put ``env`` into this process's environment (for in-process CLI calls)."""
    os.environ.update(env)
