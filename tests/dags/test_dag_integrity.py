"""Every DAG in dags/ imports cleanly and follows the house rules (tags, owner, retries, docs)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag() -> DagBag:
    return DagBag(dag_folder=str(DAGS_FOLDER))


def test_no_import_errors(dagbag: DagBag) -> None:
    assert dagbag.import_errors == {}
    assert "inbox_sync" in dagbag.dags


def test_every_dag_is_documented_tagged_and_retried(dagbag: DagBag) -> None:
    assert dagbag.dags, "no DAG was loaded"
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md and dag.doc_md.strip(), f"{dag_id} has no doc_md"
        assert dag.catchup is False, f"{dag_id} must not catch up"
        for t in dag.tasks:
            assert t.owner and t.owner != "airflow", f"{dag_id}.{t.task_id} has no owner"
            assert t.retries >= 2, f"{dag_id}.{t.task_id} retries {t.retries} < 2"
            assert t.retry_delay >= timedelta(minutes=1), f"{dag_id}.{t.task_id} retries at once"


def test_dag_file_is_named_after_its_dag(dagbag: DagBag) -> None:
    for dag_id, dag in dagbag.dags.items():
        assert Path(dag.fileloc).stem == dag_id


def test_inbox_sync_shape(dagbag: DagBag) -> None:
    dag = dagbag.dags["inbox_sync"]
    assert dag.max_active_runs == 1
    assert dag.schedule == "@hourly"
    syncs = {
        "sync_inbox": ("list_inboxes", "inboxsync_imap"),
        "sync_gmail_inbox": ("list_gmail_inboxes", "inboxsync_gmail"),
        "sync_microsoft_inbox": ("list_microsoft_inboxes", "inboxsync_microsoft"),
    }
    assert set(dag.task_ids) >= {*syncs, *(lister for lister, _ in syncs.values())}
    for task_id, (lister, pool) in syncs.items():
        sync = dag.get_task(task_id)
        assert sync.upstream_task_ids == {lister}
        assert sync.map_index_template == "{{ inbox_name }}"
        assert sync.pool == pool
