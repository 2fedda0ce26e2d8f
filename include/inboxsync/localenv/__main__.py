"""``python -m inboxsync.localenv``: see `inboxsync.localenv.command`."""

from inboxsync.localenv.command import main

raise SystemExit(main())
