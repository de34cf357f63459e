#include "sync/db_workers.hpp"

#include "load/database_failure.hpp"
#include "sync/database.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <pqxx/pqxx>

#include <algorithm>
#include <atomic>
#include <deque>
#include <mutex>
#include <set>
#include <vector>

namespace comeback {

namespace asio = boost::asio;
using slot_channel = asio::experimental::channel<void(boost::system::error_code)>;
using steady = std::chrono::steady_clock;

namespace {

// How long a checkout that finds every open connection out waits for one to
// come back before it opens another, and how far apart the pool opens new
// connections while it grows. A new connection costs the server a process,
// its start and its cold catalog caches (tens of milliseconds of its CPU,
// more than most calls take): short calls in bursts (a re-run's
// confirmations) share the connections there are instead of opening the
// whole pool at once, while sustained demand (first loads) still grows it to
// its bound within a second (pool_size tenths). Measured on a forced re-run of
// 250 windows: a pool of 6 opened all 6 with no wait, 5 or 6 with waits of 20
// to 50 ms, and 2 with a tenth of a second, its server's CPU halved.
constexpr auto reuse_wait = std::chrono::milliseconds(100);

}  // namespace

// One run() call, shared by the pool thread doing it and the deadline timer
// on the I/O thread.
struct db_workers::call_state {
    std::mutex mutex;
    std::chrono::milliseconds limit{0};
    bool started = false;
    bool finished = false;
    steady::time_point started_at;
    database_connection* connection = nullptr;  // while `work` runs on it
};

struct db_workers::shared_state {
    shared_state(asio::any_io_executor io, database_config config, std::size_t threads,
                 std::size_t connections)
        : config(std::move(config)), slots(io, connections) {
        threads = std::max<std::size_t>(threads, 1);
        lanes.reserve(threads);
        for (std::size_t i = 0; i < threads; ++i) {
            lanes.push_back(std::make_unique<asio::thread_pool>(1));
            free_lanes.push_back(threads - 1 - i);
        }
    }

    database_config config;
    // A thread each, and a session has one to itself while it lives: its
    // calls go straight to that thread. One pool of all threads woke several
    // of them for each call (each took the pool's lock and found the work
    // gone), about ten futex calls and as many context switches a re-fetch.
    std::vector<std::unique_ptr<asio::thread_pool>> lanes;
    // A counting semaphore: a slot is taken by sending into the buffer and
    // given back by receiving from it. Touched from the io_context only.
    slot_channel slots;
    std::mutex idle_mutex;  // connections come back from pool threads too
    std::vector<std::unique_ptr<database_connection>> idle;
    std::vector<std::size_t> free_lanes;  // under idle_mutex
    std::size_t next_shared_lane = 0;     // under idle_mutex
    // Counted sessions alive, and the checkouts waiting for one of them to
    // give its connection back (reuse_wait). Touched from the io_context only.
    std::size_t out = 0;
    std::deque<asio::steady_timer*> reuse_waiters;
    steady::time_point last_growth{};  // when a checkout last went without a connection
    std::shared_ptr<wait_stats> stats;  // the checkouts and their waits; null: not counted

