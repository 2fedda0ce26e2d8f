"""The benchmark's large warehouse (`inboxsync.bench.large`): the inbox's mail cloned beside it,
the inbox itself as if never synced, and a sync into a copy derives the inbox's mail exactly as
into an empty warehouse."""

from __future__ import annotations

import pytest

from tests.conftest import corpus, query, read_mbox

pytestmark = pytest.mark.integration


def _derived(url: str, keys: list[str]) -> tuple[set[frozenset[str]], list[tuple]]:
    """The inbox's threads (as sets of message keys) and its reply flags."""
    rows = query(
        url,
        "SELECT thread_id, array_agg(message_key) FROM inboxsync.messages"
        " WHERE message_key = ANY(%s) GROUP BY thread_id",
        (keys,),
    )
    flags = query(
        url,
        "SELECT message_key, recipient_email, replied, reply_message_key, history"
        " FROM inboxsync.reply_flags WHERE message_key = ANY(%s) ORDER BY 1, 2",
        (keys,),
    )
    return {frozenset(members) for _, members in rows}, flags


def test_a_sync_beside_cloned_mail_derives_the_inbox_as_in_an_empty_warehouse(
    services, make_inbox, warehouse_url
):
    from inboxsync.bench import large
    from inboxsync.sync import Budget, sync_inbox

    # Karel Zak's inbox: his messages are outbound, with reply flags.
    inbox = make_inbox(owner="kzak@redhat.com")
    services.deliver(
        inbox.username, "INBOX", read_mbox(corpus("lists", "util-linux.mbox.gz"))[:600]
    )
    sync_inbox(inbox.name, url=warehouse_url, budget=Budget())
    keys = [k for (k,) in query(warehouse_url, "SELECT message_key FROM inboxsync.messages")]
    alone = _derived(warehouse_url, keys)
    assert alone[1], "the inbox has reply flags"
    copies = query(warehouse_url, "SELECT count(*) FROM inboxsync.message_copies")[0][0]
    flags = query(warehouse_url, "SELECT count(*) FROM inboxsync.reply_flags")[0][0]
    team = query(warehouse_url, "SELECT inboxsync.team_fingerprint()")

    db = warehouse_url.rsplit("/", 1)[1]
    template = large.build(services, db, db + "_tpl", inbox=inbox.name, clones=2)
    try:
        tpl = services.pg_url(template.name)
        assert template.messages == 2 * len(keys)
        assert query(tpl, "SELECT count(*) FROM inboxsync.messages WHERE message_key = ANY(%s)",
                     (keys,)) == [(0,)]  # fmt: skip
        assert query(
            tpl,
            "SELECT i.name, count(*), bool_and(c.uid <= s.history_uid)"
            " FROM inboxsync.message_copies c JOIN inboxsync.inboxes i USING (inbox_id)"
            " JOIN inboxsync.sync_state s USING (inbox_id, folder) GROUP BY 1 ORDER BY 1",
        ) == [("bench clone 1", copies, True), ("bench clone 2", copies, True)]
        assert query(tpl, "SELECT count(*) FROM inboxsync.reply_flags") == [(2 * flags,)]
        assert query(tpl, "SELECT count(*) FROM inboxsync.sync_state s JOIN inboxsync.inboxes"
                          " USING (inbox_id) WHERE name = %s", (inbox.name,)) == [(0,)]  # fmt: skip
        assert query(tpl, "SELECT value FROM inboxsync.derive_state WHERE name = 'team'") == team

        url = services.create_database(db + "_run", drop=True, template=template.name)
        result = sync_inbox(inbox.name, url=url, budget=Budget())
        assert result.fetched == copies
        assert query(url, "SELECT count(*) FROM inboxsync.messages") == [(3 * len(keys),)]
        assert _derived(url, keys) == alone
    finally:
        services.drop_databases(db + "_run", db + "_tpl")
    assert query(
        services.pg_url("postgres"),
        "SELECT count(*) FROM pg_database WHERE datname IN (%s, %s)",
        (db + "_run", db + "_tpl"),
    ) == [(0,)]
