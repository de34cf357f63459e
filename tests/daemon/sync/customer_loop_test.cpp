// One tick of a customer on the real PostgreSQL and the fake Vitec server:
// what it plans, fetches and records; how a 401 parks the customer; how a
// cycle ended by an exception is logged with its kind and backed off; and how
// the scheduler hands out turns through the cycle gate.

#include "sync/run_state.hpp"

#include "sync/lease_keeper.hpp"
#include "sync_fixture.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <catch2/catch.hpp>
#include <date/tz.h>

#include <algorithm>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

using namespace comeback;
using namespace comeback::test;
using namespace std::chrono_literals;

namespace {

date::local_days today() {
    const auto& zone = find_zone("Europe/Stockholm");
    return std::chrono::floor<date::days>(zone.to_local(std::chrono::system_clock::now()));
}

std::string day_text(date::local_days day) { return date::format("%F", day); }

// A fake server with comebacks three weeks either side of today, and a
// customer planned in weeks: one or two fresh windows around today and three
// weeks of history.
std::vector<std::string> around_today() {
    return {"--rows-per-customer", "300", "--from", day_text(today() - date::days{21}), "--to",
            day_text(today() + date::days{21})};
}

struct tick_fixture : sync_fixture {
    explicit tick_fixture(const std::vector<std::string>& server_args = around_today())
        : sync_fixture(server_args), leases(workers, db.name(), [](const std::string&) { return false; }) {
        cfg.sync.window = date::days{7};
        cfg.sync.lookback = date::days{3};
        cfg.sync.horizon = date::days{3};
        cfg.sync.history_start = date::year_month_day{today() - date::days{21}};
        leases.set_customers({"M1"});
        run(io, leases.round());
        state.client = std::make_shared<vitec_client>(io.get_executor(), cfg.vitec);
        state.db = &workers;
        state.confirmations = &confirmations;
        state.leases = &leases;
        state.shutdown = &shutdown;
        state.metrics = &metrics;
        state.once = true;
        sync_settings_changed();
    }
    // Each tick reads the configuration state holds, as after a reload.
    void sync_settings_changed() { state.cfg = std::make_shared<const config>(cfg); }

    cycle_result tick() { return run(io, run_one_tick(state, "M1")); }

    std::vector<ledger_entry> ledger() {
        return read_ledger(db.connection(), db.name(), "M1", cfg.sync.date_criteria);
    }

    lease_keeper leases;
    run_state state;
};

// Log lines written while `body` runs, through a logger on a string stream.
template <class F>
std::string captured_log(F body) {
    auto previous = spdlog::default_logger();
    std::ostringstream out;
    auto logger = std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
    logger->set_pattern("%v");
    spdlog::set_default_logger(logger);
    body();
    spdlog::set_default_logger(previous);
    return out.str();
}

// M1's turns under a scheduler of its own, until (--once) they stop.
void run_turns(tick_fixture& f) {
    customer_scheduler turns(f.state, {});
    turns.add("M1");
    run(f.io, turns.run());
    CHECK(turns.looping() == 0);
}

}  // namespace

TEST_CASE("one tick plans the customer's windows, fetches every due one and leaves them complete") {
    tick_fixture f;
    REQUIRE(f.leases.held("M1"));
    const cycle_result first = f.tick();

    CHECK_FALSE(first.failed);
    CHECK_FALSE(first.removed);
    const auto entries = f.ledger();
    REQUIRE(entries.size() >= 4);  // three weeks of history and the fresh window(s)
    for (const ledger_entry& entry : entries) {
        INFO(day_text(entry.first_day));
        CHECK(entry.status == "complete");
    }
    CHECK(f.state.totals.windows_ok == entries.size());
    CHECK(f.state.totals.windows_failed == 0);
    CHECK(f.comebacks() > 0);
    CHECK(f.requests("rows") == entries.size());
    REQUIRE(first.next_fresh_due);  // the fresh windows are due again one poll interval on

    // Right after, nothing is due: the second tick fetches nothing.
    const cycle_result second = f.tick();
    CHECK_FALSE(second.failed);
    CHECK(f.state.totals.windows_ok == entries.size());
    CHECK(f.requests("rows") == entries.size());
}

TEST_CASE("a tick that meets a 401 parks the customer and stops its cycle at that window") {
    tick_fixture f;
    f.server.control("/_control/fault?count=100&spec=status=401");
    const cycle_result result = f.tick();

    CHECK(result.failed);
    CHECK(f.state.customers["M1"].backoff.parked(std::chrono::floor<std::chrono::seconds>(
        std::chrono::system_clock::now())));
    CHECK(f.state.totals.windows_failed == 1);  // no further window once parked
    CHECK(f.server.stats().at("requests").as_int64() == 1);
    REQUIRE(f.state.totals.failures.recent().size() == 1);
    CHECK(f.state.totals.failures.recent()[0].kind == "credentials_rejected");
    CHECK(f.requests("credentials_rejected") == 1);
}

