"""Start a newly connected inbox's first sync at once: as a DAG run, else in this process.

With ``INBOXSYNC_AIRFLOW_API_URL`` set (e.g. ``http://127.0.0.1:8080``) and that api-server
answering, the first sync is a run of ``inbox_sync`` with conf ``{"inbox": NAME}``, triggered
through Airflow's REST API (token from ``/auth/token`` with ``INBOXSYNC_AIRFLOW_USERNAME`` and
``INBOXSYNC_AIRFLOW_PASSWORD``, environment only). Otherwise (no api-server configured or
reachable, or the DAG paused) it runs here through :func:`inboxsync.sync.sync_inbox`, the code
path of the DAG's mapped task.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import httpx

from inboxsync.sync import InboxResult, sync_inbox

log = logging.getLogger(__name__)

DAG_ID = "inbox_sync"
_TIMEOUT = 10.0


class AirflowApiError(Exception):
    """The api-server answered, but refused or failed the request; the message says why."""


@dataclass(frozen=True)
class FirstSync:
    """How the first sync was started.

    Attributes:
        how: "dag_run" (triggered in Airflow) or "in_process" (ran here, finished).
        run_id: The DAG run's id, for "dag_run".
        url: The DAG run's page in the Airflow UI, for "dag_run".
        result: What the sync did, for "in_process".
        reason: Why it ran here, for "in_process".
    """

    how: str
    run_id: str | None = None
    url: str | None = None
    result: InboxResult | None = None
    reason: str | None = None


def api_url() -> str:
    """The configured api-server's base URL, or "" when none is configured."""
    return os.environ.get("INBOXSYNC_AIRFLOW_API_URL", "").strip().rstrip("/")


def start_first_sync(name: str) -> FirstSync:
    """Sync inbox ``name`` now: through Airflow when its api-server answers, else here.

    Raises:
        AirflowApiError: The api-server answered but refused the login or the trigger.
        InboxError: The in-process sync failed; the message says what to check.
    """
    base = api_url()
    if not base:
        return _in_process(name, "no Airflow api-server configured (INBOXSYNC_AIRFLOW_API_URL)")
    try:
        httpx.get(f"{base}/api/v2/monitor/health", timeout=_TIMEOUT).raise_for_status()
    except httpx.HTTPError as exc:
        return _in_process(name, f"the Airflow api-server at {base} is not reachable ({exc})")
    with httpx.Client(base_url=base, timeout=_TIMEOUT) as client:
        client.headers["Authorization"] = f"Bearer {_token(client)}"
        dag = _call(client, "GET", f"/api/v2/dags/{DAG_ID}")
        if dag.get("is_paused"):
            return _in_process(name, f"the DAG {DAG_ID} is paused in Airflow at {base}")
        run = _call(
            client,
            "POST",
            f"/api/v2/dags/{DAG_ID}/dagRuns",
            json={"logical_date": None, "conf": {"inbox": name}, "note": f"first sync of {name}"},
        )
    run_id = run["dag_run_id"]
    return FirstSync("dag_run", run_id=run_id, url=f"{base}/dags/{DAG_ID}/runs/{run_id}")


def _token(client: httpx.Client) -> str:
    username = os.environ.get("INBOXSYNC_AIRFLOW_USERNAME", "")
    password = os.environ.get("INBOXSYNC_AIRFLOW_PASSWORD", "")
    if not username or not password:
        raise AirflowApiError(
            "set INBOXSYNC_AIRFLOW_USERNAME and INBOXSYNC_AIRFLOW_PASSWORD (an Airflow user who "
            f"may trigger {DAG_ID}) to start the first sync through Airflow"
        )
    return _call(client, "POST", "/auth/token", json={"username": username, "password": password})[
        "access_token"
    ]


def _call(client: httpx.Client, method: str, path: str, **kwargs: object) -> dict:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise AirflowApiError(f"{method} {client.base_url}{path} failed: {exc}") from None
    if response.status_code >= 400:
        detail = response.text[:300]
        if response.status_code in (401, 403):
            detail += " (check INBOXSYNC_AIRFLOW_USERNAME / INBOXSYNC_AIRFLOW_PASSWORD)"
        raise AirflowApiError(
            f"{method} {client.base_url}{path}: HTTP {response.status_code}: {detail}"
        )
    return response.json()


def _in_process(name: str, reason: str) -> FirstSync:
    log.info("first sync of %r in this process: %s", name, reason)
    return FirstSync("in_process", result=sync_inbox(name), reason=reason)
