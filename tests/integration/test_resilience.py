"""Crashes and bad inboxes.

A SIGKILLed sync resumes to the same tables; one bad inbox fails its own task alone.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import contract_tables, query, table_rows

pytestmark = pytest.mark.integration

INBOXSYNC = str(Path(sys.executable).with_name("inboxsync"))


def test_sigkill_mid_sync_then_rerun_equals_an_uninterrupted_run(
    services, make_inbox, warehouse_url, util_linux
):
    from inboxsync import registry, warehouse
    from inboxsync.sync import sync_inbox

    inbox = make_inbox()
    services.deliver(inbox.username, "INBOX", util_linux)

    proc = subprocess.Popen(
        [INBOXSYNC, "sync", inbox.name, "--batch-size", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    killed_at = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        rows = query(warehouse_url, "SELECT count(*) FROM inboxsync.message_copies")
        if rows[0][0] >= 500:
            proc.send_signal(signal.SIGKILL)
            killed_at = rows[0][0]
            break
        time.sleep(0.01)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stdout.read().decode()
    committed = query(warehouse_url, "SELECT count(*) FROM inboxsync.message_copies")[0][0]
    [(last_uid, backfill_uid)] = query(
        warehouse_url,
        "SELECT last_uid, backfill_uid FROM inboxsync.sync_state WHERE folder = 'INBOX'",
    )
    # History loads newest first: the checkpoint is the low-water mark.
    assert last_uid == 3509
    assert 500 <= killed_at <= committed < 3509
    # Whatever committed is exactly what the checkpoint says: whole batches, nothing half-done.
    assert committed == last_uid - backfill_uid + 1
    assert committed % 50 == 0

    rerun = subprocess.run(
        [INBOXSYNC, "sync", inbox.name, "--batch-size", "50"], capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    assert f"fetched {3509 - committed}," in rerun.stdout

    # The same inbox synced without interruption into a second warehouse.
    reference = services.create_database(warehouse_url.rsplit("/", 1)[1] + "_ref", drop=True)
    warehouse.migrate(reference)
    with warehouse.transaction(reference) as cur:
        registry.add_inbox(
            cur, inbox.name, host=services.host, port=services.imaps_port, security="ssl",
            username=inbox.username, password=inbox.password, owner_email=inbox.username,
            create_contacts=True, ca_file=str(services.ca_file),
        )  # fmt: skip
    sync_inbox(inbox.name, url=reference, batch_size=50)

    for table in contract_tables(reference):
        assert table_rows(warehouse_url, table) == table_rows(reference, table), table
    assert len(table_rows(reference, "message_copies")) == 3509


def test_dag_run_with_a_wrong_password_fails_only_that_inbox(
    services, make_inbox, warehouse_url, airflow_env
):
    from inboxsync import local_airflow

    good = make_inbox()
    bad = make_inbox(register_password="not-the-password")
    msg = (
        "From: Customer <c@globex.example>\r\nTo: {to}\r\nSubject: hi\r\n"
        "Message-ID: <{n}@globex.example>\r\nDate: Mon, 05 Oct 2026 10:00:00 +0000\r\n\r\nhi\r\n"
    )
    services.deliver(good.username, "INBOX", [msg.format(to=good.username, n=1).encode()])
    services.deliver(bad.username, "INBOX", [msg.format(to=bad.username, n=2).encode()])

    env = {**airflow_env, "AIRFLOW_CONN_INBOXSYNC_WAREHOUSE": warehouse_url}
    proc = local_airflow.airflow(env, "dags", "test", "inbox_sync", check=False)
    output = proc.stdout + proc.stderr

    run_states = _task_states(services.pg_url("airflow_test"))
    assert run_states == {good.name: "success", bad.name: "failed"}, output[-4000:]
    # The failed task says what to do, and the password appears nowhere.
    assert f"refused the login of '{bad.username}'" in output
    assert "check the username and password" in output
    assert "not-the-password" not in output
    # The good inbox loaded; the bad one's error is on record for the UI and BI.
    assert query(warehouse_url, "SELECT m.message_id FROM inboxsync.messages m") == [
        ("1@globex.example",)
    ]
    errors = query(
        warehouse_url,
        "SELECT i.name, s.last_error FROM inboxsync.sync_state s"
        " JOIN inboxsync.inboxes i USING (inbox_id)"
        " WHERE s.last_error IS NOT NULL",
    )
    assert [name for name, _ in errors] == [bad.name]
    assert "refused the login" in errors[0][1]


def _task_states(metadata_url: str) -> dict[str, str]:
    """Rendered map index -> state of the sync_inbox tasks of the newest inbox_sync run."""
    rows = query(
        metadata_url,
        """
        SELECT ti.rendered_map_index, ti.state
        FROM task_instance ti
        WHERE ti.dag_id = 'inbox_sync' AND ti.task_id = 'sync_inbox'
          AND ti.run_id = (SELECT run_id FROM dag_run WHERE dag_id = 'inbox_sync'
                           ORDER BY id DESC LIMIT 1)
        """,
    )
    return dict(rows)
