// The daemon's database sessions against the real PostgreSQL, some through a
// TCP proxy that swallows traffic like a network partition: every session
// carries the database.* limits, a database that stops answering fails the
// call within its limit (never a hang), and the pool recovers on its own and
// opens the connections its work keeps busy, not one for every call at once.

#include "sync/database.hpp"

#include "load/database_failure.hpp"
#include "load/ledger.hpp"
#include "load/prepared.hpp"
#include "load/window_loader_sql.hpp"
#include "support/scoped.hpp"
#include "support/tcp_proxy.hpp"
#include "sync/db_workers.hpp"
#include "sync_fixture.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <cstdlib>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

using namespace comeback;
using namespace comeback::test;
using namespace std::chrono_literals;

namespace {

std::string show(pqxx::connection& connection, const std::string& setting) {
    pqxx::nontransaction tx{connection};
    return tx.exec1("SHOW " + setting)[0].as<std::string>();
}

// The PostgreSQL of the PG* environment through a proxy on loopback TCP.
struct proxied_database {
    tcp_proxy proxy{"127.0.0.1", static_cast<std::uint16_t>(std::atoi(std::getenv("PGPORT")))};
    database_config config;

    proxied_database() {
        require_database_environment();
        config.conninfo = "host=127.0.0.1 port=" + std::to_string(proxy.port());
        config.timeouts.connect_timeout = 2s;
    }
};

// A migrated schema, an io_context and a database configuration whose
// sessions name the schema's test (kill_sessions finds them).
struct pool_case {
    migrated_schema db;
    boost::asio::io_context io;
    database_config config{"application_name=" + db.application_name(), db.name()};
};

}  // namespace

TEST_CASE("a database on this machine is one every server of the conninfo names is on loopback or a socket") {
    env_guard host{"PGHOST", nullptr};
    env_guard hostaddr{"PGHOSTADDR", nullptr};
    env_guard service{"PGSERVICE", nullptr};
    auto local = [](const std::string& conninfo) {
        database_config config;
        config.conninfo = conninfo;
        return database_on_this_machine(config);
    };
    const std::vector<std::pair<std::string, bool>> cases{
        {"", true},  // libpq's default Unix socket
        {"host=/var/run/postgresql dbname=x", true},
        {"host=localhost", true},
        {"host=127.0.0.2 port=5433", true},
        {"host=::1", true},
        {"postgresql://127.0.0.1:5432/comeback", true},
        {"postgresql:///comeback?host=/tmp", true},
        {"host=db.example.net hostaddr=127.0.0.1", true},  // libpq connects to hostaddr
        {"host=/tmp,localhost", true},
        {"host=db.example.net", false},
        {"host=/tmp,db.example.net", false},
        {"host=localhost hostaddr=192.0.2.7", false},
        {"postgresql://10.1.2.3/comeback", false},
        {"host=128.0.0.1", false},
        {"service=reports", false},  // pg_service.conf may name any server
        {"service=reports host=/tmp", true},
    };
    for (const auto& [conninfo, on_this_machine] : cases) {
        INFO(conninfo);
        CHECK(local(conninfo) == on_this_machine);
    }
    CHECK_THROWS_AS(local("host='unterminated"), std::invalid_argument);

    SECTION("without a host in the conninfo, libpq's environment names the server") {
        env_guard elsewhere{"PGHOST", "db.example.net"};
        CHECK_FALSE(local(""));
        CHECK(local("host=/tmp"));
        env_guard address{"PGHOSTADDR", "127.0.0.1"};
        CHECK(local(""));
    }
}

