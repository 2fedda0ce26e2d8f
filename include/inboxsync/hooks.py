"""``InboxHook``: an inbox's Airflow connection as a hook, so the connection form's Test works.

Registered as connection type ``inboxsync_imap`` through inboxsync's provider entry point
(:mod:`inboxsync.provider`). It reads the same connection fields and extras as the sync
(:meth:`inboxsync.imap.ImapSettings.from_connection`), so a connection that passes the Test is
one the sync can use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow.sdk import BaseHook

from inboxsync.imap import FolderStatus, ImapSession, ImapSettings, InboxError
from inboxsync.settings import INBOX_CONN_TYPE


@dataclass(frozen=True)
class InboxCheck:
    """What a successful check of an inbox found: its capabilities and the folders to sync."""

    username: str
    address: str
    capabilities: list[str]
    folders: list[FolderStatus]

    def summary(self) -> str:
        """One line for a person: where it logged in and what the sync would read."""
        folders = ", ".join(f"{f.name} ({f.exists} messages)" for f in self.folders)
        return f"logged in as {self.username} at {self.address}; folders to sync: {folders}"


def check_inbox(cfg: ImapSettings, folders: list[str] | None = None) -> InboxCheck:
    """Log in, read the capabilities, discover the folders to sync and EXAMINE each one.

    Args:
        cfg: How to reach and log in to the inbox.
        folders: The inbox's own folder list (None: INBOX and Sent, or Gmail's All Mail).

    Returns:
        What the server showed.

    Raises:
        InboxError: A step failed; the message says what to check.
    """
    with ImapSession(cfg) as imap:
        capabilities = imap.capabilities()
        statuses = [imap.examine(f) for f in imap.sync_folders(folders)]
    return InboxCheck(cfg.username, cfg.address, capabilities, statuses)


class InboxHook(BaseHook):
    """An IMAP inbox that inboxsync syncs.

    Args:
        inbox_conn_id: The Airflow connection with host, port, login, password and the extras
            ``security`` (ssl, starttls, none), ``ssl_ca_file``, ``auth_mechanism``, ``auth``.
    """

    conn_name_attr = "inbox_conn_id"
    default_conn_name = "inboxsync_inbox_default"
    conn_type = INBOX_CONN_TYPE
    hook_name = "IMAP inbox (inboxsync)"

    def __init__(self, inbox_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.inbox_conn_id = inbox_conn_id
        self._settings: ImapSettings | None = None

    def get_settings(self) -> ImapSettings:
        """The connection as :class:`ImapSettings` (read once, then cached)."""
        if self._settings is None:
            self._settings = ImapSettings.from_connection(self.get_connection(self.inbox_conn_id))
        return self._settings

    def get_conn(self) -> ImapSession:
        """A session that is not yet connected: use it as a context manager (it logs out)."""
        return ImapSession(self.get_settings())

    def test_connection(self) -> tuple[bool, str]:
        """What the connection form's Test button shows: login, capabilities, folders."""
        try:
            found = check_inbox(self.get_settings())
        except InboxError as exc:
            return False, str(exc)
        return True, found.summary()