TEST_CASE("a cycle the database refuses ends with customer.cycle_failed naming the kind, and the customer backs off") {
    tick_fixture f;
    f.exec("DROP TABLE " + f.db.quoted() + ".sync_windows CASCADE");
    const std::string log = captured_log([&] { run_turns(f); });

    CHECK(f.state.totals.cycles_failed == 1);
    CHECK(f.state.customers["M1"].backoff.failed_cycles == 1);
    INFO(log);
    CHECK(log.find("customer.cycle_failed customer=M1 kind=database_refused") != std::string::npos);
    CHECK(log.find("comeback-sync migrate") != std::string::npos);
}

TEST_CASE("a programming error reaches the customer loop, is logged with its kind, and the customer backs off") {
    tick_fixture f;
    // load_config refuses an unknown zone: meeting one here is a bug.
    f.cfg.vitec.timezone = "Nowhere/Nothing";
    f.sync_settings_changed();
    const std::string log = captured_log([&] { run_turns(f); });

    CHECK(f.state.totals.cycles_failed == 1);
    CHECK(f.state.customers["M1"].backoff.failed_cycles == 1);
    CHECK_FALSE(f.state.customers["M1"].busy);
    INFO(log);
    CHECK(log.find("customer.cycle_failed customer=M1 kind=internal_error") != std::string::npos);
    CHECK(log.find("Nowhere/Nothing") != std::string::npos);
}

TEST_CASE("windows that come back empty are held, listed and shown by the windows_held gauge until a load releases them") {
    tick_fixture f;
    f.tick();
    const std::size_t stored = f.comebacks();
    // Every window due again now, whatever the clock says.
    auto all_due = [&] {
        f.exec("UPDATE " + f.db.quoted() +
               ".sync_windows SET fetched_at = fetched_at - interval '1 day', attempted_at = attempted_at - interval '1 day'");
    };
    auto gauge = [&] { return metric_value(f.metrics, "comeback_sync_windows_held{customer=\"M1\"}"); };
    CHECK(gauge() == 0);

    all_due();
    f.server.control("/_control/fault?count=100&spec=empty");
    const cycle_result emptied = f.tick();
    const auto held = f.state.totals.windows_held;
    REQUIRE(held >= 1);  // the fresh windows around today
    CHECK_FALSE(emptied.failed);
    CHECK(f.state.totals.windows_failed == 0);
    CHECK(gauge() == static_cast<double>(held));
    CHECK(f.windows("held") == static_cast<double>(held));
    CHECK(f.comebacks() == stored);
    REQUIRE(f.state.totals.held.recent().size() == held);
    CHECK_THAT(f.state.totals.held.recent()[0].error, Catch::StartsWith("held: the load would soft-delete"));
    std::size_t held_in_ledger = 0;
    for (const ledger_entry& entry : f.ledger()) held_in_ledger += entry.status == "held";
    CHECK(held_in_ledger == held);

    // The full responses again: the held windows confirm their last load and are released.
    f.server.control("/_control/reset");
    all_due();
    f.tick();
    CHECK(gauge() == 0);
    for (const ledger_entry& entry : f.ledger()) CHECK(entry.status == "complete");
    CHECK(f.comebacks() == stored);
}

TEST_CASE("a customer whose window waits to retry steps out of the cycle gate, and another gets in meanwhile") {
    tick_fixture f;
    f.cfg.vitec.retry.base_delay = 200ms;
    f.sync_settings_changed();
    cycle_gate gate(f.io.get_executor(), 1);
    f.state.gate = &gate;
    // The first request fails as a 502 (retried); every other one succeeds.
    f.server.control("/_control/fault?count=1&spec=status=502");

    bool tick_done = false;
    bool other_got_in_during_tick = false;
    cycle_result result;
    boost::asio::co_spawn(f.io, [&]() -> boost::asio::awaitable<void> {
        cycle_gate::pass pass = co_await gate.enter();
        result = co_await run_one_tick(f.state, "M1", &pass);
        CHECK(pass.inside());  // back in before its next attempt, and still in at the end
        tick_done = true;
    }, boost::asio::detached);
    boost::asio::co_spawn(f.io, [&]() -> boost::asio::awaitable<void> {
        cycle_gate::pass pass = co_await gate.enter();
        other_got_in_during_tick = !tick_done;
    }, boost::asio::detached);
    f.io.restart();
    f.io.run();

    CHECK(tick_done);
    CHECK(other_got_in_during_tick);
    CHECK_FALSE(result.failed);
    CHECK(f.requests("transient") == 1);
    CHECK(gate.peak() == 1);
    CHECK(gate.inside() == 0);
}

