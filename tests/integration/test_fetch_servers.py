"""The fast FETCH reader against servers: the same copies as IMAPClient's parser gives.

Dovecot: a folder holds the util-linux list archive (3,509 real messages from
../shared/corpora/lists), some with flags and keywords set through IMAP STORE, plus messages
APPENDed with INTERNALDATEs in several time zones. ``fetch_headers`` reads it in batches of 1,000,
on the session the sync uses (QRESYNC enabled, folder EXAMINEd), and each batch is compared with
``fetch_headers`` as it was (IMAPClient's ``fetch`` and parser, ``imapclient_fetch_headers`` of
the unit tests), field by field with types and time zones. ``fetch_ids`` and ``changed_flags``
(CHANGEDSINCE) go through the same comparison, against the reader switched off.

Gmail: the Gmail-format replay of ``test_gmail_replay`` (X-GM-* items first, labels quoted, in
modified UTF-7, of digits), compared the same way.

Every answer must have been read by the fast reader itself, not handed to IMAPClient's parser.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.conftest import unique_user
from tests.gmail_replay import ALL_MAIL, GmailReplay
from tests.integration.test_gmail_replay import ANA, APP_PASSWORD, _mailbox
from tests.unit.test_fetch_reader import canon, imapclient_fetch_headers

pytestmark = pytest.mark.integration

ZONES = (timedelta(0), timedelta(hours=-5), timedelta(hours=5, minutes=30), timedelta(hours=14))


def _spy(monkeypatch) -> list[bool]:
    """Record, per call of the reader, whether it read the answer itself."""
    from inboxsync import imap as imap_module

    read_by: list[bool] = []
    reader = imap_module.read_fetch_response

    def spy(data, normalise_times=False):
        result = reader(data, normalise_times)
        read_by.append(result is not None)
        return result

    monkeypatch.setattr(imap_module, "read_fetch_response", spy)
    return read_by


def _reader_off(monkeypatch) -> None:
    """Every answer to IMAPClient's parser: ``_fetch_set`` as it was."""
    from inboxsync import imap as imap_module

    monkeypatch.setattr(imap_module, "read_fetch_response", lambda data, n=False: None)


def test_fetch_headers_reads_dovecot_as_imapclient_does(
    services, imap, util_linux, monkeypatch
) -> None:
    from inboxsync.imap import ImapSession, ImapSettings

    user, password = unique_user("fetch"), "fetch-secret"
    services.add_mail_user(user, password)
    services.deliver(user, "INBOX", util_linux)
    client = imap(user, password)
    for n, zone in enumerate(ZONES):
        when = datetime(2026, 3, 29, 1, 30, n, tzinfo=timezone(zone))
        message = f"From: a{n}@b.example\r\nSubject: zone {n}\r\nMessage-ID: <z{n}@b>\r\n\r\nx\r\n"
        client.append("INBOX", message.encode(), flags=(b"$Zone",), msg_time=when)
    client.select_folder("INBOX")
    client.add_flags(range(1, 600), [b"\\Seen"])
    client.add_flags(range(300, 320), [b"\\Flagged", b"$Forwarded", b"Project-X", b"$label1"])
    client.add_flags(range(1000, 1010), [b"\\Answered", b"\\Draft"])
    client.logout()
    total = len(util_linux) + len(ZONES)

    cfg = ImapSettings(
        host=services.host,
        port=services.imaps_port,
        username=user,
        password=password,
        ca_file=str(services.ca_file),
    )
    with ImapSession(cfg) as session:
        assert session.enable_qresync()
        status = session.examine("INBOX")
        uids = session.all_uids()
        assert len(uids) == status.exists == total
        copies = []
        read_by = _spy(monkeypatch)
        for start in range(0, len(uids), 1000):
            batch = uids[start : start + 1000]
            new = session.fetch_headers(batch)
            assert canon(new) == canon(imapclient_fetch_headers(session, batch))
            copies += new
        assert read_by == [True] * 4  # every batch read by the fast reader

        # _fetch_set: Message-IDs, and flag changes under CONDSTORE (MODSEQ in each answer).
        read_by.clear()
        ids = session.fetch_ids(uids)
        flags = session.changed_flags(1, uids)
        assert read_by == [True, True]
        _reader_off(monkeypatch)
        assert canon(ids) == canon(session.fetch_ids(uids))
        assert canon(flags) == canon(session.changed_flags(1, uids))

    assert [c.uid for c in copies] == uids
    assert all(c.raw_header and c.size and c.internal_date for c in copies)
    assert sum("\\Seen" in c.flags for c in copies) == 599
    assert [c.flags for c in copies if "Project-X" in c.flags] == [
        ("$Forwarded", "$label1", "Project-X", "\\Flagged", "\\Seen")
    ] * 20
    zoned = [c for c in copies if c.flags == ("$Zone",)]
    assert [c.internal_date for c in zoned] == [
        datetime(2026, 3, 29, 1, 30, n, tzinfo=timezone(z)) for n, z in enumerate(ZONES)
    ]
    assert len(ids) == total
    assert all(raw.lower().startswith(b"message-id:") for raw, _ in ids.values())
    assert len(flags.flags) == total and flags.highest_modseq is not None


def test_fetch_headers_reads_the_gmail_replay_as_imapclient_does(monkeypatch) -> None:
    from inboxsync.imap import ImapSession, ImapSettings

    with GmailReplay(ANA, APP_PASSWORD, _mailbox()) as gmail:
        cfg = ImapSettings(
            host=gmail.host, port=gmail.port, username=ANA, password=APP_PASSWORD, security="none"
        )
        with ImapSession(cfg) as session:
            session.examine(ALL_MAIL)
            uids = session.all_uids()[::-1]
            read_by = _spy(monkeypatch)
            new = session.fetch_headers(uids)
            ids = session.fetch_ids(uids)
            flags = session.changed_flags(None, uids)
            assert read_by == [True, True, True]
            assert canon(new) == canon(imapclient_fetch_headers(session, uids))
            _reader_off(monkeypatch)
            assert canon(ids) == canon(session.fetch_ids(uids))
            assert canon(flags) == canon(session.changed_flags(None, uids))
    assert [c.uid for c in new] == [6, 5, 4, 3, 2, 1]
    assert [c.gm_labels for c in new][2:] == [
        ("\\Inbox", "Newsletters & Digests"),
        ("\\Inbox", "\\Important", "Key Accounts", 'Follow-up "urgent"'),
        ("\\Sent", "Key Accounts"),
        ("\\Inbox", "\\Important", "Key Accounts", "Año 2026"),
    ]
    assert new[1].gm_labels == ("\\Sent", "\\Starred", "2026")  # a label of digits
