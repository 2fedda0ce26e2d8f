"""Settings with environment defaults.

Secrets never live here: they come from Airflow connections.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Airflow connection holding the warehouse; `AIRFLOW_CONN_INBOXSYNC_WAREHOUSE` overrides it.
WAREHOUSE_CONN_ID = os.environ.get("INBOXSYNC_WAREHOUSE_CONN_ID", "inboxsync_warehouse")

#: Prefix of the Airflow connection that `inboxsync inbox add` creates for each inbox's secrets.
INBOX_CONN_PREFIX = "inboxsync_inbox_"

#: Messages per UID batch: one FETCH, one COPY, one transaction, one checkpoint.
BATCH_SIZE = int(os.environ.get("INBOXSYNC_BATCH_SIZE", "1000"))

#: Seconds an IMAP socket may stay silent before the inbox's task fails (and is retried).
IMAP_TIMEOUT = float(os.environ.get("INBOXSYNC_IMAP_TIMEOUT", "60"))

#: Where the SQL the pipeline runs lives (migrations, merge steps).
SQL_DIR = Path(__file__).resolve().parents[1] / "sql"

#: Schema of the warehouse contract tables.
SCHEMA = "inboxsync"

#: What one scheduled run may download from one inbox before the rest of a backfill waits for the
#: next run (an inbox's own budget in inboxsync.inboxes overrides these). 100 MB an hour keeps a
#: Gmail account under its 2,500 MB a day.
RUN_BUDGET_MESSAGES = int(os.environ.get("INBOXSYNC_RUN_BUDGET_MESSAGES", "50000"))
RUN_BUDGET_BYTES = int(os.environ.get("INBOXSYNC_RUN_BUDGET_BYTES", str(100 * 1024 * 1024)))

#: A throttling server (Gmail's [THROTTLED], "too many simultaneous connections", Microsoft 365's
#: back-off) is retried this many times, waiting BACKOFF, 3 x BACKOFF, 9 x BACKOFF seconds.
THROTTLE_RETRIES = int(os.environ.get("INBOXSYNC_THROTTLE_RETRIES", "3"))
THROTTLE_BACKOFF_SECONDS = float(os.environ.get("INBOXSYNC_THROTTLE_BACKOFF_SECONDS", "10"))

#: Connection type of inboxsync's own hook (inboxsync.hooks.InboxHook; its Test button works).
#: Inboxes may also point at connections of the imap provider's type ``imap``.
INBOX_CONN_TYPE = "inboxsync_imap"

#: One Airflow pool per provider, so a provider's connection limits hold however many inboxes
#: the team connects (Gmail allows 15 simultaneous IMAP connections). Each mapped sync task
#: holds one IMAP connection and one slot.
PROVIDER_POOLS: dict[str, tuple[str, int]] = {
    "imap": ("inboxsync_imap", 16),
    "gmail": ("inboxsync_gmail", 15),
    "microsoft": ("inboxsync_microsoft", 15),
}

#: Host name endings that tell the provider of an inbox.
PROVIDER_HOSTS: dict[str, tuple[str, ...]] = {
    "gmail": ("gmail.com", "googlemail.com"),
    "microsoft": ("office365.com", "outlook.com", "office.com", "hotmail.com", "live.com"),
}

#: A sync parses and stages its batches in a worker process (`inboxsync.stager`) from this batch
#: on, or from the first when its backfill plans more batches than this: long syncs only (a
#: 12,500-message sync was no faster with one). 0: never.
PARSE_WORKER_AFTER = int(os.environ.get("INBOXSYNC_PARSE_WORKER_AFTER", "20"))

#: During a long sync the derive step (threads, reply flags) runs after every this many messages,
#: and once more at the end.
DERIVE_EVERY = int(os.environ.get("INBOXSYNC_DERIVE_EVERY", "10000"))

#: While a sync runs, the cyclic garbage collector's first generation waits for this many new
#: objects instead of CPython's 700 (the parse worker's for the whole of its life). Nearly all of
#: a sync's objects are freed by reference counting; at 700 the collector ran 890 times in a
#: 100,000-message sync and its full passes over every object of the process (Airflow's modules
#: included) held the GIL for 1.4-1.9 s. 0: CPython's default.
GC_GENERATION0 = int(os.environ.get("INBOXSYNC_GC_GENERATION0", "50000"))
