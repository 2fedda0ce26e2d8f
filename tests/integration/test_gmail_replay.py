"""Gmail through a Gmail-format replay: All Mail only, X-GM-* stored, re-map by X-GM-MSGID.

Gmail's IMAP extensions cannot run here, so the server is :mod:`tests.gmail_replay`: it answers
in the shapes of the exchanges Google documents on its "IMAP Extensions" page (our values, not a
recording of a live Gmail session). The sync talks to it over plain IMAP on loopback and loads the
real warehouse PostgreSQL of the harness.
"""

from __future__ import annotations

import pytest

from inboxsync.parse import HEADER_FIELDS
from tests.conftest import query, unique_user
from tests.gmail_replay import ALL_MAIL, SENT_MAIL, GmailMessage, GmailReplay

pytestmark = pytest.mark.integration

ANA = "ana@northwind.example"
APP_PASSWORD = "xqzv wmrt plok hyen"  # Gmail app passwords: 16 letters in four groups

# X-GM-MSGID and X-GM-THRID: 64-bit ids; a thread's id is its first message's id.
QUOTE, REPLY, FOLLOW_UP, NEWSLETTER, INTRO, ARCHIVED, LATE_REPLY = (
    1781334455660001001,
    1781334455660001002,
    1781334455660001003,
    1781334455660002001,
    1781334455660003001,
    1781334455660004001,
    1781334455660001004,
)
HEADER_FETCH = (
    "BODY.PEEK[HEADER.FIELDS ({})] FLAGS INTERNALDATE RFC822.SIZE X-GM-MSGID X-GM-THRID"
    " X-GM-LABELS".format(" ".join(f.upper() for f in HEADER_FIELDS))
)


def _mail(*headers: str, body: str = "Hello.") -> bytes:
    return ("\r\n".join(headers) + "\r\n\r\n" + body + "\r\n").encode()


def _quote_thread(n: int, sender: str, to: str, minute: int, refs: list[str]) -> bytes:
    """Message ``n`` of the "Quote for 40 chairs" thread."""
    headers = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {'Re: ' if refs else ''}Quote for 40 chairs",
        f"Date: Mon, 05 Oct 2026 09:{minute:02d}:00 +0000",
        f"Message-ID: <quote-{n}@{sender.rsplit('@', 1)[1].rstrip('>')}>",
    ]
    if refs:
        headers += [f"In-Reply-To: {refs[-1]}", f"References: {' '.join(refs)}"]
    return _mail(*headers)


BOB = "Bob Marsh <bob@globex.example>"
ANA_FROM = f"Ana Ruiz <{ANA}>"


def _mailbox() -> list[GmailMessage]:
    """The account, oldest first: a three-message thread, a newsletter, an intro, an archive."""
    q1, q2 = "<quote-1@globex.example>", "<quote-2@northwind.example>"
    return [
        GmailMessage(
            _quote_thread(1, BOB, ANA_FROM, 12, []),
            QUOTE,
            QUOTE,
            ("\\Inbox", "\\Important", "Key Accounts", "Año 2026"),
            ("\\Seen",),
            internal_date="05-Oct-2026 09:12:03 +0000",
        ),
        GmailMessage(
            _quote_thread(2, ANA_FROM, BOB, 30, [q1]),
            REPLY,
            QUOTE,
            ("\\Sent", "Key Accounts"),
            ("\\Seen",),
            internal_date="05-Oct-2026 09:30:01 +0000",
            quoted_system_labels=True,
        ),
        GmailMessage(
            _quote_thread(3, BOB, ANA_FROM, 47, [q1, q2]),
            FOLLOW_UP,
            QUOTE,
            ("\\Inbox", "\\Important", "Key Accounts", 'Follow-up "urgent"'),
            internal_date="05-Oct-2026 09:47:09 +0000",
        ),
        GmailMessage(
            _mail(
                "From: Fabrikam News <news@fabrikam.example>",
                f"To: {ANA}",
                "Subject: This week at Fabrikam",
                "Date: Mon, 05 Oct 2026 11:00:00 +0000",
                "Message-ID: <wk41@news.fabrikam.example>",
                "List-Id: <weekly.fabrikam.example>",
                "Precedence: bulk",
            ),
            NEWSLETTER,
            NEWSLETTER,
            ("\\Inbox", "Newsletters & Digests"),
            internal_date="05-Oct-2026 11:00:02 +0000",
        ),
        GmailMessage(
            _mail(
                f"From: {ANA_FROM}",
                "To: Carol Diaz <carol@initech.example>",
                "Subject: Intro call next week",
                "Date: Tue, 06 Oct 2026 08:15:00 +0000",
                "Message-ID: <intro-1@northwind.example>",
            ),
            INTRO,
            INTRO,
            ("\\Sent", "\\Starred", "2026"),
            ("\\Flagged", "\\Seen"),
            internal_date="06-Oct-2026 08:15:00 +0000",
            quoted_system_labels=True,
        ),
        GmailMessage(
            # No Message-ID: only X-GM-MSGID can find this one again after a UIDVALIDITY change.
            _mail(
                "From: Dave Li <dave@initech.example>",
                f"To: {ANA}",
                "Subject: =?utf-8?q?R=C3=A9union_jeudi?=",
                "Date: Tue, 06 Oct 2026 14:00:00 +0200",
            ),
            ARCHIVED,
            ARCHIVED,
            ("Réunions",),
            ("\\Seen",),
            internal_date="06-Oct-2026 12:00:05 +0000",
        ),
    ]


