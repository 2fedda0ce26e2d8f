"""The sync against a real Dovecot and a real PostgreSQL.

Counts, idempotence, new mail, contacts, quarantine, and no message gaining \\Seen.
"""

from __future__ import annotations

import email
import email.policy
import time
from datetime import UTC, datetime

import pytest

from tests.conftest import query

pytestmark = pytest.mark.integration


def _message_id(raw: bytes) -> str | None:
    value = email.message_from_bytes(raw, policy=email.policy.compat32)["Message-ID"]
    return str(value).strip().strip("<>").strip() if value else None


def _message(
    n: int, *, sender: str, to: str, subject: str, in_reply_to: str | None = None
) -> bytes:
    lines = [
        f"From: Customer {n} <{sender}>",
        f"To: {to}",
        f"Subject: {subject}",
        f"Date: Mon, 05 Oct 2026 10:{n % 60:02d}:00 +0200",
        f"Message-ID: <msg-{n}@customer.example>",
    ]
    if in_reply_to:
        lines.append(f"In-Reply-To: <{in_reply_to}>")
    lines += ["Content-Type: text/plain; charset=utf-8", "", f"Body {n}", ""]
    return "\r\n".join(lines).encode()


def test_util_linux_archive_syncs_every_message(
    services, make_inbox, warehouse_url, imap, util_linux
):
    from inboxsync.sync import sync_inbox

    assert len(util_linux) == 3509
    inbox = make_inbox()
    services.deliver(inbox.username, "INBOX", util_linux)

    started = time.monotonic()
    result = sync_inbox(inbox.name, url=warehouse_url)
    seconds = time.monotonic() - started
    print(
        f"util-linux: {result.fetched} messages in {seconds:.2f} s,"
        f" {result.fetched / seconds:,.0f}/s"
    )

    inbox_result = {f.folder: f for f in result.folders}
    assert inbox_result["INBOX"].fetched == 3509
    assert inbox_result["INBOX"].loaded + inbox_result["INBOX"].quarantined == 3509
    assert inbox_result["INBOX"].quarantined == 0
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.message_copies")[0][0] == 3509
    expected_ids = {_message_id(raw) for raw in util_linux}
    assert None not in expected_ids
    loaded_ids = {
        row[0]
        for row in query(
            warehouse_url,
            "SELECT m.message_id FROM inboxsync.message_copies c JOIN inboxsync.messages m"
            " USING (message_key)",
        )
    }
    assert loaded_ids == expected_ids
    # Every copy keeps its raw header bytes.
    assert query(
        warehouse_url,
        "SELECT count(*) FROM inboxsync.message_copies WHERE length(raw_header) = 0",
    ) == [(0,)]

    # The sync never changed the mailbox: nothing gained \Seen.
    client = imap(inbox.username, inbox.password)
    client.select_folder("INBOX", readonly=True)
    flags = client.get_flags(client.search(["ALL"]))
    assert len(flags) == 3509
    assert not [uid for uid, f in flags.items() if b"\\Seen" in f]


