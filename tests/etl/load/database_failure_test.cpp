// Real PostgreSQL failures, met on a real connection, land in their kinds:
// what passes on a retry is database_lost or database_conflict, what needs an
// operator is database_refused with a message naming the database and what to
// check, and a programming error is no database failure at all.

#include "load/database_failure.hpp"

#include "load/prepared.hpp"

#include "support/database.hpp"

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include <optional>

using namespace comeback;
using namespace comeback::test;

namespace {

// Runs `sql` on `connection` and returns the classified failure it caused.
failure failure_of(pqxx::connection& connection, const std::string& sql) {
    const std::string database = describe_database(connection);
    try {
        pqxx::work tx{connection};
        tx.exec(sql);
        tx.commit();
    } catch (const std::exception& error) {
        auto classified = classify_database_error(error, database);
        REQUIRE(classified);
        return *classified;
    }
    FAIL("the statement succeeded: " << sql);
    return {};
}

std::string database_name() {
    auto connection = connect();
    return connection->dbname();
}

}  // namespace

TEST_CASE("the database is described by name and host, never by its connection string") {
    auto connection = connect();
    const std::string text = describe_database(*connection);
    CHECK(text.starts_with("database " + database_name()));
    CHECK(text.find("password") == std::string::npos);
}

TEST_CASE("a backend terminated under the statement is a lost connection, retried") {
    auto connection = connect();
    const auto lost = failure_of(*connection, "SELECT pg_terminate_backend(pg_backend_pid())");
    CHECK(lost.kind == failure_kind::database_lost);
    CHECK(is_retryable(lost.kind));
    CHECK(lost.message.starts_with("database " + database_name()));
    CHECK(lost.message.find('\n') == std::string::npos);
}

TEST_CASE("a statement cut off by statement_timeout is a database timeout, retried") {
    auto connection = connect();
    const auto timed_out = failure_of(*connection, "SET LOCAL statement_timeout = 20; SELECT pg_sleep(30)");
    CHECK(timed_out.kind == failure_kind::database_timeout);
    CHECK(is_retryable(timed_out.kind));
    CHECK(timed_out.message.find("database.statement_timeout") != std::string::npos);
    CHECK(timed_out.message.find("statement timeout") != std::string::npos);
}

TEST_CASE("a server that cannot be reached is a lost connection, retried") {
    try {
        pqxx::connection unreachable{"host=127.0.0.1 port=1 connect_timeout=5"};
        FAIL("connected to port 1");
    } catch (const std::exception& error) {
        auto classified = classify_database_error(error, "the database");
        REQUIRE(classified);
        CHECK(classified->kind == failure_kind::database_lost);
    }
}

TEST_CASE("serialization failures and deadlocks are conflicts, retried") {
    auto connection = connect();
    for (const char* state : {"40001", "40P01"}) {
        INFO(state);
        const auto conflict = failure_of(
            *connection, std::string("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '") + state + "'; END $$");
        CHECK(conflict.kind == failure_kind::database_conflict);
        CHECK(is_retryable(conflict.kind));
    }
}

TEST_CASE("a broken constraint is refused, not retried, and the message says what to check") {
    scratch_schema db;
    {
        pqxx::work tx{db.connection()};
        tx.exec0("CREATE SCHEMA " + db.quoted());
        tx.exec0("CREATE TABLE " + db.quoted() + ".t (n int CHECK (n > 0))");
        tx.commit();
    }
    const auto refused = failure_of(db.connection(), "INSERT INTO " + db.quoted() + ".t VALUES (-1)");
    CHECK(refused.kind == failure_kind::database_refused);
    CHECK_FALSE(is_retryable(refused.kind));
    CHECK(refused.message.starts_with("database " + database_name()));
    CHECK(refused.message.find("refused a statement (SQLSTATE 23514)") != std::string::npos);
    CHECK(refused.message.find("compare the tables with schema/*.sql") != std::string::npos);
}

TEST_CASE("a missing privilege is refused and names the privileges to grant") {
    scratch_schema db;
    const std::string role = db.name() + "_reader";
    {
        pqxx::work tx{db.connection()};
        tx.exec0("CREATE SCHEMA " + db.quoted());
        tx.exec0("CREATE TABLE " + db.quoted() + ".t (n int)");
        tx.exec0("CREATE ROLE " + tx.quote_name(role) + " NOLOGIN");
        tx.commit();
    }
    const auto refused = failure_of(db.connection(), "SET LOCAL ROLE " + db.connection().quote_name(role) +
                                                         "; INSERT INTO " + db.quoted() + ".t VALUES (1)");
    {
        pqxx::work tx{db.connection()};
        tx.exec0("DROP ROLE " + tx.quote_name(role));
        tx.commit();
    }
    INFO(refused.message);
    CHECK(refused.kind == failure_kind::database_refused);
    CHECK(refused.message.find("SQLSTATE 42501") != std::string::npos);
    CHECK(refused.message.find("least privilege") != std::string::npos);
}

TEST_CASE("a missing table is refused and asks for the migrations") {
    auto connection = connect();
    const auto refused = failure_of(*connection, "SELECT * FROM no_such_table_here");
    CHECK(refused.kind == failure_kind::database_refused);
    CHECK(refused.message.find("SQLSTATE 42P01") != std::string::npos);
    CHECK(refused.message.find("comeback-sync migrate") != std::string::npos);
}

TEST_CASE("a prepared statement whose result a migration changed drops its connection, retried") {
    scratch_schema db;
    auto& connection = db.connection();
    const std::string table = db.quoted() + ".migrated";
    {
        pqxx::work tx{connection};
        tx.exec0("CREATE SCHEMA " + db.quoted());
        tx.exec0("CREATE TABLE " + table + " (id integer)");
        tx.commit();
    }
    const sql::statement read{"read_migrated", "SELECT id FROM migrated"};
    auto run = [&] {
        pqxx::work tx{connection};
        sql::exec1(tx, sql::use_schema, db.name());
        sql::exec(tx, read);
        tx.commit();
    };
    run();
    {
        pqxx::work tx{connection};
        tx.exec0("ALTER TABLE " + table + " ALTER COLUMN id TYPE text");
        tx.commit();
    }
    const std::string database = describe_database(connection);
    std::optional<failure> classified;
    try {
        run();
    } catch (const std::exception& error) {
        classified = classify_database_error(error, database);
    }
    REQUIRE(classified);
    INFO(classified->message);
    CHECK(classified->kind == failure_kind::database_lost);
    CHECK(classified->message.find("no longer matches the schema") != std::string::npos);
}

TEST_CASE("a programming error is not a database failure") {
    CHECK_FALSE(classify_database_error(std::logic_error("misuse"), "the database"));
    CHECK_FALSE(classify_database_error(pqxx::usage_error("two transactions at once"), "the database"));
    CHECK_FALSE(classify_database_error(std::invalid_argument("bad schema name"), "the database"));
}
