-- For BI: how comebacks' states changed over time, without window functions
-- in every report. One row per version of a comeback whose state differs
-- from the version before it, and one for each comeback's first version
-- (from_state NULL). A stable view like comeback_report: later migrations may
-- add columns at the end, never drop, rename or reorder these, and never drop
-- the view.
CREATE VIEW comeback_state_changes AS
SELECT
    v.customer_id,
    v.comeback_id,
    v.valid_from AS seen_at,
    v.previous_state AS from_state,
    v.state AS to_state,
    v.change,
    v.occurs_at,
    v.assigned_user_id,
    v.assigned_group_id,
    v.assigned_office_id,
    v.is_deleted
FROM (
    SELECT h.customer_id, h.comeback_id, h.valid_from, h.change, h.state, h.occurs_at,
           h.assigned_user_id, h.assigned_group_id, h.assigned_office_id, h.is_deleted,
           lag(h.state) OVER versions AS previous_state,
           row_number() OVER versions AS version
    FROM comeback_history h
    WINDOW versions AS (PARTITION BY h.customer_id, h.comeback_id ORDER BY h.valid_from)
) v
WHERE v.version = 1 OR v.state IS DISTINCT FROM v.previous_state;
