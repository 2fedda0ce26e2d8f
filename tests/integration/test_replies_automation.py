"""The consumer side: the sync's asset event, and reply_automation acting once per event."""

from __future__ import annotations

import json

import pytest

from tests.conftest import query
from tests.integration.test_replies import connected, mail

pytestmark = pytest.mark.integration

CAROL = "carol@customer.example"
DAVE = "dave@customer.example"


def _two_replies(services, make_inbox, url) -> str:
    """Alice writes to Carol and Dave; both answer as new mail. Returns Alice's inbox name."""
    alice = connected(services, make_inbox, url)
    a = alice.username
    services.deliver(a, "Sent", [
        mail("o1@team.example", a, CAROL, "Offer", "Mon, 05 Oct 2026 09:00:00 +0000"),
        mail("o2@team.example", a, DAVE, "Offer", "Mon, 05 Oct 2026 09:00:00 +0000"),
    ])  # fmt: skip
    services.deliver(a, "INBOX", [
        mail("r1@customer.example", CAROL, a, "Re: Offer", "Mon, 05 Oct 2026 10:00:00 +0000",
             reply_to_id="o1@team.example"),
        mail("r2@customer.example", DAVE, a, "Re: Offer", "Mon, 05 Oct 2026 11:00:00 +0000",
             reply_to_id="o2@team.example"),
    ])  # fmt: skip
    return alice.name


def engaged(url: str) -> list[tuple]:
    return query(
        url,
        "SELECT email, replies, last_reply_at::text FROM inboxsync.engaged_contacts ORDER BY 1",
    )


def test_consumer_acts_once_even_when_run_twice_or_retried_after_a_failure(
    services, make_inbox, warehouse_url
):
    from inboxsync.reply_consumer import consume, mark_engaged
    from inboxsync.sync import sync_inbox

    name = _two_replies(services, make_inbox, warehouse_url)
    assert sync_inbox(name, url=warehouse_url).derived.new_events == 2

    def crash_after_acting(cur, events):
        mark_engaged(cur, events)
        raise RuntimeError("worker died before commit")

    with pytest.raises(RuntimeError):
        consume("reply_automation", crash_after_acting, url=warehouse_url)
    assert engaged(warehouse_url) == []  # the action rolled back with the offset

    assert consume("reply_automation", mark_engaged, url=warehouse_url, batch=1) == 2
    assert consume("reply_automation", mark_engaged, url=warehouse_url) == 0
    assert engaged(warehouse_url) == [
        (CAROL, 1, "2026-10-05 10:00:00+00"),
        (DAVE, 1, "2026-10-05 11:00:00+00"),
    ]
    assert query(
        warehouse_url,
        "SELECT o.last_event_id = (SELECT max(event_id) FROM inboxsync.reply_events)"
        " FROM inboxsync.consumer_offsets o WHERE consumer = 'reply_automation'",
    ) == [(True,)]


def test_inbox_sync_emits_the_asset_event_and_reply_automation_run_twice_acts_once(
    services, make_inbox, warehouse_url, airflow_env
):
    from inboxsync import local_airflow

    name = _two_replies(services, make_inbox, warehouse_url)
    env = {**airflow_env, "AIRFLOW_CONN_INBOXSYNC_WAREHOUSE": warehouse_url}
    local_airflow.airflow(env, "dags", "test", "inbox_sync", "-c", json.dumps({"inbox": name}))

    extras = [
        e if isinstance(e, dict) else json.loads(e)
        for (e,) in query(
            services.pg_url("airflow_test"),
            "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id"
            " WHERE a.name = 'inboxsync_reply_flags' ORDER BY e.id",
        )
    ]
    [extra] = [e for e in extras if e.get("inbox") == name]
    assert extra["new_events"] == 2
    # The run's figures for the inbox ride along.
    assert (extra["fetched"], extra["loaded"], extra["quarantined"]) == (4, 4, 0)
    assert extra["backfill_remaining"] == 0 and extra["seconds"] > 0

    for _ in range(2):
        local_airflow.airflow(env, "dags", "test", "reply_automation")
    assert engaged(warehouse_url) == [
        (CAROL, 1, "2026-10-05 10:00:00+00"),
        (DAVE, 1, "2026-10-05 11:00:00+00"),
    ]
