-- A window's last error keeps its failure kind beside its text, and sync_status
-- reads each customer's windows once, not once per window.
--
-- The on-call who reads `comeback-sync status` or the status page after an
-- alert needs the kind (throttled, credentials_rejected, database_timeout, ...)
-- to look up what to do in the troubleshooting table; the text alone made them
-- search the logs for the window.failed line. The kind is the failure's metric
-- label (etl/model/failure.hpp); NULL when the window's last error is a held
-- window's reason (a hold is not a failure) or was recorded before this
-- migration. No CHECK lists the labels: a new kind is a code change, not a
-- migration.

ALTER TABLE sync_windows ADD COLUMN last_error_kind text;

-- sync_status gains the kind of its last_error, at the end (a view's columns
-- may only be added after the existing ones, which keep their order). It now
-- counts each customer's windows first and then looks up its stalest window
-- and its last error once per customer: the view of 005 joined both lookups
-- to every window and grouped afterwards, so each ran once per window over
-- all of its customer's windows, and 800 customers of 500 windows each took
-- minutes to read (the status page and `comeback-sync status` read it).
CREATE OR REPLACE VIEW sync_status AS
SELECT
    c.customer_id,
    c.last_success,
    c.windows_complete,
    c.windows_failed,
    c.windows_pending,
    stale.first_day AS stalest_window_first_day,
    stale.end_day AS stalest_window_end_day,
    stale.fetched_at AS stalest_window_fetched_at,
    failure.last_error,
    failure.attempted_at AS last_error_at,
    c.windows_held,
    failure.last_error_kind
FROM (
    SELECT w.customer_id,
           max(w.fetched_at) AS last_success,
           count(*) FILTER (WHERE w.status = 'complete') AS windows_complete,
           count(*) FILTER (WHERE w.status = 'failed') AS windows_failed,
           count(*) FILTER (WHERE w.status = 'pending') AS windows_pending,
           count(*) FILTER (WHERE w.status = 'held') AS windows_held
    FROM sync_windows w
    GROUP BY w.customer_id
) c
LEFT JOIN LATERAL (
    -- The window whose last complete fetch is oldest; never fetched comes first.
    SELECT s.first_day, s.end_day, s.fetched_at
    FROM sync_windows s
    WHERE s.customer_id = c.customer_id
    ORDER BY s.fetched_at ASC NULLS FIRST, s.first_day
    LIMIT 1
) stale ON true
LEFT JOIN LATERAL (
    SELECT f.last_error, f.last_error_kind, f.attempted_at
    FROM sync_windows f
    WHERE f.customer_id = c.customer_id AND f.last_error IS NOT NULL
    ORDER BY f.attempted_at DESC NULLS LAST
    LIMIT 1
) failure ON true;
