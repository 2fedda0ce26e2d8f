"""Mailboxes change under the sync: folders recreated, flags set, messages deleted and moved.

Both paths run against a real Dovecot: as it is (CONDSTORE and QRESYNC advertised) and a second
Dovecot whose `imap_capability` leaves them out, so flags come from a full FLAGS fetch and
deletions from a UID SEARCH difference.
"""

from __future__ import annotations

import ssl

import imapclient
import pytest

from tests.conftest import REPO, query, unique_user

pytestmark = pytest.mark.integration

NO_CONDSTORE_ROOT = REPO / ".local" / "test-nocondstore"
_PLAIN_CAPABILITIES = (
    "IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY THREAD=REFERENCES"
    " THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL CATENATE UNSELECT CHILDREN"
    " NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH"
    " LIST-STATUS BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE"
    " SPECIAL-USE"
)


@pytest.fixture(scope="module")
def no_condstore_services():
    """A second Dovecot (and PostgreSQL) that does not advertise CONDSTORE or QRESYNC."""
    from inboxsync import localenv

    svc = localenv.start(
        NO_CONDSTORE_ROOT,
        dovecot=localenv.DovecotExtras(
            settings=f"protocol imap {{\n  imap_capability = {_PLAIN_CAPABILITIES}\n}}\n"
        ),
    )
    yield svc
    svc.stop()


@pytest.fixture(params=["condstore", "plain"])
def server(request, services, no_condstore_services):
    return services if request.param == "condstore" else no_condstore_services


def _register(server, warehouse_url, *, folders=None) -> tuple[str, str, str]:
    from inboxsync import registry, warehouse

    user, password = unique_user("chg"), "chg-password-1"
    server.add_mail_user(user, password)
    name = user.split("@")[0]
    with warehouse.transaction(warehouse_url) as cur:
        registry.add_inbox(
            cur, name, host=server.host, port=server.imaps_port, security="ssl",
            username=user, password=password, owner_email=user, create_contacts=True,
            ca_file=str(server.ca_file), folders=folders,
        )  # fmt: skip
    return name, user, password


def _client(server, user: str, password: str) -> imapclient.IMAPClient:
    ctx = ssl.create_default_context(cafile=str(server.ca_file))
    client = imapclient.IMAPClient(server.host, port=server.imaps_port, ssl_context=ctx)
    client.login(user, password)
    return client


def _msg(n: int, to: str) -> bytes:
    return (
        f"From: Customer {n} <c{n}@globex.example>\r\nTo: {to}\r\nSubject: Order {n}\r\n"
        f"Date: Mon, 05 Oct 2026 10:{n:02d}:00 +0000\r\nMessage-ID: <order-{n}@globex.example>\r\n"
        f"\r\nbody {n}\r\n"
    ).encode()


def _verify_clean(name: str) -> None:
    from inboxsync.verify import verify_inbox

    checks = verify_inbox(name)
    assert all(c.ok for c in checks), checks


def test_capabilities_of_both_servers(services, no_condstore_services):
    from inboxsync.imap import ImapSession, ImapSettings

    def caps(svc):
        user = unique_user("caps")
        svc.add_mail_user(user, "pw-caps-1")
        cfg = ImapSettings(svc.host, svc.imaps_port, user, "pw-caps-1", "ssl", str(svc.ca_file))
        with ImapSession(cfg) as imap:
            return set(imap.capabilities())

    assert {"CONDSTORE", "QRESYNC"} <= caps(services)
    assert not {"CONDSTORE", "QRESYNC"} & caps(no_condstore_services)