def test_second_run_loads_nothing_and_new_mail_arrives_alone(
    services, make_inbox, warehouse_url, imap
):
    from inboxsync.sync import sync_inbox

    inbox = make_inbox()
    me = inbox.username
    first = [
        _message(n, sender=f"c{n}@globex.example", to=me, subject=f"Hello {n}") for n in range(20)
    ]
    services.deliver(inbox.username, "INBOX", first)
    services.deliver(inbox.username, "Sent", [
        _message(100, sender=me, to="c1@globex.example", subject="Re: Hello 1",
                 in_reply_to="msg-1@customer.example")
    ])  # fmt: skip

    r1 = sync_inbox(inbox.name, url=warehouse_url)
    assert {f.folder: f.fetched for f in r1.folders} == {"INBOX": 20, "Sent": 1}
    snapshot = query(
        warehouse_url, "SELECT uid, folder, message_key FROM inboxsync.message_copies ORDER BY 1, 2"
    )

    r2 = sync_inbox(inbox.name, url=warehouse_url)
    assert r2.fetched == 0
    assert {f.folder: f.fetched for f in r2.folders} == {"INBOX": 0, "Sent": 0}
    assert (
        query(
            warehouse_url,
            "SELECT uid, folder, message_key FROM inboxsync.message_copies ORDER BY 1, 2",
        )
        == snapshot
    )

    # New mail through a real IMAP APPEND arrives, and only it.
    client = imap(inbox.username, inbox.password)
    for n in (200, 201, 202):
        client.append("INBOX", _message(n, sender="new@initech.example", to=me, subject=f"New {n}"))
    r3 = sync_inbox(inbox.name, url=warehouse_url)
    assert {f.folder: f.fetched for f in r3.folders} == {"INBOX": 3, "Sent": 0}
    rows = query(
        warehouse_url,
        "SELECT m.message_id FROM inboxsync.message_copies c"
        " JOIN inboxsync.messages m USING (message_key)"
        " WHERE c.uid > 20 AND c.folder = 'INBOX' ORDER BY 1",
    )
    assert rows == [
        ("msg-200@customer.example",),
        ("msg-201@customer.example",),
        ("msg-202@customer.example",),
    ]
    state = query(
        warehouse_url,
        "SELECT folder, last_uid, messages_on_server, last_error FROM inboxsync.sync_state"
        " ORDER BY folder",
    )
    assert state == [("INBOX", 23, 23, None), ("Sent", 1, 1, None)]


def test_direction_contacts_and_one_message_across_inboxes(services, make_inbox, warehouse_url):
    from inboxsync.sync import sync_inbox

    alice = make_inbox()
    bob = make_inbox()
    shared = _message(1, sender="José@Globex.Example", to=alice.username, subject="Quote")
    shared = shared.replace(b"To: ", b"Cc: " + bob.username.encode() + b"\r\nTo: ", 1)
    internal = _message(2, sender=alice.username, to=bob.username, subject="Lunch?")
    reply = _message(3, sender=alice.username, to="jose@globex.example", subject="Re: Quote",
                     in_reply_to="msg-1@customer.example")  # fmt: skip
    services.deliver(alice.username, "INBOX", [shared])
    services.deliver(alice.username, "Sent", [internal, reply])
    services.deliver(bob.username, "INBOX", [shared, internal])

    sync_inbox(alice.name, url=warehouse_url)
    sync_inbox(bob.name, url=warehouse_url)

    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.message_copies") == [(5,)]
    messages = query(
        warehouse_url, "SELECT message_id, direction, from_email FROM inboxsync.messages ORDER BY 1"
    )
    assert messages == [
        ("msg-1@customer.example", "inbound", "josé@globex.example"),
        ("msg-2@customer.example", "internal", alice.username),
        ("msg-3@customer.example", "outbound", alice.username),
    ]
    copies = query(
        warehouse_url,
        "SELECT count(DISTINCT inbox_id) FROM inboxsync.message_copies c"
        " JOIN inboxsync.messages m USING (message_key)"
        " WHERE m.message_id = 'msg-1@customer.example'",
    )
    assert copies == [(2,)]
    contacts = query(
        warehouse_url,
        "SELECT email, domain, is_team, display_name FROM inboxsync.contacts ORDER BY email",
    )
    assert contacts == sorted([
        ("josé@globex.example", "globex.example", False, "Customer 1"),
        ("jose@globex.example", "globex.example", False, None),
        (alice.username, "team.example", True, "Customer 3"),  # her latest message's name
        (bob.username, "team.example", True, None),
    ])  # fmt: skip


def test_create_contacts_switch_off_links_only_existing_contacts(
    services, make_inbox, warehouse_url
):
    from inboxsync.sync import sync_inbox

    on = make_inbox(create_contacts=True)
    off = make_inbox(create_contacts=False)
    services.deliver(
        on.username,
        "INBOX",
        [_message(1, sender="known@globex.example", to=on.username, subject="a")],
    )
    services.deliver(off.username, "INBOX", [
        _message(2, sender="known@globex.example", to=off.username, subject="b"),
        _message(3, sender="stranger@initech.example", to=off.username, subject="c"),
    ])  # fmt: skip
    sync_inbox(on.name, url=warehouse_url)
    before = query(
        warehouse_url, "SELECT email, last_seen_at FROM inboxsync.contacts ORDER BY email"
    )
    sync_inbox(off.name, url=warehouse_url)
    after = dict(query(warehouse_url, "SELECT email, last_seen_at FROM inboxsync.contacts"))

    assert set(after) == {e for e, _ in before}  # nobody new, the stranger included
    assert "stranger@initech.example" not in after
    # The known contact is linked: its last contact moved to the message seen in the other inbox.
    assert after["known@globex.example"] == datetime(2026, 10, 5, 8, 2, tzinfo=UTC)
    # The messages and their addresses are all there, contact or not.
    assert query(
        warehouse_url,
        "SELECT count(*) FROM inboxsync.message_addresses WHERE email = 'stranger@initech.example'",
    ) == [(1,)]


