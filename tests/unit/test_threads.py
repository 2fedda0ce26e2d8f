"""Unit tests for inboxsync.threads: ancestry chains, placeholders, cycles, merges, order."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from inboxsync.parse import QuarantineError, header_fields_only, key_of_message_id, parse_header
from inboxsync.threads import (
    MAX_CHAIN,
    ExistingThread,
    NewMessage,
    chain,
    group,
    link,
    node_of,
    nodes_by_message,
    thread_at_load,
)

CORPORA = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora"


def msg(key: str, refs: tuple[str, ...] = (), irt: str | None = None, day: int = 1) -> NewMessage:
    return NewMessage(key, f"{key}@x.example", refs, irt, datetime(2026, 10, day, tzinfo=UTC))


def test_chain_prefers_references_and_falls_back_to_in_reply_to() -> None:
    assert chain("m@x", ("a@x", "b@x"), "c@x") == ["a@x", "b@x"]
    assert chain("m@x", (), "c@x") == ["c@x"]
    assert chain("m@x", (), None) == []


def test_chain_drops_own_id_duplicates_and_ids_without_at() -> None:
    # git send-email --in-reply-to=yes sends "References: <yes>": not a msg-id.
    assert chain("m@x", ("yes",), "yes") == []
    assert chain("m@x", ("a@x", "m@x", "b@x", "a@x"), None) == ["b@x", "a@x"]
    assert chain("m@x", ("yes", "a@x"), None) == ["a@x"]


def test_chain_keeps_the_nearest_ancestors_of_an_over_long_references() -> None:
    refs = tuple(f"r{n}@x" for n in range(MAX_CHAIN + 20))
    kept = chain("m@x", refs, None)
    assert len(kept) == MAX_CHAIN
    assert kept[0] == "r20@x" and kept[-1] == f"r{MAX_CHAIN + 19}@x"


def test_node_is_postgres_md5_uuid() -> None:
    # SELECT md5('a@b')::uuid
    assert str(node_of("a@b")) == "a1ca0ed6-e42a-23f4-758e-8a3f6b54de58"


def test_nodes_by_message_are_each_messages_nodes() -> None:
    messages = [
        msg("a", ("root@x.example", "p@x.example")),
        msg("b", ("root@x.example", "p@x.example", "root@x.example")),  # a repeated id
        msg("c", (), "a@x.example"),
        msg("d", ("yes",), "yes"),
        NewMessage("e", None, ("root@x.example",)),  # no Message-ID: its key's node
    ]
    by_key = nodes_by_message(messages)
    assert by_key == {
        m.message_key: [node_of(m.message_id or f"key:{m.message_key}")]
        + [node_of(ref) for ref in chain(m.message_id, m.references, m.in_reply_to)]
        for m in messages
    }
    assert by_key["e"][0] == node_of("key:e")


def test_siblings_of_a_missing_parent_share_a_thread_through_its_placeholder() -> None:
    threads = group([msg("a", ("root@x.example",)), msg("b", (), "root@x.example"), msg("c")])
    assert sorted(map(sorted, threads)) == [["a", "b"], ["c"]]


def test_same_subject_alone_never_threads() -> None:
    # NewMessage has no subject at all: grouping cannot use it. Two unrelated roots stay apart.
    assert len(group([msg("a"), msg("b")])) == 2


def test_reference_cycles_are_harmless() -> None:
    a = NewMessage("a", "a@x", ("b@x",), None, None)
    b = NewMessage("b", "b@x", ("a@x",), None, None)
    selfref = NewMessage("s", "s@x", ("s@x",), "s@x", None)
    assert sorted(map(sorted, group([a, b, selfref]))) == [["a", "b"], ["s"]]


def test_a_new_thread_is_named_after_its_first_message() -> None:
    result = link([msg("late", ("early@x.example",), day=3), msg("early", day=2)], {}, {})
    assert result.message_threads == {"late": "early", "early": "early"}
    assert result.new_threads == {"early"} and result.merges == {}


def test_a_message_joining_two_threads_merges_them_into_the_older() -> None:
    old = ExistingThread("t-old", datetime(2026, 1, 1, tzinfo=UTC))
    new = ExistingThread("t-new", datetime(2026, 5, 1, tzinfo=UTC))
    existing = {node_of("p@x"): "t-new", node_of("q@x"): "t-old"}
    result = link([msg("m", ("p@x", "q@x"))], existing, {"t-old": old, "t-new": new})
    assert result.message_threads == {"m": "t-old"}
    assert result.merges == {"t-new": "t-old"}
    assert result.new_threads == set()
    assert set(result.node_threads.values()) == {"t-old"}


def _incremental(messages: list[NewMessage], batches: int) -> list[set[str]]:
    """Thread in batches, keeping node -> thread state as the warehouse does."""
    nodes: dict = {}
    threads: dict[str, ExistingThread] = {}
    members: dict[str, str] = {}
    size = -(-len(messages) // batches)
    for start in range(0, len(messages), size):
        batch = messages[start : start + size]
        result = link(batch, nodes, threads)
        for merged, survivor in result.merges.items():
            nodes = {n: survivor if t == merged else t for n, t in nodes.items()}
            members = {k: survivor if t == merged else t for k, t in members.items()}
            threads.pop(merged, None)
        nodes.update(result.node_threads)
        members.update(result.message_threads)
        for thread_id in result.new_threads:
            threads[thread_id] = ExistingThread(thread_id, None)
    grouped: dict[str, set[str]] = {}
    for key, thread_id in members.items():
        grouped.setdefault(thread_id, set()).add(key)
    return list(grouped.values())


def _util_linux() -> dict[str, NewMessage]:
    """The distinct messages of the util-linux archive, by key, in archive order."""
    from tests.conftest import read_mbox

    messages = {}
    for raw in read_mbox(CORPORA / "lists" / "util-linux.mbox.gz"):
        try:
            p = parse_header(header_fields_only(raw))
        except QuarantineError:
            continue
        messages.setdefault(
            p.message_key,
            NewMessage(p.message_key, p.message_id, p.references, p.in_reply_to, p.sent_at),
        )
    return messages


@pytest.mark.skipif(not (CORPORA / "lists").is_dir(), reason="corpora not available")
def test_ten_shuffled_batches_equal_one_pass_on_util_linux() -> None:
    ordered = list(_util_linux().values())
    shuffled = ordered[:]
    random.Random(10).shuffle(shuffled)

    one_pass = sorted(map(sorted, group(ordered)))
    assert len(ordered) == 3486 and len(one_pass) == 1442
    assert sorted(map(sorted, _incremental(shuffled, 10))) == one_pass


def test_thread_at_load_is_the_key_of_the_root_else_the_own_key() -> None:
    # The key a message with that Message-ID has (parse_header computes the same).
    root = parse_header(b"Message-ID: <root@x.example>\r\nFrom: a@x.example\r\n\r\n")
    assert key_of_message_id("root@x.example") == root.message_key
    assert thread_at_load("k", "m@x", ("root@x.example", "p@x"), "p@x") == root.message_key
    assert thread_at_load("k", "m@x", (), "root@x.example") == root.message_key
    assert thread_at_load("k", "m@x", ("yes",), "yes") == "k"  # no ancestry: its own key
    assert thread_at_load("k", None, (), None) == "k"


@pytest.mark.skipif(not (CORPORA / "lists").is_dir(), reason="corpora not available")
def test_thread_at_load_names_most_messages_thread_on_util_linux() -> None:
    """The load's guess is what `link` decides for nine messages in ten of a real list archive
    (the derive step rewrites only the others); a guess that names a thread is never another
    thread's."""
    messages = _util_linux()
    linked = link(messages.values(), {}, {}).message_threads
    guesses = {
        key: thread_at_load(key, m.message_id, m.references, m.in_reply_to)
        for key, m in messages.items()
    }
    right = sum(guesses[key] == thread for key, thread in linked.items())
    assert right / len(linked) > 0.85
    thread_ids = set(linked.values())
    assert all(linked[key] == guess for key, guess in guesses.items() if guess in thread_ids)
