"""Assets shared by producer and consumer DAGs: declared once, imported by both.

The URI names the warehouse table in the form the postgres provider expects
(``postgres://host:port/database/schema/table``); ``warehouse`` is a logical host name, the DAGs
reach the real database through the ``inboxsync_warehouse`` connection.
"""

from __future__ import annotations

from airflow.sdk import Asset

#: Updated by every ``inbox_sync`` mapped task after its derive step; the event's extra carries
#: ``{"inbox": name, "new_events": n}``. Consumers read ``inboxsync.reply_events``.
REPLY_FLAGS = Asset(
    name="inboxsync_reply_flags",
    uri="postgres://warehouse:5432/warehouse/inboxsync/reply_flags",
    group="inboxsync",
)
