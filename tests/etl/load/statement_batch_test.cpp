// Statements sent in one message run in order, each hands its rows to its
// handler, a failure stops the batch where it happened and keeps its own
// kind, and a connection lost mid-batch is a lost database, as it is for a
// statement sent alone.

#include "load/statement_batch.hpp"

#include "load/database_failure.hpp"
#include "load/prepared.hpp"

#include "support/database.hpp"
#include "support/tcp_proxy.hpp"

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

#include <chrono>
#include <cstdlib>

#include <functional>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace comeback;
using namespace comeback::test;
using namespace std::chrono_literals;

namespace {

constexpr sql::statement add_note{"batch_test_add_note", R"sql(
INSERT INTO batch_notes (id, note) VALUES ($1, $2)
RETURNING id
)sql"};

constexpr sql::statement count_notes{"batch_test_count_notes", R"sql(
SELECT count(*) FROM batch_notes WHERE $1::boolean
)sql"};

constexpr sql::statement sleep_then_count{"batch_test_sleep_then_count", R"sql(
SELECT pg_sleep($1::double precision), count(*) FROM batch_notes
)sql"};

struct notes_schema : scratch_schema {
    notes_schema() {
        pqxx::nontransaction tx{connection()};
        tx.exec0("CREATE SCHEMA " + quoted());
        tx.exec0("CREATE TABLE " + quoted() + ".batch_notes (id bigint PRIMARY KEY, note text)");
        // The batch prepares its statements against the session's search_path.
        connection().set_variable("search_path", quoted());
    }

    long long notes() {
        auto check = connect();
        pqxx::nontransaction tx{*check};
        return tx.exec1("SELECT count(*) FROM " + quoted() + ".batch_notes")[0].as<long long>();
    }
};

}  // namespace

TEST_CASE("a batch runs its statements in order in one message and hands each its rows") {
    notes_schema db;
    sql::batched_transaction tx{db.connection(), "batch test"};
    sql::statement_batch batch{tx};
    std::vector<std::string> seen;
    const std::string awkward = "O'Brien \\ \"quoted\" {braces}, åäö";
    batch.add(add_note, [&](const pqxx::result& rows) { seen.push_back("id " + rows[0][0].as<std::string>()); },
              1, awkward);
    batch.add(add_note, [&](const pqxx::result& rows) { seen.push_back("id " + rows[0][0].as<std::string>()); },
              2, std::optional<std::string>{});
    batch.add(count_notes, [&](const pqxx::result& rows) { seen.push_back("count " + rows[0][0].as<std::string>()); },
              true);
    CHECK(seen.empty());  // nothing is sent before send()
    batch.send();
    CHECK(seen == std::vector<std::string>{"id 1", "id 2", "count 2"});
    CHECK(batch.messages_sent() == 1);
    CHECK(db.notes() == 0);  // not committed yet

    batch.add_command("SET LOCAL statement_timeout = '5s'");
    batch.add_commit();
    batch.send();
    tx.commit();
    CHECK(batch.messages_sent() == 2);
    CHECK(db.notes() == 2);
    pqxx::nontransaction read{db.connection()};
    CHECK(read.exec1("SELECT note FROM batch_notes WHERE id = 1")[0].as<std::string>() == awkward);
    CHECK(read.exec1("SELECT note IS NULL FROM batch_notes WHERE id = 2")[0].as<bool>());
}

TEST_CASE("a failing statement stops its batch there, keeps its kind, and commits nothing") {
    notes_schema db;
    std::vector<std::string> seen;
    try {
        sql::batched_transaction tx{db.connection(), "batch test"};
        sql::statement_batch batch{tx};
        batch.add(add_note, [&](const pqxx::result&) { seen.push_back("first"); }, 1, "a");
        batch.add(add_note, [&](const pqxx::result&) { seen.push_back("duplicate"); }, 1, "b");
        batch.add(add_note, [&](const pqxx::result&) { seen.push_back("after"); }, 2, "c");
        batch.add_commit();
        batch.send();
        FAIL("a batch with a duplicate key went through");
    } catch (const pqxx::unique_violation&) {
        // The statement's own kind: the caller classifies it as usual.
    }
    CHECK(seen.empty());  // no handler of a failed batch runs
    CHECK(db.notes() == 0);
    // The connection is usable again once the transaction is gone.
    pqxx::nontransaction read{db.connection()};
    CHECK(read.exec1("SELECT 1")[0].as<int>() == 1);
}

