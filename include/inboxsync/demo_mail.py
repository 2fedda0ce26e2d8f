"""Deterministic demo mail for two connected inboxes of a small company.

The demo company ``acme.example`` has two team members (:data:`TEAM`) whose
mailboxes are connected to the CRM. :func:`demo_mailboxes` returns what their
IMAP servers would hold: an ``INBOX`` and a ``Sent`` folder of RFC 5322
messages (CRLF line endings, 7-bit clean thanks to RFC 2047 encoded words and
quoted-printable or base64 bodies).

The mail covers the cases a sync and a timeline have to handle:

* conversations with customers at several domains, including an IDN domain
  written in punycode, with replies in both directions, correct
  ``Message-ID`` / ``In-Reply-To`` / ``References`` chains, threads the
  customer never answers and threads the team never answers;
* customer mail addressed to one member and copied to the other, so the same
  message (same bytes, same ``Message-ID``) lands in both inboxes;
* internal mail between the two members;
* non-ASCII names, subjects and bodies (German, Cyrillic, Japanese);
* a mailing list, a bulk newsletter, an out-of-office auto-reply and an
  RFC 3464 delivery status notification (bounce). The bounce also carries
  ``Auto-Submitted: auto-replied`` as real MTAs do, so a classifier must
  check for the report before the auto-reply header.

Everything is derived from a fixed base time and a seeded
:class:`random.Random`, so every call returns the same bytes.
:func:`expected_summary` computes, from the generator's own records (not by
parsing the output), the numbers a parser of these mailboxes should find.
"""

from __future__ import annotations

import random
import re
import textwrap
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.headerregistry import Address
from email.message import EmailMessage, Message, MIMEPart
from email.policy import SMTP
from email.utils import format_datetime
from html import escape
from typing import Any

__all__ = [
    "BASE_TIME",
    "COMPANY_DOMAIN",
    "INBOX",
    "KINDS",
    "SENT",
    "TEAM",
    "DemoMessage",
    "TeamMember",
    "demo_mailboxes",
    "demo_messages",
    "expected_summary",
]

INBOX = "INBOX"
SENT = "Sent"
COMPANY_DOMAIN = "acme.example"
BASE_TIME = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
_SEED = 20261005

KIND_CONVERSATION = "conversation"
KIND_INTERNAL = "internal"
KIND_AUTO_REPLY = "auto_reply"
KIND_BOUNCE = "bounce"
KIND_LIST = "list"
KIND_BULK = "bulk"
KINDS = (KIND_CONVERSATION, KIND_INTERNAL, KIND_AUTO_REPLY, KIND_BOUNCE, KIND_LIST, KIND_BULK)

_TEAM_ROLE = "team"
_CUSTOMER_ROLE = "customer"
_SYSTEM_ROLE = "system"
_INVALID_ROLE = "invalid"


@dataclass(frozen=True)
class TeamMember:
    """A colleague whose mailbox is connected to the CRM.

    Attributes:
        name: Display name.
        email: Email address, also the IMAP username.
        password: IMAP password of the demo account.
    """

    name: str
    email: str
    password: str


TEAM: tuple[TeamMember, ...] = (
    TeamMember("Alice Martin", f"alice@{COMPANY_DOMAIN}", "demo-alice"),
    TeamMember("Bob Okafor", f"bob@{COMPANY_DOMAIN}", "demo-bob"),
)


@dataclass(frozen=True)
class DemoMessage:
    """One generated message and where it is stored.

    Attributes:
        kind: What the generator meant the message to be, one of :data:`KINDS`.
        message_id: The ``Message-ID`` header, angle brackets included.
        date: When the message was sent, in the sender's time zone.
        subject: The decoded subject.
        sender: The ``From`` address as written in the header.
        to: The ``To`` addresses as written in the header.
        cc: The ``Cc`` addresses as written in the header.
        in_reply_to: The ``In-Reply-To`` message id, if any.
        contact_reply: Whether this is a customer's reply to a team member's
            message (what a "contact replied" automation should react to).
        placements: ``(username, folder)`` pairs holding these exact bytes.
        raw: The message as RFC 5322 bytes with CRLF line endings.
    """

    kind: str
    message_id: str
    date: datetime
    subject: str
    sender: str
    to: tuple[str, ...]
    cc: tuple[str, ...]
    in_reply_to: str | None
    contact_reply: bool
    placements: tuple[tuple[str, str], ...]
    raw: bytes


# --------------------------------------------------------------------------- people


@dataclass(frozen=True)
class _Person:
    """Someone who sends or receives demo mail."""

    name: str
    email: str
    utc_offset: float
    role: str = _CUSTOMER_ROLE
    signature: str = ""

    @property
    def address(self) -> Address:
        """The address as a header value with display name."""
        return Address(display_name=self.name, addr_spec=self.email)

    @property
    def domain(self) -> str:
        """The lower-cased domain of the email address."""
        return self.email.rpartition("@")[2].lower()

    @property
    def tz(self) -> timezone:
        """The fixed time zone the person writes dates in."""
        return timezone(timedelta(hours=self.utc_offset))


