"""A warehouse with the demo mail synced from two team members' inboxes, for the dbt tests.

Alice's and Bob's demo mailboxes (inboxsync.demo_mail) are delivered to fresh Dovecot users,
registered as connected inboxes (owners alice@ and bob@acme.example) and synced with the real
sync, derive step included. Not a fixture itself: each test module builds its own database.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from tests.conftest import unique_user

#: The moment the marts measure age against in these tests (demo mail is from 5-16 Oct 2026).
AS_OF = "2026-10-20 00:00:00+00"


@dataclass
class DemoWarehouse:
    """The synced warehouse: its URL and the connected inboxes' names by team member."""

    url: str
    inbox_names: dict[str, str]  # team member's email -> inbox name
    usernames: dict[str, str]  # team member's email -> Dovecot user


def synced_demo_warehouse(services, database: str, label: str) -> DemoWarehouse:
    """Create ``database`` afresh, point ``inboxsync_warehouse`` at it and sync the demo mail.

    Args:
        services: The test services.
        database: Name of the warehouse database (dropped and recreated).
        label: Suffix of the inbox names, unique per test module (they are Airflow conn ids).

    Returns:
        The warehouse. ``AIRFLOW_CONN_INBOXSYNC_WAREHOUSE`` is left pointing at it.
    """
    from inboxsync import registry, warehouse
    from inboxsync.demo_mail import TEAM, demo_mailboxes
    from inboxsync.sync import sync_inbox

    url = services.create_database(database, drop=True)
    os.environ["AIRFLOW_CONN_INBOXSYNC_WAREHOUSE"] = url
    warehouse.migrate(url)
    mailboxes = demo_mailboxes()
    names, users = {}, {}
    for member in TEAM:
        username = unique_user(member.email.split("@")[0])
        services.add_mail_user(username, member.password)
        for folder, messages in mailboxes[member.email].items():
            services.deliver(username, folder, messages)
        name = f"{member.name} ({label})"
        with warehouse.transaction(url) as cur:
            registry.add_inbox(
                cur,
                name,
                host=services.host,
                port=services.imaps_port,
                security="ssl",
                username=username,
                password=member.password,
                owner_email=member.email,
                create_contacts=True,
                ca_file=str(services.ca_file),
            )
        names[member.email], users[member.email] = name, username
    for name in names.values():
        sync_inbox(name, url=url)
    return DemoWarehouse(url, names, users)
