"""`inbox_sync` under the CeleryExecutor: a real Redis broker, two Celery worker processes.

The run's tasks (three list tasks, six inboxes' mapped syncs) spread over both workers, and the
warehouse ends identical to a LocalExecutor run of the same DAG over the same mailboxes. Redis:
the server on 127.0.0.1:6379 when one answers (database 11, this test's own), else Debian's
redis-server started here on a free port.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
from collections import Counter

import psycopg2
import pytest

from tests.conftest import REPO, TEST_ROOT, VOLATILE_COLUMNS, contract_tables, query, unique_user
from tests.integration.airflow_stack import AirflowStack, free_port

pytestmark = pytest.mark.integration

INBOXES = 6
WORKERS = ("worker-1", "worker-2")


# Which thread merged into which depends on the order the derive steps ran in: history of the
# derivation, not data about mail (the threads it produced are compared).
_ORDER_DEPENDENT_TABLES = {"thread_merges"}
# A thread row's surrogate id (its root message names it below); a contact's creator
# ("sync:NAME"), kept from whichever inbox's batch created it, so parallel tasks may differ there.
# (Its display name is the one on its latest message, in any order: migration 0013.)
_ORDER_DEPENDENT_COLUMNS = {
    ("threads", "thread_id"),
    ("contacts", "created_by"),
}


def contract_rows(url: str, table: str) -> list[tuple]:
    """A table's rows as conftest.table_rows gives them, with threads named by their root.

    A thread's id is a surrogate that depends on which inbox's derive step created the thread
    first, which differs between runs of parallel tasks: the thread's root message names it.
    """
    cols = [
        c
        for (c,) in query(
            url,
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'inboxsync' AND table_name = %s ORDER BY ordinal_position",
            (table,),
        )
        if c not in VOLATILE_COLUMNS and (table, c) not in _ORDER_DEPENDENT_COLUMNS
    ]
    exprs = [
        "(SELECT t.root_message_key FROM inboxsync.threads t WHERE t.thread_id = x.thread_id)"
        if c == "thread_id"
        else c
        for c in cols
    ]
    return sorted(query(url, f"SELECT {', '.join(exprs)} FROM inboxsync.{table} x"), key=repr)


def _redis_answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as s:
        s.sendall(b"PING\r\n")
        return s.recv(64).startswith(b"+PONG")
    return False


@pytest.fixture(scope="module")
def redis_url():
    if _redis_answers(6379):
        yield "redis://127.0.0.1:6379/11"
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no Redis on 127.0.0.1:6379 and no redis-server (apt-get install redis-server)")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not _redis_answers(port):
            assert time.monotonic() < deadline, "redis-server did not answer"
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.fixture(scope="module")
def mailboxes(services, util_linux):
    """Six inboxes; neighbours share some messages (one email, several copies)."""
    boxes = []
    for i in range(INBOXES):
        user, password = unique_user(f"celery{i}"), f"celery-pw-{i}"
        services.add_mail_user(user, password)
        services.deliver(user, "INBOX", util_linux[i * 40 : i * 40 + 60])
        boxes.append((f"Celery {i}", user, password))
    return boxes


def _connections_env(services, mailboxes) -> dict[str, str]:
    """Each inbox's connection as an AIRFLOW_CONN_ variable (workers read them from there)."""
    from inboxsync import registry

    env = {}
    for name, user, password in mailboxes:
        conn = {
            "conn_type": "imap",
            "host": services.host,
            "port": services.imaps_port,
            "login": user,
            "password": password,
            "extra": {"security": "ssl", "ssl_ca_file": str(services.ca_file)},
        }
        env["AIRFLOW_CONN_" + registry.conn_id_for(name).upper()] = json.dumps(conn)
    return env


def _warehouse(services, name: str, mailboxes) -> str:
    from inboxsync import registry, warehouse

    url = services.create_database(name, drop=True)
    warehouse.migrate(url)
    with warehouse.transaction(url) as cur:
        for inbox, user, _password in mailboxes:
            registry.register_inbox(
                cur, inbox, registry.conn_id_for(inbox), username=user, owner_email=user,
                create_contacts=True,
            )  # fmt: skip
    return url


def _task_hosts(metadata_url: str) -> list[tuple[str, str, str, str]]:
    """(task_id, rendered map index, state, hostname) of every task of the latest run."""
    with psycopg2.connect(metadata_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT task_id, coalesce(rendered_map_index, ''), state, hostname FROM task_instance"
            " WHERE dag_id = 'inbox_sync' AND run_id = ("
            "   SELECT run_id FROM dag_run WHERE dag_id = 'inbox_sync' ORDER BY id DESC LIMIT 1)"
            " ORDER BY task_id, rendered_map_index"
        )
        rows = cur.fetchall()
    conn.close()
    return rows


