"""Connected inboxes: a row in ``inboxsync.inboxes`` plus an Airflow connection for the secrets."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg2.extensions

from inboxsync import settings
from inboxsync.connections import delete_connection, delete_variable, save_connection
from inboxsync.oauth import rotated_token_variable
from inboxsync.parse import normalize_email

_COLUMNS = (
    "inbox_id, name, conn_id, email_address, owner_email, create_contacts, enabled, folders,"
    " provider, budget_messages, budget_bytes"
)


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
    provider: str = "imap"
    budget_messages: int | None = None
    budget_bytes: int | None = None


def provider_for_host(host: str | None) -> str:
    """ "gmail", "microsoft" or "imap" (any other server), from the IMAP host name."""
    host = (host or "").lower().rstrip(".")
    for provider, suffixes in settings.PROVIDER_HOSTS.items():
        if any(host == s or host.endswith("." + s) for s in suffixes):
            return provider
    return "imap"


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
    password: str | None,
    owner_email: str | None,
    create_contacts: bool,
    ca_file: str | None = None,
    folders: list[str] | None = None,
    auth_mechanism: str | None = None,
    oauth: dict[str, str | None] | None = None,
) -> Inbox:
    """Register an inbox, or update it when the name exists; secrets go to Airflow only.

    Args:
        cur: A cursor in the caller's transaction on the warehouse.
        name: The inbox's display name (unique).
        host: IMAP host.
        port: IMAP port (993 for implicit TLS, 143 for STARTTLS).
        security: "ssl", "starttls" or "none".
        username: The IMAP login.
        password: The password or app password; None with ``oauth``.
        owner_email: The team member who owns the inbox.
        create_contacts: Whether new addresses seen in this inbox become contacts.
        ca_file: A CA bundle to verify the server's certificate with.
        folders: Folders to sync instead of the default set.
        auth_mechanism: Password auth only: "login" or "plain" (None: LOGIN, or PLAIN for
            non-ASCII credentials).
        oauth: Log in with OAuth2 (XOAUTH2) instead of a password: the keyword arguments of
            :func:`inboxsync.oauth.connection_extra` (provider, token_url, client_id, tenant,
            scope, client_secret, refresh_token, access_token). The secrets among them are
            stored in the connection's extras, which Airflow encrypts and masks.

    Returns:
        The registered inbox.

    Raises:
        InboxError: The OAuth2 settings are incomplete.
    """
    conn_id = conn_id_for(name)
    extra = connection_extra(
        security=security, ca_file=ca_file, auth_mechanism=auth_mechanism, oauth=oauth
    )
    save_connection(
        conn_id,
        conn_type="imap",
        host=host,
        port=port,
        login=username,
        password=password if oauth is None else "",  # an old password must not linger
        extra=extra,
        description=f"inboxsync inbox {name}",
    )
    return register_inbox(
        cur,
        name,
        conn_id,
        host=host,
        username=username,
        owner_email=owner_email,
        create_contacts=create_contacts,
        folders=folders,
    )


def connection_extra(
    *,
    security: str,
    ca_file: str | None = None,
    auth_mechanism: str | None = None,
    oauth: dict[str, str | None] | None = None,
) -> dict[str, object]:
    """The extras of an inbox's Airflow connection (see :func:`add_inbox` for the arguments)."""
    extra: dict[str, object] = {"security": security}
    if ca_file:
        extra["ssl_ca_file"] = ca_file
    if oauth is not None:
        from inboxsync.oauth import connection_extra as oauth_extra

        extra.update(oauth_extra(**oauth))
    elif auth_mechanism:
        extra["auth_mechanism"] = auth_mechanism
    return extra