def test_flags_deletions_and_moves(server, warehouse_url):
    from inboxsync.sync import sync_inbox

    name, user, password = _register(server, warehouse_url)
    server.deliver(user, "INBOX", [_msg(n, user) for n in range(1, 6)])
    first = sync_inbox(name, url=warehouse_url)
    assert first.fetched == 5
    key_of = dict(query(warehouse_url, "SELECT uid, message_key FROM inboxsync.message_copies"))

    client = _client(server, user, password)
    client.select_folder("INBOX")
    client.add_flags([1], [b"\\Seen"])
    client.add_flags([2], [b"\\Flagged", b"\\Answered"])
    client.delete_messages([3])
    client.expunge()
    client.move([4], "Sent")
    client.logout()

    second = sync_inbox(name, url=warehouse_url)
    inbox = {f.folder: f for f in second.folders}
    assert (inbox["INBOX"].flags_updated, inbox["INBOX"].expunged) == (2, 2)
    assert inbox["Sent"].fetched == 1  # the moved message's new copy; nothing else downloaded
    assert inbox["INBOX"].fetched == 0

    rows = query(
        warehouse_url,
        "SELECT folder, uid, flags, expunged_at IS NOT NULL FROM inboxsync.message_copies"
        " ORDER BY folder, uid",
    )
    assert rows == [
        ("INBOX", 1, ["\\Seen"], False),
        ("INBOX", 2, ["\\Answered", "\\Flagged"], False),
        ("INBOX", 3, [], True),
        ("INBOX", 4, [], True),
        ("INBOX", 5, [], False),
        ("Sent", 1, [], False),
    ]
    # The moved message is still one message, and its live copy followed it to Sent.
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.messages") == [(5,)]
    assert query(
        warehouse_url, "SELECT message_key FROM inboxsync.message_copies WHERE folder = 'Sent'"
    ) == [(key_of[4],)]
    _verify_clean(name)

    third = sync_inbox(name, url=warehouse_url)
    assert (third.fetched, sum(f.flags_updated + f.expunged for f in third.folders)) == (0, 0)


def test_recreated_folder_is_remapped_not_downloaded_again(server, warehouse_url):
    from inboxsync.sync import sync_inbox

    name, user, password = _register(server, warehouse_url, folders=["Projects"])
    client = _client(server, user, password)
    client.create_folder("Projects")
    for n in range(1, 11):
        client.append("Projects", _msg(n, user))
    first = sync_inbox(name, url=warehouse_url)
    assert first.fetched == 10
    old_uidvalidity = first.folders[0].uidvalidity

    # Recreate the folder: the same messages but two, plus three new ones, in another order.
    client.delete_folder("Projects")
    client.create_folder("Projects")
    for n in [*range(10, 2, -1), 11, 12, 13]:
        client.append("Projects", _msg(n, user))
    client.logout()

    second = sync_inbox(name, url=warehouse_url)
    folder = second.folders[0]
    assert folder.uidvalidity_changed and folder.uidvalidity != old_uidvalidity
    assert (folder.remapped, folder.expunged) == (8, 2)
    assert folder.fetched == 3  # only the new messages' headers were downloaded
    live = query(
        warehouse_url,
        "SELECT c.uid, m.message_id FROM inboxsync.message_copies c JOIN inboxsync.messages m"
        " USING (message_key) WHERE c.expunged_at IS NULL AND c.uidvalidity = %s ORDER BY uid",
        (folder.uidvalidity,),
    )
    expected_order = [*range(10, 2, -1), 11, 12, 13]
    assert live == [(uid, f"order-{n}@globex.example") for uid, n in enumerate(expected_order, 1)]
    gone = query(
        warehouse_url,
        "SELECT c.uidvalidity, m.message_id FROM inboxsync.message_copies c"
        " JOIN inboxsync.messages m USING (message_key) WHERE c.expunged_at IS NOT NULL"
        " ORDER BY 2",
    )
    assert gone == [(old_uidvalidity, "order-1@globex.example"),
                    (old_uidvalidity, "order-2@globex.example")]  # fmt: skip
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.messages") == [(13,)]
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.message_copies") == [(13,)]
    _verify_clean(name)
    assert sync_inbox(name, url=warehouse_url).fetched == 0


def test_folder_names_with_non_ascii_spaces_and_quotes(services, warehouse_url):
    """Per-inbox folder lists override the default; odd names travel as modified UTF-7."""
    from inboxsync.sync import sync_inbox
    from inboxsync.verify import verify_inbox

    folders = ["Réunions/Équipe", "Project X", 'Quote "this"', "Архив"]
    name, user, password = _register(services, warehouse_url, folders=folders)
    client = _client(services, user, password)
    for n, folder in enumerate(folders, 1):
        client.create_folder(folder)
        client.append(folder, _msg(n, user))
    assert {f for _flags, _sep, f in client.list_folders()} >= set(folders)
    client.logout()

    result = sync_inbox(name, url=warehouse_url)
    assert [(f.folder, f.fetched) for f in result.folders] == [(f, 1) for f in folders]
    rows = query(
        warehouse_url,
        "SELECT c.folder, m.message_id FROM inboxsync.message_copies c"
        " JOIN inboxsync.messages m USING (message_key) ORDER BY m.message_id",
    )
    assert rows == [(f, f"order-{n}@globex.example") for n, f in enumerate(folders, 1)]
    assert sorted(c.folder for c in verify_inbox(name, url=warehouse_url) if c.ok) == sorted(
        folders
    )
