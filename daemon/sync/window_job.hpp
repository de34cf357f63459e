#pragma once
// One window of one customer, end to end: fetch (vitec_client) -> parse ->
// normalize on the I/O thread, a bounded queue, and the window_loader on a
// database thread, all inside one transaction. Attempts go through the one
// retry driver (fetch/retry.hpp); every failed attempt is recorded in the
// ledger (record_window_failure), logged, and counted under its kind's label.

#include "config/config.hpp"
#include "sync/cycle_gate.hpp"
#include "load/window_loader.hpp"
#include "model/failure.hpp"
#include "plan/windows.hpp"
#include "sync/response_hold.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <random>
#include <string>

namespace comeback {

class vitec_client;
class db_workers;
class confirmer;
class database_monitor;
class shutdown_signal;
class metrics_registry;

// Everything a window needs that outlives it. Used from the io_context thread.
struct window_context {
    vitec_client& client;
    db_workers& db;
    // Where a response held whole is confirmed from its digest, with the
    // other windows' that wait at the same time (sync/confirmer.hpp).
    confirmer& confirmations;
    shutdown_signal& shutdown;       // no new attempt once triggered
    metrics_registry* metrics;       // null: no metrics (backfill)
    std::mt19937_64& rng;
    std::size_t queue_batches = 4;   // parsed batches waiting for the loader, at most
    load_options load{};             // how windows are loaded (backfill --recheck, --accept-deletes);
                                     // the guard and privacy settings come from the config
    // Null: a window whose database was lost retries after the plain back-off.
    // Else the next attempt waits until the probe finds the database
    // answering again, at most database.outage_grace.
    database_monitor* database = nullptr;
    // Whether the customer's lease taken when the window began still holds
    // (run's lease keeper); empty: always (backfill). When it turns false the
    // window stops at its next body chunk or before its commit, rolled back,
    // as lease_lost.
    std::function<bool()> still_held{};
    // Null: every response is parsed as it arrives.
    response_hold* hold = nullptr;
    // The customer's place inside run's cycle gate; null: none (backfill).
    // Given back while a retry waits, taken again before the next attempt.
    cycle_gate::pass* pass = nullptr;
    // The customer's ledger as read when its turn began (plan_and_read_ledger);
    // null: not read. A window whose last load recorded its response digest,
    // and whose response fits the hold, is first fetched without a fetch
    // ticket, to be confirmed unparsed (load/fencing.hpp); should it not
    // confirm, it is fetched again with one.
    const std::vector<ledger_entry>* ledger = nullptr;
    // response_fingerprint() of the configuration this context's windows run
    // with (one for its life: a tick of run's, or a backfill), worked out at
    // its first attempt instead of at every one.
    std::string fingerprint{};
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
    // Not committed, and not failed either: the response was dropped (a newer
    // fetch committed first, or the lease was lost).
    bool dropped() const { return last_failure && is_dropped(last_failure->kind); }
    // The database could not be reached: the customer waits for it.
    bool database_down() const { return last_failure && is_database_outage(last_failure->kind); }
    // The deletion guard held the load: nothing of the window changed.
    bool held() const { return committed && counts.held; }
};

// Syncs one window. Each attempt first takes a fetch ticket (load/fencing.hpp)
// so its load is dropped should a later fetch of the window commit first.
// A response that fits in the context's response_hold is kept unparsed until
// it ends (so its request's place in the limiter is free as soon as the body
// is in, whatever the loader's pace); when its digest (response_fingerprint, then the body) equals the
// one the window's last complete load recorded, and the window may be
// confirmed, the loader confirms it without it being parsed at all
// (confirm_unparsed, load/window_loader.hpp). Any other response is parsed and loaded.
// Fetch, parse and database failures are the outcome, each classified into its
// kind; a dropped response (stale_fetch, lease_lost) is logged as
// window.dropped and neither recorded in the ledger nor counted as failed. An exception no stage classifies (a programming
// error: internal_error) is never retried: it is counted, recorded in the
// ledger and logged with the window, then rethrown for the customer's loop.
// `cfg` and `customer` must outlive the call.
boost::asio::awaitable<window_outcome> sync_window(window_context& context, const config& cfg,
                                                   const customer_config& customer,
                                                   const window& w);

// What names the running executable: "build-id " and the build ID the
// linker wrote into it, else "xxh3-128 " and the content_digest of its file
// (a binary linked without one); "" when neither can be had. Read once.
const std::string& executable_digest();

// What decides how a response body becomes rows, other than the body: the
// running executable (executable_digest: another build may parse or load the
// same body differently), the API time zone, the field limit, the date criteria
// and the privacy rule for contact names with its key. A response digest is
// content_digest over this, then the body. Returned as hex; never holds the key.
std::string response_fingerprint(const config& cfg);

// The kind of an exception that ended a customer's cycle: a database failure's
// kind (load/database_failure.hpp), else internal_error.
failure_kind kind_of(const std::exception& error);

}  // namespace comeback
