"""Tests for the deterministic demo mail generator."""

from __future__ import annotations

import email
import email.policy
import re
from collections import Counter
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from inboxsync.demo_mail import (
    COMPANY_DOMAIN,
    INBOX,
    KINDS,
    SENT,
    TEAM,
    demo_mailboxes,
    demo_messages,
    expected_summary,
)

MESSAGE_ID = re.compile(r"^<[^<>@\s]+@[^<>@\s]+>$")
ALICE, BOB = (member.email for member in TEAM)
TEAM_EMAILS = {member.email for member in TEAM}


def _parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


@pytest.fixture(scope="module")
def mailboxes() -> dict[str, dict[str, list[bytes]]]:
    return demo_mailboxes()


@pytest.fixture(scope="module")
def stored(mailboxes: dict[str, dict[str, list[bytes]]]) -> list[tuple[str, str, bytes]]:
    """Every stored message as (username, folder, raw)."""
    return [
        (user, folder, raw)
        for user, folders in mailboxes.items()
        for folder, messages in folders.items()
        for raw in messages
    ]


@pytest.fixture(scope="module")
def by_id(stored: list[tuple[str, str, bytes]]) -> dict[str, EmailMessage]:
    """Distinct messages keyed by Message-ID."""
    return {str(msg["Message-ID"]): msg for msg in (_parse(raw) for _, _, raw in stored)}


@pytest.fixture(scope="module")
def folder_ids(stored: list[tuple[str, str, bytes]]) -> dict[tuple[str, str], set[str]]:
    """Message-IDs per (username, folder)."""
    ids: dict[tuple[str, str], set[str]] = {}
    for user, folder, raw in stored:
        ids.setdefault((user, folder), set()).add(str(_parse(raw)["Message-ID"]))
    return ids


def _kind(msg: EmailMessage) -> str:
    """Classify a parsed message the way a sync would."""
    if msg.get_content_type() == "multipart/report":
        return "bounce"
    if msg["Auto-Submitted"] and msg["Auto-Submitted"] != "no":
        return "auto_reply"
    if msg["List-Id"]:
        return "list"
    if msg["Precedence"] == "bulk":
        return "bulk"
    addresses = _addresses(msg)
    if all(address.endswith(f"@{COMPANY_DOMAIN}") for address in addresses):
        return "internal"
    return "conversation"


def _addresses(msg: EmailMessage, *names: str) -> list[str]:
    names = names or ("From", "To", "Cc")
    return [
        address.addr_spec.lower() for name in names if msg[name] for address in msg[name].addresses
    ]


def test_team() -> None:
    assert len(TEAM) == 2
    assert {member.email for member in TEAM} == {"alice@acme.example", "bob@acme.example"}
    assert all(member.password for member in TEAM)


def test_deterministic() -> None:
    assert demo_mailboxes() == demo_mailboxes()
    assert expected_summary() == expected_summary()


def test_shape(mailboxes: dict[str, dict[str, list[bytes]]]) -> None:
    assert set(mailboxes) == {member.email for member in TEAM}
    for folders in mailboxes.values():
        assert set(folders) == {INBOX, SENT}
        assert all(folders.values())
    total = sum(len(messages) for folders in mailboxes.values() for messages in folders.values())
    assert 60 <= total <= 120


def test_crlf_and_seven_bit(stored: list[tuple[str, str, bytes]]) -> None:
    for _, _, raw in stored:
        assert raw.count(b"\n") == raw.count(b"\r\n")
        assert b"\r\r" not in raw
        assert raw.endswith(b"\r\n")
        raw.decode("ascii")  # encoded words and transfer encodings keep it 7-bit


def test_parses_without_defects(stored: list[tuple[str, str, bytes]]) -> None:
    for _, _, raw in stored:
        msg = _parse(raw)
        for name in ("Date", "From", "To", "Subject", "Message-ID", "MIME-Version"):
            assert msg[name] is not None, name
            assert not msg[name].defects, (name, msg[name].defects)
        assert msg["Content-Type"] is not None
        assert MESSAGE_ID.match(str(msg["Message-ID"]))
        assert msg["Date"].datetime.tzinfo is not None
        for part in msg.walk():
            assert not part.defects, (msg["Subject"], part.defects)
            # Delivery-status field blocks walk as header-only parts; skip them.
            if part.get_content_maintype() == "text" and part["Content-Type"]:
                assert part.get_content().strip()


def test_dates_fixed_and_in_various_zones(by_id: dict[str, EmailMessage]) -> None:
    dates = [msg["Date"].datetime for msg in by_id.values()]
    assert all(
        datetime(2026, 10, 5, tzinfo=UTC) <= d < datetime(2026, 11, 1, tzinfo=UTC) for d in dates
    )
    assert len({d.utcoffset() for d in dates}) >= 5


