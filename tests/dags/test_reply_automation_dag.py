"""reply_automation is scheduled on the asset every inbox_sync task updates (declared once)."""

from __future__ import annotations

from pathlib import Path

from airflow.dag_processing.dagbag import DagBag

from inboxsync.assets import REPLY_FLAGS

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"


def test_producer_and_consumer_share_the_reply_flags_asset() -> None:
    dagbag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert dagbag.import_errors == {}
    consumer = dagbag.dags["reply_automation"]
    assert consumer.timetable.asset_condition.objects == (REPLY_FLAGS,)
    assert consumer.max_active_runs == 1
    assert set(consumer.task_ids) == {"mark_engaged_contacts"}
    producer = dagbag.dags["inbox_sync"]
    sync_tasks = [t for t in producer.tasks if t.task_id.startswith("sync_")]
    assert sync_tasks
    assert all(t.outlets == [REPLY_FLAGS] for t in sync_tasks)
