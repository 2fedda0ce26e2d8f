"""Secrets stay in Airflow's connection store: a known password synced through the real DAG and
the CLI appears in no log line, XCom value, warehouse table, exception or process argument list.

TLS verification is on by default: a server whose certificate the trust store cannot verify (the
local, self-signed CA when the connection gives no ``ssl_ca_file``) is refused before any
credential is sent; that is `tests/integration/test_oauth_transport.py::test_unknown_ca_is_refused`
(at the level of `sync_inbox`, for implicit TLS and STARTTLS) and
`tests/integration/test_cli.py` (``untrusted_certificate``), so it is not repeated here.

Where the password is searched, after one DAG run (a good and a wrong-password inbox), one CLI
sync and one in-process sync that fails on a wrong password:
- every line of ``airflow dags test`` output (``dags test`` writes the task logs there) and every
  file under ``AIRFLOW_HOME/logs``;
- every XCom value in the metadata database, and every other column of every metadata table: the
  ``connection`` row holds the password only as Fernet ciphertext;
- every column of every table of the warehouse (``sync_state.last_error`` included);
- the failed sync's exception with its whole chain, and every log record of it at DEBUG (IMAP
  protocol log included);
- ``/proc/*/cmdline`` of every process, and the CLI process's environment, sampled while a CLI
  sync runs; the CLI's own output; the PostgreSQL server log.
"""

from __future__ import annotations

import subprocess
import sys
import time
import traceback
from pathlib import Path

import pytest

from tests.conftest import query
from tests.integration.dbscan import find_text, row_count
from tests.integration.logcapture import capture_logs

pytestmark = pytest.mark.integration

PASSWORD = "Zq9-SECRET-pw-4711"
WRONG = "Wr0ng-SECRET-pw-0815"
SECRETS = (PASSWORD, WRONG)
INBOXSYNC = str(Path(sys.executable).with_name("inboxsync"))


@pytest.fixture
def logs(airflow_env):
    yield from capture_logs()


def _mail(n: int, to: str) -> bytes:
    return (
        f"From: Client {n} <client{n}@globex.example>\r\nTo: {to}\r\nSubject: order {n}\r\n"
        f"Date: Mon, 05 Oct 2026 10:00:00 +0000\r\nMessage-ID: <secret-{n}@globex.example>\r\n"
        f"\r\nbody {n}\r\n"
    ).encode()


def _found(text: str | bytes) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    return [s for s in SECRETS if s in text]


def _cmdlines() -> dict[int, bytes]:
    """The argument list of every process now running (NUL-separated, as the kernel keeps it)."""
    out = {}
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            out[int(path.parent.name)] = path.read_bytes()
        except OSError:
            continue  # the process ended between listing and reading
    return out


def _cli_sync_watching_processes(name: str) -> tuple[subprocess.CompletedProcess, dict]:
    """Run ``inboxsync sync NAME`` while sampling every process's argv and the CLI's environ."""
    proc = subprocess.Popen(
        [INBOXSYNC, "sync", name], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    seen = {"samples": 0, "cli_samples": 0, "hits": set(), "environ_hits": set()}
    while proc.poll() is None:
        lines = _cmdlines()
        seen["samples"] += 1
        if proc.pid in lines:
            seen["cli_samples"] += 1
            try:
                environ = Path(f"/proc/{proc.pid}/environ").read_bytes()
                seen["environ_hits"].update(_found(environ))
            except OSError:
                pass
        for pid, line in lines.items():
            for secret in _found(line):
                seen["hits"].add((pid, secret, line.replace(b"\0", b" ").decode("latin-1")))
        time.sleep(0.005)
    out, err = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), seen


