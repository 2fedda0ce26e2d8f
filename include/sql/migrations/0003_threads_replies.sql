-- Threads, the team's domains and aliases, reply flags and events, event consumers (issue 4).
-- The derive step (include/inboxsync/derive.py, include/sql/derive/*.sql) fills these after
-- every sync.

-- ---- The team ---------------------------------------------------------------------------------
-- Team addresses are the inboxes' own addresses and owners (inboxsync.inboxes) plus these.
CREATE TABLE inboxsync.team_aliases (
    email      text PRIMARY KEY,            -- normalized, e.g. 'sales@acme.example'
    note       text,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- Every address of a team domain, and of its subdomains, belongs to the team.
CREATE TABLE inboxsync.team_domains (
    domain     text PRIMARY KEY,            -- lower-case, e.g. 'acme.example'
    note       text,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The one definition of the team's addresses; registry.team_addresses() reads this view and
-- team_domains, the derive SQL joins them, and BI can call inboxsync.is_team(email).
CREATE VIEW inboxsync.team_addresses AS
SELECT email_address AS email, 'inbox' AS source FROM inboxsync.inboxes
WHERE email_address IS NOT NULL
UNION
SELECT owner_email, 'owner' FROM inboxsync.inboxes WHERE owner_email IS NOT NULL
UNION
SELECT email, 'alias' FROM inboxsync.team_aliases;

CREATE FUNCTION inboxsync.is_team(address text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM inboxsync.team_addresses t WHERE t.email = address)
        OR EXISTS (
            SELECT 1 FROM inboxsync.team_domains d
            WHERE substring(address FROM '@([^@]*)$') = d.domain
               OR substring(address FROM '@([^@]*)$') LIKE '%.' || d.domain
        )
$$;

-- Per-inbox switch: replies found while loading this inbox's history fire reply_events too.
ALTER TABLE inboxsync.inboxes
    ADD COLUMN history_reply_events boolean NOT NULL DEFAULT false;

-- ---- Threads ----------------------------------------------------------------------------------
-- What the derive step has done to a message: derived_at is NULL until it is threaded, its
-- direction refreshed and its reply flags computed; history tells whether it came in with an
-- inbox's history (first sync of a folder, backfill), which fires no reply event by default.
ALTER TABLE inboxsync.messages
    ADD COLUMN derived_at timestamptz,
    ADD COLUMN history boolean;
CREATE INDEX messages_thread_id_idx ON inboxsync.messages (thread_id);
CREATE INDEX messages_underived_idx ON inboxsync.messages (message_key) WHERE derived_at IS NULL;
CREATE INDEX messages_from_email_idx ON inboxsync.messages (from_email);

-- Every Message-ID a message has or references (placeholders for mail we do not have included)
-- and the thread it belongs to. node = md5 of the Message-ID, or of 'key:' || message_key for a
-- message without one.
CREATE TABLE inboxsync.thread_nodes (
    node      uuid PRIMARY KEY,
    thread_id text NOT NULL
);
CREATE INDEX thread_nodes_thread_id_idx ON inboxsync.thread_nodes (thread_id);

-- A message that links two threads merges them: the older thread's id survives, the other id is
-- recorded here (always pointing at the current surviving id).
CREATE TABLE inboxsync.thread_merges (
    merged_thread_id text PRIMARY KEY,
    thread_id        text NOT NULL,
    merged_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX thread_merges_thread_id_idx ON inboxsync.thread_merges (thread_id);

ALTER TABLE inboxsync.threads
    ADD COLUMN created_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- ---- Reply flags and events -------------------------------------------------------------------
-- detected_at: when the first reply was found; history: that reply came with history and fired
-- no event; event_id: the event it fired.
ALTER TABLE inboxsync.reply_flags
    ADD COLUMN sent_at timestamptz,
    ADD COLUMN detected_at timestamptz,
    ADD COLUMN history boolean,
    ADD COLUMN event_id bigint;
CREATE INDEX reply_flags_recipient_idx ON inboxsync.reply_flags (recipient_email);

-- Consumers of reply_events: the last event each one has acted on. A consumer advances its
-- offset in the same transaction as its action (see inboxsync.reply_consumer).
CREATE TABLE inboxsync.consumer_offsets (
    consumer      text PRIMARY KEY,
    last_event_id bigint NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- The action of the example consumer DAG reply_automation: contacts that replied to the team.
CREATE TABLE inboxsync.engaged_contacts (
    email          text PRIMARY KEY,
    engaged_at     timestamptz NOT NULL DEFAULT now(),
    first_event_id bigint NOT NULL,
    last_event_id  bigint NOT NULL,
    replies        integer NOT NULL,
    last_reply_at  timestamptz
);

-- Derive bookkeeping (the team's fingerprint, to refresh directions when the team changes).
CREATE TABLE inboxsync.derive_state (
    name       text PRIMARY KEY,
    value      text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Per external contact: the last email the team sent them, the last human email they sent,
-- and whether the team awaits their reply (the last outbound email to them has no reply yet).
CREATE VIEW inboxsync.contact_reply_status AS
WITH outbound AS (
    SELECT f.recipient_email AS email, max(f.sent_at) AS last_outbound_at
    FROM inboxsync.reply_flags f
    GROUP BY f.recipient_email
), inbound AS (
    SELECT m.from_email AS email, max(m.sent_at) AS last_inbound_at
    FROM inboxsync.messages m
    WHERE m.direction = 'inbound' AND m.kind = 'human'
    GROUP BY m.from_email
)
SELECT c.email, c.display_name, c.domain, o.last_outbound_at, i.last_inbound_at,
       last_flag.replied IS FALSE AS awaiting_reply,
       last_flag.message_key AS last_outbound_message_key
FROM inboxsync.contacts c
JOIN outbound o USING (email)
LEFT JOIN inbound i USING (email)
LEFT JOIN LATERAL (
    SELECT f.message_key, f.replied FROM inboxsync.reply_flags f
    WHERE f.recipient_email = c.email
    ORDER BY f.sent_at DESC NULLS LAST, f.message_key DESC
    LIMIT 1
) last_flag ON true
WHERE NOT c.is_team;
