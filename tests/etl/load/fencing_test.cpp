// Fencing on the real PostgreSQL: a load whose fetch began before another
// fetch of the same window that has committed since is dropped, unwritten.

#include "load/fencing.hpp"

#include "load/contact_memo.hpp"
#include "load/database_failure.hpp"
#include "load/migrations.hpp"
#include "load/window_loader.hpp"
#include "load_test_data.hpp"
#include "support/database.hpp"

#include <catch2/catch.hpp>
#include <pqxx/pqxx>

using namespace comeback;
using namespace comeback::test;

namespace {

struct fenced_schema : scratch_schema {
    fenced_schema() { migrate(connection(), name()); }
};

// Every row of `table` a transaction inserts or updates notes the
// synchronous_commit that transaction runs under, in commit_modes.
void note_commit_modes(pqxx::connection& connection, const std::string& schema, const std::string& table) {
    pqxx::work tx{connection};
    tx.exec0("CREATE TABLE " + schema + ".commit_modes (mode text)");
    tx.exec0("CREATE FUNCTION " + schema + ".note_commit_mode() RETURNS trigger LANGUAGE plpgsql AS $$ "
             "BEGIN INSERT INTO " + schema + ".commit_modes VALUES (current_setting('synchronous_commit')); "
             "RETURN NULL; END $$");
    tx.exec0("CREATE TRIGGER note_commit_mode AFTER INSERT OR UPDATE ON " + schema + "." + table +
             " FOR EACH ROW EXECUTE FUNCTION " + schema + ".note_commit_mode()");
    tx.commit();
}

}  // namespace

TEST_CASE("fetch tickets of a customer rise with every fetch, and each customer counts its own") {
    fenced_schema db;
    const auto m1 = window_of("M1", week1);
    const fetch_ticket first = take_fetch_ticket(db.connection(), db.name(), m1).ticket;
    const fetch_ticket second = take_fetch_ticket(*connect(), db.name(), window_of("M1", week2)).ticket;
    CHECK(second > first);
    CHECK(take_fetch_ticket(db.connection(), db.name(), window_of("M2", week1)).ticket == 1);
    CHECK(take_fetch_ticket(db.connection(), db.name(), m1).ticket > second);
}

TEST_CASE("an older fetch's load that commits after a newer one of the same window is dropped, unwritten") {
    fenced_schema db;
    const auto key = window_of("M1", week1);
    const fetch_ticket older = take_fetch_ticket(db.connection(), db.name(), key).ticket;
    const fetch_ticket newer = take_fetch_ticket(db.connection(), db.name(), key).ticket;

    // The newer fetch's response (K1 completed) commits first.
    load(db.connection(), db.name(), key, {{.id = "K1", .state = "Completed"}}, {.fetch_ticket = newer});
    const auto before = snapshot(db.connection(), db.name());

    // The older response (K1 still new, and K2) arrives late.
    CHECK_THROWS_AS(load(db.connection(), db.name(), key, {{.id = "K1"}, {.id = "K2"}}, {.fetch_ticket = older}),
                    stale_fetch_error);
    CHECK(snapshot(db.connection(), db.name()) == before);
    CHECK(one_text(db.connection(), "SELECT state FROM " + db.quoted() + ".comebacks WHERE comeback_id = 'K1'") ==
          "Completed");

    // It is a failure of its own kind, which is not retried.
    try {
        load(db.connection(), db.name(), key, {{.id = "K1"}}, {.fetch_ticket = older});
        FAIL("the stale load committed");
    } catch (const stale_fetch_error& error) {
        const auto classified = classify_database_error(error, "db");
        REQUIRE(classified);
        CHECK(classified->kind == failure_kind::stale_fetch);
        CHECK_FALSE(is_retryable(classified->kind));
        CHECK(std::string(error.what()).find("M1") != std::string::npos);
    }
}

TEST_CASE("a newer fetch's load commits over an older one, and other windows are not fenced by it") {
    fenced_schema db;
    const auto key = window_of("M1", week1);
    const fetch_ticket older = take_fetch_ticket(db.connection(), db.name(), key).ticket;
    const fetch_ticket newer = take_fetch_ticket(db.connection(), db.name(), key).ticket;
    load(db.connection(), db.name(), key, {{.id = "K1"}}, {.fetch_ticket = older});
    const auto counts = load(db.connection(), db.name(), key, {{.id = "K1", .state = "Completed"}},
                             {.fetch_ticket = newer});
    CHECK(counts.updated == 1);
    CHECK(one_text(db.connection(), "SELECT fetch_ticket FROM " + db.quoted() + ".sync_windows") ==
          std::to_string(newer));
    // Week 2's load with the older ticket is another window: it commits.
    CHECK_NOTHROW(load(db.connection(), db.name(), window_of("M1", week2),
                       {{.id = "K9", .occurs_at = utc(week2, std::chrono::hours{8})}}, {.fetch_ticket = older}));
}