def _team_person(member: TeamMember, utc_offset: float, title: str) -> _Person:
    """The sender profile of a team member, with an email signature."""
    signature = f"{member.name}\n{title}, Acme\nhttps://acme.example"
    return _Person(member.name, member.email, utc_offset, _TEAM_ROLE, signature)


_PEOPLE: dict[str, _Person] = {
    "alice": _team_person(TEAM[0], 2, "Account Manager"),
    "bob": _team_person(TEAM[1], 1, "Customer Engineer"),
    "zoe": _Person("Zoë Fontaine", "zoe.fontaine@globex.example", 1),
    "hank": _Person("Hank Scorpio", "hank@globex.example", -7),
    "hank_typo": _Person("Hank Scorpio", "hank.scorpio@globex.example", -7, _INVALID_ROLE),
    # Mixed case on purpose: address comparisons must be case-insensitive.
    "peter": _Person("Peter Gibbons", "Peter.Gibbons@Initech.example", -5),
    "olga": _Person("Ольга Смирнова", "olga.smirnova@initech.example", 3),
    # müller.example in punycode.
    "jose": _Person("José Müller", "jose@xn--mller-kva.example", 2),
    "juergen": _Person("Jürgen Weiß", "j.weiss@xn--mller-kva.example", 2),
    "hanako": _Person("佐藤 花子", "hanako.sato@umbrella.example", 9),
    "wesker": _Person("Albert Wesker", "albert.wesker@umbrella.example", -4),
    "priya": _Person("Priya Raman", "priya.raman@umbrella.example", 5.5),
    "globex_mta": _Person(
        "Mail Delivery System", "MAILER-DAEMON@mx.globex.example", 0, _SYSTEM_ROLE
    ),
    "announce": _Person(
        "Example Cloud Announcements", "announcements@lists.example", -4, _SYSTEM_ROLE
    ),
    "newsletter": _Person(
        "SaaS Growth Weekly", "newsletter@news.saasweekly.example", -5, _SYSTEM_ROLE
    ),
}

# --------------------------------------------------------------------------- scenario data


@dataclass(frozen=True)
class _Step:
    """One message of a thread.

    Attributes:
        by: Key of the sender in ``_PEOPLE``.
        after: Hours after the previous message of the thread (or after the
            thread start for the first step).
        body: Plain-text body; dedented, quote and signature are added.
        kind: ``KIND_AUTO_REPLY`` or ``KIND_BOUNCE`` for automatic answers to
            the previous message; ``None`` for mail written by a person.
        html: Whether to add an HTML alternative.
    """

    by: str
    after: float
    body: str = ""
    kind: str | None = None
    html: bool = False


@dataclass(frozen=True)
class _Thread:
    """A conversation; replies go to the previous sender, copying the others.

    Attributes:
        subject: Subject of the first message.
        to: Keys of the first message's ``To`` recipients.
        start: Hours after :data:`BASE_TIME` when the first message is sent.
        steps: The messages, in order.
        cc: Keys of the first message's ``Cc`` recipients.
    """

    subject: str
    to: tuple[str, ...]
    start: float
    steps: tuple[_Step, ...]
    cc: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Broadcast:
    """A list post or newsletter issue delivered to one team member."""

    start: float
    subject: str
    body: str
    html: str = ""


_STEP_FLAGS = frozenset({KIND_AUTO_REPLY, KIND_BOUNCE, "html"})


def _script(transcript: str) -> tuple[_Step, ...]:
    """Parse a thread transcript into steps.

    Each message starts with a line ``@sender [+hours] [flag]``: the sender's
    key in ``_PEOPLE``, the delay after the previous message, and optionally
    ``html``, ``auto_reply`` or ``bounce``. The following lines, up to the
    next ``@`` line, are the body.

    Args:
        transcript: The indented transcript text.

    Returns:
        The steps in order.
    """
    steps = []
    for chunk in re.split(r"^@(?=\w)", textwrap.dedent(transcript).strip(), flags=re.M)[1:]:
        header, _, body = chunk.partition("\n")
        by, *options = header.split()
        after = float(options.pop(0)) if options and options[0].startswith("+") else 0.0
        flag = options[0] if options else None
        if len(options) > 1 or (flag is not None and flag not in _STEP_FLAGS):
            raise ValueError(f"bad step header: @{header}")
        kind = flag if flag in (KIND_AUTO_REPLY, KIND_BOUNCE) else None
        steps.append(_Step(by, after, body.strip("\n"), kind=kind, html=flag == "html"))
    return tuple(steps)


