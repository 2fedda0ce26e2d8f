"""Unit tests for inboxsync.classify: bounce, auto-reply, list, bulk or human from headers alone."""

from __future__ import annotations

import gzip
import mailbox
import shutil
from pathlib import Path

import pytest

from inboxsync.classify import classify
from inboxsync.parse import QuarantineError, header_fields_only, parse_header

CORPORA = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora"
requires_corpora = pytest.mark.skipif(
    not CORPORA.is_dir(), reason=f"real-mail corpora not found at {CORPORA}"
)
SISIMAI = CORPORA / "bounces/sisimai/maildir/bsd"

DSN_TYPE = 'multipart/report; report-type=delivery-status; boundary="B1"'


@pytest.mark.parametrize(
    ("headers", "kind"),
    [
        # --- bounce ---
        pytest.param({"Content-Type": DSN_TYPE}, "bounce", id="rfc3464-dsn"),
        pytest.param(
            {"Content-Type": 'Multipart/Report; Report-Type="delivery-status"'},
            "bounce",
            id="dsn-case-and-quotes",
        ),
        pytest.param(
            {"From": "MAILER-DAEMON@mx.example.org (Mail Delivery System)"},
            "bounce",
            id="from-mailer-daemon",
        ),
        pytest.param(
            {"From": "Mail Delivery Subsystem <mailer-daemon@googlemail.com>"},
            "bounce",
            id="gmail-bounce",
        ),
        pytest.param(
            {"From": "Microsoft Outlook <PostMaster@contoso.onmicrosoft.com>"},
            "bounce",
            id="from-postmaster",
        ),
        pytest.param({"From": "MAILER-DAEMON"}, "bounce", id="bare-mailer-daemon"),
        pytest.param({"From": "MAILER-DAEMON <>"}, "bounce", id="dragonfly-empty-address"),
        pytest.param({"Sender": "postmaster@example.org"}, "bounce", id="sender-postmaster"),
        pytest.param(
            {"Return-Path": "<>", "Content-Type": 'multipart/report; boundary="x"'},
            "bounce",
            id="null-sender-report-without-type",
        ),
        pytest.param(
            {
                "Return-Path": "<MAILER-DAEMON@mx44.example.com>",
                "Content-Type": 'multipart/report; boundary="x"',
            },
            "bounce",
            id="daemon-envelope-report",
        ),
        pytest.param(
            {"Return-Path": "<>", "Subject": "Undelivered Mail Returned to Sender"},
            "bounce",
            id="null-sender-bounce-subject",
        ),
        pytest.param(
            {"Return-Path": "<postmaster@mail.example.net>", "Subject": "Undeliverable: offer"},
            "bounce",
            id="postmaster-envelope-bounce-subject",
        ),
        pytest.param(
            {"From": "<>", "Subject": "Delivery Status"}, "bounce", id="null-from-bounce-subject"
        ),
        pytest.param(
            {"Auto-Submitted": "auto-generated", "Content-Type": DSN_TYPE},
            "bounce",
            id="auto-submitted-dsn-is-bounce",
        ),
        # --- not a bounce ---
        pytest.param(
            {"From": "Postmaster Team <alice@example.org>"}, "human", id="postmaster-only-name"
        ),
        pytest.param(
            {"From": "postmaster-bot@example.org"}, "human", id="postmaster-prefix-local-part"
        ),
        pytest.param({"Return-Path": "<>", "Subject": "Lunch?"}, "human", id="null-sender-alone"),
        pytest.param(
            {"Subject": "Fwd: Returned mail: see transcript for details"},
            "human",
            id="forwarded-bounce-by-a-person",
        ),
        # --- auto_reply ---
        pytest.param({"Auto-Submitted": "auto-replied"}, "auto_reply", id="rfc3834-replied"),
        pytest.param({"Auto-Submitted": "auto-generated"}, "auto_reply", id="rfc3834-generated"),
        pytest.param(
            {"Auto-Submitted": "auto-replied (vacation)"}, "auto_reply", id="with-comment"
        ),
        pytest.param({"Auto-Submitted": "no"}, "human", id="auto-submitted-no"),
        pytest.param({"Auto-Submitted": "No (a person)"}, "human", id="auto-submitted-no-comment"),
        pytest.param({"X-Autoreply": "yes"}, "auto_reply", id="x-autoreply"),
        pytest.param({"X-Autorespond": "Out of office"}, "auto_reply", id="x-autorespond"),
        pytest.param({"X-Autoreply": "no"}, "human", id="x-autoreply-no"),
        pytest.param({"Precedence": "auto_reply"}, "auto_reply", id="precedence-auto-reply"),
        pytest.param(
            {"X-Auto-Response-Suppress": "All", "Subject": "Re: contract"},
            "human",
            id="exchange-suppress-is-not-a-signal",
        ),
        pytest.param({"Subject": "Out of Office: Re: offer"}, "human", id="vacation-subject-alone"),
        pytest.param(
            {"Subject": "Automatic reply: offer", "Return-Path": "<>"},
            "auto_reply",
            id="vacation-subject-null-sender",
        ),
        pytest.param(
            {"Subject": "Abwesenheitsnotiz: Angebot", "Precedence": "bulk"},
            "auto_reply",
            id="german-vacation-bulk",
        ),
        pytest.param(
            {"Subject": "Réponse automatique : offre", "Precedence": "junk"},
            "auto_reply",
            id="french-vacation-junk",
        ),
        pytest.param(
            {"Content-Type": "multipart/report; report-type=disposition-notification"},
            "auto_reply",
            id="read-receipt",
        ),
        pytest.param(
            {
                "Return-Path": "<>",
                "Content-Type": "multipart/report; report-type=feedback-report",
            },
            "auto_reply",
            id="arf-complaint-is-not-a-bounce",
        ),
        # --- list ---
        pytest.param({"List-Id": "<util-linux.vger.kernel.org>"}, "list", id="list-id"),
        pytest.param({"Precedence": "list"}, "list", id="precedence-list"),
        pytest.param(
            {"List-Id": "<jailhouse-dev.googlegroups.com>", "Auto-Submitted": "auto-generated"},
            "auto_reply",
            id="auto-reply-beats-list",
        ),
        pytest.param(
            {"List-Id": "<x.example.org>", "Precedence": "bulk"}, "list", id="list-beats-bulk"
        ),
        # --- bulk ---
        pytest.param({"Precedence": "bulk"}, "bulk", id="precedence-bulk"),
        pytest.param({"Precedence": "Junk"}, "bulk", id="precedence-junk"),
        pytest.param(
            {"List-Unsubscribe": "<https://news.example.com/u/1>"}, "bulk", id="newsletter"
        ),
        # --- human ---
        pytest.param(
            {"From": "Ann <ann@example.com>", "Subject": "Re: offer", "Return-Path": "<a@b.c>"},
            "human",
            id="plain-reply",
        ),
        pytest.param({}, "human", id="nothing"),
    ],
)
def test_rules(headers: dict[str, str], kind: str) -> None:
    assert classify(headers) == kind


