"""Reply flags and reply events on a real Dovecot and PostgreSQL, scenarios with known answers.

Every inbox is synced once while empty first, so that the mail delivered afterwards is new mail;
mail already in a folder at its first sync is history (see test_replies_history.py).
"""

from __future__ import annotations

import pytest

from tests.conftest import query

pytestmark = pytest.mark.integration

CAROL = "carol@customer.example"
DAVE = "dave@customer.example"
EVE = "eve@gone.example"


def mail(
    mid: str,
    sender: str,
    to: str,
    subject: str,
    date: str,
    *,
    cc: str | None = None,
    reply_to_id: str | None = None,
    headers: tuple[str, ...] = (),
) -> bytes:
    """A small RFC 5322 message; ``reply_to_id`` sets In-Reply-To and References."""
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject}", f"Date: {date}",
             f"Message-ID: <{mid}>"]  # fmt: skip
    if cc:
        lines.append(f"Cc: {cc}")
    if reply_to_id:
        lines += [f"In-Reply-To: <{reply_to_id}>", f"References: <{reply_to_id}>"]
    lines += [*headers, "Content-Type: text/plain; charset=utf-8", "", "Body", ""]
    return "\r\n".join(lines).encode()


def connected(services, make_inbox, url):
    """A new inbox, synced once while empty (its first sync, which is history, loads nothing)."""
    from inboxsync.sync import sync_inbox

    inbox = make_inbox()
    services.maildir(inbox.username, "Sent")
    assert sync_inbox(inbox.name, url=url).fetched == 0
    return inbox


def flags(url: str) -> list[tuple]:
    return query(
        url,
        "SELECT m.message_id, f.recipient_email, f.replied, r.message_id, f.response_seconds,"
        " f.history FROM inboxsync.reply_flags f JOIN inboxsync.messages m USING (message_key)"
        " LEFT JOIN inboxsync.messages r ON r.message_key = f.reply_message_key ORDER BY 1, 2",
    )


def events(url: str) -> list[tuple]:
    return query(
        url,
        "SELECT e.event_id, m.message_id, e.recipient_email, r.message_id"
        " FROM inboxsync.reply_events e JOIN inboxsync.messages m USING (message_key)"
        " JOIN inboxsync.messages r ON r.message_key = e.reply_message_key ORDER BY 1",
    )


