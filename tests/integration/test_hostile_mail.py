"""Every message of ``../shared/corpora`` on a real Dovecot, synced: no crash, nothing lost.

How the mail gets onto the server:
- ``tricky/**`` (every file: parser test suites' broken, 8-bit, badly folded and non-mail files)
  and ``bounces/sisimai/maildir/**`` (every file: bounces in LF, CRLF and CR-only line endings)
  go in with real IMAP ``APPEND``, one command per file (IMAPClient has no MULTIAPPEND; about
  600 messages/s), so Dovecot's own APPEND parser sees every byte. A file Dovecot refuses is
  recorded with the server's reason, counted as tried, and the refused set is asserted exactly
  (it is empty today: Dovecot 2.3 accepts all 1,622 files).
- the four list archives ``lists/*.mbox.gz`` (10,082 messages, 38 MB of jailhouse-dev among
  them) are written as Maildir files with ``services.deliver`` (about 9,000 messages/s) to keep
  the test near a minute; Dovecot indexes them exactly like delivered mail.

Each corpus gets its own folder of one inbox, synced in one run with no budget. Then, per
folder: every UID on the server has exactly one row, in ``message_copies`` or in ``quarantine``
(with a reason code), never both; the counts match the server's exactly; and ``verify_inbox``
finds nothing missing, extra or stale. The table printed at the end (run with ``-s``) is the
closing note's "messages tried and accounted for".
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import corpus, iter_files, query, read_mbox, unique_user

pytestmark = pytest.mark.integration

LISTS = ("util-linux", "jailhouse-dev", "ponymail-apache", "notmuch-list")
APPENDED = {"tricky": ("tricky",), "bounces": ("bounces", "sisimai", "maildir")}
# Files Dovecot's APPEND refuses, with the server's reason: none (checked on Dovecot 2.3.19).
EXPECTED_REFUSED: dict[str, str] = {}
QUARANTINE_CODES = ("empty_header", "no_header_fields", "no_identity", "parse_error")


def _append_all(client, folder: str, root: Path) -> tuple[int, dict[str, str]]:
    """APPEND every file under ``root`` to ``folder``; returns (tried, refused path -> reason)."""
    from imapclient.exceptions import IMAPClientError

    client.create_folder(folder)
    tried, refused = 0, {}
    for path in iter_files(root):
        tried += 1
        try:
            client.append(folder, path.read_bytes())
        except IMAPClientError as exc:
            refused[str(path.relative_to(root))] = str(exc)
    return tried, refused


def _server_uids(client, folder: str) -> set[int]:
    client.select_folder(folder, readonly=True)
    return set(client.search("ALL"))


def test_every_corpus_message_is_a_copy_or_quarantined(services, warehouse_url, imap):
    from inboxsync import registry, warehouse
    from inboxsync.sync import Budget, sync_inbox
    from inboxsync.verify import verify_inbox

    user, password = unique_user("hostile"), "hostile-pw-1"
    services.add_mail_user(user, password)
    client = imap(user, password)
    tried: dict[str, int] = {}
    refused: dict[str, dict[str, str]] = {}
    timings: dict[str, float] = {}

    started = time.monotonic()
    for name, parts in APPENDED.items():
        tried[name], refused[name] = _append_all(client, name, corpus(*parts))
    timings["append"] = time.monotonic() - started
    started = time.monotonic()
    for archive in LISTS:
        messages = read_mbox(corpus("lists", f"{archive}.mbox.gz"))
        folder = f"list-{archive}"
        tried[folder] = services.deliver(user, folder, messages)
    timings["deliver"] = time.monotonic() - started
    folders = list(tried)

    assert refused == {name: EXPECTED_REFUSED for name in APPENDED}
    assert tried == {
        "tricky": 790,
        "bounces": 832,
        "list-util-linux": 3509,
        "list-jailhouse-dev": 5588,
        "list-ponymail-apache": 809,
        "list-notmuch-list": 176,
    }

    with warehouse.transaction(warehouse_url) as cur:
        inbox = registry.add_inbox(
            cur, "Hostile", host=services.host, port=services.imaps_port, security="ssl",
            username=user, password=password, owner_email=user, create_contacts=True,
            ca_file=str(services.ca_file), folders=folders,
        )  # fmt: skip

    started = time.monotonic()
    result = sync_inbox("Hostile", url=warehouse_url, budget=Budget())
    timings["sync"] = time.monotonic() - started

    by_folder = {f.folder: f for f in result.folders}
    assert sorted(by_folder) == sorted(folders)
    rows = []
    for folder in folders:
        on_server = _server_uids(client, folder)
        copies = {
            uid
            for (uid,) in query(
                warehouse_url,
                "SELECT uid FROM inboxsync.message_copies WHERE inbox_id = %s AND folder = %s"
                " AND expunged_at IS NULL",
                (inbox.inbox_id, folder),
            )
        }
        quarantined = dict(
            query(
                warehouse_url,
                "SELECT uid, reason FROM inboxsync.quarantine WHERE inbox_id = %s AND folder = %s",
                (inbox.inbox_id, folder),
            )
        )
        # Every UID on the server: exactly one row, in one of the two tables.
        assert copies & set(quarantined) == set(), folder
        assert copies | set(quarantined) == on_server, folder
        assert len(on_server) == tried[folder] - len(refused.get(folder, {}))
        assert all(r.startswith(QUARANTINE_CODES) for r in quarantined.values()), folder
        assert by_folder[folder].fetched == len(on_server)
        assert by_folder[folder].loaded == len(copies)
        assert by_folder[folder].quarantined == len(quarantined)
        lost = len(on_server) - len(copies) - len(quarantined)
        rows.append((folder, tried[folder], len(refused.get(folder, {})), len(on_server),
                     len(copies), len(quarantined), lost))  # fmt: skip

    # Nothing else anywhere: no copy or quarantine row outside these folders, none expunged.
    total = sum(r[3] for r in rows)
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.message_copies") == [
        (sum(r[4] for r in rows),)
    ]
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.quarantine") == [
        (sum(r[5] for r in rows),)
    ]
    checks = verify_inbox("Hostile", url=warehouse_url)
    found = {c.folder: (c.on_server, c.in_warehouse, c.missing, c.extra, c.stale) for c in checks}
    assert found == {r[0]: (r[3], r[3], 0, 0, 0) for r in rows}

    header = ("corpus", "tried", "refused", "on server", "copies", "quarantined", "lost")
    lines = [f"{header[0]:22}" + "".join(f"{h:>12}" for h in header[1:])]
    for r in [*rows, ("total", sum(r[1] for r in rows), sum(r[2] for r in rows), total,
                      sum(r[4] for r in rows), sum(r[5] for r in rows), 0)]:  # fmt: skip
        lines.append(f"{r[0]:22}" + "".join(f"{v:>12,}" for v in r[1:]))
    reasons = query(
        warehouse_url,
        "SELECT split_part(reason, ':', 1), count(*) FROM inboxsync.quarantine GROUP BY 1"
        " ORDER BY 1",
    )
    lines.append("quarantine reasons: " + ", ".join(f"{code} {n}" for code, n in reasons))
    lines.append(", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    print("\n" + "\n".join(lines))
    assert all(r[6] == 0 for r in rows)
