"""Erasure: ``inbox remove NAME --purge`` and ``contact forget EMAIL`` leave nothing of what they
erase, in any column of any table of the warehouse, and leave everything else alone.

The mail (two inboxes of the team, synced for real from Dovecot):

======  =========================================================  ================
key     message                                                    inboxes
======  =========================================================  ================
ask     X -> Alice, "question"                                     A (INBOX)
offer   Alice -> X, "offer" (outbound: reply flag for X)            A (Sent)
reply   X -> Alice, "Re: offer" (replies to offer: flag + event)   A (INBOX)
shared  Y -> Alice, Bob, "team news"                               A and B
zeta    Z -> Alice, "hello" (Z appears nowhere else)               A
follow  Y -> Alice, "Re: question" (replies to ask, not to X)      A
bobx    X -> Bob, "for bob"                                        B
fwd     W -> Bob, subject mentions X's address                     B
(q)     an empty header, quarantined                               A
(q)     Reply-To: X only (no identity field), quarantined          B
======  =========================================================  ================
"""

from __future__ import annotations

import io
import sys

import pytest

from tests.conftest import query
from tests.integration.dbscan import find_text

pytestmark = pytest.mark.integration

X = "x.person@cust.example"
Y = "y@other.example"
Z = "zeta@zeta.example"
W = "w@w.example"
SCHEMAS = ("inboxsync",)


def _mail(key: str, frm: str, to: str, subject: str, *, day: int, extra: str = "") -> bytes:
    return (
        f"From: {frm}\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Date: Mon, {day:02d} Oct 2026 10:00:00 +0000\r\nMessage-ID: <{key}@mail.example>\r\n"
        f"{extra}\r\nbody of {key}\r\n"
    ).encode()


@pytest.fixture
def mail(services, make_inbox, warehouse_url):
    """The table above, synced; returns (inbox A, inbox B, message key by name)."""
    from inboxsync.sync import sync_inbox

    a, b = make_inbox(), make_inbox()
    query_exec(warehouse_url, "UPDATE inboxsync.inboxes SET history_reply_events = true")
    alice, bob = a.username, b.username
    services.deliver(alice, "INBOX", [
        _mail("ask", f"X Person <{X}>", alice, "question", day=1),
        _mail("reply", f"X Person <{X}>", alice, "Re: offer", day=3,
              extra="In-Reply-To: <offer@mail.example>\r\n"
                    "References: <offer@mail.example>\r\n"),
        _mail("shared", Y, f"{alice}, {bob}", "team news", day=4),
        _mail("zeta", f"Zeta <{Z}>", alice, "hello", day=5),
        _mail("follow", Y, alice, "Re: question", day=8,
              extra="In-Reply-To: <ask@mail.example>\r\nReferences: <ask@mail.example>\r\n"),
        b"X-Empty: nothing we fetch\r\n\r\nquarantined\r\n",
    ])  # fmt: skip
    services.deliver(alice, "Sent", [_mail("offer", alice, f"X Person <{X}>", "offer", day=2)])
    services.deliver(bob, "INBOX", [
        _mail("shared", Y, f"{alice}, {bob}", "team news", day=4),
        _mail("bobx", f"X Person <{X}>", bob, "for bob", day=6),
        _mail("fwd", W, bob, f"fwd: what {X.upper()} asked", day=7),
        f"Reply-To: <{X}>\r\nX-Other: 1\r\n\r\nno identity\r\n".encode(),
    ])  # fmt: skip
    for inbox in (a, b):
        sync_inbox(inbox.name, url=warehouse_url)
    keys = dict(query(warehouse_url, "SELECT split_part(message_id, '@', 1), message_key"
                                     " FROM inboxsync.messages"))  # fmt: skip
    assert sorted(keys) == ["ask", "bobx", "follow", "fwd", "offer", "reply", "shared", "zeta"]
    # What the erasures will find: a replied flag with its event, threads, contacts, quarantine.
    assert query(
        warehouse_url,
        "SELECT message_key, recipient_email, replied, reply_message_key"
        " FROM inboxsync.reply_flags",
    ) == [(keys["offer"], X, True, keys["reply"])]
    events = "SELECT message_key, reply_message_key FROM inboxsync.reply_events"
    assert query(warehouse_url, events) == [(keys["offer"], keys["reply"])]
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.quarantine") == [(2,)]
    query_exec(
        warehouse_url,
        "INSERT INTO inboxsync.engaged_contacts (email, first_event_id, last_event_id, replies)"
        " SELECT recipient_email, event_id, event_id, 1 FROM inboxsync.reply_events",
    )
    return a, b, keys


