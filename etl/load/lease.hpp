#pragma once
// Several daemon instances may run against one database: each customer is
// worked on by the instance holding its lease, a session advisory lock. A lock
// held by a dead session vanishes with it, which is the failover.

#include "load/pqxx_fwd.hpp"

#include <string_view>

namespace comeback {

// Tries, without waiting, to take the customer's lease on this connection's
// session. Returns false when another session holds it. Leases are re-entrant
// per session (PostgreSQL counts them): each true needs one release.
// Throws std::invalid_argument (bad schema name) and pqxx exceptions.
bool try_acquire_customer_lease(pqxx::connection& connection, std::string_view schema,
                                std::string_view customer_id);

// Releases one hold of the lease. Throws std::logic_error when this session
// does not hold it, pqxx exceptions when the database fails.
void release_customer_lease(pqxx::connection& connection, std::string_view schema,
                            std::string_view customer_id);

}  // namespace comeback
