"""Connected inboxes: a row in ``inboxsync.inboxes`` plus an Airflow connection for the secrets."""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg2.extensions

from inboxsync import settings
from inboxsync.connections import delete_connection, save_connection
from inboxsync.parse import normalize_email

_COLUMNS = "inbox_id, name, conn_id, email_address, owner_email, create_contacts, enabled, folders"


class UnknownInbox(LookupError):
    """No connected inbox has that name."""


@dataclass(frozen=True)
class Inbox:
    """A connected inbox as the registry knows it (no secrets here)."""

    inbox_id: int
    name: str
    conn_id: str
    email_address: str | None
    owner_email: str | None
    create_contacts: bool
    enabled: bool
    folders: list[str] | None


def conn_id_for(name: str) -> str:
    """The Airflow connection id that holds the secrets of inbox ``name``."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not slug:
        raise ValueError(f"inbox name {name!r} needs at least one letter or digit")
    return settings.INBOX_CONN_PREFIX + slug


def add_inbox(
    cur: psycopg2.extensions.cursor,
    name: str,
    *,
    host: str,
    port: int,
    security: str,
    username: str,
    password: str,
    owner_email: str | None,
    create_contacts: bool,
    ca_file: str | None = None,
    folders: list[str] | None = None,
) -> Inbox:
    """Register an inbox, or update it when the name exists; the password goes to Airflow only.

    Args:
        cur: A cursor in the caller's transaction on the warehouse.
        name: The inbox's display name (unique).
        host: IMAP host.
        port: IMAP port (993 for implicit TLS, 143 for STARTTLS).
        security: "ssl", "starttls" or "none".
        username: The IMAP login.
        password: The password or app password.
        owner_email: The team member who owns the inbox.
        create_contacts: Whether new addresses seen in this inbox become contacts.
        ca_file: A CA bundle to verify the server's certificate with.
        folders: Folders to sync instead of the default set.

    Returns:
        The registered inbox.
    """
    conn_id = conn_id_for(name)
    extra: dict[str, object] = {"security": security}
    if ca_file:
        extra["ssl_ca_file"] = ca_file
    save_connection(
        conn_id,
        conn_type="imap",
        host=host,
        port=port,
        login=username,
        password=password,
        extra=extra,
        description=f"inboxsync inbox {name}",
    )
    owner = normalize_email(owner_email) if owner_email else None
    cur.execute(
        f"""
        INSERT INTO inboxsync.inboxes
            (name, conn_id, email_address, owner_email, create_contacts, folders)
        VALUES (%s, %s, %s, %s, %s, %s)
        ON CONFLICT (name) DO UPDATE SET
            email_address = EXCLUDED.email_address, owner_email = EXCLUDED.owner_email,
            create_contacts = EXCLUDED.create_contacts, folders = EXCLUDED.folders,
            updated_at = now()
        RETURNING {_COLUMNS}
        """,
        (name, conn_id, normalize_email(username), owner, create_contacts, folders),
    )
    inbox = Inbox(*cur.fetchone())
    # A team member's address may already be a contact, seen in another inbox's mail.
    cur.execute(
        "UPDATE inboxsync.contacts SET is_team = true WHERE email = ANY(%s) AND NOT is_team",
        ([a for a in (inbox.email_address, inbox.owner_email) if a],),
    )
    return inbox


def list_inboxes(cur: psycopg2.extensions.cursor, *, enabled_only: bool = False) -> list[Inbox]:
    """All connected inboxes, by name."""
    where = "WHERE enabled" if enabled_only else ""
    cur.execute(f"SELECT {_COLUMNS} FROM inboxsync.inboxes {where} ORDER BY name")
    return [Inbox(*row) for row in cur.fetchall()]


def get_inbox(cur: psycopg2.extensions.cursor, name: str) -> Inbox:
    """The inbox called ``name``.

    Raises:
        UnknownInbox: No inbox has that name.
    """
    cur.execute(f"SELECT {_COLUMNS} FROM inboxsync.inboxes WHERE name = %s", (name,))
    row = cur.fetchone()
    if row is None:
        raise UnknownInbox(f"no connected inbox named {name!r} (see `inboxsync inbox list`)")
    return Inbox(*row)


def remove_inbox(cur: psycopg2.extensions.cursor, name: str) -> Inbox:
    """Disconnect an inbox: its registry row, sync state and copies go, and its connection.

    Messages stay: other inboxes may hold copies of them (purging is a separate, explicit step).
    """
    inbox = get_inbox(cur, name)
    cur.execute("DELETE FROM inboxsync.inboxes WHERE inbox_id = %s", (inbox.inbox_id,))
    delete_connection(inbox.conn_id)
    return inbox


def team_addresses(cur: psycopg2.extensions.cursor) -> frozenset[str]:
    """Addresses that belong to the team: every inbox's own address and its owner's."""
    cur.execute(
        "SELECT email_address FROM inboxsync.inboxes WHERE email_address IS NOT NULL"
        " UNION SELECT owner_email FROM inboxsync.inboxes WHERE owner_email IS NOT NULL"
    )
    return frozenset(row[0] for row in cur.fetchall())
