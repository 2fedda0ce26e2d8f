"""OAuth2 with SASL XOAUTH2 against a real Dovecot, and the refresh-token flow.

Dovecot (a second instance under ``.local/test-oauth``, with its ``oauth2`` passdb) is real; so
are PostgreSQL, Airflow's metadata database and the sync. What cannot run here is Google's or
Microsoft's token endpoint, and the introspection endpoint a provider's IMAP server asks: both
are played by :class:`StandInOAuthServer`, a small HTTP server on a loopback port that speaks the
same protocol (RFC 6749 refresh-token grant, RFC 7662 introspection as Dovecot posts it).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import secrets
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import REPO, query, unique_user
from tests.integration.logcapture import capture_logs

pytestmark = pytest.mark.integration

OAUTH_ROOT = REPO / ".local" / "test-oauth"
CLIENT_ID = "inboxsync-test-client"
CLIENT_SECRET = "cs-" + secrets.token_hex(12)
SCOPE = "https://mail.example/imap offline_access"


class StandInOAuthServer:
    """Stand-in for a provider's token endpoint and the introspection endpoint Dovecot asks.

    Google's and Microsoft's endpoints cannot be reached from this machine. This server issues
    and checks tokens the way they do: ``POST /token`` with the refresh-token grant returns a
    fresh Bearer access token for a known refresh token and client (``invalid_grant`` /
    ``invalid_client`` otherwise), rotating the refresh token when ``rotate`` is set (as
    Microsoft does); ``POST /introspect`` answers ``{"active": "true", "username": ...}`` for a
    live token it issued and ``{"active": "false"}`` for anything else.
    """

    def __init__(self) -> None:
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> username
        self.access_tokens: dict[str, str] = {}  # live access token -> username
        self.rotate = False
        self.token_requests: list[dict[str, str]] = []
        self.introspected: list[str] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                if self.path == "/token":
                    status, body = server._token(form)
                elif self.path == "/introspect":
                    status, body = server._introspect(form)
                else:
                    status, body = 404, {"error": "not_found"}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    def grant(self, username: str) -> str:
        """A refresh token for ``username``, as the provider's consent screen would give."""
        token = "rt-" + secrets.token_urlsafe(24)
        with self.lock:
            self.refresh_tokens[token] = username
        return token

    def revoke_all(self) -> None:
        with self.lock:
            self.refresh_tokens.clear()
            self.access_tokens.clear()

    def _token(self, form: dict[str, str]) -> tuple[int, dict]:
        with self.lock:
            self.token_requests.append(form)
            if form.get("grant_type") != "refresh_token":
                return 400, {"error": "unsupported_grant_type"}
            if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
                return 401, {
                    "error": "invalid_client",
                    "error_description": "Client authentication failed.",
                }
            user = self.refresh_tokens.get(form.get("refresh_token", ""))
            if user is None:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "Token has been expired or revoked.",
                }  # fmt: skip  (Google's wording)
            access = "at-" + secrets.token_urlsafe(24)
            self.access_tokens[access] = user
            body = {"access_token": access, "token_type": "Bearer", "expires_in": 3599,
                    "scope": form.get("scope", "")}  # fmt: skip
            if self.rotate:
                new = "rt-" + secrets.token_urlsafe(24)
                self.refresh_tokens[new] = user  # Microsoft keeps the old one valid too
                body["refresh_token"] = new
            return 200, body

    def _introspect(self, form: dict[str, str]) -> tuple[int, dict]:
        token = form.get("token", "")
        with self.lock:
            self.introspected.append(token)
            user = self.access_tokens.get(token)
        if user is None:
            return 200, {"active": "false"}
        return 200, {"active": "true", "username": user}


@pytest.fixture
def logs(airflow_env):
    yield from capture_logs()


@pytest.fixture(scope="module")
def oauth_server():
    server = StandInOAuthServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture(scope="module")
def oauth_services(oauth_server):
    """A Dovecot that accepts XOAUTH2 (checked at ``oauth_server``) besides passwords."""
    from inboxsync import localenv

    OAUTH_ROOT.mkdir(parents=True, exist_ok=True)
    # The port is in the file name: a new port changes dovecot.conf, which restarts Dovecot.
    args = OAUTH_ROOT / f"oauth2-{oauth_server.port}.conf"
    args.write_text(
        "introspection_mode = post\n"
        f"introspection_url = http://127.0.0.1:{oauth_server.port}/introspect\n"
        "username_attribute = username\n"
        "active_attribute = active\n"
        "active_value = true\n"
    )
    args.chmod(0o644)
    extras = localenv.DovecotExtras(
        auth_mechanisms="plain login xoauth2 oauthbearer",
        first_passdb=(
            f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {args}\n}}"
        ),
    )
    svc = localenv.start(OAUTH_ROOT, dovecot=extras)
    yield svc
    localenv.stop(OAUTH_ROOT)
    for stale in OAUTH_ROOT.glob("oauth2-*.conf"):
        stale.unlink()


