"""The Inboxes page: every connected inbox's sync status, inside the Airflow UI.

An Airflow 3 plugin: a FastAPI app mounted at ``/inboxsync`` (an HTML page and a JSON API) and an
"Inboxes" entry in the UI's navigation that shows the page. Airflow gives a plugin's FastAPI app
no authentication, so every route here resolves the caller's Airflow token itself (the UI's
``_token`` cookie or an ``Authorization: Bearer`` header) and asks the auth manager whether that
user may read the ``inbox_sync`` DAG: anonymous callers get 401, others without access 403.

Nothing runs at import: the warehouse and Airflow's database are read per request.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Annotated, Any, ClassVar

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse

URL_PREFIX = "/inboxsync"
DAG_ID = "inbox_sync"


async def require_reader(request: Request) -> Any:
    """The authenticated Airflow user, if they may read ``inbox_sync``; else 401 or 403."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
    from airflow.api_fastapi.core_api.security import resolve_user_from_token

    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    token = (
        credentials if scheme.lower() == "bearer" else request.cookies.get(COOKIE_NAME_JWT_TOKEN)
    )
    user = await resolve_user_from_token(token)  # 401 without a token, 403 for a forged one
    if not get_auth_manager().is_authorized_dag(
        method="GET", details=DagDetails(id=DAG_ID), user=user
    ):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"no read access to the DAG {DAG_ID}")
    return user


def _statuses() -> list[Any]:
    from airflow.utils.session import create_session

    from inboxsync.inbox_status import attach_task_links, inbox_statuses

    statuses = inbox_statuses()
    with create_session() as session:
        attach_task_links(statuses, session)
    return statuses


Reader = Annotated[Any, Depends(require_reader)]

app = FastAPI(title="inboxsync", description="Connected inboxes and their sync status")


@app.get("/api/inboxes")
def list_inboxes(user: Reader) -> dict[str, Any]:
    """Every connected inbox's status as JSON (what the page shows)."""
    rows = [s.as_json() for s in _statuses()]
    return {"inboxes": rows, "total_entries": len(rows)}


@app.get("/", response_class=HTMLResponse)
def inboxes_page(user: Reader) -> HTMLResponse:
    """The Inboxes page (shown in an iframe under the UI's "Inboxes" entry)."""
    return HTMLResponse(render_page(_statuses()))


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "never"


def _row(s: Any) -> str:
    e = html.escape
    rate = s.last_run_rate
    last_run = (
        f"{s.last_run_fetched:,} in {s.last_run_seconds:.1f} s ({rate:,.0f}/s)"
        if rate is not None
        else ("nothing new" if s.last_run_fetched == 0 else "-")
    )
    error = (
        f'<div class="error">{e(s.last_error)}</div>'
        f'<div class="when">{_when(s.last_error_at)}</div>'
        if s.last_error
        else '<span class="ok">none</span>'
    )
    logs = (
        f'<a href="{e(s.log_url)}" target="_top">{e(s.last_task_state or "logs")}</a>'
        if s.log_url
        else "-"
    )
    return (
        f'<tr class="{"failing" if s.last_error else "healthy"}" data-inbox="{e(s.name)}">'
        f'<td class="name">{e(s.name)}{"" if s.enabled else " (disabled)"}</td>'
        f"<td>{e(s.owner or '-')}</td>"
        f"<td>{e(', '.join(s.folders) or '-')}</td>"
        f'<td class="num">{s.messages:,}</td>'
        f'<td class="num">{s.backlog:,}</td>'
        f"<td>{_when(s.last_success_at)}</td>"
        f"<td>{error}</td>"
        f"<td>{last_run}</td>"
        f"<td>{logs}</td>"
        "</tr>"
    )


def render_page(statuses: list[Any]) -> str:
    """The page's HTML: a table of inboxes, failing ones first to catch the eye."""
    ordered = sorted(statuses, key=lambda s: (s.last_error is None, s.name))
    body = "".join(_row(s) for s in ordered) or (
        '<tr><td colspan="9">No connected inboxes: add one with '
        "<code>inboxsync inbox add</code>.</td></tr>"
    )
    failing = sum(1 for s in statuses if s.last_error)
    summary = f"{len(statuses)} inbox(es), {failing} failing"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Inboxes</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 16px; color: #1a202c; }}
h1 {{ font-size: 20px; margin: 0 0 4px; }}
.summary {{ color: #4a5568; margin-bottom: 12px; }}
table {{ border-collapse: collapse; width: 100%; font-size: 13px; }}
th, td {{ border-bottom: 1px solid #e2e8f0; padding: 6px 8px; text-align: left;
          vertical-align: top; }}
th {{ background: #f7fafc; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
tr.failing td.name {{ border-left: 4px solid #e53e3e; }}
tr.healthy td.name {{ border-left: 4px solid #38a169; }}
.error {{ color: #c53030; max-width: 420px; }}
.when {{ color: #718096; font-size: 11px; }}
.ok {{ color: #38a169; }}
</style></head><body>
<h1>Inboxes</h1>
<div class="summary">{summary} &middot; <a href="{URL_PREFIX}/api/inboxes">JSON</a></div>
<table>
<thead><tr><th>Inbox</th><th>Owner</th><th>Folders</th><th>Messages synced</th>
<th>Backlog</th><th>Last success</th><th>Last error</th><th>Last run</th><th>Task logs</th></tr>
</thead>
<tbody>{body}</tbody>
</table>
</body></html>
"""


class InboxSyncPlugin(AirflowPlugin):
    """The Inboxes page and its JSON API, with an entry in the UI's navigation."""

    name = "inboxsync"
    fastapi_apps: ClassVar[list[dict[str, Any]]] = [
        {"app": app, "url_prefix": URL_PREFIX, "name": "inboxsync"}
    ]
    external_views: ClassVar[list[dict[str, Any]]] = [
        {
            "name": "Inboxes",
            "href": f"{URL_PREFIX}/",
            "url_route": "inboxes",
            "destination": "nav",
        }
    ]
