// `backfill`: fetch a date range once for some or all customers, beside a
// running daemon, skipping windows the ledger shows complete unless --force.

#include "commands/commands.hpp"

#include "exit_codes.hpp"
#include "fetch/vitec_client.hpp"
#include "load/contact_memo.hpp"
#include "load/ledger.hpp"
#include "load/migrations.hpp"
#include "model/timestamp.hpp"
#include "observability/logging.hpp"
#include "sync/command_io.hpp"
#include "sync/database.hpp"
#include "sync/database_monitor.hpp"
#include "sync/confirmer.hpp"
#include "sync/db_workers.hpp"
#include "observability/progress.hpp"
#include "sync/shutdown.hpp"
#include "sync/summary.hpp"
#include "sync/window_job.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <pqxx/pqxx>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <thread>
#include <unistd.h>

namespace comeback {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

struct customer_result {
    std::string id;
    std::size_t planned = 0;
    std::size_t skipped = 0;  // complete in the ledger
    std::size_t done = 0;
    std::size_t failed = 0;
    std::size_t held = 0;     // the deletion guard held the load
    std::size_t not_run = 0;  // stopped by a signal, a parked customer or an internal error
    std::uint64_t rows = 0;
    std::uint64_t changed = 0;
    std::string last_error;
};

// Tasks started on io_ at any time, by any of them too; wait() returns
// once every one has ended, then rethrowing the first exception any of
// them ended with. It must outlive its tasks: wait for it.
class task_group {
public:
    explicit task_group(asio::io_context& io) : io_(io), all_done_(io, asio::steady_timer::time_point::max()) {}

    void spawn(asio::awaitable<void> task) {
        ++running_;
        asio::co_spawn(io_, std::move(task), [this](std::exception_ptr error) {
            if (error && !first_error_) first_error_ = error;
            if (--running_ == 0) all_done_.cancel();
        });
    }

    asio::awaitable<void> wait() {
        while (running_ > 0) co_await all_done_.async_wait(asio::as_tuple(asio::use_awaitable));
        if (first_error_) std::rethrow_exception(first_error_);
    }

private:
    asio::io_context& io_;
    asio::steady_timer all_done_;
    std::size_t running_ = 0;
    std::exception_ptr first_error_;
};

class backfill {
public:
    backfill(const command_line& line, const config& cfg)
        : line_(line),
          cfg_(cfg),
          pool_size_(backfill_pool_size(cfg.database, std::thread::hardware_concurrency())),
          db_(io_.get_executor(), cfg.database, pool_size_, pool_size_),
          confirmations_(db_, cfg.database.schema),
          client_(io_.get_executor(), cfg.vitec),
          shutdown_(io_.get_executor()),
          database_(io_.get_executor(), cfg.database, shutdown_, &db_),
          stop_(io_, shutdown_,
                {.grace = [this] { return cfg_.sync.shutdown_grace; },
                 .stopping = [this](std::string_view signal) { interrupted(signal); },
                 .hangup = {}}),  // SIGHUP is left to end a backfill
          terminal_(::isatty(STDERR_FILENO) == 1) {
        db_.count_checkouts(checkouts_);
    }

    ~backfill() {
        // Work still pending refers to the members below (command_io.hpp): the
        // pool's threads stop first, so nothing is posted any more, then the
        // frames go while those members exist.
        db_.stop();
        io_.drop_pending_work();
    }
    backfill(const backfill&) = delete;
    backfill& operator=(const backfill&) = delete;

