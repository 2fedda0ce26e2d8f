"""Backfills of large inboxes: newest first, a per-run budget, resumable, run to the end."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import query

pytestmark = pytest.mark.integration

INBOXSYNC = str(Path(sys.executable).with_name("inboxsync"))


def _loaded_uids(url: str) -> list[int]:
    rows = query(url, "SELECT uid FROM inboxsync.message_copies WHERE folder = 'INBOX' ORDER BY 1")
    return [uid for (uid,) in rows]


def _state(url: str) -> tuple:
    return query(
        url,
        "SELECT last_uid, backfill_uid, backfill_remaining, backfill_done_at IS NOT NULL"
        " FROM inboxsync.sync_state WHERE folder = 'INBOX'",
    )[0]


class _Lines(logging.Handler):
    """The sync's log lines (Airflow reconfigures logging, so caplog may miss them)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def sync_log():
    handler = _Lines()
    logger = logging.getLogger("inboxsync.sync")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_budgeted_runs_load_newest_first_until_complete(
    services, make_inbox, warehouse_url, imap, util_linux, sync_log
):
    from inboxsync.sync import Budget, sync_inbox
    from inboxsync.verify import verify_inbox

    inbox = make_inbox()
    services.deliver(inbox.username, "INBOX", util_linux[:1000])

    r1 = sync_inbox(inbox.name, url=warehouse_url, batch_size=100, budget=Budget(messages=300))
    assert (r1.fetched, r1.budget_exhausted, r1.backfill_remaining) == (300, True, 700)
    assert _loaded_uids(warehouse_url) == list(range(701, 1001))  # the newest 300
    assert _state(warehouse_url) == (1000, 701, 700, False)
    progress = [line for line in sync_log if "backfill: done" in line]
    assert progress and "backfill: done 300, remaining 700" in progress[-1]
    assert "messages/s, ETA" in progress[-1]

    # New mail arrives between runs: the next run takes it first, then goes on with history.
    client = imap(inbox.username, inbox.password)
    client.append("INBOX", util_linux[1000])
    client.append("INBOX", util_linux[1001])
    r2 = sync_inbox(inbox.name, url=warehouse_url, batch_size=100, budget=Budget(messages=300))
    inbox_r2 = {f.folder: f for f in r2.folders}["INBOX"]
    assert (inbox_r2.new_mail, inbox_r2.history, inbox_r2.backfill_remaining) == (2, 298, 402)
    assert _state(warehouse_url) == (1002, 403, 402, False)

    runs = 2
    while True:
        r = sync_inbox(inbox.name, url=warehouse_url, batch_size=100, budget=Budget(messages=300))
        runs += 1
        if r.backfill_remaining == 0:
            break
    assert runs == 4
    assert _loaded_uids(warehouse_url) == list(range(1, 1003))
    assert _state(warehouse_url) == (1002, 1, 0, True)
    assert all(c.ok for c in verify_inbox(inbox.name, url=warehouse_url))
    # An up-to-date inbox: the next run fetches nothing.
    assert sync_inbox(inbox.name, url=warehouse_url).fetched == 0


def test_byte_budget_stops_after_the_batch_that_reaches_it(
    services, make_inbox, warehouse_url, util_linux
):
    from inboxsync.sync import Budget, sync_inbox

    inbox = make_inbox()
    services.deliver(inbox.username, "INBOX", util_linux[:500])
    r = sync_inbox(inbox.name, url=warehouse_url, batch_size=50, budget=Budget(bytes=1))
    assert (r.fetched, r.backfill_remaining, r.budget_exhausted) == (50, 450, True)
    assert _loaded_uids(warehouse_url) == list(range(451, 501))


def test_cli_sync_reports_what_remains_and_backfill_finishes(
    services, make_inbox, warehouse_url, util_linux
):
    inbox = make_inbox()
    services.deliver(inbox.username, "INBOX", util_linux[:600])
    sync = subprocess.run(
        [INBOXSYNC, "sync", inbox.name, "--budget-messages", "200", "--batch-size", "100"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert sync.returncode == 0, sync.stderr
    assert "400 older messages remain" in sync.stdout
    backfill = subprocess.run([INBOXSYNC, "backfill", inbox.name], capture_output=True, text=True)
    assert backfill.returncode == 0, backfill.stderr
    assert "folder 'INBOX': fetched 400, loaded 400" in backfill.stdout
    assert "older messages remain" not in backfill.stdout
    verify = subprocess.run([INBOXSYNC, "verify", inbox.name], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "the warehouse matches the server" in verify.stdout


def test_backfill_dag_with_a_budget(services, make_inbox, warehouse_url, airflow_env, util_linux):
    from inboxsync import local_airflow

    inbox = make_inbox()
    services.deliver(inbox.username, "INBOX", util_linux[:300])
    env = {**airflow_env, "AIRFLOW_CONN_INBOXSYNC_WAREHOUSE": warehouse_url}
    conf = json.dumps({"inbox": inbox.name, "budget_messages": 120})
    proc = local_airflow.airflow(env, "dags", "test", "inbox_backfill", "-c", conf, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert _loaded_uids(warehouse_url) == list(range(181, 301))
    assert "backfill: done 120, remaining 180" in proc.stdout + proc.stderr


def test_verify_finds_missing_extra_and_stale(services, make_inbox, warehouse_url, imap):
    from inboxsync.sync import sync_inbox
    from inboxsync.verify import verify_inbox

    inbox = make_inbox()
    msgs = [
        f"From: a@globex.example\r\nSubject: v{n}\r\nMessage-ID: <v{n}@globex.example>\r\n\r\n"
        .encode()
        for n in range(6)
    ]  # fmt: skip
    services.deliver(inbox.username, "INBOX", msgs)
    sync_inbox(inbox.name, url=warehouse_url)
    assert all(c.ok for c in verify_inbox(inbox.name, url=warehouse_url))

    query(warehouse_url, "DELETE FROM inboxsync.message_copies WHERE uid = 1 RETURNING 1")
    client = imap(inbox.username, inbox.password)
    client.select_folder("INBOX")
    client.add_flags([2], [b"\\Flagged"])
    client.delete_messages([3])
    client.expunge()
    check = {c.folder: c for c in verify_inbox(inbox.name, url=warehouse_url)}["INBOX"]
    assert (check.on_server, check.missing, check.pending, check.extra, check.stale) == (
        5, 1, 0, 1, 1,
    )  # fmt: skip
    assert not check.ok