TEST_CASE("a backfill opens at most as many connections as a database on this machine has cores, unless set") {
    env_guard host{"PGHOST", nullptr};
    env_guard hostaddr{"PGHOSTADDR", nullptr};
    database_config config;
    config.conninfo = "host=/var/run/postgresql";
    config.pool_size = 6;  // the default for max_concurrent_requests: 4
    CHECK(backfill_pool_size(config, 2) == 2);
    CHECK(backfill_pool_size(config, 1) == 2);  // a pool has at least 2
    CHECK(backfill_pool_size(config, 4) == 4);
    CHECK(backfill_pool_size(config, 16) == 6);
    config.conninfo = "host=db.example.net";
    CHECK(backfill_pool_size(config, 2) == 6);  // another machine's cores are unknown
    config.conninfo = "host=localhost";
    config.pool_size_set = true;  // the operator's choice stands
    CHECK(backfill_pool_size(config, 2) == 6);
}

TEST_CASE("every session carries the database.* limits, and a setting the conninfo makes wins") {
    database_config config;
    config.timeouts.statement_timeout = 1234ms;
    config.timeouts.lock_timeout = 2s;
    config.timeouts.idle_in_transaction_timeout = 3min;
    {
        database_connection connection(config);
        CHECK(show(connection.get(), "statement_timeout") == "1234ms");
        CHECK(show(connection.get(), "lock_timeout") == "2s");
        CHECK(show(connection.get(), "idle_in_transaction_session_timeout") == "3min");
        CHECK(conninfo_overrides(config).empty());
    }
    config.conninfo = "connect_timeout=7 options='-c lock_timeout=5s'";
    database_connection connection(config);
    CHECK(show(connection.get(), "lock_timeout") == "5s");
    CHECK(show(connection.get(), "statement_timeout") == "1234ms");
    CHECK(session_conninfo(config).find("connect_timeout='7'") != std::string::npos);
    CHECK(conninfo_overrides(config) ==
          std::vector<std::string>{"connect_timeout=7", "options=-c lock_timeout=5s"});
}

TEST_CASE("a session plans a statement once, and a load's statements as PostgreSQL chooses") {
    migrated_schema db;
    database_config config{"", db.name()};
    database_connection connection(config);
    CHECK(show(connection.get(), "plan_cache_mode") == "force_generic_plan");
    // The ledger's plan statement, run as a cycle runs it: planned once.
    for (int i = 0; i < 3; ++i) read_ledger(connection.get(), db.name(), "M1", date_criteria{});
    auto plans = [&](const std::string& statement) {
        pqxx::nontransaction tx{connection.get()};
        return tx.exec1("SELECT generic_plans || '/' || custom_plans FROM pg_prepared_statements WHERE name = " +
                        tx.quote(statement))[0].as<std::string>();
    };
    CHECK(plans("plan_windows") == "3/0");
    {
        // A load's transaction: the server's own choice, for it only.
        pqxx::work tx{connection.get()};
        sql::exec1(tx, sql::window_loader::begin_load, db.name(), std::string("M1"), std::int64_t{0}, false);
        CHECK(tx.exec1("SHOW plan_cache_mode")[0].as<std::string>() == "auto");
        tx.commit();
    }
    CHECK(show(connection.get(), "plan_cache_mode") == "force_generic_plan");
    // A setting the conninfo makes wins here too.
    config.conninfo = "options='-c plan_cache_mode=auto'";
    database_connection chosen(config);
    CHECK(show(chosen.get(), "plan_cache_mode") == "auto");
}

TEST_CASE("a database that stops answering mid-call fails the call within its limit with a clear error") {
    proxied_database db;
    database_connection connection(db.config);
    with_deadline(connection, 10s, [](pqxx::connection& c) { pqxx::nontransaction{c}.exec1("SELECT 1"); });
    db.proxy.blackhole();
    try {
        with_deadline(connection, 1s, [](pqxx::connection& c) { pqxx::nontransaction{c}.exec1("SELECT 1"); });
        FAIL("a call to a database that does not answer returned");
    } catch (const no_answer_error& error) {
        CHECK_THAT(error.what(), Catch::Contains("did not answer within 1s"));
        const auto classified = classify_database_error(error, "");
        REQUIRE(classified);
        CHECK(classified->kind == failure_kind::database_lost);
    }
    db.proxy.heal();
}

