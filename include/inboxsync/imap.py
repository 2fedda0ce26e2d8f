"""One IMAP session class: connect, log in, discover folders, examine, fetch header fields.

The session never changes the mailbox: folders are opened with EXAMINE and headers fetched with
BODY.PEEK, so nothing gains \\Seen. Connection problems become :class:`InboxError` subclasses whose
messages say what a person should check.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import imapclient
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.imapclient import SENT

from inboxsync import settings
from inboxsync.parse import HEADER_FIELDS

log = logging.getLogger(__name__)

SECURITY_MODES = ("ssl", "starttls", "none")
_FETCH_ITEMS = [
    "BODY.PEEK[HEADER.FIELDS ({})]".format(" ".join(f.upper() for f in HEADER_FIELDS)),
    "FLAGS",
    "INTERNALDATE",
    "RFC822.SIZE",
]


class InboxError(Exception):
    """A problem with one inbox; the message says what to check. Fails that inbox's task only."""

    #: Whether a later attempt may succeed without anyone changing anything.
    retryable = True


class InboxUnreachable(InboxError):
    """The server could not be reached or the connection broke."""


class InboxTLSError(InboxError):
    """The TLS handshake or certificate check failed."""

    retryable = False


class InboxAuthError(InboxError):
    """The server refused the credentials."""

    retryable = False


@dataclass(frozen=True)
class ImapSettings:
    """How to reach and log in to one inbox (built from its Airflow connection)."""

    host: str
    port: int
    username: str
    password: str
    security: str = "ssl"
    ca_file: str | None = None
    timeout: float = settings.IMAP_TIMEOUT

    @classmethod
    def from_connection(cls, conn: Any) -> ImapSettings:
        """Build settings from an Airflow connection of type imap."""
        extra = conn.extra_dejson
        security = str(extra.get("security", "ssl")).lower()
        if security not in SECURITY_MODES:
            raise InboxError(
                f"connection {conn.conn_id}: security must be one of {', '.join(SECURITY_MODES)}, "
                f"not {security!r}"
            )
        default_port = 993 if security == "ssl" else 143
        return cls(
            host=conn.host or "",
            port=int(conn.port or default_port),
            username=conn.login or "",
            password=conn.password or "",
            security=security,
            ca_file=extra.get("ssl_ca_file") or None,
            timeout=float(extra.get("timeout", settings.IMAP_TIMEOUT)),
        )

    def __repr__(self) -> str:  # never show the password in a log or traceback
        return (
            f"ImapSettings(host={self.host!r}, port={self.port}, username={self.username!r}, "
            f"security={self.security!r})"
        )

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class FolderStatus:
    """What EXAMINE says about a folder."""

    name: str
    uidvalidity: int
    uidnext: int | None
    exists: int
    highest_modseq: int | None


@dataclass(frozen=True, slots=True)
class FetchedCopy:
    """One message copy as fetched: the header bytes plus the server's metadata."""

    uid: int
    raw_header: bytes
    flags: tuple[str, ...]
    internal_date: datetime | None
    size: int | None


