"""OAuth2 settings: presets, validation, secrets kept out of reprs and messages."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from inboxsync import oauth
from inboxsync.imap import ImapSettings, InboxError

REFRESH = "1//rt-SECRET-refresh-0123456789"
CLIENT_SECRET = "cs-SECRET-client-abcdef"
ACCESS = "ya29.at-SECRET-access-token"


@dataclass
class _Conn:
    """The attributes ImapSettings.from_connection reads from an Airflow connection."""

    conn_id: str = "inboxsync_inbox_x"
    host: str = "imap.example.net"
    port: int | None = None
    login: str = "ann@example.net"
    password: str | None = None
    extra_dejson: dict = field(default_factory=dict)


def test_google_preset():
    cfg = oauth.OAuth2Settings.from_extra(
        "c1",
        {"oauth_provider": "google", "client_id": "id-1", "refresh_token": REFRESH},
    )
    assert cfg.token_url == "https://oauth2.googleapis.com/token"
    assert cfg.scope == "https://mail.google.com/"
    assert (cfg.provider, cfg.client_id, cfg.client_secret, cfg.refresh_token) == (
        "google", "id-1", None, REFRESH,
    )  # fmt: skip


def test_microsoft_preset_with_and_without_tenant():
    common = oauth.OAuth2Settings.from_extra(
        "c1", {"oauth_provider": "microsoft", "client_id": "app", "refresh_token": REFRESH}
    )
    assert common.token_url == "https://login.microsoftonline.com/common/oauth2/v2.0/token"
    assert common.scope == "https://outlook.office.com/IMAP.AccessAsUser.All offline_access"
    tenant = oauth.OAuth2Settings.from_extra(
        "c1",
        {
            "oauth_provider": "Microsoft",
            "tenant": "contoso.onmicrosoft.com",
            "client_id": "app",
            "refresh_token": REFRESH,
        },
    )
    assert tenant.token_url == (
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    )


def test_token_url_and_scope_override_the_preset():
    cfg = oauth.OAuth2Settings.from_extra(
        "c1",
        {
            "oauth_provider": "google",
            "token_url": "http://127.0.0.1:9/token",
            "scope": "",
            "client_id": "id",
            "refresh_token": REFRESH,
        },
    )
    assert (cfg.token_url, cfg.scope) == ("http://127.0.0.1:9/token", "")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"client_id": "id", "refresh_token": REFRESH},
            "connection c1: the refresh-token flow needs token_url (or set oauth_provider to "
            "google or microsoft)",
        ),
        (
            {"oauth_provider": "google", "refresh_token": REFRESH},
            "connection c1: the refresh-token flow needs client_id",
        ),
        (
            {"oauth_provider": "google", "client_id": "id"},
            "connection c1: auth is oauth2 but there is neither a refresh_token nor an "
            "access_token: reconnect the inbox",
        ),
        (
            {"oauth_provider": "yahoo", "client_id": "id", "refresh_token": REFRESH},
            "connection c1: oauth_provider must be one of google, microsoft, custom, not 'yahoo'",
        ),
        (
            {"token_url": "ftp://x/token", "client_id": "id", "refresh_token": REFRESH},
            "connection c1: token_url must be an https:// URL, not 'ftp://x/token'",
        ),
    ],
)
def test_incomplete_settings_say_what_to_set(extra, message):
    with pytest.raises(InboxError) as err:
        oauth.OAuth2Settings.from_extra("c1", extra)
    assert str(err.value).startswith(message)
    assert REFRESH not in str(err.value)


def test_access_token_alone_is_enough():
    cfg = oauth.OAuth2Settings.from_extra("c1", {"access_token": ACCESS})
    assert oauth.get_access_token(cfg).access_token == ACCESS


def test_reprs_hold_no_secret():
    conn = _Conn(
        extra_dejson={
            "auth": "oauth2",
            "oauth_provider": "microsoft",
            "client_id": "app-id",
            "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH,
            "access_token": ACCESS,
        }
    )
    cfg = ImapSettings.from_connection(conn)
    token = oauth.AccessToken(ACCESS, 3600, REFRESH)
    for text in (repr(cfg), str(cfg), repr(cfg.oauth), str(cfg.oauth), repr(token)):
        for secret in (REFRESH, CLIENT_SECRET, ACCESS):
            assert secret not in text
    assert repr(cfg) == (
        "ImapSettings(host='imap.example.net', port=993, username='ann@example.net', "
        "security='ssl', auth='oauth2')"
    )
    assert "client_id='app-id'" in repr(cfg.oauth)


def test_from_connection_reads_auth_extras():
    plain = ImapSettings.from_connection(
        _Conn(password="pw", extra_dejson={"security": "starttls", "auth_mechanism": "PLAIN"})
    )
    assert (plain.auth, plain.auth_mechanism, plain.oauth, plain.port) == (
        "password", "plain", None, 143,
    )  # fmt: skip
    default = ImapSettings.from_connection(_Conn(password="pw"))
    assert (default.auth, default.auth_mechanism) == ("password", None)
    with pytest.raises(InboxError, match="auth_mechanism must be login or plain, not 'xoauth2'"):
        ImapSettings.from_connection(_Conn(extra_dejson={"auth_mechanism": "xoauth2"}))
    with pytest.raises(InboxError, match="auth must be password or oauth2, not 'kerberos'"):
        ImapSettings.from_connection(_Conn(extra_dejson={"auth": "kerberos"}))


def test_connection_extra_keeps_only_what_was_given():
    extra = oauth.connection_extra(
        provider="microsoft",
        client_id="app",
        tenant="contoso.example",
        client_secret=CLIENT_SECRET,
        refresh_token=REFRESH,
    )
    assert extra == {
        "auth": "oauth2",
        "oauth_provider": "microsoft",
        "tenant": "contoso.example",
        "client_id": "app",
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH,
    }
    with pytest.raises(InboxError, match="needs token_url"):
        oauth.connection_extra(provider="custom", client_id="app", refresh_token=REFRESH)


def test_redact_longest_first():
    assert oauth.redact("a abc b ab", ["ab", "abc", None, ""]) == "a *** b ***"


class _CannedEndpoint:
    """A loopback HTTP server answering every POST with one canned token-endpoint reply.

    The replies are the shapes Google's and Microsoft's endpoints give (RFC 6749 section 5.2
    errors, their 5xx pages), which cannot be fetched from here.
    """

    def __init__(self, status: int, body: bytes) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, HTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize(
    ("status", "body", "error", "message"),
    [
        (400, b'{"error": "invalid_scope", "error_description": "AADSTS70011: bad scope"}',
         "OAuth2Error", "the token endpoint refused the scope 'imap'"),
        (503, b"<html>Service Unavailable</html>", "InboxUnreachable",
         "the OAuth2 token endpoint failed; try again later (token endpoint {url} said HTTP 503 "
         "<html>Service Unavailable</html>)"),
        (404, b"Not Found", "OAuth2Error", "no OAuth2 token endpoint at {url}: check token_url"),
        (200, b'{"token_type": "Bearer"}', "InboxError",
         "the OAuth2 token endpoint {url} answered HTTP 200 without an access_token"),
        (200, b'{"access_token": "x-SECRET-x", "token_type": "mac"}', "InboxError",
         "the OAuth2 token endpoint {url} issued a 'mac' token; XOAUTH2 needs a Bearer token"),
        (400, ('{"error": "invalid_grant", "error_description": "bad token ' + REFRESH
               + '"}').encode(), "OAuth2Error", "the refresh token was revoked or expired"),
    ],
)  # fmt: skip
def test_token_endpoint_answers_become_actionable_errors(status, body, error, message):
    endpoint = _CannedEndpoint(status, body)
    try:
        cfg = oauth.OAuth2Settings.from_extra(
            "c1",
            {"token_url": endpoint.url, "client_id": "id", "client_secret": CLIENT_SECRET,
             "refresh_token": REFRESH, "scope": "imap"},
        )  # fmt: skip
        with pytest.raises(InboxError) as err:
            oauth.refresh(cfg)
    finally:
        endpoint.close()
    assert type(err.value).__name__ == error
    assert str(err.value).startswith(message.format(url=endpoint.url)), str(err.value)
    for secret in (REFRESH, CLIENT_SECRET, "x-SECRET-x"):
        assert secret not in str(err.value)


def test_security_none_refuses_a_remote_host_before_any_connection(monkeypatch):
    import socket

    from inboxsync.imap import ImapSession, ImapSettings, InboxTLSError

    def no_network(*args, **kwargs):
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(socket, "create_connection", no_network)
    cfg = ImapSettings("imap.example.com", 143, "u@example.com", "pw-secret-1", "none")
    with pytest.raises(InboxTLSError, match="will not send credentials unencrypted") as exc:
        ImapSession(cfg).__enter__()
    assert "pw-secret-1" not in str(exc.value)
    # Loopback, and an explicit opt-in, pass the check (and then need a server).
    from inboxsync import imap

    assert imap._is_loopback("127.0.0.1") and imap._is_loopback("::1")
    assert imap._is_loopback("localhost") and not imap._is_loopback("10.0.0.1")
    assert ImapSettings.__dataclass_fields__["allow_plaintext"].default is False