TEST_CASE("the scheduler lets due customers through the gate one turn each, and between turns a customer is only a queue entry") {
    std::vector<std::string> two_customers = around_today();
    two_customers.insert(two_customers.end(), {"--customers", "M1,M2"});
    tick_fixture f(two_customers);
    f.leases.set_customers({"M1", "M2"});
    run(f.io, f.leases.round());
    customer_config second = f.customer();
    second.id = "M2";
    f.cfg.customers.push_back(second);
    f.state.once = false;
    f.cfg.sync.poll_interval = std::chrono::hours(1);
    f.sync_settings_changed();
    cycle_gate gate(f.io.get_executor(), 1);
    f.state.gate = &gate;
    bool all_stopped = false;
    customer_scheduler turns(f.state, [&] { all_stopped = true; });
    turns.add("M1");
    turns.add("M2");
    turns.add("M1");  // already has turns ahead: nothing
    CHECK(turns.looping() == 2);

    auto complete = [&](const std::string& id) {
        const auto ledger = read_ledger(f.db.connection(), f.db.name(), id, f.cfg.sync.date_criteria);
        return !ledger.empty() &&
               std::all_of(ledger.begin(), ledger.end(), [](const ledger_entry& e) { return e.status == "complete"; });
    };
    bool idle_between_turns = false;
    std::size_t most_running = 0;
    boost::asio::co_spawn(f.io, turns.run(), boost::asio::detached);
    boost::asio::co_spawn(f.io, [&]() -> boost::asio::awaitable<void> {
        boost::asio::steady_timer tick(f.io);
        for (int i = 0; i < 3000; ++i) {  // 30 s at most
            most_running = std::max(most_running, turns.turns_running());
            if (turns.turns_running() == 0 && complete("M1") && complete("M2")) {
                // Both had their turn and wait an hour for the next: no coroutine of theirs is left.
                idle_between_turns = turns.looping() == 2 && gate.inside() == 0;
                break;
            }
            tick.expires_after(10ms);
            co_await tick.async_wait(boost::asio::use_awaitable);
        }
        f.shutdown.trigger();
    }, boost::asio::detached);
    f.io.restart();
    f.io.run();

    INFO("M1 complete " << complete("M1") << ", M2 complete " << complete("M2") << ", windows failed "
                         << f.state.totals.windows_failed);
    CHECK(idle_between_turns);
    CHECK(most_running == 1);  // the gate's one place
    CHECK(gate.peak() == 1);
    CHECK(turns.looping() == 0);  // the shutdown stopped both where they waited
    CHECK(all_stopped);
    CHECK_FALSE(f.state.customers["M1"].looping);
    CHECK_FALSE(f.state.customers["M2"].looping);
}

TEST_CASE("a customer taken out of the configuration stops, though another instance holds its lease") {
    tick_fixture f;
    f.state.once = false;
    bool all_stopped = false;
    customer_scheduler turns(f.state, [&] { all_stopped = true; });
    turns.add("M2");  // not configured, and its lease not held here
    std::size_t looping_after_a_while = 1;
    boost::asio::co_spawn(f.io, turns.run(), boost::asio::detached);
    boost::asio::co_spawn(f.io, [&]() -> boost::asio::awaitable<void> {
        boost::asio::steady_timer wait(f.io);
        wait.expires_after(300ms);
        co_await wait.async_wait(boost::asio::use_awaitable);
        looping_after_a_while = turns.looping();
        f.shutdown.trigger();
    }, boost::asio::detached);
    f.io.restart();
    f.io.run();

    CHECK(looping_after_a_while == 0);  // stopped on its first turn, not queued again
    CHECK(all_stopped);
    CHECK_FALSE(f.state.customers["M2"].looping);
}

TEST_CASE("a configuration's customers are found by id, and a reloaded configuration is looked up afresh") {
    auto with_customers = [](std::initializer_list<const char*> ids) {
        auto cfg = std::make_shared<config>();
        for (const char* id : ids) {
            customer_config customer;
            customer.id = id;
            cfg->customers.push_back(customer);
        }
        return std::shared_ptr<const config>(std::move(cfg));
    };
    customer_lookup lookup;
    const auto first = with_customers({"M3", "M1", "M20", "M2"});
    for (const customer_config& customer : first->customers) {
        INFO(customer.id);
        CHECK(lookup.find(first, customer.id) == &customer);
    }
    CHECK(lookup.find(first, "M4") == nullptr);
    CHECK(lookup.find(first, "M") == nullptr);
    CHECK(lookup.find(nullptr, "M1") == nullptr);
    // SIGHUP replaces the configuration whole: M4 added, M3 removed.
    const auto reloaded = with_customers({"M1", "M20", "M2", "M4"});
    CHECK(lookup.find(reloaded, "M3") == nullptr);
    CHECK(lookup.find(reloaded, "M4") == &reloaded->customers.back());
    CHECK(lookup.find(first, "M3") == &first->customers.front());
}
