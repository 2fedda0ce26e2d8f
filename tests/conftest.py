"""Test harness: a real PostgreSQL and a real Dovecot on loopback, started by the same code as the
demo (``inboxsync.localenv``), plus Airflow pointed at them.

State lives under ``.local/test`` (``INBOXSYNC_TEST_DIR`` overrides it). Each test that needs a
warehouse gets a fresh database; each mailbox a fresh Dovecot user.
"""

from __future__ import annotations

import contextlib
import gzip
import itertools
import mailbox
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORPORA = (REPO / ".." / "shared" / "corpora").resolve()
TEST_ROOT = Path(os.environ.get("INBOXSYNC_TEST_DIR", REPO / ".local" / "test")).resolve()

_counter = itertools.count(1)


def unique_user(prefix: str) -> str:
    """A mail address no earlier test run used (Dovecot users outlive a test session)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}@team.example"


def corpus(*parts: str) -> Path:
    """A path in ../shared/corpora; skips the test when the corpora are not there."""
    path = CORPORA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"corpus {path} is not available")
    return path


def read_mbox(path: Path) -> list[bytes]:
    """Every message of a (gzipped) mbox file, as bytes."""
    with tempfile.NamedTemporaryFile(suffix=".mbox") as tmp:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as src:
            shutil.copyfileobj(src, tmp)
        tmp.flush()
        box = mailbox.mbox(tmp.name, create=False)
        try:
            return [box.get_bytes(key) for key in box.iterkeys()]
        finally:
            box.close()


_STATE: dict[str, object] = {}


def pytest_configure(config: pytest.Config) -> None:
    """Start the services and point Airflow at them before any test module imports Airflow.

    Airflow reads its configuration once, at import: the environment must be right before that.
    """
    from inboxsync import local_airflow, localenv

    before = localenv.status(TEST_ROOT)
    svc = localenv.start(TEST_ROOT)
    # Leave the services as we found them: another pytest session may be using them.
    _STATE["started_here"] = not all(s.get("running") for s in before.values())
    env = local_airflow.airflow_env(
        svc, TEST_ROOT / "airflow", metadata_db="airflow_test", warehouse_db="warehouse_test"
    )
    local_airflow.apply_env(env)
    _STATE.update(services=svc, env=env)


def pytest_unconfigure(config: pytest.Config) -> None:
    svc = _STATE.get("services")
    keep = os.environ.get("INBOXSYNC_KEEP_SERVICES") or not _STATE.get("started_here")
    if svc is not None and not keep:
        svc.stop()


@pytest.fixture(scope="session")
def services():
    """The local PostgreSQL and Dovecot (started before collection, stopped after the session)."""
    return _STATE["services"]


@pytest.fixture(scope="session")
def airflow_env(services) -> dict[str, str]:
    """Airflow's environment on the test services, metadata database migrated."""
    from inboxsync import local_airflow

    env = _STATE["env"]
    local_airflow.migrate_metadata(env)
    return env


@pytest.fixture
def warehouse_url(services, airflow_env, request, monkeypatch) -> str:
    """A fresh, migrated warehouse database for this test, set as ``inboxsync_warehouse``."""
    from inboxsync import warehouse

    name = "wh_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:50]
    url = services.create_database(name, drop=True)
    monkeypatch.setenv("AIRFLOW_CONN_INBOXSYNC_WAREHOUSE", url)
    warehouse.migrate(url)
    return url


@dataclass
class TestInbox:
    """A Dovecot user registered as a connected inbox."""

    name: str
    username: str
    password: str


@pytest.fixture
def make_inbox(services, airflow_env, warehouse_url):
    """Factory: a new Dovecot user, registered in the test warehouse as a connected inbox."""
    from inboxsync import registry, warehouse

    def make(
        *,
        create_contacts: bool = True,
        password: str | None = None,
        register_password: str | None = None,
        owner: str | None = None,
        security: str = "ssl",
    ) -> TestInbox:
        n = next(_counter)
        username = unique_user(f"user{n}")
        password = password or f"pw-{n}-secret"
        services.add_mail_user(username, password)
        name = f"inbox {n} {username.split('@')[0]}"
        port = services.imaps_port if security == "ssl" else services.imap_port
        with warehouse.transaction(warehouse_url) as cur:
            registry.add_inbox(
                cur,
                name,
                host=services.host,
                port=port,
                security=security,
                username=username,
                password=register_password or password,
                owner_email=owner or username,
                create_contacts=create_contacts,
                ca_file=str(services.ca_file),
            )
        return TestInbox(name, username, password)

    return make


@pytest.fixture
def imap(services):
    """Factory: a logged-in IMAPClient on the local Dovecot (to look at the server side)."""
    import ssl

    import imapclient

    clients = []

    def connect(username: str, password: str) -> imapclient.IMAPClient:
        ctx = ssl.create_default_context(cafile=str(services.ca_file))
        client = imapclient.IMAPClient(services.host, port=services.imaps_port, ssl_context=ctx)
        client.login(username, password)
        clients.append(client)
        return client

    yield connect
    for c in clients:
        with contextlib.suppress(Exception):
            c.logout()


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of a query on the warehouse."""
    import psycopg2

    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    conn.close()
    return rows


# Columns that record when a row was written or how fast a run went, not what the data says:
# they differ between two runs of the same sync.
VOLATILE_COLUMNS = frozenset({
    "synced_at", "first_seen_at", "created_at", "updated_at", "last_success_at",
    "quarantined_at", "detected_at", "last_error_at", "backfill_rate", "backfill_done_at",
    "flags_synced_at", "last_run", "derived_at", "merged_at",
})  # fmt: skip
# Bookkeeping of the pipeline itself rather than data about mail.
_NOT_CONTRACT = frozenset({"schema_migrations", "derive_state"})


def contract_tables(url: str) -> list[str]:
    """The tables of schema inboxsync that hold data about mail."""
    rows = query(
        url,
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = 'inboxsync' AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    return [t for (t,) in rows if t not in _NOT_CONTRACT]


def table_rows(url: str, table: str) -> list[tuple]:
    """Every row of a table of schema inboxsync without volatile columns, sorted."""
    cols = [
        c
        for (c,) in query(
            url,
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = 'inboxsync' AND table_name = %s ORDER BY ordinal_position",
            (table,),
        )
        if c not in VOLATILE_COLUMNS
    ]
    return sorted(query(url, f"SELECT {', '.join(cols)} FROM inboxsync.{table}"), key=repr)


@pytest.fixture(scope="session")
def util_linux() -> list[bytes]:
    return read_mbox(corpus("lists", "util-linux.mbox.gz"))


def iter_files(root: Path) -> Iterator[Path]:
    return (p for p in sorted(root.rglob("*")) if p.is_file())