TEST_CASE("a database port that accepts connections and never answers fails to open within connect_timeout") {
    proxied_database db;
    db.proxy.blackhole();
    try {
        database_connection connection(db.config);
        FAIL("a connection opened to a database that does not answer");
    } catch (const database_unreachable& error) {
        CHECK_THAT(error.what(), Catch::StartsWith("PostgreSQL is unreachable: "));
        CHECK_THAT(error.what(), Catch::Contains("database.connect_timeout 2s"));
    }
    db.proxy.heal();
}

TEST_CASE("the pool cuts a call the database does not answer, and works again once the path heals") {
    proxied_database db;
    boost::asio::io_context io;
    db_workers workers(io.get_executor(), db.config, 1, 1);
    auto call = [&](std::chrono::milliseconds limit) {
        return run(io, [&]() -> boost::asio::awaitable<void> {
            db_workers::session session = co_await workers.checkout();
            co_await session.run([](pqxx::connection& c) { pqxx::nontransaction{c}.exec1("SELECT 1"); }, limit);
        }());
    };
    call(10s);
    db.proxy.blackhole();
    try {
        call(1s);
        FAIL("a call to a database that does not answer returned");
    } catch (const database_error& error) {
        CHECK(error.failure().kind == failure_kind::database_lost);
        CHECK_THAT(error.what(), Catch::Contains("did not answer within 1s"));
    }
    CHECK_FALSE(workers.stalled());  // the cut call ended: the workers make progress
    db.proxy.heal();
    CHECK_NOTHROW(call(10s));
    workers.stop();
}

TEST_CASE("a pinned session's closed connection fails the next call, so what was built on it goes first") {
    pool_case pool;
    auto& [db, io, config] = pool;
    db_workers workers(io.get_executor(), config, 1, 1);
    const pqxx::connection* first = nullptr;
    const pqxx::connection* second = nullptr;
    std::unique_ptr<pqxx::work> built;  // a loader's transaction, kept across calls
    std::optional<failure_kind> failed;
    run(io, [&]() -> boost::asio::awaitable<void> {
        db_workers::session session = co_await workers.checkout();
        co_await session.run([&](pqxx::connection& c) {
            first = &c;
            built = std::make_unique<pqxx::work>(c);
            built->exec1("SELECT 1");
        });
        session.pin();
        kill_sessions(db.application_name());  // as a restart of the server would
        try {
            co_await session.run([&](pqxx::connection& c) {
                second = &c;
                try {
                    built->exec1("SELECT 1");
                } catch (...) {
                    built.reset();  // on the pool thread, while its connection exists
                    throw;
                }
            });
        } catch (const database_error& error) {
            failed = error.failure().kind;
        }
    }());
    CHECK(second == first);  // not replaced under the transaction
    CHECK_FALSE(built);
    CHECK(failed == failure_kind::database_lost);
    workers.stop();
}

TEST_CASE("a pooled connection the server closed is replaced before it costs a call") {
    pool_case pool;
    auto& [db, io, config] = pool;
    db_workers workers(io.get_executor(), config, 1, 1);
    auto backend = [&] {
        int pid = 0;
        run(io, [&]() -> boost::asio::awaitable<void> {
            db_workers::session session = co_await workers.checkout();
            co_await session.run([&](pqxx::connection& c) { pid = pqxx::nontransaction{c}.exec1("SELECT pg_backend_pid()")[0].as<int>(); });
        }());
        return pid;
    };
    const int first = backend();
    kill_sessions(db.application_name());  // as a restart of the server would
    int second = 0;
    CHECK_NOTHROW(second = backend());
    CHECK(second != first);
    workers.stop();
}

