#include "load/lease.hpp"

#include "load/identifier.hpp"
#include "load/lease_sql.hpp"

#include <pqxx/pqxx>

#include <stdexcept>
#include <string>

namespace comeback {

bool try_acquire_customer_lease(pqxx::connection& connection, std::string_view schema,
                                std::string_view customer_id) {
    check_schema_name(schema);
    // A session lock survives the statement's transaction, so a nontransaction
    // is the honest wrapper: nothing here should be rolled back.
    pqxx::nontransaction tx{connection, "customer lease"};
    auto row = tx.exec_params1(sql::lease::try_acquire,
                               std::string(schema), std::string(customer_id));
    return row[0].as<bool>();
}

void release_customer_lease(pqxx::connection& connection, std::string_view schema,
                            std::string_view customer_id) {
    check_schema_name(schema);
    pqxx::nontransaction tx{connection, "customer lease"};
    auto row = tx.exec_params1(sql::lease::release,
                               std::string(schema), std::string(customer_id));
    if (!row[0].as<bool>()) {
        throw std::logic_error("release_customer_lease: this session holds no lease for customer " +
                               std::string(customer_id) + " in schema " + std::string(schema));
    }
}

}  // namespace comeback