def test_celery_workers_share_the_inboxes_and_match_a_local_run(
    services, airflow_env, redis_url, mailboxes
):
    from inboxsync import local_airflow

    conns = _connections_env(services, mailboxes)
    celery_wh = _warehouse(services, "wh_celery_run", mailboxes)
    local_wh = _warehouse(services, "wh_local_run", mailboxes)
    stack = AirflowStack(
        services,
        airflow_env,
        TEST_ROOT / "airflow-celery",
        "celery",
        extra_env={
            **conns,
            "AIRFLOW_CONN_INBOXSYNC_WAREHOUSE": celery_wh,
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": redis_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + services.pg_url("airflow_celery"),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
            "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
            "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": (
                "tests.integration.celery_config.CELERY_CONFIG"
            ),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.integration.airflow_stack.worker_hostname",
            "PYTHONPATH": str(REPO),
        },
    )
    try:
        local_airflow.migrate_metadata(stack.env)
        stack.start_api_server()
        for worker in WORKERS:
            stack.start(
                worker, "celery", "worker", "--concurrency", "1",
                "--celery-hostname", f"{worker}@%h", "--skip-serve-logs", "--without-gossip",
                "--without-mingle", env={"INBOXSYNC_TEST_WORKER": worker},
            )  # fmt: skip
        deadline = time.monotonic() + 120
        while not all("ready" in stack.log(w) for w in WORKERS):
            assert time.monotonic() < deadline, stack.log(WORKERS[0])[-3000:]
            time.sleep(0.5)
        # A real scheduler queues the three list tasks together at the start of the run, then
        # the six mapped sync tasks together; each worker (concurrency 1, no prefetch) holds one
        # at a time, so both take some. (`dags test --use-executor` hands tasks over one by one,
        # which left the spread to chance.)
        stack.run("dags", "reserialize")
        stack.start("scheduler", "scheduler")
        started = time.monotonic()
        with stack.client() as api:
            # Unpausing creates the latest hourly run at once: that run syncs the six inboxes.
            api.patch("/api/v2/dags/inbox_sync", json={"is_paused": False}).raise_for_status()
            deadline = time.monotonic() + 300
            while True:
                runs = api.get("/api/v2/dags/inbox_sync/dagRuns").json()["dag_runs"]
                if runs and all(r["state"] in ("success", "failed") for r in runs):
                    break
                assert time.monotonic() < deadline, stack.log("scheduler")[-3000:]
                time.sleep(1)
        celery_seconds = time.monotonic() - started
        all_tasks = _task_hosts(services.pg_url("airflow_celery"))
        run_states = [r["state"] for r in runs]
    finally:
        stack.stop()

    tasks = [(name, state, host) for task, name, state, host in all_tasks if task == "sync_inbox"]
    assert [(name, state) for name, state, _ in tasks] == [
        (name, "success") for name, _, _ in mailboxes
    ], run_states
    per_worker = Counter(host for _, _, host in tasks)
    print(
        f"\ncelery run (scheduler): {celery_seconds:.1f} s;"
        f" sync tasks per worker: {dict(per_worker)};"
        f" all tasks per worker: {dict(Counter(host for *_, host in all_tasks if host))}"
    )
    # Both workers ran the run's tasks, the sync tasks among them on one or both: tasks queued
    # together are shared, but the six syncs of these small inboxes take under a second each
    # and are queued while the provider list tasks (about 5 s of task start-up) run, so a
    # worker busy with one of those can leave every sync to the other (seen in a CI run).
    # (Tasks that ran have a host; the mapped syncs of no Gmail or Microsoft inbox never ran.)
    assert {host for *_, host in all_tasks if host} == set(WORKERS)
    assert set(per_worker) <= set(WORKERS)
    assert sum(per_worker.values()) == INBOXES

    # The same DAG under the LocalExecutor, into a second warehouse.
    local_env = {
        **stack.env,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW_CONN_INBOXSYNC_WAREHOUSE": local_wh,
    }
    local = AirflowStack(services, local_env, TEST_ROOT / "airflow-local", "local")
    try:
        local_airflow.migrate_metadata(local.env)
        local.start_api_server()
        local.run("dags", "test", "inbox_sync", "--use-executor", timeout=600)
    finally:
        local.stop()

    tables = contract_tables(local_wh)
    assert {"messages", "message_copies", "threads", "reply_flags"} <= set(tables)
    for table in sorted(set(tables) - _ORDER_DEPENDENT_TABLES):
        assert contract_rows(celery_wh, table) == contract_rows(local_wh, table), table
    assert len(contract_rows(local_wh, "message_copies")) == INBOXES * 60
    # Messages 0-259 of the corpus, neighbours overlapping by 20; a few repeat a Message-ID.
    assert len(contract_rows(local_wh, "messages")) == 255
