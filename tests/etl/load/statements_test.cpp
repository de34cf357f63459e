// Every named statement of etl/load, prepared (or, for the few a server cannot
// prepare, run and rolled back) against a freshly migrated schema: a typo in
// any of them fails here even when no other test reaches it.

#include "load/fencing_sql.hpp"
#include "load/ledger_sql.hpp"
#include "load/lease_sql.hpp"
#include "load/migrations.hpp"
#include "load/migrations_sql.hpp"
#include "load/probe_sql.hpp"
#include "load/privacy_sql.hpp"
#include "load/statement.hpp"
#include "load/window_loader_sql.hpp"
#include "support/database.hpp"

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <vector>

using namespace comeback;
using namespace comeback::test;

namespace {

// The units' statement lists, by the header that declares them.
struct unit {
    const char* header;
    std::vector<sql::statement> statements;
};

std::vector<unit> units() {
    auto list = [](const auto& statements) {
        return std::vector<sql::statement>(statements.begin(), statements.end());
    };
    return {{"etl/load/statement.hpp", list(sql::shared_statements)},
            {"etl/load/ledger_sql.hpp", list(sql::ledger::statements)},
            {"etl/load/fencing_sql.hpp", list(sql::fencing::statements)},
            {"etl/load/lease_sql.hpp", list(sql::lease::statements)},
            {"etl/load/migrations_sql.hpp", list(sql::migrations::statements)},
            {"etl/load/probe_sql.hpp", list(sql::probe::statements)},
            {"etl/load/privacy_sql.hpp", list(sql::privacy::statements)},
            {"etl/load/window_loader_sql.hpp", list(sql::window_loader::statements)}};
}

// PREPARE takes SELECT, INSERT, UPDATE, DELETE, MERGE and VALUES; settings,
// DDL, TRUNCATE, DO blocks and savepoints are run instead.
bool preparable(std::string_view text) {
    for (std::string_view utility :
         {"SET ", "RESET ", "CREATE ", "DO ", "SAVEPOINT ", "ROLLBACK ", "RELEASE ", "TRUNCATE "}) {
        if (text.substr(0, utility.size()) == utility) return false;
    }
    return true;
}

// Prepares each preparable statement, and runs the others in the order the
// unit lists them (a savepoint before its release), all rolled back. Fails
// with the server's message, naming the statement. Returns how many it checked.
std::size_t check_statements(pqxx::work& tx, const std::string& unit_header,
                             std::span<const sql::statement> statements, bool prepared) {
    std::size_t checked = 0;
    pqxx::subtransaction attempt{tx, "check statements"};
    for (const auto& s : statements) {
        if (preparable(s.text()) != prepared) continue;
        INFO(unit_header << ": " << s.name() << "\n" << s.text());
        if (prepared) {
            // A prepared statement outlives a rollback: deallocated at once.
            attempt.exec0("PREPARE checked_statement AS " + std::string(s.text()));
            attempt.exec0("DEALLOCATE checked_statement");
        } else {
            attempt.exec(std::string(s.text()));
        }
        ++checked;
    }
    attempt.abort();
    return checked;
}

// The schema every statement runs in: migrated, search_path set, and the
// name create_schema reads set.
void enter_schema(pqxx::work& tx, const scratch_schema& db) {
    tx.exec_params1(sql::use_schema, db.name());
    tx.exec_params1(sql::migrations::name_schema, db.name());
}

std::string read_source(const std::string& relative) {
    std::ifstream file{std::string(COMEBACK_SOURCE_DIR) + "/" + relative};
    REQUIRE(file.good());
    std::ostringstream text;
    text << file.rdbuf();
    return text.str();
}

}  // namespace

TEST_CASE("every named statement of etl/load prepares against a freshly migrated schema") {
    scratch_schema db;
    migrate(db.connection(), db.name());
    pqxx::work tx{db.connection()};
    enter_schema(tx, db);
    // Those run rather than prepared first, each rolled back; then the rest,
    // with the loader's staging tables present.
    std::size_t checked = 0, listed = 0;
    for (const auto& u : units()) listed += u.statements.size();
    for (const bool prepared : {false, true}) {
        if (prepared) tx.exec0(sql::window_loader::create_staging);
        for (const auto& u : units()) checked += check_statements(tx, u.header, u.statements, prepared);
    }
    CHECK(checked == listed);
}

TEST_CASE("the statement check fails on a misspelt column, table, type or statement") {
    scratch_schema db;
    migrate(db.connection(), db.name());
    pqxx::work tx{db.connection()};
    enter_schema(tx, db);
    tx.exec0(sql::window_loader::create_staging);
    constexpr sql::statement column{"column", "SELECT fetchd_at FROM sync_windows"};
    constexpr sql::statement table{"table", "SELECT 1 FROM sync_window"};
    constexpr sql::statement type{"type", "SELECT 1 FROM sync_windows WHERE first_day = $1::dat"};
    constexpr sql::statement utility{"utility", "CREATE TEMP TABLE t (x no_such_type)"};
    constexpr sql::statement syntax{"syntax", "SELECT 1 FROM sync_windows WHER false"};
    for (const auto& s : {column, table, type, utility, syntax}) {
        INFO(s.name());
        CHECK_THROWS_AS(check_statements(tx, "test", std::span(&s, 1), preparable(s.text())),
                        pqxx::sql_error);
    }
}

TEST_CASE("statement names are unique across the units: each names a prepared statement of its connection") {
    // load/prepared.hpp registers a statement under its name; a second text
    // under the same name would be refused on the first connection to run both.
    std::map<std::string, std::string> owner;
    for (const auto& u : units()) {
        for (const auto& s : u.statements) {
            INFO(s.name() << " in " << u.header);
            const auto [at, added] = owner.emplace(std::string(s.name()), u.header);
            INFO("also in " << at->second);
            CHECK(added);
        }
    }
}

TEST_CASE("every statement a unit's header declares is in that unit's list, under its own name") {
    const std::regex declaration{R"re(constexpr\s+statement\s+(\w+)\s*\{\s*"(\w+)")re"};
    for (const auto& u : units()) {
        INFO(u.header);
        const std::string source = read_source(u.header);
        std::set<std::string> declared;
        for (auto it = std::sregex_iterator(source.begin(), source.end(), declaration);
             it != std::sregex_iterator(); ++it) {
            CHECK((*it)[1].str() == (*it)[2].str());
            declared.insert((*it)[1].str());
        }
        std::set<std::string> listed;
        for (const auto& s : u.statements) listed.insert(std::string(s.name()));
        CHECK_FALSE(declared.empty());
        CHECK(declared == listed);
    }
}