    // What escapes io_.run() is only what a handler outside every coroutine
    // throws (std::bad_alloc from Asio's or Beast's own handlers; coroutines
    // hand their exceptions to their completion handlers): it leaves here,
    // ~backfill unwinds safely, and main() reports command.failed (exit 1).
    int run() {
        // Per-window info lines would tear the live bar apart; warnings and
        // errors still show, and so does everything at debug level.
        if (terminal_ && spdlog::get_level() == spdlog::level::info) spdlog::set_level(spdlog::level::warn);
        asio::co_spawn(io_, main(), [this](std::exception_ptr error) {
            failure_ = error;
            stop_.finished();
        });
        stop_.start();
        io_.run();
        if (stop_.abandoned()) {
            std::cerr << "\nbackfill: abandoned in-flight windows after the grace period\n";
            stop_.leave_abandoned(exit_windows_failed);
        }
        if (failure_) std::rethrow_exception(failure_);
        return print_summary();
    }

private:
    asio::awaitable<void> main() {
        const date::time_zone& zone = find_zone(cfg_.vitec.timezone);
        const auto windows = plan_windows(line_.from, line_.to, cfg_.sync.window, zone);
        const std::size_t customers_selected = selected_.size();
        std::vector<std::vector<window>> todo(customers_selected);
        std::vector<std::vector<ledger_entry>> ledgers(customers_selected);  // each customer's, as planned
        results_.resize(customers_selected);
        progress_ = progress_tracker::while_planning();
        log_event(spdlog::level::info, "backfill.planning",
                  {{"customers", customers_selected}, {"windows", windows.size()}, {"database_pool", pool_size_}});
        asio::co_spawn(io_, report_progress(), asio::detached);
        asio::co_spawn(io_, database_.keep_probing(answered_at_start_), asio::detached);

        // Every session of the pool plans customers, each taking the next one
        // (one round trip a customer), and a customer's windows start as soon
        // as its own plan is read: thousands of customers or a database far
        // away keep no fetch waiting for the others' plans. A planner keeps
        // its session until no customer is left to plan, so planning, and
        // with it the progress total, ends as soon as it can; the loads of
        // the windows fetched meanwhile wait for the sessions. Customers run
        // in parallel; the client's limiter keeps the total polite.
        task_group customers(io_);
        std::size_t next_customer = 0;  // read and moved on io_'s thread only
        auto planner = [&]() -> asio::awaitable<void> {
            std::optional<db_workers::session> session;
            auto more_to_plan = [&] {
                return next_customer < customers_selected && !planning_failed_ && !shutdown_.triggered();
            };
            while (more_to_plan()) {
                std::size_t i = 0;
                try {
                    if (!session) {
                        session = co_await db_.checkout();
                        // A session checked out without a connection opens one
                        // at its first call: made here, before a customer is taken.
                        co_await session->run([](pqxx::connection&) {});
                    }
                    // The connection first, then the customer: a planner still
                    // waiting for its session (the pool opens connections one
                    // at a time, see db_workers) or opening its connection
                    // must not hold a customer back that another planner
                    // would plan meanwhile.
                    if (!more_to_plan()) break;
                    i = next_customer++;
                    co_await session->run([&](pqxx::connection& connection) {
                        ledgers[i] = plan_and_read_ledger(connection, cfg_.database.schema, selected_[i]->id,
                                                          cfg_.sync.date_criteria, windows,
                                                          cfg_.privacy.rejected_raw_retention);
                    });
                } catch (...) {
                    planning_failed_ = true;  // no new customer is planned, no new window starts
                    throw;
                }
                const customer_config& customer = *selected_[i];
                const std::vector<ledger_entry>& ledger = ledgers[i];
                customer_result& result = results_[i];
                result.id = customer.id;
                result.planned = windows.size();
                for (const window& w : windows) {
                    const ledger_entry* entry = find_window(ledger, w.first_day, w.end_day);
                    const bool complete = entry && entry->status == "complete";
                    if (complete && !line_.force && !line_.recheck) {
                        ++result.skipped;
                    } else {
                        todo[i].push_back(w);
                    }
                }
                progress_->add_windows(todo[i].size());
                customers.spawn(one_customer(customer, todo[i], ledger, result));
            }
        };
        task_group planners(io_);
        for (std::size_t i = 0; i < std::min<std::size_t>(pool_size_, customers_selected); ++i) {
            planners.spawn(planner());
        }
        std::exception_ptr failure;
        try {
            co_await planners.wait();
        } catch (...) {
            failure = std::current_exception();  // once the started windows have ended
        }
        if (!failure) {
            // Stopped while planning: a customer not planned yet runs none of
            // its windows.
            for (std::size_t i = next_customer; i < customers_selected; ++i) {
                results_[i].id = selected_[i]->id;
                results_[i].planned = windows.size();
                results_[i].not_run = windows.size();
            }
            progress_->all_planned();
            log_event(spdlog::level::info, "backfill.started",
                      {{"customers", customers_selected}, {"windows", progress_->total()},
                       {"force", line_.force || line_.recheck}, {"recheck", line_.recheck},
                       {"database_pool", pool_size_}});
        }
        try {
            co_await customers.wait();
        } catch (...) {
            if (!failure) failure = std::current_exception();
        }
        log_event(spdlog::level::info, "backfill.finished",
                  {{"windows", progress_->done()},
                   {"failed", progress_->failed()},
                   {"database_connections", db_.connections_opened() + database_.connections_opened()},
                   {"database_sessions", checkouts_->started.load()},
                   {"database_wait_s", static_cast<double>(checkouts_->wait_microseconds.load()) / 1e6},
                   {"vitec_connections", client_.connections_opened()}});
        shutdown_.trigger();  // stops the progress reporter
        if (failure) std::rethrow_exception(failure);
    }