def _late_reply() -> GmailMessage:
    refs = ["<quote-1@globex.example>", "<quote-3@globex.example>"]
    return GmailMessage(
        _quote_thread(4, ANA_FROM, BOB, 58, refs),
        LATE_REPLY, QUOTE, ("\\Sent", "Key Accounts"), ("\\Seen",),
        internal_date="05-Oct-2026 09:58:00 +0000",
    )  # fmt: skip


@pytest.fixture
def gmail_replay():
    """A Gmail-format replay server for :func:`_mailbox` (documented shapes, not a recording)."""
    with GmailReplay(ANA, APP_PASSWORD, _mailbox()) as replay:
        yield replay


def _register(url: str, replay: GmailReplay, *, folders: list[str] | None = None) -> str:
    from inboxsync import registry, warehouse

    name = unique_user("gmail").split("@")[0]
    with warehouse.transaction(url) as cur:
        registry.add_inbox(
            cur, name, host=replay.host, port=replay.port, security="none", username=ANA,
            password=APP_PASSWORD, owner_email=ANA, create_contacts=True, folders=folders,
        )  # fmt: skip
    return name


def _verbs(commands: list[str]) -> list[str]:
    """Command names, with UID joined to its command ("UID FETCH")."""
    out = []
    for command in commands:
        words = command.split(" ")
        out.append(" ".join(words[:2]) if words[0] == "UID" else words[0])
    return out


def _copies(url: str) -> list[tuple]:
    return query(
        url,
        "SELECT folder, uid, gm_msgid::bigint, gm_thrid::bigint, gm_labels, flags"
        " FROM inboxsync.message_copies ORDER BY folder, uid",
    )


