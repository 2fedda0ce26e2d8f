"""A derive step's work follows the messages it derives, not the size of the warehouse.

A backfill derives in steps of thousands of messages beside a warehouse that may already hold
millions (every inbox of a team). A step that found its messages, their copies, thread nodes or
the threads' mail by scanning whole tables grew with the warehouse: with 1,000,000 messages a
10,000-message step took twice as long as with 100,000, and a 100,000-message backfill 12%
longer (README, Benchmark). Here a warehouse of 40,000 derived messages gets 4,000 queued again,
as a backfill step would see them, and the step must look them up by key: PostgreSQL's own
counters of sequential scans tell. (reply_flags is not counted: this warehouse holds none
before the step, and the planner rightly reads the few the step adds.)
"""

from __future__ import annotations

import psycopg2

from inboxsync import derive

_MESSAGES = 40_000
_QUEUED = 4_000

_FILL = """
INSERT INTO inboxsync.inboxes (name, conn_id, owner_email)
VALUES ('scale', 'inboxsync_inbox_scale', 'owner@team.example');
INSERT INTO inboxsync.threads (thread_id, root_message_key, first_message_at, last_message_at,
                               message_count)
SELECT md5('t' || t), md5('m' || t * 4), timestamptz '2020-01-01' + t * interval '1 minute',
       timestamptz '2020-01-01' + t * interval '1 minute', 4
FROM generate_series(0, %(n)s / 4 - 1) t;
-- Four messages a thread: the first sent by the team, the others replies by a contact.
INSERT INTO inboxsync.messages (message_key, message_id, subject, sent_at, from_email, in_reply_to,
                                kind, direction, thread_id, history, derived_at)
SELECT md5('m' || i), 'msg' || i || '@scale.example', 'thread ' || i / 4,
       timestamptz '2020-01-01' + i * interval '1 minute',
       CASE WHEN i %% 4 = 0 THEN 'owner@team.example' ELSE 'c' || i / 4 || '@contact.example' END,
       CASE WHEN i %% 4 = 0 THEN NULL ELSE 'msg' || (i - i %% 4) || '@scale.example' END,
       'human', CASE WHEN i %% 4 = 0 THEN 'outbound' ELSE 'inbound' END, md5('t' || i / 4),
       true, now()
FROM generate_series(0, %(n)s - 1) i;
INSERT INTO inboxsync.message_addresses (message_key, role, email, position)
SELECT md5('m' || i), 'to',
       CASE WHEN i %% 4 = 0 THEN 'c' || i / 4 || '@contact.example' ELSE 'owner@team.example' END, 0
FROM generate_series(0, %(n)s - 1) i;
INSERT INTO inboxsync.message_references (message_key, position, ref_message_id)
SELECT md5('m' || i), 0, 'msg' || (i - i %% 4) || '@scale.example'
FROM generate_series(0, %(n)s - 1) i WHERE i %% 4 <> 0;
INSERT INTO inboxsync.message_copies (inbox_id, folder, uidvalidity, uid, message_key, raw_header)
SELECT (SELECT inbox_id FROM inboxsync.inboxes WHERE name = 'scale'), 'INBOX', 1, i + 1,
       md5('m' || i), '\\x'
FROM generate_series(0, %(n)s - 1) i;
INSERT INTO inboxsync.thread_nodes (node, thread_id)
SELECT md5('msg' || i || '@scale.example')::uuid, md5('t' || i / 4)
FROM generate_series(0, %(n)s - 1) i;
-- Loaded as history (a backfill), derived with the team of now: the step corrects no message.
INSERT INTO inboxsync.sync_state (inbox_id, folder, uidvalidity, last_uid, history_uid)
SELECT inbox_id, 'INBOX', 1, %(n)s, %(n)s FROM inboxsync.inboxes WHERE name = 'scale';
INSERT INTO inboxsync.derive_state (name, value) VALUES ('team', inboxsync.team_fingerprint());
"""


def _seq_scans(url: str) -> dict[str, int]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT relname, seq_scan FROM pg_stat_user_tables WHERE schemaname = 'inboxsync'"
            " AND relname IN ('messages', 'thread_nodes', 'message_copies', 'message_addresses',"
            " 'message_references', 'threads')"
        )
        return dict(cur.fetchall())


def test_a_backfill_step_looks_its_messages_up_instead_of_scanning_the_warehouse(warehouse_url):
    with psycopg2.connect(warehouse_url) as conn, conn.cursor() as cur:
        cur.execute(_FILL, {"n": _MESSAGES})
    with psycopg2.connect(warehouse_url) as conn, conn.cursor() as cur:
        # A backfill step's share: consecutive messages, whole threads.
        cur.execute(
            "INSERT INTO inboxsync.derive_queue (message_key, team)"
            " SELECT message_key, inboxsync.team_fingerprint() FROM inboxsync.message_copies"
            " WHERE uid BETWEEN 20001 AND %s",
            (20_000 + _QUEUED,),
        )
    conn = psycopg2.connect(warehouse_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "VACUUM ANALYZE"
        )  # the statistics of a warehouse this size, as autovacuum keeps them
    conn.close()
    before = _seq_scans(warehouse_url)

    result = derive.run(warehouse_url)

    assert result.messages == _QUEUED
    assert result.flags_updated == _QUEUED // 4  # a reply found in each of the step's threads
    after = _seq_scans(warehouse_url)  # its connection closed: its counters are flushed
    assert {table: after[table] - before[table] for table in before} == dict.fromkeys(before, 0)
