"""The team as the load sees it: membership by address and domain, and the directions it gives.

The derive step keeps the directions the load computed when the load used today's team
(migration 0012), so the load's reading of the team must be the SQL function ``inboxsync.is_team``'s
(tests/integration/test_replies.py compares the two on a real PostgreSQL).
"""

from __future__ import annotations

import pickle

import pytest

from inboxsync.load import direction
from inboxsync.parse import Address, ParsedMessage
from inboxsync.registry import Team

TEAM = Team(["alice@team.example"], ["acme.example", "my_co.example"], fingerprint="f1")


@pytest.mark.parametrize(
    ("email", "member"),
    [
        ("alice@team.example", True),
        ("bob@team.example", False),  # an address of the team, not a domain of it
        ("zoe@acme.example", True),
        ("zoe@eu.acme.example", True),  # subdomains too
        ("zoe@notacme.example", False),
        ("zoe@acme.example.org", False),
        ("x@my_co.example", True),
        ("x@sub.my_co.example", True),
        ("x@sub.myXco.example", False),  # "_" is a character, not a wildcard
        ("x@myco.example", False),
    ],
)
def test_membership_by_address_and_domain(email: str, member: bool) -> None:
    assert (email in TEAM) is member


def test_the_team_reaches_the_parse_worker_whole() -> None:
    copy = pickle.loads(pickle.dumps(TEAM))
    assert (set(copy), copy.domains, copy.fingerprint) == (set(TEAM), TEAM.domains, "f1")
    assert "zoe@eu.acme.example" in copy


def message(sender: str | None, **roles: str) -> ParsedMessage:
    addresses = [Address("from", sender, None)] if sender else []
    addresses += [Address(role, email, None) for role, email in roles.items()]
    return ParsedMessage(
        message_key="k", message_id=None, subject=None, sent_at=None, date_header=None,
        from_email=sender, from_name=None, in_reply_to=None, references=(),
        addresses=tuple(addresses), kind="human", list_id=None, auto_submitted=None,
        content_type=None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        (message("carol@customer.example", to="alice@team.example"), "inbound"),
        (message(None, to="alice@team.example"), "inbound"),
        (message("alice@team.example", to="carol@customer.example"), "outbound"),
        (message("alice@team.example", to="zoe@acme.example", cc="carol@customer.example"),
         "outbound"),
        (message("alice@team.example", bcc="carol@customer.example"), "outbound"),
        (message("alice@team.example", to="zoe@eu.acme.example"), "internal"),
        (message("zoe@acme.example", to="x@my_co.example"), "internal"),
        (message("alice@team.example", to="zoe@acme.example", reply_to="carol@customer.example"),
         "internal"),  # Reply-To is no recipient
        (message("alice@team.example"), "internal"),
    ],
)  # fmt: skip
def test_directions_count_team_domains(msg: ParsedMessage, expected: str) -> None:
    assert direction(msg, TEAM) == expected
