"""Classification on every list archive: at most 0.1% auto_reply or bounce, and which ones."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from inboxsync.parse import QuarantineError, header_fields_only, parse_header

CORPORA = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora"

# archive: (kind counts, the auto_reply / bounce messages as (kind, from, subject))
EXPECTED = {
    "notmuch-list": ({"list": 174, "bulk": 2}, []),
    "ponymail-apache": ({"list": 807, "bulk": 1, "quarantined": 1}, []),
    # Spam posted to the list from a postmaster@ address: a postmaster sender is a bounce.
    "util-linux": (
        {"list": 3508, "bounce": 1},
        [("bounce", "postmaster@hokusetubad.sakura.ne.jp", "BUSINESS PROPOSAL")],
    ),
    # Slack invitations relayed by Google Groups with Auto-Submitted: auto-generated; RFC 3834
    # makes them automatic mail, and they are no one's reply.
    "jailhouse-dev": (
        {"list": 5586, "auto_reply": 2},
        [
            (
                "auto_reply",
                "jailhouse-dev@googlegroups.com",
                "peng.fan has invited you to work with them in Slack",
            ),
            (
                "auto_reply",
                "jailhouse-dev@googlegroups.com",
                "Jailhouse Hypervsior on Slack: New Account Details",
            ),
        ],
    ),
}


@pytest.mark.skipif(not (CORPORA / "lists").is_dir(), reason="corpora not available")
@pytest.mark.parametrize("archive", list(EXPECTED))
def test_list_archives_are_almost_never_auto_reply_or_bounce(archive: str) -> None:
    from tests.conftest import read_mbox

    kinds: Counter[str] = Counter()
    flagged = []
    for raw in read_mbox(CORPORA / "lists" / f"{archive}.mbox.gz"):
        try:
            parsed = parse_header(header_fields_only(raw))
        except QuarantineError:
            kinds["quarantined"] += 1
            continue
        kinds[parsed.kind] += 1
        if parsed.kind in ("auto_reply", "bounce"):
            flagged.append((parsed.kind, parsed.from_email, parsed.subject))

    assert (dict(kinds), flagged) == EXPECTED[archive]
    assert len(flagged) <= sum(kinds.values()) / 1000
