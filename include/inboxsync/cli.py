"""The ``inboxsync`` command: connect inboxes and sync them outside the scheduler.

``inboxsync sync NAME`` runs exactly what the DAG's mapped task runs.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from collections.abc import Callable, Sequence

from inboxsync import erase, registry, report, warehouse
from inboxsync.connections import get_connection
from inboxsync.first_sync import AirflowApiError, start_first_sync
from inboxsync.hooks import check_inbox
from inboxsync.imap import SECURITY_MODES, ImapSession, ImapSettings, InboxError
from inboxsync.sync import Budget, FolderResult, sync_inbox
from inboxsync.verify import verify_inbox


class UsageError(Exception):
    """The command line asked for something that cannot be done."""


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        password = getpass.getpass(f"Password for {args.username}: ")
    else:
        raise UsageError("no password: pass --password-stdin and pipe it, or run in a terminal")
    if not password:
        raise UsageError("the password is empty")
    return password


_OAUTH_OPTIONS = ("oauth_provider", "token_url", "client_id", "tenant", "scope")


def _read_credentials(args: argparse.Namespace) -> dict[str, object]:
    """The secrets and auth settings of ``inbox add``, as keyword arguments of add_inbox.

    Password auth reads the password (``--password-stdin`` or a prompt). OAuth2 reads, in this
    order, the refresh token and then the client secret: two lines on stdin with
    ``--refresh-token-stdin`` (an empty or missing second line means a public client without a
    secret), or two prompts. Secrets never come from argv.
    """
    if args.auth == "password":
        given = [f"--{o.replace('_', '-')}" for o in _OAUTH_OPTIONS if getattr(args, o)]
        if given or args.refresh_token_stdin:
            raise UsageError(f"{', '.join(given) or '--refresh-token-stdin'} needs --auth oauth2")
        return {"password": _read_password(args), "auth_mechanism": args.auth_mechanism}
    if args.password_stdin or args.auth_mechanism:
        raise UsageError("--auth oauth2 takes --refresh-token-stdin, not a password mechanism")
    if args.refresh_token_stdin:
        refresh_token = sys.stdin.readline().strip()
        client_secret = sys.stdin.readline().strip()
    elif sys.stdin.isatty():
        refresh_token = getpass.getpass(f"OAuth2 refresh token for {args.username}: ").strip()
        client_secret = getpass.getpass("Client secret (empty for a public client): ").strip()
    else:
        raise UsageError(
            "no refresh token: pass --refresh-token-stdin and pipe the refresh token and the "
            "client secret (one a line), or run in a terminal"
        )
    if not refresh_token:
        raise UsageError("the refresh token is empty")
    oauth = {
        "provider": args.oauth_provider or "custom",
        "token_url": args.token_url,
        "client_id": args.client_id,
        "tenant": args.tenant,
        "scope": args.scope,
        "client_secret": client_secret or None,
        "refresh_token": refresh_token,
    }
    return {"password": None, "oauth": oauth}


def cmd_inbox_add(args: argparse.Namespace) -> int:
    if args.conn_id:
        return _link_inbox(args)
    if not args.host or not args.username:
        raise UsageError("--host and --username are required (or --conn-id CONN_ID)")
    credentials = _read_credentials(args)
    port = args.port or (993 if args.security == "ssl" else 143)
    if args.verify:
        from airflow.models.connection import Connection

        extra = registry.connection_extra(
            security=args.security,
            ca_file=args.ca_file,
            auth_mechanism=credentials.get("auth_mechanism"),
            oauth=credentials.get("oauth"),
        )
        unsaved = Connection(
            conn_id=registry.conn_id_for(args.name),
            conn_type="imap",
            host=args.host,
            port=port,
            login=args.username,
            password=credentials.get("password") or "",
            extra=json.dumps(extra),
        )
        _verify(ImapSettings.from_connection(unsaved), args.folder or None)
    warehouse.migrate()
    with warehouse.transaction() as cur:
        inbox = registry.add_inbox(
            cur,
            args.name,
            host=args.host,
            port=port,
            security=args.security,
            username=args.username,
            **credentials,
            owner_email=args.owner,
            create_contacts=args.create_contacts,
            ca_file=args.ca_file,
            folders=args.folder or None,
        )
    print(f"inbox {inbox.name!r} saved (connection {inbox.conn_id})")
    return _first_sync(args, inbox.name)


def _link_inbox(args: argparse.Namespace) -> int:
    """``inbox add NAME --conn-id ID``: an inbox on a connection made in the Airflow UI."""
    given = [
        o for o in ("host", "port", "username", "ca_file", "password_stdin") if getattr(args, o)
    ]
    if given:
        names = ", ".join("--" + o.replace("_", "-") for o in given)
        raise UsageError(f"--conn-id takes its settings from the connection: drop {names}")
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        cfg = ImapSettings.from_connection(get_connection(args.conn_id))
    except AirflowNotFoundException:
        raise UsageError(f"no Airflow connection {args.conn_id!r}") from None
    if args.verify:
        _verify(cfg, args.folder or None)
    warehouse.migrate()
    with warehouse.transaction() as cur:
        inbox = registry.register_inbox(
            cur,
            args.name,
            args.conn_id,
            username=cfg.username,
            owner_email=args.owner,
            create_contacts=args.create_contacts,
            folders=args.folder or None,
        )
    print(f"inbox {inbox.name!r} saved (connection {inbox.conn_id})")
    return _first_sync(args, inbox.name)


def _verify(cfg: ImapSettings, folders: list[str] | None) -> None:
    """Log in, list capabilities, discover and EXAMINE the folders; raise InboxError if not."""
    found = check_inbox(cfg, folders)
    print(f"verified: {found.summary()}")


def _first_sync(args: argparse.Namespace, name: str) -> int:
    if not args.sync:
        print(f"inbox {name!r} syncs on the next scheduled run")
        return 0
    try:
        started = start_first_sync(name)
    except (InboxError, AirflowApiError) as exc:
        print(
            f"inboxsync: error: the first sync of {name!r} did not start: {exc}\n"
            f"the inbox is saved; it syncs on the next run (or run `inboxsync sync {name}`)",
            file=sys.stderr,
        )
        return 1
    if started.how == "dag_run":
        print(f"first sync started in Airflow: DAG run {started.run_id} ({started.url})")
        return 0
    result = started.result
    print(f"first sync ran here ({started.reason}):")
    for f in result.folders:
        print(f"{result.inbox}: {f.log_line()}")
    if result.backfill_remaining:
        print(f"{result.inbox}: {result.backfill_remaining} older messages follow in the next runs")
    return 0


def cmd_inbox_list(args: argparse.Namespace) -> int:
    warehouse.migrate()
    with warehouse.transaction() as cur:
        inboxes = registry.list_inboxes(cur)
    if not inboxes:
        print("no connected inboxes; add one with `inboxsync inbox add`")
        return 0
    print(f"{'name':20} {'address':30} {'owner':30} contacts enabled folders")
    for i in inboxes:
        folders = ",".join(i.folders) if i.folders else "default"
        contacts = "create" if i.create_contacts else "link"
        print(
            f"{i.name:20} {i.email_address or '':30} {i.owner_email or '':30} "
            f"{contacts:8} {'yes' if i.enabled else 'no':7} {folders}"
        )
    return 0


def cmd_inbox_test(args: argparse.Namespace) -> int:
    with warehouse.transaction() as cur:
        inbox = registry.get_inbox(cur, args.name)
    cfg = ImapSettings.from_connection(get_connection(inbox.conn_id))
    with ImapSession(cfg) as imap:
        print(f"login ok: {cfg.username} at {cfg.address} ({cfg.security})")
        print("capabilities: " + " ".join(imap.capabilities()))
        for folder in imap.sync_folders(inbox.folders):
            status = imap.examine(folder)
            print(
                f"folder {folder!r}: {status.exists} messages, UIDVALIDITY {status.uidvalidity},"
                f" UIDNEXT {status.uidnext}"
            )
    return 0


def cmd_inbox_remove(args: argparse.Namespace) -> int:
    if args.purge:
        return _erase(args, f"inbox {args.name!r}", lambda **kw: erase.purge_inbox(args.name, **kw))
    with warehouse.transaction() as cur:
        inbox = registry.remove_inbox(cur, args.name)
    print(f"inbox {inbox.name!r} removed with its copies and sync state; messages kept")
    return 0


def cmd_contact_forget(args: argparse.Namespace) -> int:
    return _erase(args, args.email, lambda **kw: erase.forget_contact(args.email, **kw))


def _erase(args: argparse.Namespace, what: str, run: Callable[..., erase.Erased]) -> int:
    """Show what an erasure deletes, ask (unless --yes), then do it in one transaction."""
    planned = run(dry_run=True)
    print(f"{what}: would delete {planned.summary()}")
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("nothing deleted: confirm with --yes (or run in a terminal)")
        if input("type 'yes' to delete this for good: ").strip().lower() != "yes":
            print("nothing deleted")
            return 1
    done = run()
    print(f"{what}: deleted {done.summary()}")
    return 0


def _budget(args: argparse.Namespace, *, backfill: bool) -> Budget | None:
    if args.budget_messages is None and args.budget_bytes is None:
        return Budget() if backfill else None  # a backfill runs to the end; a sync, hourly budget
    return Budget(messages=args.budget_messages, bytes=args.budget_bytes)


def _run_sync(args: argparse.Namespace, *, backfill: bool) -> int:
    def progress(f: FolderResult) -> None:
        if args.verbose:
            print(f"  {f.log_line()}", file=sys.stderr)

    result = sync_inbox(
        args.name,
        batch_size=args.batch_size,
        budget=_budget(args, backfill=backfill),
        on_batch=progress,
    )
    for f in result.folders:
        print(f"{result.inbox}: {f.log_line()}")
    if result.fetched == 0:
        print(f"{result.inbox}: up to date, nothing new")
    if result.backfill_remaining:
        print(
            f"{result.inbox}: {result.backfill_remaining} older messages remain; they follow in "
            f"the next runs (or run `inboxsync backfill {args.name}`)"
        )
    return 0


def cmd_sync(args: argparse.Namespace) -> int:
    return _run_sync(args, backfill=False)


def cmd_backfill(args: argparse.Namespace) -> int:
    return _run_sync(args, backfill=True)


def cmd_verify(args: argparse.Namespace) -> int:
    checks = verify_inbox(args.name)
    print(f"{'folder':24} {'server':>8} {'warehouse':>9} {'missing':>8} {'pending':>8} "
          f"{'extra':>6} {'stale':>6}")  # fmt: skip
    for c in checks:
        print(f"{c.folder:24} {c.on_server:>8} {c.in_warehouse:>9} {c.missing:>8} "
              f"{c.pending:>8} {c.extra:>6} {c.stale:>6}")  # fmt: skip
    if all(c.ok for c in checks):
        print(f"{args.name}: the warehouse matches the server")
        return 0
    print(f"{args.name}: the warehouse differs from the server", file=sys.stderr)
    return 1


def cmd_status(args: argparse.Namespace) -> int:
    url = warehouse.warehouse_url()
    warehouse.migrate(url)
    print(report.format_table(report.inbox_summary(url)))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    applied = warehouse.migrate()
    print("applied: " + ", ".join(applied) if applied else "warehouse schema up to date")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inboxsync", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True)

    inbox = sub.add_parser("inbox", help="manage connected inboxes").add_subparsers(
        dest="inbox_command", required=True
    )
    add = inbox.add_parser("add", help="connect an inbox (password from stdin or a prompt)")
    add.add_argument("name")
    add.add_argument("--host", help="IMAP host (required unless --conn-id)")
    add.add_argument("--port", type=int, help="default 993 for ssl, 143 otherwise")
    add.add_argument("--security", choices=SECURITY_MODES, default="ssl")
    add.add_argument("--username", help="IMAP login (required unless --conn-id)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    add.add_argument("--owner", help="email of the team member who owns the inbox")
    add.add_argument(
        "--create-contacts",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="turn every new address seen in this inbox into a contact (default: on)",
    )
    add.add_argument("--ca-file", help="CA bundle to verify the server's certificate with")
    add.add_argument(
        "--auth",
        choices=("password", "oauth2"),
        default="password",
        help="password (LOGIN / AUTHENTICATE PLAIN) or oauth2 (SASL XOAUTH2; Microsoft 365, "
        "Outlook.com, Google)",
    )
    add.add_argument(
        "--auth-mechanism",
        choices=("login", "plain"),
        help="password auth: LOGIN or AUTHENTICATE PLAIN (default LOGIN, PLAIN for non-ASCII)",
    )
    add.add_argument(
        "--oauth-provider",
        choices=("google", "microsoft", "custom"),
        help="oauth2: token endpoint and scope preset (custom needs --token-url)",
    )
    add.add_argument("--token-url", help="oauth2: token endpoint (overrides the preset)")
    add.add_argument("--client-id", help="oauth2: the OAuth2 client (application) id")
    add.add_argument("--tenant", help="oauth2, microsoft: tenant id or domain (default common)")
    add.add_argument("--scope", help="oauth2: scope to ask for (overrides the preset)")
    add.add_argument(
        "--refresh-token-stdin",
        action="store_true",
        help="oauth2: read the refresh token, then the client secret (empty line: none), from "
        "stdin, one a line",
    )
    add.add_argument(
        "--folder", action="append", help="sync this folder (repeat); default INBOX and Sent"
    )
    add.add_argument(
        "--conn-id",
        help="use this existing Airflow connection (made in the UI, type imap or inboxsync_imap) "
        "instead of creating one",
    )
    add.add_argument(
        "--verify",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="log in, list capabilities and folders before saving; nothing is saved when that "
        "fails (default: on)",
    )
    add.add_argument(
        "--sync",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="start the first sync at once: a DAG run when INBOXSYNC_AIRFLOW_API_URL answers, "
        "else here (default: on)",
    )
    add.set_defaults(func=cmd_inbox_add)
    inbox.add_parser("list", help="list connected inboxes").set_defaults(func=cmd_inbox_list)
    test = inbox.add_parser("test", help="log in and show capabilities and folders")
    test.add_argument("name")
    test.set_defaults(func=cmd_inbox_test)
    remove = inbox.add_parser("remove", help="disconnect an inbox")
    remove.add_argument("name")
    remove.add_argument(
        "--purge",
        action="store_true",
        help="also delete every message no other inbox holds, with its addresses, flags and "
        "threads (an erasure: asks first, shows the counts)",
    )
    remove.add_argument("--yes", action="store_true", help="with --purge: do not ask")
    remove.set_defaults(func=cmd_inbox_remove)

    contact = sub.add_parser("contact", help="contacts: erasure requests").add_subparsers(
        dest="contact_command", required=True
    )
    forget = contact.add_parser(
        "forget",
        help="erase an address: its contact and every message it sent or received, everywhere",
    )
    forget.add_argument("email")
    forget.add_argument("--yes", action="store_true", help="do not ask")
    forget.set_defaults(func=cmd_contact_forget)

    sync = sub.add_parser("sync", help="sync one inbox now (the DAG task's code path)")
    backfill = sub.add_parser("backfill", help="sync one inbox and load all its history now")
    for p, func in ((sync, cmd_sync), (backfill, cmd_backfill)):
        p.add_argument("name")
        p.add_argument("--batch-size", type=int, help="UIDs per batch")
        p.add_argument("--budget-messages", type=int, help="stop after this many messages")
        p.add_argument("--budget-bytes", type=int, help="stop after downloading this many bytes")
        p.set_defaults(func=func)
    verify = sub.add_parser("verify", help="compare the server's messages with the warehouse")
    verify.add_argument("name")
    verify.set_defaults(func=cmd_verify)

    sub.add_parser("status", help="per-inbox summary").set_defaults(func=cmd_status)
    sub.add_parser("migrate", help="apply warehouse migrations").set_defaults(func=cmd_migrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``inboxsync`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except (InboxError, UsageError, registry.UnknownInbox, erase.EraseError) as exc:
        print(f"inboxsync: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
