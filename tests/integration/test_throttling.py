"""A server that throttles: the sync backs off and retries that inbox without failing the run.

The server is a real Dovecot allowing one connection per user and IP: a second login gets
`NO [LIMIT] Maximum number of connections from user+IP exceeded`, as a busy Gmail or Microsoft 365
account answers "too many simultaneous connections".
"""

from __future__ import annotations

import contextlib
import ssl

import imapclient
import pytest

from tests.conftest import REPO, query, unique_user

pytestmark = pytest.mark.integration

LIMITS_ROOT = REPO / ".local" / "test-limits"


@pytest.fixture(scope="module")
def one_connection_server():
    from inboxsync import localenv

    svc = localenv.start(
        LIMITS_ROOT,
        dovecot=localenv.DovecotExtras(
            settings="protocol imap {\n  mail_max_userip_connections = 1\n}\n"
        ),
    )
    yield svc
    svc.stop()


@pytest.fixture
def busy_inbox(one_connection_server, warehouse_url, monkeypatch):
    """An inbox whose one allowed connection is taken by another client."""
    from inboxsync import registry, settings, warehouse

    monkeypatch.setattr(settings, "THROTTLE_BACKOFF_SECONDS", 0.3)
    monkeypatch.setattr(settings, "THROTTLE_RETRIES", 2)
    svc = one_connection_server
    user, password = unique_user("busy"), "busy-pw-123"
    svc.add_mail_user(user, password)
    svc.deliver(user, "INBOX", [
        f"From: a@globex.example\r\nSubject: t{n}\r\nMessage-ID: <t{n}@globex.example>\r\n\r\n"
        .encode() for n in range(3)
    ])  # fmt: skip
    name = user.split("@")[0]
    with warehouse.transaction(warehouse_url) as cur:
        registry.add_inbox(
            cur, name, host=svc.host, port=svc.imaps_port, security="ssl", username=user,
            password=password, owner_email=user, create_contacts=True, ca_file=str(svc.ca_file),
        )  # fmt: skip
    ctx = ssl.create_default_context(cafile=str(svc.ca_file))
    other = imapclient.IMAPClient(svc.host, port=svc.imaps_port, ssl_context=ctx)
    other.login(user, password)
    yield name, other
    with contextlib.suppress(Exception):  # already released by the test
        other.logout()


def test_backs_off_and_succeeds_once_the_connection_frees(busy_inbox, warehouse_url, monkeypatch):
    import time

    from inboxsync import sync
    from inboxsync.sync import sync_inbox

    name, other = busy_inbox
    waits: list[float] = []
    real_sleep = time.sleep

    def back_off(seconds: float) -> None:
        # The other client lets go while the sync waits after its first refused login.
        waits.append(seconds)
        other.logout()
        real_sleep(seconds)

    monkeypatch.setattr(sync.time, "sleep", back_off)
    result = sync_inbox(name, url=warehouse_url)
    assert waits == [0.3]  # refused once, backed off once, then in
    assert not result.throttled
    assert result.fetched == 3
    assert query(warehouse_url, "SELECT count(*) FROM inboxsync.message_copies") == [(3,)]


def test_gives_up_politely_when_the_server_keeps_throttling(busy_inbox, warehouse_url):
    import time

    from inboxsync.sync import sync_inbox

    name, _other = busy_inbox
    started = time.monotonic()
    result = sync_inbox(name, url=warehouse_url)  # no exception: the run goes on
    assert time.monotonic() - started >= 0.3 + 0.9  # backed off 0.3 s, then 0.9 s
    assert result.throttled and result.fetched == 0
    [(error,)] = query(warehouse_url, "SELECT last_error FROM inboxsync.sync_state")
    assert "Maximum number of connections" in error
    assert "turned away" in error and "password" not in error
    assert "gave up after 3 attempts, the next run tries again" in error