def test_message_ids(mailboxes: dict[str, dict[str, list[bytes]]]) -> None:
    seen: dict[str, bytes] = {}
    for folders in mailboxes.values():
        for messages in folders.values():
            ids = [str(_parse(raw)["Message-ID"]) for raw in messages]
            assert len(ids) == len(set(ids))
            for message_id, raw in zip(ids, messages, strict=True):
                assert seen.setdefault(message_id, raw) == raw  # same id, same bytes
    assert set(seen) == expected_summary()["message_ids"]


def test_reply_chains_resolve(by_id: dict[str, EmailMessage]) -> None:
    replies = 0
    for msg in by_id.values():
        parent = msg["In-Reply-To"]
        if parent is None:
            continue
        replies += 1
        assert str(parent) in by_id
        references = str(msg["References"]).split()
        assert references[-1] == str(parent)
        assert all(reference in by_id for reference in references)
        assert re.match(r"^(Out of office: )?Re: ", str(msg["Subject"]))
    assert replies >= 20


def test_threads_without_answer(by_id: dict[str, EmailMessage]) -> None:
    answered = {str(msg["In-Reply-To"]) for msg in by_id.values() if msg["In-Reply-To"]}
    human = [msg for msg in by_id.values() if _kind(msg) == "conversation"]
    unanswered = [msg for msg in human if str(msg["Message-ID"]) not in answered]
    senders = {_addresses(msg, "From")[0].endswith(f"@{COMPANY_DOMAIN}") for msg in unanswered}
    assert senders == {True, False}  # both sides leave some mail unanswered


def test_cc_message_identical_in_both_inboxes(
    mailboxes: dict[str, dict[str, list[bytes]]],
) -> None:
    customer_mail_to_alice_cc_bob = []
    for raw in mailboxes[ALICE][INBOX]:
        msg = _parse(raw)
        sender = _addresses(msg, "From")[0]
        if (
            not sender.endswith(f"@{COMPANY_DOMAIN}")
            and _addresses(msg, "To") == [ALICE]
            and BOB in _addresses(msg, "Cc")
        ):
            customer_mail_to_alice_cc_bob.append(raw)
    assert customer_mail_to_alice_cc_bob
    for raw in customer_mail_to_alice_cc_bob:
        assert raw in mailboxes[BOB][INBOX]  # same bytes, hence same Message-ID


def test_every_team_recipient_gets_a_copy(
    folder_ids: dict[tuple[str, str], set[str]], by_id: dict[str, EmailMessage]
) -> None:
    for message_id, msg in by_id.items():
        sender = _addresses(msg, "From")[0]
        if sender in TEAM_EMAILS:
            assert message_id in folder_ids[sender, SENT]
        for user in set(_addresses(msg, "To", "Cc")) & TEAM_EMAILS - {sender}:
            assert message_id in folder_ids[user, INBOX], (user, msg["Subject"])


def test_internal_mail(mailboxes: dict[str, dict[str, list[bytes]]]) -> None:
    internal = [
        raw for raw in mailboxes[ALICE][SENT] if _addresses(_parse(raw), "To", "Cc") == [BOB]
    ]
    assert internal
    assert all(raw in mailboxes[BOB][INBOX] for raw in internal)


def test_encoded_words(
    by_id: dict[str, EmailMessage], stored: list[tuple[str, str, bytes]]
) -> None:
    names = {
        address.display_name
        for msg in by_id.values()
        for name in ("From", "To", "Cc")
        if msg[name]
        for address in msg[name].addresses
    }
    assert {"José Müller", "Zoë Fontaine", "Jürgen Weiß", "Ольга Смирнова", "佐藤 花子"} <= names
    subjects = {str(msg["Subject"]) for msg in by_id.values()}
    assert {"見積もりのお願い", "Re: Вопрос по счёту №4471"} <= subjects
    raw_headers = b"".join(raw.partition(b"\r\n\r\n")[0] for _, _, raw in stored)
    assert b"=?utf-8?" in raw_headers
    assert "José".encode() not in raw_headers


def test_idn_domain_in_punycode(by_id: dict[str, EmailMessage]) -> None:
    addresses = {a for msg in by_id.values() for a in _addresses(msg)}
    assert "jose@xn--mller-kva.example" in addresses
    assert b"xn--mller-kva".decode("idna") == "müller"


def test_utf8_bodies(by_id: dict[str, EmailMessage]) -> None:
    encodings = set()
    for msg in by_id.values():
        for part in msg.walk():
            if part.get_content_type() == "text/plain" and not part.get_content().isascii():
                assert part.get_content_charset() == "utf-8"
                encodings.add(part["Content-Transfer-Encoding"])
    assert encodings == {"quoted-printable", "base64"}


def test_html_alternative(by_id: dict[str, EmailMessage]) -> None:
    alternatives = [m for m in by_id.values() if m.get_content_type() == "multipart/alternative"]
    assert alternatives
    for msg in alternatives:
        assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