TEST_CASE("a session's calls run on a thread of its own, and sessions at once on threads apart") {
    pool_case pool;
    auto& [db, io, config] = pool;
    db_workers workers(io.get_executor(), config, 3, 2);
    std::vector<std::thread::id> first, second, later;
    run(io, [&]() -> boost::asio::awaitable<void> {
        db_workers::session a = co_await workers.checkout();
        db_workers::session b = co_await workers.checkout();
        for (int i = 0; i < 20; ++i) {
            co_await a.run([&](pqxx::connection&) { first.push_back(std::this_thread::get_id()); });
            co_await b.run([&](pqxx::connection&) { second.push_back(std::this_thread::get_id()); });
        }
    }());
    // The sessions were given back; a new one takes a free thread.
    run(io, [&]() -> boost::asio::awaitable<void> {
        db_workers::session c = co_await workers.checkout();
        for (int i = 0; i < 5; ++i) {
            co_await c.run([&](pqxx::connection&) { later.push_back(std::this_thread::get_id()); });
        }
    }());
    auto one_thread = [](const std::vector<std::thread::id>& ids) {
        return std::set<std::thread::id>(ids.begin(), ids.end()).size() == 1;
    };
    CHECK(one_thread(first));
    CHECK(one_thread(second));
    CHECK(one_thread(later));
    CHECK(first.front() != second.front());
    CHECK(first.front() != std::this_thread::get_id());
    CHECK(workers.calls() == 45);
    workers.stop();
}

namespace {

int backend_pid(pqxx::connection& connection) {
    return pqxx::nontransaction{connection}.exec1("SELECT pg_backend_pid()")[0].as<int>();
}

// Starts `count` coroutines at once on `io`, each checking out a session and
// running `sql` (if any) on it, runs them all to their end and returns the
// server processes they ran on.
std::set<int> backends_of_checkouts_at_once(boost::asio::io_context& io, db_workers& workers, int count,
                                            const std::string& sql = {}) {
    std::mutex mutex;
    std::set<int> backends;
    for (int i = 0; i < count; ++i) {
        boost::asio::co_spawn(
            io,
            [&]() -> boost::asio::awaitable<void> {
                db_workers::session session = co_await workers.checkout();
                co_await session.run([&](pqxx::connection& c) {
                    if (!sql.empty()) pqxx::nontransaction{c}.exec(sql);
                    const int pid = backend_pid(c);
                    std::lock_guard lock(mutex);
                    backends.insert(pid);
                });
            },
            boost::asio::detached);
    }
    io.restart();
    io.run();
    return backends;
}

}  // namespace

TEST_CASE("a burst of short calls shares the connections the pool has instead of opening one a call") {
    pool_case pool;
    auto& [db, io, config] = pool;
    db_workers workers(io.get_executor(), config, 8, 8);
    // Eight calls at once, as a re-run's confirmations arrive: without the
    // wait for a connection to come back, each opened one of its own.
    const std::set<int> backends = backends_of_checkouts_at_once(io, workers, 8);
    INFO("connections opened: " << workers.connections_opened());
    CHECK(workers.connections_opened() <= 3);
    CHECK(backends.size() == workers.connections_opened());
    workers.stop();
}

TEST_CASE("calls that keep their connections busy still grow the pool to its bound") {
    pool_case pool;
    auto& [db, io, config] = pool;
    db_workers workers(io.get_executor(), config, 3, 3);
    const std::set<int> backends = backends_of_checkouts_at_once(io, workers, 3, "SELECT pg_sleep(0.5)");
    CHECK(workers.connections_opened() == 3);
    CHECK(backends.size() == 3);
    workers.stop();
}

