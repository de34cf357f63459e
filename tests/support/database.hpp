#pragma once
// The real PostgreSQL that scripts/test starts (or `source scripts/lib/postgres.sh;
// pg_start DIR`), reached through the PG* environment variables. Each test gets
// a fresh, uniquely named schema, dropped again when the test ends.

#include <pqxx/pqxx>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <unistd.h>

namespace comeback::test {

// Throws, failing the test, when the environment names no database: a database
// test that skips silently would pass without testing anything.
inline void require_database_environment() {
    for (const char* name : {"PGHOST", "PGPORT", "PGUSER", "PGDATABASE"}) {
        const char* value = std::getenv(name);
        if (value == nullptr || *value == '\0') {
            throw std::runtime_error(
                std::string("database tests need PGHOST, PGPORT, PGUSER and PGDATABASE; ") + name +
                " is not set. Run scripts/test, or `source scripts/lib/postgres.sh; pg_start "
                "/tmp/some-dir` before ctest");
        }
    }
}

// A new connection from the PG* environment (empty conninfo: libpq reads it).
inline std::unique_ptr<pqxx::connection> connect() {
    require_database_environment();
    return std::make_unique<pqxx::connection>("");
}

// A schema name no other test (or test process) uses: t_<pid>_<counter>_<random>.
inline std::string unique_schema_name() {
    static std::atomic<unsigned> counter{0};
    static const unsigned salt = std::random_device{}() % 100000;
    return "t_" + std::to_string(::getpid()) + "_" + std::to_string(counter++) + "_" +
           std::to_string(salt);
}

// Owns a fresh schema (not yet migrated) and a connection for the test. The
// schema is dropped on destruction through a new connection, so a test that
// kills its own connection still cleans up.
class scratch_schema {
public:
    scratch_schema() : name_(unique_schema_name()), connection_(connect()) {}
    ~scratch_schema() {
        try {
            auto cleanup = connect();
            pqxx::nontransaction tx{*cleanup};
            tx.exec0("SET client_min_messages TO warning");
            tx.exec0("DROP SCHEMA IF EXISTS " + tx.quote_name(name_) + " CASCADE");
        } catch (...) {
            // A leftover schema in a throwaway cluster is harmless; a throwing
            // destructor would hide the test's own result.
        }
    }
    scratch_schema(const scratch_schema&) = delete;
    scratch_schema& operator=(const scratch_schema&) = delete;

    const std::string& name() const { return name_; }
    std::string quoted() const { return "\"" + name_ + "\""; }
    pqxx::connection& connection() { return *connection_; }
    // Replaces the test's connection, e.g. after it was terminated on purpose.
    void reconnect() { connection_ = connect(); }

private:
    std::string name_;
    std::unique_ptr<pqxx::connection> connection_;
};

}  // namespace comeback::test
