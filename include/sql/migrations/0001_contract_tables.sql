-- The warehouse contract (docs/warehouse.md). BI tools and automation DAGs read these tables:
-- change them only through a new numbered migration.

CREATE SCHEMA IF NOT EXISTS inboxsync;

CREATE TABLE inboxsync.inboxes (
    inbox_id        integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    conn_id         text NOT NULL UNIQUE,
    email_address   text,              -- the mailbox's own address (its login, normalized)
    owner_email     text,
    create_contacts boolean NOT NULL DEFAULT true,
    enabled         boolean NOT NULL DEFAULT true,
    folders         text[],            -- NULL: the default set (INBOX and the \Sent folder)
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE inboxsync.sync_state (
    inbox_id          integer NOT NULL REFERENCES inboxsync.inboxes ON DELETE CASCADE,
    folder            text NOT NULL,
    uidvalidity       bigint,
    last_uid          bigint NOT NULL DEFAULT 0,
    uidnext           bigint,
    highest_modseq    bigint,
    messages_on_server bigint,
    last_success_at   timestamptz,
    last_error        text,
    last_error_at     timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (inbox_id, folder)
);

CREATE TABLE inboxsync.messages (
    message_key    text PRIMARY KEY,
    message_id     text,
    subject        text,
    sent_at        timestamptz,
    date_header    text,
    from_email     text,
    from_name      text,
    in_reply_to    text,
    thread_id      text,
    kind           text NOT NULL CHECK (kind IN ('human', 'auto_reply', 'bounce', 'bulk', 'list')),
    direction      text CHECK (direction IN ('inbound', 'outbound', 'internal')),
    list_id        text,
    auto_submitted text,
    content_type   text,
    first_seen_at  timestamptz NOT NULL DEFAULT now()
);
-- Hash indexes: a Message-ID can be longer than a btree entry may be.
CREATE INDEX messages_message_id_idx ON inboxsync.messages USING hash (message_id);
CREATE INDEX messages_sent_at_idx ON inboxsync.messages (sent_at);

CREATE TABLE inboxsync.message_references (
    message_key      text NOT NULL REFERENCES inboxsync.messages ON DELETE CASCADE,
    position         integer NOT NULL,   -- 0 = oldest ancestor in References
    ref_message_id   text NOT NULL,
    PRIMARY KEY (message_key, position)
);
CREATE INDEX message_references_ref_idx ON inboxsync.message_references USING hash (ref_message_id);

CREATE TABLE inboxsync.message_copies (
    inbox_id      integer NOT NULL REFERENCES inboxsync.inboxes ON DELETE CASCADE,
    folder        text NOT NULL,
    uidvalidity   bigint NOT NULL,
    uid           bigint NOT NULL,
    message_key   text NOT NULL REFERENCES inboxsync.messages,
    flags         text[] NOT NULL DEFAULT '{}',
    internal_date timestamptz,
    size          bigint,
    raw_header    bytea NOT NULL,
    synced_at     timestamptz NOT NULL DEFAULT now(),
    expunged_at   timestamptz,
    PRIMARY KEY (inbox_id, folder, uidvalidity, uid)
);
CREATE INDEX message_copies_message_key_idx ON inboxsync.message_copies (message_key);

CREATE TABLE inboxsync.message_addresses (
    message_key  text NOT NULL REFERENCES inboxsync.messages ON DELETE CASCADE,
    role         text NOT NULL CHECK (role IN ('from', 'sender', 'reply_to', 'to', 'cc', 'bcc')),
    email        text NOT NULL,
    display_name text,
    position     integer NOT NULL,
    PRIMARY KEY (message_key, role, email)
);
CREATE INDEX message_addresses_email_idx ON inboxsync.message_addresses (email);

CREATE TABLE inboxsync.contacts (
    email         text PRIMARY KEY,
    display_name  text,
    domain        text NOT NULL,
    is_team       boolean NOT NULL DEFAULT false,
    created_by    text NOT NULL,     -- 'sync:<inbox name>' or 'manual'
    first_seen_at timestamptz,
    last_seen_at  timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE inboxsync.threads (
    thread_id        text PRIMARY KEY,
    root_message_key text,
    subject          text,
    first_message_at timestamptz,
    last_message_at  timestamptz,
    message_count    integer NOT NULL DEFAULT 0
);

CREATE TABLE inboxsync.reply_flags (
    message_key       text NOT NULL REFERENCES inboxsync.messages,
    recipient_email   text NOT NULL,
    replied           boolean NOT NULL DEFAULT false,
    reply_message_key text REFERENCES inboxsync.messages,
    replied_at        timestamptz,
    response_seconds  bigint,
    PRIMARY KEY (message_key, recipient_email)
);

CREATE TABLE inboxsync.reply_events (
    event_id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_key       text NOT NULL,
    recipient_email   text NOT NULL,
    reply_message_key text NOT NULL,
    replied_at        timestamptz,
    detected_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (message_key, recipient_email)
);

CREATE TABLE inboxsync.quarantine (
    inbox_id       integer NOT NULL REFERENCES inboxsync.inboxes ON DELETE CASCADE,
    folder         text NOT NULL,
    uidvalidity    bigint NOT NULL,
    uid            bigint NOT NULL,
    reason         text NOT NULL,
    raw_header     bytea NOT NULL,
    flags          text[] NOT NULL DEFAULT '{}',
    internal_date  timestamptz,
    size           bigint,
    quarantined_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (inbox_id, folder, uidvalidity, uid)
);
