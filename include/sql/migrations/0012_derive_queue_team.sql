-- The derive step trusts the directions the load computed with the team it still has.
--
-- The load classifies each message (direction, the is_team flag of each address) with the team
-- as it read it when the sync started (inboxsync.registry.team_addresses). The derive step used to
-- classify every pending message again with inboxsync.is_team, to catch a team changed in
-- between: about a quarter of its statement time in a backfill (over a 100,000-message
-- `make bench` sync, 1.36 s to ask is_team of the pending messages' addresses and 0.75 s to
-- recompute their directions, of 8.9 s). A queued message now records the fingerprint of the team
-- it was classified with; the derive step classifies again only the messages whose fingerprint is
-- not the current team's (and, as before, every message when the team changed since its last run).
-- NULL: classified with a team of unknown fingerprint, so classified again.
ALTER TABLE inboxsync.derive_queue ADD COLUMN team text;

-- The one fingerprint of the team (its addresses and domains), read by the load with the team
-- itself and compared by the derive step with the queue's and its last run's (derive_state).
CREATE FUNCTION inboxsync.team_fingerprint() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT md5(coalesce(string_agg(t, ',' ORDER BY t), ''))
    FROM (SELECT 'a:' || email AS t FROM inboxsync.team_addresses
          UNION ALL SELECT 'd:' || domain FROM inboxsync.team_domains) team
$$;

-- A subdomain of a team domain, compared as text: LIKE read "_" in a domain as any character,
-- which the team's definition in Python (inboxsync.registry.Team), now trusted as it is, does not.
CREATE OR REPLACE FUNCTION inboxsync.is_team(address text) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM inboxsync.team_addresses t WHERE t.email = address)
        OR EXISTS (
            SELECT 1 FROM inboxsync.team_domains d
            WHERE substring(address FROM '@([^@]*)$') = d.domain
               OR right(substring(address FROM '@([^@]*)$'), length(d.domain) + 1) = '.' || d.domain
        )
$$;
