"""The read-only BI role of migration 0005: reads the contract tables and the marts, writes nothing.

A LOGIN user made in the role connects to the test warehouse (trust authentication on the test
PostgreSQL) and tries everything. Roles are cluster-wide: ``inboxsync_bi`` may exist already
(another test database migrated first); the migration and this test both allow for that.

The other half of issue 8's "Access" (the Inboxes page's API refuses unauthenticated requests)
is tested with the plugin, in tests/integration/test_plugin.py.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import psycopg2.errors
import pytest

from tests.conftest import query

pytestmark = pytest.mark.integration

# Every table and view of the warehouse contract (docs/warehouse.md) plus the bookkeeping tables.
CONTRACT = (
    "inboxes", "sync_state", "message_copies", "messages", "message_references",
    "message_addresses", "contacts", "threads", "reply_flags", "reply_events", "quarantine",
    "team_aliases", "team_domains", "team_addresses", "thread_nodes", "thread_merges",
    "consumer_offsets", "engaged_contacts", "derive_state", "contact_reply_status",
    "schema_migrations",
)  # fmt: skip


def _as_user(url: str, user: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{user}@{parts.hostname}:{parts.port}"))


@pytest.fixture
def bi_login(warehouse_url):
    """A LOGIN user in inboxsync_bi, dropped after the test."""
    user = f"bi_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(warehouse_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE ROLE {user} LOGIN IN ROLE inboxsync_bi")
    yield user
    with admin.cursor() as cur:
        cur.execute(f"DROP ROLE {user}")
    admin.close()


def _fails(url: str, statement: str) -> str:
    """Run ``statement``; return PostgreSQL's error message (the test fails if it succeeds)."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege) as err:
            cur.execute(statement)
        return err.value.pgerror.splitlines()[0]
    finally:
        conn.close()


def test_bi_role_reads_everything_and_writes_nothing(services, warehouse_url, bi_login):
    from inboxsync import warehouse

    # The role exists, cannot log in itself, and migrating again changes nothing.
    assert query(
        warehouse_url,
        "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles"
        " WHERE rolname = 'inboxsync_bi'",
    ) == [(False, False, False, False)]
    assert warehouse.migrate(warehouse_url) == []
    assert query(warehouse_url, "SELECT inboxsync.grant_bi_access()") == [(True,)]

    # Some data, written as the warehouse's own user; and a mart table as dbt would build it.
    with warehouse.transaction(warehouse_url) as cur:
        cur.execute(
            "INSERT INTO inboxsync.messages (message_key, message_id, subject, kind)"
            " VALUES ('k1', 'id-1@x.example', 'hello', 'human')"
        )
        cur.execute("INSERT INTO inboxsync.team_domains (domain) VALUES ('team.example')")
        cur.execute("CREATE TABLE inboxsync_marts.contact_timeline AS SELECT 1 AS timeline_id")
        cur.execute("CREATE TABLE inboxsync.added_by_a_later_migration (x int)")
    bi = _as_user(warehouse_url, bi_login)

    # Reads: every contract table and view, the marts, and tables created after the migration.
    for name in CONTRACT:
        assert query(bi, f"SELECT count(*) FROM inboxsync.{name}")[0][0] >= 0, name
    assert query(bi, "SELECT message_id, subject FROM inboxsync.messages") == [
        ("id-1@x.example", "hello")
    ]
    assert query(bi, "SELECT inboxsync.is_team('a@sub.team.example')") == [(True,)]
    assert query(bi, "SELECT timeline_id FROM inboxsync_marts.contact_timeline") == [(1,)]
    assert query(bi, "SELECT count(*) FROM inboxsync.added_by_a_later_migration") == [(0,)]

    # Writes: every kind, on contract and mart tables, and creating anything.
    denied = {
        "insert": "INSERT INTO inboxsync.messages (message_key, kind) VALUES ('k2', 'human')",
        "update": "UPDATE inboxsync.messages SET subject = 'changed'",
        "delete": "DELETE FROM inboxsync.messages",
        "truncate": "TRUNCATE inboxsync.messages",
        "insert_mart": "INSERT INTO inboxsync_marts.contact_timeline VALUES (2)",
        "update_contacts": "UPDATE inboxsync.contacts SET is_team = true",
        "delete_sync_state": "DELETE FROM inboxsync.sync_state",
        "truncate_mart": "TRUNCATE inboxsync_marts.contact_timeline",
        "create_in_inboxsync": "CREATE TABLE inboxsync.bi_scratch (x int)",
        "create_in_marts": "CREATE VIEW inboxsync_marts.bi_view AS SELECT 1",
        "create_in_public": "CREATE TABLE public.bi_scratch (x int)",
        "create_schema": "CREATE SCHEMA bi_scratch",
        "drop": "DROP TABLE inboxsync.messages",
        "alter": "ALTER TABLE inboxsync.messages ADD COLUMN bi int",
        "setval": "SELECT setval(pg_get_serial_sequence('inboxsync.reply_events', 'event_id'), 9)",
    }
    messages = {what: _fails(bi, statement) for what, statement in denied.items()}
    assert messages == {
        "insert": "ERROR:  permission denied for table messages",
        "update": "ERROR:  permission denied for table messages",
        "delete": "ERROR:  permission denied for table messages",
        "truncate": "ERROR:  permission denied for table messages",
        "insert_mart": "ERROR:  permission denied for table contact_timeline",
        "update_contacts": "ERROR:  permission denied for table contacts",
        "delete_sync_state": "ERROR:  permission denied for table sync_state",
        "truncate_mart": "ERROR:  permission denied for table contact_timeline",
        "create_in_inboxsync": "ERROR:  permission denied for schema inboxsync",
        "create_in_marts": "ERROR:  permission denied for schema inboxsync_marts",
        "create_in_public": "ERROR:  permission denied for schema public",
        "create_schema": f"ERROR:  permission denied for database {warehouse_url.rsplit('/')[-1]}",
        "drop": "ERROR:  must be owner of table messages",
        "alter": "ERROR:  must be owner of table messages",
        "setval": "ERROR:  permission denied for sequence reply_events_event_id_seq",
    }
    # Nothing changed.
    assert query(warehouse_url, "SELECT message_key, subject FROM inboxsync.messages") == [
        ("k1", "hello")
    ]
