"""Integration tests for inboxsync.localenv: real PostgreSQL and real Dovecot in a tmp dir."""

from __future__ import annotations

import json
import socket
import ssl
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import imapclient
import psycopg2
import pytest
from imapclient.exceptions import LoginError
from imapclient.imapclient import SENT

from inboxsync import localenv
from inboxsync.localenv import LocalServices

pytestmark = pytest.mark.integration

USER = "alice@acme.example"
PASSWORD = "correct horse"


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServices]:
    """Cold-start both services in a fresh dir; stop them when the module is done."""
    root = tmp_path_factory.mktemp("localenv")
    began = time.monotonic()
    started = localenv.start(root)
    print(f"cold start: {time.monotonic() - began:.2f}s")
    try:
        yield started
    finally:
        localenv.stop(root)


def _message(n: int, sender: str, to: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = f"Message {n}"
    msg["Message-ID"] = f"<m{n}@acme.example>"
    msg["Date"] = "Mon, 02 Jun 2025 10:00:00 +0000"
    msg.set_content(f"Body {n}\n")
    return bytes(msg)


def _tls_context(services: LocalServices) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(services.ca_file))


def _imaps(services: LocalServices) -> imapclient.IMAPClient:
    return imapclient.IMAPClient(
        services.host,
        port=services.imaps_port,
        ssl=True,
        ssl_context=_tls_context(services),
        timeout=10,
    )


def test_start_is_idempotent(services: LocalServices) -> None:
    began = time.monotonic()
    again = localenv.start(services.root)
    print(f"warm start: {time.monotonic() - began:.2f}s")

    assert (again.pg_port, again.imap_port, again.imaps_port) == (
        services.pg_port,
        services.imap_port,
        services.imaps_port,
    )
    assert (again.pg_pid, again.dovecot_pid) == (services.pg_pid, services.dovecot_pid)
    assert (services.root / "services.json").exists()
    assert localenv.status(services.root)["postgresql"]["running"]
    assert localenv.status(services.root)["dovecot"]["running"]


def test_create_database_and_connect(services: LocalServices) -> None:
    url = services.create_database("localenv_test")
    assert url == f"postgresql://postgres@127.0.0.1:{services.pg_port}/localenv_test"
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE marker (id int)")
        cur.execute("SELECT current_database(), current_user")
        assert cur.fetchone() == ("localenv_test", "postgres")
    conn.close()

    # Existing database, no drop: left alone.
    assert services.create_database("localenv_test") == url
    assert _has_marker_table(url)

    # drop=True recreates it empty, even with a session still connected.
    holder = psycopg2.connect(url)
    try:
        services.create_database("localenv_test", drop=True)
    finally:
        holder.close()
    assert not _has_marker_table(url)


def _has_marker_table(url: str) -> bool:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('public.marker') IS NOT NULL")
            row = cur.fetchone()
    finally:
        conn.close()
    return bool(row and row[0])


def test_deliver_and_read_over_imaps(services: LocalServices) -> None:
    # A lookup just before the user exists must not leave a stale negative answer behind.
    with pytest.raises(LoginError), _imaps(services) as client:
        client.login(USER, PASSWORD)

    services.add_mail_user(USER, PASSWORD)
    services.add_mail_user(USER, PASSWORD)  # idempotent
    inbox = [_message(n, "bob@client.example", USER) for n in range(3)]
    sent = [_message(n, USER, "bob@client.example") for n in range(3, 5)]
    assert services.deliver(USER, "INBOX", inbox) == 3
    assert services.deliver(USER, "Sent", sent, seen=True) == 2

    with _imaps(services) as client:
        client.login(USER, PASSWORD)
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 3

        sent_folder = client.find_special_folder(SENT)
        assert sent_folder == "Sent"
        assert client.select_folder(sent_folder, readonly=True)[b"EXISTS"] == 2
        flags = client.get_flags(client.search("ALL"))
        assert all(imapclient.SEEN in f for f in flags.values())
        assert {b"CONDSTORE", b"QRESYNC", b"UIDPLUS", b"MOVE"} <= set(client.capabilities())


