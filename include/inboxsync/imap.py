"""One IMAP session class: connect, log in, discover folders, examine, fetch header fields.

The session never changes the mailbox: folders are opened with EXAMINE and headers fetched with
BODY.PEEK, so nothing gains \\Seen. Connection problems become :class:`InboxError` subclasses whose
messages say what a person should check.
"""

from __future__ import annotations

import contextlib
import functools
import imaplib
import ipaddress
import logging
import os
import re
import socket
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import imapclient
from imapclient import imap_utf7
from imapclient.datetime_util import parse_to_datetime
from imapclient.exceptions import IMAPClientError, LoginError
from imapclient.fixed_offset import FixedOffset
from imapclient.imapclient import ALL, SENT, join_message_ids, seq_to_parenstr_upper
from imapclient.response_parser import parse_fetch_response

from inboxsync import imap_lines, native, settings
from inboxsync.parse import HEADER_FIELDS

if TYPE_CHECKING:
    from inboxsync.oauth import OAuth2Settings

log = logging.getLogger(__name__)
#: Where IMAPClient sends imaplib's debug output (see ``IMAPClient.__init__``).
_IMAPLIB_LOG = logging.getLogger("imapclient.imaplib")

SECURITY_MODES = ("ssl", "starttls", "none")
#: SASL/IMAP mechanisms for password auth; None (unset) picks LOGIN, or PLAIN for non-ASCII.
PASSWORD_MECHANISMS = ("login", "plain")
_FETCH_ITEMS = [
    "BODY.PEEK[HEADER.FIELDS ({})]".format(" ".join(f.upper() for f in HEADER_FIELDS)),
    "FLAGS",
    "INTERNALDATE",
    "RFC822.SIZE",
]
_GMAIL_ITEMS = ["X-GM-MSGID", "X-GM-THRID", "X-GM-LABELS"]
_MESSAGE_ID_ITEM = "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"
# Keep each command line well under servers' limits (Dovecot: 64 KiB).
_MAX_SET_CHARS = 8000


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


class InboxThrottled(InboxError):
    """The server asks us to slow down: too many connections, or a rate limit."""


# What servers say when they throttle: RFC 5530 codes, Gmail, Dovecot, Microsoft 365.
_THROTTLE_MARKERS = (
    "[THROTTLED]",
    "[LIMIT]",
    "[UNAVAILABLE]",
    "too many simultaneous connections",
    "maximum number of connections",
    "server unavailable. 15",
    "user is authenticated but not connected",
)


def is_throttling(message: str) -> bool:
    """Whether a server's answer (or an error built from it) means "slow down"."""
    lowered = message.lower()
    return any(marker.lower() in lowered for marker in _THROTTLE_MARKERS)


def as_throttled(exc: InboxError) -> InboxError:
    """The same error as :class:`InboxThrottled` when the server's words say it is throttling."""
    if isinstance(exc, InboxThrottled) or not is_throttling(str(exc)):
        return exc
    return InboxThrottled(f"{exc} (the server is throttling this account)")


