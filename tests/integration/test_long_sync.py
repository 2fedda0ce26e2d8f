"""A long sync's overlaps change nothing: parsing in a worker process (`inboxsync.stager`) and
derive steps beside the loading (`inboxsync.derive.Background`) give the warehouse that one
process doing everything in turn gives, and a worker that dies loses nothing.
"""

from __future__ import annotations

import signal
from datetime import UTC, datetime

import pytest

from tests.conftest import corpus, query, read_mbox
from tests.integration.logcapture import capture_logs

pytestmark = pytest.mark.integration

# Every table a sync writes, without the columns that record when it ran.
SNAPSHOT = {
    "messages": "SELECT message_key, message_id, subject, sent_at, date_header, from_email,"
    " from_name, in_reply_to, kind, direction, list_id, auto_submitted, content_type, history"
    " FROM inboxsync.messages ORDER BY message_key",
    "addresses": "SELECT * FROM inboxsync.message_addresses ORDER BY message_key, role, email",
    "references": "SELECT * FROM inboxsync.message_references ORDER BY message_key, position",
    "copies": "SELECT folder, uid, message_key, flags, internal_date, size, raw_header"
    " FROM inboxsync.message_copies ORDER BY folder, uid",
    "quarantine": "SELECT folder, uid, reason FROM inboxsync.quarantine ORDER BY folder, uid",
    "contacts": "SELECT email, display_name, domain, is_team, first_seen_at, last_seen_at"
    " FROM inboxsync.contacts ORDER BY email",
    "flags": "SELECT message_key, recipient_email, replied, reply_message_key, history"
    " FROM inboxsync.reply_flags ORDER BY 1, 2",
    "underived": "SELECT count(*) FROM inboxsync.derive_queue",
}


def snapshot(url: str) -> dict[str, list[tuple]]:
    rows = {name: query(url, sql) for name, sql in SNAPSHOT.items()}
    # Thread ids name a thread after its first message at the time it was started: compare the
    # grouping, and the threads' contents.
    groups: dict[str, set[str]] = {}
    for key, thread_id in query(url, "SELECT message_key, thread_id FROM inboxsync.messages"):
        groups.setdefault(thread_id, set()).add(key)
    rows["threads"] = sorted(sorted(g) for g in groups.values())
    threads = (
        "SELECT subject, first_message_at, last_message_at, message_count FROM inboxsync.threads"
    )
    rows["thread_rows"] = sorted(query(url, threads), key=repr)
    return rows


@pytest.fixture
def logs():
    yield from capture_logs()


def _second_warehouse(services, url: str, inbox) -> str:
    from inboxsync import registry, warehouse

    other = services.create_database(url.rsplit("/", 1)[1] + "_b", drop=True)
    warehouse.migrate(other)
    with warehouse.transaction(other) as cur:
        registry.add_inbox(
            cur,
            inbox.name,
            host=services.host,
            port=services.imaps_port,
            security="ssl",
            username=inbox.username,
            password=inbox.password,
            owner_email=inbox.username,
            create_contacts=True,
            ca_file=str(services.ca_file),
        )
    return other


def test_worker_and_background_derive_give_the_warehouse_of_one_process(
    services, make_inbox, warehouse_url, monkeypatch, logs
):
    from inboxsync import settings
    from inboxsync.sync import Budget, sync_inbox

    inbox = make_inbox()
    services.deliver(inbox.username, "INBOX", read_mbox(corpus("lists", "util-linux.mbox.gz")))

    # Everything in turn: no worker, one derive step at the end.
    monkeypatch.setattr(settings, "PARSE_WORKER_AFTER", 0)
    monkeypatch.setattr(settings, "DERIVE_EVERY", 10**9)
    sync_inbox(inbox.name, url=warehouse_url, batch_size=100, budget=Budget())
    assert "worker process" not in logs.text()
    plain = snapshot(warehouse_url)

    # The overlaps: a worker from the first batch on (the backfill plans 36 batches, more than
    # the 2 that would be staged inline first), a derive step every 400 messages.
    logs.records.clear()
    overlapped_url = _second_warehouse(services, warehouse_url, inbox)
    monkeypatch.setattr(settings, "PARSE_WORKER_AFTER", 2)
    monkeypatch.setattr(settings, "DERIVE_EVERY", 400)
    result = sync_inbox(inbox.name, url=overlapped_url, batch_size=100, budget=Budget())
    assert "parsing in a worker process" in logs.text()
    derive_steps = [r for r in logs.records if r.getMessage().startswith("derive: ")]
    assert len(derive_steps) >= 3  # steps during the load, and the last one

    assert result.fetched == 3509 and result.derived.messages == len(plain["messages"])
    overlapped = snapshot(overlapped_url)
    assert overlapped["underived"] == [(0,)]
    for table in plain:
        assert overlapped[table] == plain[table], table


def test_a_first_sync_starts_the_worker_before_it_searches_the_folder(
    services, make_inbox, warehouse_url, monkeypatch, logs
):
    # EXAMINE's message count already says the backfill will be long: the worker's start-up
    # (an interpreter and its imports) overlaps the UID SEARCH instead of holding up batch one.
    from inboxsync import settings
    from inboxsync.sync import Budget, sync_inbox

    inbox = make_inbox()
    services.deliver(
        inbox.username, "INBOX", read_mbox(corpus("lists", "util-linux.mbox.gz"))[:400]
    )
    monkeypatch.setattr(settings, "PARSE_WORKER_AFTER", 2)
    result = sync_inbox(inbox.name, url=warehouse_url, batch_size=100, budget=Budget())
    assert result.fetched == 400
    said = [r.getMessage() for r in logs.records]
    started = next(i for i, m in enumerate(said) if "parsing in a worker process" in m)
    searched = next(i for i, m in enumerate(said) if "UID SEARCH" in m)
    assert started < searched


