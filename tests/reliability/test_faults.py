"""Faults injected into real processes on loopback; after each, the next run converges.

- a TCP proxy cuts the IMAP connection in the middle of a FETCH response, at random byte offsets;
- Dovecot is restarted during a sync; PostgreSQL is restarted during a load;
- the sync process is SIGKILLed at random moments.

After every fault the next run finishes, ``inboxsync verify`` reports nothing missing, extra or
stale, and every contract table holds exactly the rows of an uninterrupted run (row sets, not
counts). The faults run against their own Dovecot and PostgreSQL (``.local/test-faults``) so that
restarting them disturbs no other test. ``INBOXSYNC_FAULTS`` sets how many random offsets and
moments are tried (20 by default).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pytest

from tests.conftest import REPO, contract_tables, query, table_rows, unique_user
from tests.reliability.proxy import CuttingProxy

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

FAULTS = int(os.environ.get("INBOXSYNC_FAULTS", "20"))
MESSAGES = 400
BATCH = 50
INBOXSYNC = str(Path(sys.executable).with_name("inboxsync"))
SEED = int(os.environ.get("INBOXSYNC_FAULT_SEED", "20261126"))
FAULT_LOG: list[dict] = []  # what was injected, for the summary printed at the end


@pytest.fixture(scope="module")
def fault_services(airflow_env):
    from inboxsync import localenv

    svc = localenv.start(REPO / ".local" / "test-faults")
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def proxy(fault_services):
    p = CuttingProxy(fault_services.imap_port)
    yield p
    p.close()


@pytest.fixture(scope="module")
def mailbox(fault_services, util_linux) -> tuple[str, str]:
    user, password = unique_user("faults"), "faults-pw-2026"
    fault_services.add_mail_user(user, password)
    fault_services.deliver(user, "INBOX", util_linux[:MESSAGES])
    return user, password


@pytest.fixture(scope="module")
def inbox_name(mailbox) -> str:
    return mailbox[0].split("@")[0]


def _fresh_warehouse(svc, proxy: CuttingProxy, mailbox, name: str, db: str) -> str:
    """A new warehouse database with the inbox registered to sync through the proxy."""
    from inboxsync import registry, warehouse

    url = svc.create_database(db, drop=True)
    warehouse.migrate(url)
    user, password = mailbox
    with warehouse.transaction(url) as cur:
        registry.add_inbox(
            cur, name, host="127.0.0.1", port=proxy.port, security="none", username=user,
            password=password, owner_email=user, create_contacts=True,
        )  # fmt: skip
    return url


def _sync(name: str, url: str):
    from inboxsync.sync import Budget, InboxBusy, sync_inbox

    deadline = time.monotonic() + 10
    while True:
        try:
            return sync_inbox(name, url=url, batch_size=BATCH, budget=Budget())
        except InboxBusy:
            # A killed process's session may hold the inbox lock a moment longer.
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _snapshot(url: str) -> dict[str, list[tuple]]:
    return {table: table_rows(url, table) for table in contract_tables(url)}


def _converged(name: str, url: str, reference: dict[str, list[tuple]]) -> None:
    from inboxsync.verify import verify_inbox

    checks = verify_inbox(name, url=url)
    assert all(c.ok for c in checks), checks
    assert _snapshot(url) == reference


@pytest.fixture(scope="module")
def reference(fault_services, proxy, mailbox, inbox_name) -> dict[str, list[tuple]]:
    """The contract tables after one uninterrupted sync through the (disarmed) proxy."""
    proxy.disarm()
    url = _fresh_warehouse(fault_services, proxy, mailbox, inbox_name, "faults_reference")
    result = _sync(inbox_name, url)
    assert result.fetched == MESSAGES
    proxy.reference_fetch_bytes = proxy.fetch_bytes
    snapshot = _snapshot(url)
    assert len(snapshot["message_copies"]) == MESSAGES
    return snapshot


def test_connection_cut_mid_fetch_at_random_offsets(
    fault_services, proxy, mailbox, inbox_name, reference
):
    from inboxsync.imap import InboxError

    total = proxy.reference_fetch_bytes
    assert total > MESSAGES * 200  # header FETCH responses of the whole folder
    offsets = sorted(random.Random(SEED).sample(range(1, total), FAULTS))
    for offset in offsets:
        url = _fresh_warehouse(fault_services, proxy, mailbox, inbox_name, "faults_cut")
        proxy.arm(offset)
        with pytest.raises(InboxError, match="broke off during FETCH"):
            _sync(inbox_name, url)
        assert proxy.cuts and proxy._cut_at is None
        loaded = query(url, "SELECT count(*) FROM inboxsync.message_copies")[0][0]
        assert loaded % BATCH == 0 and loaded < MESSAGES  # whole batches only
        proxy.disarm()
        assert _sync(inbox_name, url).fetched == MESSAGES - loaded
        _converged(inbox_name, url, reference)
        FAULT_LOG.append({"fault": "cut mid-FETCH", "at": offset, "loaded_before": loaded})
    assert proxy.cuts == FAULTS


def _cli_sync(name: str, url: str) -> subprocess.Popen:
    env = {**os.environ, "AIRFLOW_CONN_INBOXSYNC_WAREHOUSE": url}
    return subprocess.Popen(
        [INBOXSYNC, "sync", name, "--batch-size", str(BATCH), "--budget-messages", "1000000"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def _wait_for_copies(url: str, at_least: int, proc: subprocess.Popen) -> int:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            count = query(url, "SELECT count(*) FROM inboxsync.message_copies")[0][0]
        except psycopg2.OperationalError:
            count = 0
        if count >= at_least:
            return count
        time.sleep(0.005)
    raise AssertionError(f"the sync ended or stalled before {at_least} copies: {proc.poll()}")


@pytest.mark.parametrize("service", ["dovecot", "postgresql"])
def test_server_restarted_during_a_sync(
    service, fault_services, proxy, mailbox, inbox_name, reference
):
    proxy.disarm()
    url = _fresh_warehouse(fault_services, proxy, mailbox, inbox_name, f"faults_{service}")
    proxy.delay = 0.25  # a slow link, so the restart lands while the sync is still running
    try:
        proc = _cli_sync(inbox_name, url)
        _wait_for_copies(url, 2 * BATCH, proc)
        if service == "dovecot":
            fault_services.restart_dovecot()
        else:
            fault_services.restart_postgres()
        output = proc.communicate(timeout=120)[0]
    finally:
        proxy.delay = 0.0
    assert proc.returncode != 0, output  # the run failed: a retry will pick it up
    loaded = query(url, "SELECT count(*) FROM inboxsync.message_copies")[0][0]
    assert loaded % BATCH == 0 and loaded < MESSAGES
    assert _sync(inbox_name, url).fetched == MESSAGES - loaded
    _converged(inbox_name, url, reference)
    FAULT_LOG.append({"fault": f"{service} restarted", "loaded_before": loaded})


def test_sync_process_killed_at_random_moments(
    fault_services, proxy, mailbox, inbox_name, reference
):
    proxy.disarm()
    rng = random.Random(SEED + 1)
    for _ in range(FAULTS):
        url = _fresh_warehouse(fault_services, proxy, mailbox, inbox_name, "faults_kill")
        target = rng.randrange(0, MESSAGES - BATCH)
        proc = _cli_sync(inbox_name, url)
        if target:
            _wait_for_copies(url, target, proc)
        time.sleep(rng.uniform(0, 0.05))  # land anywhere inside a batch, not just between
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        loaded = query(url, "SELECT count(*) FROM inboxsync.message_copies")[0][0]
        assert loaded % BATCH == 0
        assert _sync(inbox_name, url).fetched == MESSAGES - loaded
        _converged(inbox_name, url, reference)
        FAULT_LOG.append({"fault": "SIGKILL", "loaded_before": loaded})


def teardown_module() -> None:
    if FAULT_LOG:
        kinds: dict[str, int] = {}
        for entry in FAULT_LOG:
            kinds[entry["fault"]] = kinds.get(entry["fault"], 0) + 1
        print("\nfaults injected and survived:", kinds)
