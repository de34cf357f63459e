#pragma once
// The sync core's real surroundings for a test: a migrated scratch schema in
// the PostgreSQL from scripts/test, the fake Vitec server, the client, the
// database workers (their connections named so a test can find and kill
// them), a shutdown switch and a metrics registry.

#include "etl/fetch/fake_vitec_server.hpp"
#include "support/database.hpp"

#include "config/config.hpp"
#include "fetch/vitec_client.hpp"
#include "load/ledger.hpp"
#include "load/migrations.hpp"
#include "model/timestamp.hpp"
#include "observability/metrics.hpp"
#include "plan/windows.hpp"
#include "sync/command_io.hpp"
#include "sync/confirmer.hpp"
#include "sync/db_workers.hpp"
#include "sync/shutdown.hpp"
#include "sync/window_job.hpp"

#include <boost/asio/io_context.hpp>
#include <pqxx/pqxx>

#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace comeback::test {

// A migrated scratch schema whose name also names the workers' connections.
struct migrated_schema : scratch_schema {
    migrated_schema() { migrate(connection(), name()); }
    std::string application_name() const { return "sync-test-" + name(); }
};

inline config sync_config_for(const fake_vitec_server& server, const migrated_schema& db) {
    config cfg;
    cfg.database.conninfo = "application_name=" + db.application_name();
    cfg.database.schema = db.name();
    cfg.vitec = local_config(server);
    cfg.vitec.retry.max_attempts = 3;
    cfg.vitec.retry.auth_backoff = std::chrono::hours(1);
    customer_config customer;
    customer.id = "M1";
    customer.password = secret("pw");
    cfg.customers.push_back(customer);
    return cfg;
}

// The value of the metric line that starts with `series` ("name{labels}"), 0 when absent.
inline double metric_value(const metrics_registry& metrics, const std::string& series) {
    std::istringstream in(metrics.render_prometheus());
    for (std::string line; std::getline(in, line);) {
        if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
    }
    return 0;
}

// Terminates the sessions named `application_name` and waits until the
// server has let them go (with their locks).
inline void kill_sessions(const std::string& application_name) {
    auto observer = connect();
    for (;;) {
        pqxx::nontransaction tx{*observer};
        const auto alive = tx.exec_params1("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                                           application_name)[0].as<int>();
        if (alive == 0) return;
        tx.exec_params("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                       application_name);
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
}

struct sync_fixture {
    migrated_schema db;
    fake_vitec_server server;
    config cfg;
    // A test that gives up on coroutines it started drops them
    // (drop_pending_work) while what they refer to still exists.
    command_io_context io;
    db_workers workers;
    confirmer confirmations;
    shutdown_signal shutdown;
    metrics_registry metrics{std::chrono::seconds(300)};
    std::mt19937_64 rng{1};
    response_hold hold;  // as run and backfill hold responses

    explicit sync_fixture(std::vector<std::string> server_arguments)
        : server(with_password(std::move(server_arguments))),
          cfg(sync_config_for(server, db)),
          workers(io.get_executor(), cfg.database, 2, 4),
          confirmations(workers, db.name()),
          shutdown(io.get_executor()) {
        // The tests read M1's own series whether or not it is in trouble.
        metrics.set_per_customer_series(per_customer_series::all);
    }

    const customer_config& customer() const { return cfg.customers.front(); }

    // The window of 2024 that holds `day`.
    window window_of(date::year_month_day day) const {
        return window_containing(date::local_days{day}, cfg.sync.window, find_zone(cfg.vitec.timezone));
    }

    // One sync_window() call with a fresh client made from cfg (as run does
    // after a reload), run to completion.
    window_outcome sync(const window& w, std::size_t queue_batches = 4,
                        const std::vector<ledger_entry>* ledger = nullptr) {
        vitec_client client(io.get_executor(), cfg.vitec);
        window_context context{client, workers, confirmations, shutdown, &metrics, rng};
        context.queue_batches = queue_batches;
        context.hold = &hold;
        context.ledger = ledger;
        return run(io, sync_window(context, cfg, customer(), w));
    }

    // The same as a customer's turn runs it, with the ledger read just before.
    window_outcome sync_in_turn(const window& w) {
        const auto ledger = read_ledger(db.connection(), db.name(), customer().id, cfg.sync.date_criteria);
        return sync(w, 4, &ledger);
    }

    // What a turn reads first, having planned `w`: its ledger row pending
    // until a load completes it.
    std::vector<ledger_entry> plan(const window& w) {
        const std::vector<window> planned{w};
        return plan_and_read_ledger(db.connection(), db.name(), customer().id, cfg.sync.date_criteria, planned,
                                    cfg.privacy.rejected_raw_retention);
    }

    // The ledger row of a window; fails the test when there is none.
    ledger_entry ledger_of(const window& w) {
        const auto entries = read_ledger(db.connection(), db.name(), customer().id, cfg.sync.date_criteria);
        if (const ledger_entry* entry = find_window(entries, w.first_day, w.end_day)) return *entry;
        throw std::runtime_error("no ledger row for the window from " + w.from_text());
    }

    double requests(const std::string& outcome) const {
        return metric_value(metrics, "comeback_sync_requests_total{customer=\"M1\",outcome=\"" + outcome + "\"}");
    }
    double windows(const std::string& result) const {
        return metric_value(metrics, "comeback_sync_windows_total{customer=\"M1\",result=\"" + result + "\"}");
    }

    // The one value `sql` selects; "{}" in it stands for the schema.
    template <typename T>
    T one(std::string sql) {
        sql.replace(sql.find("{}"), 2, db.quoted());
        pqxx::read_transaction tx{db.connection()};
        return tx.exec1(sql)[0].as<T>();
    }

    std::size_t comebacks() {
        pqxx::read_transaction tx{db.connection()};
        return tx.exec1("SELECT count(*) FROM " + db.quoted() + ".comebacks")[0].as<std::size_t>();
    }

    // Terminates every connection the workers hold: the next use of a pooled
    // connection finds it dead.
    void kill_worker_connections() const { kill_sessions(db.application_name()); }

    // Runs SQL on the test's own connection (faults in the scratch schema).
    void exec(const std::string& sql) {
        pqxx::work tx{db.connection()};
        tx.exec0(sql);
        tx.commit();
    }

private:
    static std::vector<std::string> with_password(std::vector<std::string> arguments) {
        arguments.insert(arguments.begin(), {"--default-password", "pw"});
        return arguments;
    }
};

}  // namespace comeback::test