_THREADS: tuple[_Thread, ...] = (
    _Thread(
        "Renewal quote for 2027",
        ("alice",),
        0.2,
        _script(
            """
            @zoe
            Hi Alice,

            Our subscription runs out at the end of December. Could you send us a
            renewal quote for 2027? We're planning on 40 seats, up from 32.

            Best,
            Zoë

            @alice +1.5
            Hi Zoë,

            Thanks for the heads-up! I'll prepare a quote for 40 seats and send it
            over by Wednesday. Would you prefer annual or quarterly billing?

            @zoe +3
            Annual billing, please. And if there is a multi-year discount, I'd love
            to hear about it.

            Zoë

            @alice +22
            Hi Zoë,

            Here is the quote: 40 seats on annual billing, with 8% off for a
            two-year term. It is valid until 30 November.

            Let me know if you have any questions.
            """
        ),
    ),
    _Thread(
        "API rate limits on the Pro plan",
        ("alice",),
        5,
        _script(
            """
            @hank
            Alice, Bob,

            Our nightly sync keeps hitting HTTP 429 around 02:00 UTC. What are the
            actual rate limits on the Pro plan, and can we get them raised?

            Hank

            @bob +2
            Hi Hank,

            The Pro plan allows 600 requests per minute per API key. Your sync
            bursts to about 1,400/min for a few minutes. A short exponential
            backoff on 429 responses should fix it; I can share a sample config.

            @hank +4
            A sample config would be great. And what would it cost to raise the
            limit instead?

            Hank

            @alice +11
            Hi Hank,

            A limit of 2,000 requests/min is part of the Enterprise add-on
            (EUR 290/month). Happy to set up a call to walk you through it.
            Bob will send the retry config today.
            """
        ),
        cc=("bob",),
    ),
    _Thread(
        "Globex: can you send Hank the retry config?",
        ("bob",),
        23.5,
        _script(
            """
            @alice
            Hi Bob,

            Hank from Globex is waiting for the sample retry config. Could you
            send it today? I told him you would.

            Thanks!

            @bob +0.4
            Sure, I'll send it this morning and copy you.
            """
        ),
    ),
    _Thread(
        "Sample retry configuration",
        ("hank_typo",),
        25,
        _script(
            """
            @bob
            Hi Hank,

            As promised, here is a retry policy that stays under the limit:

                max_retries = 5
                backoff = exponential, base 2 s, max 60 s
                retry_on = 429, 503

            Best,
            Bob

            @globex_mta bounce
            """
        ),
        cc=("alice",),
    ),
    _Thread(
        "Sample retry configuration",
        ("hank",),
        25.5,
        _script(
            """
            @bob
            Hi Hank,

            Resending, I had a typo in your address. A retry policy that stays
            under the limit:

                max_retries = 5
                backoff = exponential, base 2 s, max 60 s
                retry_on = 429, 503

            @hank +5
            Thanks Bob, deployed it tonight. No 429s so far.

            Hank
            """
        ),
        cc=("alice",),
    ),
    _Thread(
        "Following up on our call",
        ("peter",),
        26,
        _script(
            """
            @alice
            Hi Peter,

            Great talking to you yesterday. As promised, a summary of the pilot
            we discussed: 10 seats for 60 days, onboarding included.

            Shall I send over the paperwork?

            @alice +72
            Hi Peter,

            Just bumping this up in your inbox. Is the pilot still on your radar?
            """
        ),
    ),
    _Thread(
        "TPS report export fails with error 500",
        ("bob",),
        30,
        _script(
            """
            @peter
            Hi,

            Since this morning, exporting the TPS report to CSV fails with
            "Error 500". PDF export still works. Can you take a look?

            Peter Gibbons
            Initech

            @bob +1.2
            Hi Peter,

            Thanks for the report. A cover sheet field containing a tab character
            broke the CSV writer. The fix is deployed; could you try again?

            @peter +2
            Works now. Thanks for the quick fix!

            Peter
            """
        ),
    ),
    _Thread(
        "Вопрос по счёту №4471",
        ("alice",),
        48,
        _script(
            """
            @olga
            Добрый день, Алиса!

            В счёте №4471 указано 12 лицензий, но мы оплачивали 10.
            Не могли бы вы проверить?

            С уважением,
            Ольга Смирнова

            @alice +3
            Hello Olga,

            You are right, two seats were added by mistake. I have issued a
            corrected invoice (№4471-A) for 10 licences; you will receive it
            shortly. Sorry for the trouble.

            @olga +1
            Спасибо, Алиса! Исправленный счёт получили.

            Ольга
            """
        ),
    ),
    _Thread(
        "Bestellung über 12 Lizenzen",
        ("bob",),
        52,
        _script(
            """
            @jose
            Hallo Bob,

            wir möchten 12 weitere Lizenzen für unser Team in München bestellen.
            Können Sie uns ein Angebot schicken?

            Viele Grüße
            José Müller

            @bob +2
            Hallo José,

            thanks for your order! Alice handles quotes, I've passed it on and
            you'll have it tomorrow. (Sorry, my German isn't good enough yet.)

            @jose +1
            Kein Problem, English is fine. Danke schön!

            José
            """
        ),
    ),
    _Thread(
        "FYI: Müller wants 12 more licences",
        ("alice",),
        54.5,
        _script(
            """
            @bob
            Hi Alice,

            José Müller would like 12 more licences for the Munich team.
            Could you send him a quote tomorrow?
            """
        ),
    ),
    _Thread(
        "Frage zur Datenschutzerklärung (DSGVO)",
        ("alice",),
        55,
        _script(
            """
            @juergen
            Sehr geehrte Frau Martin,

            wo werden unsere Daten gespeichert, und gibt es einen
            Auftragsverarbeitungsvertrag (AVV) nach Art. 28 DSGVO?

            Mit freundlichen Grüßen
            Jürgen Weiß

            @juergen +120
            Sehr geehrte Frau Martin,

            ich wollte kurz nachfragen, ob Sie meine Nachricht erhalten haben.

            Mit freundlichen Grüßen
            Jürgen Weiß
            """
        ),
    ),
    _Thread(
        "見積もりのお願い",
        ("alice",),
        70,
        _script(
            """
            @hanako
            Alice様

            いつもお世話になっております。
            来年度の契約について、25ライセンスのお見積もりをお願いできますでしょうか。

            よろしくお願いいたします。
            佐藤 花子

            @alice +5
            Dear Hanako-san,

            Thank you for your request. Our quote for next year:

                25 x Pro plan, annual billing: JPY 1,875,000

            Best regards,

            @hanako +10
            Alice様

            お見積もりありがとうございます。社内で確認いたします。

            佐藤
            """
        ),
    ),
    _Thread(
        "Onboarding workshop dates",
        ("alice",),
        75,
        _script(
            """
            @wesker
            Alice,

            We'd like to schedule the onboarding workshop for our new team.
            Which dates do you have in the second half of October?

            Albert

            @alice +4
            Hi Albert,

            We can do Tuesday 20 October or Thursday 22 October, 10:00-12:00
            your time. Which works better?

            @wesker auto_reply
            Thank you for your message. I am out of the office until Monday,
            12 October, with limited access to email.

            For urgent matters, please contact ops@umbrella.example.

            Albert Wesker

            @wesker +94
            Back in the office. Thursday 22 October works. Please send the invite
            to me and to Priya, who will coordinate on our side.

            Albert

            @alice +2
            Done, invites sent to you and Priya. Looking forward to it!
            """
        ),
    ),
    _Thread(
        "Your ticket #8812 has been resolved",
        ("zoe",),
        80,
        _script(
            """
            @bob
            Hi Zoë,

            The SSO login loop you reported (ticket #8812) is fixed in today's
            release. You may need to clear your browser cookies once.
            """
        ),
    ),
    _Thread(
        "Proposal: analytics pilot for Umbrella",
        ("priya",),
        96,
        _script(
            """
            @alice html
            Hi Priya,

            As discussed, here is our proposal for the analytics pilot:

            - 15 seats for 90 days
            - a dedicated onboarding session
            - weekly check-ins with our customer engineer

            Would this work for you?

            @priya +3
            Hi Alice,

            This looks good. Could we extend the pilot to 20 seats? Two more
            teams want to join.

            Priya

            @alice +1.5
            20 seats is fine, I've updated the proposal. Shall we start on 19 October?

            @priya +67
            19 October works. Who should our admins contact for the setup?

            Priya

            @alice +1
            Bob Okafor will run the setup. I'll introduce you two in a separate email.
            """
        ),
    ),
    _Thread(
        "Does the Business plan include SSO?",
        ("alice",),
        169,
        _script(
            """
            @zoe
            Hi Alice,

            Quick one: does the Business plan include SAML SSO, or is that
            Enterprise only?

            Zoë

            @alice +1
            Hi Zoë,

            SAML SSO has been included in Business since September. Bob can help
            your IT team set it up.

            @zoe +0.5
            Perfect, thanks!

            Zoë
            """
        ),
    ),
    _Thread(
        "Neue Rechnungsadresse ab Oktober",
        ("alice",),
        172,
        _script(
            """
            @jose
            Hallo Alice,

            bitte stellen Sie die Rechnungen ab Oktober an unsere neue Adresse aus:
            Müller GmbH, Königstraße 12, 70173 Stuttgart.

            Danke!
            José

            @alice +3
            Hallo José,

            done: the new billing address (Königstraße 12, Stuttgart) is saved and
            will appear on the October invoice.
            """
        ),
    ),
    _Thread(
        "Scheduled maintenance on 20 October",
        ("peter",),
        174,
        _script(
            """
            @bob
            Hi Peter,

            Heads-up: we will perform scheduled database maintenance on Tuesday,
            20 October, 02:00-03:00 UTC. The API will be read-only during that
            window.
            """
        ),
    ),
    _Thread(
        "Introduction call for our new admins",
        ("bob",),
        190,
        _script(
            """
            @hanako
            Dear Bob,

            Our new administrators would like a short introduction call.
            Would Friday work for you?

            Best regards,
            Hanako Sato

            @bob +2
            Dear Hanako-san,

            Friday works for me. How about 10:00 JST?

            @hanako +14
            10:00 JST is perfect. Thank you!

            Hanako
            """
        ),
        cc=("alice",),
    ),
    _Thread(
        "Доступ для новой сотрудницы",
        ("bob",),
        193,
        _script(
            """
            @olga
            Здравствуйте, Боб!

            Пожалуйста, добавьте нашу новую сотрудницу Анну Кузнецову
            в рабочее пространство Initech.

            Спасибо!
            Ольга

            @bob +1
            Hi Olga,

            Done, Anna has been invited and will receive the invitation shortly.
            """
        ),
    ),
)