def test_reply_in_colleagues_inbox_counts_auto_reply_bounce_and_list_mail_do_not(
    services, make_inbox, warehouse_url, imap
):
    from inboxsync.sync import sync_inbox

    alice = connected(services, make_inbox, warehouse_url)
    bob = connected(services, make_inbox, warehouse_url)
    a, b = alice.username, bob.username
    services.deliver(a, "Sent", [
        mail("o1@team.example", a, CAROL, "Offer", "Mon, 05 Oct 2026 09:00:00 +0000", cc=b),
        mail("o2@team.example", a, DAVE, "Offer", "Mon, 05 Oct 2026 09:30:00 +0000", cc=EVE),
    ])  # fmt: skip
    services.deliver(a, "INBOX", [
        # Dave's out-of-office and the bounce for Eve answer o2: neither is a reply.
        mail("ooo@customer.example", DAVE, a, "Automatic reply: Offer",
             "Mon, 05 Oct 2026 09:31:00 +0000", reply_to_id="o2@team.example",
             headers=("Auto-Submitted: auto-replied",)),
        mail("dsn@mx.gone.example", "Mail Delivery System <MAILER-DAEMON@mx.gone.example>", a,
             "Undelivered Mail Returned to Sender", "Mon, 05 Oct 2026 09:31:05 +0000",
             reply_to_id="o2@team.example",
             headers=("Content-Type: multipart/report; report-type=delivery-status; b=x",)),
        # Carol posting into the thread through a mailing list is list mail, not her reply.
        mail("list@customer.example", CAROL, a, "Re: Offer", "Mon, 05 Oct 2026 10:00:00 +0000",
             reply_to_id="o1@team.example", headers=("List-Id: <offers.customer.example>",)),
    ])  # fmt: skip
    # Carol's own reply reaches Bob only (Alice had put him in Cc).
    services.deliver(b, "INBOX", [
        mail("r1@customer.example", CAROL, b, "Re: Offer", "Mon, 05 Oct 2026 11:00:00 +0000",
             reply_to_id="o1@team.example"),
    ])  # fmt: skip

    assert sync_inbox(alice.name, url=warehouse_url).derived.new_events == 0
    assert flags(warehouse_url) == [
        ("o1@team.example", CAROL, False, None, None, None),
        ("o2@team.example", DAVE, False, None, None, None),
        ("o2@team.example", EVE, False, None, None, None),
    ]
    assert sync_inbox(bob.name, url=warehouse_url).derived.new_events == 1

    expected_flags = [
        ("o1@team.example", CAROL, True, "r1@customer.example", 7200, False),
        ("o2@team.example", DAVE, False, None, None, None),
        ("o2@team.example", EVE, False, None, None, None),
    ]
    assert flags(warehouse_url) == expected_flags
    (event,) = events(warehouse_url)
    assert event[1:] == ("o1@team.example", CAROL, "r1@customer.example")
    assert query(
        warehouse_url,
        "SELECT kind, direction FROM inboxsync.messages ORDER BY message_id",
    ) == [("bounce", "inbound"), ("list", "inbound"), ("human", "outbound"),
          ("human", "outbound"), ("auto_reply", "inbound"), ("human", "inbound")]  # fmt: skip
    assert query(
        warehouse_url,
        "SELECT email, awaiting_reply, last_outbound_at::text, last_inbound_at::text"
        " FROM inboxsync.contact_reply_status ORDER BY email",
    ) == [
        (CAROL, False, "2026-10-05 09:00:00+00", "2026-10-05 11:00:00+00"),
        (DAVE, True, "2026-10-05 09:30:00+00", None),
        (EVE, True, "2026-10-05 09:30:00+00", None),
    ]

    # Reruns: nothing new, no event.
    assert sync_inbox(alice.name, url=warehouse_url).derived.new_events == 0
    assert sync_inbox(bob.name, url=warehouse_url).derived.new_events == 0

    # A UIDVALIDITY change of Alice's Sent folder (recreated with the same mail) re-maps the
    # copies, and a second reply from Carol arrives: the flag keeps the first reply, no event.
    client = imap(a, alice.password)
    raw_sent = [mail("o1@team.example", a, CAROL, "Offer", "Mon, 05 Oct 2026 09:00:00 +0000", cc=b),
                mail("o2@team.example", a, DAVE, "Offer", "Mon, 05 Oct 2026 09:30:00 +0000",
                     cc=EVE)]  # fmt: skip
    client.delete_folder("Sent")
    client.create_folder("Sent")
    for raw in raw_sent:
        client.append("Sent", raw)
    services.deliver(a, "INBOX", [
        mail("r2@customer.example", CAROL, a, "Re: Offer", "Tue, 06 Oct 2026 08:00:00 +0000",
             reply_to_id="r1@customer.example"),
    ])  # fmt: skip
    result = sync_inbox(alice.name, url=warehouse_url)
    sent = {f.folder: f for f in result.folders}["Sent"]
    assert (sent.uidvalidity_changed, sent.remapped, sent.fetched) == (True, 2, 0)
    assert result.derived.new_events == 0
    assert flags(warehouse_url) == expected_flags
    assert events(warehouse_url) == [event]


