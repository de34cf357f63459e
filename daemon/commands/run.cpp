// `run`: keep every customer's windows fresh and fill history, until SIGTERM.
// Orchestration only; the per-customer cycles are in sync/customer_loop.cpp.

#include "commands/commands.hpp"

#include "exit_codes.hpp"
#include "fetch/vitec_client.hpp"
#include "load/migrations.hpp"
#include "observability/logging.hpp"
#include "observability/metrics.hpp"
#include "observability/metrics_server.hpp"
#include "observability/service_notify.hpp"
#include "sync/database.hpp"
#include "sync/db_workers.hpp"
#include "sync/lease_keeper.hpp"
#include "sync/run_state.hpp"
#include "sync/shutdown.hpp"
#include "sync/summary.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>
#include <iostream>

namespace comeback {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

std::vector<std::string> customer_ids(const config& cfg) {
    std::vector<std::string> ids;
    for (const auto& customer : cfg.customers) ids.push_back(customer.id);
    return ids;
}

void migrate_at_start(const config& cfg) {
    if (!cfg.database.auto_migrate) return;
    auto connection = open_database(cfg.database);
    const int applied = migrate(*connection, cfg.database.schema);
    log_event(spdlog::level::info, "migrate.done", {{"schema", cfg.database.schema}, {"applied", applied}});
}

std::size_t connection_count(const config& cfg) {
    // Enough for every request the client allows in flight plus loads still
    // committing and ledger reads; the limiter, not the pool, paces Vitec.
    return cfg.vitec.max_concurrent_requests + 2;
}

class runner {
public:
    runner(const command_line& line, const config& cfg)
        : line_(line),
          db_(io_.get_executor(), cfg.database, 2, connection_count(cfg)),
          leases_(db_, cfg.database.schema,
                  [this](const std::string& id) {
                      auto found = state_.customers.find(id);
                      return found != state_.customers.end() && found->second.busy;
                  }),
          shutdown_(io_.get_executor()),
          metrics_(cfg.sync.poll_interval),
          signals_(io_, SIGINT, SIGTERM, SIGHUP),
          grace_(io_) {
        state_.cfg = std::make_shared<const config>(cfg);
        state_.client = std::make_shared<vitec_client>(io_.get_executor(), cfg.vitec);
        state_.db = &db_;
        state_.leases = &leases_;
        state_.shutdown = &shutdown_;
        state_.metrics = &metrics_;
        state_.once = line.once;
        const auto ids = customer_ids(cfg);
        metrics_.set_customers(ids);
        leases_.set_customers(ids);
        if (cfg.metrics.listen) {
            server_.emplace(io_.get_executor(), *cfg.metrics.listen, metrics_);
            log_event(spdlog::level::info, "metrics.listening",
                      {{"listen", to_string(*cfg.metrics.listen)}, {"port", server_->port()}});
        }
    }

    int run() {
        asio::co_spawn(io_, start(), asio::detached);
        asio::co_spawn(io_, handle_signals(), asio::detached);
        io_.run();
        if (abandoned_) {
            // In-flight windows ran past the grace period. Their transactions
            // end with the connections: PostgreSQL rolls them back, so nothing
            // partial is committed. Exiting here skips tearing down suspended work.
            log_event(spdlog::level::warn, "shutdown.abandoned", {{"grace_s", state_.cfg->sync.shutdown_grace.count()}});
            spdlog::shutdown();
            std::_Exit(exit_ok);
        }
        print_totals(state_.totals, std::cerr);
        if (line_.once && state_.totals.windows_failed > 0) return exit_windows_failed;
        return exit_ok;
    }

private:
    asio::awaitable<void> start() {
        co_await leases_.round();
        for (const auto& customer : state_.cfg->customers) spawn_customer(customer.id);
        if (!line_.once) {
            asio::co_spawn(io_, keep_leases(), asio::detached);
            asio::co_spawn(io_, report_to_systemd(), asio::detached);
            notify_ready();
        }
        log_event(spdlog::level::info, "run.started",
                  {{"customers", state_.cfg->customers.size()},
                   {"held", leases_.held_count()},
                   {"instances", leases_.instances()},
                   {"once", line_.once}});
        if (active_loops_ == 0) co_await finish();
    }

    void spawn_customer(const std::string& id) {
        if (state_.customers[id].looping) return;
        state_.customers[id].looping = true;  // until the loop itself takes over
        ++active_loops_;
        asio::co_spawn(io_, customer_loop(state_, id), [this](std::exception_ptr) {
            if (--active_loops_ == 0 && (line_.once || shutdown_.triggered())) {
                asio::co_spawn(io_, finish(), asio::detached);
            }
        });
    }

