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
#include "load/database_failure.hpp"
#include "load/fencing.hpp"
#include "load/migrations.hpp"
#include "sync/command_io.hpp"
#include "sync/database.hpp"
#include "sync/database_monitor.hpp"
#include "sync/db_workers.hpp"
#include "sync/lease_keeper.hpp"
#include "sync/confirmer.hpp"
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

// The longest a re-fetched window that finds the confirmer idle waits for
// others to share its statement; the fourth window waiting ends the wait
// sooner (sync/confirmer.hpp, gathered_enough). At a fleet's steady pace of a
// few hundred re-fetches a second, a batch of several windows; a window's
// freshness is minutes.
constexpr auto confirm_gather = 25ms;

std::vector<std::string> customer_ids(const config& cfg) {
    std::vector<std::string> ids;
    for (const auto& customer : cfg.customers) ids.push_back(customer.id);
    return ids;
}

// Windows committed, failed and held, rows, and each failed or held window
// (customer, window, kind, error or reason).
void print_totals(const run_totals& totals, std::ostream& out) {
    out << "windows committed: " << totals.windows_ok << ", failed: " << totals.windows_failed
        << ", held: " << totals.windows_held << ", rows seen: " << totals.rows_seen
        << ", rows changed: " << totals.rows_changed << '\n';
    if (totals.cycles_failed > 0) {
        out << "cycles ended by an error: " << totals.cycles_failed
            << " (customer.cycle_failed in the log says why)\n";
    }
    totals.failures.print(out);
    totals.held.print(out, "held windows (nothing of them was written; accept a checked shrink "
                           "with backfill --accept-deletes)");
}

class runner {
public:
    runner(const command_line& line, std::shared_ptr<const config> shared)
        : line_(line),
          // A thread per connection, and one for the lease keeper's own.
          db_(io_.get_executor(), shared->database, shared->database.pool_size + 1, shared->database.pool_size),
          confirmations_(db_, shared->database.schema, confirm_gather),
          gate_(io_.get_executor(), cycle_capacity(*shared)),
          leases_(db_, shared->database.schema,
                  [this](const std::string& id) {
                      auto found = state_.customers.find(id);
                      return found != state_.customers.end() && found->second.busy;
                  }),
          shutdown_(io_.get_executor()),
          metrics_(shared->sync.poll_interval),
          database_(io_.get_executor(), shared->database, shutdown_, &db_,
                    [this](bool up, const std::string& reason,
                           std::optional<database_monitor::clock::time_point> last_ok) {
                        metrics_.set_database(up, reason, last_ok);
                    }),
          stop_(io_, shutdown_,
                {.grace = [this] { return state_.cfg->sync.shutdown_grace; },
                 .stopping = [this](std::string_view signal) { begin_shutdown(signal); },
                 .hangup = [this] { reload(); }}) {
        const config& cfg = *shared;
        state_.cfg = std::move(shared);
        state_.client = std::make_shared<vitec_client>(io_.get_executor(), cfg.vitec);
        state_.client->count_request_starts(request_starts_);
        metrics_.watch_request_starts(request_starts_);
        db_.count_checkouts(database_checkouts_);
        metrics_.watch_database_checkouts(database_checkouts_);
        state_.db = &db_;
        state_.confirmations = &confirmations_;
        state_.gate = &gate_;
        state_.database = &database_;
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
                [this](std::vector<std::size_t> pages) {
                    asio::co_spawn(io_, read_status_page(std::move(pages)), asio::detached);
                },
                [] { return std::chrono::floor<std::chrono::microseconds>(std::chrono::system_clock::now()); });
            // On a thread of its own: no client of the listener can hold up the sync.
            server_.emplace(cfg.metrics, metrics_,
                            [this](std::string_view target) { return status_page_->page(target); });
            log_event(spdlog::level::info, "metrics.listening",
                      {{"listen", to_string(*cfg.metrics.listen)},
                       {"port", server_->port()},
                       {"max_connections", cfg.metrics.max_connections}});
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
        asio::co_spawn(io_, start(), [this](std::exception_ptr error) {
            // The start could not finish (a migration refused, the database
            // refusing us): stop, and say why.
            if (!error) return;
            start_failure_ = error;
            asio::co_spawn(io_, finish(), asio::detached);
        });
        stop_.start();
        io_.run();
        // In-flight windows ran past the grace period: a stop asked for is
        // still a clean exit.
        if (stop_.abandoned()) stop_.leave_abandoned(exit_ok);
        if (start_failure_) std::rethrow_exception(start_failure_);
        print_totals(state_.totals, std::cerr);
        const bool failed = state_.totals.windows_failed > 0 || state_.totals.cycles_failed > 0 ||
                            state_.totals.windows_held > 0;
        if (line_.once && failed) return exit_windows_failed;
        return exit_ok;
    }

