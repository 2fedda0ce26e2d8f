"""The marts DAG: scheduled on the sync's asset, one cosmos task per dbt model, its profile taken
from the warehouse's Airflow connection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag

DAG_FILE = Path(__file__).resolve().parents[2] / "dags" / "inbox_marts.py"


@pytest.fixture(scope="module")
def dag():
    bag = DagBag(dag_folder=str(DAG_FILE))
    assert bag.import_errors == {}
    return bag.dags["inbox_marts"]


def _models() -> set[str]:
    from inboxsync import marts

    manifest = json.loads(marts.ensure_manifest().read_text())
    return {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}


def test_scheduled_on_the_reply_flags_asset_of_the_sync(dag):
    from inboxsync.assets import REPLY_FLAGS

    assert dag.timetable.asset_condition.objects == (REPLY_FLAGS,)
    assert dag.max_active_runs == 1
    assert dag.catchup is False


def test_one_build_task_per_model_in_dependency_order(dag):
    models = _models()
    assert len(models) == 18
    assert {
        "contact_timeline",
        "contacts",
        "threads",
        "reply_metrics",
        "inbox_sync_health",
    } <= models
    assert set(dag.task_ids) == {f"marts.{m}_model_build" for m in models}
    timeline = dag.get_task("marts.contact_timeline_model_build")
    assert "marts.int_message_copies_aggregated_model_build" in timeline.upstream_task_ids
    assert dag.get_task("marts.contacts_model_build").upstream_task_ids >= {
        "marts.contact_timeline_model_build",
        "marts.stg_inboxsync__contact_reply_statuses_model_build",
    }
    for task in dag.tasks:
        assert type(task).__name__ == "DbtBuildLocalOperator"
        assert task.retries >= 2


def test_profile_comes_from_the_warehouse_connection(dag, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_INBOXSYNC_WAREHOUSE",
        "postgresql://bi:s3cret@db.example:6543/wh?sslmode=require",
    )
    task = dag.get_task("marts.threads_model_build")
    config = task.profile_config
    assert config.profile_mapping.conn_id == "inboxsync_warehouse"
    profile = config.profile_mapping.profile
    assert profile == {
        "type": "postgres",
        "host": "db.example",
        "port": 6543,
        "user": "bi",
        "dbname": "wh",
        "schema": "inboxsync_marts",
        "sslmode": "require",
        "password": "{{ env_var('COSMOS_CONN_POSTGRES_PASSWORD') }}",
    }
    # The password reaches dbt through the environment, not through profiles.yml.
    assert config.profile_mapping.env_vars["COSMOS_CONN_POSTGRES_PASSWORD"] == "s3cret"