_LIST_SENDER = "announce"
_LIST_SUBSCRIBER = "bob"
_LIST_HEADERS: tuple[tuple[str, str], ...] = (
    ("List-Id", "<announcements.lists.example>"),
    (
        "List-Unsubscribe",
        "<mailto:announcements-leave@lists.example>, "
        "<https://lists.example/unsubscribe/announcements>",
    ),
    ("List-Archive", "<https://lists.example/archive/announcements>"),
    ("List-Post", "NO"),
    ("Precedence", "list"),
)
_LIST_POSTS: tuple[_Broadcast, ...] = (
    _Broadcast(
        8,
        "[Announce] Our status page has moved",
        """
        Hello,

        The Example Cloud status page now lives at https://status.cloud.example.
        Please update your bookmarks and monitoring.

        The Example Cloud team
        """,
    ),
    _Broadcast(
        56,
        "[Announce] New region eu-north-2 is generally available",
        """
        Hello,

        The eu-north-2 region (Stockholm) is now generally available for
        compute, object storage and managed PostgreSQL.

        The Example Cloud team
        """,
    ),
    _Broadcast(
        130,
        "[Announce] Object storage maintenance on 14 October",
        """
        Hello,

        Object storage in eu-west-1 will undergo maintenance on 14 October,
        01:00-02:00 UTC. Requests may see higher latency during the window.

        The Example Cloud team
        """,
    ),
    _Broadcast(
        200,
        "[Announce] API v1 will be retired on 31 March 2027",
        """
        Hello,

        API v1 will be retired on 31 March 2027. Please migrate to API v2;
        the migration guide is at https://docs.cloud.example/v2/migrate.

        The Example Cloud team
        """,
    ),
    _Broadcast(
        270,
        "[Announce] CLI 4.2 released",
        """
        Hello,

        Version 4.2 of the command-line tool adds shell completion for zsh and
        fish and a new "logs tail" command.

        The Example Cloud team
        """,
    ),
)

