"""Gmail-format replay: a small IMAP server that answers in the shapes Gmail's IMAP uses.

Gmail's extensions (X-GM-EXT-1: X-GM-MSGID, X-GM-THRID, X-GM-LABELS, the ``[Gmail]/All Mail``
folder) cannot run here: no Gmail account is reachable from the test machines. This server
replays the exchanges Google documents on its "IMAP Extensions" developer page, with our own
values: the ``* OK Gimap ready`` greeting, the capability lines before and after login, LIST
answers carrying SPECIAL-USE attributes (``(\\All \\HasNoChildren) "/" "[Gmail]/All Mail"``), and
FETCH answers carrying ``X-GM-THRID n X-GM-MSGID n X-GM-LABELS (...)``. Labels go on the wire in
the forms Gmail uses: system labels as ``\\Inbox`` (or quoted, ``"\\\\Important"``), plain labels
as atoms, others as quoted strings, non-ASCII ones in modified UTF-7 like folder names. It is
NOT a recording of a live Gmail session; none was ever made by this project.

What it speaks (IMAP4rev1, enough for inboxsync's sync): CAPABILITY, LOGIN, ID, NAMESPACE, LIST,
ENABLE (CONDSTORE only: Gmail has no QRESYNC), EXAMINE and SELECT (with HIGHESTMODSEQ), SEARCH
(ALL, UID sets), FETCH (header fields, FLAGS, INTERNALDATE, RFC822.SIZE, MODSEQ, the X-GM items;
the CHANGEDSINCE modifier), STORE (refused on a read-only folder), NOOP, UNSELECT, CLOSE,
LOGOUT; UID variants of SEARCH, FETCH and STORE. Mailboxes behave like Gmail's: every message is
in All Mail, and each label is a folder with its own UIDs and UIDVALIDITY.

Every line the client sends (passwords blanked) and every line the server answers (literals
left out) is logged, so tests can assert on the exchange.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import re
import socket
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

#: Before login, as Gmail answers CAPABILITY on a new connection.
PRE_AUTH_CAPABILITIES = (
    "IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 XYZZY SASL-IR"
    " AUTH=XOAUTH2 AUTH=PLAIN AUTH=PLAIN-CLIENTTOKEN AUTH=OAUTHBEARER"
)
#: After login: CONDSTORE and SPECIAL-USE, no QRESYNC.
CAPABILITIES = (
    "IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 UIDPLUS"
    " COMPRESS=DEFLATE ENABLE MOVE CONDSTORE ESEARCH UTF8=ACCEPT LIST-EXTENDED LIST-STATUS"
    " LITERAL- SPECIAL-USE APPENDLIMIT=35651584"
)
ALL_MAIL = "[Gmail]/All Mail"
SENT_MAIL = "[Gmail]/Sent Mail"

_SELECT_FLAGS = r"(\Answered \Flagged \Draft \Deleted \Seen $NotPhishing $Phishing)"
_PERMANENT_FLAGS = r"(\Answered \Flagged \Draft \Deleted \Seen $NotPhishing $Phishing \*)"
# Gmail's system folders: name, SPECIAL-USE attributes, the label that puts a message there.
_SYSTEM_FOLDERS: tuple[tuple[str, str, str | None], ...] = (
    ("INBOX", r"\HasNoChildren", "\\Inbox"),
    ("[Gmail]/All Mail", r"\All \HasNoChildren", None),
    ("[Gmail]/Drafts", r"\Drafts \HasNoChildren", "\\Draft"),
    ("[Gmail]/Important", r"\HasNoChildren \Important", "\\Important"),
    ("[Gmail]/Sent Mail", r"\HasNoChildren \Sent", "\\Sent"),
    ("[Gmail]/Spam", r"\HasNoChildren \Junk", "\\Spam"),
    ("[Gmail]/Starred", r"\Flagged \HasNoChildren", "\\Starred"),
    ("[Gmail]/Trash", r"\HasNoChildren \Trash", "\\Trash"),
)
_SIMPLE_ATOM = re.compile(r"[A-Za-z0-9_.&+,-]+")


@dataclass
class GmailMessage:
    """One message of the replayed account, as Gmail holds it (one copy, many labels).

    Attributes:
        raw: The message (header and body) with CRLF line ends.
        gm_msgid: Gmail's message id (X-GM-MSGID), unique in the account.
        gm_thrid: Gmail's thread id (X-GM-THRID).
        labels: Decoded labels: system labels start with a backslash (``\\Inbox``).
        flags: IMAP flags.
        internal_date: INTERNALDATE as IMAP writes it (``05-Oct-2026 09:12:40 +0000``).
        quoted_system_labels: Send system labels quoted (``"\\\\Sent"``) instead of bare.
        modseq: Set by the server: the MODSEQ of the message's last change.
    """

    raw: bytes
    gm_msgid: int
    gm_thrid: int
    labels: tuple[str, ...]
    flags: tuple[str, ...] = ()
    internal_date: str = "05-Oct-2026 09:00:00 +0000"
    quoted_system_labels: bool = False
    modseq: int = 0


@dataclass
class _Folder:
    name: str
    attributes: str
    label: str | None  # None: every message (All Mail)
    uidvalidity: int
    selectable: bool = True
    uids: dict[int, GmailMessage] = field(default_factory=dict)  # ascending UID order
    uidnext: int = 1

    def holds(self, msg: GmailMessage) -> bool:
        return self.selectable and (self.label is None or self.label in msg.labels)


@dataclass
class LogLine:
    """One line of the exchange: ``C`` from the client, ``S`` from the server."""

    connection: int
    side: str
    text: str


class GmailReplay:
    """A Gmail-format replay server on 127.0.0.1 (free port, no TLS); a context manager.

    Args:
        username: The only login accepted.
        password: Its password.
        messages: The account's messages, oldest first; each gets a UID in All Mail and in the
            folder of each of its labels.
        uidvalidity: The first UIDVALIDITY; folders get consecutive values from it.
    """

    def __init__(
        self,
        username: str,
        password: str,
        messages: list[GmailMessage],
        *,
        uidvalidity: int = 11,
    ) -> None:
        self.username = username
        self.password = password
        self.log: list[LogLine] = []
        self.lock = threading.RLock()
        self.highest_modseq = 4_100_000
        self.folders: dict[str, _Folder] = {}
        self._connections = itertools.count(1)
        values = itertools.count(uidvalidity)
        for name, attributes, label in _SYSTEM_FOLDERS:
            self.folders[name] = _Folder(name, attributes, label, next(values))
            if name == "INBOX":  # Gmail lists the [Gmail] parent before its children
                self.folders["[Gmail]"] = _Folder(
                    "[Gmail]", r"\HasChildren \Noselect", None, 0, selectable=False
                )
        self._uidvalidities = values
        for msg in messages:
            self.add_message(msg)
        self._server: socketserver.ThreadingTCPServer | None = None
        self._thread: threading.Thread | None = None

    # -- the mailbox, changed by tests ------------------------------------------------------

    def add_message(self, msg: GmailMessage) -> None:
        """A message arrives: it gets the next UID in every folder that holds it."""
        with self.lock:
            for label in msg.labels:  # each user label is a folder
                if not label.startswith("\\") and label not in self.folders:
                    value = next(self._uidvalidities)
                    self.folders[label] = _Folder(label, r"\HasNoChildren", label, value)
            self.highest_modseq += 1
            msg.modseq = self.highest_modseq
            for folder in self.folders.values():
                if folder.holds(msg):
                    folder.uids[folder.uidnext] = msg
                    folder.uidnext += 1

    def set_flags(self, gm_msgid: int, flags: tuple[str, ...]) -> None:
        """Change a message's flags (as another client would); its MODSEQ goes up."""
        with self.lock:
            msg = self._message(gm_msgid)
            self.highest_modseq += 1
            msg.flags, msg.modseq = flags, self.highest_modseq

    def set_labels(self, gm_msgid: int, labels: tuple[str, ...]) -> None:
        """Relabel a message in the web UI; its MODSEQ goes up (All Mail still holds it)."""
        with self.lock:
            msg = self._message(gm_msgid)
            self.highest_modseq += 1
            msg.labels, msg.modseq = labels, self.highest_modseq

    def recreate_folder(self, name: str, *, uidvalidity: int, first_uid: int = 1) -> None:
        """Give a folder a new UIDVALIDITY and new UIDs for the same messages, in order."""
        with self.lock:
            folder = self.folders[name]
            messages = list(folder.uids.values())
            folder.uidvalidity = uidvalidity
            folder.uids = {first_uid + i: msg for i, msg in enumerate(messages)}
            folder.uidnext = first_uid + len(messages)

    def _message(self, gm_msgid: int) -> GmailMessage:
        for msg in self.folders[ALL_MAIL].uids.values():
            if msg.gm_msgid == gm_msgid:
                return msg
        raise KeyError(gm_msgid)

    # -- the exchange, read by tests --------------------------------------------------------

    def commands(self, connection: int | None = None) -> list[str]:
        """What the client sent (without tags), in order; optionally one connection's only."""
        with self.lock:
            return [
                line.text.split(" ", 1)[1] if " " in line.text else line.text
                for line in self.log
                if line.side == "C" and connection in (None, line.connection)
            ]

    def answers(self) -> list[str]:
        """What the server sent, in order (literal contents left out)."""
        with self.lock:
            return [line.text for line in self.log if line.side == "S"]

    def clear_log(self) -> None:
        with self.lock:
            self.log.clear()

    # -- serving ----------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not started"
        return self._server.server_address[1]

    def __enter__(self) -> GmailReplay:
        replay = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 30

            def handle(self) -> None:
                _Session(replay, self.rfile, self.wfile, next(replay._connections)).run()

        server = socketserver.ThreadingTCPServer((self.host, 0), Handler, bind_and_activate=False)
        server.daemon_threads = True
        server.allow_reuse_address = True
        server.server_bind()
        server.server_activate()
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="gmail-replay")
        self._thread.daemon = True
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


