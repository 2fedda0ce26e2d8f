"""``python -m inboxsync.bench``: see :mod:`inboxsync.bench.run`."""

from inboxsync.bench.run import main

raise SystemExit(main())
