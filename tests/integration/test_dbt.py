"""`dbt build` of the marts on the test warehouse after a real sync of the demo mail.

One sync and one `dbt build` for the module; each test reads one mart and compares it with what
the demo mail generator says (inboxsync.demo_mail), not with the marts' own SQL.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from email.utils import getaddresses

import pytest

from tests.conftest import query
from tests.integration.marts_warehouse import AS_OF, synced_demo_warehouse

pytestmark = pytest.mark.integration

MODELS = {
    "stg_inboxsync__inboxes", "stg_inboxsync__sync_states", "stg_inboxsync__message_copies",
    "stg_inboxsync__messages", "stg_inboxsync__message_addresses", "stg_inboxsync__contacts",
    "stg_inboxsync__threads", "stg_inboxsync__reply_flags", "stg_inboxsync__contact_reply_statuses",
    "stg_inboxsync__quarantined_copies", "stg_inboxsync__derive_states",
    "int_message_copies_aggregated", "int_contact_messages_joined",
    "contact_timeline", "contacts", "threads", "reply_metrics", "inbox_sync_health",
}  # fmt: skip
UNIT_TESTS = {
    "thread_status_edge_cases", "reply_metrics_per_member_and_week",
    "contacts_response_times_across_inboxes", "email_held_by_several_inboxes",
}  # fmt: skip


@pytest.fixture(scope="module")
def demo(services, airflow_env):
    from inboxsync import marts

    saved = __import__("os").environ.get("AIRFLOW_CONN_INBOXSYNC_WAREHOUSE")
    wh = synced_demo_warehouse(services, "wh_dbt_marts", "dbt marts")
    run = marts.build(dbt_vars={"as_of": AS_OF})
    yield wh, run
    if saved is not None:
        __import__("os").environ["AIRFLOW_CONN_INBOXSYNC_WAREHOUSE"] = saved


def _normalize(address: str) -> str:
    local, _, domain = address.strip().lower().rpartition("@")
    domain = ".".join(
        label.encode().decode("idna") if label.startswith("xn--") else label
        for label in domain.split(".")
    )
    return f"{local}@{domain}"


def _external(record) -> dict[str, str]:
    """External addresses of a demo message and the role each has on it (from, to, cc)."""
    roles: dict[str, str] = {}
    for role, values in (("from", [record.sender]), ("to", record.to), ("cc", record.cc)):
        for _name, addr in getaddresses(list(values)):
            email = _normalize(addr)
            if not email.endswith("@acme.example"):
                roles.setdefault(email, role)
    return roles


def test_build_runs_every_model_unit_test_and_data_test(demo):
    _wh, run = demo
    assert set(run.results.values()) == {"success", "pass"}
    models = {uid.rsplit(".", 1)[1] for uid in run.results if uid.startswith("model.")}
    assert models == MODELS
    units = {uid.rsplit(".", 1)[1] for uid in run.results if uid.startswith("unit_test.")}
    assert units == UNIT_TESTS
    assert run.count("test") == 68


def test_contact_timeline_has_each_email_once_per_contact_with_the_inboxes_holding_it(demo):
    from inboxsync.demo_mail import demo_messages

    wh, _run = demo
    expected = {}
    for record in demo_messages():
        holders = sorted({wh.inbox_names[username] for username, _folder in record.placements})
        for email, role in _external(record).items():
            expected[(email, record.message_id.strip("<>"))] = (role, holders, len(holders))
    rows = query(
        wh.url,
        "SELECT contact_email, message_id, contact_role, inbox_names, inbox_count"
        " FROM inboxsync_marts.contact_timeline",
    )
    actual = {(r[0], r[1]): (r[2], r[3], r[4]) for r in rows}
    assert len(rows) == len(actual) == 57  # each email once per contact
    assert actual == expected
    # Emails both Alice and Bob hold are listed with both inboxes, the same row.
    both = sorted(wh.inbox_names.values())
    assert sum(1 for v in actual.values() if v[1] == both) == 10


def test_contacts_first_last_each_way_and_awaiting_reply(demo):
    from inboxsync.demo_mail import demo_messages

    wh, _run = demo
    seen: dict[str, list] = defaultdict(list)
    for record in demo_messages():
        for email, role in _external(record).items():
            seen[email].append((record.date, role))
    rows = query(
        wh.url,
        "SELECT contact_email, first_contact_at, last_contact_at, messages_from_contact,"
        " messages_to_contact FROM inboxsync_marts.contacts",
    )
    assert {r[0]: r[1:] for r in rows} == {
        email: (min(d for d, _ in v), max(d for d, _ in v),
                sum(1 for _, role in v if role == "from"),
                sum(1 for _, role in v if role != "from"))
        for email, v in seen.items()
    }  # fmt: skip
    # Replies and "awaiting" are the replies step's, read as it states them.
    assert (
        query(
            wh.url,
            "SELECT c.contact_email, c.is_awaiting_reply, c.last_email_from_team_at"
            " FROM inboxsync_marts.contacts c"
            " JOIN inboxsync.contact_reply_status s ON s.email = c.contact_email"
            " WHERE c.is_awaiting_reply IS DISTINCT FROM s.awaiting_reply"
            "    OR c.last_email_from_team_at IS DISTINCT FROM s.last_outbound_at",
        )
        == []
    )
    hanako = query(
        wh.url,
        "SELECT emails_from_team, emails_replied, last_reply_at, median_response_seconds,"
        " is_awaiting_reply FROM inboxsync_marts.contacts WHERE contact_email = %s",
        ("hanako.sato@umbrella.example",),
    )
    # Alice wrote on 8 Oct, Bob on 13 Oct: Hanako answered after 37,181 s and 50,402 s.
    assert hanako == [(2, 2, datetime.fromisoformat("2026-10-13 23:31:17+00:00"), 43792, False)]
    awaiting = query(
        wh.url,
        "SELECT contact_email FROM inboxsync_marts.contacts WHERE is_awaiting_reply ORDER BY 1",
    )
    assert [r[0] for r in awaiting] == [
        "albert.wesker@umbrella.example", "hank.scorpio@globex.example", "jose@müller.example",
        "olga.smirnova@initech.example", "peter.gibbons@initech.example",
        "priya.raman@umbrella.example",
    ]  # fmt: skip


def test_threads_participants_last_direction_and_status(demo):
    wh, _run = demo
    rows = query(
        wh.url,
        "SELECT t.subject, t.message_count, t.status, t.last_message_direction"
        " FROM inboxsync_marts.threads t ORDER BY t.first_message_at, t.thread_id",
    )
    # Replied: a recipient answered the team's last email; awaiting: nobody did yet (the
    # 1-message "Sample retry configuration" went to Hank's mistyped address and bounced);
    # closed: the team never wrote to a contact there (lists, newsletters, internal mail, an
    # unanswered inquiry). Nothing is older than 30 days on AS_OF.
    assert rows == [
        ("Renewal quote for 2027", 4, "awaiting_reply", "outbound"),
        ("API rate limits on the Pro plan", 4, "awaiting_reply", "outbound"),
        ("[Announce] Our status page has moved", 1, "closed", "inbound"),
        ("Globex: can you send Hank the retry config?", 2, "closed", "internal"),
        ("Sample retry configuration", 1, "awaiting_reply", "outbound"),
        ("Undelivered Mail Returned to Sender", 1, "closed", "inbound"),
        ("Sample retry configuration", 2, "replied", "inbound"),
        ("Following up on our call", 2, "awaiting_reply", "outbound"),
        ("TPS report export fails with error 500", 3, "replied", "inbound"),
        ("📈 Issue #112: Pricing pages that convert", 1, "closed", "inbound"),
        ("Вопрос по счёту №4471", 3, "replied", "inbound"),
        ("Bestellung über 12 Lizenzen", 3, "replied", "inbound"),
        ("FYI: Müller wants 12 more licences", 1, "closed", "internal"),
        ("Frage zur Datenschutzerklärung (DSGVO)", 2, "closed", "inbound"),
        ("[Announce] New region eu-north-2 is generally available", 1, "closed", "inbound"),
        ("見積もりのお願い", 3, "replied", "inbound"),
        ("Onboarding workshop dates", 5, "awaiting_reply", "outbound"),
        ("Your ticket #8812 has been resolved", 1, "awaiting_reply", "outbound"),
        ("Proposal: analytics pilot for Umbrella", 5, "awaiting_reply", "outbound"),
        ("[Announce] Object storage maintenance on 14 October", 1, "closed", "inbound"),
        ("Does the Business plan include SSO?", 3, "replied", "inbound"),
        ("Neue Rechnungsadresse ab Oktober", 2, "awaiting_reply", "outbound"),
        ("Scheduled maintenance on 20 October", 1, "awaiting_reply", "outbound"),
        ("Introduction call for our new admins", 3, "replied", "inbound"),
        ("Доступ для новой сотрудницы", 2, "awaiting_reply", "outbound"),
        ("[Announce] API v1 will be retired on 31 March 2027", 1, "closed", "inbound"),
        ("Issue #113: Onboarding emails, a teardown", 1, "closed", "inbound"),
        ("[Announce] CLI 4.2 released", 1, "closed", "inbound"),
    ]
    participants = query(
        wh.url,
        "SELECT participant_emails, external_participant_emails FROM inboxsync_marts.threads"
        " WHERE subject = %s",
        ("見積もりのお願い",),
    )
    assert participants == [
        (["alice@acme.example", "hanako.sato@umbrella.example"], ["hanako.sato@umbrella.example"])
    ]


def test_reply_metrics_per_team_member_and_week(demo):
    from datetime import UTC, timedelta

    from inboxsync.demo_mail import demo_messages

    wh, _run = demo
    sent: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for record in demo_messages():
        recipients = [e for e, role in _external(record).items() if role != "from"]
        if record.sender.endswith("@acme.example") and record.kind == "conversation" and recipients:
            day = record.date.astimezone(UTC).date()
            key = (record.sender, (day - timedelta(days=day.weekday())).isoformat())
            sent[key][0] += 1
            sent[key][1] += len(recipients)
    rows = query(
        wh.url,
        "SELECT team_member_email, week_start::text, emails_sent, recipients,"
        " recipients_replied, response_rate::text, median_response_seconds"
        " FROM inboxsync_marts.reply_metrics ORDER BY 1, 2",
    )
    assert [r[:4] for r in rows] == [(*key, *counts) for key, counts in sorted(sent.items())]
    assert [r[4:] for r in rows] == [
        (6, "0.6000", 24012),
        (1, "0.2500", 2095),
        (4, "0.6667", 11442),
        (1, "0.3333", 50402),
    ]
    # Every flag of the replies step is counted once.
    assert query(
        wh.url,
        "SELECT (SELECT sum(recipients) FROM inboxsync_marts.reply_metrics),"
        " (SELECT count(*) FROM inboxsync.reply_flags),"
        " (SELECT sum(recipients_replied) FROM inboxsync_marts.reply_metrics),"
        " (SELECT count(*) FROM inboxsync.reply_flags WHERE replied)",
    ) == [(23, 23, 12, 12)]


def test_inbox_sync_health_lag_backlog_and_counts(demo):
    from inboxsync.demo_mail import expected_summary

    wh, _run = demo
    folders = expected_summary()["folders"]
    rows = query(
        wh.url,
        "SELECT h.inbox_name, h.folder, h.messages_synced, h.backlog_messages,"
        " h.messages_quarantined, h.health_status, h.last_error,"
        " h.lag_seconds = extract(epoch FROM %s::timestamptz - s.last_success_at)::bigint"
        " FROM inboxsync_marts.inbox_sync_health h"
        " JOIN inboxsync.sync_state s USING (inbox_id, folder) ORDER BY 1, 2",
        (AS_OF,),
    )
    name_of = {v: k for k, v in wh.inbox_names.items()}
    assert rows == sorted(
        (name, folder, count, 0, 0, "ok", None, True)
        for email, name in wh.inbox_names.items()
        for folder, count in folders[email].items()
    )
    assert {name_of[r[0]] for r in rows} == set(folders)


def test_docs_generate_writes_the_catalog_with_every_mart_column_described(demo):
    import json

    from inboxsync import marts

    target = marts.docs_generate()
    catalog = json.loads((target / "catalog.json").read_text())
    manifest = json.loads((target / "manifest.json").read_text())
    for mart in ("contact_timeline", "contacts", "threads", "reply_metrics", "inbox_sync_health"):
        node = manifest["nodes"][f"model.inboxsync.{mart}"]
        columns = catalog["nodes"][f"model.inboxsync.{mart}"]["columns"]
        assert set(columns) == set(node["columns"]), mart
        assert all(c["description"] for c in node["columns"].values()), mart
    assert (target / "index.html").exists()
