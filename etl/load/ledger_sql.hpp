#pragma once
// Every statement that touches the ledger, sync_windows (see ledger.hpp).
// Days cross as integers since 1970-01-01, instants as microseconds since
// the Unix epoch (sql_time.hpp): exact and locale-free.

#include "load/statement.hpp"

namespace comeback::sql::ledger {

// How a customer's cycle begins, in one statement: a pending row for each
// window that has none, the customer's rows read in order of first_day (the
// rows just planned come from RETURNING: the statement's own snapshot
// does not see them), and the raw text of the customer's rejected rows last
// seen $7 seconds ago or longer emptied (privacy.rejected_raw_retention): it
// may hold names; the rows themselves, with their reasons, stay.
// $1 customer, $2 date criteria, $3..$6 arrays of the windows' first days,
// end days, from and to; $7 NULL purges nothing, and with empty arrays the
// statement only reads (read_ledger). `confirmable_bytes`: the size of the
// response the window's last complete load read, when that load recorded its
// response digest (its next response may confirm it unparsed), else NULL.
inline constexpr statement plan_windows{"plan_windows", R"sql(
WITH purged AS (
    UPDATE rejected_rows
    SET raw = NULL
    WHERE customer_id = $1 AND raw IS NOT NULL
      AND last_seen_at <= clock_timestamp() - $7::bigint * interval '1 second'
),
planned AS (
    INSERT INTO sync_windows (customer_id, date_criteria, first_day, end_day,
                              window_from, window_to, status)
    SELECT $1, $2,
           date '1970-01-01' + w.first_day::integer,
           date '1970-01-01' + w.end_day::integer,
           timestamptz 'epoch' + w.window_from * interval '1 microsecond',
           timestamptz 'epoch' + w.window_to * interval '1 microsecond',
           'pending'
    FROM unnest($3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
         AS w (first_day, end_day, window_from, window_to)
    ON CONFLICT (customer_id, date_criteria, first_day, end_day) DO NOTHING
    RETURNING *
)
SELECT first_day - date '1970-01-01' AS first_day,
       end_day - date '1970-01-01' AS end_day,
       status,
       attempts,
       (extract(epoch FROM fetched_at) * 1000000)::bigint AS fetched_at,
       last_error,
       (extract(epoch FROM attempted_at) * 1000000)::bigint AS attempted_at,
       last_http_status,
       held_deletions,
       held_live_rows,
       CASE WHEN response_digest IS NOT NULL THEN response_bytes END AS confirmable_bytes
FROM (SELECT * FROM sync_windows WHERE customer_id = $1 AND date_criteria = $2
      UNION ALL
      SELECT * FROM planned) w
ORDER BY first_day, end_day
)sql"};

// Opens a read of the whole ledger (sync_status, read_all_windows): the
// transaction's search_path, as sql::use_schema sets it, and no JIT. The
// planner's estimate of a scan of every window passes jit_above_cost from some
// tens of thousands of windows on, and compiling the plan then costs more than
// it saves: at 400,000 windows, 1.7 s with JIT against 1.05 s without.
inline constexpr statement use_schema_without_jit{"use_schema_without_jit", R"sql(
SELECT set_config('search_path', quote_ident($1), true), set_config('jit', 'off', true)
)sql"};

inline constexpr statement read_sync_status{"read_sync_status", R"sql(
SELECT customer_id,
       (extract(epoch FROM last_success) * 1000000)::bigint AS last_success,
       windows_complete,
       windows_failed,
       windows_pending,
       stalest_window_first_day - date '1970-01-01' AS stalest_window_first_day,
       (extract(epoch FROM stalest_window_fetched_at) * 1000000)::bigint
           AS stalest_window_fetched_at,
       last_error,
       (extract(epoch FROM last_error_at) * 1000000)::bigint AS last_error_at,
       windows_held,
       last_error_kind
FROM sync_status
ORDER BY customer_id
)sql"};

// Every customer's windows of one date criteria ($1), for the status page,
// a chunk at a time: the next $5 rows after the window ($2 customer, $3 first
// day, $4 end day; customer '' for the first chunk, before every id) in the
// primary key's order, which one index range scan reads.
inline constexpr statement read_all_windows{"read_all_windows", R"sql(
SELECT first_day - date '1970-01-01' AS first_day,
       end_day - date '1970-01-01' AS end_day,
       status,
       (extract(epoch FROM fetched_at) * 1000000)::bigint AS fetched_at,
       customer_id
FROM sync_windows
WHERE date_criteria = $1
  AND (customer_id, date_criteria, first_day, end_day)
      > ($2, $1, date '1970-01-01' + $3::integer, date '1970-01-01' + $4::integer)
ORDER BY customer_id, date_criteria, first_day, end_day
LIMIT $5
)sql"};

// What a loader reads under the customer's lock before it writes, in one
// statement: the load's stamp and the window's last complete load.
//
// `stamp`: the load's one instant, for every row it writes: the server's
// clock, but at least a microsecond after every stamp an earlier load of the
// customer left in the ledger. Stamps of a customer never go backwards, so a
// history version is always closed after it opened and changed_at,
// fetched_at and compared_at compare as the loads happened, even when the
// server's clock steps back.
//
// The rest is NULL when the window was never planned. `fetch_ticket`: that of
// the window's last committed load (load/fencing.hpp). `confirms`: that load
// saw exactly this content ($5, the content digest, or $6, the response
// digest; either may be NULL), no load has changed the data the window covers
// since (changed_at), and the window was compared row by row less than a day
// before the stamp. `held_same_for_s`: when the window is held on this very
// content, for how many seconds fetches have returned it.
// `live_rows_in_range`: with $7, when the load does not confirm, whether any
// live comeback of the customer is stored in the window's occurs_at range $8..$9
// (microseconds, both inclusive); else NULL. A response confirmed from its
// digest alone goes through sql::window_loader::confirm_unparsed instead. The
// stamp and the rule are the schema's functions load_stamp and window_confirms
// (schema/007_load_rules.sql), which both statements call.
// $1 customer, $2 date criteria, $3 first day, $4 end day.
inline constexpr statement read_load_start{"read_load_start", R"sql(
SELECT l.*,
       CASE WHEN $7 AND NOT l.confirms THEN EXISTS (
           SELECT FROM comebacks
           WHERE customer_id = $1 AND deleted_at IS NULL
             AND occurs_at >= timestamptz 'epoch' + $8::bigint * interval '1 microsecond'
             AND occurs_at <= timestamptz 'epoch' + $9::bigint * interval '1 microsecond')
       END AS live_rows_in_range
FROM (
    SELECT s.at::text AS stamp,
           (extract(epoch FROM w.fetched_at) * 1000000)::bigint AS fetched_at,
           w.rows_seen,
           w.rows_duplicate,
           window_confirms(w, $5, $6, s.at) AS confirms,
           CASE WHEN w.status = 'held' AND w.held_digest = $5
                THEN floor(extract(epoch FROM s.at - w.held_since))::bigint
           END AS held_same_for_s,
           w.rows_rejected,
           w.fetch_ticket
    FROM (SELECT load_stamp($1) AS at) s
    LEFT JOIN sync_windows w
           ON w.customer_id = $1 AND w.date_criteria = $2
          AND w.first_day = date '1970-01-01' + $3::integer
          AND w.end_day = date '1970-01-01' + $4::integer
) l
)sql"};

// One attempt at a window, complete, held or failed: attempts + 1, status
// ($7), the HTTP status ($12), error ($13, NULL when complete; the reason
// when held) and the error's failure kind ($33, NULL unless failed),
// attempted_at. A complete load also records its counts
// ($8..$11), response size and durations ($14..$16), fetched_at ($17),
// content digest ($18, NULL: keep it) and response digest ($25), and sets
// changed_at when it changed data ($19) and compared_at when it compared rows
// ($20). A failed or held attempt passes
// NULL for all of those, and the window keeps what its last complete load
// recorded, bounds included; it happened now (attempted_at).
// A held load passes its content digest ($21), its stamp ($22) and the
// deletions it held of the window's live comebacks ($23, $24): held_since
// stays while the held content stays the same. A complete load clears the
// held columns; a failed attempt of a held window keeps them and the status
// 'held' (its deletions still wait), with the failure as last_error.
// A complete load also records the fetch ticket it was fetched under ($26,
// NULL: keep the one the row has; load/fencing.hpp), or with $32 the
// customer's counter as it stands (a first load fetched without a ticket;
// none registered yet: keep the row's).
// When $27, a complete load that changed data, the same statement sets
// changed_at (its fetched_at, $17) on the customer's other windows whose data
// it changed: all of them when $28 (an entity was renamed, or a changed
// comeback has no occurs_at), else those overlapping the occurs_at range
// $30..$31 of the changed comebacks. A window of criteria other than $29, the
// one criteria whose windows filter on occurs_at, covers no range that can be
// checked: it is always marked. (One statement where two made two round trips;
// the rows it marks are never the one it inserts or updates.)
// $1 customer, $2 date criteria, $3 first day, $4 end day, $5 window_from,
// $6 window_to.
inline constexpr statement record_attempt{"record_attempt", R"sql(
WITH others_changed AS (
    UPDATE sync_windows
    SET changed_at = $17::timestamptz
    WHERE $27::boolean
      AND customer_id = $1
      AND NOT (date_criteria = $2
               AND first_day = date '1970-01-01' + $3::integer
               AND end_day = date '1970-01-01' + $4::integer)
      AND ($28::boolean
           OR date_criteria <> $29
           OR (window_from <= timestamptz 'epoch' + $31::bigint * interval '1 microsecond'
               AND window_to >= timestamptz 'epoch' + $30::bigint * interval '1 microsecond'))
)
INSERT INTO sync_windows AS w (
    customer_id, date_criteria, first_day, end_day, window_from, window_to,
    status, attempts, rows_seen, rows_duplicate, rows_changed, rows_rejected,
    last_http_status, last_error, response_bytes, fetch_ms, load_ms,
    fetched_at, attempted_at, content_digest, changed_at, compared_at,
    held_digest, held_since, held_deletions, held_live_rows, response_digest, fetch_ticket,
    last_error_kind)
VALUES (
    $1, $2,
    date '1970-01-01' + $3::integer,
    date '1970-01-01' + $4::integer,
    timestamptz 'epoch' + $5::bigint * interval '1 microsecond',
    timestamptz 'epoch' + $6::bigint * interval '1 microsecond',
    $7, 1, $8, $9, $10, $11,
    $12, $13, $14, $15, $16,
    $17::timestamptz, coalesce($17::timestamptz, $22::timestamptz, clock_timestamp()), $18,
    $19::timestamptz, $20::timestamptz,
    $21, $22::timestamptz, $23, $24, $25,
    CASE WHEN $32::boolean THEN (SELECT fetches_started FROM sync_customers WHERE customer_id = $1)
         ELSE $26 END,
    $33)
ON CONFLICT (customer_id, date_criteria, first_day, end_day) DO UPDATE SET
    status = CASE WHEN excluded.status = 'failed' AND w.status = 'held' THEN 'held'
                  ELSE excluded.status END,
    attempts = w.attempts + 1,
    last_http_status = excluded.last_http_status,
    last_error = excluded.last_error,
    last_error_kind = excluded.last_error_kind,
    attempted_at = excluded.attempted_at,
    window_from = CASE WHEN excluded.status = 'complete' THEN excluded.window_from
                       ELSE w.window_from END,
    window_to = CASE WHEN excluded.status = 'complete' THEN excluded.window_to
                     ELSE w.window_to END,
    rows_seen = coalesce(excluded.rows_seen, w.rows_seen),
    rows_duplicate = coalesce(excluded.rows_duplicate, w.rows_duplicate),
    rows_changed = coalesce(excluded.rows_changed, w.rows_changed),
    rows_rejected = coalesce(excluded.rows_rejected, w.rows_rejected),
    response_bytes = coalesce(excluded.response_bytes, w.response_bytes),
    fetch_ms = coalesce(excluded.fetch_ms, w.fetch_ms),
    load_ms = coalesce(excluded.load_ms, w.load_ms),
    fetched_at = coalesce(excluded.fetched_at, w.fetched_at),
    content_digest = coalesce(excluded.content_digest, w.content_digest),
    response_digest = CASE excluded.status WHEN 'complete' THEN excluded.response_digest
                                           ELSE w.response_digest END,
    changed_at = coalesce(excluded.changed_at, w.changed_at),
    compared_at = coalesce(excluded.compared_at, w.compared_at),
    held_digest = CASE excluded.status WHEN 'failed' THEN w.held_digest
                                       ELSE excluded.held_digest END,
    held_since = CASE WHEN excluded.status = 'failed' THEN w.held_since
                      WHEN excluded.status = 'held' AND w.held_digest = excluded.held_digest
                          THEN w.held_since
                      ELSE excluded.held_since END,
    held_deletions = CASE excluded.status WHEN 'failed' THEN w.held_deletions
                                          ELSE excluded.held_deletions END,
    held_live_rows = CASE excluded.status WHEN 'failed' THEN w.held_live_rows
                                          ELSE excluded.held_live_rows END,
    fetch_ticket = coalesce(excluded.fetch_ticket, w.fetch_ticket)
)sql"};

// Every held window of every customer, oldest hold first: what `status`
// lists and backfill --accept-deletes is for.
inline constexpr statement read_held_windows{"read_held_windows", R"sql(
SELECT customer_id,
       date_criteria,
       first_day - date '1970-01-01' AS first_day,
       end_day - date '1970-01-01' AS end_day,
       held_deletions,
       held_live_rows,
       (extract(epoch FROM held_since) * 1000000)::bigint AS held_since,
       (extract(epoch FROM attempted_at) * 1000000)::bigint AS attempted_at
FROM sync_windows
WHERE status = 'held'
ORDER BY held_since, customer_id, first_day
)sql"};

inline constexpr std::array statements{plan_windows,     use_schema_without_jit, read_sync_status,
                                       read_all_windows, read_load_start,        record_attempt,
                                       read_held_windows};

}  // namespace comeback::sql::ledger
