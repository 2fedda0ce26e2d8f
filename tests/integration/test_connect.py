"""`inboxsync inbox add`: verify before saving, then the first sync at once.

Here no api-server is configured or reachable, so the first sync runs in-process (the DAG-run
path is in test_plugin.py, against a real api-server and scheduler).
"""

from __future__ import annotations

import io
import json
import socket
import sys

import pytest

from tests.conftest import query, unique_user

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _main(argv: list[str], stdin: str, monkeypatch, capsys) -> tuple[int, str, str]:
    from inboxsync.cli import main

    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def _message(to: str, n: int) -> bytes:
    return (f"From: c{n}@globex.example\r\nTo: {to}\r\nSubject: s{n}\r\n"
            f"Message-ID: <connect-{n}@globex.example>\r\n\r\nhi\r\n").encode()  # fmt: skip


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("refused", "connection refused by 127.0.0.1:{port}: check the port"),
        ("tls_on_plain_port", "TLS handshake with 127.0.0.1:{port} failed"),
        ("untrusted_certificate", "TLS certificate of 127.0.0.1:{port} could not be verified"),
        ("bad_password", "refused the login of '{user}'"),
        ("missing_folder", "cannot open folder 'Archive'"),
    ],
)
def test_a_failed_verification_saves_nothing(
    case, expected, services, warehouse_url, monkeypatch, capsys
):
    from airflow.sdk.exceptions import AirflowNotFoundException

    from inboxsync import registry
    from inboxsync.connections import get_connection

    user = unique_user("vera")
    services.add_mail_user(user, "vera-right-pw")
    name = user.split("@")[0]  # unique: its connection id is used by no earlier run
    port = {"refused": _free_port(), "tls_on_plain_port": services.imap_port}.get(
        case, services.imaps_port
    )
    argv = ["inbox", "add", name, "--host", services.host, "--port", str(port),
            "--username", user, "--password-stdin"]  # fmt: skip
    if case != "untrusted_certificate":
        argv += ["--ca-file", str(services.ca_file)]
    if case == "missing_folder":
        argv += ["--folder", "INBOX", "--folder", "Archive"]
    password = "wrong-pw" if case == "bad_password" else "vera-right-pw"

    code, out, err = _main(argv, password + "\n", monkeypatch, capsys)

    assert code == 1
    assert expected.format(port=port, user=user) in err
    assert password not in out + err
    assert "saved" not in out
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.inboxes") == [(0,)]
    with pytest.raises(AirflowNotFoundException):
        get_connection(registry.conn_id_for(name))


def test_add_verifies_then_syncs_at_once_in_process(services, warehouse_url, monkeypatch, capsys):
    user = unique_user("ivan")
    services.add_mail_user(user, "ivan-pw-1")
    services.deliver(user, "INBOX", [_message(user, n) for n in range(4)])
    # Configured but nothing listens there: the first sync runs here instead.
    url = f"http://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("INBOXSYNC_AIRFLOW_API_URL", url)
    argv = ["inbox", "add", "Ivan", "--host", services.host, "--port", str(services.imaps_port),
            "--username", user, "--password-stdin", "--ca-file", str(services.ca_file)]  # fmt: skip

    code, out, err = _main(argv, "ivan-pw-1\n", monkeypatch, capsys)

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == (
        f"verified: logged in as {user} at {services.host}:{services.imaps_port}; "
        "folders to sync: INBOX (4 messages), Sent (0 messages)"
    )
    assert lines[1] == "inbox 'Ivan' saved (connection inboxsync_inbox_ivan)"
    assert lines[2].startswith(f"first sync ran here (the Airflow api-server at {url} is not ")
    assert lines[3].startswith("Ivan: folder 'INBOX': fetched 4, loaded 4, quarantined 0")
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.message_copies") == [(4,)]
    assert query(
        warehouse_url, "SELECT folder, last_error FROM inboxsync.sync_state ORDER BY folder"
    ) == [("INBOX", None), ("Sent", None)]


def test_add_on_a_connection_made_in_the_ui(services, warehouse_url, monkeypatch, capsys):
    from inboxsync import registry, warehouse

    user = unique_user("uma")
    services.add_mail_user(user, "uma-pw-1")
    services.deliver(user, "INBOX", [_message(user, 10)])
    # A connection of the imap provider's type, as the UI (or a secrets backend) holds it.
    conn = {"conn_type": "imap", "host": services.host, "port": services.imaps_port,
            "login": user, "password": "uma-pw-1",
            "extra": {"security": "ssl", "ssl_ca_file": str(services.ca_file)}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_SUPPORT_MAILBOX", json.dumps(conn))
    monkeypatch.delenv("INBOXSYNC_AIRFLOW_API_URL", raising=False)

    code, out, err = _main(
        ["inbox", "add", "Support", "--conn-id", "support_mailbox", "--owner", user],
        "",
        monkeypatch,
        capsys,
    )

    assert code == 0, err
    assert "inbox 'Support' saved (connection support_mailbox)" in out
    assert "Support: folder 'INBOX': fetched 1, loaded 1" in out
    assert query(warehouse_url, "SELECT name, conn_id, email_address FROM inboxsync.inboxes") == [
        ("Support", "support_mailbox", user)
    ]
    # Removing the inbox leaves a connection it did not create.
    with warehouse.transaction(warehouse_url) as cur:
        registry.remove_inbox(cur, "Support")
    from inboxsync.connections import get_connection

    assert get_connection("support_mailbox").login == user


def test_conn_id_takes_no_connection_settings(warehouse_url, monkeypatch, capsys):
    code, _, err = _main(
        ["inbox", "add", "X", "--conn-id", "c", "--host", "h"], "", monkeypatch, capsys
    )
    assert code == 1
    assert "--conn-id takes its settings from the connection: drop --host" in err
