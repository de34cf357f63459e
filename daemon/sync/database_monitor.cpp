#include "sync/database_monitor.hpp"

#include "load/database_failure.hpp"
#include "load/probe.hpp"
#include "observability/logging.hpp"
#include "sync/database.hpp"

#include <pqxx/pqxx>

namespace comeback {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

// A probe connects (at most connect_timeout) and asks one question.
milliseconds probe_limit(const database_config& config) {
    return 2 * std::chrono::duration_cast<milliseconds>(config.timeouts.connect_timeout);
}

// How often database.unreachable repeats while the database stays down.
constexpr std::chrono::seconds log_every{60};

}  // namespace

database_monitor::database_monitor(asio::any_io_executor io, const database_config& config,
                                   shutdown_signal& shutdown, const db_workers* workers, listener on_probe)
    : config_(config),
      shutdown_(shutdown),
      workers_(workers),
      on_probe_(std::move(on_probe)),
      probe_workers_(std::move(io), config, 1, 1),
      session_(probe_workers_.dedicated()) {}

database_monitor::~database_monitor() {
    session_ = db_workers::session{};
    probe_workers_.stop();
}

asio::awaitable<void> database_monitor::keep_probing(bool answered_now) {
    bool go_on = true;
    if (answered_now) go_on = co_await shutdown_.sleep(config_.probe_interval, &probe_asked_);
    while (go_on) {
        asked_ = false;
        co_await probe_once();
        if (shutdown_.triggered()) {
            go_on = false;
        } else if (!asked_) {  // asked during that probe: the next one at once
            go_on = co_await shutdown_.sleep(config_.probe_interval, &probe_asked_);
        }
    }
}

asio::awaitable<void> database_monitor::probe_once() {
    const std::uint64_t sequence = ++started_;
    std::optional<std::string> trouble;
    try {
        co_await session_.run(
            [&](pqxx::connection& connection) { trouble = probe_database(connection); },
            probe_limit(config_));
    } catch (const std::exception& error) {
        trouble = error.what();
    }
    if (!trouble && workers_) trouble = workers_->stalled();
    report(!trouble, trouble.value_or(""));
    finished_ = sequence;
    probed_.wake();
}

void database_monitor::report(bool up, const std::string& reason) {
    const auto now = steady::now();
    const bool was_up = up_;
    if (up) {
        last_ok_ = clock::now();
        if (!was_up) {
            log_event(spdlog::level::info, "database.recovered",
                      {{"down_s", std::chrono::duration_cast<std::chrono::seconds>(now - down_since_).count()}});
        }
    } else {
        if (was_up) down_since_ = now;
        if (was_up || now - last_logged_ >= log_every) {
            last_logged_ = now;
            log_event(spdlog::level::err, "database.unreachable",
                      {{"down_s", std::chrono::duration_cast<std::chrono::seconds>(now - down_since_).count()},
                       {"error", reason}});
        }
    }
    up_ = up;
    reason_ = reason;
    if (on_probe_) on_probe_(up, reason, last_ok_);
    if (up && !was_up) {
        ++recoveries_;
        recovered_.wake();
    }
}

asio::awaitable<bool> database_monitor::wait_until_answering(milliseconds limit) {
    const auto until = steady::now() + limit;
    // A probe that began before this call may have missed what the caller
    // met: only one that begins after it counts.
    const std::uint64_t counts_from = started_ + 1;
    asked_ = true;
    probe_asked_.wake();
    for (;;) {
        if (finished_ >= counts_from && up_) co_return true;
        const auto left = std::chrono::duration_cast<milliseconds>(until - steady::now());
        if (left <= milliseconds::zero()) co_return false;
        if (!co_await shutdown_.sleep(left, &probed_)) co_return false;
    }
}

}  // namespace comeback
