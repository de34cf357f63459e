#pragma once
// The fencing statements (see fencing.hpp): fetch tickets, taken from the
// customer's counter in sync_customers before a fetch begins. The ticket a
// window's last committed load had (sync_windows.fetch_ticket) is read with
// the rest of that load (sql::ledger::read_load_start).

#include "load/statement.hpp"

namespace comeback::sql::fencing {

// The customer's ($1) next fetch ticket, and what the fetch needs to know of
// its window (date criteria $2, first day $3, end day $4, days since
// 1970-01-01) in the same round trip: the size of the response the window's
// last complete load read, when that load recorded its response digest (a
// response worth holding unparsed, to confirm the window from its digest),
// else NULL. No row: the customer has no counter yet (register_customer, then
// again).
//
// It runs as a transaction of its own, outside any transaction block: one
// round trip where BEGIN, a setting and COMMIT made four. Its table names are
// the session's search_path (take_fetch_ticket sets it). A ticket must outlive
// a crash of the server: were it lost, a restarted server could hand the same
// number to a later fetch. So the statement's own transaction commits
// synchronously, whatever the server's synchronous_commit says: a setting made
// local to it holds until its commit.
inline constexpr statement take_fetch_ticket{"take_fetch_ticket", R"sql(
UPDATE sync_customers
SET fetches_started = fetches_started + 1
WHERE customer_id = $1
RETURNING fetches_started,
          (SELECT response_bytes
           FROM sync_windows
           WHERE customer_id = $1 AND date_criteria = $2
             AND first_day = date '1970-01-01' + $3::integer
             AND end_day = date '1970-01-01' + $4::integer
             AND response_digest IS NOT NULL) AS last_response_bytes,
          set_config('synchronous_commit', 'on', true) AS synchronous_commit
)sql"};

// The customer's ($1) row, with its lease number, when it has none. Run only
// when a lookup found none: every INSERT draws a number from the identity,
// conflicting or not.
inline constexpr statement register_customer{"register_customer", R"sql(
INSERT INTO sync_customers (customer_id) VALUES ($1)
ON CONFLICT (customer_id) DO NOTHING
)sql"};

// A transaction of its own that commits durably (make_durable). PostgreSQL
// waits for the disk at a COMMIT only when the transaction has an id and
// wrote WAL before its commit record: txid_current() takes the id, and a
// logical decoding message (not transactional, so nothing decodes it as part
// of a transaction; any role may emit one) is the WAL, a few dozen bytes,
// with no row written. With synchronous_commit on for it alone, its COMMIT
// returns only once the WAL up to its record, every lazy commit before it
// included, is on disk.
inline constexpr statement durable_point{"durable_point", R"sql(
SELECT txid_current() AS xid,
       pg_logical_emit_message(false, 'comeback-sync', 'durable') AS message,
       set_config('synchronous_commit', 'on', true) AS synchronous_commit
)sql"};

inline constexpr std::array statements{take_fetch_ticket, register_customer, durable_point};

}  // namespace comeback::sql::fencing
