"""`make demo` end to end: the real DAG on local services and demo mail, twice."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

DEMO_ROOT = REPO / ".local" / "test-demo"


@pytest.fixture
def demo_root():
    from inboxsync import localenv

    yield DEMO_ROOT
    localenv.stop(DEMO_ROOT)


def _demo(root) -> subprocess.CompletedProcess[str]:
    # A clean environment: the demo sets up Airflow itself, as it does for a newcomer.
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("AIRFLOW")}
    return subprocess.run(
        [sys.executable, "-m", "inboxsync.demo", "run", "--root", str(root)],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip


def test_demo_syncs_the_demo_mail_then_nothing_new(demo_root):
    from inboxsync.demo_mail import TEAM, expected_summary

    expected = expected_summary()
    first = _demo(demo_root)
    assert first.returncode == 0, first.stdout + first.stderr
    copies = expected["total_messages"]
    distinct = len(expected["message_ids"])
    contacts = len(expected["external_addresses"])
    if "nothing new" not in first.stdout:  # a previous session may have run it already
        assert (
            f"synced {copies} new message copies: {distinct} distinct messages, "
            f"{contacts} external contacts, 0 quarantined" in first.stdout
        ), first.stdout
    for member in TEAM:
        folders = expected["folders"][member.email]
        line = next(ln for ln in first.stdout.splitlines() if ln.strip().startswith(member.name))
        assert line.split()[2:7] == [member.email, "2", str(sum(folders.values())),
                                     line.split()[5], "0"], line  # fmt: skip

    second = _demo(demo_root)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "nothing new: every message was already synced" in second.stdout