def _mail(n: int, to: str) -> bytes:
    return (
        f"From: Customer {n} <c{n}@customer.example>\r\nTo: {to}\r\nSubject: hello {n}\r\n"
        f"Date: Mon, 05 Oct 2026 10:{n:02d}:00 +0200\r\nMessage-ID: <oauth-{n}@customer.example>"
        f"\r\n\r\nbody {n}\r\n"
    ).encode()


def _register(svc, warehouse_url: str, name: str, username: str, **oauth_kw) -> None:
    from inboxsync import registry, warehouse

    oauth_kw.setdefault("provider", "custom")
    with warehouse.transaction(warehouse_url) as cur:
        registry.add_inbox(
            cur,
            name,
            host=svc.host,
            port=svc.imaps_port,
            security="ssl",
            username=username,
            password=None,
            owner_email=username,
            create_contacts=True,
            ca_file=str(svc.ca_file),
            oauth=oauth_kw,
        )


def _leaks(text: str, *secrets_: str, user: str | None = None) -> list[str]:
    """The secrets that appear in ``text``: plainly, or (for access tokens) as the base64 XOAUTH2
    string that carries them on the wire."""
    found = [s for s in secrets_ if s and s in text]
    if user:
        for s in secrets_:
            wire = base64.b64encode(f"user={user}\1auth=Bearer {s}\1\1".encode()).decode()
            if wire in text:
                found.append(f"XOAUTH2 string of {s[:6]}...")
    return found


def _sync_again(name: str, url: str):
    """sync_inbox right after another sync of the same inbox.

    The previous run's inbox lock (a session-level advisory lock) is released when its
    PostgreSQL backend exits, which can happen just after the client has closed the connection;
    wait that out instead of failing with InboxBusy.
    """
    from inboxsync.sync import InboxBusy, sync_inbox

    deadline = time.monotonic() + 5
    while True:
        try:
            return sync_inbox(name, url=url)
        except InboxBusy:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_xoauth2_sync_with_refresh_token_end_to_end(
    oauth_services, oauth_server, warehouse_url, logs
):
    from inboxsync.connections import get_connection
    from inboxsync.sync import sync_inbox

    user = unique_user("olivia")
    oauth_services.add_mail_user(user, "unused-" + secrets.token_hex(8))
    oauth_services.deliver(user, "INBOX", [_mail(n, user) for n in range(1, 6)])
    refresh = oauth_server.grant(user)
    _register(oauth_services, warehouse_url, "Olivia", user, token_url=oauth_server.token_url,
              client_id=CLIENT_ID, client_secret=CLIENT_SECRET, refresh_token=refresh,
              scope=SCOPE)  # fmt: skip
    assert get_connection("inboxsync_inbox_olivia").password in ("", None)
    requests_before = len(oauth_server.token_requests)

    result = sync_inbox("Olivia", url=warehouse_url)

    assert {f.folder: (f.fetched, f.loaded) for f in result.folders} == {
        "INBOX": (5, 5), "Sent": (0, 0),
    }  # fmt: skip
    assert query(
        warehouse_url,
        "SELECT m.message_id FROM inboxsync.message_copies c JOIN inboxsync.messages m"
        " USING (message_key) ORDER BY 1",
    ) == [(f"oauth-{n}@customer.example",) for n in range(1, 6)]
    # One refresh-token grant, exactly as RFC 6749 section 6 has it, and Dovecot checked the
    # access token it produced.
    assert oauth_server.token_requests[requests_before:] == [
        {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": CLIENT_ID,
         "client_secret": CLIENT_SECRET, "scope": SCOPE},
    ]  # fmt: skip
    issued = [t for t, u in oauth_server.access_tokens.items() if u == user]
    assert len(issued) == 1
    assert oauth_server.introspected.count(issued[0]) >= 1
    assert f"user=<{user}>, method=XOAUTH2" in (oauth_services.root / "dovecot" / "dovecot.log"
                                                ).read_text()  # fmt: skip
    # No secret in any log record (IMAP protocol log included).
    text = logs.text()
    assert "AUTHENTICATE" in text  # the protocol log was captured, and redacted
    assert _leaks(text, refresh, CLIENT_SECRET, issued[0], user=user) == []

    second = _sync_again("Olivia", warehouse_url)
    assert second.fetched == 0


