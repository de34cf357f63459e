-- A broken response must never erase good data, and personal data must be
-- erasable.

-- Names: a null or missing name in a response says nothing about the name, so
-- it never replaces a known one, and a name never known is NULL (it used to be
-- ''). A '' stored before cannot be told from a name Vitec really sent empty;
-- both tell a reader nothing, so they become NULL. The loader's digest version
-- changed with this, so the next load of every window compares its rows and
-- writes '' back where Vitec still sends it.
ALTER TABLE contacts ALTER COLUMN name DROP NOT NULL;
ALTER TABLE users ALTER COLUMN name DROP NOT NULL;
ALTER TABLE user_groups ALTER COLUMN name DROP NOT NULL;
ALTER TABLE offices ALTER COLUMN name DROP NOT NULL;
UPDATE contacts SET name = NULL WHERE name = '';
UPDATE users SET name = NULL WHERE name = '';
UPDATE user_groups SET name = NULL WHERE name = '';
UPDATE offices SET name = NULL WHERE name = '';

-- The deletion guard. A window whose load would soft-delete too much of it is
-- held: nothing of that load is written but its ledger row, whose status is
-- 'held'. held_digest is the held response's content digest and held_since
-- when a fetch first returned it; the deletions are applied once fetches
-- spanning sync.deletion_guard.accept_after keep returning that content.
-- held_deletions of held_live_rows is what the load would have deleted.
-- content_digest, fetched_at and the counts stay those of the last complete
-- load, so a held window is never confirmed against the held content.
ALTER TABLE sync_windows DROP CONSTRAINT sync_windows_status_check;
ALTER TABLE sync_windows ADD CONSTRAINT sync_windows_status_check
    CHECK (status IN ('pending', 'complete', 'failed', 'held'));
ALTER TABLE sync_windows
    ADD COLUMN held_digest text COLLATE "C",
    ADD COLUMN held_since timestamptz,
    ADD COLUMN held_deletions integer,
    ADD COLUMN held_live_rows integer;

-- Contacts are private persons. An erased contact's name is removed wherever
-- comeback-sync stored it, and every later load keeps it NULL although Vitec
-- goes on sending it. No name is kept here: only that the erasure happened.
CREATE TABLE contact_erasures (
    customer_id text COLLATE "C" NOT NULL,
    contact_id  text COLLATE "C" NOT NULL,
    erased_at   timestamptz NOT NULL,
    PRIMARY KEY (customer_id, contact_id)
);

-- A rejected element's raw text may hold names: it is emptied (NULL) after
-- privacy.rejected_raw_retention, and when it names an erased contact.
ALTER TABLE rejected_rows ALTER COLUMN raw DROP NOT NULL;

-- Per customer: held windows counted beside the others (a column added at the
-- end; the leading columns are those of 001).
CREATE OR REPLACE VIEW sync_status AS
SELECT
    w.customer_id,
    max(w.fetched_at) AS last_success,
    count(*) FILTER (WHERE w.status = 'complete') AS windows_complete,
    count(*) FILTER (WHERE w.status = 'failed') AS windows_failed,
    count(*) FILTER (WHERE w.status = 'pending') AS windows_pending,
    stale.first_day AS stalest_window_first_day,
    stale.end_day AS stalest_window_end_day,
    stale.fetched_at AS stalest_window_fetched_at,
    failure.last_error,
    failure.attempted_at AS last_error_at,
    count(*) FILTER (WHERE w.status = 'held') AS windows_held
FROM sync_windows w
LEFT JOIN LATERAL (
    -- The window whose last complete fetch is oldest; never fetched comes first.
    SELECT s.first_day, s.end_day, s.fetched_at
    FROM sync_windows s
    WHERE s.customer_id = w.customer_id
    ORDER BY s.fetched_at ASC NULLS FIRST, s.first_day
    LIMIT 1
) stale ON true
LEFT JOIN LATERAL (
    SELECT f.last_error, f.attempted_at
    FROM sync_windows f
    WHERE f.customer_id = w.customer_id AND f.last_error IS NOT NULL
    ORDER BY f.attempted_at DESC NULLS LAST
    LIMIT 1
) failure ON true
GROUP BY w.customer_id, stale.first_day, stale.end_day, stale.fetched_at,
         failure.last_error, failure.attempted_at;
