#pragma once
// One window of one customer, end to end: fetch (vitec_client) -> parse ->
// normalize on the I/O thread, a bounded queue, and the window_loader on a
// database thread, all inside one transaction. Attempts go through the one
// retry driver (fetch/retry.hpp); every failed attempt is recorded in the
// ledger (record_window_failure), logged, and counted under its kind's label.

#include "config/config.hpp"
#include "load/window_loader.hpp"
#include "model/failure.hpp"
#include "plan/windows.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <optional>
#include <random>
#include <string>

namespace comeback {

class vitec_client;
class db_workers;
class shutdown_signal;
class metrics_registry;

// Everything a window needs that outlives it. Used from the io_context thread.
struct window_context {
    vitec_client& client;
    db_workers& db;
    shutdown_signal& shutdown;       // no new attempt once triggered
    metrics_registry* metrics;       // null: no metrics (backfill)
    std::mt19937_64& rng;
    std::size_t queue_batches = 4;   // parsed batches waiting for the loader, at most
    load_options load{};             // how windows are loaded (backfill --recheck, --accept-deletes);
                                     // the guard and privacy settings come from the config
};

struct window_outcome {
    bool committed = false;
    load_counts counts;                        // when committed; counts.held: only the ledger row was
    unsigned attempts = 0;
    std::optional<failure> last_failure;       // when not committed: the last attempt's
    std::chrono::milliseconds duration{0};

    std::optional<failure_kind> kind() const {
        return last_failure ? std::optional(last_failure->kind) : std::nullopt;
    }
    // The error for operators ("" when committed); never a secret.
    std::string error() const { return last_failure ? last_failure->message : std::string(); }
    // 401/403: the customer is parked on the auth back-off.
    bool parks_customer() const { return last_failure && comeback::parks_customer(last_failure->kind); }
    // The deletion guard held the load: nothing of the window changed.
    bool held() const { return committed && counts.held; }
};

// Syncs one window. Fetch, parse and database failures are the outcome, each
// classified into its kind. An exception no stage classifies (a programming
// error: internal_error) is never retried: it is counted, recorded in the
// ledger and logged with the window, then rethrown for the customer's loop.
// `cfg` and `customer` must outlive the call.
boost::asio::awaitable<window_outcome> sync_window(window_context& context, const config& cfg,
                                                   const customer_config& customer,
                                                   const window& w);

// The kind of an exception that ended a customer's cycle: a database failure's
// kind (load/database_failure.hpp), else internal_error.
failure_kind kind_of(const std::exception& error);

}  // namespace comeback