TEST_CASE("the pool counts its checkouts, those waiting for a session and how long they waited") {
    pool_case pool;
    auto& [db, io, config] = pool;
    db_workers workers(io.get_executor(), config, 2, 2);
    auto stats = std::make_shared<wait_stats>();
    workers.count_checkouts(stats);
    // Four at once on a pool of two, each holding its session 0.2 s: two
    // wait for a slot, and while they do the gauge says so.
    std::vector<std::uint64_t> waiting_seen;
    for (int i = 0; i < 4; ++i) {
        boost::asio::co_spawn(
            io,
            [&]() -> boost::asio::awaitable<void> {
                db_workers::session session = co_await workers.checkout();
                co_await session.run([](pqxx::connection& c) { pqxx::nontransaction{c}.exec("SELECT pg_sleep(0.2)"); });
                waiting_seen.push_back(stats->waiting.load());
            },
            boost::asio::detached);
    }
    io.run();
    CHECK(stats->started == 4);
    CHECK(stats->waiting == 0);
    REQUIRE(waiting_seen.size() == 4);
    // The first two end with the other two waiting for their slots.
    CHECK(waiting_seen[0] + waiting_seen[1] >= 2);
    // Two waits of a call each (0.2 s, or a connection's start beside it).
    CHECK(stats->wait_microseconds >= 2 * 190'000);
    CHECK(stats->wait_microseconds < 2'000'000);
    // A checkout that finds a connection idle does not wait.
    const auto waited = stats->wait_microseconds.load();
    run(io, [&]() -> boost::asio::awaitable<void> {
        db_workers::session session = co_await workers.checkout();
        co_await session.run([](pqxx::connection& c) { pqxx::nontransaction{c}.exec("SELECT 1"); });
    }());
    CHECK(stats->started == 5);
    CHECK(stats->wait_microseconds == waited);
    workers.stop();
}

TEST_CASE("a connection handed to the pool serves its first session") {
    pool_case pool;
    auto& [db, io, config] = pool;
    db_workers workers(io.get_executor(), config, 1, 1);
    auto connection = std::make_unique<database_connection>(config);
    const int adopted = backend_pid(connection->get());
    workers.adopt(std::move(connection));
    int used = 0;
    run(io, [&]() -> boost::asio::awaitable<void> {
        db_workers::session session = co_await workers.checkout();
        co_await session.run([&](pqxx::connection& c) { used = backend_pid(c); });
    }());
    CHECK(used == adopted);
    CHECK(workers.connections_opened() == 1);
    workers.stop();
}

TEST_CASE("a proxy with a delay adds it each way to every round trip, and still passes a large result whole") {
    require_database_environment();
    tcp_proxy proxy{"127.0.0.1", static_cast<std::uint16_t>(std::atoi(std::getenv("PGPORT"))), 0, 40ms};
    database_config config;
    config.conninfo = "host=127.0.0.1 port=" + std::to_string(proxy.port());
    database_connection connection(config);
    // A round trip waits for the delay both ways: at least 80 ms, however
    // fast the machine (a lower bound only).
    for (int i = 0; i < 3; ++i) {
        const auto started = std::chrono::steady_clock::now();
        with_deadline(connection, 10s, [](pqxx::connection& c) { pqxx::nontransaction{c}.exec1("SELECT 1"); });
        CHECK(std::chrono::steady_clock::now() - started >= 80ms);
    }
    // Pieces keep flowing while earlier ones wait: 2 MB arrive in order and
    // whole, not one piece a delay.
    const auto started = std::chrono::steady_clock::now();
    std::string text;
    with_deadline(connection, 10s, [&](pqxx::connection& c) {
        text = pqxx::nontransaction{c}.exec1("SELECT string_agg(lpad(i::text, 8, '0'), '') FROM generate_series(1, 250000) i")[0]
                   .as<std::string>();
    });
    REQUIRE(text.size() == 2'000'000);
    CHECK(text.substr(0, 16) == "0000000100000002");
    CHECK(text.substr(text.size() - 8) == "00250000");
    // Some 120 pieces of 16 KiB, each waiting the delay in turn, would take
    // 4.8 s or more; passed on together, about 0.1 s.
    CHECK(std::chrono::steady_clock::now() - started < 2500ms);
}
