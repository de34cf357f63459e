-- Two rules of the loader, each written once here, where every statement that
-- applies them reads it: a load's start (read_load_start) and a confirmation
-- from a response digest alone (confirm_unparsed) used to carry each its own
-- copy.

-- The one instant a load of `customer` stamps its rows with: the server's
-- clock, but at least a microsecond after every stamp an earlier load of the
-- customer left in the ledger, so the customer's stamps never go backwards
-- whatever the server's clock does (history versions close after they open;
-- fetched_at, changed_at and compared_at compare as the loads happened). Its
-- tables are this schema's, whatever the caller's search_path. PL/pgSQL keeps
-- its query's plan for the session: a SQL function with a sub-select is never
-- written into its caller, and planned its body at every call, 60 us a load.
CREATE FUNCTION load_stamp(customer text) RETURNS timestamptz
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
AS $$
BEGIN
    RETURN greatest(clock_timestamp(),
                    (SELECT max(greatest(fetched_at, changed_at, compared_at))
                     FROM sync_windows WHERE customer_id = customer) + interval '1 microsecond');
END
$$;

-- Whether the last complete load of a window (its ledger row `w`) stands for
-- a load at `stamp` that read content whose digest is `content`, or a response
-- whose digest is `response` (either may be NULL): that load saw the same, no
-- load has changed the data the window covers since it (changed_at), the
-- window was compared row by row less than a day before `stamp`, and its
-- counts are known. False for a window never planned (`w` NULL). A plain
-- expression, which PostgreSQL writes into the calling statement.
CREATE FUNCTION window_confirms(w sync_windows, content text, response text, stamp timestamptz)
RETURNS boolean
LANGUAGE sql STABLE
AS $$
    SELECT coalesce((w.content_digest = content OR w.response_digest = response)
                    AND w.compared_at > stamp - interval '1 day'
                    AND (w.changed_at IS NULL OR w.changed_at <= w.fetched_at)
                    AND w.rows_seen IS NOT NULL AND w.rows_duplicate IS NOT NULL,
                    false)
$$;
