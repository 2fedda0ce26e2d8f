"""Load one batch: COPY into staging, merge into the contract tables, advance the checkpoint.

Everything a batch writes, its checkpoint included, commits in one transaction, so a crash at any
moment loses nothing and duplicates nothing (DESIGN.md, invariant 2).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg2.errors
import psycopg2.extensions

from inboxsync import parse, pgbinary
from inboxsync.imap import FetchedCopy
from inboxsync.parse import ParsedMessage, QuarantineError, email_domain, parse_header
from inboxsync.registry import UnknownInbox
from inboxsync.threads import thread_at_load
from inboxsync.warehouse import read_sql


@dataclass
class Batch:
    """One UID batch of a folder, parsed and ready to stage."""

    copies: list[tuple[FetchedCopy, str]] = field(default_factory=list)  # (copy, message_key)
    messages: dict[str, ParsedMessage] = field(default_factory=dict)
    quarantined: list[tuple[FetchedCopy, str]] = field(default_factory=list)  # (copy, reason)
    directions: dict[str, str] = field(default_factory=dict)  # message_key -> direction
    gm_thrids: dict[str, int] = field(default_factory=dict)  # message_key -> X-GM-THRID
    thread_ids: dict[str, str] = field(default_factory=dict)  # message_key -> thread at load
    # message_key -> earliest INTERNALDATE of its copies in the batch (contacts' stand-in for a
    # missing Date)
    internal_dates: dict[str, datetime] = field(default_factory=dict)


def build_batch(fetched: Iterable[FetchedCopy], team: frozenset[str]) -> Batch:
    """Parse fetched copies; unparseable ones go to quarantine with their reason.

    Args:
        fetched: The copies of one batch, in UID order.
        team: The team's addresses, to tell inbound from outbound mail.

    Returns:
        The batch: copies with their message keys, distinct messages, quarantined copies.
    """
    batch = Batch()
    for copy in fetched:
        try:
            parsed = parse_header(copy.raw_header)
        except QuarantineError as exc:
            batch.quarantined.append((copy, exc.reason))
            continue
        batch.copies.append((copy, parsed.message_key))
        # The first copy of a message in fetch order wins, as it does across batches.
        batch.messages.setdefault(parsed.message_key, parsed)
        if copy.gm_thrid is not None:
            batch.gm_thrids.setdefault(parsed.message_key, copy.gm_thrid)
        if copy.internal_date is not None:
            seen = batch.internal_dates.get(parsed.message_key)
            if seen is None or copy.internal_date < seen:
                batch.internal_dates[parsed.message_key] = copy.internal_date
    batch.directions = {key: direction(msg, team) for key, msg in batch.messages.items()}
    batch.thread_ids = {
        key: thread_at_load(key, msg.message_id, msg.references, msg.in_reply_to)
        for key, msg in batch.messages.items()
    }
    return batch


def direction(msg: ParsedMessage, team: frozenset[str]) -> str:
    """inbound (from outside), outbound (from the team to someone outside) or internal."""
    if msg.from_email not in team:
        return "inbound"
    # `in`, not a set difference: a set difference ignores the team's domains (`registry.Team`).
    external = any(a.email not in team for a in msg.addresses if a.role in ("to", "cc", "bcc"))
    return "outbound" if external else "internal"


@dataclass(frozen=True)
class StagedBatch:
    """A batch as COPY text, one payload per staging table: built on the fetching thread so that
    the thread writing to PostgreSQL only ships it (`write_batch`).

    Attributes:
        tables: (staging table, payload) pairs in COPY's text format, empty payloads left out.
        copy_rows: The message copies, one row each in COPY's binary format without their
            first three fields (inbox, folder, UIDVALIDITY: `write_batch` adds them).
        messages: Copies fetched (loaded and quarantined).
        loaded: Copies that parsed.
        quarantined: Copies quarantined.
        team: Fingerprint of the team its directions and is_team flags were computed with
            (`registry.Team.fingerprint`); None when unknown.
    """

    tables: tuple[tuple[str, str], ...]
    copy_rows: tuple[bytes, ...]
    messages: int
    loaded: int
    quarantined: int
    team: str | None = None


def stage_batch(batch: Batch, team: frozenset[str]) -> StagedBatch:
    """Turn a parsed batch into COPY text for the staging tables (no database work).

    Args:
        batch: The parsed batch.
        team: The team's addresses (each contact row records whether it is the team's).

    Returns:
        The staged batch.
    """
    messages, addresses, references = _lines(batch)
    payloads = (
        ("stg_messages", messages),
        ("stg_addresses", addresses),
        ("stg_references", references),
        ("stg_contacts", _contact_lines(batch, team)),
        ("stg_quarantine", _copy_text(_quarantine_rows(batch))),
    )
    return StagedBatch(
        tables=tuple(p for p in payloads if p[1]),
        copy_rows=_copy_rows(batch),
        messages=len(batch.copies) + len(batch.quarantined),
        loaded=len(batch.copies),
        quarantined=len(batch.quarantined),
        team=getattr(team, "fingerprint", None),
    )


class InboxRemoved(UnknownInbox):
    """The inbox a batch belongs to was removed from the registry while it synced (an Airflow
    task skips, the CLI says so: `inboxsync.tasks`, `inboxsync.cli`)."""


def write_batch(
    cur: psycopg2.extensions.cursor,
    staged: StagedBatch,
    *,
    inbox_id: int,
    folder: str,
    uidvalidity: int,
    last_uid: int | None,
    backfill_uid: int | None = None,
    backfill_remaining: int | None = None,
    create_contacts: bool,
    created_by: str,
) -> None:
    """Stage and merge one batch in the caller's transaction (the caller commits).

    Args:
        cur: A cursor whose transaction the caller commits after this returns.
        staged: The batch as COPY text (`stage_batch`).
        inbox_id: The inbox the copies belong to.
        folder: Their folder.
        uidvalidity: The folder's UIDVALIDITY when they were fetched.
        last_uid: The new high-water mark (a batch of new mail), or None.
        backfill_uid: The new low-water mark (a batch of history), or None.
        backfill_remaining: History still to fetch after this batch, or None.
        create_contacts: The inbox's create-contacts switch.
        created_by: What to record as the creator of new contacts.

    Raises:
        InboxRemoved: The inbox was removed (the transaction wrote nothing).
    """
    # The inbox's row, share-locked for the transaction: a removal waits for this batch, and a
    # batch for a removed inbox adds nothing (migration 0011: the check its copies' foreign key
    # made once per copy).
    cur.execute("SELECT 1 FROM inboxsync.inboxes WHERE inbox_id = %s FOR KEY SHARE", (inbox_id,))
    if cur.fetchone() is None:
        raise InboxRemoved(f"inbox {inbox_id} was removed while it synced: nothing more is loaded")
    cur.execute(read_sql("load/staging.sql"))
    for table, payload in staged.tables:
        _copy_payload(cur, f"COPY {table} FROM STDIN", payload)
    cur.execute(
        read_sql("load/merge_batch.sql"),
        {
            "inbox_id": inbox_id,
            "folder": folder,
            "uidvalidity": uidvalidity,
            "last_uid": last_uid,
            "backfill_uid": backfill_uid,
            "backfill_remaining": backfill_remaining,
            "create_contacts": create_contacts,
            "created_by": created_by,
            "team": staged.team,
        },
    )
    _write_copies(cur, staged.copy_rows, inbox_id=inbox_id, folder=folder, uidvalidity=uidvalidity)


#: The columns of a copy's binary row, in order (`_copy_rows` writes them after the first three).
_COPY_COLUMNS = ("inbox_id", "folder", "uidvalidity", "uid", "message_key", "flags",
                 "internal_date", "size", "raw_header", "gm_msgid", "gm_thrid",
                 "gm_labels")  # fmt: skip


def _write_copies(
    cur: psycopg2.extensions.cursor,
    rows: Sequence[bytes],
    *,
    inbox_id: int,
    folder: str,
    uidvalidity: int,
) -> None:
    """COPY a batch's copies straight into message_copies; merge them when some exist already.

    A batch's UIDs are new to the folder's checkpoint, so their rows do not exist and a plain
    COPY stores them: no staging table, no second pass over the raw headers. Should one exist
    (a checkpoint moved back by hand, say), the COPY fails on the primary key, is rolled back to
    its savepoint, and the same rows go through stg_copies and ON CONFLICT instead (flags
    refreshed, the copy no longer expunged), as every batch once did.
    """
    if not rows:
        return
    if cur.connection.encoding not in ("UTF8", "UNICODE"):
        cur.connection.set_client_encoding("UTF8")  # `pgbinary` sends text as UTF-8
    head = (pgbinary.field_count(len(_COPY_COLUMNS)) + pgbinary.int4(inbox_id)
            + pgbinary.text(folder) + pgbinary.int8(uidvalidity))  # fmt: skip
    payload = b"".join((pgbinary.HEADER, head, head.join(rows), pgbinary.TRAILER))
    copy = "COPY {} (" + ", ".join(_COPY_COLUMNS) + ") FROM STDIN (FORMAT binary)"
    cur.execute("SAVEPOINT copies")
    try:
        _copy_payload(cur, copy.format("inboxsync.message_copies"), payload)
    except psycopg2.errors.UniqueViolation:
        cur.execute("ROLLBACK TO SAVEPOINT copies")
        cur.execute(read_sql("load/staging.sql"))  # when called outside write_batch
        _copy_payload(cur, copy.format("stg_copies"), payload)
        cur.execute(read_sql("load/merge_copies.sql"))
    cur.execute("RELEASE SAVEPOINT copies")


# -- COPY payloads ------------------------------------------------------------------------------
# COPY's text format: tab-separated fields, \N for NULL, and a backslash escape for backslash,
# tab, newline and carriage return. NUL cannot be stored in PostgreSQL text: it is dropped (the
# parser already strips it; this keeps COPY safe anyway).
#
# The tables a batch stages have a line builder each (one f-string per row): building the text
# field by field through a generic writer cost about 5x more, and was a fifth of the fetching
# thread's time (`make bench`). `_copy_text` is the generic writer for everything else; both
# produce the same text for the same values (tests/unit/test_copy_text.py).


def _text(value: str | None) -> str:
    """A text value (or NULL) as a COPY text field."""
    if value is None:
        return "\\N"
    if "\\" not in value and value.isprintable():  # the common case: nothing to escape
        return value
    return (
        value.replace("\\", "\\\\")
        .replace("\t", "\\t")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\x00", "")
    )


def _timestamp(value: datetime | None) -> str:
    return "\\N" if value is None else value.isoformat()


def _number(value: int | None) -> str:
    return "\\N" if value is None else str(value)


def _bytea(value: bytes) -> str:
    return "\\\\x" + value.hex()  # COPY unescapes "\\" to "\", leaving bytea's hex input


def _copy_rows(batch: Batch) -> tuple[bytes, ...]:
    """Each copy's binary COPY fields after inbox_id, folder and uidvalidity: uid, message_key,
    flags, internal_date, size, raw_header, gm_msgid, gm_thrid, gm_labels (`_COPY_COLUMNS`)."""
    int8, text, bytea, timestamptz, numeric, text_array = (
        pgbinary.int8, pgbinary.text, pgbinary.bytea, pgbinary.timestamptz, pgbinary.numeric,
        pgbinary.text_array)  # fmt: skip
    return tuple([
        b"".join((int8(c.uid), text(key), text_array(c.flags),
                  timestamptz(c.internal_date), int8(c.size), bytea(c.raw_header),
                  numeric(c.gm_msgid), numeric(c.gm_thrid), text_array(c.gm_labels)))
        for c, key in batch.copies
    ])  # fmt: skip


_COPY_LINES = parse.FAST_PATH.copy_lines if parse.FAST_PATH is not None else None


def _lines(batch: Batch) -> tuple[str, str, str]:
    """The stg_messages, stg_addresses and stg_references payloads of a batch: written by the C
    fast path (`inboxsync._cparse.copy_lines`) when the parse uses it, else (or when it leaves a
    value to Python) by the line builders below, which it must equal
    (tests/unit/test_copy_text.py)."""
    if _COPY_LINES is not None:
        lines = _COPY_LINES(batch.messages, batch.directions, batch.gm_thrids, batch.thread_ids)
        if lines is not None:
            return lines
    return _message_lines(batch), _address_lines(batch), _reference_lines(batch)


def _message_lines(batch: Batch) -> str:
    """stg_messages (message_key, message_id, subject, sent_at, date_header, from_email,
    from_name, in_reply_to, kind, direction, list_id, auto_submitted, content_type, gm_thrid,
    thread_id); keys, kinds, directions and thread ids are plain ASCII words."""
    directions, gm_thrids, thread_ids = batch.directions, batch.gm_thrids, batch.thread_ids
    return "".join([
        f"{key}\t{_text(m.message_id)}\t{_text(m.subject)}\t{_timestamp(m.sent_at)}\t"
        f"{_text(m.date_header)}\t{_text(m.from_email)}\t{_text(m.from_name)}\t"
        f"{_text(m.in_reply_to)}\t{m.kind}\t{directions[key]}\t{_text(m.list_id)}\t"
        f"{_text(m.auto_submitted)}\t{_text(m.content_type)}\t{_number(gm_thrids.get(key))}\t"
        f"{thread_ids[key]}\n"
        for key, m in batch.messages.items()
    ])  # fmt: skip


def _address_lines(batch: Batch) -> str:
    """stg_addresses (message_key, role, email, display_name, position)."""
    return "".join([
        f"{key}\t{a.role}\t{_text(a.email)}\t{_text(a.display_name)}\t{position}\n"
        for key, m in batch.messages.items()
        for position, a in enumerate(m.addresses)
    ])  # fmt: skip


@dataclass
class SeenAddress:
    """One address over a batch: its latest name and the span of its messages' dates."""

    #: (dated, date, name) of the name kept: the greatest such triple of the batch wins.
    name_rank: tuple[bool, datetime, str] | None = None
    first: datetime | None = None
    last: datetime | None = None

    @property
    def name(self) -> str | None:
        return None if self.name_rank is None else self.name_rank[2]