_BULK_SENDER = "newsletter"
_BULK_SUBSCRIBER = "alice"
_BULK_HEADERS: tuple[tuple[str, str], ...] = (
    ("Precedence", "bulk"),
    (
        "List-Unsubscribe",
        "<https://news.saasweekly.example/u/7f3a9c2e>, "
        "<mailto:unsubscribe@news.saasweekly.example?subject=7f3a9c2e>",
    ),
    ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
)
_NEWSLETTERS: tuple[_Broadcast, ...] = (
    _Broadcast(
        47,
        "📈 Issue #112: Pricing pages that convert",
        """
        This week: five pricing pages that convert, and why "Contact sales"
        still wins for enterprise plans.

        Read online: https://news.saasweekly.example/112
        """,
        """
        <h1>Issue #112: Pricing pages that convert</h1>
        <p>This week: five pricing pages that convert, and why
        <em>Contact sales</em> still wins for enterprise plans.</p>
        <p><a href="https://news.saasweekly.example/112">Read online</a></p>
        """,
    ),
    _Broadcast(
        215,
        "Issue #113: Onboarding emails, a teardown",
        """
        This week: we tear down the onboarding emails of ten SaaS products.

        Read online: https://news.saasweekly.example/113
        """,
        """
        <h1>Issue #113: Onboarding emails, a teardown</h1>
        <p>This week: we tear down the onboarding emails of ten SaaS products.</p>
        <p><a href="https://news.saasweekly.example/113">Read online</a></p>
        """,
    ),
)

_DSN_NOTICE = """
This is the mail system at host {mta}.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

For further assistance, please send mail to postmaster.

If you do so, please include this problem report. You can
delete your own text from the attached returned message.

                   The mail system

<{rcpt}>: host {store}[10.20.0.5]
    said: 550 5.1.1 <{rcpt}>: Recipient address
    rejected: User unknown in virtual mailbox table (in reply to RCPT TO
    command)
"""

# --------------------------------------------------------------------------- helpers


def _clean(text: str) -> str:
    """Dedent a data body and strip surrounding blank lines."""
    return textwrap.dedent(text).strip("\n")


def _reply_subject(subject: str) -> str:
    """Prefix ``Re:`` unless the subject already has it."""
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"


def _quote(name: str, date: datetime, text: str) -> str:
    """Quote a previous message the way mail clients do."""
    quoted = "\n".join(f"> {line}" if line else ">" for line in text.splitlines())
    return f"On {format_datetime(date)}, {name} wrote:\n{quoted}"


def _transfer_encoding(text: str) -> str | None:
    """Pick base64 for mostly non-Latin text, quoted-printable for other non-ASCII."""
    if text.isascii():
        return None
    non_ascii = sum(not char.isascii() for char in text if not char.isspace())
    visible = sum(not char.isspace() for char in text)
    return "base64" if non_ascii * 2 > visible else "quoted-printable"


def _html_document(body: str) -> str:
    """Wrap an HTML fragment in a minimal document."""
    return f"<!DOCTYPE html>\n<html>\n<body>\n{body}\n</body>\n</html>\n"


def _html_from_text(text: str) -> str:
    """Render a plain-text body as a small HTML document."""
    paragraphs = (escape(block).replace("\n", "<br>\n") for block in text.split("\n\n"))
    return _html_document("\n".join(f"<p>{paragraph}</p>" for paragraph in paragraphs))


def _set_body(msg: EmailMessage, text: str, html: str = "") -> None:
    """Set a UTF-8 text body, optionally with an HTML alternative."""
    msg.set_content(text + "\n", cte=_transfer_encoding(text))
    if html:
        # Not add_alternative(): it would give the part its own MIME-Version header.
        alternative = MIMEPart(policy=SMTP)
        alternative.set_content(html, subtype="html", cte=_transfer_encoding(html))
        msg.make_alternative()
        msg.attach(alternative)


