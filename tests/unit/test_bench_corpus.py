"""The benchmark's mail: mbox streaming and the id rewriting that keeps repeated threads real."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

from inboxsync.bench.corpus import bench_messages, read_mbox, rewrite_ids
from inboxsync.parse import parse_header
from tests.conftest import corpus

MESSAGE = (
    b"Received: from a.example by b.example\n"
    b"\tfor <someone@b.example>; Mon, 1 Jan 2024 00:00:00 +0000\n"
    b"Message-Id: <abc@host.example>\n"
    b"In-Reply-To: <parent@host.example>\n"
    b"REFERENCES: <root@host.example>\n"
    b" <parent@host.example>\n"
    b"From: Ann <ann@a.example>\n"
    b"Subject: re: <not-an-id@x.example>\n"
    b"\n"
    b"Message-ID: <body@x.example>\n"
    b"References: <body2@x.example>\n"
)


def test_rewrite_touches_only_id_fields_of_the_header():
    assert rewrite_ids(MESSAGE, 7) == (
        b"Received: from a.example by b.example\n"
        b"\tfor <someone@b.example>; Mon, 1 Jan 2024 00:00:00 +0000\n"
        b"Message-Id: <r7.abc@host.example>\n"
        b"In-Reply-To: <r7.parent@host.example>\n"
        b"REFERENCES: <r7.root@host.example>\n"
        b" <r7.parent@host.example>\n"
        b"From: Ann <ann@a.example>\n"
        b"Subject: re: <not-an-id@x.example>\n"
        b"\n"
        b"Message-ID: <body@x.example>\n"
        b"References: <body2@x.example>\n"
    )


def test_rewrite_keeps_crlf_whitespace_and_bare_ids():
    raw = (
        b"Message-ID:\r\n <  spaced@h>\r\n"
        b"In-Reply-To: bare@h (comment)\r\n"
        b"References: <>\r\n"
        b"\r\n"
        b"body\r\n"
    )
    assert rewrite_ids(raw, 0) == (
        b"Message-ID:\r\n <  r0.spaced@h>\r\n"
        b"In-Reply-To: r0.bare@h (comment)\r\n"
        b"References: <>\r\n"
        b"\r\n"
        b"body\r\n"
    )


def test_rewrite_of_an_id_folded_inside_its_brackets():
    raw = b"References: <a@h> <long-id-\n split@h>\nSubject: x\n\nbody\n"
    assert rewrite_ids(raw, 3) == (
        b"References: <r3.a@h> <r3.long-id-\n split@h>\nSubject: x\n\nbody\n"
    )


def test_message_without_header_end_is_all_header():
    assert rewrite_ids(b"Message-ID: <x@y>", 2) == b"Message-ID: <r2.x@y>"
    assert rewrite_ids(b"\nMessage-ID: <x@y>\n", 2) == b"\nMessage-ID: <x@y>\n"


def test_read_mbox_splits_unquotes_and_drops_separator_blank_lines(tmp_path: Path):
    path = tmp_path / "box.mbox.gz"
    with gzip.open(path, "wb") as fh:
        fh.write(
            b"From a@b Mon Jan  1 00:00:00 2024\n"
            b"Subject: one\n\nline\n>From the start\n>>From quoted twice\n\n"
            b"From c@d Mon Jan  1 00:00:01 2024\n"
            b"Subject: two\n\nFromage is not a separator\n"
        )
    assert list(read_mbox(path)) == [
        b"Subject: one\n\nline\nFrom the start\n>From quoted twice\n",
        b"Subject: two\n\nFromage is not a separator\n",
    ]


def test_read_mbox_counts_the_real_archive():
    # The corpus README: notmuch-list.mbox.gz holds 176 messages.
    assert sum(1 for _ in read_mbox(corpus("lists", "notmuch-list.mbox.gz"))) == 176


def _graph(messages: list[bytes]) -> list[tuple[str | None, str | None, tuple[str, ...]]]:
    out = []
    for raw in messages:
        parsed = parse_header(raw)
        out.append((parsed.message_id, parsed.in_reply_to, parsed.references))
    return out


def test_repetitions_keep_threads_and_share_no_id():
    path = corpus("lists", "notmuch-list.mbox.gz")
    original = list(read_mbox(path))
    count = len(original)
    stream = list(bench_messages([path], 2 * count + 5))
    assert len(stream) == 2 * count + 5
    base = _graph(original)

    def prefixed(r: int, graph):
        def p(i: str | None) -> str | None:
            return None if i is None else f"r{r}.{i}"

        return [(p(m), p(irt), tuple(p(x) for x in refs)) for m, irt, refs in graph]

    # Repetition r is the archive with every id mapped the same way: the same threads.
    assert _graph(stream[:count]) == prefixed(0, base)
    assert _graph(stream[count : 2 * count]) == prefixed(1, base)
    assert _graph(stream[2 * count :]) == prefixed(2, base[:5])
    # Every message resolves its parent inside its own repetition, as often as in the archive.
    ids0 = {m for m, _, _ in _graph(stream[:count])}
    ids1 = {m for m, _, _ in _graph(stream[count : 2 * count])}
    assert ids0.isdisjoint(ids1)
    assert len(ids1) == len({m for m, _, _ in base})
    parents_found = sum(1 for _, irt, _ in _graph(stream[count : 2 * count]) if irt in ids1)
    assert parents_found == sum(1 for _, irt, _ in base if irt in {m for m, _, _ in base})
    assert parents_found > 100  # the archive's 98-message thread is in there
    # Nothing but the id fields changed: same size difference as the prefixes account for.
    for raw, copy in itertools.islice(zip(original, stream[count:], strict=False), 50):
        assert copy.replace(b"<r1.", b"<") == raw


def test_bench_messages_stops_at_exactly_n():
    path = corpus("lists", "notmuch-list.mbox.gz")
    assert sum(1 for _ in bench_messages([path], 0)) == 0
    assert sum(1 for _ in bench_messages([path], 177)) == 177