def test_expired_access_token_is_refused_with_an_actionable_message(
    oauth_services, oauth_server, warehouse_url, logs
):
    from inboxsync.imap import InboxAuthError
    from inboxsync.sync import sync_inbox

    user = unique_user("pete")
    oauth_services.add_mail_user(user, "unused-" + secrets.token_hex(8))
    stale = "at-" + secrets.token_urlsafe(24)  # not (or no longer) live at the provider
    _register(oauth_services, warehouse_url, "Pete", user, access_token=stale)

    with pytest.raises(InboxAuthError) as err:
        sync_inbox("Pete", url=warehouse_url)

    message = str(err.value)
    assert message.startswith(
        f"the server refused the OAuth2 token for {user}: [AUTHENTICATIONFAILED]"
    ), message
    assert message.endswith(
        "the access token in the connection has expired or was revoked: store a refresh_token "
        "(with client_id and oauth_provider or token_url) so inboxsync can renew it"
    )
    assert err.value.retryable is False
    assert stale in oauth_server.introspected  # Dovecot really asked about it
    last_error = query(warehouse_url, "SELECT DISTINCT last_error FROM inboxsync.sync_state")
    assert last_error == [(message,)]
    text = logs.text()
    assert _leaks(text + message + repr(err.value), stale, user=user) == []


def test_revoked_refresh_token_says_reconnect(oauth_services, oauth_server, warehouse_url, logs):
    from inboxsync.oauth import OAuth2Error
    from inboxsync.sync import sync_inbox

    user = unique_user("quinn")
    oauth_services.add_mail_user(user, "unused-" + secrets.token_hex(8))
    revoked = "rt-revoked-" + secrets.token_urlsafe(16)  # never granted, or revoked since
    _register(oauth_services, warehouse_url, "Quinn", user, token_url=oauth_server.token_url,
              client_id=CLIENT_ID, client_secret=CLIENT_SECRET, refresh_token=revoked)  # fmt: skip

    with pytest.raises(OAuth2Error) as err:
        sync_inbox("Quinn", url=warehouse_url)

    assert str(err.value) == (
        "the refresh token was revoked or expired: reconnect the inbox (`inboxsync inbox add NAME "
        "--auth oauth2 ...` with a new refresh token) (token endpoint "
        f"{oauth_server.token_url} said HTTP 400 invalid_grant: Token has been expired or "
        "revoked.)"
    )
    assert err.value.retryable is False
    text = logs.text()
    assert _leaks(text + str(err.value) + repr(err.value), revoked, CLIENT_SECRET) == []


def test_wrong_client_secret_names_the_client(oauth_services, oauth_server, warehouse_url):
    from inboxsync.oauth import OAuth2Error
    from inboxsync.sync import sync_inbox

    user = unique_user("rita")
    oauth_services.add_mail_user(user, "unused-" + secrets.token_hex(8))
    wrong = "cs-wrong-" + secrets.token_hex(8)
    _register(oauth_services, warehouse_url, "Rita", user, token_url=oauth_server.token_url,
              client_id=CLIENT_ID, client_secret=wrong,
              refresh_token=oauth_server.grant(user))  # fmt: skip

    with pytest.raises(OAuth2Error) as err:
        sync_inbox("Rita", url=warehouse_url)
    assert str(err.value) == (
        f"the token endpoint refused the OAuth2 client '{CLIENT_ID}': check client_id, "
        f"client_secret in the inbox's connection (token endpoint {oauth_server.token_url} said "
        "HTTP 401 invalid_client: Client authentication failed.)"
    )
    assert wrong not in str(err.value)


def test_unreachable_token_endpoint_is_retryable(oauth_services, warehouse_url):
    from inboxsync.imap import InboxUnreachable
    from inboxsync.sync import sync_inbox

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens here once the socket closes
    user = unique_user("sam")
    oauth_services.add_mail_user(user, "unused-" + secrets.token_hex(8))
    url = f"http://127.0.0.1:{closed}/token"
    _register(oauth_services, warehouse_url, "Sam", user, token_url=url, client_id=CLIENT_ID,
              refresh_token="rt-" + secrets.token_hex(8))  # fmt: skip

    with pytest.raises(InboxUnreachable) as err:
        sync_inbox("Sam", url=warehouse_url)
    assert str(err.value) == (
        f"cannot reach the OAuth2 token endpoint {url} (Connection refused): check token_url "
        "and that this machine can reach it"
    )
    assert err.value.retryable is True