def query_exec(url: str, sql: str, params: tuple = ()) -> None:
    import psycopg2

    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
    conn.close()


def _cli(*argv: str, capsys, stdin: str = "") -> tuple[int, str, str]:
    from inboxsync.cli import main

    sys.stdin = io.StringIO(stdin)
    try:
        code = main(list(argv))
    finally:
        sys.stdin = sys.__stdin__
    out = capsys.readouterr()
    return code, out.out, out.err


def _nowhere(url: str, needles: list[str]) -> dict[str, dict[str, int]]:
    """Each needle found in some column of some warehouse table: empty when erased."""
    found = {n: find_text(url, n, schemas=SCHEMAS, ignore_case=True) for n in needles}
    return {n: hits for n, hits in found.items() if hits}


def test_purge_removes_the_inbox_and_what_only_it_held(mail, warehouse_url, capsys):
    from airflow.sdk.exceptions import AirflowNotFoundException

    from inboxsync.connections import get_connection
    from inboxsync.registry import conn_id_for

    a, b, keys = mail
    gone = ["ask", "offer", "reply", "zeta", "follow"]
    kept = ["shared", "bobx", "fwd"]
    # Before: the scanner finds them all (so an empty answer after means erased).
    assert set(_nowhere(warehouse_url, [keys[k] for k in gone] + [Z])) == {
        *(keys[k] for k in gone),
        Z,
    }

    code, _, err = _cli("inbox", "remove", a.name, "--purge", capsys=capsys)
    assert (code, err.strip()) == (
        1, "inboxsync: error: nothing deleted: confirm with --yes (or run in a terminal)"
    )  # fmt: skip
    code, out, err = _cli("inbox", "remove", a.name, "--purge", "--yes", capsys=capsys)
    assert code == 0, err
    plan = ("5 messages, 6 copies, 1 quarantined copies, 10 message addresses, 2 references, "
            "1 reply flags, 1 reply events")  # fmt: skip
    assert out.splitlines() == [
        f"inbox {a.name!r}: would delete {plan}, 0 contacts, 0 threads",
        f"inbox {a.name!r}: deleted {plan}, 1 contacts, 3 threads",
    ]

    # Only inbox B's mail is left, whole: the shared message keeps its row, copy and addresses.
    assert query(warehouse_url, "SELECT name FROM inboxsync.inboxes") == [(b.name,)]
    assert sorted(
        query(warehouse_url, "SELECT split_part(message_id, '@', 1) FROM inboxsync.messages")
    ) == sorted((k,) for k in kept)
    assert query(
        warehouse_url,
        "SELECT i.name, split_part(m.message_id, '@', 1) FROM inboxsync.message_copies c"
        " JOIN inboxsync.inboxes i USING (inbox_id) JOIN inboxsync.messages m USING (message_key)"
        " ORDER BY 2",
    ) == [(b.name, "bobx"), (b.name, "fwd"), (b.name, "shared")]
    assert query(
        warehouse_url,
        "SELECT role, email FROM inboxsync.message_addresses WHERE message_key = %s ORDER BY 1, 2",
        (keys["shared"],),
    ) == [("from", Y), ("to", a.username), ("to", b.username)]
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.quarantine") == [(1,)]
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.sync_state") == [(2,)]
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.reply_flags") == [(0,)]
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.reply_events") == [(0,)]
    assert sorted(query(warehouse_url, "SELECT thread_id FROM inboxsync.threads")) == sorted(
        (keys[k],) for k in kept
    )
    # X is still a contact (bobx), seen only when B saw X; Z's contact went with Z's mail.
    assert query(
        warehouse_url, "SELECT first_seen_at::date::text, last_seen_at::date::text"
        " FROM inboxsync.contacts WHERE email = %s", (X,),
    ) == [("2026-10-06", "2026-10-06")]  # fmt: skip
    # Nothing of the purged messages remains anywhere: not their keys, ids or Z's address.
    ids = [f"{k}@mail.example" for k in gone]
    assert _nowhere(warehouse_url, [keys[k] for k in gone] + ids + [Z]) == {}
    with pytest.raises(AirflowNotFoundException):
        get_connection(conn_id_for(a.name))


