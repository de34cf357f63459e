-- A comeback's current version lives in its comebacks row; history keeps the
-- versions that ended.
--
-- Every new comeback used to be written twice: its row in comebacks and its
-- open version in comeback_history, the same columns again with a heap tuple
-- and a primary-key entry of their own, which bounded a first load. The open
-- version repeated the comebacks row but for when it began and what began it,
-- so those two become columns of comebacks:
--   version_from    when the current version began (its valid_from)
--   version_change  what began it: insert, update, delete or undelete
-- and the table of versions keeps only the closed ones, renamed
-- comeback_versions. comeback_history becomes a view of both, with the
-- table's columns in the table's order, so every query of it reads the same
-- rows as before.
--
-- A grant on comeback_history moves to the view; the renamed table keeps its
-- own. A DELETE on the view deletes what each row stands for (see
-- delete_comeback_version below).

ALTER TABLE comebacks
    ADD COLUMN version_from timestamptz,
    ADD COLUMN version_change text;

-- Each comeback's current version: its open version (the latest one, should
-- a database edited by hand have several).
UPDATE comebacks c
SET version_from = h.valid_from, version_change = h.change
FROM (SELECT DISTINCT ON (customer_id, comeback_id) customer_id, comeback_id, valid_from, change
      FROM comeback_history
      WHERE valid_to IS NULL
      ORDER BY customer_id, comeback_id, valid_from DESC) h
WHERE c.customer_id = h.customer_id AND c.comeback_id = h.comeback_id;

-- A comeback without an open version (its version deleted by hand): its
-- version begins where its last closed one ended, or when it was first seen.
UPDATE comebacks c
SET version_from = coalesce(v.ended, c.first_seen_at),
    version_change = CASE WHEN c.deleted_at IS NOT NULL THEN 'delete'
                          WHEN v.ended IS NOT NULL THEN 'update'
                          ELSE 'insert' END
FROM (SELECT c2.customer_id, c2.comeback_id,
             (SELECT max(h.valid_to) FROM comeback_history h
              WHERE h.customer_id = c2.customer_id AND h.comeback_id = c2.comeback_id) AS ended
      FROM comebacks c2
      WHERE c2.version_from IS NULL) v
WHERE c.customer_id = v.customer_id AND c.comeback_id = v.comeback_id;

-- The open versions now held by comebacks leave the table.
DELETE FROM comeback_history h
USING comebacks c
WHERE h.customer_id = c.customer_id AND h.comeback_id = c.comeback_id
  AND h.valid_to IS NULL AND h.valid_from = c.version_from;

-- Any open version left is one no comeback stands for (its comebacks row
-- deleted by hand) or one a later open version replaced: it ends where the
-- next version of its comeback begins, or now.
UPDATE comeback_history h
SET valid_to = coalesce(
        (SELECT min(n.valid_from) FROM comeback_history n
         WHERE n.customer_id = h.customer_id AND n.comeback_id = h.comeback_id
           AND n.valid_from > h.valid_from),
        (SELECT c.version_from FROM comebacks c
         WHERE c.customer_id = h.customer_id AND c.comeback_id = h.comeback_id
           AND c.version_from > h.valid_from),
        greatest(now(), h.valid_from + interval '1 microsecond'))
WHERE h.valid_to IS NULL;

ALTER TABLE comebacks
    ALTER COLUMN version_from SET NOT NULL,
    ALTER COLUMN version_change SET NOT NULL,
    ADD CONSTRAINT comebacks_version_change_check
        CHECK (version_change IN ('insert', 'update', 'delete', 'undelete'));

ALTER TABLE comeback_history RENAME TO comeback_versions;
ALTER INDEX comeback_history_pkey RENAME TO comeback_versions_pkey;
ALTER TABLE comeback_versions RENAME CONSTRAINT comeback_history_change_check TO comeback_versions_change_check;
ALTER TABLE comeback_versions RENAME CONSTRAINT comeback_history_check TO comeback_versions_check;
ALTER TABLE comeback_versions ALTER COLUMN valid_to SET NOT NULL;

-- The BI contract's history: one row per version, [valid_from, valid_to),
-- valid_to NULL for the current one, as the table was.
CREATE VIEW comeback_history AS
SELECT customer_id, comeback_id, valid_from, valid_to, change,
       contact_id, booked_by_user_id, assigned_user_id, assigned_group_id,
       assigned_office_id, state, origin, occurs_at, booked_at, is_deleted
FROM comeback_versions
UNION ALL
SELECT customer_id, comeback_id, version_from, NULL::timestamptz, version_change,
       contact_id, booked_by_user_id, assigned_user_id, assigned_group_id,
       assigned_office_id, state, origin, occurs_at, booked_at, deleted_at IS NOT NULL
FROM comebacks;

-- Whoever could read or delete from the table can do the same on the view.
DO $$
DECLARE
    grant_row record;
BEGIN
    FOR grant_row IN
        SELECT a.privilege_type,
               CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END AS grantee
        FROM pg_class t
        CROSS JOIN LATERAL aclexplode(t.relacl) a
        LEFT JOIN pg_roles r ON r.oid = a.grantee
        WHERE t.oid = 'comeback_versions'::regclass
          AND a.grantee <> t.relowner
          AND a.privilege_type IN ('SELECT', 'DELETE')
    LOOP
        EXECUTE format('GRANT %s ON comeback_history TO %s', grant_row.privilege_type, grant_row.grantee);
    END LOOP;
END
$$;

-- comeback_state_changes read the table, which the rename took along: it reads
-- the view again, its text and columns as in 003.
CREATE OR REPLACE VIEW comeback_state_changes AS
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

-- A DELETE on comeback_history (an owner erasing a customer's or a time
-- range's history, docs/privacy.md) deletes a closed version from
-- comeback_versions, and a current version with the comeback itself: the
-- current version is its comebacks row. Like the rules of a plain view, it
-- runs with the view owner's rights: DELETE on the view is what a role needs.
-- Nothing else can be written through the view.
CREATE FUNCTION delete_comeback_version() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path FROM CURRENT
AS $$
BEGIN
    IF OLD.valid_to IS NULL THEN
        DELETE FROM comebacks
        WHERE customer_id = OLD.customer_id AND comeback_id = OLD.comeback_id
          AND version_from = OLD.valid_from;
    ELSE
        DELETE FROM comeback_versions
        WHERE customer_id = OLD.customer_id AND comeback_id = OLD.comeback_id
          AND valid_from = OLD.valid_from;
    END IF;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN OLD;
END
$$;

CREATE TRIGGER comeback_history_delete
    INSTEAD OF DELETE ON comeback_history
    FOR EACH ROW EXECUTE FUNCTION delete_comeback_version();