def test_rotated_refresh_token_is_saved_outside_a_task(
    oauth_services, oauth_server, warehouse_url, logs
):
    from inboxsync.connections import get_connection
    from inboxsync.sync import sync_inbox

    user = unique_user("tess")
    oauth_services.add_mail_user(user, "unused-" + secrets.token_hex(8))
    oauth_services.deliver(user, "INBOX", [_mail(7, user)])
    first = oauth_server.grant(user)
    _register(oauth_services, warehouse_url, "Tess", user, token_url=oauth_server.token_url,
              client_id=CLIENT_ID, client_secret=CLIENT_SECRET, refresh_token=first)  # fmt: skip
    oauth_server.rotate = True
    try:
        assert sync_inbox("Tess", url=warehouse_url).fetched == 1
        stored = get_connection("inboxsync_inbox_tess").extra_dejson["refresh_token"]
        assert stored != first and oauth_server.refresh_tokens[stored] == user
        assert [r.getMessage() for r in logs.of("inboxsync.oauth")] == [
            "connection inboxsync_inbox_tess: saved the rotated refresh token"
        ]
        # The next run uses the saved token (and saves the next one).
        n = len(oauth_server.token_requests)
        assert _sync_again("Tess", warehouse_url).fetched == 0
        assert oauth_server.token_requests[n]["refresh_token"] == stored
        assert stored not in logs.text()
    finally:
        oauth_server.rotate = False


def test_a_task_keeps_the_rotated_refresh_token_and_later_runs_use_it(
    services, oauth_services, oauth_server, warehouse_url, airflow_env, logs
):
    from cryptography.fernet import Fernet

    from inboxsync import local_airflow, registry, warehouse
    from inboxsync.connections import (
        get_connection,
        get_variable,
        set_variable,
        update_connection_extra,
    )
    from inboxsync.oauth import rotated_token_variable

    user = unique_user("uma")
    oauth_services.add_mail_user(user, "unused-" + secrets.token_hex(8))
    oauth_services.deliver(user, "INBOX", [_mail(11, user)])
    first = oauth_server.grant(user)
    _register(oauth_services, warehouse_url, "Uma", user, token_url=oauth_server.token_url,
              client_id=CLIENT_ID, client_secret=CLIENT_SECRET, refresh_token=first)  # fmt: skip
    conn_id = "inboxsync_inbox_uma"
    key = rotated_token_variable(conn_id)
    env = {**airflow_env, "AIRFLOW_CONN_INBOXSYNC_WAREHOUSE": warehouse_url}
    metadata_url = services.pg_url("airflow_test")
    fernet = Fernet(airflow_env["AIRFLOW__CORE__FERNET_KEY"].encode())
    loaded = "SELECT count(*) FROM inboxsync.message_copies"

    def dag_run() -> str:
        proc = local_airflow.airflow(
            env, "dags", "test", "inbox_sync", "-c", json.dumps({"inbox": "Uma"}), check=False
        )
        return proc.stdout + proc.stderr

    def kept() -> dict:
        [(value, encrypted)] = query(
            metadata_url, "SELECT val, is_encrypted FROM variable WHERE key = %s", (key,)
        )
        assert encrypted is True
        return json.loads(fernet.decrypt(value.encode()))

    def issued() -> list[str]:  # the refresh tokens the endpoint has given out, oldest first
        return [t for t, u in oauth_server.refresh_tokens.items() if u == user]

    digest = hashlib.sha256(first.encode()).hexdigest()
    oauth_server.rotate = True
    try:
        # 1. The real DAG: the task refreshes with the connection's token and keeps the rotated
        # one in the Variable (a task cannot write connections); the connection is unchanged.
        output = dag_run()
        assert query(warehouse_url, loaded) == [(1,)], output[-3000:]
        assert len(issued()) == 2
        assert kept() == {"replaces": digest, "refresh_token": issued()[1]}
        assert (
            f"connection {conn_id}: kept the rotated refresh token in the Airflow Variable {key}"
            " (a task cannot update connections)"
        ) in output
        assert _leaks(output, first, issued()[1]) == []
        assert get_connection(conn_id).extra_dejson["refresh_token"] == first

        # 2. Microsoft's first token expires 90 days after it was issued: the next run no longer
        # needs it, and keeps the next rotation.
        with oauth_server.lock:
            del oauth_server.refresh_tokens[first]
        oauth_services.deliver(user, "INBOX", [_mail(12, user)])
        n = len(oauth_server.token_requests)
        output = dag_run()
        assert query(warehouse_url, loaded) == [(2,)], output[-3000:]
        assert [r["refresh_token"] for r in oauth_server.token_requests[n:]] == [issued()[0]]
        assert kept() == {"replaces": digest, "refresh_token": issued()[1]}
        assert _leaks(output, *issued()) == []

        # 3. Outside a task the latest token goes into the connection, and the Variable goes.
        latest = issued()[1]
        assert _sync_again("Uma", warehouse_url).fetched == 0
        assert oauth_server.token_requests[-1]["refresh_token"] == latest
        assert get_connection(conn_id).extra_dejson["refresh_token"] == issued()[2]
        assert get_variable(key) is None

        # 4. A connection given a new token (the inbox reconnected) wins over a token kept for
        # the one it held before.
        set_variable(key, json.dumps({"replaces": hashlib.sha256(issued()[2].encode()).hexdigest(),
                                      "refresh_token": issued()[1]}), "kept")  # fmt: skip
        fresh = oauth_server.grant(user)
        assert update_connection_extra(conn_id, {"refresh_token": fresh})
        assert _sync_again("Uma", warehouse_url).fetched == 0
        assert oauth_server.token_requests[-1]["refresh_token"] == fresh
        assert get_variable(key) is None  # the rotation went into the connection

        # 5. Disconnecting the inbox deletes a kept token with the connection.
        set_variable(key, json.dumps({"replaces": "-", "refresh_token": fresh}), "kept")
        with warehouse.transaction(warehouse_url) as cur:
            registry.remove_inbox(cur, "Uma")
        assert get_variable(key) is None
    finally:
        oauth_server.rotate = False


