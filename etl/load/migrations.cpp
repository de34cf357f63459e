#include "load/migrations.hpp"

#include "load/embedded_migrations.hpp"
#include "load/identifier.hpp"
#include "load/migrations_sql.hpp"
#include "load/prepared.hpp"

#include <pqxx/pqxx>

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace comeback {

namespace {

struct applied_migration {
    std::string name;
    std::string checksum;
};

std::string join_versions(const std::vector<int>& versions) {
    std::string text;
    for (int version : versions) {
        if (!text.empty()) text += ", ";
        text += std::to_string(version);
    }
    return text;
}

std::vector<embedded_migration> known_in_order() {
    auto known = embedded_migrations();
    std::vector<embedded_migration> sorted(known.begin(), known.end());
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& a, const auto& b) { return a.version < b.version; });
    return sorted;
}

// Refuses a database whose history this binary cannot continue: nothing is
// applied, so an operator can decide (roll the binary forward, restore the file).
void check_applied(std::string_view schema, const std::map<int, applied_migration>& applied,
                   const std::vector<embedded_migration>& known) {
    std::vector<int> unknown;
    for (const auto& [version, migration] : applied) {
        auto match = std::find_if(known.begin(), known.end(),
                                  [version = version](const auto& m) { return m.version == version; });
        if (match == known.end()) {
            unknown.push_back(version);
            continue;
        }
        if (migration.checksum != match->checksum || migration.name != match->name) {
            throw migration_error(
                "database schema \"" + std::string(schema) + "\": migration " +
                std::string(match->name) + " was changed after it was applied (applied as " +
                migration.name + " with checksum " + migration.checksum + ", this binary has " +
                std::string(match->checksum) +
                "); restore the applied file and put the change in a new migration");
        }
    }
    if (!unknown.empty()) {
        throw migration_error("database schema \"" + std::string(schema) +
                              "\" is newer than this binary: it has migration version(s) " +
                              join_versions(unknown) + " and this binary knows up to " +
                              std::to_string(newest_known_migration()) +
                              "; run a comeback-sync that carries them");
    }
}

// The migrations recorded in schema_migrations on `tx`'s search_path.
std::map<int, applied_migration> read_applied(pqxx::transaction_base& tx) {
    std::map<int, applied_migration> applied;
    for (const auto& row : tx.exec(sql::migrations::read_applied)) {
        applied.emplace(row[0].as<int>(), applied_migration{row[1].as<std::string>(), row[2].as<std::string>()});
    }
    return applied;
}

// The migrations `schema` records, read without a transaction or a lock on
// the session's search_path (set to the schema, as every session of the pool
// sets it anyway); nullopt when the schema or its schema_migrations table
// does not exist yet.
std::optional<std::map<int, applied_migration>> read_applied_unlocked(pqxx::connection& connection,
                                                                      std::string_view schema) {
    sql::use_schema_for_session(connection, schema);
    try {
        pqxx::nontransaction tx{connection, "migrate-check"};
        return read_applied(tx);
    } catch (const pqxx::undefined_table&) {
        return std::nullopt;
    }
}

}  // namespace

int newest_known_migration() {
    int newest = 0;
    for (const auto& migration : embedded_migrations()) newest = std::max(newest, migration.version);
    return newest;
}

int migrate(pqxx::connection& connection, std::string_view schema) {
    check_schema_name(schema);
    const std::string name{schema};
    const auto known = known_in_order();

    // Up to date, as at every start but the first after an upgrade: one read,
    // no lock, the same refusals. A migrator in progress elsewhere has not
    // committed its rows yet, so this one finds a migration missing and waits
    // for it below.
    if (const auto applied = read_applied_unlocked(connection, schema)) {
        check_applied(schema, *applied, known);
        if (applied->size() == known.size()) return 0;  // none unknown (refused above), so every one
    }

    pqxx::work tx{connection, "migrate"};
    tx.exec0(sql::migrations::quiet_notices);
    // Taken before anything is read: a second migrator waits here, then sees the
    // first one's committed work and finds nothing left to do.
    tx.exec_params1(sql::migrations::lock, name);
    tx.exec_params1(sql::migrations::name_schema, name);
    tx.exec0(sql::migrations::create_schema);
    tx.exec_params1(sql::use_schema, name);
    tx.exec0(sql::migrations::create_migrations_table);

    const std::map<int, applied_migration> applied = read_applied(tx);
    check_applied(schema, applied, known);

    int count = 0;
    for (const auto& migration : known) {
        if (applied.count(migration.version) != 0) continue;
        try {
            tx.exec0(std::string(migration.sql));
        } catch (const pqxx::sql_error& error) {
            throw migration_error("database schema \"" + std::string(schema) + "\": migration " +
                                  std::string(migration.name) + " failed: " + error.what());
        }
        tx.exec_params0(sql::migrations::record_applied, migration.version,
                        std::string(migration.name), std::string(migration.checksum));
        ++count;
    }
    tx.commit();
    return count;
}

}  // namespace comeback