def test_field_names_are_case_insensitive() -> None:
    assert classify({"AUTO-SUBMITTED": "auto-replied"}) == "auto_reply"
    assert classify({"list-id": "<a.example.org>"}) == "list"


def test_parse_header_classifies_from_decoded_subject() -> None:
    # An encoded vacation subject must be recognised, so parse.py classifies after decoding.
    raw = (
        b"Return-Path: <>\r\n"
        b"From: Kijitora <kijitora@example.org>\r\n"
        b"Subject: =?utf-8?Q?Automatische_Antwort:_Angebot?=\r\n"
        b"X-Auto-Response-Suppress: All\r\n"
        b"\r\n"
    )

    assert parse_header(raw).kind == "auto_reply"


def _sisimai_kinds() -> dict[str, str]:
    """Classify every message of sisimai's bsd maildir from its fetched header fields only.

    Returns:
        File name to kind ("quarantined: <reason>" when the header does not parse).
    """
    kinds: dict[str, str] = {}
    for path in sorted(SISIMAI.iterdir()):
        if not path.is_file():
            continue
        try:
            kinds[path.name] = parse_header(header_fields_only(path.read_bytes())).kind
        except QuarantineError as exc:
            kinds[path.name] = f"quarantined: {exc.reason}"
    return kinds