def test_cli_connects_an_oauth2_inbox_with_secrets_from_stdin(
    oauth_services, oauth_server, warehouse_url, monkeypatch, capsys
):
    from inboxsync.cli import main
    from inboxsync.connections import get_connection

    user = unique_user("vera")
    oauth_services.add_mail_user(user, "unused-" + secrets.token_hex(8))
    oauth_services.deliver(user, "INBOX", [_mail(9, user)])
    refresh = oauth_server.grant(user)
    argv = ["inbox", "add", "Vera", "--host", oauth_services.host, "--port",
            str(oauth_services.imaps_port), "--username", user, "--ca-file",
            str(oauth_services.ca_file), "--auth", "oauth2", "--oauth-provider", "custom",
            "--token-url", oauth_server.token_url, "--client-id", CLIENT_ID, "--scope", SCOPE,
            "--refresh-token-stdin"]  # fmt: skip
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{refresh}\n{CLIENT_SECRET}\n"))
    assert main(argv) == 0, capsys.readouterr().err
    assert refresh not in " ".join(argv)
    assert get_connection("inboxsync_inbox_vera").extra_dejson == {
        "security": "ssl", "ssl_ca_file": str(oauth_services.ca_file), "auth": "oauth2",
        "oauth_provider": "custom", "token_url": oauth_server.token_url, "client_id": CLIENT_ID,
        "scope": SCOPE, "client_secret": CLIENT_SECRET, "refresh_token": refresh,
    }  # fmt: skip
    printed = capsys.readouterr()

    assert main(["inbox", "test", "Vera"]) == 0
    out = capsys.readouterr().out
    assert f"login ok: {user} at {oauth_services.host}:{oauth_services.imaps_port} (ssl)" in out
    assert main(["sync", "Vera"]) == 0  # (`inbox add` may have run the first sync already)
    later = capsys.readouterr()
    assert query(
        warehouse_url,
        "SELECT m.message_id FROM inboxsync.message_copies c JOIN inboxsync.messages m"
        " USING (message_key)",
    ) == [("oauth-9@customer.example",)]
    shown = printed.out + printed.err + out + later.out + later.err
    assert _leaks(shown, refresh, CLIENT_SECRET) == []

    # Options that only make sense together are refused before anything is saved.
    monkeypatch.setattr(sys, "stdin", io.StringIO("pw\n"))
    assert main(["inbox", "add", "Wes", "--host", "127.0.0.1", "--username", "w@team.example",
                 "--password-stdin", "--client-id", "x"]) == 1  # fmt: skip
    assert "--client-id needs --auth oauth2" in capsys.readouterr().err
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.inboxes WHERE name = 'Wes'") == [
        (0,)
    ]


def test_oauth_root_path_is_short_enough():
    assert len(str(OAUTH_ROOT)) <= 70, OAUTH_ROOT
    assert Path(OAUTH_ROOT).is_relative_to(REPO / ".local")
