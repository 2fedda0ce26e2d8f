"""The benchmark's warehouse floor (`inboxsync.bench.floor`) writes exactly the rows a sync
stored, each message's rows in its batch's transaction, and times only the writing."""

from __future__ import annotations

import pytest

from tests.conftest import corpus, query, read_mbox

pytestmark = pytest.mark.integration


def _rows(url: str, table: str) -> list[tuple]:
    return sorted(query(url, f"SELECT * FROM inboxsync.{table}"), key=repr)


def test_the_floor_writes_the_synced_rows_again_one_batch_a_transaction(
    services, make_inbox, warehouse_url, tmp_path
):
    from inboxsync import warehouse
    from inboxsync.bench import floor
    from inboxsync.sync import Budget, sync_inbox

    # Karel Zak's inbox: his messages are outbound, with reply flags.
    inbox = make_inbox(owner="kzak@redhat.com")
    mail = read_mbox(corpus("lists", "util-linux.mbox.gz"))[:1500]
    # History first, then new mail with a message that has none of the header fields the sync
    # fetches (a quarantine row).
    services.deliver(inbox.username, "INBOX", mail[:1300])
    sync_inbox(inbox.name, url=warehouse_url, batch_size=250, budget=Budget())
    services.deliver(inbox.username, "INBOX", [*mail[1300:], b"X-Junk: nothing else\n\nbody\n"])
    sync_inbox(inbox.name, url=warehouse_url, batch_size=250, budget=Budget())
    counts = {t: query(warehouse_url, f"SELECT count(*) FROM inboxsync.{t}")[0][0]
              for t in floor.STORED}  # fmt: skip
    for table in ("messages", "message_copies", "message_addresses", "message_references",
                  "contacts", "threads", "thread_nodes", "reply_flags", "quarantine"):  # fmt: skip
        assert counts[table] > 0, table

    target = services.create_database(warehouse_url.rsplit("/", 1)[1] + "_floor", drop=True)
    warehouse.migrate(target)
    result = floor.measure(
        warehouse_url, target, tmp_path / "floor", batch_size=100, pg_pid=services.pg_pid
    )

    assert result.messages == counts["messages"]
    assert result.batches == -(-counts["messages"] // 100)
    assert result.rows == sum(counts.values())
    assert result.seconds > 0 and result.pg_cpu_s > 0
    for table in floor.STORED:
        assert _rows(target, table) == _rows(warehouse_url, table), table
    # One transaction a batch: a message, its copies, addresses and references share one xmin,
    # and there are as many as batches.
    mixed = query(
        target,
        "SELECT count(*) FROM inboxsync.messages m"
        " JOIN inboxsync.message_copies c USING (message_key)"
        " JOIN inboxsync.message_addresses a USING (message_key)"
        " WHERE c.xmin <> m.xmin OR a.xmin <> m.xmin",
    )
    assert mixed == [(0,)]
    assert query(target, "SELECT count(DISTINCT xmin::text) FROM inboxsync.messages") == [
        (result.batches,)
    ]
    assert not (tmp_path / "floor").exists()