def test_forget_contact_erases_the_address_everywhere(mail, warehouse_url, capsys):
    a, b, keys = mail
    gone = ["ask", "offer", "reply", "bobx", "fwd"]
    kept = ["shared", "zeta", "follow"]
    assert X in _nowhere(warehouse_url, [X])

    code, _, err = _cli("contact", "forget", a.username, "--yes", capsys=capsys)
    assert code == 1
    assert f"{a.username} belongs to the team" in err

    code, out, err = _cli("contact", "forget", X.upper(), "--yes", capsys=capsys)
    assert code == 0, err
    plan = ("5 messages, 5 copies, 1 quarantined copies, 10 message addresses, 1 references, "
            "1 reply flags, 1 reply events")  # fmt: skip
    assert out.splitlines() == [
        f"{X.upper()}: would delete {plan}, 0 contacts, 0 threads",
        f"{X.upper()}: deleted {plan}, 2 contacts, 3 threads",
    ]

    # The address is in no column of any table, in any case, raw headers included.
    assert _nowhere(warehouse_url, [X]) == {}
    # Nor are the erased messages' keys (the thread "ask" started lives on, renamed after
    # "follow") or ids, except where someone else's mail quotes an id: Y's reply to "ask".
    ids = [f"{k}@mail.example" for k in gone]
    assert _nowhere(warehouse_url, [keys[k] for k in gone] + ids) == {
        "ask@mail.example": {
            "inboxsync.messages.in_reply_to": 1,
            "inboxsync.message_references.ref_message_id": 1,
            "inboxsync.message_copies.raw_header": 1,
        }
    }
    # Everything else is as it was.
    assert sorted(
        query(
            warehouse_url,
            "SELECT i.name, split_part(m.message_id, '@', 1) FROM inboxsync.message_copies c"
            " JOIN inboxsync.inboxes i USING (inbox_id) JOIN inboxsync.messages m"
            " USING (message_key)",
        )
    ) == sorted([(a.name, "shared"), (a.name, "zeta"), (a.name, "follow"), (b.name, "shared")])
    assert sorted(query(warehouse_url, "SELECT thread_id FROM inboxsync.threads")) == sorted(
        (keys[k],) for k in kept
    )
    assert query(
        warehouse_url,
        "SELECT root_message_key, subject, message_count FROM inboxsync.threads"
        " WHERE thread_id = %s",
        (keys["follow"],),
    ) == [(keys["follow"], "Re: question", 1)]
    assert query(
        warehouse_url,
        "SELECT i.name, q.reason FROM inboxsync.quarantine q"
        " JOIN inboxsync.inboxes i USING (inbox_id)",
    ) == [(a.name, "empty_header: only whitespace")]
    assert sorted(query(warehouse_url, "SELECT email FROM inboxsync.contacts")) == sorted(
        [(a.username,), (b.username,), (Y,), (Z,)]
    )
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.engaged_contacts") == [(0,)]
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.reply_flags") == [(0,)]

    # A second request finds nothing more to erase.
    code, out, _ = _cli("contact", "forget", X, "--yes", capsys=capsys)
    assert code == 0
    assert out.splitlines()[-1] == (
        f"{X}: deleted 0 messages, 0 copies, 0 quarantined copies, 0 message addresses, "
        "0 references, 0 reply flags, 0 reply events, 0 contacts, 0 threads"
    )
