"""What Airflow learns about inboxsync through the ``apache_airflow_provider`` entry point.

Airflow 3 takes connection types from providers only (a plugin cannot register a hook). The
``imap`` type belongs to apache-airflow-providers-imap, whose ``ImapHook`` has no
``test_connection``; inboxsync registers its own type, ``inboxsync_imap``, backed by
:class:`inboxsync.hooks.InboxHook`, so the connection form shows the fields an inbox needs and
its Test button logs in and lists the folders the sync would read.
"""

from __future__ import annotations

from typing import Any

from inboxsync.settings import INBOX_CONN_TYPE


def get_provider_info() -> dict[str, Any]:
    """The provider description Airflow's ProvidersManager validates and reads."""
    return {
        "package-name": "inboxsync",
        "name": "inboxsync",
        "description": "IMAP inboxes into a PostgreSQL warehouse.",
        "connection-types": [
            {
                "hook-class-name": "inboxsync.hooks.InboxHook",
                "hook-name": "IMAP inbox (inboxsync)",
                "connection-type": INBOX_CONN_TYPE,
                "conn-fields": {
                    "security": {
                        "label": "Security (ssl, starttls or none)",
                        "schema": {"type": ["string", "null"], "default": "ssl"},
                    },
                    "ssl_ca_file": {
                        "label": "CA file to verify the server with",
                        "schema": {"type": ["string", "null"]},
                    },
                    "auth_mechanism": {
                        "label": "Password mechanism (login or plain)",
                        "schema": {"type": ["string", "null"]},
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["schema"],
                    "relabeling": {"login": "Username", "password": "Password or app password"},
                    "placeholders": {
                        "host": "imap.example.com",
                        "port": "993 (ssl) or 143 (starttls)",
                        "login": "sales@example.com",
                    },
                },
            }
        ],
    }