def test_mailing_list(mailboxes: dict[str, dict[str, list[bytes]]]) -> None:
    holders: Counter[str] = Counter()
    for user, folders in mailboxes.items():
        for raw in folders[INBOX]:
            msg = _parse(raw)
            if msg["List-Id"]:
                assert msg["List-Id"] == "<announcements.lists.example>"
                assert msg["Precedence"] == "list"
                assert msg["List-Unsubscribe"]
                holders[user] += 1
    assert len(holders) == 1
    assert next(iter(holders.values())) >= 3


def test_bulk(by_id: dict[str, EmailMessage]) -> None:
    bulk = [msg for msg in by_id.values() if msg["Precedence"] == "bulk"]
    assert bulk
    for msg in bulk:
        assert msg["List-Unsubscribe"]
        assert msg["List-Id"] is None


def test_out_of_office(by_id: dict[str, EmailMessage]) -> None:
    replies = [msg for msg in by_id.values() if _kind(msg) == "auto_reply"]
    assert len(replies) == 1
    (msg,) = replies
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Autoreply"] == "yes"
    assert str(msg["Subject"]).startswith("Out of office: Re: ")
    original = by_id[str(msg["In-Reply-To"])]
    assert _addresses(original, "From") == _addresses(msg, "To")
    assert _addresses(original, "From")[0].endswith(f"@{COMPANY_DOMAIN}")


def test_bounce(
    folder_ids: dict[tuple[str, str], set[str]], by_id: dict[str, EmailMessage]
) -> None:
    bounces = [msg for msg in by_id.values() if msg.get_content_type() == "multipart/report"]
    assert len(bounces) == 1
    (dsn,) = bounces
    assert dsn["Return-Path"] == "<>"
    assert _addresses(dsn, "From") == ["mailer-daemon@mx.globex.example"]
    assert dsn.get_param("report-type") == "delivery-status"
    parts = list(dsn.iter_parts())
    assert [p.get_content_type() for p in parts] == [
        "text/plain",
        "message/delivery-status",
        "text/rfc822-headers",
    ]
    per_message, per_recipient = parts[1].get_payload()
    assert per_message["Reporting-MTA"] == "dns; mx.globex.example"
    assert per_recipient["Action"] == "failed"
    assert per_recipient["Status"].startswith("5.")
    failed = per_recipient["Final-Recipient"].split(";")[1].strip()

    original_headers = _parse(parts[2].get_payload().encode())
    original = by_id[str(original_headers["Message-ID"])]
    assert failed in _addresses(original, "To")
    sender = _addresses(original, "From")[0]
    assert _addresses(dsn, "To") == [sender]
    assert str(original["Message-ID"]) in folder_ids[sender, SENT]


def test_summary_matches_parsed_mail(
    mailboxes: dict[str, dict[str, list[bytes]]], by_id: dict[str, EmailMessage]
) -> None:
    summary = expected_summary()
    folders = {user: {f: len(m) for f, m in fs.items()} for user, fs in mailboxes.items()}
    assert summary["folders"] == folders
    assert summary["total_messages"] == sum(sum(fs.values()) for fs in folders.values())
    assert summary["message_ids"] == set(by_id)

    addresses = {a for msg in by_id.values() for a in _addresses(msg)}
    external = {a for a in addresses if not a.endswith(f"@{COMPANY_DOMAIN}")}
    assert summary["external_addresses"] == external
    assert summary["customer_addresses"] <= external
    assert "peter.gibbons@initech.example" in summary["customer_addresses"]
    assert "mailer-daemon@mx.globex.example" not in summary["customer_addresses"]
    assert {a.split("@")[1] for a in summary["customer_addresses"]} == {
        "globex.example",
        "initech.example",
        "xn--mller-kva.example",
        "umbrella.example",
    }

    kinds = Counter(_kind(msg) for msg in by_id.values())
    assert summary["kinds"] == {kind: kinds[kind] for kind in KINDS}
    for key, kind in (
        ("auto_replies", "auto_reply"),
        ("bounces", "bounce"),
        ("list", "list"),
        ("bulk", "bulk"),
    ):
        assert summary[key] == kinds[kind] > 0


def test_contact_replies_match_headers(by_id: dict[str, EmailMessage]) -> None:
    def from_team(msg: EmailMessage) -> bool:
        return _addresses(msg, "From")[0].endswith(f"@{COMPANY_DOMAIN}")

    contact_replies = [
        msg
        for msg in by_id.values()
        if _kind(msg) == "conversation"
        and not from_team(msg)
        and msg["In-Reply-To"]
        and from_team(by_id[str(msg["In-Reply-To"])])
    ]
    assert expected_summary()["contact_replies"] == len(contact_replies) > 0
    flagged = {record.message_id for record in demo_messages() if record.contact_reply}
    assert flagged == {str(msg["Message-ID"]) for msg in contact_replies}