def register_inbox(
    cur: psycopg2.extensions.cursor,
    name: str,
    conn_id: str,
    *,
    username: str | None,
    owner_email: str | None,
    create_contacts: bool,
    folders: list[str] | None = None,
    host: str | None = None,
) -> Inbox:
    """Register (or update) inbox ``name`` on an Airflow connection that exists already.

    :func:`add_inbox` calls it after saving the inbox's own connection; ``inboxsync inbox add
    --conn-id`` calls it for a connection made in the Airflow UI (type ``imap`` or
    ``inboxsync_imap``).
    """
    owner = normalize_email(owner_email) if owner_email else None
    cur.execute(
        f"""
        INSERT INTO inboxsync.inboxes
            (name, conn_id, email_address, owner_email, create_contacts, folders, provider)
        VALUES (%s, %s, %s, %s, %s, %s, %s)
        ON CONFLICT (name) DO UPDATE SET
            conn_id = EXCLUDED.conn_id,
            email_address = EXCLUDED.email_address, owner_email = EXCLUDED.owner_email,
            create_contacts = EXCLUDED.create_contacts, folders = EXCLUDED.folders,
            provider = EXCLUDED.provider, updated_at = now()
        RETURNING {_COLUMNS}
        """,
        (
            name,
            conn_id,
            normalize_email(username) if username else None,
            owner,
            create_contacts,
            folders,
            provider_for_host(host),
        ),
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
    if inbox.conn_id == conn_id_for(inbox.name):  # a connection linked with --conn-id stays
        delete_connection(inbox.conn_id)
        # Its kept OAuth2 rotation (inboxsync.oauth), if any: nothing would ever use it again.
        with contextlib.suppress(Exception):
            delete_variable(rotated_token_variable(inbox.conn_id))
    return inbox


class Team(frozenset[str]):
    """The team's addresses, plus its domains: ``email in team`` answers for both.

    A frozenset of the addresses (every inbox's own address and owner, and the configured
    aliases), so code that iterates addresses keeps working; `domains` holds the configured team
    domains, and membership also matches any address of a team domain or of its subdomains,
    exactly as the SQL function ``inboxsync.is_team`` does.
    """

    domains: frozenset[str]
    #: ``inboxsync.team_fingerprint()`` when the team was read from the warehouse, else None. The
    #: load records it with each message it classifies, and the derive step classifies again only
    #: messages classified with another team (migration 0012).
    fingerprint: str | None

    def __new__(
        cls,
        addresses: Iterable[str] = (),
        domains: Iterable[str] = (),
        fingerprint: str | None = None,
    ) -> Team:
        team = super().__new__(cls, addresses)
        team.domains = frozenset(domains)
        team.fingerprint = fingerprint
        return team

    def __contains__(self, email: object) -> bool:
        if frozenset.__contains__(self, email):
            return True
        if not self.domains or not isinstance(email, str):
            return False
        domain = email.rpartition("@")[2]
        return any(domain == d or domain.endswith("." + d) for d in self.domains)


def team_addresses(cur: psycopg2.extensions.cursor) -> Team:
    """The team: inboxes' addresses and owners, aliases and domains (0003_threads_replies.sql).

    The view ``inboxsync.team_addresses`` and the table ``inboxsync.team_domains`` are the one
    definition of the team; the derive step applies the same through ``inboxsync.is_team``.
    """
    # One statement, so the fingerprint is that of the addresses and domains read with it.
    cur.execute(
        "SELECT ARRAY(SELECT email FROM inboxsync.team_addresses),"
        " ARRAY(SELECT domain FROM inboxsync.team_domains), inboxsync.team_fingerprint()"
    )
    addresses, domains, fingerprint = cur.fetchone()
    return Team(addresses, domains, fingerprint)


def add_team_alias(cur: psycopg2.extensions.cursor, email: str, note: str | None = None) -> str:
    """Declare an address as the team's (a shared alias such as sales@); returns it normalized.

    Raises:
        ValueError: The address is not valid.
    """
    address = normalize_email(email)
    if address is None:
        raise ValueError(f"not an email address: {email!r}")
    cur.execute(
        "INSERT INTO inboxsync.team_aliases (email, note) VALUES (%s, %s)"
        " ON CONFLICT (email) DO UPDATE SET note = EXCLUDED.note",
        (address, note),
    )
    return address


def add_team_domain(cur: psycopg2.extensions.cursor, domain: str, note: str | None = None) -> str:
    """Declare a domain (and its subdomains) as the team's; returns it normalized.

    Raises:
        ValueError: The domain is empty or contains ``@`` or whitespace.
    """
    normalized = normalize_email(f"x@{domain.strip().lstrip('@')}")
    if normalized is None or "@" in domain.strip().lstrip("@"):
        raise ValueError(f"not a domain: {domain!r}")
    value = normalized.partition("@")[2]
    cur.execute(
        "INSERT INTO inboxsync.team_domains (domain, note) VALUES (%s, %s)"
        " ON CONFLICT (domain) DO UPDATE SET note = EXCLUDED.note",
        (value, note),
    )
    return value