def test_a_reply_another_sync_loaded_counts_only_once_that_sync_derives_it(
    services, make_inbox, warehouse_url
):
    """The load writes a message with a guess of its thread (migration 0010). Until the sync that
    loaded it derives it, another inbox's derive step must not take it for a reply, even when the
    guess names the right thread."""
    from inboxsync import derive, load, warehouse
    from inboxsync.imap import FetchedCopy
    from inboxsync.sync import sync_inbox

    alice = connected(services, make_inbox, warehouse_url)
    bob = connected(services, make_inbox, warehouse_url)
    a, b = alice.username, bob.username
    services.deliver(a, "Sent", [
        mail("o3@team.example", a, CAROL, "Quote", "Wed, 07 Oct 2026 09:00:00 +0000"),
    ])  # fmt: skip
    assert sync_inbox(alice.name, url=warehouse_url).derived.new_events == 0

    # Bob's sync has loaded Carol's reply and still holds his inbox's lock: not derived yet.
    ((bob_id,),) = query(
        warehouse_url, "SELECT inbox_id FROM inboxsync.inboxes WHERE name = %s", (bob.name,)
    )
    reply = mail("r3@customer.example", CAROL, b, "Re: Quote", "Wed, 07 Oct 2026 10:00:00 +0000",
                 reply_to_id="o3@team.example")  # fmt: skip
    team = frozenset({a, b})
    staged = load.stage_batch(load.build_batch([FetchedCopy(1, reply, (), None, None)], team), team)
    bobs_sync = warehouse.connect(warehouse_url)
    try:
        with bobs_sync.cursor() as cur:
            assert warehouse.lock_inbox(cur, bob_id)
        with bobs_sync, bobs_sync.cursor() as cur:
            load.write_batch(cur, staged, inbox_id=bob_id, folder="INBOX", uidvalidity=1,
                             last_uid=1, create_contacts=True, created_by="test")  # fmt: skip
        (guess,) = query(
            warehouse_url,
            "SELECT r.thread_id = o.thread_id FROM inboxsync.messages r, inboxsync.messages o"
            " WHERE r.message_id = 'r3@customer.example' AND o.message_id = 'o3@team.example'",
        )
        assert guess == (True,)  # the guess is right: only its being underived keeps it out

        # Alice follows up in the thread: her derive step works on it, without Carol's reply.
        services.deliver(a, "Sent", [
            mail("o4@team.example", a, CAROL, "Re: Quote", "Wed, 07 Oct 2026 11:00:00 +0000",
                 reply_to_id="o3@team.example"),
        ])  # fmt: skip
        assert sync_inbox(alice.name, url=warehouse_url).derived.new_events == 0
        assert flags(warehouse_url) == [
            ("o3@team.example", CAROL, False, None, None, None),
            ("o4@team.example", CAROL, False, None, None, None),
        ]
        assert query(warehouse_url, "SELECT count(*) FROM inboxsync.derive_queue") == [(1,)]
        with bobs_sync.cursor() as cur:
            warehouse.unlock_inbox(cur, bob_id)
    finally:
        bobs_sync.close()

    # Bob's sync derives what it loaded: the reply counts, once.
    assert derive.run(warehouse_url, inbox_ids=[bob_id]).new_events == 1
    assert flags(warehouse_url) == [
        ("o3@team.example", CAROL, True, "r3@customer.example", 3600, False),
        ("o4@team.example", CAROL, False, None, None, None),
    ]
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.derive_queue") == [(0,)]


def test_team_domains_and_aliases_make_mail_internal(services, make_inbox, warehouse_url):
    from inboxsync import registry, warehouse
    from inboxsync.sync import sync_inbox

    alice = connected(services, make_inbox, warehouse_url)
    a = alice.username
    services.deliver(a, "Sent", [
        mail("i1@team.example", a, "zoe@eu.acme.example", "Plan", "Mon, 5 Oct 2026 09:00 +0000"),
        mail("i2@team.example", a, "sales@partner.example", "Plan", "Mon, 5 Oct 2026 09:01 +0000"),
    ])  # fmt: skip
    sync_inbox(alice.name, url=warehouse_url)
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.reply_flags") == [(2,)]

    # Configure the team: acme.example (and its subdomains) and one alias.
    with warehouse.transaction(warehouse_url) as cur:
        assert registry.add_team_domain(cur, "ACME.example") == "acme.example"
        assert registry.add_team_alias(cur, "Sales@Partner.example") == "sales@partner.example"
        team = registry.team_addresses(cur)
    assert "zoe@eu.acme.example" in team and "sales@partner.example" in team
    assert "zoe@notacme.example" not in team

    result = sync_inbox(alice.name, url=warehouse_url)
    assert (result.derived.team_changed, result.derived.directions_changed) == (True, 2)
    assert query(
        warehouse_url, "SELECT message_id, direction FROM inboxsync.messages ORDER BY 1"
    ) == [("i1@team.example", "internal"), ("i2@team.example", "internal")]
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.reply_flags") == [(0,)]
    assert query(
        warehouse_url, "SELECT email, is_team FROM inboxsync.contacts ORDER BY email"
    ) == sorted([(a, True), ("sales@partner.example", True), ("zoe@eu.acme.example", True)])


def test_sql_is_team_reads_the_team_as_the_load_does(services, make_inbox, warehouse_url):
    """The derive step keeps the load's directions (migration 0012): ``inboxsync.is_team`` and
    ``registry.Team`` must agree, "_" in a team domain included (LIKE read it as any character)."""
    from inboxsync import registry, warehouse

    inbox = make_inbox()
    emails = [inbox.username, "zoe@acme.example", "zoe@eu.acme.example", "zoe@notacme.example",
              "zoe@acme.example.org", "x@my_co.example", "x@sub.my_co.example",
              "x@sub.myXco.example", "x@myco.example", "carol@customer.example"]  # fmt: skip
    with warehouse.transaction(warehouse_url) as cur:
        registry.add_team_domain(cur, "acme.example")
        registry.add_team_domain(cur, "my_co.example")
        team = registry.team_addresses(cur)
        cur.execute("SELECT e, inboxsync.is_team(e) FROM unnest(%s::text[]) e", (emails,))
        in_sql = dict(cur.fetchall())
    assert in_sql == {email: email in team for email in emails}
    assert sum(in_sql.values()) == 5


