"""
### inbox_marts

The dbt marts for BI (project `dbt/`, schema `inboxsync_marts`): `contact_timeline`, `contacts`,
`threads`, `reply_metrics`, `inbox_sync_health`, on staging views of the warehouse contract.

Runs whenever `inbox_sync` updates the asset `inboxsync_reply_flags` (each sync task emits it
after its derive step), so the marts follow every sync. astronomer-cosmos renders one task per dbt
model (`dbt build --select <model>`: its unit tests, the model, then its data tests), in
dependency order. The dbt profile comes from the `inboxsync_warehouse` Airflow connection
(`inboxsync.marts.profile_config`); `python -m inboxsync.marts build`, `make demo` and the
tests build the same project with the same profile.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag
from cosmos import DbtTaskGroup, ExecutionConfig, ProjectConfig, RenderConfig
from cosmos.constants import LoadMode, TestBehavior, TestIndirectSelection

from inboxsync import marts
from inboxsync.assets import REPLY_FLAGS


@dag(
    schedule=[REPLY_FLAGS],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "inboxsync", "retries": 2, "retry_delay": timedelta(minutes=2)},
    tags=["inboxsync", "dbt", "marts"],
    doc_md=__doc__,
)
def inbox_marts() -> None:
    # The tasks come from the dbt manifest (a file read; re-parsed only when the project
    # changed): no dbt subprocess and no database at DAG parse time.
    DbtTaskGroup(
        group_id="marts",
        project_config=ProjectConfig(
            dbt_project_path=marts.DBT_PROJECT_DIR,
            manifest_path=marts.ensure_manifest(),
            project_name="inboxsync",
            install_dbt_deps=False,  # the project uses no dbt packages
        ),
        profile_config=marts.profile_config(),
        # buildable: a relationships test runs in the task of its child model, once its parent
        # exists, not in the parent's task (dbt's default, eager, would run it too early).
        execution_config=ExecutionConfig(
            dbt_executable_path=str(marts.dbt_executable()),
            test_indirect_selection=TestIndirectSelection.BUILDABLE,
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST, test_behavior=TestBehavior.BUILD
        ),
    )


inbox_marts()
