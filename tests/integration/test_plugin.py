"""The connect flow and the Inboxes page against a real api-server and scheduler on loopback.

`inboxsync inbox add` verifies an inbox before saving it and starts its first sync as a DAG run
through the REST API; the plugin's page and JSON API show each inbox's status, reject anonymous
callers, and render in headless Chromium (the screenshot is kept under .local/test-artefacts/).
The connection form's Test button (POST /api/v2/connections/test) works for inboxsync_imap.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, TEST_ROOT, query, unique_user
from tests.integration.airflow_stack import AirflowStack
from tests.integration.chromium import Browser

pytestmark = pytest.mark.integration

INBOXSYNC = str(Path(sys.executable).with_name("inboxsync"))
ARTEFACTS = REPO / ".local" / "test-artefacts"
SCREENSHOT = ARTEFACTS / "inboxes-page.png"


@pytest.fixture(scope="module")
def stack(services, airflow_env):
    from inboxsync import local_airflow, warehouse

    wh = services.create_database("wh_plugin_page", drop=True)
    warehouse.migrate(wh)
    s = AirflowStack(
        services,
        airflow_env,
        TEST_ROOT / "airflow-plugin",
        "plugin",
        extra_env={"AIRFLOW_CONN_INBOXSYNC_WAREHOUSE": wh, "AIRFLOW__CORE__PARALLELISM": "2"},
    )
    s.warehouse = wh
    local_airflow.migrate_metadata(s.env)  # the database and the per-provider pools
    s.run("dags", "reserialize")
    s.start_api_server()
    s.start("scheduler", "scheduler")
    try:
        with s.client() as api:
            api.patch("/api/v2/dags/inbox_sync", json={"is_paused": False}).raise_for_status()
            # Unpausing creates the latest hourly run at once: let it finish (no inboxes yet), so
            # the runs below are the only ones that sync.
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                runs = api.get("/api/v2/dags/inbox_sync/dagRuns").json()["dag_runs"]
                if runs and all(r["state"] in ("success", "failed") for r in runs):
                    break
                time.sleep(1)
            else:
                raise TimeoutError("the first hourly run did not finish:\n" + s.log("scheduler"))
        yield s
    finally:
        s.stop()


def _cli(stack: AirflowStack, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        **stack.env,
        "INBOXSYNC_AIRFLOW_API_URL": stack.url,
        "INBOXSYNC_AIRFLOW_USERNAME": "admin",
        "INBOXSYNC_AIRFLOW_PASSWORD": stack.password,
    }
    return subprocess.run(
        [INBOXSYNC, *args], input=stdin, env=env, capture_output=True, text=True, timeout=300
    )


def _add_args(services, name: str, user: str, *extra: str) -> list[str]:
    return ["inbox", "add", name, "--host", services.host, "--port", str(services.imaps_port),
            "--username", user, "--password-stdin", "--ca-file", str(services.ca_file),
            "--owner", user, *extra]  # fmt: skip


def _wait_run(stack: AirflowStack, run_id: str, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    with stack.client() as api:
        while time.monotonic() < deadline:
            run = api.get(f"/api/v2/dags/inbox_sync/dagRuns/{run_id}").json()
            if run["state"] in ("success", "failed"):
                tis = api.get(f"/api/v2/dags/inbox_sync/dagRuns/{run_id}/taskInstances").json()
                run["task_instances"] = tis["task_instances"]
                return run
            time.sleep(1)
    raise TimeoutError(f"run {run_id} did not finish:\n{stack.log('scheduler')[-3000:]}")


def _mapped(run: dict) -> list[tuple[str, str]]:
    return sorted(
        (t["rendered_map_index"], t["state"])
        for t in run["task_instances"]
        if t["task_id"] == "sync_inbox"
    )


@pytest.fixture(scope="module")
def inboxes(stack, services):
    """Two inboxes: "Good" synced by its first run, "Broken" whose password has changed."""
    good, broken = unique_user("good"), unique_user("broken")
    services.add_mail_user(good, "good-pw-1")
    services.add_mail_user(broken, "broken-pw-1")
    services.deliver(good, "INBOX", [
        f"From: c{i}@globex.example\r\nTo: {good}\r\nSubject: hello {i}\r\n"
        f"Message-ID: <page-{i}@globex.example>\r\n\r\nbody\r\n".encode()
        for i in range(3)
    ])  # fmt: skip

    add = _cli(stack, *_add_args(services, "Good", good), stdin="good-pw-1\n")
    assert add.returncode == 0, add.stderr
    verified = "folders to sync: INBOX (3 messages), Sent (0 messages)"
    assert f"verified: logged in as {good} at {services.host}:" in add.stdout, add.stdout
    assert verified in add.stdout
    run_id = re.search(r"first sync started in Airflow: DAG run (\S+) ", add.stdout).group(1)
    good_run = _wait_run(stack, run_id)

    # A wrong password: verification fails, nothing is saved.
    bad = _cli(stack, *_add_args(services, "Broken", broken), stdin="not-the-password\n")
    # Saved without verification, then the password changes on the server: its sync fails.
    forced = _cli(stack, *_add_args(services, "Broken", broken, "--no-verify", "--no-sync"),
                  stdin="broken-pw-1\n")  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    services.add_mail_user(broken, "changed-pw-2")
    with stack.client() as api:
        r = api.post("/api/v2/dags/inbox_sync/dagRuns",
                     json={"logical_date": None, "conf": {"inbox": "Broken"}})  # fmt: skip
        r.raise_for_status()
    broken_run = _wait_run(stack, r.json()["dag_run_id"])
    return {"good": good, "broken": broken, "good_run": good_run, "bad_add": bad,
            "broken_run": broken_run}  # fmt: skip


def test_inbox_add_verifies_and_starts_the_first_sync_as_a_dag_run(stack, inboxes):
    good_run = inboxes["good_run"]
    assert good_run["state"] == "success"
    assert good_run["conf"] == {"inbox": "Good"}
    assert _mapped(good_run) == [("Good", "success")]  # this inbox alone
    assert query(stack.warehouse, "SELECT count(*) FROM inboxsync.message_copies") == [(3,)]

    bad = inboxes["bad_add"]
    assert bad.returncode == 1
    assert f"refused the login of '{inboxes['broken']}'" in bad.stderr
    assert "not-the-password" not in bad.stderr + bad.stdout
    assert "saved" not in bad.stdout

    assert _mapped(inboxes["broken_run"]) == [("Broken", "failed")]


def test_api_rejects_anonymous_and_forged_tokens(stack, inboxes):
    for path in ("/inboxsync/", "/inboxsync/api/inboxes"):
        anonymous = httpx.get(stack.url + path, timeout=10)
        assert (anonymous.status_code, anonymous.json()) == (401, {"detail": "Not authenticated"})
        forged = httpx.get(stack.url + path, headers={"Authorization": "Bearer x.y.z"}, timeout=10)
        assert forged.status_code == 403
        cookie = httpx.get(stack.url + path, cookies={"_token": stack.token()}, timeout=10)
        assert cookie.status_code == 200


def test_api_lists_each_inbox_with_its_status(stack, inboxes):
    with stack.client() as api:
        data = api.get("/inboxsync/api/inboxes").json()
        plugins = api.get("/api/v2/plugins").json()["plugins"]
    assert data["total_entries"] == 2
    broken, good = data["inboxes"]
    assert (good["name"], good["owner"], good["folders"], good["messages"], good["backlog"]) == (
        "Good", inboxes["good"], ["INBOX", "Sent"], 3, 0,
    )  # fmt: skip
    assert good["last_error"] is None and good["last_success_at"] is not None
    assert good["last_run_fetched"] == 3 and good["last_run_rate"] > 0
    good_ti = next(t for t in inboxes["good_run"]["task_instances"] if t["task_id"] == "sync_inbox")
    assert good["log_url"] == (
        f"/dags/inbox_sync/runs/{good_ti['dag_run_id'].replace(':', '%3A').replace('+', '%2B')}"
        f"/tasks/sync_inbox/mapped/{good_ti['map_index']}"
    )
    assert good["last_task_state"] == "success"

    assert (broken["name"], broken["messages"], broken["folders"]) == ("Broken", 0, [])
    assert f"refused the login of '{inboxes['broken']}'" in broken["last_error"]
    assert broken["last_success_at"] is None and broken["last_task_state"] == "failed"

    [plugin] = [p for p in plugins if p["name"] == "inboxsync"]
    assert [(v["name"], v["href"], v["url_route"]) for v in plugin["external_views"]] == [
        ("Inboxes", "/inboxsync/", "inboxes")
    ]


def test_inboxes_page_in_headless_chromium(stack, inboxes):
    browser = Browser()
    try:
        browser.send("Network.enable")
        browser.send("Network.setCookie", name="_token", value=stack.token(), url=stack.url + "/")
        browser.send("Page.navigate", url=f"{stack.url}/plugin/inboxes")
        frame_text = (
            "(() => { const f = document.querySelector('iframe');"
            " const b = f && f.contentDocument && f.contentDocument.body;"
            " return b && b.innerText.includes('Broken') ? b.innerText : ''; })()"
        )
        text = browser.wait_for(frame_text)
        nav = browser.evaluate("document.querySelector('nav') ? document.querySelector('nav')"
                               ".innerText : document.body.innerText")  # fmt: skip
        time.sleep(1)  # let the UI finish painting around the frame
        png = browser.screenshot(SCREENSHOT)
    finally:
        browser.close()
    assert "Inboxes" in nav
    assert "2 inbox(es), 1 failing" in text
    assert "Good" in text and inboxes["good"] in text and "INBOX, Sent" in text
    assert f"refused the login of '{inboxes['broken']}'" in text
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_connection_form_test_button(stack, services):
    user = unique_user("form")
    services.add_mail_user(user, "form-pw-1")
    body = {
        "connection_id": "inbox_from_the_ui",
        "conn_type": "inboxsync_imap",
        "host": services.host,
        "port": services.imaps_port,
        "login": user,
        "password": "form-pw-1",
        "extra": f'{{"security": "ssl", "ssl_ca_file": "{services.ca_file}"}}',
    }
    with stack.client() as api:
        ok = api.post("/api/v2/connections/test", json=body).json()
        wrong = api.post("/api/v2/connections/test", json={**body, "password": "nope"}).json()
        provider_type = api.post("/api/v2/connections/test", json={**body, "conn_type": "imap"})
        hook_meta = api.get("/ui/connections/hook_meta").json()
    assert ok == {
        "status": True,
        "message": f"logged in as {user} at {services.host}:{services.imaps_port}; "
        "folders to sync: INBOX (0 messages), Sent (0 messages)",
    }
    assert wrong["status"] is False
    assert f"refused the login of '{user}'" in wrong["message"]
    # The imap provider's own type has no test in its hook: the reason to register ours.
    assert provider_type.json() == {
        "status": False,
        "message": "Hook ImapHook doesn't implement or inherit test_connection method",
    }
    [meta] = [m for m in hook_meta if m["connection_type"] == "inboxsync_imap"]
    assert meta["hook_name"] == "IMAP inbox (inboxsync)"
