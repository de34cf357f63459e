#pragma once
// The fencing statements (see fencing.hpp): fetch tickets, taken from the
// customer's counter in sync_customers before a fetch begins, and the ticket a
// window's last committed load had, in sync_windows.fetch_ticket.

#include "load/statement.hpp"

namespace comeback::sql::fencing {

// $1 schema. How a ticket's transaction begins, in one round trip: this
// transaction's search_path, as sql::use_schema sets it, and a synchronous
// commit. A ticket must outlive a crash of the server: were it lost, a
// restarted server could hand the same number to a later fetch. So its
// transaction commits synchronously, whatever the server's synchronous_commit
// says.
inline constexpr statement begin_ticket{"begin_ticket", R"sql(
SELECT set_config('search_path', quote_ident($1), true) AS search_path,
       set_config('synchronous_commit', 'on', true) AS synchronous_commit
)sql"};

// The customer's ($1) next fetch ticket. No row: the customer has none yet
// (register_customer, then again).
inline constexpr statement take_fetch_ticket{"take_fetch_ticket", R"sql(
UPDATE sync_customers
SET fetches_started = fetches_started + 1
WHERE customer_id = $1
RETURNING fetches_started
)sql"};

// The customer's ($1) row, with its lease number, when it has none. Run only
// when a lookup found none: every INSERT draws a number from the identity,
// conflicting or not.
inline constexpr statement register_customer{"register_customer", R"sql(
INSERT INTO sync_customers (customer_id) VALUES ($1)
ON CONFLICT (customer_id) DO NOTHING
)sql"};

// The ticket of the window's last committed load, read under the customer's
// load lock. $1 customer, $2 date criteria, $3 first day, $4 end day.
inline constexpr statement read_window_ticket{"read_window_ticket", R"sql(
SELECT fetch_ticket
FROM sync_windows
WHERE customer_id = $1 AND date_criteria = $2
  AND first_day = date '1970-01-01' + $3::integer
  AND end_day = date '1970-01-01' + $4::integer
)sql"};

inline constexpr std::array statements{begin_ticket, take_fetch_ticket, register_customer,
                                       read_window_ticket};

}  // namespace comeback::sql::fencing