class ImapSession:
    """A logged-in IMAP connection to one inbox; use it as a context manager.

    Args:
        cfg: Host, port, credentials and TLS settings.
    """

    def __init__(self, cfg: ImapSettings) -> None:
        self.cfg = cfg
        self.client: imapclient.IMAPClient | None = None

    def __enter__(self) -> ImapSession:
        self.client = self._connect()
        self._login()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            # The server may already be gone; there is nothing to clean up on our side.
            with contextlib.suppress(IMAPClientError, OSError):
                self.client.logout()
            self.client = None

    # -- connecting ---------------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cfg.ca_file)

    def _connect(self) -> imapclient.IMAPClient:
        cfg = self.cfg
        if not cfg.host:
            raise InboxError("no IMAP host configured: set the connection's host")
        use_ssl = cfg.security == "ssl"
        try:
            client = imapclient.IMAPClient(
                cfg.host,
                port=cfg.port,
                ssl=use_ssl,
                ssl_context=self._ssl_context() if use_ssl else None,
                timeout=cfg.timeout,
            )
            if cfg.security == "starttls":
                client.starttls(self._ssl_context())
        except socket.gaierror as exc:
            raise InboxUnreachable(
                f"cannot resolve IMAP host {cfg.host!r} ({exc.strerror}): check the host name"
            ) from None
        except ConnectionRefusedError:
            raise InboxUnreachable(
                f"connection refused by {cfg.address}: check the port (993 for IMAPS, 143 for "
                "STARTTLS) and that the server accepts IMAP from here"
            ) from None
        except ssl.SSLCertVerificationError as exc:
            raise InboxTLSError(
                f"TLS certificate of {cfg.address} could not be verified ({exc.verify_message}): "
                "check the host name, or give the server's CA file as the connection's "
                "ssl_ca_file extra"
            ) from None
        except ssl.SSLError as exc:
            hint = (
                "is this the implicit-TLS port (usually 993)? For port 143 use security=starttls"
                if use_ssl
                else "the server's STARTTLS failed"
            )
            raise InboxTLSError(
                f"TLS handshake with {cfg.address} failed ({exc.reason}): {hint}"
            ) from None
        except TimeoutError:
            raise InboxUnreachable(
                f"timed out after {cfg.timeout:.0f}s connecting to {cfg.address}: check the host, "
                "port and any firewall"
            ) from None
        except (IMAPClientError, OSError) as exc:
            raise InboxUnreachable(f"cannot connect to {cfg.address}: {exc}") from None
        client.normalise_times = False  # keep INTERNALDATE's time zone
        return client

    def _login(self) -> None:
        cfg = self.cfg
        try:
            self.client.login(cfg.username, cfg.password)
        except LoginError as exc:
            detail = _decode(exc.args[0]) if exc.args else "login failed"
            raise InboxAuthError(
                f"{cfg.address} refused the login of {cfg.username!r} ({detail}): check the "
                "username and password in the inbox's connection (Gmail and Google Workspace "
                "need an app password)"
            ) from None
        except (IMAPClientError, OSError) as exc:
            raise InboxUnreachable(f"{cfg.address} broke off during login: {exc}") from None

    # -- reading ------------------------------------------------------------------------------

    def capabilities(self) -> list[str]:
        """The server's capabilities after login, as text."""
        return sorted(_decode(c) for c in self.client.capabilities())

    def sync_folders(self, configured: Sequence[str] | None = None) -> list[str]:
        """The folders to sync: the inbox's own list, or INBOX and the \\Sent folder.

        The \\Sent folder comes from SPECIAL-USE, falling back to common names ("Sent",
        "Sent Items", "Sent Messages").
        """
        if configured:
            return list(configured)
        folders = ["INBOX"]
        sent = self.client.find_special_folder(SENT)
        if sent and sent not in folders:
            folders.append(sent)
        return folders

    def examine(self, folder: str) -> FolderStatus:
        """Open ``folder`` read-only (EXAMINE) and return its UIDVALIDITY, UIDNEXT, EXISTS."""
        try:
            info = self.client.select_folder(folder, readonly=True)
        except IMAPClientError as exc:
            raise InboxError(f"cannot open folder {folder!r}: {_decode(exc.args[0])}") from None
        modseq = info.get(b"HIGHESTMODSEQ")
        return FolderStatus(
            name=folder,
            uidvalidity=int(info[b"UIDVALIDITY"]),
            uidnext=int(info[b"UIDNEXT"]) if b"UIDNEXT" in info else None,
            exists=int(info.get(b"EXISTS", 0)),
            highest_modseq=int(modseq) if modseq is not None else None,
        )

    def uids_after(self, last_uid: int) -> list[int]:
        """UIDs in the examined folder greater than ``last_uid``, ascending."""
        # "UID n:*" always matches the highest UID, even when it is below n: filter it out.
        try:
            uids = self.client.search(["UID", f"{last_uid + 1}:*"])
        except (IMAPClientError, OSError) as exc:
            raise InboxUnreachable(f"{self.cfg.address} broke off during SEARCH: {exc}") from None
        return sorted(u for u in uids if u > last_uid)

    def fetch_headers(self, uids: Sequence[int]) -> list[FetchedCopy]:
        """Fetch header fields, flags, INTERNALDATE and size for ``uids`` (explicit list)."""
        try:
            response = self.client.fetch(list(uids), _FETCH_ITEMS)
        except (IMAPClientError, OSError) as exc:
            raise InboxUnreachable(f"{self.cfg.address} broke off during FETCH: {exc}") from None
        copies = []
        for uid in uids:
            data = response.get(uid)
            if data is None:
                continue  # expunged between SEARCH and FETCH: nothing to keep
            copies.append(
                FetchedCopy(
                    uid=uid,
                    raw_header=_header_bytes(data),
                    flags=tuple(_decode(f) for f in data.get(b"FLAGS", ())),
                    internal_date=data.get(b"INTERNALDATE"),
                    size=data.get(b"RFC822.SIZE"),
                )
            )
        return copies


def _header_bytes(data: dict[bytes, Any]) -> bytes:
    for key, value in data.items():
        if key.startswith(b"BODY[HEADER.FIELDS"):
            return value or b""
    return b""


def _decode(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