    // A customer's windows are started in order, one at a time, or two at a
    // time when there are fewer customers than request slots: while one
    // loads, the next is being fetched, so a far-away server's round trip and
    // transfer hide behind the load before it, where the slots would
    // otherwise sit idle. Their loads take turns under the customer's lock,
    // as any two loads of one customer do. With as many customers as slots,
    // the slots are busy already, and a second window each would only hold
    // twice the responses in memory, waiting for their loads.
    std::size_t windows_in_flight_per_customer() const {
        return selected_.size() < cfg_.vitec.max_concurrent_requests ? 2 : 1;
    }

    struct customer_work {
        const customer_config& customer;
        const std::vector<window>& windows;
        customer_result& result;
        window_context context;
        std::size_t next = 0;  // the next window to start
        bool stopped = false;  // a window's failure would meet the customer's other windows too
    };

    asio::awaitable<void> one_customer(const customer_config& customer, const std::vector<window>& windows,
                                       const std::vector<ledger_entry>& ledger, customer_result& result) {
        customer_work work{customer, windows, result, window_context{client_, db_, confirmations_, shutdown_, nullptr, rng_}};
        window_context& context = work.context;
        context.ledger = &ledger;
        context.load.recheck = line_.recheck;
        context.database = &database_;
        context.hold = &hold_;
        context.load.contacts = &contacts_;
        context.load.accept_deletes = line_.accept_deletes;
        task_group lanes(io_);
        for (std::size_t i = 0; i < windows_in_flight_per_customer(); ++i) lanes.spawn(customer_lane(work));
        co_await lanes.wait();
    }

    // Starts the customer's next window until none is left; once a window
    // stopped the customer, shutdown began or a plan failed, the rest count
    // as not run.
    asio::awaitable<void> customer_lane(customer_work& work) {
        const customer_config& customer = work.customer;
        customer_result& result = work.result;
        while (work.next < work.windows.size()) {
            const window& w = work.windows[work.next++];
            if (shutdown_.triggered() || work.stopped || planning_failed_) {
                ++result.not_run;
                continue;
            }
            window_outcome outcome;
            bool stop_customer = false;
            try {
                outcome = co_await sync_window(work.context, cfg_, customer, w);
            } catch (const std::exception& error) {
                // A programming error, logged by sync_window with the window: it
                // is not retried, and this customer's other windows would likely
                // meet it too. The other customers go on.
                outcome.last_failure = failure{failure_kind::internal_error, 0,
                                               std::string("internal error: ") + error.what(), std::nullopt};
                stop_customer = true;
            }
            if (outcome.held()) {
                ++result.held;
                held_.add({customer.id, w.from_text(), w.to_text(), "held",
                           held_reason(outcome.counts.held_deletions, outcome.counts.held_live_rows)});
            } else if (outcome.committed) {
                ++result.done;
                result.rows += outcome.counts.rows_seen;
                result.changed += outcome.counts.changed();
            } else if (outcome.dropped()) {
                ++result.done;  // a newer fetch of the window committed: it is loaded
            } else {
                ++result.failed;
                result.last_error = outcome.error();
                failures_.add({customer.id, w.from_text(), w.to_text(),
                               std::string(to_string(*outcome.kind())), outcome.error()});
            }
            progress_->window_done(outcome.counts.rows_seen, !outcome.committed && !outcome.dropped());
            // 401/403 will not pass on the next window either.
            if (stop_customer || outcome.parks_customer()) work.stopped = true;
        }
    }

    asio::awaitable<void> report_progress() {
        const auto period = terminal_ ? 200ms : 10s;
        while (co_await shutdown_.sleep(period)) draw();
        draw();
        if (terminal_) std::cerr << '\n';
    }