def test_malformed_message_is_quarantined_and_the_run_goes_on(services, make_inbox, warehouse_url):
    from inboxsync.sync import sync_inbox

    inbox = make_inbox()
    garbage = b"\x00\x01this is not a header at all\r\n\x02\x03 neither is this\r\n\r\nbody\r\n"
    good = [_message(n, sender="a@globex.example", to=inbox.username, subject="ok") for n in (1, 2)]
    services.deliver(inbox.username, "INBOX", [good[0], garbage, good[1]])
    result = sync_inbox(inbox.name, url=warehouse_url)
    assert (result.fetched, result.quarantined) == (3, 1)
    rows = query(warehouse_url, "SELECT reason, raw_header FROM inboxsync.quarantine")
    assert len(rows) == 1
    reason, raw = rows[0]
    assert reason.startswith(("no_header_fields", "empty_header", "no_identity"))
    assert bytes(raw)  # kept raw, not dropped
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.message_copies") == [(2,)]
    assert sync_inbox(inbox.name, url=warehouse_url).fetched == 0


def test_a_message_twice_in_a_batch_with_repeated_addresses_loads_once(
    services, make_inbox, warehouse_url
):
    # The merge inserts a message's addresses and references with plain INSERTs (no ON
    # CONFLICT): only for messages it has just inserted, one row per (role, email) and position.
    # Two copies in one batch, a third in another folder's batch, and the same address repeated
    # (in another case, and in To and Cc) must still give one message and one row per pair.
    from inboxsync.sync import sync_inbox

    inbox = make_inbox()
    raw = (
        "From: Ana <ana@globex.example>\r\n"
        f"To: {inbox.username}, Bea <BEA@globex.example>, bea@globex.example\r\n"
        f"Cc: {inbox.username.upper()}, bea@globex.example\r\n"
        "Subject: Twice\r\n"
        "Date: Mon, 05 Oct 2026 10:00:00 +0200\r\n"
        "Message-ID: <twice@globex.example>\r\n"
        "References: <a@globex.example> <b@globex.example> <a@globex.example>\r\n"
        "\r\nbody\r\n"
    ).encode()
    services.deliver(inbox.username, "INBOX", [raw, raw])
    services.deliver(inbox.username, "Sent", [raw])

    result = sync_inbox(inbox.name, url=warehouse_url)

    assert (result.fetched, result.quarantined) == (3, 0)
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.message_copies") == [(3,)]
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.messages") == [(1,)]
    addresses = query(
        warehouse_url, "SELECT role, email FROM inboxsync.message_addresses ORDER BY role, email"
    )
    assert addresses == [
        ("cc", "bea@globex.example"),
        ("cc", inbox.username),
        ("from", "ana@globex.example"),
        ("to", "bea@globex.example"),
        ("to", inbox.username),
    ]
    references = query(
        warehouse_url,
        "SELECT ref_message_id FROM inboxsync.message_references ORDER BY position",
    )
    assert references == [("a@globex.example",), ("b@globex.example",)]