def _fetched(n: int):
    from inboxsync.imap import FetchedCopy

    raw = read_mbox(corpus("lists", "util-linux.mbox.gz"))[:n]
    when = datetime(2024, 2, 29, 23, 59, 58, tzinfo=UTC)
    return [
        FetchedCopy(
            uid=i,
            raw_header=m.split(b"\n\n", 1)[0] + b"\n",
            flags=("\\Seen",),
            internal_date=when,
            size=len(m),
        )
        for i, m in enumerate(raw, start=1)
    ]


def test_a_worker_that_dies_loses_no_batch():
    from inboxsync.stager import Stager, stage

    team = frozenset({"karelzak@redhat.com"})
    batches = [(copies := _fetched(600))[i : i + 100] for i in range(0, 600, 100)]
    expected = [stage(b, team) for b in batches]
    with Stager(team, start_after=1) as stager:
        futures = [stager.submit(b) for b in batches[:3]]
        assert stager.in_worker
        got = [stager.result(f, b) for f, b in zip(futures, batches[:3], strict=True)]
        stager._proc.send_signal(signal.SIGKILL)  # the worker dies between batches
        stager._proc.wait()
        futures = [stager.submit(b) for b in batches[3:]]
        got += [stager.result(f, b) for f, b in zip(futures, batches[3:], strict=True)]
        assert not stager.in_worker  # the rest were staged in this process
    assert got == expected
    assert sum(s.loaded for s in got) == len(copies)


def test_batches_staged_here_then_in_the_worker_come_back_in_order():
    from inboxsync.stager import Stager, stage

    team = frozenset({"karelzak@redhat.com"})
    batches = [_fetched(500)[i : i + 100] for i in range(0, 500, 100)]
    with Stager(team, start_after=2) as stager:
        futures = [stager.submit(b) for b in batches[:2]]
        assert not stager.in_worker
        futures += [stager.submit(b) for b in batches[2:]]
        assert stager.in_worker
        got = [stager.result(f, b) for f, b in zip(futures, batches, strict=True)]
    assert got == [stage(b, team) for b in batches]


def test_a_backfill_of_more_batches_than_start_after_starts_the_worker_at_once():
    from inboxsync.stager import Stager

    team = frozenset()
    with Stager(team, start_after=3) as stager:
        stager.expect(3)  # no more than would be staged here anyway
        assert not stager.in_worker
        stager.expect(4)
        assert stager.in_worker
        assert stager.result(stager.submit(_fetched(5)), []).loaded == 5
    with Stager(team, start_after=0) as never:
        never.expect(10**6)
        assert not never.in_worker


def test_a_batch_that_fails_to_stage_fails_the_same_way_in_the_worker():
    from inboxsync.imap import FetchedCopy
    from inboxsync.stager import Stager, stage

    team = frozenset()
    bad = [FetchedCopy(uid=1, raw_header=b"Subject: x\r\n\r\n", flags=(None,),  # type: ignore[arg-type]
                       internal_date=None, size=1)]  # fmt: skip
    with pytest.raises(TypeError) as inline:
        stage(bad, team)
    with Stager(team, start_after=1) as stager:
        stager.submit(_fetched(1))
        future = stager.submit(bad)
        assert stager.in_worker
        with pytest.raises(TypeError) as in_worker:
            stager.result(future, bad)
        # The worker goes on with the next batch.
        assert stager.result(stager.submit(_fetched(5)), []).loaded == 5
    assert str(in_worker.value) == str(inline.value)


def test_the_worker_stages_with_the_whole_team_domains_included():
    from inboxsync.registry import Team
    from inboxsync.stager import Stager, stage

    team = Team(["karelzak@redhat.com"], ["kernel.org"])  # the list lives at vger.kernel.org
    batches = [(copies := _fetched(300))[i : i + 100] for i in range(0, 300, 100)]
    with Stager(team, start_after=1) as stager:
        futures = [stager.submit(b) for b in batches]
        assert stager.in_worker
        got = [stager.result(f, b) for f, b in zip(futures, batches, strict=True)]
    assert got == [stage(b, team) for b in batches]
    contacts = [
        line.split("\t") for s in got for line in dict(s.tables)["stg_contacts"].splitlines()
    ]
    is_team = {email: flag for email, _domain, flag, *_ in contacts}
    assert is_team["util-linux@vger.kernel.org"] == "t"
    assert all(flag == "t" for email, flag in is_team.items() if email.endswith(".kernel.org"))
    assert "f" in is_team.values()
    assert sum(s.loaded for s in got) == len(copies)


def test_a_copy_crosses_to_the_worker_whole():
    import dataclasses

    from inboxsync.imap import FetchedCopy
    from inboxsync.stager import astuple

    copy = FetchedCopy(7, b"Subject: x\r\n", ("\\Seen",), datetime(2026, 1, 1, tzinfo=UTC), 9,
                       10**19, 2**63, ("\\Inbox", "Work"))  # fmt: skip
    assert len(astuple(copy)) == len(dataclasses.fields(FetchedCopy))  # a new field is sent too
    assert FetchedCopy(*astuple(copy)) == copy