def test_gmail_syncs_all_mail_only_with_labels_and_ids(gmail_replay, warehouse_url):
    from inboxsync.sync import sync_inbox

    name = _register(warehouse_url, gmail_replay)
    result = sync_inbox(name, url=warehouse_url)

    [folder] = result.folders
    assert (folder.folder, folder.fetched, folder.loaded, folder.quarantined) == (
        ALL_MAIL, 6, 6, 0
    )  # fmt: skip
    assert _copies(warehouse_url) == [
        (ALL_MAIL, 1, QUOTE, QUOTE, ["\\Inbox", "\\Important", "Key Accounts", "Año 2026"],
         ["\\Seen"]),
        (ALL_MAIL, 2, REPLY, QUOTE, ["\\Sent", "Key Accounts"], ["\\Seen"]),
        (ALL_MAIL, 3, FOLLOW_UP, QUOTE,
         ["\\Inbox", "\\Important", "Key Accounts", 'Follow-up "urgent"'], []),
        (ALL_MAIL, 4, NEWSLETTER, NEWSLETTER, ["\\Inbox", "Newsletters & Digests"], []),
        (ALL_MAIL, 5, INTRO, INTRO, ["\\Sent", "\\Starred", "2026"], ["\\Flagged", "\\Seen"]),
        (ALL_MAIL, 6, ARCHIVED, ARCHIVED, ["Réunions"], ["\\Seen"]),
    ]  # fmt: skip
    # Each email once, with Gmail's thread id; the archived one has no Message-ID.
    assert query(
        warehouse_url,
        "SELECT message_id, gm_thrid::bigint, direction FROM inboxsync.messages ORDER BY sent_at",
    ) == [
        ("quote-1@globex.example", QUOTE, "inbound"),
        ("quote-2@northwind.example", QUOTE, "outbound"),
        ("quote-3@globex.example", QUOTE, "inbound"),
        ("wk41@news.fabrikam.example", NEWSLETTER, "inbound"),
        ("intro-1@northwind.example", INTRO, "outbound"),
        (None, ARCHIVED, "inbound"),
    ]
    assert query(
        warehouse_url,
        "SELECT folder, uidvalidity, last_uid, highest_modseq, backfill_remaining"
        " FROM inboxsync.sync_state",
    ) == [(ALL_MAIL, gmail_replay.folders[ALL_MAIL].uidvalidity, 6, gmail_replay.highest_modseq, 0)]

    # The labels crossed the wire in Gmail's forms (modified UTF-7, quoted, "\\Sent") and were
    # decoded: the warehouse holds "Año 2026", not "A&APE-o 2026".
    answers = "\n".join(gmail_replay.answers())
    assert 'X-GM-LABELS (\\Inbox \\Important "Key Accounts" "A&APE-o 2026") UID 1 ' in answers
    assert 'X-GM-LABELS ("\\\\Sent" "Key Accounts") UID 2 ' in answers
    assert "X-GM-LABELS (R&AOk-unions) UID 6 " in answers

    # Discovery by LIST's \All attribute, one EXAMINE, header fields with Gmail's items, and
    # nothing that could change the mailbox (invariant 8): the exact exchange leaves no room for
    # SELECT, STORE or a FETCH of BODY[] without PEEK.
    commands = gmail_replay.commands()
    assert _verbs(commands) == [
        "CAPABILITY", "LOGIN", "LIST", "EXAMINE", "UID SEARCH", "UID FETCH", "LOGOUT",
    ]  # fmt: skip
    assert commands[2:6] == [
        'LIST "" "*"',
        'EXAMINE "[Gmail]/All Mail"',
        "UID SEARCH UID 1:6",
        f"UID FETCH 6,5,4,3,2,1 ({HEADER_FETCH})",  # history: newest first
    ]


def test_rerun_is_a_no_op_and_flags_come_through_changedsince(gmail_replay, warehouse_url):
    from inboxsync.sync import sync_inbox

    name = _register(warehouse_url, gmail_replay)
    sync_inbox(name, url=warehouse_url)
    first_modseq = gmail_replay.highest_modseq

    gmail_replay.clear_log()
    [again] = sync_inbox(name, url=warehouse_url).folders
    assert (again.fetched, again.flags_updated, again.expunged) == (0, 0, 0)
    fetches = [c for c in gmail_replay.commands() if c.startswith("UID FETCH")]
    assert fetches == [f"UID FETCH 1:* (FLAGS X-GM-LABELS) (CHANGEDSINCE {first_modseq})"]

    # Ana answers Bob's follow-up in the web UI: \Answered, and a higher MODSEQ.
    gmail_replay.set_flags(FOLLOW_UP, ("\\Answered", "\\Seen"))
    gmail_replay.clear_log()
    [changed] = sync_inbox(name, url=warehouse_url).folders
    assert (changed.fetched, changed.flags_updated, changed.expunged) == (0, 1, 0)
    assert [c for c in gmail_replay.commands() if c.startswith("UID FETCH")] == [
        f"UID FETCH 1:* (FLAGS X-GM-LABELS) (CHANGEDSINCE {first_modseq})"
    ]
    assert query(
        warehouse_url,
        "SELECT uid, flags FROM inboxsync.message_copies WHERE gm_msgid = %s",
        (FOLLOW_UP,),
    ) == [(3, ["\\Answered", "\\Seen"])]
    assert query(warehouse_url, "SELECT highest_modseq FROM inboxsync.sync_state") == [
        (first_modseq + 1,)
    ]

    # Bob files the follow-up under a new label: a label change is a change too.
    gmail_replay.set_labels(FOLLOW_UP, ("\\Inbox", "Clients/Año 2026"))
    [relabelled] = sync_inbox(name, url=warehouse_url).folders
    assert (relabelled.fetched, relabelled.flags_updated) == (0, 1)
    assert query(
        warehouse_url,
        "SELECT gm_labels FROM inboxsync.message_copies WHERE gm_msgid = %s",
        (FOLLOW_UP,),
    ) == [(["\\Inbox", "Clients/Año 2026"],)]


