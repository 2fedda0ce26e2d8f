"""Erasure: purge a removed inbox's mail, forget a person everywhere (erasure requests).

``inboxsync inbox remove NAME --purge`` (`purge_inbox`) deletes the inbox with its copies,
quarantined copies and sync state, and every message no other inbox holds a copy of, with
everything derived from those messages: addresses, references, reply flags and events, thread
membership (empty threads go, the others' rows are recomputed), and contacts that were seen by
the sync in nothing else.

``inboxsync contact forget EMAIL`` (`forget_contact`) deletes the address's contact row and
engaged_contacts row, and every message it sent or received in any role, in every inbox, with
all their copies; also every message or quarantined copy whose raw header mentions the address
anywhere (a Return-Path, a display name, an unparseable address field), because raw headers are
kept byte for byte. Kept, and why: other people's messages that only *reference* an erased
message (their References / In-Reply-To hold its Message-ID, which is not the address); team
addresses cannot be forgotten (remove the inbox with ``--purge`` instead).

Each erasure is one transaction (the SQL is in include/sql/erase/). It does not touch the mail
server: inboxsync never changes mailboxes, so the mail stays there, and ``inboxsync verify``
reports the erased copies as missing until the mail is deleted on the server too. Nothing syncs
them back by itself: new mail is fetched above each folder's high-water mark and history below
its low-water mark, and erased copies lie between the two (a UIDVALIDITY change re-maps only the
copies still in the warehouse). The dbt marts are derived: rebuild them (``--full-refresh``) so
no mart table keeps a copy of erased rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import psycopg2.extensions

from inboxsync import registry, warehouse
from inboxsync.parse import normalize_email


class EraseError(ValueError):
    """The erasure cannot be done as asked (a team address, a busy inbox, not an address)."""


@dataclass(frozen=True)
class Erased:
    """What one erasure deleted (or, in a dry run, would delete).

    Attributes:
        messages: Messages deleted (for a purge: those no other inbox holds).
        copies: Message copies deleted.
        quarantined: Quarantined copies deleted.
        addresses: message_addresses rows deleted with the messages.
        references: message_references rows deleted with the messages.
        reply_flags: Reply flags deleted (those of a message that goes, or to a forgotten
            address); flags whose reply went are reset to unreplied, not counted here.
        reply_events: Reply events deleted.
        contacts: Contact rows deleted.
        threads: Threads deleted (no message left in them).
        threads_renamed: Threads that live on but were named after an erased message's key.
    """

    messages: int
    copies: int
    quarantined: int
    addresses: int
    references: int
    reply_flags: int
    reply_events: int
    contacts: int = 0
    threads: int = 0
    threads_renamed: int = 0

    def summary(self) -> str:
        """One line for the CLI, e.g. ``3 messages, 4 copies, 0 quarantined copies, ...``."""
        parts = [
            (self.messages, "messages"),
            (self.copies, "copies"),
            (self.quarantined, "quarantined copies"),
            (self.addresses, "message addresses"),
            (self.references, "references"),
            (self.reply_flags, "reply flags"),
            (self.reply_events, "reply events"),
            (self.contacts, "contacts"),
            (self.threads, "threads"),
        ]
        return ", ".join(f"{n} {label}" for n, label in parts)


def purge_inbox(name: str, *, url: str | None = None, dry_run: bool = False) -> Erased:
    """Remove inbox ``name`` and every message that only it held, in one transaction.

    Args:
        name: The inbox's name.
        url: Warehouse URL; defaults to the ``inboxsync_warehouse`` connection.
        dry_run: Count what would go, change nothing (the Airflow connection stays too).

    Returns:
        What was (or would be) deleted; ``contacts`` and ``threads`` only when not a dry run.

    Raises:
        UnknownInbox: No inbox has that name.
        EraseError: The inbox is being synced right now.
    """
    conn = warehouse.connect(url)
    try:
        with conn.cursor() as cur:
            inbox = registry.get_inbox(cur, name)
            if not warehouse.lock_inbox(cur, inbox.inbox_id):
                raise EraseError(f"inbox {name!r} is being synced; try again when it is done")
        try:
            with conn, conn.cursor() as cur:
                purge = warehouse.read_sql("erase/purge_inbox.sql")
                cur.execute(purge, {"inbox_id": inbox.inbox_id})
                erased = _erase(cur, dry_run=dry_run)
                if dry_run:
                    conn.rollback()
                else:
                    # The inbox's row (its sync state cascades) and its Airflow connection.
                    registry.remove_inbox(cur, inbox.name)
            return erased
        finally:
            with conn.cursor() as cur:
                warehouse.unlock_inbox(cur, inbox.inbox_id)
            conn.commit()
    finally:
        conn.close()


def forget_contact(email: str, *, url: str | None = None, dry_run: bool = False) -> Erased:
    """Erase an address and every message it sent or received, everywhere, in one transaction.

    Args:
        email: The address, in any spelling (it is normalized as the sync normalizes it).
        url: Warehouse URL; defaults to the ``inboxsync_warehouse`` connection.
        dry_run: Count what would go, change nothing.

    Returns:
        What was (or would be) deleted; ``contacts`` and ``threads`` only when not a dry run.

    Raises:
        EraseError: Not an address, or an address of the team (an inbox, an owner, an alias or
            a team domain).
    """
    address = normalize_email(email)
    if address is None:
        raise EraseError(f"not an email address: {email!r}")
    with warehouse.transaction(url) as cur:
        cur.execute("SELECT inboxsync.is_team(%s)", (address,))
        if cur.fetchone()[0]:
            raise EraseError(
                f"{address} belongs to the team (an inbox, owner, alias or team domain): remove "
                "its inbox with `inboxsync inbox remove NAME --purge`, or its alias, instead"
            )
        cur.execute(warehouse.read_sql("erase/forget_contact.sql"), {"email": address})
        erased = _erase(cur, dry_run=dry_run)
        if dry_run:
            cur.connection.rollback()
    return erased


def _erase(cur: psycopg2.extensions.cursor, *, dry_run: bool) -> Erased:
    """Count what the selection holds, then (unless a dry run) delete it."""
    cur.execute(warehouse.read_sql("erase/summary.sql"))
    counts = Erased(*cur.fetchone())
    if dry_run:
        return counts
    cur.execute(warehouse.read_sql("erase/erase.sql"))
    contacts, threads, renamed = cur.fetchone()
    # What the dropped foreign key of message_copies (migration 0007) used to refuse.
    cur.execute(
        "SELECT count(*) FROM inboxsync.message_copies c JOIN erase_messages e USING (message_key)"
    )
    orphans = cur.fetchone()[0]
    if orphans:
        raise RuntimeError(f"erasure would leave {orphans} copies of deleted messages; rolled back")
    return replace(counts, contacts=contacts, threads=threads, threads_renamed=renamed)
