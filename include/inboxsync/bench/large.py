"""A backfill beside a team's mail: the full sync again, into a warehouse that already holds
``clones`` times as many messages of other inboxes.

Every full sync of `make bench` starts from an empty warehouse, but a team's warehouse holds every
connected inbox's mail, and a statement that scans a table where it should look rows up grows
with it (the derive step's lookups did: README, Benchmark). With ``BENCH_LARGE=K`` the warehouse
of the last full run is copied into a template database and cloned K times there, in SQL: every
message with its copies, addresses, references, thread, thread nodes and reply flags again, with
message keys, Message-IDs, In-Reply-To, References and thread ids rewritten per clone (a clone's
threads stay threads; no clone shares an id with another or with the inbox), each clone's copies
in an inbox of its own, loaded as history. Then the synced inbox's own rows go, as if it had
never been synced, so that the next full sync loads its N messages beside K x N others. Each run
syncs into a fresh copy of the template. Thread nodes are hashes of Message-IDs
(`inboxsync.threads.node_of`), so a clone's nodes are the original nodes hashed again with the
clone's number: no message of the inbox can reach them, as no message of it names a clone's id.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg2

from inboxsync import localenv

# Parameters: inbox (the synced inbox's id), clones (how many copies of its mail).
_CLONE = """
INSERT INTO inboxsync.inboxes (name, conn_id, create_contacts, enabled)
SELECT 'bench clone ' || i, 'inboxsync_inbox_bench_clone_' || i, true, false
FROM generate_series(1, %(clones)s) i;
CREATE TEMP TABLE clones ON COMMIT DROP AS
SELECT i, inbox_id FROM generate_series(1, %(clones)s) i
JOIN inboxsync.inboxes ON name = 'bench clone ' || i;
CREATE TEMP TABLE own ON COMMIT DROP AS
SELECT DISTINCT message_key FROM inboxsync.message_copies WHERE inbox_id = %(inbox)s;

INSERT INTO inboxsync.messages (
    message_key, message_id, subject, sent_at, date_header, from_email, from_name, in_reply_to,
    thread_id, kind, direction, list_id, auto_submitted, content_type, first_seen_at, gm_thrid,
    derived_at, history)
SELECT md5(m.message_key || ':' || c.i), m.message_id || '.clone' || c.i, m.subject, m.sent_at,
       m.date_header, m.from_email, m.from_name, m.in_reply_to || '.clone' || c.i,
       md5(m.thread_id || ':' || c.i), m.kind, m.direction, m.list_id, m.auto_submitted,
       m.content_type, m.first_seen_at, m.gm_thrid, m.derived_at, true
FROM inboxsync.messages m JOIN own USING (message_key) CROSS JOIN clones c;
INSERT INTO inboxsync.message_copies (
    inbox_id, folder, uidvalidity, uid, message_key, flags, internal_date, size, raw_header,
    synced_at, expunged_at, gm_msgid, gm_thrid, gm_labels)
SELECT c.inbox_id, m.folder, m.uidvalidity, m.uid, md5(m.message_key || ':' || c.i), m.flags,
       m.internal_date, m.size, m.raw_header, m.synced_at, m.expunged_at, m.gm_msgid,
       m.gm_thrid, m.gm_labels
FROM inboxsync.message_copies m CROSS JOIN clones c
WHERE m.inbox_id = %(inbox)s;
INSERT INTO inboxsync.message_addresses (message_key, role, email, display_name, position)
SELECT md5(a.message_key || ':' || c.i), a.role, a.email, a.display_name, a.position
FROM inboxsync.message_addresses a JOIN own USING (message_key) CROSS JOIN clones c;
INSERT INTO inboxsync.message_references (message_key, position, ref_message_id)
SELECT md5(r.message_key || ':' || c.i), r.position, r.ref_message_id || '.clone' || c.i
FROM inboxsync.message_references r JOIN own USING (message_key) CROSS JOIN clones c;

CREATE TEMP TABLE own_threads ON COMMIT DROP AS
SELECT DISTINCT m.thread_id FROM inboxsync.messages m JOIN own USING (message_key)
WHERE m.thread_id IS NOT NULL;
INSERT INTO inboxsync.threads (
    thread_id, root_message_key, subject, first_message_at, last_message_at, message_count,
    created_at, updated_at)