def _placements(sender: _Person, recipients: Iterable[_Person]) -> tuple[tuple[str, str], ...]:
    """Sent copy for a team sender, an INBOX copy for every team recipient."""
    placements: list[tuple[str, str]] = []
    if sender.role == _TEAM_ROLE:
        placements.append((sender.email, SENT))
    for person in recipients:
        placement = (person.email, INBOX)
        if person.role == _TEAM_ROLE and person != sender and placement not in placements:
            placements.append(placement)
    return tuple(placements)


@dataclass(frozen=True)
class _Anchor:
    """The message a thread's next reply answers."""

    record: DemoMessage
    by: _Person
    to: tuple[_Person, ...]
    cc: tuple[_Person, ...]
    text: str
    references: tuple[str, ...]


# --------------------------------------------------------------------------- builder


class _Builder:
    """Turns the scenario data into :class:`DemoMessage` records."""

    def __init__(self) -> None:
        self._rng = random.Random(_SEED)
        self.records: list[DemoMessage] = []

    # -- primitives

    def _advance(self, when: datetime, hours: float, *, automatic: bool = False) -> datetime:
        """Move time forward by ``hours`` plus a little seeded jitter."""
        if automatic:
            jitter = timedelta(seconds=self._rng.randint(5, 90))
        else:
            jitter = timedelta(minutes=self._rng.randint(0, 24), seconds=self._rng.randint(0, 59))
        return when + timedelta(hours=hours) + jitter

    def _message_id(self, when: datetime, domain: str) -> str:
        """A unique, seeded ``Message-ID`` in the sender's domain."""
        return f"<{when:%Y%m%d%H%M%S}.{self._rng.getrandbits(48):012x}@{domain}>"

    def _new_message(
        self,
        sender: _Person,
        when: datetime,
        subject: str,
        to: tuple[_Person, ...],
        cc: tuple[_Person, ...] = (),
    ) -> EmailMessage:
        """Create a message with the common envelope headers."""
        msg = EmailMessage(policy=SMTP)
        msg["From"] = sender.address
        msg["To"] = [person.address for person in to]
        if cc:
            msg["Cc"] = [person.address for person in cc]
        msg["Subject"] = subject
        msg["Date"] = format_datetime(when.astimezone(sender.tz))
        msg["Message-ID"] = self._message_id(when, sender.domain)
        return msg

    def _serialize(self, msg: EmailMessage) -> bytes:
        """Give every multipart a seeded boundary and render CRLF bytes."""
        for part in msg.walk():
            if part.get_content_maintype() == "multipart":
                part.set_boundary(f"=_demo_{self._rng.getrandbits(64):016x}")
        return msg.as_bytes(policy=SMTP)

    def _record(
        self,
        msg: EmailMessage,
        kind: str,
        sender: _Person,
        placements: tuple[tuple[str, str], ...],
        *,
        contact_reply: bool = False,
    ) -> DemoMessage:
        """Serialize ``msg`` and keep it with the generator's intent."""
        record = DemoMessage(
            kind=kind,
            message_id=str(msg["Message-ID"]),
            date=msg["Date"].datetime,
            subject=str(msg["Subject"]),
            sender=sender.email,
            to=tuple(address.addr_spec for address in msg["To"].addresses),
            cc=tuple(address.addr_spec for address in msg["Cc"].addresses) if msg["Cc"] else (),
            in_reply_to=str(msg["In-Reply-To"]) if msg["In-Reply-To"] else None,
            contact_reply=contact_reply,
            placements=placements,
            raw=self._serialize(msg),
        )
        self.records.append(record)
        return record

    @staticmethod
    def _link(msg: EmailMessage, anchor: _Anchor) -> tuple[str, ...]:
        """Set ``In-Reply-To`` and ``References``; return the new references."""
        references = (*anchor.references, anchor.record.message_id)
        msg["In-Reply-To"] = anchor.record.message_id
        msg["References"] = " ".join(references)
        return references

    # -- threads

    def add_thread(self, thread: _Thread) -> None:
        """Generate every message of ``thread``."""
        when = BASE_TIME + timedelta(hours=thread.start)
        anchor: _Anchor | None = None
        for step in thread.steps:
            when = self._advance(when, step.after, automatic=step.kind is not None)
            if step.kind == KIND_AUTO_REPLY and anchor:
                self._auto_reply(step, anchor, when)
            elif step.kind == KIND_BOUNCE and anchor:
                self._bounce(step, anchor, when)
            else:
                anchor = self._thread_message(thread, step, anchor, when)

    @staticmethod
    def _recipients(
        thread: _Thread, sender: _Person, anchor: _Anchor | None
    ) -> tuple[tuple[_Person, ...], tuple[_Person, ...]]:
        """Reply-all rules: answer the previous sender, copy everyone else."""
        if anchor is None:
            return (
                tuple(_PEOPLE[key] for key in thread.to),
                tuple(_PEOPLE[key] for key in thread.cc),
            )
        if anchor.by == sender:  # a follow-up to one's own message
            return anchor.to, anchor.cc
        to = (anchor.by,)
        everyone = (anchor.by, *anchor.to, *anchor.cc)
        cc = tuple(dict.fromkeys(p for p in everyone if p not in to and p != sender))
        return to, cc

    def _thread_message(
        self, thread: _Thread, step: _Step, anchor: _Anchor | None, when: datetime
    ) -> _Anchor:
        """Generate a message a person wrote within a thread."""
        sender = _PEOPLE[step.by]
        to, cc = self._recipients(thread, sender, anchor)
        subject = _reply_subject(thread.subject) if anchor else thread.subject
        msg = self._new_message(sender, when, subject, to, cc)
        references = self._link(msg, anchor) if anchor else ()
        text = _clean(step.body)
        parts = [text]
        if sender.signature:
            parts.append(f"-- \n{sender.signature}")
        if anchor:
            parts.append(_quote(anchor.by.name, anchor.record.date, anchor.text))
        body = "\n\n".join(parts)
        _set_body(msg, body, _html_from_text(body) if step.html else "")
        everyone = (sender, *to, *cc)
        internal = all(person.role == _TEAM_ROLE for person in everyone)
        contact_reply = (
            anchor is not None and sender.role == _CUSTOMER_ROLE and anchor.by.role == _TEAM_ROLE
        )
        record = self._record(
            msg,
            KIND_INTERNAL if internal else KIND_CONVERSATION,
            sender,
            _placements(sender, (*to, *cc)),
            contact_reply=contact_reply,
        )
        return _Anchor(record, sender, to, cc, text, references)

    def _auto_reply(self, step: _Step, anchor: _Anchor, when: datetime) -> None:
        """Generate an out-of-office reply to the anchor's sender only."""
        sender = _PEOPLE[step.by]
        subject = f"Out of office: {anchor.record.subject}"
        msg = self._new_message(sender, when, subject, (anchor.by,))
        self._link(msg, anchor)
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Autoreply"] = "yes"
        _set_body(msg, _clean(step.body))
        self._record(msg, KIND_AUTO_REPLY, sender, _placements(sender, (anchor.by,)))

    def _bounce(self, step: _Step, anchor: _Anchor, when: datetime) -> None:
        """Generate an RFC 3464 delivery status notification for the anchor."""
        mta = _PEOPLE[step.by]
        original = anchor.record
        rcpt = anchor.to[0].email
        msg = EmailMessage(policy=SMTP)
        msg["Return-Path"] = "<>"
        msg["Date"] = format_datetime(when.astimezone(mta.tz))
        msg["From"] = mta.address
        msg["Subject"] = "Undelivered Mail Returned to Sender"
        msg["To"] = anchor.by.email
        msg["Auto-Submitted"] = "auto-replied"
        msg["Message-ID"] = self._message_id(when, mta.domain)
        msg["MIME-Version"] = "1.0"
        msg["Content-Type"] = "multipart/report; report-type=delivery-status"
        msg.preamble = "This is a MIME-encapsulated message."
        store = f"mailstore.{mta.domain.partition('.')[2]}"
        queue_id = f"{self._rng.getrandbits(40):010X}"
        for part in (
            self._dsn_notice(mta.domain, store, rcpt),
            self._dsn_status(mta, store, rcpt, anchor.by.email, queue_id, original.date),
            self._dsn_headers(mta.domain, rcpt, queue_id, original),
        ):
            msg.attach(part)
        self._record(msg, KIND_BOUNCE, mta, _placements(mta, (anchor.by,)))

    @staticmethod
    def _dsn_notice(mta: str, store: str, rcpt: str) -> MIMEPart:
        """The human-readable first part of the DSN, as Postfix writes it."""
        part = MIMEPart(policy=SMTP)
        notice = _clean(_DSN_NOTICE).format(mta=mta, store=store, rcpt=rcpt)
        part.set_content(notice + "\n", charset="us-ascii")
        part["Content-Description"] = "Notification"
        return part

    @staticmethod
    def _dsn_status(
        mta: _Person, store: str, rcpt: str, sender: str, queue_id: str, arrival: datetime
    ) -> MIMEPart:
        """The ``message/delivery-status`` part: per-message and per-recipient fields."""
        per_message = Message()
        per_message["Reporting-MTA"] = f"dns; {mta.domain}"
        per_message["X-Postfix-Queue-ID"] = queue_id
        per_message["X-Postfix-Sender"] = f"rfc822; {sender}"
        per_message["Arrival-Date"] = format_datetime(arrival.astimezone(mta.tz))
        per_recipient = Message()
        per_recipient["Final-Recipient"] = f"rfc822; {rcpt}"
        per_recipient["Original-Recipient"] = f"rfc822;{rcpt}"
        per_recipient["Action"] = "failed"
        per_recipient["Status"] = "5.1.1"
        per_recipient["Remote-MTA"] = f"dns; {store}"
        per_recipient["Diagnostic-Code"] = (
            f"smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: "
            "User unknown in virtual mailbox table"
        )
        part = MIMEPart(policy=SMTP)
        part["Content-Description"] = "Delivery report"
        part["Content-Type"] = "message/delivery-status"
        part.set_payload([per_message, per_recipient])
        return part

    @staticmethod
    def _dsn_headers(mta: str, rcpt: str, queue_id: str, original: DemoMessage) -> MIMEPart:
        """The ``text/rfc822-headers`` part: the bounced message's header block."""
        received = (
            f"Received: from mail.{COMPANY_DOMAIN} (mail.{COMPANY_DOMAIN} [192.0.2.25])\n"
            f"\tby {mta} (Postfix) with ESMTPS id {queue_id}\n"
            f"\tfor <{rcpt}>; {format_datetime(original.date.astimezone(UTC))}\n"
        )
        headers = original.raw.partition(b"\r\n\r\n")[0].decode("ascii").replace("\r\n", "\n")
        part = MIMEPart(policy=SMTP)
        part["Content-Description"] = "Undelivered Message Headers"
        part["Content-Type"] = "text/rfc822-headers"
        part.set_payload(f"{received}{headers}\n")
        return part

    # -- broadcasts

    def add_broadcast(
        self,
        item: _Broadcast,
        kind: str,
        sender_key: str,
        subscriber_key: str,
        headers: tuple[tuple[str, str], ...],
    ) -> None:
        """Generate a list post or newsletter issue for one subscriber."""
        sender = _PEOPLE[sender_key]
        subscriber = _PEOPLE[subscriber_key]
        when = self._advance(BASE_TIME, item.start)
        to = sender if kind == KIND_LIST else subscriber  # list posts are addressed to the list
        msg = self._new_message(sender, when, item.subject, (to,))
        for name, value in headers:
            msg[name] = value
        _set_body(msg, _clean(item.body), _html_document(_clean(item.html)) if item.html else "")
        self._record(msg, kind, sender, ((subscriber.email, INBOX),))


