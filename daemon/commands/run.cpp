// `run`: keep every customer's windows fresh and fill history, until SIGTERM.
// Orchestration only; the per-customer cycles are in sync/customer_loop.cpp.

#include "commands/commands.hpp"

#include "exit_codes.hpp"
#include "fetch/vitec_client.hpp"
#include "observability/logging.hpp"
#include "observability/metrics.hpp"
#include "observability/metrics_server.hpp"
#include "observability/service_notify.hpp"
#include "observability/status_page_cache.hpp"
#include "sync/command_io.hpp"
#include "sync/database.hpp"
#include "sync/db_workers.hpp"
#include "sync/lease_keeper.hpp"
#include "sync/run_state.hpp"
#include "sync/shutdown.hpp"
#include "sync/status_snapshot.hpp"
#include "sync/summary.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

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

// Windows committed and failed, rows, and each failure (customer, window, kind, error).
void print_totals(const run_totals& totals, std::ostream& out) {
    out << "windows committed: " << totals.windows_ok << ", failed: " << totals.windows_failed
        << ", rows seen: " << totals.rows_seen << ", rows changed: " << totals.rows_changed << '\n';
    if (totals.cycles_failed > 0) {
        out << "cycles ended by an error: " << totals.cycles_failed
            << " (customer.cycle_failed in the log says why)\n";
    }
    totals.failures.print(out);
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
          stop_(io_, shutdown_,
                {.grace = [this] { return state_.cfg->sync.shutdown_grace; },
                 .stopping = [this](std::string_view signal) { begin_shutdown(signal); },
                 .hangup = [this] { reload(); }}) {
        state_.cfg = std::make_shared<const config>(cfg);
        state_.client = std::make_shared<vitec_client>(io_.get_executor(), cfg.vitec);
        state_.db = &db_;
        state_.leases = &leases_;
        state_.shutdown = &shutdown_;
        state_.metrics = &metrics_;
        state_.once = line.once;
        const auto ids = customer_ids(cfg);
        metrics_.set_customers(ids);
        metrics_.set_per_customer_series(cfg.metrics.per_customer);
        leases_.set_customers(ids);
        if (cfg.metrics.listen) {
            status_page_.emplace(
                status_page_refresh,
                [this] { asio::co_spawn(io_, read_status_page(), asio::detached); },
                [] { return std::chrono::floor<std::chrono::microseconds>(std::chrono::system_clock::now()); });
            server_.emplace(io_.get_executor(), *cfg.metrics.listen, metrics_,
                            [this](std::string_view target) { return status_page_->page(target); });
            log_event(spdlog::level::info, "metrics.listening",
                      {{"listen", to_string(*cfg.metrics.listen)}, {"port", server_->port()}});
        }
    }

    ~runner() {
        // As in backfill: pending work refers to the members below (command_io.hpp).
        db_.stop();
        io_.drop_pending_work();
    }
    runner(const runner&) = delete;
    runner& operator=(const runner&) = delete;

    int run() {
        asio::co_spawn(io_, start(), asio::detached);
        stop_.start();
        io_.run();
        // In-flight windows ran past the grace period: a stop asked for is
        // still a clean exit.
        if (stop_.abandoned()) stop_.leave_abandoned(exit_ok);
        print_totals(state_.totals, std::cerr);
        const bool failed = state_.totals.windows_failed > 0 || state_.totals.cycles_failed > 0;
        if (line_.once && failed) return exit_windows_failed;
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

    // One read of the ledger for the status page, off the I/O thread.
    asio::awaitable<void> read_status_page() {
        const std::shared_ptr<const config> cfg = state_.cfg;
        const instant now =
            std::chrono::floor<std::chrono::microseconds>(std::chrono::system_clock::now());
        try {
            status_snapshot snapshot;
            db_workers::session session = co_await db_.checkout();
            co_await session.run([&](pqxx::connection& connection) {
                snapshot = read_status_snapshot(connection, *cfg, now);
            });
            status_page_->store(std::move(snapshot));
        } catch (const std::exception& error) {
            status_page_->store_failure(error.what());
        }
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

    // After SIGTERM or SIGINT: the shutdown is triggered and the grace timer runs.
    void begin_shutdown(std::string_view signal) {
        log_event(spdlog::level::info, "shutdown.started",
                  {{"signal", signal}, {"grace_s", state_.cfg->sync.shutdown_grace.count()}});
        notify_stopping();
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
        if (auto warning = insecure_http_warning(*fresh))
            log_event(spdlog::level::warn, "config.insecure_http",
                      {{"base_url", fresh->vitec.base_url.text}, {"warning", *warning}});
        const auto ids = customer_ids(*fresh);
        metrics_.set_customers(ids);
        metrics_.set_poll_interval(fresh->sync.poll_interval);
        metrics_.set_per_customer_series(fresh->metrics.per_customer);
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
        stop_.finished();
        log_event(spdlog::level::info, "run.stopped",
                  {{"windows_ok", state_.totals.windows_ok},
                   {"windows_failed", state_.totals.windows_failed}});
    }

    const command_line& line_;
    command_io_context io_;
    db_workers db_;
    lease_keeper leases_;
    shutdown_signal shutdown_;
    metrics_registry metrics_;
    std::optional<status_page_cache> status_page_;
    std::optional<metrics_server> server_;
    signal_stop stop_;
    run_state state_;
    std::size_t active_loops_ = 0;
    bool finishing_ = false;
};

}  // namespace

int run_command(const command_line& line, const config& cfg) {
    migrate_at_start(cfg.database);
    runner instance(line, cfg);
    return instance.run();
}

}  // namespace comeback