TEST_CASE("a connection lost in the middle of a batch, its COMMIT queued or not, is a lost database") {
    notes_schema db;
    const std::string database = describe_database(db.connection());
    const int backend = db.connection().backendpid();
    // Queues a batch that sleeps in its middle, terminates the session
    // meanwhile, and returns what the failure classifies as.
    auto failure_of = [&](const std::function<void(sql::statement_batch&)>& queue) -> std::optional<failure> {
        auto terminating = std::async(std::launch::async, [backend] {
            std::this_thread::sleep_for(300ms);
            auto other = connect();
            pqxx::nontransaction tx{*other};
            tx.exec1("SELECT pg_terminate_backend(" + std::to_string(backend) + ")");
        });
        std::optional<failure> classified;
        try {
            sql::batched_transaction tx{db.connection(), "batch test"};
            sql::statement_batch batch{tx};
            queue(batch);
            batch.send();
        } catch (const std::exception& error) {
            classified = classify_database_error(error, database);
            if (!classified) classified = failure{failure_kind::internal_error, 0, error.what(), std::nullopt};
        }
        terminating.get();
        return classified;
    };

    SECTION("mid-batch") {
        const auto classified = failure_of([](sql::statement_batch& batch) {
            batch.add(add_note, {}, 1, "a");
            batch.add(sleep_then_count, {}, 5);
            batch.add(add_note, {}, 2, "b");
        });
        REQUIRE(classified);
        CHECK(classified->kind == failure_kind::database_lost);
    }
    SECTION("with its COMMIT") {
        // The server ended the session before the COMMIT ran and said so:
        // not in doubt, lost, and nothing was committed.
        const auto classified = failure_of([](sql::statement_batch& batch) {
            batch.add(sleep_then_count, {}, 5);
            batch.add_commit();
        });
        REQUIRE(classified);
        CHECK(classified->kind == failure_kind::database_lost);
    }
    CHECK(db.notes() == 0);
}

TEST_CASE("a transaction whose first batch was never sent ends without a ROLLBACK") {
    notes_schema db;
    // Every notice and warning the server sends this connection.
    struct notices : pqxx::errorhandler {
        explicit notices(pqxx::connection_base& connection) : pqxx::errorhandler(connection) {}
        bool operator()(const char message[]) noexcept override {
            seen.emplace_back(message);
            return true;
        }
        std::vector<std::string> seen;
    } heard{db.connection()};
    {
        sql::batched_transaction tx{db.connection(), "batch test"};
        sql::statement_batch batch{tx};
        batch.add(add_note, {}, 1, "never sent");
    }  // a window whose fetch failed before its load began
    {
        sql::batched_transaction tx{db.connection(), "batch test"};
        sql::statement_batch batch{tx};
        batch.add(add_note, {}, 2, "sent, then rolled back");
        batch.send();
    }
    // An unneeded ROLLBACK draws "there is no transaction in progress".
    for (const auto& notice : heard.seen) {
        INFO(notice);
        CHECK(notice.find("no transaction in progress") == std::string::npos);
    }
    CHECK(db.notes() == 0);
    pqxx::nontransaction read{db.connection()};
    CHECK(read.exec1("SELECT 1")[0].as<int>() == 1);  // the session is idle, not in a transaction
    CHECK(read.exec1("SELECT count(*) FROM batch_notes")[0].as<int>() == 0);
}

TEST_CASE("a connection lost once a batch's COMMIT was sent is a commit in doubt, committed or not") {
    notes_schema db;
    const std::string database = describe_database(db.connection());
    // Whether the server received the COMMIT before the proxy between it and
    // the client closed every connection: either way the client cannot know.
    for (const bool delivered : {true, false}) {
        DYNAMIC_SECTION((delivered ? "the server ran the COMMIT" : "the COMMIT never reached the server")) {
            tcp_proxy proxy{"127.0.0.1", static_cast<std::uint16_t>(std::atoi(std::getenv("PGPORT")))};
            pqxx::connection through{"host=127.0.0.1 port=" + std::to_string(proxy.port())};
            through.set_variable("search_path", db.quoted());
            proxy.blackhole_at("COMMIT", delivered);
            auto cutting = std::async(std::launch::async, [&] {
                const auto deadline = std::chrono::steady_clock::now() + 10s;
                while (!proxy.blackholed() && std::chrono::steady_clock::now() < deadline) {
                    std::this_thread::sleep_for(5ms);
                }
                // A delivered COMMIT runs on the server, its answer held back.
                while (delivered && db.notes() == 0 && std::chrono::steady_clock::now() < deadline) {
                    std::this_thread::sleep_for(5ms);
                }
                proxy.reset();
            });
            bool in_doubt = false;
            std::optional<failure> classified;
            try {
                sql::batched_transaction tx{through, "batch test"};
                sql::statement_batch batch{tx};
                batch.add(add_note, {}, 1, "in doubt");
                batch.add_commit();
                batch.send();
                tx.commit();
            } catch (const pqxx::in_doubt_error& error) {
                in_doubt = true;
                classified = classify_database_error(error, database);
            }
            cutting.get();
            CHECK(in_doubt);
            REQUIRE(classified);
            CHECK(classified->kind == failure_kind::database_lost);
            CHECK(db.notes() == (delivered ? 1 : 0));
        }
    }
}