def test_password_is_nowhere_but_encrypted_in_the_connection(
    services, make_inbox, warehouse_url, airflow_env, logs
):
    from cryptography.fernet import Fernet

    from inboxsync import local_airflow, registry
    from inboxsync.imap import InboxAuthError, InboxError
    from inboxsync.sync import sync_inbox

    good = make_inbox(password=PASSWORD)
    bad = make_inbox(password="the-real-one-9", register_password=WRONG)
    services.deliver(good.username, "INBOX", [_mail(n, good.username) for n in range(20)])
    services.deliver(bad.username, "INBOX", [_mail(99, bad.username)])

    # 1. A sync with a wrong password: the exception chain and every log record, at DEBUG.
    with pytest.raises(InboxError) as failed:
        sync_inbox(bad.name, url=warehouse_url)
    assert isinstance(failed.value, InboxAuthError)
    chain = "".join(traceback.format_exception(failed.value))
    assert f"refused the login of '{bad.username}'" in chain
    assert _found(chain) == []
    assert _found(repr(failed.value.args)) == []
    assert logs.of("imapclient.imaplib"), "the IMAP protocol log was captured"
    assert _found(logs.text()) == []

    # 2. The real DAG: both inboxes, the good one loads, the bad one fails its own task.
    env = {**airflow_env, "AIRFLOW_CONN_INBOXSYNC_WAREHOUSE": warehouse_url}
    proc = local_airflow.airflow(env, "dags", "test", "inbox_sync", check=False)
    output = proc.stdout + proc.stderr
    assert query(
        warehouse_url,
        "SELECT count(*) FROM inboxsync.message_copies JOIN inboxsync.inboxes USING (inbox_id)"
        " WHERE name = %s",
        (good.name,),
    ) == [(20,)], output[-3000:]
    assert f"refused the login of '{bad.username}'" in output  # the failure is in the log...
    assert [ln for ln in output.splitlines() if _found(ln)] == []  # ...its password is not
    log_files = [p for p in Path(airflow_env["AIRFLOW_HOME"], "logs").rglob("*") if p.is_file()]
    assert [p for p in log_files if _found(p.read_bytes())] == []

    # 3. The CLI, with every process's argument list sampled while it runs.
    services.deliver(good.username, "INBOX", [_mail(n, good.username) for n in range(100, 3100)])
    cli, seen = _cli_sync_watching_processes(good.name)
    assert cli.returncode == 0, cli.stderr.decode()[-2000:]
    assert b"fetched 3000, loaded 3000, quarantined 0" in cli.stdout
    assert seen["cli_samples"] >= 10, seen  # the sampling really saw the sync running
    assert seen["hits"] == set()
    assert seen["environ_hits"] == set()
    assert _found(cli.stdout + cli.stderr) == []

    # 4. The metadata database: XComs (the sync tasks returned counts), then every column.
    metadata_url = services.pg_url("airflow_test")
    xcoms = query(metadata_url, "SELECT value::text FROM xcom WHERE value IS NOT NULL")
    assert any('"fetched": 20' in v for (v,) in xcoms)
    assert [v for (v,) in xcoms if _found(v)] == []
    for secret in SECRETS:
        assert find_text(metadata_url, secret, schemas=("public",)) == {}

    # ...where the connection holds it encrypted, and only the Fernet key opens it.
    [(ciphertext, encrypted)] = query(
        metadata_url,
        "SELECT password, is_encrypted FROM connection WHERE conn_id = %s",
        (registry.conn_id_for(good.name),),
    )
    assert encrypted is True and PASSWORD not in ciphertext
    fernet = Fernet(airflow_env["AIRFLOW__CORE__FERNET_KEY"].encode())
    assert fernet.decrypt(ciphertext.encode()).decode() == PASSWORD

    # 5. The warehouse: every column of every table (last_error of the bad inbox included).
    assert row_count(warehouse_url, schemas=("inboxsync",)) > 3020
    assert query(
        warehouse_url, "SELECT count(*) FROM inboxsync.sync_state WHERE last_error LIKE %s",
        ("%refused the login%",),
    ) == [(1,)]  # fmt: skip
    for secret in SECRETS:
        assert find_text(warehouse_url, secret, schemas=("inboxsync", "public")) == {}

    # 6. The PostgreSQL server log (statements that failed are logged with their text).
    assert _found(services.root.joinpath("pg", "postgresql.log").read_bytes()) == []
