#pragma once
// One window of one customer, end to end: fetch (vitec_client) -> parse ->
// normalize on the I/O thread, a bounded queue, and the window_loader on a
// database thread, all inside one transaction. Retries with retry_delay();
// every failed attempt is recorded in the ledger (record_window_failure).

#include "config/config.hpp"
#include "fetch/outcome.hpp"
#include "load/window_loader.hpp"
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
    load_options load{};             // how windows are loaded (backfill --recheck)
};

struct window_outcome {
    bool committed = false;
    load_counts counts;              // when committed
    unsigned attempts = 0;
    std::optional<fetch_kind> kind;  // the last failure's kind (a database failure has none)
    int http_status = 0;
    std::string error;               // the last failure, for operators; never a secret
    std::chrono::milliseconds duration{0};

    // 401/403: the customer is parked on the auth back-off.
    bool parks_customer() const { return kind && comeback::parks_customer(*kind); }
};

// Syncs one window. Never throws for fetch, parse or database failures: they
// are the outcome. `cfg` and `customer` must outlive the call.
boost::asio::awaitable<window_outcome> sync_window(window_context& context, const config& cfg,
                                                   const customer_config& customer,
                                                   const window& w);

}  // namespace comeback