# Real bounces whose fetched header fields carry no bounce signal (1.8% of 606):
# - lhost-amazonses-09..13: SES bounce notifications relayed through SNS as plain "AWS
#   Notification Message" mail from no-reply@sns.amazonaws.com (the bounce is JSON in the body);
# - lhost-fml-02, -03: fml list-manager notices ("are not member", "Loop Alert") from the list
#   admin address;
# - lhost-kddi-01..03: KDDI (au) error mail from no-reply@...dion.ne.jp, multipart/mixed, subject
#   "Mail" or Japanese, nothing else;
# - lhost-sendmail-14: a person forwarding a bounce ("Fwd: Returned mail"): human is right.
_SISIMAI_MISSES = {
    "lhost-amazonses-09.eml",
    "lhost-amazonses-10.eml",
    "lhost-amazonses-11.eml",
    "lhost-amazonses-12.eml",
    "lhost-amazonses-13.eml",
    "lhost-fml-02.eml",
    "lhost-fml-03.eml",
    "lhost-kddi-01.eml",
    "lhost-kddi-02.eml",
    "lhost-kddi-03.eml",
    "lhost-sendmail-14.eml",
}


@requires_corpora
def test_sisimai_real_bounces_are_bounces() -> None:
    kinds = _sisimai_kinds()
    # arf-* are spam-complaint feedback reports and rfc3834-* vacation replies, not bounces.
    bounces = {name: kind for name, kind in kinds.items() if name.startswith(("lhost-", "rhost-"))}
    bounces.update({name: kind for name, kind in kinds.items() if name.startswith("rfc3464-")})
    others = set(kinds) - set(bounces)
    assert {name.split("-", 1)[0] for name in others} == {"arf", "rfc3834"}
    missed = {name for name, kind in bounces.items() if kind != "bounce"}

    assert len(bounces) == 606
    assert missed == _SISIMAI_MISSES
    assert (len(bounces) - len(missed)) / len(bounces) >= 0.98  # 595 / 606 = 98.2%


@requires_corpora
def test_sisimai_vacation_replies_are_auto_replies() -> None:
    kinds = _sisimai_kinds()
    vacation = {name: kind for name, kind in kinds.items() if name.startswith("rfc3834-")}

    # rfc3834-03 is iCloud's vacation reply: it says so only in X-Apple-Action: VACATION, which
    # the fetch does not ask for; its "Auto reply:" subject alone is deliberately not enough.
    assert vacation == {
        "rfc3834-01.eml": "auto_reply",  # Auto-Submitted: auto-replied
        "rfc3834-02.eml": "auto_reply",  # "Automatic reply:" + Return-Path <>
        "rfc3834-03.eml": "human",
        "rfc3834-04.eml": "auto_reply",  # "Automatic reply:" + Return-Path <>
        "rfc3834-05.eml": "auto_reply",  # Auto-Submitted: auto-replied
        "rfc3834-06.eml": "auto_reply",  # Auto-Submitted + Precedence: bulk
    }


@requires_corpora
def test_sisimai_feedback_reports_are_never_bounces() -> None:
    kinds = _sisimai_kinds()
    feedback = {name: kind for name, kind in kinds.items() if name.startswith("arf-")}

    # ARF (multipart/report; report-type=feedback-report) counts as an automatic answer; arf-22..24
    # are Hotmail's older complaint format (multipart/mixed from staff@hotmail.com), which no
    # header marks as automatic.
    assert len(feedback) == 17
    assert {name for name, kind in feedback.items() if kind != "auto_reply"} == {
        "arf-22.eml",
        "arf-23.eml",
        "arf-24.eml",
    }
    assert "bounce" not in feedback.values()


@requires_corpora
def test_util_linux_list_mail_is_almost_never_auto_reply_or_bounce(tmp_path: Path) -> None:
    path = tmp_path / "util-linux.mbox"
    with gzip.open(CORPORA / "lists/util-linux.mbox.gz", "rb") as src, path.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    box = mailbox.mbox(path)
    kinds = [parse_header(header_fields_only(box.get_bytes(key))).kind for key in box.iterkeys()]
    flagged = [kind for kind in kinds if kind in ("auto_reply", "bounce")]

    assert len(kinds) == 3509
    assert kinds.count("list") == 3508
    # At most 0.1%. The one flagged message is spam sent to the list "From:
    # postmaster@hokusetubad.sakura.ne.jp" ("BUSINESS PROPOSAL"): a postmaster sender is a bounce.
    assert len(flagged) <= len(kinds) // 1000
    assert flagged == ["bounce"]
