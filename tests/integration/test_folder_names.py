"""Hostile and non-ASCII names reach SQL only as bound parameters: folders named
``x"; DROP TABLE inboxsync.messages; --`` and ``Входящие клиентов`` (and an inbox named like
Bobby Tables) sync like any other folder, and the warehouse keeps their exact names.

Dovecot's default Maildir++ layout refuses "." in a folder name, so this test's mail user gets
``LAYOUT=fs`` through a userdb field of its passwd-file entry (the shared config is unchanged);
the server then stores the name exactly, as Gmail or Exchange would.
"""

from __future__ import annotations

import pytest

from tests.conftest import query, unique_user

pytestmark = pytest.mark.integration

EVIL = 'x"; DROP TABLE inboxsync.messages; --'
CYRILLIC = "Входящие клиентов"
INBOX_NAME = "Bobby'); DROP TABLE inboxsync.inboxes; --"


def _mail(n: int, to: str, *, msg_id: str | None = None) -> bytes:
    return (
        f"From: Client {n} <c{n}@globex.example>\r\nTo: {to}\r\nSubject: folder test {n}\r\n"
        f"Date: Mon, 05 Oct 2026 10:{n:02d}:00 +0000\r\n"
        f"Message-ID: <{msg_id or f'folder-{n}@globex.example'}>\r\n\r\nbody {n}\r\n"
    ).encode()


def _fs_layout_user(services, user: str, password: str) -> None:
    """A mail user whose folders may hold any character (Dovecot's LAYOUT=fs)."""
    services.add_mail_user(user, password)
    entry = services.root / "dovecot" / "users" / user
    entry.write_text(entry.read_text().rstrip("\n") + "userdb_mail=maildir:~/fs:LAYOUT=fs\n")


def test_hostile_and_cyrillic_folder_names_sync_like_any_other(services, warehouse_url, imap):
    from inboxsync import registry, warehouse
    from inboxsync.sync import sync_inbox
    from inboxsync.verify import verify_inbox

    user, password = unique_user("folders"), "folders-pw-1"
    _fs_layout_user(services, user, password)
    client = imap(user, password)
    for folder in (EVIL, CYRILLIC):
        client.create_folder(folder)
    assert {name for _, _, name in client.list_folders()} == {"INBOX", "Sent", EVIL, CYRILLIC}
    client.append("INBOX", _mail(1, user))
    client.append(EVIL, _mail(2, user))
    client.append(EVIL, _mail(3, user, msg_id="shared@globex.example"))
    client.append(EVIL, b"X-Nothing: here\r\n\r\nno identity\r\n")  # quarantined
    client.append(CYRILLIC, _mail(4, user))
    client.append(CYRILLIC, _mail(5, user, msg_id="shared@globex.example"))

    with warehouse.transaction(warehouse_url) as cur:
        inbox = registry.add_inbox(
            cur, INBOX_NAME, host=services.host, port=services.imaps_port, security="ssl",
            username=user, password=password, owner_email=user, create_contacts=True,
            ca_file=str(services.ca_file), folders=["INBOX", EVIL, CYRILLIC],
        )  # fmt: skip
    assert inbox.folders == ["INBOX", EVIL, CYRILLIC]

    result = sync_inbox(INBOX_NAME, url=warehouse_url)
    again = sync_inbox(INBOX_NAME, url=warehouse_url)

    assert {f.folder: (f.loaded, f.quarantined) for f in result.folders} == {
        "INBOX": (1, 0), EVIL: (2, 1), CYRILLIC: (2, 0),
    }  # fmt: skip
    assert again.fetched == 0
    # The tables are all there, and hold the names exactly.
    assert query(
        warehouse_url,
        "SELECT to_regclass('inboxsync.messages') IS NOT NULL,"
        " to_regclass('inboxsync.inboxes') IS NOT NULL",
    ) == [(True, True)]
    assert query(warehouse_url, "SELECT name FROM inboxsync.inboxes") == [(INBOX_NAME,)]
    assert sorted(
        query(
            warehouse_url,
            "SELECT c.folder, m.message_id FROM inboxsync.message_copies c"
            " JOIN inboxsync.messages m USING (message_key)",
        )
    ) == sorted([
        ("INBOX", "folder-1@globex.example"),
        (EVIL, "folder-2@globex.example"),
        (EVIL, "shared@globex.example"),
        (CYRILLIC, "folder-4@globex.example"),
        (CYRILLIC, "shared@globex.example"),
    ])  # fmt: skip
    # One email in two folders is one message with two copies.
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.messages") == [(4,)]
    assert query(warehouse_url, "SELECT folder, reason FROM inboxsync.quarantine") == [
        (EVIL, "empty_header: only whitespace")
    ]  # none of the fetched header fields
    assert sorted(query(warehouse_url, "SELECT folder, last_uid FROM inboxsync.sync_state")) == (
        sorted([("INBOX", 1), (EVIL, 3), (CYRILLIC, 2)])
    )
    checks = verify_inbox(INBOX_NAME, url=warehouse_url)
    assert [(c.folder, c.on_server, c.in_warehouse, c.ok) for c in checks] == [
        ("INBOX", 1, 1, True), (EVIL, 3, 3, True), (CYRILLIC, 2, 2, True),
    ]  # fmt: skip