#: Stands in for the date of an undated message in a name's rank (below every real date).
_UNDATED = datetime.min.replace(tzinfo=UTC)


def contacts_seen(batch: Batch) -> dict[str, SeenAddress]:
    """Each address of the batch once: the name on its latest message that carries one (by
    Date, else the earliest INTERNALDATE of the message's copies in the batch; the greater name
    on a tie, undated messages last), and its first and last dates (migration 0013)."""
    seen: dict[str, SeenAddress] = {}
    internal_dates = batch.internal_dates
    for key, m in batch.messages.items():
        at = m.sent_at if m.sent_at is not None else internal_dates.get(key)
        rank_at = (True, at) if at is not None else (False, _UNDATED)
        for a in m.addresses:
            s = seen.get(a.email)
            if s is None:
                s = seen[a.email] = SeenAddress()
            if at is not None:
                if s.first is None or at < s.first:
                    s.first = at
                if s.last is None or at > s.last:
                    s.last = at
            if a.display_name is not None:
                rank = (*rank_at, a.display_name)
                if s.name_rank is None or rank > s.name_rank:
                    s.name_rank = rank
    return seen


def _contact_lines(batch: Batch, team: frozenset[str]) -> str:
    """stg_contacts (email, domain, is_team, display_name, display_name_at, first_seen_at,
    last_seen_at): `contacts_seen`, with ``-infinity`` for an undated name."""
    return "".join([
        f"{_text(email)}\t{_text(email_domain(email))}\t{'t' if email in team else 'f'}\t"
        f"{_text(s.name)}\t{_name_at(s)}\t{_timestamp(s.first)}\t{_timestamp(s.last)}\n"
        for email, s in contacts_seen(batch).items()
    ])  # fmt: skip


