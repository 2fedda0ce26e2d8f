"""Transport and password auth against the real Dovecot: the other half of "authentication and
transport" (XOAUTH2 is in test_oauth.py).

Implicit TLS and STARTTLS both sync, with the server's certificate verified against the CA given
in the connection; without that CA the sync refuses the server. Password auth uses LOGIN or
AUTHENTICATE PLAIN, chosen by the connection's ``auth_mechanism`` extra, and PLAIN on its own
when the password is not ASCII (LOGIN cannot carry it). Which command went on the wire is read
from IMAPClient's protocol log (credentials redacted there) and Dovecot's login log.
"""

from __future__ import annotations

import pytest

from tests.conftest import query, unique_user
from tests.integration.logcapture import capture_logs

pytestmark = pytest.mark.integration


@pytest.fixture
def logs(airflow_env):
    yield from capture_logs()


def _mail(n: int, to: str) -> bytes:
    return (
        f"From: Sender {n} <s{n}@partner.example>\r\nTo: {to}\r\nSubject: tls {n}\r\n"
        f"Message-ID: <transport-{n}@partner.example>\r\n\r\nbody {n}\r\n"
    ).encode()


def _register(services, url: str, name: str, user: str, password: str, **kw) -> None:
    from inboxsync import registry, warehouse

    kw.setdefault("security", "ssl")
    kw.setdefault("port", services.imaps_port if kw["security"] == "ssl" else services.imap_port)
    with warehouse.transaction(url) as cur:
        registry.add_inbox(cur, name, host=services.host, username=user, password=password,
                           owner_email=user, create_contacts=True, **kw)  # fmt: skip


def _login_lines(services, user: str) -> list[str]:
    log = (services.root / "dovecot" / "dovecot.log").read_text()
    return [line for line in log.splitlines() if f"Login: user=<{user}>" in line]


def _sent_commands(logs) -> list[str]:
    """IMAP commands from the protocol log, tag dropped ("LOGIN **REDACTED**", "STARTTLS")."""
    out = []
    for r in logs.of("imapclient.imaplib"):
        text = r.getMessage()
        if text.startswith("> "):
            out.append(text[2:].strip("b'\"").split(" ", 1)[1])
    return out


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_tls_modes_sync_with_the_ca_verified(security, services, warehouse_url, logs):
    from inboxsync.sync import sync_inbox

    user, password = unique_user(f"tls-{security}"), f"pw-{security}-Secret1"
    services.add_mail_user(user, password)
    services.deliver(user, "INBOX", [_mail(n, user) for n in range(1, 4)])
    _register(services, warehouse_url, f"TLS {security}", user, password, security=security,
              ca_file=str(services.ca_file))  # fmt: skip

    result = sync_inbox(f"TLS {security}", url=warehouse_url)

    assert {f.folder: f.loaded for f in result.folders} == {"INBOX": 3, "Sent": 0}
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.message_copies") == [(3,)]
    # Dovecot marks a login made over TLS; on the plain port that needs a real STARTTLS.
    [line] = _login_lines(services, user)
    assert ", TLS, " in line
    commands = _sent_commands(logs)
    assert ("STARTTLS" in commands) is (security == "starttls")
    assert password not in logs.text()


@pytest.mark.parametrize("security", ["ssl", "starttls"])
def test_unknown_ca_is_refused(security, services, warehouse_url):
    from inboxsync.imap import InboxTLSError
    from inboxsync.sync import sync_inbox

    user = unique_user(f"noca-{security}")
    services.add_mail_user(user, "pw-noca-123")
    services.deliver(user, "INBOX", [_mail(9, user)])
    port = services.imaps_port if security == "ssl" else services.imap_port
    # No ca_file: the system trust store does not know the local CA, as with a self-signed server.
    _register(services, warehouse_url, f"NoCA {security}", user, "pw-noca-123",
              security=security, port=port)  # fmt: skip

    with pytest.raises(InboxTLSError) as err:
        sync_inbox(f"NoCA {security}", url=warehouse_url)

    assert str(err.value) == (
        f"TLS certificate of {services.host}:{port} could not be verified (unable to get local "
        "issuer certificate): check the host name, or give the server's CA file as the "
        "connection's ssl_ca_file extra"
    )
    assert err.value.retryable is False
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.message_copies") == [(0,)]
    assert query(warehouse_url, "SELECT DISTINCT last_error FROM inboxsync.sync_state") == [
        (str(err.value),)
    ]
    assert _login_lines(services, user) == []  # no credentials went to an unverified server


@pytest.mark.parametrize(
    ("mechanism", "password", "command"),
    [
        ("login", "pw-login-Secret1", "LOGIN **REDACTED**"),
        ("plain", "pw-plain-Secret1", "AUTHENTICATE **REDACTED**"),
        (None, "pw-ascii-Secret1", "LOGIN **REDACTED**"),
        (None, "pässwörd-€-Secret1", "AUTHENTICATE **REDACTED**"),  # LOGIN cannot carry it
    ],
)
def test_password_mechanisms(mechanism, password, command, services, warehouse_url, logs):
    from inboxsync import registry
    from inboxsync.connections import get_connection
    from inboxsync.sync import sync_inbox

    user = unique_user(f"mech-{mechanism}")
    services.add_mail_user(user, password)
    services.deliver(user, "INBOX", [_mail(5, user)])
    name = f"Mech {mechanism} {user[:12]}"
    _register(services, warehouse_url, name, user, password, ca_file=str(services.ca_file),
              auth_mechanism=mechanism)  # fmt: skip
    conn = get_connection(registry.conn_id_for(name))
    assert conn.extra_dejson.get("auth_mechanism") == mechanism

    assert sync_inbox(name, url=warehouse_url).fetched == 1

    auth = [c for c in _sent_commands(logs) if c.startswith(("LOGIN", "AUTHENTICATE"))]
    assert auth == [command]
    assert password not in logs.text()


def test_login_cannot_send_a_non_ascii_password(services, warehouse_url):
    from inboxsync.imap import InboxAuthError
    from inboxsync.sync import sync_inbox

    user, password = unique_user("umlaut"), "grüße-Secret-1"
    services.add_mail_user(user, password)
    _register(services, warehouse_url, "Umlaut", user, password, ca_file=str(services.ca_file),
              auth_mechanism="login")  # fmt: skip

    with pytest.raises(InboxAuthError) as err:
        sync_inbox("Umlaut", url=warehouse_url)
    assert str(err.value) == (
        f"the username or password of '{user}' has non-ASCII characters, which IMAP LOGIN "
        "cannot send: set the connection's auth_mechanism extra to plain (AUTHENTICATE PLAIN "
        "sends UTF-8)"
    )
    assert password not in str(err.value)


def test_wrong_password_over_authenticate_plain(services, warehouse_url):
    from inboxsync.imap import InboxAuthError
    from inboxsync.sync import sync_inbox

    user = unique_user("plainbad")
    services.add_mail_user(user, "right-pw-123")
    _register(services, warehouse_url, "PlainBad", user, "wrong-pw-456",
              ca_file=str(services.ca_file), auth_mechanism="plain")  # fmt: skip

    with pytest.raises(InboxAuthError) as err:
        sync_inbox("PlainBad", url=warehouse_url)
    assert str(err.value).startswith(
        f"{services.host}:{services.imaps_port} refused the login of '{user}' "
        "([AUTHENTICATIONFAILED] Authentication failed.): check the username and password"
    )
    assert "wrong-pw-456" not in str(err.value)