def _build() -> list[DemoMessage]:
    """Generate all records in a fixed order, sorted by date."""
    builder = _Builder()
    for thread in _THREADS:
        builder.add_thread(thread)
    for post in _LIST_POSTS:
        builder.add_broadcast(post, KIND_LIST, _LIST_SENDER, _LIST_SUBSCRIBER, _LIST_HEADERS)
    for issue in _NEWSLETTERS:
        builder.add_broadcast(issue, KIND_BULK, _BULK_SENDER, _BULK_SUBSCRIBER, _BULK_HEADERS)
    return sorted(builder.records, key=lambda record: (record.date, record.message_id))


# --------------------------------------------------------------------------- public API


def demo_messages() -> tuple[DemoMessage, ...]:
    """Return every generated message once, oldest first, with its intent.

    Returns:
        The records behind :func:`demo_mailboxes`; a message stored in
        several folders appears once, listing all its placements.
    """
    return tuple(_build())


def demo_mailboxes() -> dict[str, dict[str, list[bytes]]]:
    """Return the demo mailboxes of every team member.

    Returns:
        username (email) -> folder (``"INBOX"`` or ``"Sent"``) -> list of
        RFC 5322 messages as bytes with CRLF line endings, oldest first.
    """
    mailboxes: dict[str, dict[str, list[bytes]]] = {
        member.email: {INBOX: [], SENT: []} for member in TEAM
    }
    for record in _build():
        for username, folder in record.placements:
            mailboxes[username][folder].append(record.raw)
    return mailboxes


