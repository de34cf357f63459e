#pragma once
// The window loader's statements (see window_loader.hpp), in the order a load
// runs them. The ledger's are in ledger_sql.hpp.
//
// Most take $1, the customer, and $2, the load's stamp (timestamptz text).
// Instants cross as microseconds since the Unix epoch. Unqualified names are
// the configured schema's tables (search_path); the staging tables are named
// pg_temp.* explicitly.
//
// The staging tables have no statistics (autovacuum never analyzes temporary
// tables), so every statement is written to be linear in the window's rows
// whatever the planner believes: lookups of stored rows are LATERAL
// primary-key probes, set differences are EXCEPT.

#include "load/statement.hpp"

namespace comeback::sql::window_loader {

// $1 schema, $2 customer, $3 bytes, $4 whether the load commits lazily
// (synchronous_commit off for this transaction only, load_options::
// commit_lazily; NULL or false: as the server is set). How every load begins, sent with BEGIN
// and the read of the window's last load (sql::statement_batch): this
// transaction's search_path, as sql::use_schema sets it; PostgreSQL's own
// choice of a custom or the generic plan for the statements that follow
// (the daemon's sessions use generic plans elsewhere, see
// daemon/sync/database.cpp, session_options); the customer's lock,
// since the daemon and a backfill may load the same customer at once and take
// turns per window instead of deadlocking on each other's rows (the key lives
// in the loader's own space of advisory locks); whether this session has yet
// to create its staging tables; and whether they take more than $3 bytes on
// disk, dead rows included (see stage_rows). PostgreSQL computes a target
// list in order, so the lock is held before the statement returns.
inline constexpr statement begin_load{"begin_load", R"sql(
SELECT set_config('search_path', quote_ident($1), true) AS search_path,
       set_config('plan_cache_mode', 'auto', true) AS plan_cache_mode,
       pg_advisory_xact_lock(hashtext('comeback-sync/load/' || $1), hashtext($2)) AS customer_locked,
       s.bytes IS NULL AS staging_missing,
       coalesce(s.bytes > $3::bigint, false) AS staging_large,
       CASE WHEN $4::boolean THEN set_config('synchronous_commit', 'off', true) END AS commits_lazily
FROM (SELECT pg_relation_size(to_regclass('pg_temp.load_comebacks'))
           + pg_relation_size(to_regclass('pg_temp.load_entities'))
           + pg_relation_size(to_regclass('pg_temp.load_rejections')) AS bytes) s
)sql"};

// Staging lives for the session, so a connection loading many windows creates
// it once, when a load first needs it (a window confirmed from its response
// digest does not); a rolled-back transaction that created it takes it along.
// Each load that stages empties it first (stage_rows, truncate_staging).
// load_latest_comebacks is the staged comebacks, one per id (the last index
// wins), instants as timestamptz: what both merge statements start from.
inline constexpr statement create_staging{"create_staging", R"sql(
CREATE TEMP TABLE load_comebacks (
    idx                bigint NOT NULL,
    comeback_id        text COLLATE "C" NOT NULL,
    contact_id         text COLLATE "C",
    booked_by_user_id  text,
    assigned_user_id   text,
    assigned_group_id  text,
    assigned_office_id text,
    state              text,
    origin             text,
    occurs_at_us       bigint,
    booked_at_us       bigint,
    contact_name       text,
    contact_known      boolean NOT NULL
);

CREATE TEMP TABLE load_entities (
    seq       bigint NOT NULL,
    kind      text NOT NULL,
    entity_id text COLLATE "C" NOT NULL,
    name      text
);

CREATE TEMP TABLE load_rejections (
    idx         bigint NOT NULL,
    comeback_id text COLLATE "C",
    reason      text NOT NULL,
    raw         text NOT NULL
);

CREATE TEMP VIEW load_latest_comebacks AS
SELECT DISTINCT ON (comeback_id COLLATE "C")
       comeback_id, contact_id, booked_by_user_id, assigned_user_id, assigned_group_id,
       assigned_office_id, state, origin,
       timestamptz 'epoch' + occurs_at_us * interval '1 microsecond' AS occurs_at,
       timestamptz 'epoch' + booked_at_us * interval '1 microsecond' AS booked_at
FROM pg_temp.load_comebacks
ORDER BY comeback_id COLLATE "C", idx DESC
)sql"};

// What an earlier load of the session staged, deleted before this load
// stages its own, and this load's comebacks ($1..$13, a column each) and
// entities ($14..$17) added in the same statement, as arrays: a small
// window's rows, where two COPYs cost four round trips; a large window passes
// empty arrays and COPYs its rows after. Every statement of the load reads
// its rows from staging, whichever way they came.
//
// Staging is not emptied at commit (ON COMMIT DELETE ROWS): that truncates
// every staging table, its TOAST table and index at every commit, and each
// truncation is an invalidation message every backend of the server reads,
// so with many connections loading small windows the server spent more CPU on
// truncating empty tables than on loading. Deleted rows leave dead tuples that
// the statements below scan past, so once the tables take more than a few
// pages on disk (begin_load says so) the load truncates them first
// (truncate_staging), once in many small loads; a large load truncates them
// itself before its COMMIT, so its rows leave the disk with it. The
// deletes cannot see the rows the same statement adds: it reads one snapshot,
// taken before. Only a load that stages runs it: a confirmed window pays
// nothing for it.
inline constexpr statement stage_rows{"stage_rows", R"sql(
WITH comebacks AS (DELETE FROM pg_temp.load_comebacks),
entities AS (DELETE FROM pg_temp.load_entities),
rejections AS (DELETE FROM pg_temp.load_rejections),
new_comebacks AS (
    INSERT INTO pg_temp.load_comebacks (
        contact_known, idx, comeback_id, contact_id, booked_by_user_id, assigned_user_id,
        assigned_group_id, assigned_office_id, state, origin, occurs_at_us, booked_at_us,
        contact_name)
    SELECT *
    FROM unnest($1::boolean[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::text[], $8::text[], $9::text[], $10::text[], $11::bigint[], $12::bigint[],
                $13::text[])
)
INSERT INTO pg_temp.load_entities (seq, kind, entity_id, name)
SELECT *
FROM unnest($14::bigint[], $15::text[], $16::text[], $17::text[])
)sql"};

inline constexpr statement truncate_staging{"truncate_staging", R"sql(
TRUNCATE pg_temp.load_comebacks, pg_temp.load_entities, pg_temp.load_rejections
)sql"};

// Entities first: comebacks reference them. One statement for the four
// entity tables, the same steps for each (one round trip, where a small
// window's load has few to spare). The staged rows, one per id (the last one
// that carries a name wins; a null or missing name never replaces a known
// one, so one without any name keeps the stored name), look their stored row
// up by primary key; rows that would not change are filtered out before
// writing. New ones are plain inserts (under the customer's lock nobody else
// adds them); stored ones due for a new name or a last_seen_at a day old go
// through ON CONFLICT DO UPDATE, whose conflict check is the row lookup.
// Returns how many stored entities were renamed. Contacts travel with their
// comebacks (load_comebacks); users, groups and offices in load_entities.
// Each table's steps touch that table only, so one snapshot serves them all.
//
// Contacts are private persons: an erased contact (contact_erasures, see
// forget-contact) gets no name, whatever the response says, and $3 false
// (privacy.contact_names: omit) writes no contact name at all. A customer
// without erasures, the usual case, skips the lookup of each contact there:
// the EXISTS is an InitPlan, evaluated once per statement.
//
// A contact whose rows the loader all flagged contact_known is stored as this
// load would leave it, last_seen_at recent enough (load/contact_memo.hpp):
// its rows are left out before the sort, and it is not looked up at all. The
// rows of any other contact are either all unflagged, or flagged up to an
// unflagged row with a name and unflagged after it, so the rows left still
// hold the one whose name wins.
inline constexpr statement merge_entities{"merge_entities", R"sql(
WITH contact_latest AS (
    SELECT DISTINCT ON (contact_id COLLATE "C") contact_id, contact_name AS name
    FROM pg_temp.load_comebacks
    WHERE contact_id IS NOT NULL AND NOT contact_known
    ORDER BY contact_id COLLATE "C", contact_name IS NULL, idx DESC
),
contact_staged AS (
    SELECT s.contact_id, s.name, x.contact_id IS NOT NULL AS erased
    FROM contact_latest s
    LEFT JOIN LATERAL (
        SELECT x.contact_id FROM contact_erasures x
        WHERE x.customer_id = $1 AND x.contact_id = s.contact_id
          AND (SELECT EXISTS (SELECT FROM contact_erasures WHERE customer_id = $1))
        LIMIT 1
    ) x ON true
),
contact_due AS MATERIALIZED (
    SELECT s.contact_id, n.name, e.contact_id IS NOT NULL AS stored,
           e.contact_id IS NOT NULL AND e.name IS DISTINCT FROM n.name AS renamed
    FROM contact_staged s
    LEFT JOIN LATERAL (
        SELECT e.contact_id, e.name, e.last_seen_at FROM contacts e
        WHERE e.customer_id = $1 AND e.contact_id = s.contact_id
        LIMIT 1
    ) e ON true
    CROSS JOIN LATERAL (
        SELECT CASE WHEN s.erased OR NOT $3::boolean THEN NULL
                    ELSE coalesce(s.name, e.name) END AS name
    ) n
    WHERE e.contact_id IS NULL OR e.name IS DISTINCT FROM n.name
       OR e.last_seen_at < $2::timestamptz - interval '1 day'
),
contact_added AS (
    INSERT INTO contacts (customer_id, contact_id, name, first_seen_at, last_seen_at)
    SELECT $1, contact_id, name, $2::timestamptz, $2::timestamptz FROM contact_due WHERE NOT stored
),
contact_refreshed AS (
    INSERT INTO contacts AS t (customer_id, contact_id, name, first_seen_at, last_seen_at)
    SELECT $1, contact_id, name, $2::timestamptz, $2::timestamptz FROM contact_due WHERE stored
    ON CONFLICT (customer_id, contact_id) DO UPDATE
    SET name = excluded.name, last_seen_at = excluded.last_seen_at
),
user_staged AS (
    SELECT DISTINCT ON (entity_id COLLATE "C") entity_id AS user_id, name
    FROM pg_temp.load_entities
    WHERE kind = 'user'
    ORDER BY entity_id COLLATE "C", name IS NULL, seq DESC
),
user_due AS MATERIALIZED (
    SELECT s.user_id, coalesce(s.name, e.name) AS name, e.user_id IS NOT NULL AS stored,
           e.user_id IS NOT NULL AND s.name IS NOT NULL AND e.name IS DISTINCT FROM s.name
               AS renamed
    FROM user_staged s
    LEFT JOIN LATERAL (
        SELECT e.user_id, e.name, e.last_seen_at FROM users e
        WHERE e.customer_id = $1 AND e.user_id = s.user_id
        LIMIT 1
    ) e ON true
    WHERE e.user_id IS NULL OR (s.name IS NOT NULL AND e.name IS DISTINCT FROM s.name)
       OR e.last_seen_at < $2::timestamptz - interval '1 day'
),
user_added AS (
    INSERT INTO users (customer_id, user_id, name, first_seen_at, last_seen_at)
    SELECT $1, user_id, name, $2::timestamptz, $2::timestamptz FROM user_due WHERE NOT stored
),
user_refreshed AS (
    INSERT INTO users AS t (customer_id, user_id, name, first_seen_at, last_seen_at)
    SELECT $1, user_id, name, $2::timestamptz, $2::timestamptz FROM user_due WHERE stored
    ON CONFLICT (customer_id, user_id) DO UPDATE
    SET name = excluded.name, last_seen_at = excluded.last_seen_at
),
group_staged AS (
    SELECT DISTINCT ON (entity_id COLLATE "C") entity_id AS group_id, name
    FROM pg_temp.load_entities
    WHERE kind = 'user_group'
    ORDER BY entity_id COLLATE "C", name IS NULL, seq DESC
),
group_due AS MATERIALIZED (
    SELECT s.group_id, coalesce(s.name, e.name) AS name, e.group_id IS NOT NULL AS stored,
           e.group_id IS NOT NULL AND s.name IS NOT NULL AND e.name IS DISTINCT FROM s.name
               AS renamed
    FROM group_staged s
    LEFT JOIN LATERAL (
        SELECT e.group_id, e.name, e.last_seen_at FROM user_groups e
        WHERE e.customer_id = $1 AND e.group_id = s.group_id
        LIMIT 1
    ) e ON true
    WHERE e.group_id IS NULL OR (s.name IS NOT NULL AND e.name IS DISTINCT FROM s.name)
       OR e.last_seen_at < $2::timestamptz - interval '1 day'
),
group_added AS (
    INSERT INTO user_groups (customer_id, group_id, name, first_seen_at, last_seen_at)
    SELECT $1, group_id, name, $2::timestamptz, $2::timestamptz FROM group_due WHERE NOT stored
),
group_refreshed AS (
    INSERT INTO user_groups AS t (customer_id, group_id, name, first_seen_at, last_seen_at)
    SELECT $1, group_id, name, $2::timestamptz, $2::timestamptz FROM group_due WHERE stored
    ON CONFLICT (customer_id, group_id) DO UPDATE
    SET name = excluded.name, last_seen_at = excluded.last_seen_at
),
office_staged AS (
    SELECT DISTINCT ON (entity_id COLLATE "C") entity_id AS office_id, name
    FROM pg_temp.load_entities
    WHERE kind = 'office'
    ORDER BY entity_id COLLATE "C", name IS NULL, seq DESC
),
office_due AS MATERIALIZED (
    SELECT s.office_id, coalesce(s.name, e.name) AS name, e.office_id IS NOT NULL AS stored,
           e.office_id IS NOT NULL AND s.name IS NOT NULL AND e.name IS DISTINCT FROM s.name
               AS renamed
    FROM office_staged s
    LEFT JOIN LATERAL (
        SELECT e.office_id, e.name, e.last_seen_at FROM offices e
        WHERE e.customer_id = $1 AND e.office_id = s.office_id
        LIMIT 1
    ) e ON true
    WHERE e.office_id IS NULL OR (s.name IS NOT NULL AND e.name IS DISTINCT FROM s.name)
       OR e.last_seen_at < $2::timestamptz - interval '1 day'
),
office_added AS (
    INSERT INTO offices (customer_id, office_id, name, first_seen_at, last_seen_at)
    SELECT $1, office_id, name, $2::timestamptz, $2::timestamptz FROM office_due WHERE NOT stored
),
office_refreshed AS (
    INSERT INTO offices AS t (customer_id, office_id, name, first_seen_at, last_seen_at)
    SELECT $1, office_id, name, $2::timestamptz, $2::timestamptz FROM office_due WHERE stored
    ON CONFLICT (customer_id, office_id) DO UPDATE
    SET name = excluded.name, last_seen_at = excluded.last_seen_at
)
SELECT (SELECT count(*) FILTER (WHERE renamed) FROM contact_due)
     + (SELECT count(*) FILTER (WHERE renamed) FROM user_due)
     + (SELECT count(*) FILTER (WHERE renamed) FROM group_due)
     + (SELECT count(*) FILTER (WHERE renamed) FROM office_due) AS renamed
)sql"};

// What a soft delete of the window would do, before anything is written:
// how many of the customer's ($1) live comebacks of the window's occurs_at
// range ($2..$3) the response no longer holds (soft_delete's `missing`), and
// how many live comebacks the range holds. The deletion guard decides on them.
inline constexpr statement count_deletions{"count_deletions", R"sql(
WITH live AS MATERIALIZED (
    SELECT comeback_id FROM comebacks
    WHERE customer_id = $1 AND deleted_at IS NULL
      AND occurs_at >= timestamptz 'epoch' + $2::bigint * interval '1 microsecond'
      AND occurs_at <= timestamptz 'epoch' + $3::bigint * interval '1 microsecond'
),
missing AS (
    SELECT comeback_id FROM live
    EXCEPT
    SELECT comeback_id FROM pg_temp.load_comebacks
    EXCEPT
    SELECT comeback_id FROM pg_temp.load_rejections WHERE comeback_id IS NOT NULL
)
SELECT (SELECT count(*) FROM missing), (SELECT count(*) FROM live)
)sql"};

// insert_all_new runs inside a savepoint, so the window's transaction goes on
// the general way when it fails. (libpqxx 6.4's subtransaction cannot roll back
// after a failed statement with parameters.)
inline constexpr statement before_insert_all_new{"before_insert_all_new", R"sql(
SAVEPOINT insert_all_new
)sql"};

inline constexpr statement undo_insert_all_new{"undo_insert_all_new", R"sql(
ROLLBACK TO SAVEPOINT insert_all_new
)sql"};

inline constexpr statement after_insert_all_new{"after_insert_all_new", R"sql(
RELEASE SAVEPOINT insert_all_new
)sql"};

// A first load's comebacks, all taken to be new, each its own first version
// (a comebacks row holds its current version: schema/008): the primary key's
// own uniqueness check is the lookup, and one that exists after all fails the
// statement (unique_violation). So does an id the window repeats: the staged
// rows go in as they came, not through load_latest_comebacks: its sort by id
// (for its dedupe) and the inserts in id order cost the first load about an
// eighth of the server's CPU (docs/benchmarks.md); a response in date order,
// as the fake server's, also reaches the occurs_at index along its range. A
// repeated id is rare; merge_comebacks dedupes it after the savepoint is
// rolled back. Returns how many, the
// occurs_at range they span (microseconds) and whether one has no occurs_at.
inline constexpr statement insert_all_new{"insert_all_new", R"sql(
WITH latest AS MATERIALIZED (
    SELECT comeback_id, contact_id, booked_by_user_id, assigned_user_id, assigned_group_id,
           assigned_office_id, state, origin,
           timestamptz 'epoch' + occurs_at_us * interval '1 microsecond' AS occurs_at,
           timestamptz 'epoch' + booked_at_us * interval '1 microsecond' AS booked_at
    FROM pg_temp.load_comebacks
),
added AS (
    INSERT INTO comebacks (customer_id, comeback_id, contact_id, booked_by_user_id,
                           assigned_user_id, assigned_group_id, assigned_office_id, state,
                           origin, occurs_at, booked_at, first_seen_at, last_seen_at, deleted_at,
                           version_from, version_change)
    SELECT $1, comeback_id, contact_id, booked_by_user_id,
           assigned_user_id, assigned_group_id, assigned_office_id, state,
           origin, occurs_at, booked_at, $2::timestamptz, $2::timestamptz, NULL,
           $2::timestamptz, 'insert'
    FROM latest
)
SELECT count(*),
       (extract(epoch FROM min(occurs_at)) * 1000000)::bigint,
       (extract(epoch FROM max(occurs_at)) * 1000000)::bigint,
       coalesce(bool_or(occurs_at IS NULL), false)
FROM latest
)sql"};

// A small first load's comebacks (see window_loader::small_window_rows): like
// insert_all_new, but one that exists after all is skipped (ON CONFLICT DO
// NOTHING, which costs each row a lookup before its insert), so no savepoint
// is needed. Returns how many were inserted, the occurs_at range they span
// (microseconds), whether one has no occurs_at, and how many distinct
// comebacks the window holds: fewer inserted, and merge_comebacks does the
// rest (the rows inserted here are identical to what it stages, so it leaves
// them alone).
inline constexpr statement insert_new_skipping_stored{"insert_new_skipping_stored", R"sql(
WITH latest AS MATERIALIZED (
    SELECT comeback_id, contact_id, booked_by_user_id, assigned_user_id, assigned_group_id,
           assigned_office_id, state, origin, occurs_at, booked_at
    FROM pg_temp.load_latest_comebacks
),
added AS (
    INSERT INTO comebacks (customer_id, comeback_id, contact_id, booked_by_user_id,
                           assigned_user_id, assigned_group_id, assigned_office_id, state,
                           origin, occurs_at, booked_at, first_seen_at, last_seen_at, deleted_at,
                           version_from, version_change)
    SELECT $1, comeback_id, contact_id, booked_by_user_id,
           assigned_user_id, assigned_group_id, assigned_office_id, state,
           origin, occurs_at, booked_at, $2::timestamptz, $2::timestamptz, NULL,
           $2::timestamptz, 'insert'
    FROM latest
    ON CONFLICT (customer_id, comeback_id) DO NOTHING
    RETURNING occurs_at
)
SELECT count(*),
       (extract(epoch FROM min(occurs_at)) * 1000000)::bigint,
       (extract(epoch FROM max(occurs_at)) * 1000000)::bigint,
       coalesce(bool_or(occurs_at IS NULL), false),
       (SELECT count(*) FROM latest)
FROM added
)sql"};

// merge_comebacks sorts rather than hashes its EXCEPT: a hashed set operation
// cannot spill to disk, so a window of a million rows would hold them all in
// the server's memory; sorted, it stays within work_mem, costs about as much
// for a usual window, and hands the rows on in key order, so the inserts reach
// the indexes in that order. Everything after it hashes again.
inline constexpr statement sort_set_operations{"sort_set_operations", R"sql(
SET LOCAL enable_hashagg = off
)sql"};

inline constexpr statement hash_set_operations{"hash_set_operations", R"sql(
RESET enable_hashagg
)sql"};

// Dedupes the window, diffs it against the stored rows and upserts what
// differs, with history, in one statement. $3..$4: the window's occurs_at
// range (microseconds).
//
// Rows identical to a stored live row of the window's range need no lookup:
// one index range scan and an EXCEPT (NULLs compare equal, like IS NOT
// DISTINCT FROM) drop them, so a re-fetch of unchanged data looks nothing up.
// Any subset of the stored rows is correct there; for criteria other than
// Occurrence the range merely finds fewer of them. What is left is new,
// changed, undeleted or moved in time: decided once against the current row,
// found by primary key through a LATERAL lookup the planner cannot turn into
// a scan of the customer's rows, so a window costs what its own rows cost.
// `latest` and `delta` stay CTEs (in-memory tuplestores) rather than more
// staging tables: writing them costs more than reading them. Data-modifying
// CTEs share the statement's snapshot, so `delta` compares with the rows as
// they were before this window.
//
// A comebacks row holds its comeback's current version (schema/008): a new
// comeback is one row, written once; an update or undelete rewrites the row
// as the version that begins at $2 and moves the version it ends, as `delta`
// read it, to comeback_versions (`closed`). Returns the window's distinct
// comebacks, the inserted, updated and undeleted counts, the occurs_at range
// the changes touched (old and new values, microseconds), and whether a change
// had no occurs_at.
inline constexpr statement merge_comebacks{"merge_comebacks", R"sql(
WITH latest AS MATERIALIZED (
    SELECT comeback_id, contact_id, booked_by_user_id, assigned_user_id, assigned_group_id,
           assigned_office_id, state, origin, occurs_at, booked_at
    FROM pg_temp.load_latest_comebacks
),
candidates AS (
    SELECT comeback_id, contact_id, booked_by_user_id, assigned_user_id, assigned_group_id,
           assigned_office_id, state, origin, occurs_at, booked_at
    FROM latest
    EXCEPT
    SELECT comeback_id, contact_id, booked_by_user_id, assigned_user_id, assigned_group_id,
           assigned_office_id, state, origin, occurs_at, booked_at
    FROM comebacks
    WHERE customer_id = $1 AND deleted_at IS NULL
      AND occurs_at >= timestamptz 'epoch' + $3::bigint * interval '1 microsecond'
      AND occurs_at <= timestamptz 'epoch' + $4::bigint * interval '1 microsecond'
),
delta AS MATERIALIZED (
    SELECT s.comeback_id,
           CASE WHEN c.comeback_id IS NULL THEN 'insert'
                WHEN c.deleted_at IS NOT NULL THEN 'undelete'
                ELSE 'update' END AS change,
           s.contact_id, s.booked_by_user_id, s.assigned_user_id, s.assigned_group_id,
           s.assigned_office_id, s.state, s.origin, s.occurs_at, s.booked_at,
           c.occurs_at AS stored_occurs_at,
           c AS stored
    FROM candidates s
    LEFT JOIN LATERAL (
        SELECT c.comeback_id, c.deleted_at, c.contact_id, c.booked_by_user_id,
               c.assigned_user_id, c.assigned_group_id, c.assigned_office_id, c.state,
               c.origin, c.occurs_at, c.booked_at, c.version_from, c.version_change
        FROM comebacks c
        WHERE c.customer_id = $1 AND c.comeback_id = s.comeback_id
        LIMIT 1  -- keeps the lookup a per-row index probe, never flattened into a join
    ) c ON true
    WHERE c.comeback_id IS NULL OR c.deleted_at IS NOT NULL
       OR (c.contact_id, c.booked_by_user_id, c.assigned_user_id, c.assigned_group_id,
           c.assigned_office_id, c.state, c.origin, c.occurs_at, c.booked_at)
          IS DISTINCT FROM
          (s.contact_id, s.booked_by_user_id, s.assigned_user_id, s.assigned_group_id,
           s.assigned_office_id, s.state, s.origin, s.occurs_at, s.booked_at)
),
added AS (  -- plain inserts: under the customer's lock nobody else adds them
    INSERT INTO comebacks (customer_id, comeback_id, contact_id, booked_by_user_id,
                           assigned_user_id, assigned_group_id, assigned_office_id, state,
                           origin, occurs_at, booked_at, first_seen_at, last_seen_at, deleted_at,
                           version_from, version_change)
    SELECT $1, d.comeback_id, d.contact_id, d.booked_by_user_id,
           d.assigned_user_id, d.assigned_group_id, d.assigned_office_id, d.state,
           d.origin, d.occurs_at, d.booked_at, $2::timestamptz, $2::timestamptz, NULL,
           $2::timestamptz, 'insert'
    FROM delta d
    WHERE d.change = 'insert'
),
merged AS (
    INSERT INTO comebacks AS t (customer_id, comeback_id, contact_id, booked_by_user_id,
                                assigned_user_id, assigned_group_id, assigned_office_id, state,
                                origin, occurs_at, booked_at, first_seen_at, last_seen_at,
                                deleted_at, version_from, version_change)
    SELECT $1, d.comeback_id, d.contact_id, d.booked_by_user_id,
           d.assigned_user_id, d.assigned_group_id, d.assigned_office_id, d.state,
           d.origin, d.occurs_at, d.booked_at, $2::timestamptz, $2::timestamptz, NULL,
           $2::timestamptz, d.change
    FROM delta d
    WHERE d.change <> 'insert'
    ON CONFLICT (customer_id, comeback_id) DO UPDATE
    SET (contact_id, booked_by_user_id, assigned_user_id, assigned_group_id,
         assigned_office_id, state, origin, occurs_at, booked_at, last_seen_at, deleted_at,
         version_from, version_change) =
        (excluded.contact_id, excluded.booked_by_user_id, excluded.assigned_user_id,
         excluded.assigned_group_id, excluded.assigned_office_id, excluded.state,
         excluded.origin, excluded.occurs_at, excluded.booked_at, excluded.last_seen_at, NULL,
         excluded.version_from, excluded.version_change)
    WHERE t.deleted_at IS NOT NULL
       OR (t.contact_id, t.booked_by_user_id, t.assigned_user_id, t.assigned_group_id,
           t.assigned_office_id, t.state, t.origin, t.occurs_at, t.booked_at)
          IS DISTINCT FROM
          (excluded.contact_id, excluded.booked_by_user_id, excluded.assigned_user_id,
           excluded.assigned_group_id, excluded.assigned_office_id, excluded.state,
           excluded.origin, excluded.occurs_at, excluded.booked_at)
),
closed AS (
    INSERT INTO comeback_versions (customer_id, comeback_id, valid_from, valid_to, change,
                                   contact_id, booked_by_user_id, assigned_user_id,
                                   assigned_group_id, assigned_office_id, state, origin,
                                   occurs_at, booked_at, is_deleted)
    SELECT $1, d.comeback_id, (d.stored).version_from, $2::timestamptz, (d.stored).version_change,
           (d.stored).contact_id, (d.stored).booked_by_user_id, (d.stored).assigned_user_id,
           (d.stored).assigned_group_id, (d.stored).assigned_office_id, (d.stored).state,
           (d.stored).origin, (d.stored).occurs_at, (d.stored).booked_at,
           (d.stored).deleted_at IS NOT NULL
    FROM delta d
    WHERE d.change <> 'insert'
)
SELECT (SELECT count(*) FROM latest),
       count(*) FILTER (WHERE change = 'insert'),
       count(*) FILTER (WHERE change = 'update'),
       count(*) FILTER (WHERE change = 'undelete'),
       (extract(epoch FROM min(least(occurs_at, stored_occurs_at))) * 1000000)::bigint,
       (extract(epoch FROM max(greatest(occurs_at, stored_occurs_at))) * 1000000)::bigint,
       coalesce(bool_or(occurs_at IS NULL
                        OR (change <> 'insert' AND stored_occurs_at IS NULL)), false)
FROM delta
)sql"};

// Soft-deletes the customer's ($1) live comebacks of the window's occurs_at
// range ($3..$4) that the response no longer holds, at $2. A rejected element
// with a readable id is in the response, only unreadable: its stored version
// stays as it is. A deleted comeback's last_seen_at becomes the window's
// previous complete fetch ($5, microseconds; NULL when none), the last one
// that saw it. The stored side is an index range scan and the comparison a
// hashed EXCEPT, linear whatever the planner believes (NOT EXISTS became a
// nested loop scanning the staged window per stored row).
//
// Each deleted row becomes the version the delete begins; the version it
// ends, read by primary key in the statement's snapshot (before the update),
// moves to comeback_versions. One row a deleted comeback.
inline constexpr statement soft_delete{"soft_delete", R"sql(
WITH missing AS (
    SELECT comeback_id FROM comebacks
    WHERE customer_id = $1 AND deleted_at IS NULL
      AND occurs_at >= timestamptz 'epoch' + $3::bigint * interval '1 microsecond'
      AND occurs_at <= timestamptz 'epoch' + $4::bigint * interval '1 microsecond'
    EXCEPT
    SELECT comeback_id FROM pg_temp.load_comebacks
    EXCEPT
    SELECT comeback_id FROM pg_temp.load_rejections WHERE comeback_id IS NOT NULL
),
gone AS (
    UPDATE comebacks c
    SET deleted_at = $2::timestamptz,
        last_seen_at = greatest(c.last_seen_at,
                                timestamptz 'epoch' + $5::bigint * interval '1 microsecond'),
        version_from = $2::timestamptz,
        version_change = 'delete'
    FROM missing m
    WHERE c.customer_id = $1 AND c.comeback_id = m.comeback_id
    RETURNING c.comeback_id
)
INSERT INTO comeback_versions (customer_id, comeback_id, valid_from, valid_to, change,
                               contact_id, booked_by_user_id, assigned_user_id,
                               assigned_group_id, assigned_office_id, state, origin,
                               occurs_at, booked_at, is_deleted)
SELECT $1, g.comeback_id, c.version_from, $2::timestamptz, c.version_change,
       c.contact_id, c.booked_by_user_id, c.assigned_user_id,
       c.assigned_group_id, c.assigned_office_id, c.state, c.origin,
       c.occurs_at, c.booked_at, false
FROM gone g
CROSS JOIN LATERAL (
    SELECT c.version_from, c.version_change, c.contact_id, c.booked_by_user_id,
           c.assigned_user_id, c.assigned_group_id, c.assigned_office_id, c.state,
           c.origin, c.occurs_at, c.booked_at
    FROM comebacks c
    WHERE c.customer_id = $1 AND c.comeback_id = g.comeback_id
    LIMIT 1
) c
)sql"};

// The window's rejected elements, once per raw text: seen again, the stored
// row's last_seen_at ($5), reason, id and raw text follow and times_seen
// counts it. An element whose raw text holds the id of an erased contact
// (contact_erasures) may hold that contact's name, in its raw text and in
// its reason: neither is kept, the reason becomes $6. With $7 false
// (privacy.rejected_raw_retention 0s) no raw text is kept at all; older raw
// text ages out as the customer's cycles begin (sql::ledger::plan_windows).
// $1 customer, $2 date criteria, $3 first day, $4 end day (days since
// 1970-01-01).
inline constexpr statement store_rejections{"store_rejections", R"sql(
INSERT INTO rejected_rows AS r (customer_id, date_criteria, first_day, end_day, raw_md5,
                                comeback_id, reason, raw, first_seen_at, last_seen_at,
                                times_seen)
SELECT DISTINCT ON (md5(l.raw))
       $1, $2, date '1970-01-01' + $3::integer, date '1970-01-01' + $4::integer, md5(l.raw),
       l.comeback_id,
       CASE WHEN x.erased THEN $6 ELSE l.reason END,
       CASE WHEN x.erased OR NOT $7::boolean THEN NULL ELSE l.raw END,
       $5::timestamptz, $5::timestamptz, 1
FROM pg_temp.load_rejections l
CROSS JOIN LATERAL (
    SELECT EXISTS (SELECT FROM contact_erasures e
                   WHERE e.customer_id = $1 AND strpos(l.raw, e.contact_id) > 0) AS erased
) x
ORDER BY md5(l.raw), l.idx DESC
ON CONFLICT (customer_id, date_criteria, first_day, end_day, raw_md5) DO UPDATE
SET last_seen_at = excluded.last_seen_at, reason = excluded.reason,
    comeback_id = excluded.comeback_id, raw = excluded.raw, times_seen = r.times_seen + 1
)sql"};

// Windows confirmed from their response digests alone (window_loader.hpp,
// confirm_unparsed), in one statement outside any transaction block: one
// round trip for every response of a batch, where BEGIN, the customer's lock,
// the load's start, the rejected rows, the ledger row and COMMIT made six for
// each. The responses come as parallel arrays, one element each, at most one
// per customer (the caller's rule: each customer's windows confirm in the
// order their loads' stamps say, one stamp a statement).
//
// The lock is not needed here, because the statement writes only when the
// window's ledger row says it confirms as that row is *now*: an UPDATE that
// finds its row changed by a transaction that committed after the statement
// began waits for it, then checks its WHERE again against the row that
// transaction left. So a load of the window itself (fetched_at moves) or of
// another window that changed data this window covers (changed_at moves),
// committed after the snapshot, makes it confirm nothing, and the caller
// loads the response in full under the lock. The confirm rule is
// read_load_start's, one function of the schema for both (window_confirms,
// schema/007_load_rules.sql), applied here to the row as the UPDATE finds it.
//
// What it writes for a window is what record_attempt writes for a complete
// load that compared nothing and changed nothing: the ledger row's new fetch
// (the stamp, as read_load_start computes it, for fetched_at and
// attempted_at), its ticket (a fetch sent without one records the customer's
// counter as it stands, see load/fencing.hpp), and the last load's rejected
// rows (last seen at its fetched_at) seen once more at the stamp, as
// store_rejections would have for the same elements. Then, having changed no
// data, it commits lazily (synchronous_commit off for its own transaction
// only): were the commit lost in a crash of the server, the windows would only
// be fetched again.
//
// One row per response, in the arrays' order (`idx`, from 1): `fetch_ticket`
// is that of the window's last committed load as the snapshot saw it (NULL:
// none, or never planned; the caller refuses a stale fetch with it); the rest
// is NULL unless the window was confirmed. `unreadable` counts the confirmed
// rejected rows without a readable id (identical elements are one row, so a
// parse of the same body may count more).
// Arrays: $1 customer, $2 date criteria, $3 first day, $4 end day, $5
// window_from, $6 window_to (microseconds), $7 response digest, $8 fetch
// ticket (NULL: the fetch took none), $9 HTTP status, $10 response bytes,
// $11 fetch duration (ms).
inline constexpr statement confirm_unparsed{"confirm_unparsed", R"sql(
WITH offered AS (
    SELECT o.customer_id, o.date_criteria,
           date '1970-01-01' + o.first_day AS first_day,
           date '1970-01-01' + o.end_day AS end_day,
           o.window_from, o.window_to, o.response_digest, o.fetch_ticket, o.http_status,
           o.response_bytes, o.fetch_ms, o.idx
    FROM unnest($1::text[], $2::text[], $3::integer[], $4::integer[], $5::bigint[], $6::bigint[],
                $7::text[], $8::bigint[], $9::integer[], $10::bigint[], $11::bigint[])
         WITH ORDINALITY AS o(customer_id, date_criteria, first_day, end_day, window_from, window_to,
                              response_digest, fetch_ticket, http_status, response_bytes, fetch_ms, idx)
),
last_load AS (
    SELECT o.idx,
           w.fetched_at,
           w.fetch_ticket,
           load_stamp(o.customer_id) AS stamp
    FROM offered o
    JOIN sync_windows w
      ON w.customer_id = o.customer_id AND w.date_criteria = o.date_criteria
     AND w.first_day = o.first_day AND w.end_day = o.end_day
),
confirmed AS (
    UPDATE sync_windows w
    SET status = 'complete',
        attempts = w.attempts + 1,
        last_http_status = o.http_status,
        last_error = NULL,
        last_error_kind = NULL,
        attempted_at = l.stamp,
        fetched_at = l.stamp,
        window_from = timestamptz 'epoch' + o.window_from * interval '1 microsecond',
        window_to = timestamptz 'epoch' + o.window_to * interval '1 microsecond',
        rows_changed = 0,
        rows_rejected = coalesce(w.rows_rejected, 0),
        response_bytes = o.response_bytes,
        fetch_ms = o.fetch_ms,
        load_ms = floor(extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000)::integer,
        held_digest = NULL,
        held_since = NULL,
        held_deletions = NULL,
        held_live_rows = NULL,
        fetch_ticket = coalesce(o.fetch_ticket,
                                (SELECT c.fetches_started FROM sync_customers c WHERE c.customer_id = o.customer_id),
                                w.fetch_ticket)
    FROM offered o
    JOIN last_load l ON l.idx = o.idx
    WHERE w.customer_id = o.customer_id AND w.date_criteria = o.date_criteria
      AND w.first_day = o.first_day AND w.end_day = o.end_day
      AND window_confirms(w, NULL, o.response_digest, l.stamp)
      AND w.fetched_at = l.fetched_at
      AND (o.fetch_ticket IS NULL OR w.fetch_ticket IS NULL OR w.fetch_ticket < o.fetch_ticket)
    RETURNING o.idx, w.customer_id, w.date_criteria, w.first_day, w.end_day,
              w.rows_seen, w.rows_duplicate, w.rows_rejected, l.fetched_at AS last_fetched_at, l.stamp
),
seen AS (
    UPDATE rejected_rows r
    SET last_seen_at = c.stamp, times_seen = r.times_seen + 1
    FROM confirmed c
    WHERE r.customer_id = c.customer_id AND r.date_criteria = c.date_criteria
      AND r.first_day = c.first_day AND r.end_day = c.end_day
      AND r.last_seen_at = c.last_fetched_at
    RETURNING c.idx, r.comeback_id
)
SELECT o.idx,
       l.fetch_ticket,
       c.rows_seen,
       c.rows_duplicate,
       c.rows_rejected,
       (SELECT count(*) FROM seen s WHERE s.idx = o.idx AND s.comeback_id IS NULL) AS unreadable,
       CASE WHEN c.rows_seen IS NOT NULL THEN set_config('synchronous_commit', 'off', true) END
           AS commits_lazily
FROM offered o
LEFT JOIN last_load l ON l.idx = o.idx
LEFT JOIN confirmed c ON c.idx = o.idx
ORDER BY o.idx
)sql"};

inline constexpr std::array statements{
    begin_load,             create_staging,         stage_rows,
    truncate_staging,
    merge_entities,
    count_deletions,        before_insert_all_new,  insert_all_new,
    insert_new_skipping_stored,
    undo_insert_all_new,    after_insert_all_new,   sort_set_operations,
    merge_comebacks,        hash_set_operations,    soft_delete,
    store_rejections,       confirm_unparsed};

}  // namespace comeback::sql::window_loader
