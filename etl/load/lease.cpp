#include "load/lease.hpp"

#include "load/copy_text.hpp"
#include "load/identifier.hpp"
#include "load/lease_sql.hpp"
#include "load/prepared.hpp"

#include <pqxx/pqxx>

#include <functional>
#include <map>
#include <stdexcept>
#include <string>

namespace comeback {

namespace {

// Its transaction may register customers, so it commits. A session lock
// taken later survives transactions.
pqxx::result read_keys(pqxx::connection& connection, std::string_view schema,
                       const std::function<pqxx::result(pqxx::work&)>& statement) {
    check_schema_name(schema);
    pqxx::work tx{connection, "lease key"};
    sql::exec1(tx, sql::use_schema, std::string(schema));
    pqxx::result rows = statement(tx);
    tx.commit();
    return rows;
}

[[noreturn]] void no_key(std::string_view schema) {
    throw std::runtime_error("no lease key in schema " + std::string(schema) + " (is it migrated?)");
}

// Runs a per-lease statement (try_acquire_each, release_each) over every key
// of `leases` in one round trip: its boolean for each, in the order of
// `leases`. A session lock outlives the statement's transaction, so a
// nontransaction is the honest wrapper: nothing here should be rolled back.
std::vector<bool> each_lease(pqxx::connection& connection, const sql::statement& s,
                             const std::vector<lease_id>& leases) {
    std::vector<bool> results(leases.size(), false);
    if (leases.empty()) return results;
    const std::string keys = copy_text::array_of(leases.size(), [&](copy_text& rows, std::size_t i) { rows.number(leases[i].key); });
    pqxx::nontransaction tx{connection, "lease"};
    for (const auto& row : sql::exec(tx, s, keys)) results.at(row[0].as<std::size_t>() - 1) = row[1].as<bool>();
    return results;
}

}  // namespace

lease_id customer_lease(pqxx::connection& connection, std::string_view schema,
                        std::string_view customer_id) {
    return std::move(customer_leases(connection, schema, {std::string(customer_id)}).front());
}

std::vector<lease_id> customer_leases(pqxx::connection& connection, std::string_view schema,
                                      const std::vector<std::string>& customer_ids) {
    std::map<std::string, std::int64_t, std::less<>> keys;
    // A customer another session registered at the same moment gets its key
    // on the second attempt.
    for (int attempt = 0; attempt < 2 && keys.size() < customer_ids.size(); ++attempt) {
        std::vector<std::string_view> missing;
        for (const auto& id : customer_ids) {
            if (keys.find(id) == keys.end()) missing.push_back(id);
        }
        const std::string ids = copy_text::array_of(missing.size(), [&](copy_text& rows, std::size_t i) { rows.text(missing[i]); });
        for (const auto& row : read_keys(connection, schema, [&](pqxx::work& tx) {
                 return sql::exec(tx, sql::lease::customer_keys, ids);
             })) {
            keys.emplace(row[0].as<std::string>(), row[1].as<std::int64_t>());
        }
    }
    std::vector<lease_id> leases;
    leases.reserve(customer_ids.size());
    for (const auto& id : customer_ids) {
        auto found = keys.find(id);
        if (found == keys.end()) no_key(schema);
        leases.push_back({found->second, "customer " + id});
    }
    return leases;
}

lease_id instance_slot_lease(pqxx::connection& connection, std::string_view schema, unsigned slot) {
    const pqxx::result rows = read_keys(connection, schema, [&](pqxx::work& tx) {
        return sql::exec(tx, sql::lease::instance_slot_key, static_cast<long long>(slot));
    });
    if (rows.empty()) no_key(schema);
    return {rows[0][0].as<std::int64_t>(), "instance slot " + std::to_string(slot)};
}

bool try_acquire_lease(pqxx::connection& connection, const lease_id& lease) {
    return try_acquire_leases(connection, {lease}).front();
}

std::vector<bool> try_acquire_leases(pqxx::connection& connection, const std::vector<lease_id>& leases) {
    return each_lease(connection, sql::lease::try_acquire_each, leases);
}

void release_lease(pqxx::connection& connection, const lease_id& lease) { release_leases(connection, {lease}); }

void release_leases(pqxx::connection& connection, const std::vector<lease_id>& leases) {
    const std::vector<bool> held = each_lease(connection, sql::lease::release_each, leases);
    std::string not_held;
    for (std::size_t i = 0; i < leases.size(); ++i) {
        if (!held[i]) not_held += (not_held.empty() ? "" : ", ") + leases[i].name;
    }
    if (!not_held.empty()) {
        throw std::logic_error("release_leases: this session does not hold the lease of " + not_held);
    }
}

}  // namespace comeback