    void draw() {
        const auto now = progress_tracker::clock::now();
        if (terminal_) {
            std::cerr << '\r' << progress_->bar(now) << std::flush;
            return;
        }
        log_event(spdlog::level::info, "backfill.progress",
                  {{"done", progress_->done()},
                   {"total", progress_->total()},
                   {"rows", progress_->rows()},
                   {"failed", progress_->failed()},
                   {"eta", progress_->eta_text(now)}});
    }

    // After SIGTERM or SIGINT: no new window starts; the rerun resumes.
    void interrupted(std::string_view signal) {
        log_event(spdlog::level::warn, "backfill.interrupted",
                  {{"signal", signal}, {"grace_s", cfg_.sync.shutdown_grace.count()}});
        interrupted_ = true;
    }

    int print_summary() {
        std::vector<std::vector<std::string>> rows;
        bool any_failed = false;
        bool any_not_run = false;
        for (const auto& r : results_) {
            rows.push_back({r.id, std::to_string(r.planned), std::to_string(r.skipped), std::to_string(r.done),
                            std::to_string(r.failed), std::to_string(r.held), std::to_string(r.not_run),
                            std::to_string(r.rows), std::to_string(r.changed), r.last_error});
            any_failed = any_failed || r.failed > 0 || r.held > 0;
            any_not_run = any_not_run || r.not_run > 0;
        }
        std::cout << render_table({"customer", "windows", "skipped", "done", "failed", "held", "not run",
                                   "rows", "changed", "last error"},
                                  rows);
        if (!failures_.empty()) {
            std::cout << '\n';
            failures_.print(std::cout);
        }
        if (!held_.empty()) {
            std::cout << '\n';
            held_.print(std::cout, "held windows (nothing of them was written; once the shrink is checked, "
                                   "accept it by rerunning with --accept-deletes)");
        }
        if (interrupted_) std::cout << "interrupted: rerun the same command to resume\n";
        return any_failed || any_not_run ? exit_windows_failed : exit_ok;
    }

public:
    // The connection start-up's migration check used (null: it made none): the
    // pool goes on with it, and the first probe waits an interval, as the
    // database has just answered.
    void start_with(std::unique_ptr<database_connection> connection) {
        answered_at_start_ = connection != nullptr;
        db_.adopt(std::move(connection));
    }

    // Picks the customers named by --customer; false (after explaining) when one is unknown.
    bool select_customers() {
        for (const auto& customer : cfg_.customers) {
            if (line_.customers.empty() ||
                std::find(line_.customers.begin(), line_.customers.end(), customer.id) != line_.customers.end()) {
                selected_.push_back(&customer);
            }
        }
        for (const auto& id : line_.customers) {
            const bool known = std::any_of(cfg_.customers.begin(), cfg_.customers.end(),
                                           [&](const customer_config& c) { return c.id == id; });
            if (!known) {
                std::cerr << "comeback-sync: backfill --customer " << id << ": no such customer in "
                          << cfg_.source.string() << '\n';
                return false;
            }
        }
        return true;
    }

private:
    const command_line& line_;
    const config& cfg_;
    command_io_context io_;
    unsigned pool_size_;  // connections for loads at most (backfill_pool_size)
    db_workers db_;
    confirmer confirmations_;  // of every customer's windows
    // The pool's checkouts and their waits, for backfill.finished.
    const std::shared_ptr<wait_stats> checkouts_ = std::make_shared<wait_stats>();
    response_hold hold_;  // responses held unparsed, over every customer
    // The contacts this backfill's loads stored, so its later windows do not
    // look them up again (a backfill's windows name the same contacts over
    // and over; run's windows are fewer, smaller and mostly confirmed).
    contact_memo contacts_;
    vitec_client client_;
    shutdown_signal shutdown_;
    database_monitor database_;
    signal_stop stop_;
    std::mt19937_64 rng_{std::random_device{}()};
    bool terminal_;
    bool interrupted_ = false;
    bool planning_failed_ = false;  // a plan failed: the backfill ends with its error
    bool answered_at_start_ = false;
    std::exception_ptr failure_;
    std::vector<const customer_config*> selected_;
    std::vector<customer_result> results_;
    failed_windows failures_;
    failed_windows held_;
    std::optional<progress_tracker> progress_;
};

}  // namespace

int backfill_command(const command_line& line, const config& cfg) {
    backfill job(line, cfg);
    if (!job.select_customers()) return exit_usage;
    job.start_with(migrate_at_start(cfg.database));
    return job.run();
}

}  // namespace comeback