def test_maildir_layout_and_doveadm(services: LocalServices) -> None:
    services.add_mail_user(USER, PASSWORD)
    inbox = services.maildir(USER)
    assert inbox == services.root / "dovecot" / "mail" / USER / "Maildir"
    assert services.maildir(USER, "Projects/2025") == inbox / ".Projects.2025"
    assert (inbox / ".Projects.2025" / "cur").is_dir()
    assert services.maildir(USER, "Entwürfe") == inbox / ".Entw&APw-rfe"
    with pytest.raises(ValueError):
        services.maildir(USER, "a.b")

    services.deliver(USER, "Projects/2025", [_message(9, "x@y.example", USER)])
    result = services.doveadm("mailbox", "status", "-u", USER, "messages", "Projects/2025")
    assert result.stdout.strip() == "Projects/2025 messages=1"
    assert (inbox / ".Projects.2025").stat().st_uid == services.mail_uid
    assert all(p.stat().st_uid == services.mail_uid for p in (inbox / "new").iterdir())


def test_starttls_on_plain_port(services: LocalServices) -> None:
    services.add_mail_user(USER, PASSWORD)
    with imapclient.IMAPClient(
        services.host, port=services.imap_port, ssl=False, timeout=10
    ) as client:
        assert b"STARTTLS" in client.capabilities()
        client.starttls(_tls_context(services))
        client.login(USER, PASSWORD)
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] >= 3


def test_password_change_is_picked_up_without_restart(services: LocalServices) -> None:
    user = "carol@acme.example"
    services.add_mail_user(user, "first")
    with _imaps(services) as client:
        client.login(user, "first")

    services.add_mail_user(user, "second")
    with pytest.raises(LoginError), _imaps(services) as client:
        client.login(user, "first")
    with _imaps(services) as client:
        client.login(user, "second")


def test_restart_keeps_ports_and_mail(services: LocalServices) -> None:
    services.stop()
    assert not localenv.status(services.root)["dovecot"]["running"]
    assert not localenv.status(services.root)["postgresql"]["running"]

    began = time.monotonic()
    again = localenv.start(services.root)
    print(f"restart of stopped services: {time.monotonic() - began:.2f}s")
    assert (again.pg_port, again.imap_port, again.imaps_port) == (
        services.pg_port,
        services.imap_port,
        services.imaps_port,
    )
    with _imaps(again) as client:
        client.login(USER, PASSWORD)
        assert client.select_folder("INBOX", readonly=True)[b"EXISTS"] == 3
    assert _has_marker_table(again.create_database("localenv_test")) is False


def test_restart_moves_off_taken_ports(services: LocalServices) -> None:
    localenv.stop(services.root)
    squatters = [_listen(port) for port in (services.pg_port, services.imaps_port)]
    try:
        moved = localenv.start(services.root)
    finally:
        for sock in squatters:
            sock.close()
    assert moved.pg_port != services.pg_port
    assert moved.imaps_port != services.imaps_port
    assert moved.imap_port == services.imap_port
    saved = json.loads((services.root / "services.json").read_text())
    assert saved["imaps_port"] == moved.imaps_port
    assert f"port = {moved.imaps_port}" in moved.dovecot_conf.read_text()
    with _imaps(moved) as client:
        client.login(USER, PASSWORD)
    with psycopg2.connect(moved.pg_url("postgres")) as conn:
        assert conn.server_version >= 150000
    conn.close()


def _listen(port: int) -> socket.socket:
    sock = socket.socket()
    # Connections the tests closed leave TIME_WAIT entries on the server's port.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


def test_cli_status_reports_running(
    services: LocalServices, capsys: pytest.CaptureFixture[str]
) -> None:
    current = localenv.start(services.root)
    assert localenv.main(["status", "--root", str(services.root)]) == 0
    out = capsys.readouterr().out
    assert f"127.0.0.1:{current.pg_port}" in out
    assert f"imaps 127.0.0.1:{current.imaps_port}" in out


def test_default_root_points_at_repo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("INBOXSYNC_LOCAL_DIR", raising=False)
    assert localenv.default_root() == Path(__file__).resolve().parents[2] / ".local"
    monkeypatch.setenv("INBOXSYNC_LOCAL_DIR", str(tmp_path))
    assert localenv.default_root() == tmp_path
