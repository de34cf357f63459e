#pragma once
// Several daemon instances may run against one database: each customer is
// worked on by the instance holding its lease, a session advisory lock. A lock
// held by a dead session vanishes with it, which is the failover. Customers'
// leases and instance slots live in separate parts of the schema's own key
// space (lease_sql.hpp): no two customers, no customer and slot, and no two
// schemas ever share a lease.

#include "load/pqxx_fwd.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace comeback {

// One lease: its advisory lock key, and what it is for messages.
struct lease_id {
    std::int64_t key = 0;
    std::string name;  // "customer M1", "instance slot 3"
};

// The customer's lease in `schema`, its number assigned in sync_customers the
// first time. The key stays valid as long as the schema exists.
// Throws std::invalid_argument (bad schema name) and pqxx exceptions.
lease_id customer_lease(pqxx::connection& connection, std::string_view schema,
                        std::string_view customer_id);

// The leases of many customers, in the order of `customer_ids`: one
// transaction for all of them. Throws as customer_lease.
std::vector<lease_id> customer_leases(pqxx::connection& connection, std::string_view schema,
                                      const std::vector<std::string>& customer_ids);

// Instance slot `slot`'s lease in `schema`. Throws as customer_lease.
lease_id instance_slot_lease(pqxx::connection& connection, std::string_view schema, unsigned slot);

// Tries, without waiting, to take the lease on this connection's session.
// Returns false when another session holds it. Leases are re-entrant per
// session (PostgreSQL counts them): each true needs one release.
// Throws pqxx exceptions.
bool try_acquire_lease(pqxx::connection& connection, const lease_id& lease);

// Tries each lease once, without waiting, in one statement: which were
// taken, in the order of `leases`. Throws pqxx exceptions.
std::vector<bool> try_acquire_leases(pqxx::connection& connection, const std::vector<lease_id>& leases);

// Releases one hold of the lease. Throws std::logic_error when this session
// does not hold it, pqxx exceptions when the database fails.
void release_lease(pqxx::connection& connection, const lease_id& lease);

// Releases one hold of each lease in one statement (a reload that drops many
// customers, a shutdown). Throws std::logic_error naming the leases this
// session did not hold, after releasing the others; pqxx exceptions when the
// database fails.
void release_leases(pqxx::connection& connection, const std::vector<lease_id>& leases);

}  // namespace comeback