TEST_CASE("a ticket comes with the size of the window's last response, when that response's digest is known") {
    fenced_schema db;
    const auto key = window_of("M1", week1);
    CHECK_FALSE(take_fetch_ticket(db.connection(), db.name(), key).last_response_bytes);
    // A load without a response digest: nothing it read could be confirmed from one.
    load(db.connection(), db.name(), key, {{.id = "K1"}});
    CHECK_FALSE(take_fetch_ticket(db.connection(), db.name(), key).last_response_bytes);

    window_loader loader{db.connection(), db.name(), key, {}};
    loader.add(batch_of("M1", {{.id = "K1"}}), {});
    loader.commit(fetch_info{200, std::chrono::milliseconds{12}, 4321, "response digest"});
    const taken_ticket taken = take_fetch_ticket(db.connection(), db.name(), key);
    CHECK(taken.last_response_bytes == std::optional<std::uint64_t>{4321});
    // Another window of the customer knows none.
    CHECK_FALSE(take_fetch_ticket(db.connection(), db.name(), window_of("M1", week2)).last_response_bytes);
}

TEST_CASE("a ticket commits synchronously, even on a session that commits asynchronously") {
    fenced_schema db;
    const auto key = window_of("M1", week1);
    take_fetch_ticket(db.connection(), db.name(), key);  // registers the customer
    // Every change of the counter notes the synchronous_commit its
    // transaction ran under.
    const std::string schema = db.quoted();
    note_commit_modes(db.connection(), schema, "sync_customers");
    {
        pqxx::nontransaction tx{db.connection()};
        tx.exec0("SET synchronous_commit TO off");
    }
    take_fetch_ticket(db.connection(), db.name(), key);
    CHECK(one_text(db.connection(), "SELECT string_agg(mode, ' ') FROM " + schema + ".commit_modes") == "on");
    // The setting was the ticket's alone: the session's stays as it was.
    CHECK(one_text(db.connection(), "SELECT current_setting('synchronous_commit')") == "off");
}

TEST_CASE("a load commits lazily when asked to, for its own transaction only, and never teaching the contact memo") {
    fenced_schema db;
    const std::string schema = db.quoted();
    note_commit_modes(db.connection(), schema, "sync_windows");
    {
        pqxx::nontransaction tx{db.connection()};
        tx.exec0("SET synchronous_commit TO on");
    }
    load(db.connection(), db.name(), window_of("M1", week1), {{.id = "K1"}}, {.commit_lazily = true});
    CHECK(one_text(db.connection(), "SELECT string_agg(DISTINCT mode, ' ') FROM " + schema + ".commit_modes") == "off");
    CHECK(one_text(db.connection(), "SELECT current_setting('synchronous_commit')") == "on");

    // Without it, the load commits as the session is set.
    {
        pqxx::nontransaction tx{db.connection()};
        tx.exec0("TRUNCATE " + schema + ".commit_modes");
    }
    load(db.connection(), db.name(), window_of("M1", week2), {{.id = "K2"}}, {});
    CHECK(one_text(db.connection(), "SELECT string_agg(DISTINCT mode, ' ') FROM " + schema + ".commit_modes") == "on");

    contact_memo memo;
    CHECK_THROWS_AS(load(db.connection(), db.name(), window_of("M1", week1), {{.id = "K1"}},
                         {.contacts = &memo, .commit_lazily = true}),
                    std::logic_error);
}

TEST_CASE("make_durable returns once every commit before it is flushed, the lazy ones included") {
    fenced_schema db;
    const std::string schema = db.quoted();
    auto lazy = connect();
    {
        pqxx::nontransaction tx{*lazy};
        tx.exec0("SET synchronous_commit TO off");
        tx.exec0("CREATE TABLE " + schema + ".lazy (n int)");
    }
    // A lazy commit's WAL is written and flushed by the server's WAL writer
    // within a moment; make_durable does not wait for it.
    std::string inserted_to;
    {
        pqxx::nontransaction tx{*lazy};
        tx.exec0("INSERT INTO " + schema + ".lazy SELECT generate_series(1, 1000)");
        inserted_to = tx.exec1("SELECT pg_current_wal_insert_lsn()::text")[0].as<std::string>();
    }
    make_durable(db.connection());
    CHECK(one_text(db.connection(), "SELECT pg_current_wal_flush_lsn() >= '" + inserted_to + "'::pg_lsn") == "t");
}