def test_removing_an_inbox_removes_its_copies_and_stops_its_loading(
    services, make_inbox, warehouse_url
):
    """The copies' inbox is checked once per batch (migration 0011), not per copy by a foreign
    key: removing the inbox still removes its copies, and a batch that arrives for it afterwards
    (a sync that was running) fails, naming the inbox, and writes nothing."""
    from inboxsync import load, registry, warehouse
    from inboxsync.imap import FetchedCopy
    from inboxsync.sync import sync_inbox

    inbox = make_inbox()
    kept = make_inbox()
    for each in (inbox, kept):
        services.deliver(each.username, "INBOX", [
            _message(1, sender="ana@customer.example", to=each.username, subject="Quote"),
        ])  # fmt: skip
        assert sync_inbox(each.name, url=warehouse_url).fetched == 1
    ((inbox_id,),) = query(
        warehouse_url, "SELECT inbox_id FROM inboxsync.inboxes WHERE name = %s", (inbox.name,)
    )
    with warehouse.transaction(warehouse_url) as cur:
        registry.remove_inbox(cur, inbox.name)
    copies = "SELECT inbox_id = %s, count(*) FROM inboxsync.message_copies GROUP BY 1"
    assert query(warehouse_url, copies, (inbox_id,)) == [(False, 1)]

    team = frozenset({inbox.username})
    raw = _message(2, sender="bo@customer.example", to=inbox.username, subject="Late")
    staged = load.stage_batch(load.build_batch([FetchedCopy(2, raw, (), None, None)], team), team)
    with (
        pytest.raises(load.InboxRemoved, match=f"inbox {inbox_id} was removed"),
        warehouse.transaction(warehouse_url) as cur,
    ):
        load.write_batch(cur, staged, inbox_id=inbox_id, folder="INBOX", uidvalidity=1,
                         last_uid=2, create_contacts=True, created_by="test")  # fmt: skip
    assert query(warehouse_url, copies, (inbox_id,)) == [(False, 1)]
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.messages") == [(1,)]