    asio::awaitable<void> keep_leases() {
        for (;;) {
            const auto poll = std::chrono::duration_cast<std::chrono::milliseconds>(
                state_.cfg->sync.poll_interval);
            if (!co_await shutdown_.sleep(with_jitter(poll / 2, state_.rng))) break;
            co_await leases_.round();
        }
    }

    asio::awaitable<void> report_to_systemd() {
        const auto watchdog = watchdog_interval();
        const std::chrono::milliseconds period =
            watchdog ? std::chrono::duration_cast<std::chrono::milliseconds>(*watchdog / 2) : 10s;
        do {
            notify_watchdog();
            notify_status(status_line());
        } while (co_await shutdown_.sleep(period));
    }

    std::string status_line() const {
        const auto& totals = state_.totals;
        return "customers " + std::to_string(leases_.held_count()) + "/" +
               std::to_string(state_.cfg->customers.size()) + " held, instances " +
               std::to_string(leases_.instances()) + ", windows ok " +
               std::to_string(totals.windows_ok) + ", failed " + std::to_string(totals.windows_failed) +
               ", rows changed " + std::to_string(totals.rows_changed) + ", " +
               metrics_.health().reason;
    }

    asio::awaitable<void> handle_signals() {
        for (;;) {
            auto [error, signal] = co_await signals_.async_wait(asio::as_tuple(asio::use_awaitable));
            if (error) co_return;  // cancelled at the end
            if (signal == SIGHUP) {
                reload();
                continue;
            }
            begin_shutdown(signal);
        }
    }

    void begin_shutdown(int signal) {
        if (shutdown_.triggered()) return;
        log_event(spdlog::level::info, "shutdown.started",
                  {{"signal", signal == SIGTERM ? "SIGTERM" : "SIGINT"},
                   {"grace_s", state_.cfg->sync.shutdown_grace.count()}});
        notify_stopping();
        shutdown_.trigger();
        grace_.expires_after(state_.cfg->sync.shutdown_grace);
        grace_.async_wait([this](boost::system::error_code error) {
            if (error) return;  // everything finished in time
            abandoned_ = true;
            io_.stop();
        });
        if (active_loops_ == 0) asio::co_spawn(io_, finish(), asio::detached);
    }

    void reload() {
        notify_reloading();
        std::shared_ptr<const config> fresh;
        try {
            fresh = std::make_shared<const config>(load_config(line_.config_file));
            setup_logging(fresh->log);
        } catch (const std::exception& error) {
            log_event(spdlog::level::err, "reload.refused",
                      {{"file", line_.config_file.string()}, {"error", error.what()}});
            notify_ready();
            return;
        }
        if (fresh->database.conninfo != state_.cfg->database.conninfo ||
            fresh->database.schema != state_.cfg->database.schema) {
            log_event(spdlog::level::warn, "reload.database_unchanged",
                      {{"reason", "database settings take effect on restart"}});
        }
        try {
            state_.client = std::make_shared<vitec_client>(io_.get_executor(), fresh->vitec);
        } catch (const std::exception& error) {
            log_event(spdlog::level::err, "reload.refused", {{"error", error.what()}});
            notify_ready();
            return;
        }
        state_.cfg = fresh;
        const auto ids = customer_ids(*fresh);
        metrics_.set_customers(ids);
        metrics_.set_poll_interval(fresh->sync.poll_interval);
        leases_.set_customers(ids);
        log_event(spdlog::level::info, "reload.done", {{"customers", ids.size()}});
        asio::co_spawn(io_, [this, ids]() -> asio::awaitable<void> {
            co_await leases_.round();  // new customers need no wait for a lease
            for (const auto& id : ids) spawn_customer(id);
        }, asio::detached);
        notify_ready();
    }

    asio::awaitable<void> finish() {
        if (finishing_) co_return;
        finishing_ = true;
        shutdown_.trigger();
        co_await leases_.release_all();
        if (server_) server_->stop();
        grace_.cancel();
        signals_.cancel();
        log_event(spdlog::level::info, "run.stopped",
                  {{"windows_ok", state_.totals.windows_ok},
                   {"windows_failed", state_.totals.windows_failed}});
    }

    const command_line& line_;
    asio::io_context io_{1};
    db_workers db_;
    lease_keeper leases_;
    shutdown_signal shutdown_;
    metrics_registry metrics_;
    std::optional<metrics_server> server_;
    asio::signal_set signals_;
    asio::steady_timer grace_;
    run_state state_;
    std::size_t active_loops_ = 0;
    bool finishing_ = false;
    bool abandoned_ = false;
};

}  // namespace

int run_command(const command_line& line, const config& cfg) {
    migrate_at_start(cfg);
    runner instance(line, cfg);
    return instance.run();
}

}  // namespace comeback
