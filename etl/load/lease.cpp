#include "load/lease.hpp"

#include "load/identifier.hpp"
#include "load/lease_sql.hpp"
#include "load/prepared.hpp"

#include <pqxx/pqxx>

#include <functional>

#include <stdexcept>
#include <string>

namespace comeback {

namespace {

// The key a statement computes in `schema`; its transaction may register the
// customer, so it commits. A session lock taken later survives transactions.
std::int64_t read_key(pqxx::connection& connection, std::string_view schema,
                      const std::function<pqxx::result(pqxx::work&)>& statement) {
    check_schema_name(schema);
    for (int attempt = 0; attempt < 2; ++attempt) {
        pqxx::work tx{connection, "lease key"};
        sql::exec1(tx, sql::use_schema, std::string(schema));
        const pqxx::result rows = statement(tx);
        tx.commit();
        if (!rows.empty()) return rows[0][0].as<std::int64_t>();
    }
    throw std::runtime_error("no lease key in schema " + std::string(schema) +
                             " (is it migrated?)");
}

}  // namespace

lease_id customer_lease(pqxx::connection& connection, std::string_view schema,
                        std::string_view customer_id) {
    const std::string customer(customer_id);
    const auto key = read_key(connection, schema, [&](pqxx::work& tx) {
        return sql::exec(tx, sql::lease::customer_key, customer);
    });
    return {key, "customer " + customer};
}

lease_id instance_slot_lease(pqxx::connection& connection, std::string_view schema, unsigned slot) {
    const auto key = read_key(connection, schema, [&](pqxx::work& tx) {
        return sql::exec(tx, sql::lease::instance_slot_key, static_cast<long long>(slot));
    });
    return {key, "instance slot " + std::to_string(slot)};
}

bool try_acquire_lease(pqxx::connection& connection, const lease_id& lease) {
    // A session lock survives the statement's transaction, so a nontransaction
    // is the honest wrapper: nothing here should be rolled back.
    pqxx::nontransaction tx{connection, "lease"};
    return sql::exec1(tx, sql::lease::try_acquire, lease.key)[0].as<bool>();
}

void release_lease(pqxx::connection& connection, const lease_id& lease) {
    pqxx::nontransaction tx{connection, "lease"};
    if (!sql::exec1(tx, sql::lease::release, lease.key)[0].as<bool>()) {
        throw std::logic_error("release_lease: this session does not hold the lease of " + lease.name);
    }
}

}  // namespace comeback
