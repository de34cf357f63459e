#pragma once
// What the parts of `run` share: the current configuration (replaced whole on
// SIGHUP), the client, the database workers, the leases, and per-customer
// state. Everything here is touched from the io_context thread only.

#include "config/config.hpp"
#include "plan/schedule.hpp"
#include "sync/cycle_gate.hpp"
#include "sync/response_hold.hpp"
#include "sync/shutdown.hpp"
#include "sync/summary.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace comeback {

class vitec_client;
class db_workers;
class confirmer;
class database_monitor;
class lease_keeper;
class shutdown_signal;
class metrics_registry;

struct customer_runtime {
    bool looping = false;  // it has turns ahead (customer_scheduler)
    bool busy = false;     // inside a window right now
    customer_backoff backoff;
};

struct run_totals {
    std::uint64_t windows_ok = 0;
    std::uint64_t windows_failed = 0;
    std::uint64_t windows_held = 0;   // held by the deletion guard
    std::uint64_t cycles_failed = 0;  // cycles ended by an exception (the database, a bug)
    std::uint64_t rows_seen = 0;
    std::uint64_t rows_changed = 0;
    failed_windows failures;
    failed_windows held;              // kind "held", the reason as the error
};

// A configuration's customers by id, sorted the first time a configuration is
// asked about: every turn looks its customer up, and a linear search of the
// list grew with the fleet (10,000 comparisons a turn at 10,000 customers).
class customer_lookup {
public:
    // The customer of `cfg` with that id, or null.
    const customer_config* find(const std::shared_ptr<const config>& cfg, std::string_view id);

private:
    std::shared_ptr<const config> of_;  // keeps the customers pointed to alive
    std::vector<const customer_config*> by_id_;
};

struct run_state {
    std::shared_ptr<const config> cfg;
    customer_lookup lookup;  // of cfg
    std::shared_ptr<vitec_client> client;
    db_workers* db = nullptr;
    confirmer* confirmations = nullptr;  // of db's schema
    database_monitor* database = nullptr;  // may be null: no waiting for the database
    lease_keeper* leases = nullptr;
    shutdown_signal* shutdown = nullptr;
    metrics_registry* metrics = nullptr;
    response_hold hold;  // responses held unparsed, over every customer
    cycle_gate* gate = nullptr;  // null: no bound on customers inside a cycle
    std::mt19937_64 rng{std::random_device{}()};
    bool once = false;  // run --once: one full cycle per customer, then stop
    std::map<std::string, customer_runtime> customers;
    run_totals totals;
};

// What one tick (cycle) of a customer did.
struct cycle_result {
    bool removed = false;       // the customer is no longer configured
    bool failed = false;        // some window failed
    bool more_history = false;  // history left because fresh work became due
    bool database_down = false; // a window lost the database: wait for it, not back off
    std::optional<sys_seconds> next_fresh_due;
};

// Exactly one tick for one customer: plan, read the ledger, fetch the due
// fresh windows nearest first, then history oldest first until fresh work is
// due again. `run --once` is this for every customer; customer_scheduler adds
// the waiting, back-off and jitter around it. Window failures are in the result
// and in state.totals. Throws database_error when the database fails while
// planning, and a window's programming error (after counting that window as
// failed).
// `pass`, when given, is the customer's place inside state.gate: its windows
// step out of it while they wait to retry.
boost::asio::awaitable<cycle_result> run_one_tick(run_state& state, const std::string& customer_id,
                                                  cycle_gate::pass* pass = nullptr);

// Turns of every customer `run` works, from one coroutine. A customer between
// turns is an entry in a queue ordered by when it is due, not a coroutine of
// its own with a timer, so a fleet's idle customers cost a few dozen bytes
// each; due customers enter state.gate (when set) in that order, and a turn
// is a coroutine only while it is inside.
//
// A turn is one cycle (run_one_tick) with what surrounds it: a customer whose
// lease this instance does not hold, or that is parked, only comes round
// again later. A turn never throws: a cycle ended by an exception (the
// database while planning, a programming error in a window) is logged as
// customer.cycle_failed with its kind, counted, and backed off like a cycle
// with a failed window. A cycle that lost the database (database_lost) is not
// backed off: the customer waits until the database answers again
// (state.database) and goes on at once. A customer stops at shutdown, when it
// is removed from the configuration, or (with --once) after one full cycle.
class customer_scheduler {
public:
    // `all_stopped` is told whenever the last customer with turns ahead stops.
    customer_scheduler(run_state& state, std::function<void()> all_stopped);

    // Starts the customer's turns, its first due now; nothing when it has
    // turns ahead already.
    void add(const std::string& customer_id);

    // Hands out the turns until shutdown, or, with --once, until every
    // customer has stopped. Customers still waiting then stop; turns running
    // end on their own.
    boost::asio::awaitable<void> run();

    std::size_t looping() const { return looping_; }              // customers with turns ahead
    std::size_t turns_running() const { return turns_running_; }  // of those, inside a turn now

private:
    using clock = std::chrono::steady_clock;
    struct entry {
        clock::time_point due;
        std::string customer_id;
        bool operator>(const entry& other) const { return due > other.due; }
    };

    void queue(clock::time_point due, std::string customer_id);
    boost::asio::awaitable<void> turn(std::string customer_id, cycle_gate::pass pass);
    void stopped(const std::string& customer_id);

    run_state& state_;
    std::function<void()> all_stopped_;
    std::priority_queue<entry, std::vector<entry>, std::greater<>> due_;
    wakeup sooner_;                            // an entry due before the scheduler's sleep ends
    std::optional<clock::time_point> asleep_;  // until when run() sleeps, while it does
    std::size_t looping_ = 0;
    std::size_t turns_running_ = 0;
};

// Uniform jitter of up to a tenth of `delay` added to it, so instances and
// customers started together drift apart.
std::chrono::milliseconds with_jitter(std::chrono::milliseconds delay, std::mt19937_64& rng);

}  // namespace comeback