def test_an_inbox_removed_while_it_syncs_stops_the_sync_and_skips_its_task(
    services, make_inbox, warehouse_url, monkeypatch
):
    """Removed mid-run, an inbox's sync stops at its next batch, names the inbox, and leaves
    nothing of it; an Airflow task for an inbox removed before or while it runs is skipped, not
    failed and retried (no retry can sync it)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from inboxsync import registry, tasks, warehouse
    from inboxsync.sync import sync_inbox

    inbox = make_inbox()
    services.deliver(inbox.username, "INBOX", [
        _message(n, sender=f"c{n}@customer.example", to=inbox.username, subject=f"Quote {n}")
        for n in range(1, 7)
    ])  # fmt: skip
    batches = []

    def remove_after_the_first_batch(result) -> None:
        batches.append(result.loaded)
        if len(batches) == 1:
            with warehouse.transaction(warehouse_url) as cur:
                registry.remove_inbox(cur, inbox.name)

    with pytest.raises(registry.UnknownInbox, match="was removed while it synced"):
        sync_inbox(
            inbox.name, url=warehouse_url, batch_size=2, on_batch=remove_after_the_first_batch
        )
    assert batches == [2]
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.message_copies") == [(0,)]
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.sync_state") == [(0,)]
    # The sync let go of its lock: nothing waits for a sync that is gone.
    assert query(warehouse_url, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [
        (0,)
    ]

    monkeypatch.setenv("AIRFLOW_CONN_INBOXSYNC_WAREHOUSE", warehouse_url)
    with pytest.raises(AirflowSkipException, match=f"inbox {inbox.name!r} is no longer connected"):
        tasks._run(inbox.name, budget=None)


def test_a_contacts_name_is_the_one_on_its_latest_message_in_any_load_order(
    services, make_inbox, warehouse_url
):
    """A contact takes the display name of its latest message that has one (by Date), whatever
    order batches and inboxes load in; a later message without a name keeps it; a name given by
    hand stays (migration 0013)."""
    from inboxsync import registry, warehouse
    from inboxsync.sync import sync_inbox

    def mail(n: int, sender: str, minute: int) -> bytes:
        return (
            f"From: {sender}\r\nTo: team@team.example\r\nSubject: n{n}\r\n"
            f"Date: Mon, 05 Oct 2026 10:{minute:02d}:00 +0000\r\n"
            f"Message-ID: <name-{n}@customer.example>\r\n\r\nBody\r\n"
        ).encode()

    ana = "ana@customer.example"
    first = [  # delivered in this order (UIDs 1-4): the latest Date is not the highest UID
        mail(1, f"Ana <{ana}>", 1),
        mail(2, f"Ana L\u00f3pez <{ana}>", 3),
        mail(3, f"A. L\u00f3pez <{ana}>", 2),
        mail(4, ana, 4),  # the latest message has no name: the name stays
        mail(5, "Bo Smith <bo@customer.example>", 5),
    ]
    names = "SELECT email, display_name FROM inboxsync.contacts WHERE email LIKE '%%@customer.%%'"

    def register(url: str, inbox) -> str:
        with warehouse.transaction(url) as cur:
            registry.add_inbox(
                cur, f"{inbox.name} here", host=services.host, port=services.imaps_port,
                security="ssl", username=inbox.username, password=inbox.password,
                owner_email=inbox.username, create_contacts=True, ca_file=str(services.ca_file),
            )  # fmt: skip
        return f"{inbox.name} here"

    found = {}
    for batch_size in (1, 2, 5):
        url = services.create_database(
            f"{warehouse_url.rsplit('/', 1)[1]}_n{batch_size}", drop=True
        )
        warehouse.migrate(url)
        inbox = make_inbox()
        name = register(url, inbox)
        with warehouse.transaction(url) as cur:  # a contact whose name a person gave
            cur.execute(
                "INSERT INTO inboxsync.contacts (email, display_name, domain, created_by)"
                " VALUES ('bo@customer.example', 'Bo (key account)', 'customer.example', 'manual')"
            )
        services.deliver(inbox.username, "INBOX", first)
        sync_inbox(name, url=url, batch_size=batch_size)
        found[batch_size] = sorted(query(url, names))
    assert (
        found[1]
        == found[2]
        == found[5]
        == [
            (ana, "Ana L\u00f3pez"),
            ("bo@customer.example", "Bo (key account)"),
        ]
    )

    # Later mail in another inbox: an older name does not replace the contact's, a newer one does.
    other_inbox = make_inbox()
    other = register(url, other_inbox)
    services.deliver(other_inbox.username, "INBOX", [mail(6, f"Ana (old) <{ana}>", 0)])
    sync_inbox(other, url=url)
    contact = "SELECT display_name, display_name_at FROM inboxsync.contacts WHERE email = %s"
    assert query(url, contact, (ana,)) == [
        ("Ana L\u00f3pez", datetime(2026, 10, 5, 10, 3, tzinfo=UTC))
    ]
    services.deliver(other_inbox.username, "INBOX", [mail(7, f"Ana L\u00f3pez Ruiz <{ana}>", 9)])
    sync_inbox(other, url=url)
    assert query(url, contact, (ana,)) == [
        ("Ana L\u00f3pez Ruiz", datetime(2026, 10, 5, 10, 9, tzinfo=UTC))
    ]


def test_a_warehouse_that_does_not_compare_bytes_is_named_once_per_process(
    services, warehouse_url, caplog
):
    import psycopg2

    from inboxsync import warehouse

    with warehouse.transaction(warehouse_url) as cur:  # the harness creates C databases
        assert warehouse.slow_collation(cur) is None
    name = warehouse_url.rsplit("/", 1)[1] + "_icu"
    admin = psycopg2.connect(services.pg_url("postgres"))
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            cur.execute("SHOW server_version_num")
            if int(cur.fetchone()[0]) < 150000:
                pytest.skip("ICU databases need PostgreSQL 15")
            # ICU sorts the database's text whatever its libc locale says.
            cur.execute(
                f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu"
                " ICU_LOCALE 'en-US' LOCALE 'C'"
            )
            cur.execute(f"DROP DATABASE IF EXISTS {name}_utf8 WITH (FORCE)")
            cur.execute(f"CREATE DATABASE {name}_utf8 TEMPLATE template0 LOCALE 'C.UTF-8'")
    finally:
        admin.close()
    with warehouse.transaction(services.pg_url(f"{name}_utf8")) as cur:
        assert warehouse.slow_collation(cur) == "libc collation C.UTF-8"
    url = services.pg_url(name)
    with caplog.at_level("WARNING", logger="inboxsync.warehouse"):
        assert warehouse.migrate(url)  # a new warehouse: every migration applies
        assert warehouse.migrate(url) == []
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert f"warehouse database {name} sorts text by the rules of ICU locale en-US" in warnings[0]
    assert "LC_COLLATE 'C'" in warnings[0]


def test_names_loaded_before_migration_0013_give_way_to_later_mail_and_hand_given_ones_stay(
    services, warehouse_url
):
    from inboxsync import warehouse

    url = services.create_database(warehouse_url.rsplit("/", 1)[1] + "_m13", drop=True)
    warehouse.migrate(url)
    with warehouse.transaction(url) as cur:  # back to the warehouse as 0012 left it
        cur.execute("ALTER TABLE inboxsync.contacts DROP COLUMN display_name_at")
        cur.execute("DROP FUNCTION inboxsync.takes_name")
        cur.execute("DELETE FROM inboxsync.schema_migrations WHERE version LIKE '0013%%'")
        cur.execute(
            "INSERT INTO inboxsync.contacts (email, display_name, domain, created_by) VALUES"
            " ('a@x.example', 'From mail', 'x.example', 'sync:Sales'),"
            " ('b@x.example', 'By hand', 'x.example', 'manual'),"
            " ('c@x.example', NULL, 'x.example', 'sync:Sales')"
        )
    assert warehouse.migrate(url) == ["0013_contact_name_latest"]
    rows = "SELECT email, display_name, display_name_at::text FROM inboxsync.contacts ORDER BY 1"
    assert query(url, rows) == [
        ("a@x.example", "From mail", "-infinity"),
        ("b@x.example", "By hand", None),
        ("c@x.example", None, None),
    ]
    # The merge's rule, as the load applies it to each of them: a name from dated mail replaces
    # an undated one; between undated names (or equal dates) the greater name wins, as within a
    # batch; a name given by hand stays; a missing name is filled.
    takes = "SELECT inboxsync.takes_name(display_name, display_name_at, %s, %s) FROM"
    takes += " inboxsync.contacts ORDER BY email"
    assert query(url, takes, ("New", "2026-10-05")) == [(True,), (False,), (True,)]
    assert query(url, takes, ("Alpha", "-infinity")) == [(False,), (False,), (True,)]
    assert query(url, takes, ("Zed", "-infinity")) == [(True,), (False,), (True,)]


def test_a_message_without_date_dates_its_contacts_by_its_earliest_copy(make_inbox, warehouse_url):
    # Contacts' first and last seen come from Date, or, without one, from the earliest
    # INTERNALDATE of the message's copies in the batch (the copies themselves go to
    # message_copies by binary COPY, not through a staging table the merge could read).
    from inboxsync import load, warehouse
    from inboxsync.imap import FetchedCopy

    inbox = make_inbox()
    ((inbox_id,),) = query(
        warehouse_url, "SELECT inbox_id FROM inboxsync.inboxes WHERE name = %s", (inbox.name,)
    )
    undated = (
        b"From: Ana <ana@globex.example>\r\nTo: bea@globex.example\r\n"
        b"Message-ID: <undated@globex.example>\r\nSubject: no date\r\n\r\n"
    )
    dated = _message(7, sender="cy@globex.example", to="bea@globex.example", subject="Dated")
    copies = [
        FetchedCopy(1, undated, (), datetime(2026, 3, 2, 9, 0, tzinfo=UTC), None),
        FetchedCopy(2, undated, (), datetime(2026, 3, 1, 9, 0, tzinfo=UTC), None),
        FetchedCopy(3, dated, (), datetime(2026, 3, 9, 9, 0, tzinfo=UTC), None),
    ]
    team = frozenset({inbox.username})
    staged = load.stage_batch(load.build_batch(copies, team), team)
    with warehouse.transaction(warehouse_url) as cur:
        load.write_batch(cur, staged, inbox_id=inbox_id, folder="INBOX", uidvalidity=1,
                         last_uid=3, create_contacts=True, created_by="test")  # fmt: skip
    seen = query(
        warehouse_url,
        "SELECT email, first_seen_at, last_seen_at FROM inboxsync.contacts ORDER BY email",
    )
    march_1 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    october_5 = datetime(2026, 10, 5, 8, 7, tzinfo=UTC)  # _message(7)'s Date, +0200
    assert seen == [
        ("ana@globex.example", march_1, march_1),
        ("bea@globex.example", march_1, october_5),
        ("cy@globex.example", october_5, october_5),
    ]
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.message_copies") == [(3,)]
    # Its name is dated the same way; a message with neither date names at -infinity, below
    # any dated name, and takes a name only where none is known.
    nameless = (
        b"From: Ana Undated <ana@globex.example>\r\nTo: Dee <dee@globex.example>\r\n"
        b"Message-ID: <nodate@globex.example>\r\nSubject: no date at all\r\n\r\n"
    )
    staged = load.stage_batch(
        load.build_batch([FetchedCopy(4, nameless, (), None, None)], team), team
    )
    with warehouse.transaction(warehouse_url) as cur:
        load.write_batch(cur, staged, inbox_id=inbox_id, folder="INBOX", uidvalidity=1,
                         last_uid=4, create_contacts=True, created_by="test")  # fmt: skip
    names = query(
        warehouse_url,
        "SELECT email, display_name, display_name_at::text, first_seen_at FROM inboxsync.contacts"
        " WHERE email IN ('ana@globex.example', 'dee@globex.example') ORDER BY email",
    )
    assert names == [
        ("ana@globex.example", "Ana", "2026-03-01 09:00:00+00", march_1),
        ("dee@globex.example", "Dee", "-infinity", None),
    ]


def test_a_checkpoint_moved_back_loads_its_copies_again_without_duplicates(
    services, make_inbox, warehouse_url, imap
):
    # A batch's copies go to message_copies by a plain COPY: its UIDs are past the checkpoint,
    # so no row exists. When the checkpoint is moved back by hand, the COPY meets the existing
    # rows, and the batch merges them instead (flags fetched now, no longer expunged).
    from inboxsync import warehouse
    from inboxsync.sync import sync_inbox

    inbox = make_inbox()
    services.deliver(inbox.username, "INBOX", [
        _message(n, sender="ana@customer.example", to=inbox.username, subject=f"M{n}")
        for n in (1, 2, 3)
    ])  # fmt: skip
    assert sync_inbox(inbox.name, url=warehouse_url).fetched == 3
    client = imap(inbox.username, inbox.password)
    client.select_folder("INBOX")
    client.add_flags([2], [b"\\Flagged"])
    with warehouse.transaction(warehouse_url) as cur:
        cur.execute("UPDATE inboxsync.message_copies SET expunged_at = now() WHERE uid = 3")
        cur.execute("UPDATE inboxsync.sync_state SET last_uid = 0, highest_modseq = NULL")

    result = sync_inbox(inbox.name, url=warehouse_url)

    assert (result.fetched, result.quarantined) == (3, 0)
    copies = query(
        warehouse_url,
        "SELECT uid, flags, expunged_at IS NULL FROM inboxsync.message_copies ORDER BY uid",
    )
    assert copies == [(1, [], True), (2, ["\\Flagged"], True), (3, [], True)]
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.messages") == [(3,)]


def test_a_sync_runs_with_fewer_collections_and_gives_the_process_its_thresholds_back(
    services, make_inbox, warehouse_url
):
    """The garbage collector's first threshold is raised for the sync (inboxsync.collector):
    in the sync's own thread while it loads, and back to the process's own after it, whether
    it succeeded or failed."""
    import gc

    from inboxsync import settings
    from inboxsync.imap import InboxAuthError
    from inboxsync.sync import sync_inbox

    inbox = make_inbox()
    services.deliver(inbox.username, "INBOX", [
        _message(n, sender=f"c{n}@globex.example", to=inbox.username, subject=f"Hi {n}")
        for n in range(5)
    ])  # fmt: skip
    before = gc.get_threshold()
    during: list[tuple[int, int, int]] = []
    sync_inbox(inbox.name, url=warehouse_url, batch_size=2, on_batch=lambda _: during.append(
        gc.get_threshold()))  # fmt: skip
    assert during == [(settings.GC_GENERATION0, *before[1:])] * 3
    assert gc.get_threshold() == before

    refused = make_inbox(register_password="not-the-password")
    with pytest.raises(InboxAuthError):
        sync_inbox(refused.name, url=warehouse_url)
    assert gc.get_threshold() == before