def _header_addresses(records: Iterable[DemoMessage]) -> Iterator[str]:
    """Every From/To/Cc address of ``records``, lower-cased."""
    for record in records:
        for address in (record.sender, *record.to, *record.cc):
            yield address.lower()


def expected_summary() -> dict[str, Any]:
    """Return what a parser of :func:`demo_mailboxes` should find.

    The numbers come from the generator's records, not from parsing its output.

    Returns:
        A dict with:

        * ``folders``: username -> folder -> number of messages;
        * ``total_messages``: stored messages over all folders;
        * ``message_ids``: set of distinct ``Message-ID`` values;
        * ``external_addresses``: lower-cased From/To/Cc addresses outside
          ``acme.example`` (customers, the bounced address, automated senders);
        * ``customer_addresses``: the subset belonging to real customer contacts;
        * ``kinds``: kind -> number of distinct messages, for every kind in :data:`KINDS`;
        * ``auto_replies``, ``bounces``, ``list``, ``bulk``: those kind counts;
        * ``contact_replies``: customer messages replying to a team member's message.
    """
    records = _build()
    folders = {member.email: {INBOX: 0, SENT: 0} for member in TEAM}
    for record in records:
        for username, folder in record.placements:
            folders[username][folder] += 1
    addresses = set(_header_addresses(records))
    customers = {p.email.lower() for p in _PEOPLE.values() if p.role == _CUSTOMER_ROLE}
    kinds = Counter(record.kind for record in records)
    return {
        "folders": folders,
        "total_messages": sum(len(record.placements) for record in records),
        "message_ids": {record.message_id for record in records},
        "external_addresses": {a for a in addresses if not a.endswith(f"@{COMPANY_DOMAIN}")},
        "customer_addresses": addresses & customers,
        "kinds": {kind: kinds[kind] for kind in KINDS},
        "auto_replies": kinds[KIND_AUTO_REPLY],
        "bounces": kinds[KIND_BOUNCE],
        "list": kinds[KIND_LIST],
        "bulk": kinds[KIND_BULK],
        "contact_replies": sum(record.contact_reply for record in records),
    }
