"""Classify a message as bounce, auto-reply, list, bulk or human mail from its header fields alone.

The sync only fetches header fields (see `inboxsync.parse.HEADER_FIELDS`), never bodies, so every
rule here reads headers. The kind decides whether a message may count as a contact's reply: only
`human` mail does, which is why the rules lean towards "not human" only on strong signals.

Rules, first match wins:

1. ``bounce``: a delivery report (``multipart/report; report-type=delivery-status``, RFC 3464);
   a From or Sender whose local part is MAILER-DAEMON or postmaster; or a null envelope sender
   (Return-Path ``<>``, RFC 5321's null reverse-path, or MAILER-DAEMON; or a From of ``<>``)
   together with a ``multipart/report`` that is not a read receipt or feedback report, or with a
   bounce-like subject ("Undelivered Mail Returned to Sender", "failure notice", ...). An empty
   Return-Path alone is NOT a bounce: RFC 3834 asks auto-responders to use it too, and so do read
   receipts and some notification systems.
   Bounces are tested first because DSNs often also carry ``Auto-Submitted: auto-replied``.
2. ``auto_reply``: ``Auto-Submitted`` other than ``no`` (RFC 3834); ``X-Autoreply`` or
   ``X-Autorespond`` not negative (``no``, ``false``, ``0``, empty); ``Precedence: auto_reply``;
   a read receipt (``report-type=disposition-notification``, RFC 8098) or a spam-complaint
   feedback report (``report-type=feedback-report``, RFC 5965), which are machine answers to one
   of our messages but not delivery failures. A vacation subject ("Out of office", "Automatic
   reply", ...) counts only together with ``Precedence: bulk|junk`` or a null envelope sender as
   above, since people write such subjects by hand too. ``X-Auto-Response-Suppress`` is
   deliberately ignored: ordinary Exchange and Outlook mail carries it.
3. ``list``: a ``List-Id`` (RFC 2919) or ``Precedence: list``.
4. ``bulk``: ``Precedence: bulk|junk``, or ``List-Unsubscribe`` without ``List-Id`` (newsletters).
5. ``human``: everything else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

BOUNCE = "bounce"
AUTO_REPLY = "auto_reply"
LIST = "list"
BULK = "bulk"
HUMAN = "human"
KINDS: tuple[str, ...] = (BOUNCE, AUTO_REPLY, LIST, BULK, HUMAN)

# Local parts that only delivery systems send from (RFC 5321 section 4.5.1, RFC 2142); the other
# spellings occur in real bounces (older MTAs, Verizon's and Apache James's "post_master").
_BOUNCE_LOCAL_PARTS = frozenset(
    {"mailer-daemon", "mailer_daemon", "mailerdaemon", "postmaster", "post_master"}
)
# Values of X-Autoreply / X-Autorespond / Auto-Submitted that deny automation; an empty field is
# an artefact of some gateways, not a claim.
_NEGATIVE_VALUES = frozenset({"", "no", "false", "off", "0"})
_REPORT_TYPE = re.compile(r"report-type\s*=\s*\"?\s*([a-z0-9_-]+)", re.IGNORECASE)
# Report types that answer a message without it having failed: read receipts, spam complaints.
_NON_DELIVERY_REPORTS = frozenset({"disposition-notification", "feedback-report"})
_ANGLE_ADDR = re.compile(r"<([^<>]*)>")
_COMMENT = re.compile(r"\([^()]*\)")


def _any_of(alternatives: tuple[str, ...], flags: int = re.IGNORECASE) -> re.Pattern[str]:
    """Compile regex alternatives into one case-insensitive pattern that searches fast.

    Under IGNORECASE the regex engine cannot skip to a likely start, so a plain alternation tries
    every alternative at every character. A lookahead on the alternatives' first characters
    rejects most positions at once: the same matches, about three times faster.

    Args:
        alternatives: Regexes that each begin with a literal character.
        flags: The regex flags; 0 gives the case-sensitive pattern for lower-cased ASCII text.

    Returns:
        The compiled pattern.
    """
    first = "".join(sorted({alternative[0] for alternative in alternatives}))
    return re.compile(rf"(?=[{first}])(?:{'|'.join(alternatives)})", flags)


# Subjects MTAs put on non-delivery reports; used only together with a null envelope sender.
_BOUNCE_WORDS = (
    r"undeliver", r"delivery status", r"delivery failure", r"delivery has failed",
    r"delivery failed", r"mail delivery failed", r"returned mail", r"failure notice",
    r"non[- ]?delivery", r"nondeliverable", r"not delivered", r"could not be delivered",
    r"unzustellbar", r"non remis", r"no se puede entregar", r"message not delivered",
    r"mail system error", r"delivery notification", r"returned to sender",
)  # fmt: skip
_BOUNCE_SUBJECT = _any_of(_BOUNCE_WORDS)
# Subjects of vacation and out-of-office replies in the languages our teams see most; used only
# as a supporting signal.
_VACATION_WORDS = (
    r"out of (?:the )?office", r"automatic reply", r"auto[- ]?reply", r"auto[- ]?response",
    r"autorespons", r"vacation", r"away from", r"on leave", r"abwesenheit",
    r"automatische antwort", r"r[ée]ponse automatique", r"absence", r"respuesta autom[áa]tica",
    r"fuera de la oficina", r"risposta automatica", r"resposta autom[áa]tica", r"afwezig",
    r"automatisch antwoord", r"autosvar", r"automaattinen vastaus", r"自動応答", r"自动回复",
)  # fmt: skip
_VACATION_SUBJECT = _any_of(_VACATION_WORDS)
# The same words, all lower-case, matched case-sensitively in lower-cased ASCII text: for ASCII
# text that is what IGNORECASE matches (the words' non-ASCII letters match no ASCII letter), and
# it searches several times faster.
_VACATION_LOWER = _any_of(_VACATION_WORDS, 0)


def classify(headers: Mapping[str, str]) -> str:
    """Return the kind of a message from its header fields.

    Args:
        headers: Header field name to (first) value, unfolded. Names are matched
            case-insensitively; the Subject should already be RFC 2047-decoded so that
            encoded vacation subjects are recognised.

    Returns:
        One of ``"bounce"``, ``"auto_reply"``, ``"list"``, ``"bulk"``, ``"human"``.
    """
    return classify_fields(
        {name.lower(): value for name, value in headers.items() if value is not None}
    )


def classify_fields(fields: Mapping[str, str]) -> str:
    """`classify` for fields whose names are lower-case already and whose values are strings
    (the parser's; it saves building the mapping again).

    Args:
        fields: Lower-cased field name to (first) value, unfolded; the Subject decoded.

    Returns:
        As `classify`.
    """
    content_type = fields.get("content-type", "")
    report_type = _report_type(content_type)
    subject = fields.get("subject", "")
    precedence = _first_token(fields.get("precedence", ""))
    null_sender = _is_null_sender(fields)
    if _is_bounce(fields, report_type, subject, null_sender):
        return BOUNCE
    if _is_auto_reply(fields, report_type, subject, precedence, null_sender):
        return AUTO_REPLY
    if fields.get("list-id", "").strip() or precedence == "list":
        return LIST
    if precedence in ("bulk", "junk") or fields.get("list-unsubscribe", "").strip():
        return BULK
    return HUMAN


def _is_bounce(
    fields: Mapping[str, str], report_type: str | None, subject: str, null_sender: bool
) -> bool:
    """Tell whether the fields describe a non-delivery report.

    Args:
        fields: Lower-cased field name to value.
        report_type: The report-type of a multipart/report body, "" when it has none, or None
            when the message is not a multipart/report.
        subject: The decoded subject.
        null_sender: What `_is_null_sender` says of the fields.

    Returns:
        True for a bounce.
    """
    if report_type == "delivery-status":
        return True
    if _sender_is_daemon(fields.get("from")) or _sender_is_daemon(fields.get("sender")):
        return True
    # Weaker signals, each only together with a delivery system's envelope sender.
    if not null_sender:
        return False
    looks_like_report = report_type is not None and report_type not in _NON_DELIVERY_REPORTS
    return looks_like_report or bool(_BOUNCE_SUBJECT.search(subject))


def _is_auto_reply(
    fields: Mapping[str, str],
    report_type: str | None,
    subject: str,
    precedence: str,
    null_sender: bool,
) -> bool:
    """Tell whether the fields describe an automatic answer (RFC 3834 and its predecessors).

    Args:
        fields: Lower-cased field name to value.
        report_type: As for `_is_bounce`.
        subject: The decoded subject.
        precedence: The first token of Precedence, see `_first_token`.
        null_sender: What `_is_null_sender` says of the fields.

    Returns:
        True for an auto-reply.
    """
    for name in ("auto-submitted", "x-autoreply", "x-autorespond"):
        value = fields.get(name)
        if value is not None and _first_token(value) not in _NEGATIVE_VALUES:
            return True
    if precedence == "auto_reply" or report_type in _NON_DELIVERY_REPORTS:
        return True
    # A vacation subject alone is weak evidence: people type "Out of office" themselves.
    supported = precedence in ("bulk", "junk") or null_sender
    return supported and vacation_subject(subject)


def vacation_subject(subject: str) -> bool:
    """Tell whether a subject reads like a vacation or out-of-office reply (a supporting signal:
    `classify_fields` counts it only beside a bulk Precedence or a null envelope sender).

    Args:
        subject: The decoded subject.

    Returns:
        True when it holds one of the vacation words.
    """
    if subject.isascii():
        return bool(_VACATION_LOWER.search(subject.lower()))
    return bool(_VACATION_SUBJECT.search(subject))


def _report_type(content_type: str) -> str | None:
    """Return the report-type of a multipart/report Content-Type.

    Args:
        content_type: The raw Content-Type value.

    Returns:
        The lower-cased report-type, "" for a multipart/report without one, None otherwise.
    """
    if not content_type.lstrip().lower().startswith("multipart/report"):
        return None
    match = _REPORT_TYPE.search(content_type)
    return match[1].lower() if match else ""


def _is_null_sender(fields: Mapping[str, str]) -> bool:
    """Tell whether the message was sent with a delivery system's envelope sender.

    That is the null reverse-path ``<>`` (RFC 5321 for bounces, RFC 3834 for auto-replies), a
    Return-Path of MAILER-DAEMON (some MTAs put that instead of ``<>``), or a From of ``<>``
    (seen on appliance bounces). Alone it proves nothing; it supports the other signals.

    Args:
        fields: Lower-cased field name to value.

    Returns:
        True when the envelope sender is null or a delivery system.
    """
    return_path = fields.get("return-path")
    from_ = fields.get("from")
    if return_path is not None:
        compact = "".join(return_path.split())
        if compact == "<>":
            return True
        # Substring test first: the exact check is needed on bounces only, not on every message.
        lowered = compact.lower()
        if ("daemon" in lowered or "master" in lowered) and _sender_is_daemon(compact):
            return True
    return from_ is not None and "".join(from_.split()) == "<>"


def _sender_is_daemon(value: str | None) -> bool:
    """Tell whether an originator field names MAILER-DAEMON or postmaster.

    Only the address counts, and only its local part, so that a "postmaster@" of any domain
    matches while "Postmaster Team <alice@...>" does not; but when the address is empty
    (``MAILER-DAEMON <>``, DragonFly's dma) the name is all there is. The address is found
    without a full RFC 5322 parse because bounces often send a bare ``MAILER-DAEMON`` without a
    domain, which address parsers drop.

    Args:
        value: The raw From or Sender value, or None when absent.

    Returns:
        True when the first address's local part is a delivery-system name.
    """
    if not value:
        return False
    # Every name in _BOUNCE_LOCAL_PARTS holds one of these: most values are rejected here.
    lowered = value.lower()
    if "daemon" not in lowered and "master" not in lowered:
        return False
    match = _ANGLE_ADDR.search(value)
    if match is None:
        address = _COMMENT.sub(" ", value)
    elif match[1].strip():
        address = match[1]
    else:
        address = value[: match.start()]
    address = address.strip().split(",", 1)[0].strip()
    local_part = address.rsplit("@", 1)[0].strip().strip('"').lower()
    return local_part in _BOUNCE_LOCAL_PARTS


def _first_token(value: str) -> str:
    """Return the first token of a structured value, lower-cased, without comments or parameters.

    Args:
        value: A value such as ``"auto-replied (vacation)"`` or ``"bulk; x=y"``.

    Returns:
        The token, e.g. ``"auto-replied"``; "" when there is none.
    """
    if "(" in value:
        value = _COMMENT.sub(" ", value)
    token = value.split(";", 1)[0].strip().lower()
    return token.split()[0] if token else ""
