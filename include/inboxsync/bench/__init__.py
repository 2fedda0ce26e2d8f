"""``make bench``: the sync measured against the raw IMAP ceiling on a seeded local Dovecot.

Run it as ``python -m inboxsync.bench`` (``BENCH_N``, ``BENCH_RUNS``; ``--help``). The modules:

- :mod:`inboxsync.bench.corpus`: N messages from the real list archives, repeated with rewritten
  Message-IDs so every repetition keeps its threads and no two repetitions share an id;
- :mod:`inboxsync.bench.probe`: one sync in a child process, timed per stage, with its peak RSS;
- :mod:`inboxsync.bench.ceiling`: plain imaplib FETCH of the same header fields, no parsing;
- :mod:`inboxsync.bench.instructions`: the parse worker's instructions per message (callgrind), a
  figure that does not move with the machine's hour;
- :mod:`inboxsync.bench.report`: medians, the printed table, collapsed-stack profile summaries;
- :mod:`inboxsync.bench.run`: the whole benchmark (services, seeding, runs, the DAG, JSON).
"""
