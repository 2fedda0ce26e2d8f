"""Consume reply_events exactly once: an offset per consumer, advanced with the action.

A consumer reads the events after its stored offset, acts on them in the warehouse, and moves
its offset in the same transaction. A retry after a crash redoes exactly the uncommitted work,
and a second run finds nothing new. Event ids increase in commit order (the derive step runs
under a lock), so no event can appear below an offset later.

Write your own consumer as a handler that acts inside the given cursor's transaction::

    def tag_in_crm_queue(cur, events):
        cur.executemany("INSERT INTO crm.outbox (email, event_id) VALUES (%s, %s)",
                        [(e.recipient_email, e.event_id) for e in events])

    consume("crm_outbox", tag_in_crm_queue)

An action outside the warehouse (an HTTP call) cannot share the transaction: write it to an
outbox table here and deliver it idempotently (keyed by event_id) elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg2.extensions

from inboxsync import warehouse

log = logging.getLogger(__name__)

#: Events handled per transaction.
BATCH = 1000


@dataclass(frozen=True)
class ReplyEvent:
    """One row of inboxsync.reply_events."""

    event_id: int
    message_key: str
    recipient_email: str
    reply_message_key: str
    replied_at: datetime | None
    detected_at: datetime


Handler = Callable[[psycopg2.extensions.cursor, Sequence[ReplyEvent]], None]


def consume(consumer: str, handler: Handler, *, url: str | None = None, batch: int = BATCH) -> int:
    """Hand every event after the consumer's offset to ``handler``, batch by batch.

    Args:
        consumer: The consumer's name (its row in inboxsync.consumer_offsets).
        handler: Acts on a batch inside the transaction that then advances the offset.
        url: Warehouse URL; defaults to the ``inboxsync_warehouse`` connection.
        batch: Events per transaction.

    Returns:
        How many events were handled.
    """
    handled = 0
    conn = warehouse.connect(url)
    try:
        while True:
            with conn, conn.cursor() as cur:
                cur.execute(
                    "INSERT INTO inboxsync.consumer_offsets (consumer) VALUES (%s)"
                    " ON CONFLICT DO NOTHING",
                    (consumer,),
                )
                # The row lock makes a concurrent run of the same consumer wait, then see
                # the advanced offset.
                cur.execute(
                    "SELECT last_event_id FROM inboxsync.consumer_offsets WHERE consumer = %s"
                    " FOR UPDATE",
                    (consumer,),
                )
                offset = cur.fetchone()[0]
                cur.execute(
                    "SELECT event_id, message_key, recipient_email, reply_message_key,"
                    " replied_at, detected_at FROM inboxsync.reply_events"
                    " WHERE event_id > %s ORDER BY event_id LIMIT %s",
                    (offset, batch),
                )
                events = [ReplyEvent(*row) for row in cur.fetchall()]
                if not events:
                    break
                handler(cur, events)
                cur.execute(
                    "UPDATE inboxsync.consumer_offsets SET last_event_id = %s, updated_at = now()"
                    " WHERE consumer = %s",
                    (events[-1].event_id, consumer),
                )
            handled += len(events)
    finally:
        conn.close()
    log.info("consumer %r handled %d reply event(s)", consumer, handled)
    return handled


def mark_engaged(cur: psycopg2.extensions.cursor, events: Sequence[ReplyEvent]) -> None:
    """The example action: record each replying contact in inboxsync.engaged_contacts."""
    cur.executemany(
        """
        INSERT INTO inboxsync.engaged_contacts
            (email, first_event_id, last_event_id, replies, last_reply_at)
        VALUES (%s, %s, %s, 1, %s)
        ON CONFLICT (email) DO UPDATE SET
            last_event_id = EXCLUDED.last_event_id,
            replies = engaged_contacts.replies + 1,
            last_reply_at = greatest(engaged_contacts.last_reply_at, EXCLUDED.last_reply_at)
        """,
        [(e.recipient_email, e.event_id, e.event_id, e.replied_at) for e in events],
    )