def _name_at(seen: SeenAddress) -> str:
    if seen.name_rank is None:
        return "\\N"
    dated, at, _ = seen.name_rank
    return at.isoformat() if dated else "-infinity"


def _reference_lines(batch: Batch) -> str:
    """stg_references (message_key, position, ref_message_id)."""
    return "".join([
        f"{key}\t{position}\t{_text(ref)}\n"
        for key, m in batch.messages.items()
        for position, ref in enumerate(m.references)
    ])  # fmt: skip


def _quarantine_rows(batch: Batch) -> Iterable[Sequence[object]]:
    for copy, reason in batch.quarantined:
        yield (copy.uid, reason, copy.raw_header, " ".join(copy.flags), copy.internal_date,
               copy.size)  # fmt: skip


def _field(value: object) -> str:
    if type(value) is str:  # most values (keys, nodes, ids): one test instead of five
        return _text(value)
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, bytes):
        return _bytea(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    return _text(str(value))


def _copy_text(rows: Iterable[Sequence[object]]) -> str:
    """Rows (str, int, bool, datetime, bytes or None values) in COPY's text format ("" for none)."""
    return "".join(["\t".join([_field(v) for v in row]) + "\n" for row in rows])


def _plain_copy_text(rows: Sequence[Sequence[str]]) -> str:
    """Rows of str values of one width in COPY's text format, joined without a look at each
    value: for keys, nodes, ids and "t"/"f", which never need escaping (the derive step's tables).
    One count over the payload checks that; a payload that fails it goes through `_copy_text`.
    """
    if not rows:
        return ""
    payload = "".join(["\t".join(row) + "\n" for row in rows])
    width = len(rows[0])
    if (
        payload.count("\n") == len(rows)
        and payload.count("\t") == len(rows) * (width - 1)
        and "\\" not in payload
        and "\r" not in payload
        and "\x00" not in payload
    ):
        return payload
    return _copy_text(rows)


def _copy_payload(cur: psycopg2.extensions.cursor, sql: str, payload: str | bytes) -> None:
    """Send a COPY's data: text in the connection's encoding, or bytes as they are (binary)."""
    # One read of the whole payload: psycopg2 reads the file in chunks of ``size`` bytes and
    # takes the GIL for each, which the fetching thread holds most of the time.
    data = (
        payload
        if isinstance(payload, bytes)
        else payload.encode(psycopg2.extensions.encodings[cur.connection.encoding])
    )
    cur.copy_expert(sql, io.BytesIO(data), size=max(len(data), 8192))


def _copy(
    cur: psycopg2.extensions.cursor,
    table: str,
    rows: Iterable[Sequence[object]],
    *,
    plain: bool = False,
) -> None:
    """COPY ``rows`` into ``table`` (values as `_copy_text` takes them; with ``plain``, a
    sequence of rows of str values that `_plain_copy_text` joins as they are)."""
    payload = _plain_copy_text(rows) if plain else _copy_text(rows)  # type: ignore[arg-type]
    if payload:
        _copy_payload(cur, f"COPY {table} FROM STDIN", payload)


# -- folder-level changes ---------------------------------------------------------------------


def apply_changes(
    cur: psycopg2.extensions.cursor,
    flags: dict[int, tuple[str, ...]],
    vanished: Sequence[int],
    *,
    inbox_id: int,
    folder: str,
    uidvalidity: int,
    labels: dict[int, tuple[str, ...]] | None = None,
) -> tuple[int, int]:
    """Update changed flags (and Gmail labels), mark vanished copies expunged (caller's tx).

    Returns:
        (copies whose flags changed, copies newly marked expunged).
    """
    cur.execute(read_sql("load/staging.sql"))
    labels = labels or {}
    _copy(
        cur,
        "stg_flags",
        (
            (uid, " ".join(f), json.dumps(labels[uid]) if uid in labels else None)
            for uid, f in flags.items()
        ),
    )
    params = {"inbox_id": inbox_id, "folder": folder, "uidvalidity": uidvalidity}
    cur.execute(
        """
        UPDATE inboxsync.message_copies c
        SET flags = string_to_array(s.flags, ' '),
            gm_labels = CASE WHEN s.gm_labels IS NULL THEN c.gm_labels
                             ELSE ARRAY(SELECT jsonb_array_elements_text(s.gm_labels)) END
        FROM stg_flags s
        WHERE c.inbox_id = %(inbox_id)s AND c.folder = %(folder)s
          AND c.uidvalidity = %(uidvalidity)s AND c.uid = s.uid
          AND (c.flags IS DISTINCT FROM string_to_array(s.flags, ' ')
               OR (s.gm_labels IS NOT NULL AND c.gm_labels IS DISTINCT FROM
                   ARRAY(SELECT jsonb_array_elements_text(s.gm_labels))))
        """,
        params,
    )
    updated = cur.rowcount
    cur.execute(
        """
        UPDATE inboxsync.message_copies SET expunged_at = now()
        WHERE inbox_id = %(inbox_id)s AND folder = %(folder)s AND uidvalidity = %(uidvalidity)s
          AND uid = ANY(%(vanished)s) AND expunged_at IS NULL
        """,
        {**params, "vanished": list(vanished)},
    )
    return updated, cur.rowcount


def remap_folder(
    cur: psycopg2.extensions.cursor,
    identities: Sequence[tuple[int, str | None, int | None]],
    *,
    inbox_id: int,
    folder: str,
    uidvalidity: int,
    last_uid: int,
    uidnext: int | None,
) -> tuple[int, int]:
    """Move a folder's known copies to its new UIDVALIDITY (caller's transaction).

    Args:
        cur: Cursor in the caller's transaction.
        identities: (new UID, message key from its Message-ID or None, X-GM-MSGID or None).
        inbox_id: The inbox.
        folder: The folder.
        uidvalidity: The new UIDVALIDITY.
        last_uid: The new high-water mark (the folder's highest UID now).
        uidnext: The folder's UIDNEXT.

    Returns:
        (copies re-mapped, copies marked expunged).
    """
    cur.execute(read_sql("load/staging.sql"))
    _copy(cur, "stg_remap", identities)
    cur.execute(
        read_sql("load/remap_folder.sql"),
        {
            "inbox_id": inbox_id,
            "folder": folder,
            "uidvalidity": uidvalidity,
            "last_uid": last_uid,
            "uidnext": uidnext,
        },
    )
    remapped, expunged = cur.fetchone()
    return int(remapped), int(expunged)