# -- the wire format ----------------------------------------------------------------------------


class Quoted(str):
    """A quoted string or literal of a command (as opposed to an atom)."""


class BadCommand(Exception):
    """The command cannot be parsed or is not supported: answered with BAD."""


def tokenize(text: str) -> list[object]:
    """A command line as nested lists of atoms (str) and strings (:class:`Quoted`).

    ``BODY.PEEK[HEADER.FIELDS (FROM TO)]`` stays one atom: brackets keep what is inside them.
    """
    stack: list[list[object]] = [[]]
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == " ":
            i += 1
        elif c == "(":
            stack.append([])
            i += 1
        elif c == ")":
            if len(stack) == 1:
                raise BadCommand("unbalanced parenthesis")
            inner = stack.pop()
            stack[-1].append(inner)
            i += 1
        elif c == '"':
            out, i = [], i + 1
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                out.append(text[i])
                i += 1
            if i >= n:
                raise BadCommand("unterminated string")
            stack[-1].append(Quoted("".join(out)))
            i += 1
        else:
            start, depth = i, 0
            while i < n and (depth or text[i] not in " ()"):
                if text[i] == "[":
                    depth += 1
                elif text[i] == "]":
                    depth -= 1
                i += 1
            stack[-1].append(text[start:i])
    if len(stack) != 1:
        raise BadCommand("unbalanced parenthesis")
    return stack[0]


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def mutf7_encode(value: str) -> str:
    """Modified UTF-7 (RFC 3501, 5.1.3), as Gmail writes folder names and labels."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = "".join(pending).encode("utf-16-be")
            b64 = base64.b64encode(data).decode("ascii").rstrip("=").replace("/", ",")
            out.append(f"&{b64}-")
            pending.clear()

    for ch in value:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def mutf7_decode(value: str) -> str:
    """The inverse of :func:`mutf7_encode`."""

    def shifted(match: re.Match[str]) -> str:
        b64 = match.group(1)
        if not b64:
            return "&"
        b64 = b64.replace(",", "/")
        return base64.b64decode(b64 + "=" * (-len(b64) % 4)).decode("utf-16-be")

    return re.sub(r"&([A-Za-z0-9+,]*)-", shifted, value)


def wire_label(label: str, *, quoted_system: bool = False) -> str:
    """A label as Gmail sends it in X-GM-LABELS."""
    if label.startswith("\\"):
        return quote(label) if quoted_system else label
    encoded = mutf7_encode(label)
    return encoded if _SIMPLE_ATOM.fullmatch(encoded) else quote(encoded)


def header_fields(raw: bytes, names: list[str]) -> bytes:
    """The header fields ``names`` of ``raw`` (folded lines kept), then the blank line."""
    end = raw.find(b"\r\n\r\n")
    head = raw if end < 0 else raw[: end + 2]
    fields: list[bytes] = []
    for line in head.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] += line
        else:
            fields.append(line)
    wanted = {n.lower() for n in names}
    picked = [f for f in fields if f.split(b":", 1)[0].strip().decode().lower() in wanted]
    return b"".join(picked) + b"\r\n"


def parse_set(text: str, values: list[int]) -> list[int]:
    """Members of ``values`` (ascending UIDs or sequence numbers) in the set ``text``."""
    if not values:
        return []
    top = values[-1]
    wanted: set[int] = set()
    for part in text.split(","):
        lo_text, _, hi_text = part.partition(":")
        try:
            lo = top if lo_text == "*" else int(lo_text)
            hi = lo if not hi_text else (top if hi_text == "*" else int(hi_text))
        except ValueError:
            raise BadCommand(f"bad sequence set {text!r}") from None
        lo, hi = min(lo, hi), max(lo, hi)
        wanted.update(v for v in values if lo <= v <= hi)
    return [v for v in values if v in wanted]


# -- one connection -----------------------------------------------------------------------------


class _Session:
    """One client connection: reads commands, answers them, logs both sides."""

    def __init__(self, replay: GmailReplay, rfile, wfile, number: int) -> None:
        self.replay = replay
        self.rfile = rfile
        self.wfile = wfile
        self.number = number
        self.user: str | None = None
        self.folder: _Folder | None = None
        self.readonly = True
        self.condstore = False

    def run(self) -> None:
        self.send("* OK Gimap ready for requests from 127.0.0.1 r3pl4y0000000001")
        with contextlib.suppress(ConnectionError, socket.timeout):
            while True:
                line = self.read_command()
                if line is None:
                    return
                tag, _, rest = line.partition(" ")
                verb, _, args = rest.partition(" ")
                verb = verb.upper()
                self.record(tag, verb, args)
                try:
                    if not self.dispatch(tag, verb, args):
                        return
                except BadCommand as exc:
                    self.send(f"{tag} BAD {exc} (Failure)")
                except Exception as exc:  # a bug here: answer, so the client does not hang
                    self.send(f"{tag} BAD replay server error: {exc!r} (Failure)")

    def record(self, tag: str, verb: str, args: str) -> None:
        if verb == "LOGIN":
            args = args.split(" ", 1)[0] + " ***"
        with self.replay.lock:
            self.replay.log.append(LogLine(self.number, "C", f"{tag} {verb} {args}".rstrip()))

    def read_command(self) -> str | None:
        """One command with any literals inlined as quoted strings; None at end of stream."""
        parts: list[str] = []
        while True:
            raw = self.rfile.readline()
            if not raw:
                return None
            line = raw.decode("utf-8", "surrogateescape").rstrip("\r\n")
            match = re.search(r"\{(\d+)(\+?)\}$", line)
            if not match:
                parts.append(line)
                return "".join(parts)
            parts.append(line[: match.start()])
            if not match.group(2):
                self.send("+ go ahead")
            data = self.rfile.read(int(match.group(1)))
            parts.append(quote(data.decode("utf-8", "surrogateescape")))

    def send(self, line: str, literal: bytes | None = None, tail: str = "") -> None:
        with self.replay.lock:
            self.replay.log.append(LogLine(self.number, "S", line))
        out = line.encode("utf-8", "surrogateescape") + b"\r\n"
        if literal is not None:
            out += literal + tail.encode("ascii") + b"\r\n"
        self.wfile.write(out)
        self.wfile.flush()

    # -- commands -------------------------------------------------------------------------

    def dispatch(self, tag: str, verb: str, args: str) -> bool:
        """Answer one command; False ends the connection."""
        if verb == "LOGOUT":
            self.send("* BYE LOGOUT Requested")
            self.send(f"{tag} OK 73 good day (Success)")
            return False
        if verb == "CAPABILITY":
            caps = CAPABILITIES if self.user else PRE_AUTH_CAPABILITIES
            self.send(f"* CAPABILITY {caps}")
            self.send(f"{tag} OK Thats all she wrote! (Success)")
            return True
        if verb == "NOOP":
            self.send(f"{tag} OK Success")
            return True
        if verb == "ID":
            self.send('* ID ("name" "GImap" "vendor" "Google, Inc." "support-url" NIL)')
            self.send(f"{tag} OK Success")
            return True
        if verb == "LOGIN":
            return self.login(tag, tokenize(args))
        if self.user is None:
            raise BadCommand(f"{verb} before LOGIN")
        tokens = tokenize(args)
        by_uid = verb == "UID"
        if by_uid:
            if not tokens or not isinstance(tokens[0], str):
                raise BadCommand("UID needs a command")
            verb = str(tokens.pop(0)).upper()
            if verb not in ("SEARCH", "FETCH", "STORE"):
                raise BadCommand(f"UID {verb} is not supported")
        if verb in ("SEARCH", "FETCH", "STORE"):
            if self.folder is None:
                raise BadCommand(f"{verb} in the authenticated state")
            {"SEARCH": self.search, "FETCH": self.fetch, "STORE": self.store}[verb](
                tag, tokens, by_uid=by_uid
            )
            return True
        handlers: dict[str, Callable[[str, list[object]], None]] = {
            "NAMESPACE": self.namespace,
            "LIST": self.list_,
            "ENABLE": self.enable,
            "EXAMINE": lambda tag, tokens: self.select(tag, tokens, readonly=True),
            "SELECT": lambda tag, tokens: self.select(tag, tokens, readonly=False),
            "UNSELECT": self.unselect,
            "CLOSE": self.unselect,
        }
        handler = handlers.get(verb)
        if handler is None:
            raise BadCommand(f"Unknown command {verb}")
        handler(tag, tokens)
        return True

    def login(self, tag: str, tokens: list[object]) -> bool:
        if len(tokens) != 2:
            raise BadCommand("LOGIN needs a user and a password")
        user, password = (str(t) for t in tokens)
        if (user, password) != (self.replay.username, self.replay.password):
            self.send(f"{tag} NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)")
            return True
        self.user = user
        self.send(f"* CAPABILITY {CAPABILITIES}")
        self.send(f"{tag} OK {user} authenticated (Success)")
        return True

    def namespace(self, tag: str, tokens: list[object]) -> None:
        self.send('* NAMESPACE (("" "/")) NIL NIL')
        self.send(f"{tag} OK Success")

    def list_(self, tag: str, tokens: list[object]) -> None:
        if len(tokens) != 2:
            raise BadCommand("LIST needs a reference and a pattern")
        reference, pattern = (mutf7_decode(str(t)) for t in tokens)
        regex = "".join(
            ".*" if c == "*" else "[^/]*" if c == "%" else re.escape(c) for c in reference + pattern
        )
        with self.replay.lock:
            folders = list(self.replay.folders.values())
        for folder in folders:
            # Folder names are case-sensitive, except INBOX.
            flags = re.IGNORECASE if folder.name == "INBOX" else 0
            if re.fullmatch(regex, folder.name, flags=flags):
                self.send(f'* LIST ({folder.attributes}) "/" {quote(mutf7_encode(folder.name))}')
        self.send(f"{tag} OK Success")

    def enable(self, tag: str, tokens: list[object]) -> None:
        # Gmail enables CONDSTORE and UTF8=ACCEPT; it has no QRESYNC to enable.
        enabled = [str(t).upper() for t in tokens if str(t).upper() in ("CONDSTORE",)]
        self.condstore = self.condstore or "CONDSTORE" in enabled
        self.send("* ENABLED" + "".join(f" {c}" for c in enabled))
        self.send(f"{tag} OK Success")

    def select(self, tag: str, tokens: list[object], *, readonly: bool) -> None:
        if not tokens:
            raise BadCommand("no folder")
        name = mutf7_decode(str(tokens[0]))
        if len(tokens) > 1 and isinstance(tokens[1], list) and "CONDSTORE" in tokens[1]:
            self.condstore = True
        with self.replay.lock:
            folder = self.replay.folders.get(name)
            if folder is None and name.upper() == "INBOX":
                folder = self.replay.folders["INBOX"]
            if folder is None or not folder.selectable:
                self.folder = None
                self.send(f"{tag} NO [NONEXISTENT] Unknown Mailbox: {name} (Failure)")
                return
            self.folder, self.readonly = folder, readonly
            self.send(f"* FLAGS {_SELECT_FLAGS}")
            self.send(f"* OK [PERMANENTFLAGS {'()' if readonly else _PERMANENT_FLAGS}] Flags")
            self.send(f"* OK [UIDVALIDITY {folder.uidvalidity}] UIDs valid.")
            self.send(f"* {len(folder.uids)} EXISTS")
            self.send("* 0 RECENT")
            self.send(f"* OK [UIDNEXT {folder.uidnext}] Predicted next UID.")
            self.send(f"* OK [HIGHESTMODSEQ {self.replay.highest_modseq}]")
        mode = "READ-ONLY" if readonly else "READ-WRITE"
        self.send(f"{tag} OK [{mode}] {name} selected. (Success)")

    def unselect(self, tag: str, tokens: list[object]) -> None:
        self.folder = None
        self.send(f"{tag} OK Returned to authenticated state. (Success)")

    def _numbers(self, by_uid: bool) -> list[int]:
        uids = list(self.folder.uids)
        return uids if by_uid else list(range(1, len(uids) + 1))

    def search(self, tag: str, tokens: list[object], *, by_uid: bool) -> None:
        with self.replay.lock:
            uids = list(self.folder.uids)
            found = set(uids)
            rest = list(tokens)
            while rest:
                key = str(rest.pop(0)).upper()
                if key == "ALL":
                    continue
                if key == "UID" and rest:
                    found &= set(parse_set(str(rest.pop(0)), uids))
                elif re.fullmatch(r"[\d*:,]+", key):
                    seqs = parse_set(key, list(range(1, len(uids) + 1)))
                    found &= {uids[s - 1] for s in seqs}
                else:
                    raise BadCommand(f"[CLIENTBUG] Unsupported SEARCH key {key}")
        answer = [u if by_uid else uids.index(u) + 1 for u in uids if u in found]
        self.send("* SEARCH" + "".join(f" {n}" for n in answer))
        self.send(f"{tag} OK SEARCH completed (Success)")

    def fetch(self, tag: str, tokens: list[object], *, by_uid: bool) -> None:
        if len(tokens) < 2:
            raise BadCommand("FETCH needs a set and items")
        items = tokens[1] if isinstance(tokens[1], list) else [tokens[1]]
        modifiers = tokens[2] if len(tokens) > 2 and isinstance(tokens[2], list) else []
        changed_since = None
        for i, mod in enumerate(modifiers):
            if str(mod).upper() == "CHANGEDSINCE":
                changed_since = int(str(modifiers[i + 1]))
            elif str(mod).upper() == "VANISHED":
                raise BadCommand("VANISHED needs QRESYNC, which Gmail does not offer")
        names = [str(item).upper() for item in items]
        with_modseq = changed_since is not None or "MODSEQ" in names or self.condstore
        if changed_since is not None:
            self.condstore = True
        with self.replay.lock:
            uids = list(self.folder.uids)
            wanted = parse_set(str(tokens[0]), self._numbers(by_uid))
            selected = wanted if by_uid else [uids[s - 1] for s in wanted]
            for uid in selected:
                msg = self.folder.uids[uid]
                if changed_since is not None and msg.modseq <= changed_since:
                    continue
                self._answer_fetch(uid, uids.index(uid) + 1, msg, items, by_uid, with_modseq)
        self.send(f"{tag} OK Success")

    def _answer_fetch(
        self,
        uid: int,
        seq: int,
        msg: GmailMessage,
        items: list[object],
        by_uid: bool,
        with_modseq: bool,
    ) -> None:
        parts: list[str] = []
        literal: tuple[str, bytes] | None = None
        names = [str(item) for item in items]
        upper = [n.upper() for n in names]
        # Gmail puts its own items first, then UID, as in the documented exchanges.
        if "X-GM-THRID" in upper:
            parts.append(f"X-GM-THRID {msg.gm_thrid}")
        if "X-GM-MSGID" in upper:
            parts.append(f"X-GM-MSGID {msg.gm_msgid}")
        if "X-GM-LABELS" in upper:
            labels = " ".join(
                wire_label(label, quoted_system=msg.quoted_system_labels) for label in msg.labels
            )
            parts.append(f"X-GM-LABELS ({labels})")
        if by_uid or "UID" in upper:
            parts.append(f"UID {uid}")
        if with_modseq:
            parts.append(f"MODSEQ ({msg.modseq})")
        for name, key in zip(names, upper, strict=True):
            if key in ("X-GM-THRID", "X-GM-MSGID", "X-GM-LABELS", "UID", "MODSEQ"):
                continue
            if key == "FLAGS":
                parts.append(f"FLAGS ({' '.join(msg.flags)})")
            elif key == "INTERNALDATE":
                parts.append(f'INTERNALDATE "{msg.internal_date}"')
            elif key == "RFC822.SIZE":
                parts.append(f"RFC822.SIZE {len(msg.raw)}")
            elif match := re.fullmatch(
                r"BODY(\.PEEK)?\[HEADER\.FIELDS \(([^)]*)\)\]", name, flags=re.IGNORECASE
            ):
                fields = match.group(2)
                if not match.group(1) and not self.readonly and "\\Seen" not in msg.flags:
                    msg.flags = (*msg.flags, "\\Seen")  # a non-PEEK fetch marks it read
                literal = (
                    f"BODY[HEADER.FIELDS ({fields})]",
                    header_fields(msg.raw, fields.split()),
                )
            else:
                raise BadCommand(f"Unsupported FETCH item {name}")
        head = f"* {seq} FETCH (" + " ".join(parts)
        if literal is None:
            self.send(head + ")")
        else:
            key, data = literal
            self.send(f"{head} {key} {{{len(data)}}}", data, ")")

    def store(self, tag: str, tokens: list[object], *, by_uid: bool) -> None:
        if self.readonly:
            self.send(f"{tag} NO STORE attempt on READ-ONLY folder (Failure)")
            return
        raise BadCommand("STORE is not replayed: the sync never changes the mailbox")
