"""Replies that arrive with an inbox's history: flags yes, events only when the inbox allows it.

Mail already in a folder when its inbox is first synced is history (the sync loads it as a
backfill, newest first). A reply found there sets the flag (and moves it to an older reply) but
fires no reply_event, unless the inbox's ``history_reply_events`` switch is on.
"""

from __future__ import annotations

import pytest

from tests.conftest import query
from tests.integration.test_replies import connected, events, flags, mail

pytestmark = pytest.mark.integration

FRANK = "frank@customer.example"
GRACE = "grace@customer.example"


def test_history_replies_set_flags_fire_no_event_and_an_older_reply_fixes_the_flag(
    services, make_inbox, warehouse_url
):
    from inboxsync.sync import Budget, sync_inbox

    alice = connected(services, make_inbox, warehouse_url)
    a = alice.username
    services.deliver(a, "Sent", [
        mail("o3@team.example", a, FRANK, "Quote", "Tue, 06 Oct 2026 08:00:00 +0000"),
        mail("o5@team.example", a, GRACE, "Quote", "Tue, 06 Oct 2026 08:00:00 +0000"),
    ])  # fmt: skip
    # Grace answers o5 at 13:00: new mail, an event.
    services.deliver(a, "INBOX", [
        mail("r5b@customer.example", GRACE, a, "Re: Quote", "Tue, 06 Oct 2026 13:00:00 +0000",
             reply_to_id="o5@team.example"),
    ])  # fmt: skip
    assert sync_inbox(alice.name, url=warehouse_url).derived.new_events == 1

    # A colleague's inbox is connected later; its history holds Frank's reply to o3 and an
    # earlier reply of Grace to o5 (10:00, before the 13:00 one).
    colleague = make_inbox()
    c = colleague.username
    services.deliver(c, "INBOX", [
        mail("r3@customer.example", FRANK, c, "Re: Quote", "Tue, 06 Oct 2026 12:00:00 +0000",
             reply_to_id="o3@team.example"),
        mail("r5a@customer.example", GRACE, c, "Re: Quote", "Tue, 06 Oct 2026 10:00:00 +0000",
             reply_to_id="o5@team.example"),
    ])  # fmt: skip
    result = sync_inbox(colleague.name, url=warehouse_url, budget=Budget())
    assert {f.folder: f.history for f in result.folders}["INBOX"] == 2
    assert (result.derived.new_events, result.derived.flags_updated) == (0, 2)

    assert flags(warehouse_url) == [
        # Found in history: replied, no event (history = true).
        ("o3@team.example", FRANK, True, "r3@customer.example", 4 * 3600, True),
        # The older reply from the backfill replaces the later one; the event stays the one.
        ("o5@team.example", GRACE, True, "r5a@customer.example", 2 * 3600, False),
    ]
    assert [e[1:] for e in events(warehouse_url)] == [
        ("o5@team.example", GRACE, "r5b@customer.example")
    ]
    assert query(
        warehouse_url,
        "SELECT m.message_id, m.history FROM inboxsync.messages m ORDER BY 1",
    ) == [("o3@team.example", False), ("o5@team.example", False), ("r3@customer.example", True),
          ("r5a@customer.example", True), ("r5b@customer.example", False)]  # fmt: skip

    # A later reply from Frank, as new mail: the flag was detected already, no event.
    services.deliver(c, "INBOX", [
        mail("r3b@customer.example", FRANK, c, "Re: Quote", "Wed, 07 Oct 2026 09:00:00 +0000",
             reply_to_id="r3@customer.example"),
    ])  # fmt: skip
    assert sync_inbox(colleague.name, url=warehouse_url).derived.new_events == 0
    assert len(events(warehouse_url)) == 1


def test_an_inbox_may_allow_events_for_replies_in_its_history(services, make_inbox, warehouse_url):
    from inboxsync.sync import Budget, sync_inbox

    alice = connected(services, make_inbox, warehouse_url)
    a = alice.username
    services.deliver(a, "Sent", [
        mail("o6@team.example", a, FRANK, "Terms", "Thu, 08 Oct 2026 08:00:00 +0000"),
    ])  # fmt: skip
    sync_inbox(alice.name, url=warehouse_url)

    colleague = make_inbox()
    query(
        warehouse_url,
        "UPDATE inboxsync.inboxes SET history_reply_events = true WHERE name = %s"
        " RETURNING inbox_id",
        (colleague.name,),
    )
    services.deliver(colleague.username, "INBOX", [
        mail("r6@customer.example", FRANK, colleague.username, "Re: Terms",
             "Thu, 08 Oct 2026 08:05:00 +0000", reply_to_id="o6@team.example"),
    ])  # fmt: skip
    assert sync_inbox(colleague.name, url=warehouse_url, budget=Budget()).derived.new_events == 1
    assert flags(warehouse_url) == [
        ("o6@team.example", FRANK, True, "r6@customer.example", 300, False)
    ]
    assert [e[1:] for e in events(warehouse_url)] == [
        ("o6@team.example", FRANK, "r6@customer.example")
    ]


def test_derive_with_history_true_fires_nothing(services, make_inbox, warehouse_url):
    """The parameter a backfill run passes: every pending message is history."""
    from inboxsync import derive
    from inboxsync.sync import sync_inbox

    alice = connected(services, make_inbox, warehouse_url)
    a = alice.username
    services.deliver(a, "Sent", [
        mail("o7@team.example", a, GRACE, "Call", "Fri, 09 Oct 2026 08:00:00 +0000"),
    ])  # fmt: skip
    services.deliver(a, "INBOX", [
        mail("r7@customer.example", GRACE, a, "Re: Call", "Fri, 09 Oct 2026 08:10:00 +0000",
             reply_to_id="o7@team.example"),
    ])  # fmt: skip
    result = sync_inbox(alice.name, url=warehouse_url)
    assert result.derived.new_events == 1  # new mail: the event fires
    # Undo the derive step (events included, which only a test may do) and derive the same
    # messages again as a backfill run would: the flag comes back, no event fires.
    query(
        warehouse_url,
        "INSERT INTO inboxsync.derive_queue (message_key)"
        " SELECT message_key FROM inboxsync.messages RETURNING 1",
    )
    query(warehouse_url, "DELETE FROM inboxsync.reply_flags RETURNING 1")
    query(warehouse_url, "DELETE FROM inboxsync.reply_events RETURNING 1")
    again = derive.run(warehouse_url, history=True)
    assert (again.messages, again.new_events, again.flags_updated) == (2, 0, 1)
    assert flags(warehouse_url) == [
        ("o7@team.example", GRACE, True, "r7@customer.example", 600, True)
    ]
    # The derive step corrected what the load wrote: the messages are history now.
    assert query(
        warehouse_url, "SELECT message_id, history FROM inboxsync.messages ORDER BY 1"
    ) == [("o7@team.example", True), ("r7@customer.example", True)]
