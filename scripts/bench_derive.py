"""Time the derive step after a 10,000-message sync, and an incremental derive after it.

Usage: .venv/bin/python scripts/bench_derive.py [N]   (default 10000; local services under
.local/bench-derive, stopped afterwards unless INBOXSYNC_KEEP_SERVICES is set)

Seeds N messages from the real list archives (repeated with rewritten Message-IDs, as
``make bench`` does) into one inbox, syncs it (the first sync derives everything), then delivers
200 replies to those messages and syncs again: the second derive only touches their threads.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

from inboxsync import local_airflow, localenv, registry, warehouse
from inboxsync.bench.corpus import bench_messages, corpus_paths
from inboxsync.parse import header_fields_only, parse_header
from inboxsync.sync import Budget, sync_inbox

REPO = Path(__file__).resolve().parents[1]


def main(n: int) -> None:
    root = REPO / ".local" / "bench-derive"
    services = localenv.start(root)
    try:
        env = local_airflow.airflow_env(
            services, root / "airflow", metadata_db="airflow_bd", warehouse_db="postgres"
        )
        local_airflow.apply_env(env)
        local_airflow.migrate_metadata(env)  # inbox secrets live in Airflow connections
        url = services.create_database("bench_derive", drop=True)
        os.environ["AIRFLOW_CONN_INBOXSYNC_WAREHOUSE"] = url
        warehouse.migrate(url)
        user = f"bench-{uuid.uuid4().hex[:8]}@team.example"
        services.add_mail_user(user, "bench-secret")
        with warehouse.transaction(url) as cur:
            registry.add_inbox(
                cur, "bench", host=services.host, port=services.imaps_port, security="ssl",
                username=user, password="bench-secret", owner_email=user, create_contacts=True,
                ca_file=str(services.ca_file),
            )  # fmt: skip
        raw = list(bench_messages(corpus_paths(REPO / ".." / "shared" / "corpora" / "lists"), n))
        services.deliver(user, "INBOX", raw)
        started = time.monotonic()
        first = sync_inbox("bench", url=url, budget=Budget())
        total = time.monotonic() - started
        d = first.derived
        print(f"first sync: {first.fetched} messages in {total:.2f} s, of which derive"
              f" {d.seconds:.2f} s ({d.messages} messages, {d.new_threads} threads)")  # fmt: skip

        replies = []
        for i, message in enumerate(raw[:200]):
            parent = parse_header(header_fields_only(message)).message_id
            replies.append(
                f"From: r{i}@customer.example\r\nTo: {user}\r\nSubject: Re: x\r\n"
                f"Date: Mon, 05 Oct 2026 10:00:00 +0000\r\n"
                f"Message-ID: <bench-r{i}@customer.example>\r\n"
                f"In-Reply-To: <{parent}>\r\nReferences: <{parent}>\r\n\r\nok\r\n".encode()
            )
        services.deliver(user, "INBOX", replies)
        second = sync_inbox("bench", url=url, budget=Budget())
        d = second.derived
        print(f"incremental: {second.fetched} new messages, derive {d.seconds:.3f} s"
              f" ({d.touched_threads} threads touched)")  # fmt: skip
    finally:
        if not os.environ.get("INBOXSYNC_KEEP_SERVICES"):
            services.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)
