"""The dbt marts for BI (project in ``dbt/``): profile, manifest, ``dbt build``.

One code path for the marts: the Airflow DAG ``inbox_marts`` (astronomer-cosmos, one task per
model) and ``make demo`` / the tests / ``python -m inboxsync.marts build`` take the dbt profile
from the same :func:`profile_config`, built from the ``inboxsync_warehouse`` Airflow connection
(no second copy of credentials), and the same project directory. Marts land in schema
:data:`MARTS_SCHEMA`; staging and intermediate views in ``<MARTS_SCHEMA>_staging``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inboxsync import settings

if TYPE_CHECKING:
    from cosmos import ProfileConfig

#: The dbt project.
DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt"

#: Schema of the mart tables (the dbt profile's schema); BI tools read this one.
MARTS_SCHEMA = os.environ.get("INBOXSYNC_MARTS_SCHEMA", "inboxsync_marts")

PROFILE_NAME = "inboxsync"
TARGET_NAME = "warehouse"

#: What ``dbt parse`` reads: a manifest older than any of these is stale.
_PROJECT_INPUTS = ("dbt_project.yml", "models", "macros", "tests")


class DbtError(RuntimeError):
    """A dbt command failed; the message ends with the tail of its output."""


def profile_config(conn_id: str = settings.WAREHOUSE_CONN_ID) -> ProfileConfig:
    """The dbt profile, derived by cosmos from the warehouse's Airflow connection.

    Args:
        conn_id: The Airflow connection id of the warehouse.

    Returns:
        A cosmos ``ProfileConfig`` (profile ``inboxsync``, target ``warehouse``).
    """
    from cosmos import ProfileConfig

    from inboxsync.marts_profile import WarehouseProfileMapping

    return ProfileConfig(
        profile_name=PROFILE_NAME,
        target_name=TARGET_NAME,
        profile_mapping=WarehouseProfileMapping(
            conn_id=conn_id, profile_args={"schema": MARTS_SCHEMA}
        ),
    )


def dbt_executable() -> Path:
    """The ``dbt`` command of this virtualenv."""
    return Path(sys.executable).with_name("dbt")


def manifest_path() -> Path:
    """Where ``dbt parse`` (and every dbt command) writes the project's manifest."""
    return DBT_PROJECT_DIR / "target" / "manifest.json"


def _newest_input() -> float:
    newest = 0.0
    for name in _PROJECT_INPUTS:
        path = DBT_PROJECT_DIR / name
        paths = [path] if path.is_file() else path.rglob("*") if path.is_dir() else []
        newest = max([newest, *(p.stat().st_mtime for p in paths)])
    return newest


def ensure_manifest() -> Path:
    """Return the manifest, re-parsing the project first when it is missing or stale.

    The DAG renders its tasks from this file. ``dbt parse`` runs with cosmos's mock profile: it
    reads the project's files only (no database, no network). It writes to a private target
    directory and the manifest is swapped in atomically, so concurrent DAG parses are safe.

    Returns:
        The path of ``manifest.json``.
    """
    path = manifest_path()
    if path.exists() and path.stat().st_mtime >= _newest_input():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix="parse-") as tmp:
        run_dbt(["parse"], target_path=Path(tmp), mock_profile=True)
        os.replace(Path(tmp) / "manifest.json", path)
    return path


@dataclass
class DbtRun:
    """The outcome of one dbt command.

    Attributes:
        args: The dbt arguments.
        seconds: Wall time.
        output: What dbt printed.
        results: ``{unique_id: status}`` from ``run_results.json`` (models, tests, unit tests).
    """

    args: list[str]
    seconds: float
    output: str
    results: dict[str, str] = field(default_factory=dict)

    def count(self, resource: str) -> int:
        """How many nodes of one resource type (``model``, ``test``, ``unit_test``) ran."""
        return sum(1 for uid in self.results if uid.split(".", 1)[0] == resource)


