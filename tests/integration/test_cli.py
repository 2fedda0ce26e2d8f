"""The `inboxsync` command against the real services: connect, list, test, sync, remove."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import query, unique_user

pytestmark = pytest.mark.integration

INBOXSYNC = str(Path(sys.executable).with_name("inboxsync"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _add(name: str, *args: str, password: str, monkeypatch, capsys) -> tuple[int, str, str]:
    from inboxsync.cli import main

    monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
    code = main(["inbox", "add", name, "--password-stdin", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _run(*argv: str, capsys) -> tuple[int, str, str]:
    from inboxsync.cli import main

    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_add_list_test_sync_remove(services, warehouse_url, monkeypatch, capsys):
    from inboxsync.connections import get_connection

    user, password = unique_user("carol"), "carol-s3cret-pw"
    services.add_mail_user(user, password)
    services.deliver(user, "INBOX", [
        b"From: a@globex.example\r\nTo: " + user.encode() + b"\r\nSubject: x\r\n"
        b"Message-ID: <cli-1@globex.example>\r\n\r\nbody\r\n"
    ])  # fmt: skip

    # The console script itself, password on stdin (never argv).
    proc = subprocess.run(
        [INBOXSYNC, "inbox", "add", "Carol", "--host", services.host, "--port",
         str(services.imaps_port), "--username", user, "--password-stdin", "--owner",
         "Carol.Boss@Team.example", "--no-create-contacts", "--ca-file", str(services.ca_file),
         "--no-sync"],
        input=password + "\n", capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "inbox 'Carol' saved" in proc.stdout
    conn = get_connection("inboxsync_inbox_carol")
    assert (conn.host, conn.port, conn.login, conn.password) == (
        services.host, services.imaps_port, user, password,
    )  # fmt: skip
    assert conn.extra_dejson == {"security": "ssl", "ssl_ca_file": str(services.ca_file)}
    assert query(
        warehouse_url,
        "SELECT name, conn_id, email_address, owner_email, create_contacts, enabled"
        " FROM inboxsync.inboxes",
    ) == [("Carol", "inboxsync_inbox_carol", user, "carol.boss@team.example", False, True)]

    code, out, _ = _run("inbox", "list", capsys=capsys)
    assert code == 0 and "Carol" in out and "link" in out

    code, out, err = _run("inbox", "test", "Carol", capsys=capsys)
    assert code == 0, err
    assert f"login ok: {user}" in out
    assert "IMAP4REV1" in out
    assert "folder 'INBOX': 1 messages" in out
    assert "folder 'Sent': 0 messages" in out

    code, out, _ = _run("sync", "Carol", capsys=capsys)
    assert code == 0
    assert "Carol: folder 'INBOX': fetched 1, loaded 1, quarantined 0" in out
    code, out, _ = _run("sync", "Carol", capsys=capsys)
    assert "Carol: up to date, nothing new" in out

    code, out, _ = _run("inbox", "remove", "Carol", capsys=capsys)
    assert code == 0
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.inboxes") == [(0,)]
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.message_copies") == [(0,)]
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.messages") == [(1,)]
    from airflow.sdk.exceptions import AirflowNotFoundException

    with pytest.raises(AirflowNotFoundException):
        get_connection("inboxsync_inbox_carol")
    code, _, err = _run("sync", "Carol", capsys=capsys)
    assert code == 1 and "no connected inbox named 'Carol'" in err


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("refused", "connection refused by 127.0.0.1:{port}: check the port"),
        ("tls_on_plain_port", "TLS handshake with 127.0.0.1:{port} failed"),
        ("untrusted_certificate", "TLS certificate of 127.0.0.1:{port} could not be verified"),
        ("bad_password", "refused the login of '{user}'"),
    ],
)
def test_inbox_test_explains_what_is_wrong(
    case, expected, services, warehouse_url, monkeypatch, capsys
):
    dave = unique_user("dave")
    services.add_mail_user(dave, "dave-right-pw")
    port = {
        "refused": _free_port(),
        "tls_on_plain_port": services.imap_port,
        "untrusted_certificate": services.imaps_port,
        "bad_password": services.imaps_port,
    }[case]
    args = ["--host", services.host, "--port", str(port), "--username", dave]
    if case != "untrusted_certificate":
        args += ["--ca-file", str(services.ca_file)]
    password = "wrong-pw" if case == "bad_password" else "dave-right-pw"
    args += ["--no-verify", "--no-sync"]  # saved as given, so `inbox test` can explain it
    assert _add("Dave", *args, password=password, monkeypatch=monkeypatch, capsys=capsys)[0] == 0

    code, out, err = _run("inbox", "test", "Dave", capsys=capsys)
    assert code == 1
    assert expected.format(port=port, user=dave) in err
    assert password not in err + out


def test_unknown_host_message(services, warehouse_url, monkeypatch, capsys):
    # Resolving a name that does not exist would ask a DNS server off this machine: the resolver's
    # answer is simulated (the only stand-in in this file), the rest of the path is real.
    def no_such_host(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    _add("Erin", "--host", "imap.nowhere.example", "--username", "erin@team.example",
         "--no-verify", "--no-sync",
         password="pw-erin-123", monkeypatch=monkeypatch, capsys=capsys)  # fmt: skip
    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    code, _, err = _run("inbox", "test", "Erin", capsys=capsys)
    assert code == 1
    assert "cannot resolve IMAP host 'imap.nowhere.example'" in err
    assert "check the host name" in err


def test_password_needs_stdin_or_a_terminal(warehouse_url, monkeypatch, capsys):
    from inboxsync.cli import main

    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code = main(["inbox", "add", "Frank", "--host", "127.0.0.1", "--username", "f@team.example"])
    assert code == 1
    assert "pass --password-stdin" in capsys.readouterr().err