SELECT md5(t.thread_id || ':' || c.i), md5(t.root_message_key || ':' || c.i), t.subject,
       t.first_message_at, t.last_message_at, t.message_count, t.created_at, t.updated_at
FROM inboxsync.threads t JOIN own_threads USING (thread_id) CROSS JOIN clones c;
INSERT INTO inboxsync.thread_nodes (node, thread_id)
SELECT md5(n.node::text || ':' || c.i)::uuid, md5(n.thread_id || ':' || c.i)
FROM inboxsync.thread_nodes n JOIN own_threads USING (thread_id) CROSS JOIN clones c;
INSERT INTO inboxsync.reply_flags (
    message_key, recipient_email, replied, reply_message_key, replied_at, response_seconds,
    sent_at, detected_at, history)
SELECT md5(f.message_key || ':' || c.i), f.recipient_email, f.replied,
       md5(f.reply_message_key || ':' || c.i), f.replied_at, f.response_seconds, f.sent_at,
       f.detected_at, true
FROM inboxsync.reply_flags f JOIN own USING (message_key) CROSS JOIN clones c;
INSERT INTO inboxsync.sync_state (inbox_id, folder, uidvalidity, last_uid, history_uid)
SELECT c.inbox_id, s.folder, s.uidvalidity, s.last_uid, s.last_uid
FROM inboxsync.sync_state s CROSS JOIN clones c WHERE s.inbox_id = %(inbox)s;

-- The inbox as if never synced: its messages and everything derived from them go.
DELETE FROM inboxsync.reply_events e USING own WHERE e.message_key = own.message_key;
DELETE FROM inboxsync.reply_flags f USING own WHERE f.message_key = own.message_key;
DELETE FROM inboxsync.message_addresses a USING own WHERE a.message_key = own.message_key;
DELETE FROM inboxsync.message_references r USING own WHERE r.message_key = own.message_key;
DELETE FROM inboxsync.message_copies WHERE inbox_id = %(inbox)s;
DELETE FROM inboxsync.derive_queue q USING own WHERE q.message_key = own.message_key;
DELETE FROM inboxsync.messages m USING own WHERE m.message_key = own.message_key;
DELETE FROM inboxsync.thread_nodes n USING own_threads t WHERE n.thread_id = t.thread_id;
DELETE FROM inboxsync.thread_merges m USING own_threads t WHERE m.thread_id = t.thread_id;
DELETE FROM inboxsync.threads t USING own_threads o WHERE t.thread_id = o.thread_id;
DELETE FROM inboxsync.quarantine WHERE inbox_id = %(inbox)s;
DELETE FROM inboxsync.sync_state WHERE inbox_id = %(inbox)s;
-- Derived with the team of now (the clones' inboxes have no owner: the team is unchanged).
INSERT INTO inboxsync.derive_state (name, value) VALUES ('team', inboxsync.team_fingerprint())
ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value;
"""


@dataclass(frozen=True)
class Template:
    """A warehouse of cloned mail, ready to be copied for each run."""

    name: str
    messages: int  # beside which the inbox is synced
    seconds: float  # to build it


def build(
    services: localenv.LocalServices, source_db: str, name: str, *, inbox: str, clones: int
) -> Template:
    """Copy the synced warehouse ``source_db`` into database ``name`` and clone its mail there.

    Args:
        services: The local services (the cluster holding both databases).
        source_db: A warehouse a full sync of ``inbox`` has filled; it is not changed.
        name: The template database (dropped first if it exists).
        inbox: The synced inbox's name.
        clones: How many copies of its mail the template holds (the inbox's own rows removed).

    Returns:
        The template, with the number of messages it holds.
    """
    started = time.perf_counter()
    conn = psycopg2.connect(services.create_database(name, drop=True, template=source_db))
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SELECT inbox_id FROM inboxsync.inboxes WHERE name = %s", (inbox,))
            (inbox_id,) = cur.fetchone()
            cur.execute(_CLONE, {"inbox": inbox_id, "clones": clones})
            cur.execute("SELECT count(*) FROM inboxsync.messages")
            (messages,) = cur.fetchone()
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE")  # as autovacuum keeps a warehouse of this size
    finally:
        conn.close()
    return Template(name, messages, time.perf_counter() - started)
