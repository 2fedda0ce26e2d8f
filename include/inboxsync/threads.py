"""Threads over References and In-Reply-To, JWZ style, computed incrementally: pure functions.

The grouping follows Jamie Zawinski's algorithm (and RFC 5256 ``THREAD=REFERENCES`` without its
subject step, which is what Dovecot's ``THREAD REFS`` does):

- a message's ancestry is its References, or, when it has none, its In-Reply-To;
- every Message-ID in that chain is a node, whether we hold that message or not (the placeholder
  parents of JWZ), and consecutive ids of the chain, then the last one and the message itself,
  are linked;
- a thread is a set of messages connected through such links. Subjects are never used.

Only membership is stored (``messages.thread_id``), not the tree, so the links are kept as a
union-find over nodes: cycles (A references B, B references A) cannot do harm, a message that
references itself is one node, and over-long References were already cut to their last 500 ids
by the parser. Membership of connected components does not depend on the order messages arrive
in, which is what makes the incremental step equal to a full recomputation.

The incremental step (`link`) takes the new messages and the threads their nodes already belong
to: a new message joins a thread, starts one, or links several into one; the oldest thread's id
survives and the others are reported as merged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from inboxsync.parse import key_of_message_id

#: A node: the text of a UUID, lower-case with dashes, as PostgreSQL prints a ``uuid`` (and as
#: psycopg2 returns one). Plain strings, not ``uuid.UUID`` objects: sets and dicts of nodes hash
#: them at C speed (UUID's ``__hash__`` and ``__eq__`` are Python code, a third of the derive
#: step's Python time in `make bench`'s profile).
Node = str


#: Ids of one chain beyond this are dropped from the oldest end (the parser keeps 500 already).
MAX_CHAIN = 500


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to thread.

    Attributes:
        message_key: The message's key.
        message_id: Its Message-ID without brackets, or None.
        references: References ids, oldest first.
        in_reply_to: The first In-Reply-To id, or None.
        sent_at: Its date (used only to name a new thread after its first message).
    """

    message_key: str
    message_id: str | None
    references: Sequence[str] = ()
    in_reply_to: str | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ExistingThread:
    """A thread already in the warehouse that a new message touches.

    Attributes:
        thread_id: Its id.
        first_message_at: Its first message's date (the oldest thread survives a merge).
    """

    thread_id: str
    first_message_at: datetime | None


@dataclass
class LinkResult:
    """What `link` decided.

    Attributes:
        message_threads: message_key -> thread_id for every new message.
        node_threads: node -> thread_id for every node of the new messages.
        merges: merged thread_id -> surviving thread_id.
        new_threads: ids of threads started by this step.
    """

    message_threads: dict[str, str] = field(default_factory=dict)
    node_threads: dict[Node, str] = field(default_factory=dict)
    merges: dict[str, str] = field(default_factory=dict)
    new_threads: set[str] = field(default_factory=set)


def chain(message_id: str | None, references: Sequence[str], in_reply_to: str | None) -> list[str]:
    """Return the ancestry of a message, oldest first, as JWZ and RFC 5256 read it.

    References wins; In-Reply-To is used only when there are no References (it is the last
    References id in well-behaved mail, and clients that rewrite it wrongly do exist). Ids
    without ``@`` are not msg-ids (RFC 5322 ``id-left "@" id-right``) and are dropped, as Dovecot
    drops them: git send-email's ``--in-reply-to=yes`` mistake sends ``References: <yes>``, which
    would otherwise chain unrelated patch series into one thread. The message's own id and
    duplicates are dropped, keeping the latest position of each id.

    Args:
        message_id: The message's own id.
        references: Its References ids, oldest first.
        in_reply_to: Its first In-Reply-To id.

    Returns:
        Ancestor ids, oldest first, at most `MAX_CHAIN`.
    """
    ids = [ref for ref in references if "@" in ref]
    if not ids:
        if in_reply_to and "@" in in_reply_to and in_reply_to != message_id:
            return [in_reply_to]
        return []
    if message_id not in ids and len(set(ids)) == len(ids):  # the usual References
        return ids[-MAX_CHAIN:]
    seen: set[str] = set()
    kept: list[str] = []
    for ref in reversed(ids):
        if ref != message_id and ref not in seen:
            seen.add(ref)
            kept.append(ref)
    kept.reverse()
    return kept[-MAX_CHAIN:]


def thread_at_load(
    message_key: str, message_id: str | None, references: Sequence[str], in_reply_to: str | None
) -> str:
    """The thread a message most likely ends in, known before it is threaded: the load writes it.

    A thread is named after its first message, which is usually its root: the first id of every
    member's ancestry. So the guess is the key of that first id (`parse.key_of_message_id`), or
    the message's own key when it has no ancestry. The derive step (`link`) corrects the guesses
    that miss: a root we do not hold, a thread whose first message by date is not its root,
    threads that merge. A guess that names an existing thread is right: the message shares a
    node with the message that thread is named after.

    Args:
        message_key: The message's key.
        message_id: Its Message-ID, or None.
        references: Its References ids, oldest first.
        in_reply_to: Its first In-Reply-To id, or None.

    Returns:
        A thread id.
    """
    ancestry = chain(message_id, references, in_reply_to)
    return key_of_message_id(ancestry[0]) if ancestry else message_key