    // Waits until a session gives a connection back, or `until`.
    asio::awaitable<void> wait_for_a_returned_connection(steady::time_point until) {
        asio::steady_timer timer(co_await asio::this_coro::executor, until);
        reuse_waiters.push_back(&timer);
        // Also when the frame is destroyed mid-wait: no pointer outlives the timer.
        struct leave {
            std::deque<asio::steady_timer*>& waiters;
            asio::steady_timer* timer;
            ~leave() { std::erase(waiters, timer); }
        } leaving{reuse_waiters, &timer};
        co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    // A connection came back to `idle`: the longest waiting checkout takes it.
    void wake_a_waiter() {
        if (reuse_waiters.empty()) return;
        asio::steady_timer* first = reuse_waiters.front();
        reuse_waiters.pop_front();
        first->cancel();
    }

    // A lane of its own for a new session, under idle_mutex. With more
    // sessions than threads (never, as run and backfill size them) the
    // extra ones share lanes in turn: correct, only slower.
    void take_lane(session& taken) {
        if (!free_lanes.empty()) {
            taken.lane_ = free_lanes.back();
            free_lanes.pop_back();
            taken.owns_lane_ = true;
        } else {
            taken.lane_ = next_shared_lane++ % lanes.size();
            taken.owns_lane_ = false;
        }
    }

    std::atomic<std::uint64_t> calls_made{0};  // run() calls handed to a pool thread
    std::atomic<std::uint64_t> connections{0};  // opened by sessions, or adopted
    mutable std::mutex calls_mutex;
    std::set<std::shared_ptr<call_state>> running;  // calls whose work has started

    void started(const std::shared_ptr<call_state>& call) {
        {
            std::lock_guard lock(call->mutex);
            call->started = true;
            call->started_at = steady::now();
        }
        std::lock_guard lock(calls_mutex);
        running.insert(call);
    }
    void finished(const std::shared_ptr<call_state>& call) {
        {
            std::lock_guard lock(call->mutex);
            call->finished = true;
            call->connection = nullptr;
        }
        std::lock_guard lock(calls_mutex);
        running.erase(call);
    }
};

db_workers::db_workers(asio::any_io_executor io, database_config config, std::size_t threads,
                       std::size_t connections)
    : state_(std::make_shared<shared_state>(std::move(io), std::move(config), threads,
                                            connections)) {}

db_workers::~db_workers() { stop(); }

void db_workers::stop() {
    for (auto& lane : state_->lanes) lane->stop();
    for (auto& lane : state_->lanes) lane->join();
}

const database_config& db_workers::config() const { return state_->config; }

std::uint64_t db_workers::calls() const { return state_->calls_made.load(std::memory_order_relaxed); }

std::uint64_t db_workers::connections_opened() const {
    return state_->connections.load(std::memory_order_relaxed);
}

std::optional<std::string> db_workers::stalled(steady::time_point now) const {
    // A cut call ends within moments; one still running a connect timeout
    // later than its limit did not answer to the cut either.
    const auto grace = std::chrono::duration_cast<std::chrono::milliseconds>(state_->config.timeouts.connect_timeout);
    std::lock_guard lock(state_->calls_mutex);
    for (const auto& call : state_->running) {
        std::lock_guard call_lock(call->mutex);
        const auto ran = std::chrono::duration_cast<std::chrono::milliseconds>(now - call->started_at);
        if (!call->finished && ran > call->limit + grace) {
            return "a database call has run " + std::to_string(ran.count() / 1000) + "s, past its limit of " +
                   std::to_string(call->limit.count() / 1000) + "s, and did not end when its connection was cut";
        }
    }
    return std::nullopt;
}

asio::awaitable<db_workers::session> db_workers::checkout() {
    // Counted while it waits for a slot or for a connection to come back,
    // however the wait ends (the frame may be destroyed while suspended).
    std::optional<counted_wait> counted;
    if (!state_->slots.try_send(boost::system::error_code{})) {
        counted.emplace(state_->stats);
        co_await state_->slots.async_send(boost::system::error_code{}, asio::use_awaitable);
    }
    session taken;
    taken.state_ = state_;
    taken.counted_ = true;
    ++state_->out;
    auto take_idle = [&] {
        std::lock_guard lock(state_->idle_mutex);
        if (state_->idle.empty()) return false;
        taken.connection_ = std::move(state_->idle.back());
        state_->idle.pop_back();
        return true;
    };
    // Every open connection is out: one coming back soon is cheaper than a
    // new one, and the pool grows one connection per reuse_wait (above). A
    // session alone has nothing to wait for.
    const auto entered = steady::now();
    while (!take_idle() && state_->out > 1) {
        const auto until = std::max(entered, state_->last_growth) + reuse_wait;
        if (steady::now() >= until) break;
        if (!counted) counted.emplace(state_->stats);
        co_await state_->wait_for_a_returned_connection(until);
    }
    counted.reset();
    if (state_->stats) ++state_->stats->started;
    if (!taken.connection_) state_->last_growth = steady::now();  // it opens one at its first run()
    std::lock_guard lock(state_->idle_mutex);
    state_->take_lane(taken);
    co_return taken;
}

void db_workers::adopt(std::unique_ptr<database_connection> connection) {
    if (!connection) return;
    state_->connections.fetch_add(1, std::memory_order_relaxed);
    {
        std::lock_guard lock(state_->idle_mutex);
        state_->idle.push_back(std::move(connection));
    }
    state_->wake_a_waiter();
}

void db_workers::count_checkouts(std::shared_ptr<wait_stats> stats) { state_->stats = std::move(stats); }

db_workers::session db_workers::dedicated() {
    session taken;
    taken.state_ = state_;
    std::lock_guard lock(state_->idle_mutex);
    state_->take_lane(taken);
    return taken;
}

db_workers::session::session() = default;

db_workers::session::session(session&& other) noexcept
    : state_(std::move(other.state_)),
      connection_(std::move(other.connection_)),
      lane_(other.lane_),
      owns_lane_(std::exchange(other.owns_lane_, false)),
      counted_(std::exchange(other.counted_, false)),
      pinned_(std::exchange(other.pinned_, false)) {}

db_workers::session& db_workers::session::operator=(session&& other) noexcept {
    if (this != &other) {
        session dropped(std::move(*this));
        state_ = std::move(other.state_);
        connection_ = std::move(other.connection_);
        lane_ = other.lane_;
        owns_lane_ = std::exchange(other.owns_lane_, false);
        counted_ = std::exchange(other.counted_, false);
        pinned_ = std::exchange(other.pinned_, false);
    }
    return *this;
}

db_workers::session::~session() {
    if (!state_) return;
    bool returned = false;
    {
        std::lock_guard lock(state_->idle_mutex);
        if (connection_ && counted_) {
            state_->idle.push_back(std::move(connection_));
            returned = true;
        }
        if (owns_lane_) state_->free_lanes.push_back(lane_);
    }
    if (counted_) {
        --state_->out;
        state_->slots.try_receive([](boost::system::error_code) {});
        if (returned) state_->wake_a_waiter();
    }
}

bool db_workers::session::connection_lost() { return connection_ && !connection_->alive(); }

asio::awaitable<void> db_workers::session::run(std::function<void(pqxx::connection&)> work) {
    co_await run(std::move(work), call_limit(state_->config));
}

asio::awaitable<void> db_workers::session::run(std::function<void(pqxx::connection&)> work,
                                               std::chrono::milliseconds limit) {
    auto call = std::make_shared<call_state>();
    call->limit = limit;

    // The deadline, on the I/O thread. Only running calls are timed: one still
    // queued for a pool thread is looked at again a limit later.
    asio::steady_timer deadline(co_await asio::this_coro::executor);
    std::function<void(boost::system::error_code)> watch = [&, call](boost::system::error_code error) {
        if (error) return;  // the call ended first
        std::lock_guard lock(call->mutex);
        if (call->finished) return;
        auto wait = call->limit;
        if (call->started) {
            const auto left = call->started_at + call->limit - steady::now();
            if (left <= steady::duration::zero() && call->connection) {
                call->connection->cut();
                return;
            }
            // Still opening its connection (connect_timeout bounds that): look
            // again shortly, so the work that follows is cut in time too.
            wait = left > steady::duration::zero()
                       ? std::chrono::duration_cast<std::chrono::milliseconds>(left) + std::chrono::milliseconds(1)
                       : std::chrono::milliseconds(100);
        }
        deadline.expires_after(wait);
        deadline.async_wait(watch);
    };
    deadline.expires_after(limit);
    deadline.async_wait(watch);

    std::exception_ptr failed;
    co_await asio::co_spawn(
        state_->lanes[lane_]->get_executor(),
        [&]() -> asio::awaitable<void> {
            state_->started(call);
            state_->calls_made.fetch_add(1, std::memory_order_relaxed);
            try {
                // A pooled connection the server closed since (a restart, a
                // terminated backend) is replaced before it costs an attempt,
                // unless the caller's work still holds what it built on it (pin()).
                if (connection_ && !pinned_ && !connection_->alive()) connection_.reset();
                if (!connection_) {
                    connection_ = std::make_unique<database_connection>(state_->config);
                    state_->connections.fetch_add(1, std::memory_order_relaxed);
                }
                {
                    std::lock_guard lock(call->mutex);
                    call->connection = connection_.get();
                }
                work(connection_->get());
            } catch (...) {
                failed = std::current_exception();
            }
            state_->finished(call);
            co_return;
        },
        asio::use_awaitable);
    deadline.cancel();
    if (!failed) co_return;

    try {
        std::rethrow_exception(failed);
    } catch (const loaded_meanwhile&) {
        throw;  // the load rolled back: the connection is as it was
    } catch (const std::exception& error) {
        std::optional<failure> classified;
        if (connection_ && connection_->was_cut()) {
            classified = failure{failure_kind::database_lost, 0,
                                 connection_->description() + " did not answer within " +
                                     format_duration(limit) + "; the connection was closed",
                                 std::nullopt};
        } else {
            classified = classify_database_error(
                error, connection_ ? connection_->description() : std::string("the database"));
        }
        // Only a server that answered leaves the connection usable. Anything
        // else (a lost, cut or half-broken connection, a usage error
        // mid-protocol) leaves it in doubt: never reuse it.
        if (!classified || classified->kind == failure_kind::database_lost) connection_.reset();
        if (classified) throw database_error(std::move(*classified));
        throw;
    } catch (...) {
        connection_.reset();
        throw;
    }
}

}  // namespace comeback
