#include "load/lease.hpp"

#include "load/identifier.hpp"

#include <pqxx/pqxx>

#include <stdexcept>
#include <string>

namespace comeback {

namespace {

// The first key half names the schema's lease space, distinct from the
// loader's and the migrator's, since all advisory locks share one key space.
constexpr const char* lease_keys = "hashtext('comeback-sync/lease/' || $1), hashtext($2)";

}  // namespace

bool try_acquire_customer_lease(pqxx::connection& connection, std::string_view schema,
                                std::string_view customer_id) {
    quoted_schema(schema);  // validates
    // A session lock survives the statement's transaction, so a nontransaction
    // is the honest wrapper: nothing here should be rolled back.
    pqxx::nontransaction tx{connection, "customer lease"};
    auto row = tx.exec_params1(std::string("SELECT pg_try_advisory_lock(") + lease_keys + ")",
                               std::string(schema), std::string(customer_id));
    return row[0].as<bool>();
}

void release_customer_lease(pqxx::connection& connection, std::string_view schema,
                            std::string_view customer_id) {
    quoted_schema(schema);
    pqxx::nontransaction tx{connection, "customer lease"};
    auto row = tx.exec_params1(std::string("SELECT pg_advisory_unlock(") + lease_keys + ")",
                               std::string(schema), std::string(customer_id));
    if (!row[0].as<bool>()) {
        throw std::logic_error("release_customer_lease: this session holds no lease for customer " +
                               std::string(customer_id) + " in schema " + std::string(schema));
    }
}

}  // namespace comeback
