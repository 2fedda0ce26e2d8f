"""Thread grouping against a real reference: Dovecot's ``THREAD REFS UTF-8 ALL`` on the same folder.

Each list archive of ../shared/corpora/lists goes into one Dovecot folder and is synced (the derive
step threads it); then both groupings are compared message by message. A message agrees when the
thread that holds it has exactly the same members in both.

One normalization, and why: an archive can hold the same email twice (same Message-ID). Dovecot
threads the second copy as a message without Message-ID (RFC 5256 section 2.1 allows treating
duplicates as distinct), so a root message stored twice becomes two one-message threads there;
the warehouse keeps one message with two copies (DESIGN.md invariant 3) in one thread. Threads are
therefore compared as sets of message keys, Dovecot's threads holding copies of the same message
being united first. util-linux has 23 such duplicated messages and jailhouse-dev one; beyond
these, the groupings are identical. A copy the sync quarantined has no thread in the warehouse and
counts as a disagreement.

Without dropping ids that have no "@" (inboxsync.threads.chain), notmuch-list agrees on 72.7% only:
git send-email's ``References: <yes>`` chains unrelated patch series, and Dovecot ignores it too.
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import corpus, query, read_mbox

pytestmark = pytest.mark.integration


def _flatten(node) -> set[int]:
    if isinstance(node, int):
        return {node}
    uids: set[int] = set()
    for child in node:
        uids |= _flatten(child)
    return uids


def dovecot_threads(client) -> list[set[int]]:
    """Dovecot's REFS threads of the selected folder (``UID THREAD REFS UTF-8 ALL``), as UIDs."""
    return [_flatten(t) for t in client.thread(algorithm="REFS", criteria="ALL", charset="UTF-8")]


def compare(url: str, inbox_name: str, dovecot: list[set[int]]) -> tuple[int, set[str]]:
    """Compare the warehouse's threads of the inbox's INBOX with Dovecot's.

    Returns:
        The number of messages compared (distinct messages plus quarantined copies) and the
        messages (keys, or ``uid:N`` for a quarantined copy) whose threads differ.
    """
    rows = query(
        url,
        "SELECT c.uid, m.message_key, m.thread_id FROM inboxsync.message_copies c"
        " JOIN inboxsync.messages m USING (message_key)"
        " JOIN inboxsync.inboxes i USING (inbox_id)"
        " WHERE i.name = %s AND c.folder = 'INBOX'",
        (inbox_name,),
    )
    key_of = {uid: key for uid, key, _ in rows}
    ours: dict[str, set[str]] = {}
    for _, key, thread_id in rows:
        ours.setdefault(thread_id, set()).add(key)
    our_group = {key: frozenset(g) for g in ours.values() for key in g}

    # Dovecot's threads in message keys, united where they share a message (duplicates).
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    missing = set()
    for group in dovecot:
        keys = [key_of.get(uid) or f"uid:{uid}" for uid in group]
        missing |= {k for k in keys if k.startswith("uid:")}
        for k in keys:
            parent[find(k)] = find(keys[0])
    theirs: dict[str, set[str]] = {}
    for k in parent:
        theirs.setdefault(find(k), set()).add(k)
    their_group = {k: frozenset(g) for g in theirs.values() for k in g}
    everything = our_group.keys() | their_group.keys()
    return len(everything), {k for k in everything if our_group.get(k) != their_group.get(k)}


# archive: (messages in the mbox, distinct messages + quarantined copies compared, disagreeing)
ARCHIVES = {
    "notmuch-list": (176, 176, 0),
    # One copy quarantined: a test message whose whole header is 'List-Id: <test@test.invalid>'.
    "ponymail-apache": (809, 809, 1),
    "util-linux": (3509, 3486, 0),  # 23 emails twice
    "jailhouse-dev": (5588, 5587, 0),  # one email twice
}


@pytest.mark.parametrize("archive", list(ARCHIVES))
def test_threads_agree_with_dovecot_thread_refs(archive, services, make_inbox, warehouse_url, imap):
    from inboxsync.sync import Budget, sync_inbox

    raw = read_mbox(corpus("lists", f"{archive}.mbox.gz"))
    inbox = make_inbox()
    services.deliver(inbox.username, "INBOX", raw)
    started = time.monotonic()
    result = sync_inbox(inbox.name, url=warehouse_url, budget=Budget())
    client = imap(inbox.username, inbox.password)
    client.select_folder("INBOX", readonly=True)
    compared, differing = compare(warehouse_url, inbox.name, dovecot_threads(client))

    agreement = 1 - len(differing) / compared
    print(
        f"{archive}: {compared} messages, {len(differing)} in differently composed threads,"
        f" agreement {agreement:.4%}; sync {time.monotonic() - started:.2f} s,"
        f" derive {result.derived.seconds:.2f} s"
    )
    assert (len(raw), compared, len(differing)) == ARCHIVES[archive]
    assert agreement >= 0.995
    unthreaded = "SELECT count(*) FROM inboxsync.messages WHERE thread_id IS NULL"
    assert query(warehouse_url, unthreaded) == [(0,)]


def _groups(url: str) -> set[frozenset[str]]:
    groups: dict[str, set[str]] = {}
    for key, thread_id in query(url, "SELECT message_key, thread_id FROM inboxsync.messages"):
        groups.setdefault(thread_id, set()).add(key)
    return {frozenset(g) for g in groups.values()}


def test_ten_shuffled_batches_give_the_threads_of_one_load(services, make_inbox, warehouse_url):
    import random

    from inboxsync import registry, warehouse
    from inboxsync.sync import Budget, sync_inbox

    raw = read_mbox(corpus("lists", "util-linux.mbox.gz"))
    whole = make_inbox()
    services.deliver(whole.username, "INBOX", raw)
    sync_inbox(whole.name, url=warehouse_url, budget=Budget())

    # The same archive in random order, ten deliveries, a sync (and derive) after each, into a
    # second warehouse: every batch links to, starts or merges threads of the earlier ones.
    shuffled_url = services.create_database(warehouse_url.rsplit("/", 1)[1] + "_b", drop=True)
    warehouse.migrate(shuffled_url)
    batched = make_inbox()
    with warehouse.transaction(shuffled_url) as cur:
        registry.add_inbox(
            cur, batched.name, host=services.host, port=services.imaps_port, security="ssl",
            username=batched.username, password=batched.password, owner_email=batched.username,
            create_contacts=True, ca_file=str(services.ca_file),
        )  # fmt: skip
    order = list(raw)
    random.Random(4).shuffle(order)
    merged = 0
    for n in range(10):
        services.deliver(batched.username, "INBOX", order[n * 351 : (n + 1) * 351])
        merged += sync_inbox(batched.name, url=shuffled_url, budget=Budget()).derived.merged_threads

    assert _groups(shuffled_url) == _groups(warehouse_url)
    assert len(_groups(warehouse_url)) == 1442
    assert merged > 0  # the batches did have to merge threads
    recorded = query(shuffled_url, "SELECT count(*) FROM inboxsync.thread_merges")[0][0]
    assert recorded == merged
    # Merged ids point at surviving threads, which exist.
    assert query(
        shuffled_url,
        "SELECT count(*) FROM inboxsync.thread_merges m"
        " LEFT JOIN inboxsync.threads t USING (thread_id) WHERE t.thread_id IS NULL",
    ) == [(0,)]
    assert query(
        shuffled_url, "SELECT count(*), sum(message_count) FROM inboxsync.threads"
    ) == query(warehouse_url, "SELECT count(*), sum(message_count) FROM inboxsync.threads")
