"""The Airflow DAG `inbox_marts` (cosmos, a task per model) on a synced warehouse, and the
incremental contact_timeline after a second sync: equal to a full rebuild."""

from __future__ import annotations

import os

import pytest

from tests.conftest import query
from tests.integration.marts_warehouse import synced_demo_warehouse

pytestmark = pytest.mark.integration

TIMELINE = (
    "SELECT timeline_id, contact_email, message_key, contact_role, inbox_ids, inbox_names,"
    " team_member_emails, is_reply_to_team, thread_id, message_direction"
    " FROM inboxsync_marts.contact_timeline ORDER BY timeline_id"
)


@pytest.fixture(scope="module")
def wh(services, airflow_env):
    saved = os.environ.get("AIRFLOW_CONN_INBOXSYNC_WAREHOUSE")
    yield synced_demo_warehouse(services, "wh_dbt_dag", "dbt dag")
    if saved is not None:
        os.environ["AIRFLOW_CONN_INBOXSYNC_WAREHOUSE"] = saved


def test_dag_builds_every_model_as_its_own_task(wh, airflow_env, tmp_path):
    from inboxsync import local_airflow

    env = {**airflow_env, "AIRFLOW_CONN_INBOXSYNC_WAREHOUSE": wh.url}
    log = tmp_path / "dags-test.log"
    proc = local_airflow.airflow(env, "dags", "test", "inbox_marts", log_path=log, check=False)
    output = log.read_text()
    assert proc.returncode == 0, output[-5000:]
    assert "state=success" in output.splitlines()[-1] or "state=success" in output[-2000:]
    ended = {
        line.split("task_id=")[1].split()[0]
        for line in output.splitlines()
        if "[DAG TEST] end task" in line
    }
    assert len(ended) == 18
    assert {"marts.contact_timeline_model_build", "marts.threads_model_build"} <= ended
    # The marts are in the schema of the profile cosmos built from the warehouse connection.
    tables = query(
        wh.url,
        "SELECT table_name, table_type FROM information_schema.tables"
        " WHERE table_schema = 'inboxsync_marts' ORDER BY 1",
    )
    assert tables == [(t, "BASE TABLE") for t in
                      ("contact_timeline", "contacts", "inbox_sync_health", "reply_metrics",
                       "threads")]  # fmt: skip
    assert query(wh.url, "SELECT count(*) FROM inboxsync_marts.contact_timeline") == [(57,)]


def test_incremental_timeline_after_a_second_sync_equals_a_full_rebuild(wh, services):
    from inboxsync import marts
    from inboxsync.demo_mail import TEAM, demo_messages
    from inboxsync.sync import sync_inbox

    alice, bob = (m.email for m in TEAM)
    marts.build()  # the timeline exists (first run), now as an incremental model
    # An email only Alice had reaches Bob too; a new contact writes to Bob.
    only_alice = next(
        r for r in demo_messages()
        if {u for u, _ in r.placements} == {alice} and r.kind == "conversation"
    )  # fmt: skip
    new = (b"From: Nadia Novak <nadia@newco.example>\r\nTo: bob@acme.example\r\n"
           b"Subject: Hello\r\nDate: Mon, 19 Oct 2026 09:00:00 +0000\r\n"
           b"Message-ID: <hello@newco.example>\r\n\r\nHi Bob\r\n")  # fmt: skip
    services.deliver(wh.usernames[bob], "INBOX", [only_alice.raw, new])
    assert sync_inbox(wh.inbox_names[bob], url=wh.url).fetched == 2

    run = marts.build(select=["contact_timeline"])
    assert run.results["model.inboxsync.contact_timeline"] == "success"
    incremental = query(wh.url, TIMELINE)
    both = sorted(wh.inbox_names.values())
    moved = [r for r in incremental if r[2] == query(
        wh.url, "SELECT message_key FROM inboxsync.messages WHERE message_id = %s",
        (only_alice.message_id.strip("<>"),))[0][0]]  # fmt: skip
    assert moved and all(r[5] == both for r in moved)
    assert [r[1] for r in incremental if r[1] == "nadia@newco.example"] == ["nadia@newco.example"]
    assert len(incremental) == 58

    marts.build(select=["contact_timeline"], full_refresh=True)
    assert query(wh.url, TIMELINE) == incremental