private:
    asio::awaitable<void> start() {
        asio::co_spawn(io_, database_.keep_probing(), asio::detached);
        if (!line_.once) {
            // Serving /healthz and the watchdog while the database is awaited.
            asio::co_spawn(io_, report_to_systemd(), asio::detached);
            notify_ready();
        }
        if (!co_await migrate_when_reachable()) co_return;
        co_await leases_.round();
        for (const auto& customer : state_.cfg->customers) customers_.add(customer.id);
        asio::co_spawn(io_, customers_.run(), asio::detached);
        if (!line_.once) asio::co_spawn(io_, keep_leases(), asio::detached);
        log_event(spdlog::level::info, "run.started",
                  {{"customers", state_.cfg->customers.size()},
                   {"held", leases_.held_count()},
                   {"instances", leases_.instances()},
                   {"once", line_.once}});
        if (customers_.looping() == 0) co_await finish();
    }

    // The last customer with turns ahead stopped: with --once, or after a
    // shutdown, the run is over.
    void all_customers_stopped() {
        if (line_.once || shutdown_.triggered()) asio::co_spawn(io_, finish(), asio::detached);
    }

    // One read of the ledger for the status page, with the strips of `pages`,
    // off the I/O thread.
    asio::awaitable<void> read_status_page(std::vector<std::size_t> pages) {
        const std::shared_ptr<const config> cfg = state_.cfg;
        const instant now =
            std::chrono::floor<std::chrono::microseconds>(std::chrono::system_clock::now());
        try {
            status_snapshot snapshot;
            db_workers::session session = co_await db_.checkout();
            co_await session.run([&](pqxx::connection& connection) {
                snapshot = read_status_snapshot(connection, *cfg, now, pages);
            });
            status_page_->store(std::move(snapshot));
        } catch (const std::exception& error) {
            status_page_->store_failure(error.what());
        }
    }

    // `run` (not --once) waits for a database that does not answer at start,
    // with /healthz saying so; --once, like backfill, fails at once. A
    // migration the database refuses ends the daemon. False: stopped first.
    asio::awaitable<bool> migrate_when_reachable() {
        for (;;) {
            std::exception_ptr failed;
            try {
                db_workers::session session = co_await db_.checkout();
                co_await session.run([this](pqxx::connection& connection) {
                    if (!state_.cfg->database.auto_migrate) return;
                    const int applied = migrate(connection, state_.cfg->database.schema);
                    log_event(spdlog::level::info, "migrate.done",
                              {{"schema", state_.cfg->database.schema}, {"applied", applied}});
                });
                co_return true;
            } catch (const database_error& error) {
                if (line_.once || !is_database_outage(error.failure().kind)) throw;
            }
            // database.unreachable says why, from the probe.
            if (!co_await database_.wait_until_answering(state_.cfg->sync.poll_interval) &&
                shutdown_.triggered()) {
                co_await finish();
                co_return false;
            }
        }
    }

    // Every half poll interval, and at once when the database answers again
    // after an outage or the lease connection closed (a server restart ends
    // every lease): checked every probe interval, without a round trip.
    asio::awaitable<void> keep_leases() {
        auto next_round = std::chrono::steady_clock::now();
        std::uint64_t recoveries = database_.recoveries();
        for (;;) {
            const auto poll = std::chrono::duration_cast<std::chrono::milliseconds>(
                state_.cfg->sync.poll_interval);
            if (std::chrono::steady_clock::now() >= next_round || leases_.connection_lost()) {
                co_await leases_.round();
                // Lost: try again soon, on a new connection.
                const auto wait = leases_.held_count() == 0 && !state_.cfg->customers.empty()
                                      ? std::min(poll / 2, state_.cfg->database.probe_interval)
                                      : poll / 2;
                next_round = std::chrono::steady_clock::now() + with_jitter(wait, state_.rng);
            }
            const auto until = std::chrono::duration_cast<std::chrono::milliseconds>(
                next_round - std::chrono::steady_clock::now());
            const auto nap = std::clamp<std::chrono::milliseconds>(until, 1ms, state_.cfg->database.probe_interval);
            if (!co_await shutdown_.sleep(nap, &database_.recovered())) break;
            if (database_.recoveries() != recoveries) {
                recoveries = database_.recoveries();
                next_round = std::chrono::steady_clock::now();
            }
        }
    }

    // The watchdog is fed only while both the I/O loop (which runs this) and
    // the database workers make progress: a worker stuck past its call's
    // limit starves it, and systemd restarts the daemon.
    asio::awaitable<void> report_to_systemd() {
        const auto watchdog = watchdog_interval();
        const std::chrono::milliseconds period =
            watchdog ? std::chrono::duration_cast<std::chrono::milliseconds>(*watchdog / 2) : 10s;
        bool stalled_logged = false;
        do {
            const auto stalled = db_.stalled();
            if (!stalled) {
                notify_watchdog();
                stalled_logged = false;
            } else if (!stalled_logged) {
                stalled_logged = true;
                log_event(spdlog::level::critical, "database.stalled", {{"error", *stalled}});
            }
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
        if (customers_.looping() == 0) asio::co_spawn(io_, finish(), asio::detached);
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
            fresh->database.schema != state_.cfg->database.schema ||
            fresh->database.pool_size != state_.cfg->database.pool_size) {
            log_event(spdlog::level::warn, "reload.database_unchanged",
                      {{"reason", "database settings take effect on restart"}});
        }
        try {
            state_.client = std::make_shared<vitec_client>(io_.get_executor(), fresh->vitec);
            state_.client->count_request_starts(request_starts_);
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
        // A reload is how an operator says a password or an access was fixed:
        // customers parked after a 401 or 403 try again at their next wake-up.
        std::size_t unparked = 0;
        for (auto& [id, runtime] : state_.customers) {
            if (!runtime.backoff.parked_until) continue;
            runtime.backoff.parked_until.reset();
            ++unparked;
        }
        log_event(spdlog::level::info, "reload.done", {{"customers", ids.size()}, {"unparked", unparked}});
        asio::co_spawn(io_, [this, ids]() -> asio::awaitable<void> {
            co_await leases_.round();  // new customers need no wait for a lease
            for (const auto& id : ids) customers_.add(id);
        }, asio::detached);
        notify_ready();
    }

    // Windows load with commit_lazily (customer_loop): before the run says it
    // stopped, one durable commit makes every load before it durable, so a
    // crash of the server after a clean stop (or after --once) loses none.
    // Skipped while the database does not answer: waiting on it would hold
    // the stop, and the loads since its WAL writer last wrote are fetched
    // again anyway.
    asio::awaitable<void> make_loads_durable() {
        if (state_.totals.windows_ok == 0 || !database_.up()) co_return;
        try {
            db_workers::session session = co_await db_.checkout();
            co_await session.run([](pqxx::connection& connection) { make_durable(connection); });
        } catch (const std::exception& error) {
            log_event(spdlog::level::warn, "run.loads_not_durable", {{"error", error.what()}});
        }
    }

    asio::awaitable<void> finish() {
        if (finishing_) co_return;
        finishing_ = true;
        shutdown_.trigger();
        co_await make_loads_durable();
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
    confirmer confirmations_;  // of every customer's windows
    cycle_gate gate_;
    lease_keeper leases_;
    shutdown_signal shutdown_;
    metrics_registry metrics_;
    // The request limiter's starts, for /metrics; shared by the client a reload makes.
    const std::shared_ptr<wait_stats> request_starts_ = std::make_shared<wait_stats>();
    // The database pool's checkouts, for /metrics.
    const std::shared_ptr<wait_stats> database_checkouts_ = std::make_shared<wait_stats>();
    database_monitor database_;
    std::optional<status_page_cache> status_page_;
    std::optional<metrics_server> server_;
    signal_stop stop_;
    run_state state_;
    customer_scheduler customers_{state_, [this] { all_customers_stopped(); }};
    bool finishing_ = false;
    std::exception_ptr start_failure_;
};

}  // namespace

int run_command(const command_line& line, config cfg) {
    // Moved, not copied: a fleet's customer list is megabytes.
    runner instance(line, std::make_shared<const config>(std::move(cfg)));
    return instance.run();
}

}  // namespace comeback