def run_dbt(
    args: Sequence[str],
    *,
    target_path: Path | None = None,
    dbt_vars: Mapping[str, Any] | None = None,
    mock_profile: bool = False,
    conn_id: str = settings.WAREHOUSE_CONN_ID,
) -> DbtRun:
    """Run one dbt command on the project with the warehouse's profile.

    Args:
        args: dbt arguments, e.g. ``["build"]``.
        target_path: Where dbt writes its artifacts (default ``dbt/target``).
        dbt_vars: Project variables (``--vars``), e.g. ``{"as_of": "2026-10-20 00:00+00"}``.
        mock_profile: Use cosmos's mock profile (``dbt parse`` needs no connection).
        conn_id: The warehouse's Airflow connection.

    Returns:
        What ran and how it ended.

    Raises:
        DbtError: dbt exited non-zero.
    """
    target = target_path or DBT_PROJECT_DIR / "target"
    cmd = [str(dbt_executable()), *args, "--project-dir", str(DBT_PROJECT_DIR)]
    cmd += ["--target-path", str(target)]
    if dbt_vars:
        cmd += ["--vars", json.dumps(dict(dbt_vars))]
    started = time.monotonic()
    with profile_config(conn_id).ensure_profile(use_mock_values=mock_profile) as (profile, env):
        cmd += ["--profiles-dir", str(profile.parent)]
        proc = subprocess.run(
            cmd,
            env={**os.environ, **env, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"},
            capture_output=True,
            text=True,
            cwd=DBT_PROJECT_DIR,
        )
    run = DbtRun(list(args), time.monotonic() - started, proc.stdout + proc.stderr)
    results = target / "run_results.json"
    if args and args[0] != "parse" and results.exists():
        run.results = {
            r["unique_id"]: r["status"] for r in json.loads(results.read_text())["results"]
        }
    if proc.returncode != 0:
        raise DbtError(f"dbt {' '.join(args)} exited {proc.returncode}:\n{run.output[-4000:]}")
    return run


def build(
    *,
    select: Sequence[str] = (),
    full_refresh: bool = False,
    dbt_vars: Mapping[str, Any] | None = None,
    conn_id: str = settings.WAREHOUSE_CONN_ID,
) -> DbtRun:
    """``dbt build``: every model, its unit tests before it and its data tests after it.

    Args:
        select: dbt node selection (default: the whole project).
        full_refresh: Rebuild incremental models from scratch.
        dbt_vars: Project variables (see ``dbt/dbt_project.yml``).
        conn_id: The warehouse's Airflow connection.

    Returns:
        What ran (``results`` by node) and how long it took.

    Raises:
        DbtError: A model or test failed.
    """
    args = ["build"]
    if select:
        # As in the DAG: a test runs once all the models it reads are built or selected.
        args += ["--select", *select, "--indirect-selection", "buildable"]
    if full_refresh:
        args.append("--full-refresh")
    return run_dbt(args, dbt_vars=dbt_vars, conn_id=conn_id)


def docs_generate(conn_id: str = settings.WAREHOUSE_CONN_ID) -> Path:
    """``dbt docs generate``; returns the ``target`` directory holding ``index.html``."""
    run_dbt(["docs", "generate"], conn_id=conn_id)
    return DBT_PROJECT_DIR / "target"


def timeline_sample(url: str, limit: int = 8) -> list[tuple]:
    """The latest rows of ``contact_timeline`` (what ``make demo`` prints)."""
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT contact_email, contact_role, to_char(sent_at, 'YYYY-MM-DD HH24:MI'),"
                " left(subject, 34), array_to_string(team_member_emails, ', ')"
                f" FROM {MARTS_SCHEMA}.contact_timeline"
                " ORDER BY sent_at DESC NULLS LAST, timeline_id LIMIT %s",
                (limit,),
            )
            return cur.fetchall()
    finally:
        conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m inboxsync.marts build|docs [--full-refresh]``, on the warehouse connection."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m inboxsync.marts", description=__doc__)
    parser.add_argument("action", choices=["build", "docs"])
    parser.add_argument("--full-refresh", action="store_true")
    parser.add_argument("--select", nargs="*", default=[])
    args = parser.parse_args(argv)
    try:
        if args.action == "docs":
            print(f"docs: {docs_generate() / 'index.html'}")
            return 0
        run = build(select=args.select, full_refresh=args.full_refresh)
    except DbtError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(
        f"dbt build: {run.count('model')} models, {run.count('unit_test')} unit tests,"
        f" {run.count('test')} data tests in {run.seconds:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