@dataclass(frozen=True)
class ImapSettings:
    """How to reach and log in to one inbox (built from its Airflow connection).

    Attributes:
        auth: "password" (LOGIN or AUTHENTICATE PLAIN) or "oauth2" (SASL XOAUTH2).
        auth_mechanism: For password auth, "login" or "plain"; None picks LOGIN, or PLAIN when
            the credentials are not ASCII (LOGIN cannot carry them) and the server offers it.
        oauth: Token endpoint and secrets, for oauth2 (see :mod:`inboxsync.oauth`).
    """

    host: str
    port: int
    username: str
    password: str
    security: str = "ssl"
    ca_file: str | None = None
    timeout: float = settings.IMAP_TIMEOUT
    auth: str = "password"
    auth_mechanism: str | None = None
    oauth: OAuth2Settings | None = None
    allow_plaintext: bool = False  # security "none" to a host other than this machine

    @classmethod
    def from_connection(cls, conn: Any) -> ImapSettings:
        """Build settings from an Airflow connection of type imap.

        Extras: ``security`` (ssl, starttls, none), ``ssl_ca_file``, ``timeout``, ``auth``
        (password, oauth2), ``auth_mechanism`` (login, plain), ``allow_plaintext`` (true lets
        security none send credentials to another host) and the OAuth2 extras listed in
        :mod:`inboxsync.oauth`.

        Raises:
            InboxError: An extra has a value that cannot work; the message names it.
        """
        extra = conn.extra_dejson
        security = str(extra.get("security", "ssl")).lower()
        if security not in SECURITY_MODES:
            raise InboxError(
                f"connection {conn.conn_id}: security must be one of {', '.join(SECURITY_MODES)}, "
                f"not {security!r}"
            )
        auth = str(extra.get("auth") or "password").lower()
        if auth not in ("password", "oauth2"):
            raise InboxError(
                f"connection {conn.conn_id}: auth must be password or oauth2, not {auth!r}"
            )
        mechanism = extra.get("auth_mechanism")
        mechanism = str(mechanism).lower() if mechanism else None
        if mechanism is not None and mechanism not in PASSWORD_MECHANISMS:
            raise InboxError(
                f"connection {conn.conn_id}: auth_mechanism must be login or plain, not "
                f"{mechanism!r} (for XOAUTH2 set auth to oauth2)"
            )
        timeout = float(extra.get("timeout", settings.IMAP_TIMEOUT))
        oauth = None
        if auth == "oauth2":
            from inboxsync.oauth import OAuth2Settings

            oauth = OAuth2Settings.from_extra(conn.conn_id, extra, timeout=timeout)
        default_port = 993 if security == "ssl" else 143
        return cls(
            host=conn.host or "",
            port=int(conn.port or default_port),
            username=conn.login or "",
            password=conn.password or "",
            security=security,
            ca_file=extra.get("ssl_ca_file") or None,
            timeout=timeout,
            auth=auth,
            auth_mechanism=mechanism,
            oauth=oauth,
            allow_plaintext=str(extra.get("allow_plaintext", "")).lower() in ("true", "1", "yes"),
        )

    def __repr__(self) -> str:  # never show the password or tokens in a log or traceback
        return (
            f"ImapSettings(host={self.host!r}, port={self.port}, username={self.username!r}, "
            f"security={self.security!r}, auth={self.auth!r})"
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
    gm_msgid: int | None = None
    gm_thrid: int | None = None
    gm_labels: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class FlagChanges:
    """What changed in a folder since a MODSEQ (CONDSTORE), or all flags (without it)."""

    flags: dict[int, tuple[str, ...]]
    vanished: frozenset[int] | None  # None: the server cannot tell (no QRESYNC)
    highest_modseq: int | None
    labels: dict[int, tuple[str, ...]] = field(default_factory=dict)  # Gmail: X-GM-LABELS


def uid_set(uids: Sequence[int]) -> list[str]:
    """Compress UIDs into IMAP sequence sets ("1:5,7,9:12"), split to keep commands short."""
    sets: list[str] = []
    parts: list[str] = []
    length = 0
    ordered = sorted(set(uids))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        part = str(ordered[i]) if i == j else f"{ordered[i]}:{ordered[j]}"
        if length + len(part) + 1 > _MAX_SET_CHARS and parts:
            sets.append(",".join(parts))
            parts, length = [], 0
        parts.append(part)
        length += len(part) + 1
        i = j + 1
    if parts:
        sets.append(",".join(parts))
    return sets


class ImapSession:
    """A logged-in IMAP connection to one inbox; use it as a context manager.

    Args:
        cfg: Host, port, credentials and TLS settings.
    """

    def __init__(self, cfg: ImapSettings) -> None:
        self.cfg = cfg
        self.client: imapclient.IMAPClient | None = None

    def __enter__(self) -> ImapSession:
        allow_long_lines()
        self.client = self._connect()
        try:
            self._login()
        except InboxError as exc:
            self.__exit__()
            raise as_throttled(exc) from None
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
        if cfg.security == "none" and not (cfg.allow_plaintext or _is_loopback(cfg.host)):
            # Checked before any socket opens: the password must not cross a network in clear.
            raise InboxTLSError(
                f"security is none but {cfg.host!r} is not this machine: inboxsync will not send "
                "credentials unencrypted; use security ssl or starttls (or set the connection's "
                "allow_plaintext extra for a network you trust)"
            )
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
        """Log in with the connection's method: LOGIN, AUTHENTICATE PLAIN or XOAUTH2."""
        if self.cfg.auth == "oauth2":
            self._login_xoauth2()
        else:
            self._login_password()

    def _login_password(self) -> None:
        cfg = self.cfg
        mechanism = cfg.auth_mechanism or self._default_password_mechanism()
        try:
            if mechanism == "plain":
                self.client.plain_login(cfg.username, cfg.password)
            else:
                self.client.login(cfg.username, cfg.password)
        except LoginError as exc:
            detail = _secret_free(exc, cfg.password)
            if is_throttling(detail):
                raise InboxThrottled(
                    f"{cfg.address} turned away {cfg.username!r} for now ({detail}): the server "
                    "limits connections or requests; inboxsync backs off and tries again"
                ) from None
            raise InboxAuthError(
                f"{cfg.address} refused the login of {cfg.username!r} ({detail}): check the "
                "username and password in the inbox's connection (Gmail and Google Workspace "
                "need an app password; Microsoft 365 and Outlook.com need auth oauth2)"
            ) from None
        except UnicodeEncodeError:
            raise InboxAuthError(
                f"the username or password of {cfg.username!r} has non-ASCII characters, which "
                "IMAP LOGIN cannot send: set the connection's auth_mechanism extra to plain "
                "(AUTHENTICATE PLAIN sends UTF-8)"
            ) from None
        except (IMAPClientError, OSError) as exc:
            detail = _secret_free(exc, cfg.password)
            raise InboxUnreachable(f"{cfg.address} broke off during login: {detail}") from None

    def _default_password_mechanism(self) -> str:
        """LOGIN, unless the credentials are not ASCII and the server offers AUTH=PLAIN."""
        cfg = self.cfg
        if (cfg.username + cfg.password).isascii():
            return "login"
        return "plain" if self.client.has_capability("AUTH=PLAIN") else "login"

    def _login_xoauth2(self) -> None:
        from inboxsync import oauth

        cfg = self.cfg
        if cfg.oauth is None:
            raise InboxError("auth is oauth2 but the settings carry no OAuth2 configuration")
        if not self.client.has_capability("AUTH=XOAUTH2"):
            raise InboxAuthError(
                f"{cfg.address} does not offer SASL XOAUTH2 (no AUTH=XOAUTH2 among its "
                "capabilities): check the host, or use password auth with this server"
            )
        token = oauth.get_access_token(cfg.oauth)
        secrets = (*cfg.oauth.secrets, token.access_token)
        try:
            self.client.oauth2_login(cfg.username, token.access_token)
        except LoginError as exc:
            detail = oauth.redact(_decode(exc.args[0]) if exc.args else "refused", secrets)
            if cfg.oauth.refresh_token is None:
                hint = (
                    "the access token in the connection has expired or was revoked: store a "
                    "refresh_token (with client_id and oauth_provider or token_url) so inboxsync "
                    "can renew it"
                )
            else:
                hint = (
                    f"the token was just issued by {cfg.oauth.token_url}: check that the "
                    f"account that granted it is {cfg.username} and that its scope allows IMAP "
                    f"(asked for: {cfg.oauth.scope or 'the endpoint default'})"
                )
            raise InboxAuthError(
                f"the server refused the OAuth2 token for {cfg.username}: {detail}; {hint}"
            ) from None
        except (IMAPClientError, OSError) as exc:
            detail = oauth.redact(str(exc), secrets)
            raise InboxUnreachable(f"{cfg.address} broke off during login: {detail}") from None

    # -- reading ------------------------------------------------------------------------------

    def capabilities(self) -> list[str]:
        """The server's capabilities after login, as text."""
        return sorted(_decode(c) for c in self.client.capabilities())

    def has(self, capability: str) -> bool:
        """Whether the server advertises ``capability`` (e.g. "CONDSTORE", "X-GM-EXT-1")."""
        return self.client.has_capability(capability)

    @property
    def is_gmail(self) -> bool:
        return self.has("X-GM-EXT-1")

    def enable_qresync(self) -> bool:
        """ENABLE QRESYNC when offered (before EXAMINE), so deletions come as VANISHED."""
        if not self.has("QRESYNC"):
            return False
        try:
            return b"QRESYNC" in [c.upper() for c in self.client.enable("QRESYNC")]
        except (IMAPClientError, OSError) as exc:
            raise InboxUnreachable(f"{self.cfg.address} broke off during ENABLE: {exc}") from None

    def sync_folders(self, configured: Sequence[str] | None = None) -> list[str]:
        """The folders to sync: the inbox's own list, or INBOX and the \\Sent folder.

        The \\Sent folder comes from SPECIAL-USE, falling back to common names ("Sent",
        "Sent Items", "Sent Messages").
        """
        if configured:
            return list(configured)
        if self.is_gmail:
            # Labels make one message appear in many folders: All Mail holds each once.
            all_mail = self.client.find_special_folder(ALL)
            if all_mail:
                return [all_mail]
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
        return _folder_status(folder, info, count_key=b"EXISTS")

    def status(self, folder: str) -> FolderStatus:
        """STATUS of ``folder`` without opening it: enough to see that nothing changed."""
        items = ["MESSAGES", "UIDNEXT", "UIDVALIDITY"]
        if self.has("CONDSTORE"):
            items.append("HIGHESTMODSEQ")
        try:
            info = self.client.folder_status(folder, items)
        except IMAPClientError as exc:
            raise InboxError(f"cannot read folder {folder!r}: {_decode(exc.args[0])}") from None
        return _folder_status(folder, info, count_key=b"MESSAGES")

    def uids_after(self, last_uid: int) -> list[int]:
        """UIDs in the examined folder greater than ``last_uid``, ascending."""
        # "UID n:*" always matches the highest UID, even when it is below n: filter it out.
        return [u for u in self._search(["UID", f"{last_uid + 1}:*"]) if u > last_uid]

    def uids_below(self, uid: int) -> list[int]:
        """UIDs in the examined folder smaller than ``uid``, ascending."""
        if uid <= 1:
            return []
        return [u for u in self._search(["UID", f"1:{uid - 1}"]) if u < uid]

    def all_uids(self) -> list[int]:
        """Every UID in the examined folder, ascending."""
        return self._search(["ALL"])

    def _search(self, criteria: list[str]) -> list[int]:
        try:
            return sorted(self.client.search(criteria))
        except (IMAPClientError, OSError) as exc:
            raise InboxUnreachable(f"{self.cfg.address} broke off during SEARCH: {exc}") from None

    def fetch_ids(self, uids: Sequence[int]) -> dict[int, tuple[bytes, int | None]]:
        """Only the Message-ID header (and X-GM-MSGID on Gmail) of ``uids``: cheap identities.

        Returns:
            UID -> (raw Message-ID header bytes, Gmail message id or None).
        """
        items = [_MESSAGE_ID_ITEM] + (["X-GM-MSGID"] if self.is_gmail else [])
        out: dict[int, tuple[bytes, int | None]] = {}
        for seqset in uid_set(uids):
            for uid, data in self._fetch_set(seqset, items).items():
                out[uid] = (_header_bytes(data), data.get(b"X-GM-MSGID"))
        return out

    def changed_flags(self, since_modseq: int | None, known: Sequence[int]) -> FlagChanges:
        """Flags that changed since ``since_modseq`` and UIDs that vanished.

        With CONDSTORE and a stored MODSEQ: one ``UID FETCH 1:* (FLAGS) (CHANGEDSINCE n)``, plus
        ``VANISHED`` under QRESYNC. Otherwise the flags of every ``known`` UID, and no vanished
        set (the caller compares UID sets instead).

        Args:
            since_modseq: The HIGHESTMODSEQ stored after the last flag sync, or None.
            known: UIDs the warehouse holds live copies of.
        """
        # On Gmail a label change raises MODSEQ like a flag change: fetch the labels with them.
        items = ["FLAGS", "X-GM-LABELS"] if self.is_gmail else ["FLAGS"]
        if since_modseq is not None and self.has("CONDSTORE"):
            qresync = self.has("QRESYNC")
            modifiers = [f"CHANGEDSINCE {since_modseq}"] + (["VANISHED"] if qresync else [])
            self.client._imap.untagged_responses.pop("VANISHED", None)
            data = self._fetch_set("1:*", items, modifiers)
            vanished = self._vanished() if qresync else None
            return _flag_changes(data, vanished, _modseq(data))
        data = {}
        for seqset in uid_set(known):
            data.update(self._fetch_set(seqset, items))
        return _flag_changes(data, None, None)

    def _vanished(self) -> frozenset[int]:
        uids: set[int] = set()
        for line in self.client._imap.untagged_responses.pop("VANISHED", []):
            text = _decode(line).replace("(EARLIER)", "").strip()
            for part in filter(None, text.split(",")):
                lo, _, hi = part.partition(":")
                uids.update(range(int(lo), int(hi or lo) + 1))
        return frozenset(uids)

    def _fetch_set(
        self, seqset: str, items: list[str], modifiers: list[str] | None = None
    ) -> dict[int, dict[bytes, Any]]:
        """UID FETCH over a sequence-set string.

        IMAPClient's ``fetch`` only takes explicit UID lists (it filters the answer by them), so
        ranges such as ``1:*`` go through its command layer directly.
        """
        try:
            data = self._uid_fetch(seqset, items, modifiers)
        except (IMAPClientError, OSError) as exc:
            raise InboxUnreachable(f"{self.cfg.address} broke off during FETCH: {exc}") from None
        return _fetch_response(data, self.client.normalise_times)

    def _uid_fetch(
        self,
        seqset: str | bytes,
        items: list[str],
        modifiers: list[str] | None = None,
        usual: list[FetchedCopy] | None = None,
    ) -> list[Any]:
        """Send one UID FETCH and return imaplib's raw untagged FETCH data, as IMAPClient does.

        The answer is read by `imap_lines.command_complete` (imaplib's reading, cheaper per
        line), or by imaplib itself when its debug output is wanted. Given ``usual`` (and the C
        reader built), the answers of the usual shape that open the answer are read first by
        `imap_lines.read_usual_fetches` into ``usual`` as copies, and are not in the data.

        Raises:
            IMAPClientError: A NO answer ("fetch failed: ..."), a BAD one (imaplib's "FETCH
                command error: ..."), or a broken connection (imaplib's abort).
        """
        imap = self.client._imap
        level = imap.debug
        complete = imap._command_complete  # imaplib's own reading, which logs every line
        logged = _IMAPLIB_LOG.isEnabledFor(logging.DEBUG)
        if not logged:
            # IMAPClient sets imaplib's debug level to 5 and sends its output to this logger:
            # imaplib then formats every line and literal (repr) for a logger that drops them,
            # which costs more than reading them. Level 0 skips that; nothing logged is lost.
            imap.debug = 0
            complete = functools.partial(imap_lines.command_complete, imap)
        # With imaplib's debug log on, every line goes through its logging reader.
        read_usual = not logged and usual is not None and _SCAN is not None
        read_usual = read_usual and not self.client.normalise_times
        try:
            tag = imap._command(
                "UID",
                "FETCH",
                seqset,
                seq_to_parenstr_upper(items),
                seq_to_parenstr_upper(modifiers) if modifiers else None,
            )
            if read_usual:
                imap_lines.read_usual_fetches(imap, _SCAN, usual)
            typ, data = complete("FETCH", tag)
            self.client._checkok("fetch", typ, data)
            typ, data = imap._untagged_response(typ, data, "FETCH")
        finally:
            imap.debug = level
        return data

    def fetch_headers(self, uids: Sequence[int]) -> list[FetchedCopy]:
        """Fetch header fields, flags, INTERNALDATE and size for ``uids`` (explicit list).

        The command is the one IMAPClient's ``fetch`` sends (the UIDs in the caller's order),
        unless that list would be longer than ``_MAX_SET_CHARS``: then compressed sets, one
        command each. The answer is read by :func:`read_fetch_response`, which gives what
        IMAPClient's parser gives at a fraction of its cost (and hands anything unusual to it).
        """
        items = _FETCH_ITEMS + (_GMAIL_ITEMS if self.is_gmail else [])
        uids = list(uids)
        if not uids:
            return []
        joined = join_message_ids(uids)
        sets: list[str | bytes] = [joined] if len(joined) <= _MAX_SET_CHARS else uid_set(uids)
        response: dict[int, FetchedCopy | dict[bytes, Any]] = {}
        try:
            for seqset in sets:
                usual: list[FetchedCopy] = []
                data = self._uid_fetch(seqset, items, usual=usual)
                add_answers(response, usual, _fetch_response(data, self.client.normalise_times))
        except (IMAPClientError, OSError) as exc:
            raise InboxUnreachable(f"{self.cfg.address} broke off during FETCH: {exc}") from None
        # A UID without an answer was expunged between SEARCH and FETCH: nothing to keep.
        return [copy_of(uid, response[uid]) for uid in uids if uid in response]


def add_answers(
    response: dict[int, FetchedCopy | dict[bytes, Any]],
    usual: list[FetchedCopy],
    others: dict[int, dict[bytes, Any]],
) -> None:
    """Add one command's answers to ``response``: the copies the C reader read (they came first
    in the answer), then the items of the others. A UID answered twice gets the items of both,
    the later ones winning, as IMAPClient merges them."""
    if not response and not usual:
        response.update(others)
        return
    for copy in usual:
        _merge_answer(response, copy.uid, copy)
    for uid, items in others.items():
        _merge_answer(response, uid, items)


def copy_of(uid: int, answer: FetchedCopy | dict[bytes, Any]) -> FetchedCopy:
    """The copy of one answer (the C reader's is one already)."""
    if type(answer) is FetchedCopy:
        return answer
    return FetchedCopy(
        uid=uid,
        raw_header=_header_bytes(answer),
        flags=_flags(answer),
        internal_date=answer.get(b"INTERNALDATE"),
        size=answer.get(b"RFC822.SIZE"),
        gm_msgid=answer.get(b"X-GM-MSGID"),
        gm_thrid=answer.get(b"X-GM-THRID"),
        gm_labels=_gm_labels(answer),
    )


def _merge_answer(
    response: dict[int, FetchedCopy | dict[bytes, Any]],
    uid: int,
    answer: FetchedCopy | dict[bytes, Any],
) -> None:
    """Add one answer for ``uid``; a second one is merged into the first as IMAPClient does."""
    before = response.get(uid)
    if before is None:
        response[uid] = answer
        return
    merged = _items(before) if type(before) is FetchedCopy else before
    merged.update(_items(answer) if type(answer) is FetchedCopy else answer)
    response[uid] = merged


def _items(copy: FetchedCopy) -> dict[bytes, Any]:
    """A copy the C reader read, as the items the Python reader gives for its answer (what
    `fetch_headers` makes of them is the copy again)."""
    return {
        b"FLAGS": tuple(flag.encode() for flag in copy.flags),
        b"INTERNALDATE": copy.internal_date,
        b"RFC822.SIZE": copy.size,
        _HEADER_KEY + _FETCH_ITEMS[0].split(" ", 1)[1].encode(): copy.raw_header,
    }


# -- reading FETCH answers ----------------------------------------------------------------------
#
# IMAPClient's response parser walks the answer byte by byte in Python (about 48 us a message,
# the sync's limit). The answers to our own UID FETCH commands have a small, regular shape, read
# here with a few regular expressions into exactly the dictionaries IMAPClient builds. Anything
# outside that shape sends the whole answer to IMAPClient's parser instead: the reader never
# guesses.


class _Unreadable(Exception):
    """The fast reader met something it does not handle: IMAPClient's parser reads the answer."""


# Dovecot's answer to fetch_headers' items: everything but the header, whose literal ends the line.
_USUAL_ANSWER = re.compile(
    rb'([0-9]+) \(UID (0|[1-9][0-9]*) FLAGS \(([^()"]*)\) INTERNALDATE "([^"\\]*)" '
    rb"RFC822\.SIZE (0|[1-9][0-9]*) (BODY\[HEADER\.FIELDS \([^\]]*\)\]) \{([0-9]+)\}\Z"
)
# "<seq> (" opens one message's data.
_FETCH_OPEN = re.compile(rb"([0-9]+) \(")
# One data item: a name (with a [section]), a space, then a number, a parenthesised list (quoted
# strings in it may hold parentheses), a quoted string without escapes, NIL, or the marker of a
# literal, which imaplib leaves at the end of a line.
_FETCH_ITEM = re.compile(
    rb"([A-Z0-9.-]+(?:\[[^\]]*\])?) "
    rb'(?:(0|[1-9][0-9]*)|\(((?:[^()"]|"(?:[^"\\]|\\.)*")*)\)|"([^"\\]*)"|(NIL)|\{([0-9]+)\}\Z)',
    re.DOTALL,
)
# A flag: an atom, with a leading backslash for system flags (IMAPClient keeps it as bytes).
_FLAG = re.compile(rb'\\?[^\x00-\x20\x7f()"\[\]{}%*\\]+')
# A Gmail label: a quoted string, or an atom (which may hold [bracketed] parts, as "[Imap]/x").
_LABEL = re.compile(
    rb'"((?:[^"\\]|\\.)*)"|((?:[^\x00-\x20\x7f()"\[\]{}%*]|\[[^\]()"\x00-\x1f\x7f]*\])+)',
    re.DOTALL,
)
_QUOTED_ESCAPE = re.compile(rb'\\([\\"])')
# INTERNALDATE as servers write it: "05-Oct-2026 09:12:40 +0200" (the day may be space-padded).
_INTERNALDATE = re.compile(
    rb"( ?[0-9]|[0-9]{2})-(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)-([1-9][0-9]{3}) "
    rb"([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"
)
_MONTHS = {
    m: i for i, m in enumerate(b"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)
}
_ZONES: dict[bytes, FixedOffset] = {}
_HEADER_KEY = b"BODY[HEADER.FIELDS "


def _fetch_response(data: list[Any], normalise_times: bool) -> dict[int, dict[bytes, Any]]:
    """imaplib's untagged FETCH data as IMAPClient's ``parse_fetch_response`` returns it."""
    parsed = read_fetch_response(data, normalise_times)
    if parsed is None:
        return parse_fetch_response(data, normalise_times, True)
    return parsed


def read_fetch_response(
    data: list[Any], normalise_times: bool = False
) -> dict[int, dict[bytes, Any]] | None:
    """Read imaplib's untagged FETCH data into what IMAPClient's parser gives, or None.

    Understood: UID, FLAGS, INTERNALDATE, RFC822.SIZE, MODSEQ, X-GM-MSGID, X-GM-THRID,
    X-GM-LABELS and ``BODY[HEADER.FIELDS (...)]`` as a literal, in any order, one answer per UID.

    Args:
        data: The list imaplib collects: ``(line up to a literal marker, literal)`` tuples and
            the bytes of the rest of each line.
        normalise_times: IMAPClient's setting of the same name.

    Returns:
        UID -> item -> value, equal to ``parse_fetch_response(data, normalise_times, True)``;
        None when anything in ``data`` is outside what this reader understands.
    """
    if data == [None]:
        return {}
    try:
        return _read_fetch(data, normalise_times)
    except _Unreadable:
        return None


def _read_fetch(data: list[Any], normalise_times: bool) -> dict[int, dict[bytes, Any]]:
    out: dict[int, dict[bytes, Any]] = {}
    i, count = 0, len(data)
    while i < count:
        piece = data[i]
        i += 1
        if type(piece) is tuple:
            text, literal = piece
            # The usual answer (Dovecot's order, header last) in one match; any other goes on.
            m = _USUAL_ANSWER.match(text)
            if m is not None and i < count and data[i] == b")":
                seq, uid, flags, date, size, key, length = m.groups()
                if len(literal) != int(length) or int(uid) in out:
                    raise _Unreadable
                out[int(uid)] = {
                    b"SEQ": int(seq),
                    b"FLAGS": _read_flags(flags),
                    b"INTERNALDATE": _internal_date(date, normalise_times),
                    b"RFC822.SIZE": int(size),
                    key.upper(): literal,
                }
                i += 1
                continue
        else:
            text, literal = piece, None
        uid, msg, i = _read_answer(data, i, text, literal, normalise_times)
        if uid in out:
            raise _Unreadable  # two answers for one message: IMAPClient merges them
        out[uid] = msg
    return out


def _read_answer(
    data: list[Any], i: int, text: bytes, literal: bytes | None, normalise_times: bool
) -> tuple[int, dict[bytes, Any], int]:
    """One message's answer, items in any order; ``data[i]`` is the piece after ``text``.

    Returns:
        The UID, the items, and the index of the next message's first piece.
    """
    m = _FETCH_OPEN.match(text)
    if m is None:
        raise _Unreadable
    msg: dict[bytes, Any] = {b"SEQ": int(m.group(1))}
    uid = None
    pos = m.end()
    while True:
        m = _FETCH_ITEM.match(text, pos)
        if m is None:
            raise _Unreadable
        key, number, inner, quoted, nil, size = m.groups()
        if key in msg or key == b"SEQ":
            raise _Unreadable
        if number is not None:
            if key == b"UID" and uid is None:
                uid = int(number)
            elif key in (b"RFC822.SIZE", b"X-GM-MSGID", b"X-GM-THRID"):
                msg[key] = int(number)
            else:
                raise _Unreadable
        elif inner is not None:
            if key == b"FLAGS":
                msg[key] = _read_flags(inner)
            elif key == b"X-GM-LABELS":
                msg[key] = _read_labels(inner)
            elif key == b"MODSEQ" and inner.isdigit() and inner[:1] != b"0":
                msg[key] = (int(inner),)
            else:
                raise _Unreadable
        elif quoted is not None or nil is not None:
            if key != b"INTERNALDATE":
                raise _Unreadable  # e.g. a header as NIL or as a quoted string
            msg[key] = None if nil is not None else _internal_date(quoted, normalise_times)
        else:
            # A literal: imaplib put it beside this line; the rest of the line comes next.
            key = key.upper()
            if (
                literal is None
                or not key.startswith(_HEADER_KEY)
                or key in msg
                or len(literal) != int(size)
                or i >= len(data)
                or type(data[i]) is not bytes  # a second literal in one answer
            ):
                raise _Unreadable
            msg[key] = literal
            text, literal = data[i], None
            i += 1
            if text == b")":
                break
            if text[:1] != b" ":
                raise _Unreadable
            pos = 1
            continue
        pos = m.end()
        follows = text[pos : pos + 1]
        if follows == b" ":
            pos += 1
        elif follows == b")" and pos + 1 == len(text) and literal is None:
            break
        else:
            raise _Unreadable
    if uid is None:
        raise _Unreadable  # IMAPClient would key this answer by its sequence number
    return uid, msg, i


def _read_flags(inner: bytes) -> tuple[bytes, ...]:
    if not inner:
        return ()
    flags = tuple(inner.split(b" "))
    for flag in flags:
        if _FLAG.fullmatch(flag) is None or flag.isdigit() or flag == b"NIL":
            raise _Unreadable  # IMAPClient would make these an int or None
    return flags


def _read_labels(inner: bytes) -> tuple[bytes | int, ...]:
    labels: list[bytes | int] = []
    pos, end = 0, len(inner)
    while pos < end:
        m = _LABEL.match(inner, pos)
        if m is None:
            raise _Unreadable
        quoted, atom = m.groups()
        if quoted is not None:
            labels.append(_QUOTED_ESCAPE.sub(rb"\1", quoted) if b"\\" in quoted else quoted)
        elif atom == b"NIL" or atom[:1] == b"{":
            raise _Unreadable
        elif atom.isdigit() and (atom[:1] != b"0" or len(atom) == 1):
            labels.append(int(atom))
        else:
            labels.append(atom)
        pos = m.end()
        if pos < end:
            if inner[pos : pos + 1] != b" " or pos + 1 == end:
                raise _Unreadable
            pos += 1
    return tuple(labels)


def _internal_date(value: bytes, normalise_times: bool) -> datetime | None:
    """INTERNALDATE as IMAPClient converts it: ``parse_to_datetime``, None when unreadable.

    The usual form is built here directly (``parsedate_tz`` costs more than the rest of a
    message's reading); it gives the same datetime, with the same ``FixedOffset`` zone.
    """
    m = None if normalise_times else _INTERNALDATE.fullmatch(value)
    if m is not None:
        day, month, year, hour, minute, second, sign, zh, zm = m.groups()
        try:
            return datetime(
                int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second),
                tzinfo=_zone(sign + zh + zm),
            )  # fmt: skip
        except ValueError:
            pass  # e.g. 31-Feb: IMAPClient's own path below gives its answer (None)
    try:
        return parse_to_datetime(value, normalise=normalise_times)
    except ValueError:
        return None


def _zone(key: bytes) -> FixedOffset:
    """INTERNALDATE's zone ("+0200") as IMAPClient gives it, one object per zone."""
    zone = _ZONES.get(key)
    if zone is None:
        # As parsedate_tz: hours * 3600 + minutes * 60 (even 99 minutes); "-0000" is +0000.
        seconds = int(key[1:3]) * 3600 + int(key[3:5]) * 60
        zone = _ZONES[key] = FixedOffset((-seconds if key[:1] == b"-" else seconds) / 60)
    return zone


def _load_scan() -> Callable[..., tuple[int, bool]] | None:
    """The C reader's `scan` (`inboxsync._cfetch`), when it is built from the source beside it
    and ``INBOXSYNC_FETCH=python`` does not turn it off."""
    if os.environ.get("INBOXSYNC_FETCH", "auto") == "python":
        return None
    module = native.built("_cfetch", CFETCH_SOURCE)
    if module is None:
        return None
    module.configure(copy_type=FetchedCopy, zone=_zone)
    return module.scan


def _header_bytes(data: dict[bytes, Any]) -> bytes:
    for key, value in data.items():
        if key.startswith(b"BODY[HEADER.FIELDS"):
            return value or b""
    return b""


#: The longest response line to accept. UID SEARCH answers in one line, about 7 bytes a UID, and
#: imaplib refuses lines over 1,000,000 bytes (``imaplib._MAXLINE``): a folder of 150,000
#: messages or more could not be synced. 64 MiB is a folder of about 9 million messages.
MAX_LINE_BYTES = 64 * 1024 * 1024


def allow_long_lines() -> None:
    """Raise imaplib's response line limit (a module global) to `MAX_LINE_BYTES`."""
    imaplib._MAXLINE = max(imaplib._MAXLINE, MAX_LINE_BYTES)


def _is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: traffic that never leaves the machine."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _folder_status(folder: str, info: dict[bytes, Any], *, count_key: bytes) -> FolderStatus:
    """A FolderStatus from an EXAMINE (EXISTS) or a STATUS (MESSAGES) answer."""
    modseq = info.get(b"HIGHESTMODSEQ")
    return FolderStatus(
        name=folder,
        uidvalidity=int(info[b"UIDVALIDITY"]),
        uidnext=int(info[b"UIDNEXT"]) if b"UIDNEXT" in info else None,
        exists=int(info.get(count_key, 0)),
        highest_modseq=int(modseq) if modseq is not None else None,
    )


def _flag_changes(
    data: dict[int, dict[bytes, Any]], vanished: frozenset[int] | None, modseq: int | None
) -> FlagChanges:
    flags = {uid: _flags(d) for uid, d in data.items() if b"FLAGS" in d}
    labels = {uid: _gm_labels(d) for uid, d in data.items() if b"X-GM-LABELS" in d}
    return FlagChanges(flags, vanished, modseq, labels)


def _gm_labels(data: dict[bytes, Any]) -> tuple[str, ...] | None:
    """X-GM-LABELS, decoded: Gmail sends labels in modified UTF-7, as it does folder names.

    IMAPClient leaves them as bytes (``b"R&AOk-unions"``), a label of digits sent as an atom
    comes back as an int, and NIL as None: NIL names no label (it used to become "None").
    """
    if b"X-GM-LABELS" not in data:
        return None
    return tuple(
        imap_utf7.decode(label) if isinstance(label, bytes) else str(label)
        for label in data[b"X-GM-LABELS"]
        if label is not None
    )


def _flags(data: dict[bytes, Any]) -> tuple[str, ...]:
    # \Recent belongs to the session that first sees a message, not to the message: drop it.
    # (IMAPClient turns a keyword made of digits into an int: _decode makes every flag a str.)
    flags = (_decode(f) for f in data.get(b"FLAGS", ()))
    return tuple(sorted(f for f in flags if f.lower() != "\\recent"))


def _modseq(data: dict[int, dict[bytes, Any]]) -> int | None:
    values = [d[b"MODSEQ"][0] for d in data.values() if b"MODSEQ" in d]
    return max(values) if values else None


def _secret_free(exc: Exception, secret: str) -> str:
    """An exception's text for a message, with ``secret`` blanked out should the server echo it."""
    text = _decode(exc.args[0]) if exc.args else type(exc).__name__
    return text.replace(secret, "***") if secret else text


def _decode(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


CFETCH_SOURCE = Path(__file__).with_name("_cfetch.c")
#: The C reader of the usual FETCH answers; None: imaplib's reading and `read_fetch_response`.
_SCAN = _load_scan()