def test_uidvalidity_change_remaps_by_gmail_message_id(gmail_replay, warehouse_url):
    from inboxsync.sync import sync_inbox

    name = _register(warehouse_url, gmail_replay)
    sync_inbox(name, url=warehouse_url)

    # All Mail comes back with a new UIDVALIDITY and new UIDs, plus Ana's late reply.
    gmail_replay.recreate_folder(ALL_MAIL, uidvalidity=640_001, first_uid=101)
    gmail_replay.add_message(_late_reply())
    gmail_replay.clear_log()
    [folder] = sync_inbox(name, url=warehouse_url).folders

    assert folder.uidvalidity_changed
    assert (folder.remapped, folder.expunged, folder.fetched, folder.loaded) == (6, 0, 1, 1)
    assert query(
        warehouse_url,
        "SELECT uidvalidity, uid, gm_msgid::bigint, expunged_at IS NULL"
        " FROM inboxsync.message_copies ORDER BY uid",
    ) == [
        (640_001, 101, QUOTE, True),
        (640_001, 102, REPLY, True),
        (640_001, 103, FOLLOW_UP, True),
        (640_001, 104, NEWSLETTER, True),
        (640_001, 105, INTRO, True),
        (640_001, 106, ARCHIVED, True),  # no Message-ID: found by X-GM-MSGID alone
        (640_001, 107, LATE_REPLY, True),
    ]
    assert query(
        warehouse_url, "SELECT count(*), count(DISTINCT message_key) FROM inboxsync.messages"
    ) == [(7, 7)]
    assert query(
        warehouse_url,
        "SELECT gm_thrid::bigint FROM inboxsync.messages WHERE message_id = %s",
        ("quote-4@northwind.example",),
    ) == [(QUOTE,)]
    # Identities only for the re-map, then FLAGS of the known copies, and header fields of the
    # one new message: nothing known was downloaded again.
    fetches = [c for c in gmail_replay.commands() if c.startswith("UID FETCH")]
    assert fetches == [
        "UID FETCH 101:107 (BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)] X-GM-MSGID)",
        "UID FETCH 101:106 (FLAGS X-GM-LABELS)",
        f"UID FETCH 107 ({HEADER_FETCH})",
    ]


def test_folder_list_of_the_inbox_overrides_all_mail(gmail_replay, warehouse_url):
    from inboxsync.sync import sync_inbox

    name = _register(warehouse_url, gmail_replay, folders=[SENT_MAIL])
    [folder] = sync_inbox(name, url=warehouse_url).folders

    assert (folder.folder, folder.fetched) == (SENT_MAIL, 2)
    assert _copies(warehouse_url) == [
        (SENT_MAIL, 1, REPLY, QUOTE, ["\\Sent", "Key Accounts"], ["\\Seen"]),
        (SENT_MAIL, 2, INTRO, INTRO, ["\\Sent", "\\Starred", "2026"], ["\\Flagged", "\\Seen"]),
    ]
    commands = gmail_replay.commands()
    assert "LIST" not in _verbs(commands)  # the configured list needs no discovery
    assert [c for c in commands if c.startswith(("EXAMINE", "SELECT"))] == [
        'EXAMINE "[Gmail]/Sent Mail"'
    ]
