"""``make demo``: the real DAG end to end on local services and demo mail.

Starts the local PostgreSQL and Dovecot, seeds two team members' inboxes with generated demo mail,
registers them as connected inboxes, runs ``airflow dags test inbox_sync`` and prints a summary.
Run it again and it syncs nothing new, and says so. ``python -m inboxsync.demo ui`` opens the
Airflow UI on the same data; ``python -m inboxsync.demo env`` prints the environment that points
the ``inboxsync`` and ``airflow`` commands at it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

from inboxsync import local_airflow, localenv, registry, report, warehouse
from inboxsync.demo_mail import TEAM, demo_mailboxes

DAG_ID = "inbox_sync"


def demo_root() -> Path:
    """Where the demo keeps all its state (gitignored)."""
    return localenv.default_root()


def prepare(root: Path) -> tuple[localenv.LocalServices, dict[str, str]]:
    """Start services, set up Airflow and the warehouse, seed mail, register the inboxes."""
    services = localenv.start(root)
    env = local_airflow.airflow_env(
        services, root / "airflow", metadata_db="airflow", warehouse_db="warehouse"
    )
    local_airflow.apply_env(env)
    local_airflow.migrate_metadata(env)
    warehouse.migrate()
    _seed(services, root)
    with warehouse.transaction() as cur:
        for member in TEAM:
            registry.add_inbox(
                cur,
                member.name,
                host=services.host,
                port=services.imaps_port,
                security="ssl",
                username=member.email,
                password=member.password,
                owner_email=member.email,
                create_contacts=True,
                ca_file=str(services.ca_file),
            )
    return services, env


def _seed(services: localenv.LocalServices, root: Path) -> None:
    """Deliver the demo mail once; the marker keeps a rerun from delivering it twice."""
    marker = root / "demo-mail.seeded"
    mailboxes = demo_mailboxes()
    for member in TEAM:
        services.add_mail_user(member.email, member.password)
    if marker.exists():
        return
    for username, folders in mailboxes.items():
        for folder, messages in folders.items():
            services.deliver(username, folder, messages)
    marker.write_text("seeded\n")


def run(root: Path) -> int:
    """Run the demo; returns the process exit code."""
    started = time.monotonic()
    _services, env = prepare(root)
    url = warehouse.warehouse_url()
    before = report.totals(url)
    log_path = root / "logs" / "demo-dags-test.log"
    print(f"running `airflow dags test {DAG_ID}` (log: {log_path}) ...")
    proc = local_airflow.airflow(env, "dags", "test", DAG_ID, log_path=log_path, check=False)
    after = report.totals(url)
    print()
    print(report.format_table(report.inbox_summary(url)))
    print()
    new = after["copies"] - before["copies"]
    if new:
        print(
            f"synced {new} new message copies: {after['messages']} distinct messages, "
            f"{after['contacts']} external contacts, {after['quarantined']} quarantined"
        )
    else:
        print("nothing new: every message was already synced")
    if proc.returncode != 0:
        print(f"the DAG run failed: see {log_path}", file=sys.stderr)
        return 1
    if not _build_marts(url):
        return 1
    print(f"demo took {time.monotonic() - started:.1f} s")
    return 0


def _build_marts(url: str) -> bool:
    """`dbt build` of the BI marts (what the DAG inbox_marts runs after a sync); print a sample."""
    from inboxsync import marts

    print(f"\nbuilding the dbt marts (schema {marts.MARTS_SCHEMA}) ...")
    try:
        run = marts.build()
    except marts.DbtError as exc:
        print(exc, file=sys.stderr)
        return False
    print(
        f"dbt build: {run.count('model')} models, {run.count('unit_test')} unit tests and "
        f"{run.count('test')} data tests passed in {run.seconds:.1f} s"
    )
    import pandas as pd

    columns = ["contact", "role", "sent_at", "subject", "in the inboxes of"]
    sample = pd.DataFrame(marts.timeline_sample(url), columns=columns)
    print(f"\nlatest rows of {marts.MARTS_SCHEMA}.contact_timeline:")
    print(report.format_table(sample))
    return True


def ui(root: Path) -> int:
    """Serve the Airflow UI on 127.0.0.1 over the demo's data (Ctrl-C stops it)."""
    _services, env = prepare(root)
    port = env["AIRFLOW__API__PORT"]
    print(f"Airflow UI: http://127.0.0.1:{port}  (user admin; password in "
          f"{root / 'airflow' / 'simple_auth_manager_passwords.json.generated'})")  # fmt: skip
    bindir = Path(sys.executable).parent
    # standalone starts its components as `airflow ...` from PATH: put this virtualenv first.
    path = f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"
    return subprocess.call(
        [str(bindir / "airflow"), "standalone"], env={**os.environ, **env, "PATH": path}
    )


def print_env(root: Path) -> int:
    """Print ``export`` lines for a shell: ``eval "$(python -m inboxsync.demo env)"``."""
    services = localenv.start(root)
    env = local_airflow.airflow_env(
        services, root / "airflow", metadata_db="airflow", warehouse_db="warehouse"
    )
    for key, value in env.items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inboxsync.demo", description=__doc__)
    parser.add_argument("action", nargs="?", choices=["run", "ui", "env"], default="run")
    parser.add_argument("--root", type=Path, default=None, help="state folder (default .local)")
    args = parser.parse_args(argv)
    root = (args.root or demo_root()).resolve()
    actions = {"run": run, "ui": ui, "env": print_env}
    return actions[args.action](root)


if __name__ == "__main__":
    sys.exit(main())