def test_mail_loaded_with_a_team_changed_since_is_classified_again(
    services, make_inbox, warehouse_url, monkeypatch
):
    """The derive step keeps the load's directions only when the load used today's team: a sync
    that read the team before a domain was added (and a derive step already ran with it) has its
    messages classified again, though the team did not change since that last derive step."""
    from inboxsync import derive, registry, warehouse
    from inboxsync.sync import sync_inbox

    alice = connected(services, make_inbox, warehouse_url)
    a = alice.username
    with warehouse.transaction(warehouse_url) as cur:
        before = registry.team_addresses(cur)
        registry.add_team_domain(cur, "acme.example")
        now = registry.team_addresses(cur)
    assert before.fingerprint and now.fingerprint and before.fingerprint != now.fingerprint
    assert derive.run(warehouse_url).team_changed  # the team as it is now, remembered

    services.deliver(a, "Sent", [
        mail("i1@team.example", a, "zoe@eu.acme.example", "Plan", "Mon, 5 Oct 2026 09:00 +0000"),
        mail("o1@team.example", a, CAROL, "Plan", "Mon, 5 Oct 2026 09:01 +0000"),
    ])  # fmt: skip
    monkeypatch.setattr(registry, "team_addresses", lambda cur: before)  # read before the change
    result = sync_inbox(alice.name, url=warehouse_url).derived
    assert (result.team_changed, result.reclassified, result.directions_changed) == (False, 2, 1)
    assert query(
        warehouse_url, "SELECT message_id, direction FROM inboxsync.messages ORDER BY 1"
    ) == [("i1@team.example", "internal"), ("o1@team.example", "outbound")]
    assert query(
        warehouse_url, "SELECT email, is_team FROM inboxsync.contacts ORDER BY email"
    ) == sorted([(a, True), (CAROL, False), ("zoe@eu.acme.example", True)])
    assert flags(warehouse_url) == [("o1@team.example", CAROL, False, None, None, None)]

    # Mail loaded with the team of now is not classified again.
    monkeypatch.undo()
    services.deliver(a, "Sent", [
        mail("i2@team.example", a, "ann@acme.example", "Plan", "Mon, 5 Oct 2026 10:00 +0000"),
    ])  # fmt: skip
    result = sync_inbox(alice.name, url=warehouse_url).derived
    assert (result.messages, result.reclassified) == (1, 0)
    assert query(
        warehouse_url,
        "SELECT direction FROM inboxsync.messages WHERE message_id = 'i2@team.example'",
    ) == [("internal",)]


def test_contacts_created_with_a_team_changed_since_ask_the_team_of_now(
    services, make_inbox, warehouse_url, monkeypatch
):
    """A sync that read the team before it changed creates contacts with the team of now: here
    for a message another inbox (create-contacts off) loaded before, which no derive step
    classifies again, so nothing else would correct the contact's is_team."""
    from inboxsync import derive, registry, warehouse
    from inboxsync.sync import sync_inbox

    bob = make_inbox(create_contacts=False)
    alice = connected(services, make_inbox, warehouse_url)
    zoe = "zoe@eu.acme.example"
    known = mail("z1@acme.example", zoe, bob.username, "Plan", "Mon, 5 Oct 2026 09:00 +0000")
    services.deliver(bob.username, "INBOX", [known])
    assert sync_inbox(bob.name, url=warehouse_url).fetched == 1
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.contacts") == [(0,)]

    with warehouse.transaction(warehouse_url) as cur:
        before = registry.team_addresses(cur)
        registry.add_team_domain(cur, "acme.example")
    assert derive.run(warehouse_url).team_changed  # the team as it is now, remembered

    newer = mail("c1@customer.example", CAROL, alice.username, "Hi", "Mon, 5 Oct 2026 10:00 +0000")
    services.deliver(alice.username, "INBOX", [known, newer])
    monkeypatch.setattr(registry, "team_addresses", lambda cur: before)  # read before the change
    result = sync_inbox(alice.name, url=warehouse_url)
    assert (result.fetched, result.derived.messages, result.derived.reclassified) == (2, 1, 1)
    assert query(
        warehouse_url, "SELECT email, is_team FROM inboxsync.contacts ORDER BY email"
    ) == sorted([(alice.username, True), (bob.username, True), (CAROL, False), (zoe, True)])
    assert query(
        warehouse_url, "SELECT message_id, direction FROM inboxsync.messages ORDER BY 1"
    ) == [("c1@customer.example", "inbound"), ("z1@acme.example", "internal")]
