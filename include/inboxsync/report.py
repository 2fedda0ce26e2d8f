"""Read-side summaries of the warehouse for people: `inboxsync status` and the demo."""

from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

_INBOX_SUMMARY = """
SELECT i.name AS inbox,
       i.owner_email AS owner,
       (SELECT count(*) FROM inboxsync.sync_state s WHERE s.inbox_id = i.inbox_id
            AND s.uidvalidity IS NOT NULL) AS folders,
       (SELECT count(*) FROM inboxsync.message_copies c
            WHERE c.inbox_id = i.inbox_id AND c.expunged_at IS NULL) AS messages,
       (SELECT count(DISTINCT a.email)
            FROM inboxsync.message_copies c
            JOIN inboxsync.message_addresses a USING (message_key)
            JOIN inboxsync.contacts ct ON ct.email = a.email AND NOT ct.is_team
            WHERE c.inbox_id = i.inbox_id) AS contacts,
       (SELECT count(*) FROM inboxsync.quarantine q WHERE q.inbox_id = i.inbox_id) AS quarantined,
       (SELECT max(s.last_success_at) FROM inboxsync.sync_state s
            WHERE s.inbox_id = i.inbox_id) AS last_success_at,
       (SELECT min(s.last_error) FROM inboxsync.sync_state s
            WHERE s.inbox_id = i.inbox_id) AS last_error
FROM inboxsync.inboxes i
ORDER BY i.name
"""

_TOTALS = """
SELECT (SELECT count(*) FROM inboxsync.messages) AS messages,
       (SELECT count(*) FROM inboxsync.message_copies) AS copies,
       (SELECT count(*) FROM inboxsync.contacts WHERE NOT is_team) AS contacts,
       (SELECT count(*) FROM inboxsync.quarantine) AS quarantined
"""


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://", 1))


def inbox_summary(url: str) -> pd.DataFrame:
    """One row per inbox: folders, messages, external contacts seen, quarantined, last run."""
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return pd.read_sql(sa.text(_INBOX_SUMMARY), conn)
    finally:
        engine.dispose()


def totals(url: str) -> dict[str, int]:
    """Warehouse-wide counts: distinct messages, copies, external contacts, quarantined."""
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.text(_TOTALS)).mappings().one()
            return {k: int(v) for k, v in row.items()}
    finally:
        engine.dispose()


def format_table(df: pd.DataFrame) -> str:
    """A plain-text table for the terminal."""
    if df.empty:
        return "(no inboxes)"
    return df.fillna("").to_string(index=False)