def node_of(message_id: str) -> Node:
    """The node of a Message-ID: its md5, so that ids of any length index well.

    Args:
        message_id: A Message-ID without brackets.

    Returns:
        The node id (equal to PostgreSQL's ``md5(message_id)::uuid``).
    """
    h = hashlib.md5(message_id.encode("utf-8")).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def nodes_by_message(messages: Iterable[NewMessage]) -> dict[str, list[Node]]:
    """Every node each message links together, by message key: the message itself (its
    Message-ID, or its key when it has none), then its ancestry (`chain`).

    Each id is hashed once: the messages of a thread share their ancestors, and a step of a
    backfill holds a quarter to a half of its ids more than once.
    """
    known: dict[str, Node] = {}
    out: dict[str, list[Node]] = {}
    for msg in messages:
        own = msg.message_id or f"key:{msg.message_key}"
        ids = [own, *chain(msg.message_id, msg.references, msg.in_reply_to)]
        nodes = []
        for message_id in ids:
            node = known.get(message_id)
            if node is None:
                node = known[message_id] = node_of(message_id)
            nodes.append(node)
        out[msg.message_key] = nodes
    return out


def link(
    messages: Iterable[NewMessage],
    existing_nodes: Mapping[Node, str],
    existing_threads: Mapping[str, ExistingThread],
    message_nodes: Mapping[str, list[Node]] | None = None,
) -> LinkResult:
    """Thread new messages against the threads already stored.

    Args:
        messages: The messages not threaded yet.
        existing_nodes: For the nodes of those messages that are already stored, their thread.
        existing_threads: The stored threads named in `existing_nodes`.
        message_nodes: `nodes_by_message` of the messages, when the caller has them
            already (they are computed otherwise).

    Returns:
        Thread of every new message and node, the merges, and the new threads. A component
        that touches no stored thread starts one named after its first message (by date, then
        key); one that touches several keeps the one with the oldest first message (then the
        smallest id) and merges the others into it.
    """
    messages = list(messages)
    if message_nodes is None:
        message_nodes = nodes_by_message(messages)
    # Union-find over nodes and ("thread", id) items, inlined: this loop is most of a derive
    # step's Python. Each message's nodes join its own node.
    parent: dict[object, object] = {}

    def find(item: object) -> object:
        up = parent.get(item, item)
        while up != item:
            grand = parent.get(up, up)
            parent[item] = grand
            item, up = up, grand
        return item

    for msg in messages:
        nodes = message_nodes[msg.message_key]
        own = find(nodes[0])
        for node in nodes:
            if node is not nodes[0]:
                root = find(node)
                if root != own:
                    parent[root] = own
            thread_id = existing_nodes.get(node)
            if thread_id is not None:
                root = find(("thread", thread_id))
                if root != own:
                    parent[root] = own

    # Per component: the stored threads it touches and its first new message.
    stored: dict[object, set[str]] = {}
    first: dict[object, tuple[tuple[bool, datetime | str, str], NewMessage]] = {}
    roots: list[object] = []
    for msg in messages:
        root = find(message_nodes[msg.message_key][0])
        roots.append(root)
        order = _order(msg)
        seen = first.get(root)
        if seen is None:
            stored[root] = set()
            first[root] = (order, msg)
        elif order < seen[0]:
            first[root] = (order, msg)
    for thread_id in set(existing_nodes.values()):
        root = find(("thread", thread_id))
        if root in stored:
            stored[root].add(thread_id)

    result = LinkResult()
    chosen: dict[object, str] = {}
    for root, thread_ids in stored.items():
        if not thread_ids:
            chosen[root] = first[root][1].message_key
            result.new_threads.add(chosen[root])
            continue
        survivor = min(thread_ids, key=lambda t: _thread_order(existing_threads.get(t), t))
        chosen[root] = survivor
        for thread_id in thread_ids - {survivor}:
            result.merges[thread_id] = survivor
    message_threads, node_threads = result.message_threads, result.node_threads
    for msg, root in zip(messages, roots, strict=True):
        thread_id = chosen[root]
        message_threads[msg.message_key] = thread_id
        for node in message_nodes[msg.message_key]:
            node_threads[node] = thread_id
    return result


def group(messages: Iterable[NewMessage]) -> list[set[str]]:
    """Thread a set of messages from scratch (tests, checks): the message keys of each thread.

    Args:
        messages: The messages.

    Returns:
        One set of message keys per thread.
    """
    threads: dict[str, set[str]] = {}
    for key, thread_id in link(messages, {}, {}).message_threads.items():
        threads.setdefault(thread_id, set()).add(key)
    return list(threads.values())


def _order(msg: NewMessage) -> tuple[bool, datetime | str, str]:
    # Messages without a date sort last; the key breaks ties so the choice is deterministic.
    return (msg.sent_at is None, msg.sent_at or "", msg.message_key)


def _thread_order(thread: ExistingThread | None, thread_id: str) -> tuple[bool, object, str]:
    when = thread.first_message_at if thread else None
    return (when is None, when or "", thread_id)
