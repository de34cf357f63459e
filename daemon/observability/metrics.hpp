#pragma once
// The daemon's counters, gauges and histograms, and the health rule, in one
// thread-safe registry. Rendering follows the Prometheus text exposition format
// (version 0.0.4). No Asio or Beast here: metrics_server.hpp serves it.
//
// Metric names (all prefixed comeback_sync_):
//   requests_total{customer,outcome}          counter; one per window attempt (one
//                                             request each); outcome is rows, or the
//                                             label of the failure kind that ended it
//                                             (model/failure.hpp: throttled, transient,
//                                             database_lost, ...)
//   rows_total{customer,change}               counter; change is inserted, updated,
//                                             deleted, undeleted or rejected
//   windows_total{customer,result}            counter; result is ok, failed or held
//   windows_held{customer}                    gauge, windows whose deletions wait now
//                                             (the total: of every customer)
//   window_duration_seconds{customer}         histogram of whole windows (fetch + load)
//   last_success_timestamp_seconds{customer}  gauge, Unix time; absent before the first
//   freshness_seconds{customer}               gauge, seconds since the last success;
//                                             absent before the first
//   customers                                 gauge, configured customers
//   customers_in_trouble                      gauge, customers with a recent failure
//   healthy                                   gauge, 1 or 0 (the /healthz rule)
//   database_up                               gauge, 1 or 0: the database probe's
//                                             last word (daemon/sync/database_monitor)
//   database_last_ok_timestamp_seconds        gauge, Unix time of the last probe the
//                                             database answered; absent before the first
//   requests_waiting                          gauge, requests waiting for their start at
//                                             the request limiter now (a free slot, or the
//                                             next start max_requests_per_second allows)
//   requests_started_total                    counter; requests the limiter started
//   request_start_wait_seconds_total          counter; the time they waited for it
//   database_sessions_waiting                 gauge, database work waiting for a session
//                                             of the pool now (all database.pool_size
//                                             out, or one about to come back)
//   database_sessions_started_total           counter; sessions the pool handed out
//   database_session_wait_seconds_total       counter; the time they waited for one
//   metrics_connections_open                  gauge, connections open to the listener
//   metrics_connections_dropped_total{reason} counter; connections the listener closed
//                                             before their answer was taken: limit
//                                             (max_connections), timeout (request_timeout)
//                                             or memory (the answers being sent over
//                                             their budget)
//   metrics_responses_total{code}             counter; the listener's answers by status
//   metrics_accept_errors_total               counter; failed accepts (e.g. out of
//                                             file descriptors)
//   metrics_renders_total                     counter; renders of /metrics made for the
//                                             listener (render_shared): the answers
//                                             in between shared the latest
//
// Detail (metrics.per_customer_series): with `all`, every series above carries
// every customer. With `trouble` (the default), freshness_seconds still does,
// and every other series is a total over all customers without the customer
// label, plus the same series with the label for each customer in trouble: its
// last window failed, a window of it failed within 3 poll intervals, it has
// had no success in the 3 poll intervals since it was configured, or the
// deletion guard holds windows of it. The
// totals count every customer, so they never go down when a customer enters or
// leaves trouble; last_success_timestamp_seconds' total is the latest success
// of any customer. A scrape then grows with the customers by one freshness line
// each, not by the 26 series each has in full.
//
// Health: unhealthy while the database probe says the database does not
// answer (or the database workers are stuck), and when no customer has
// succeeded for 3 poll intervals. The clock starts when the registry is
// created, so a fresh start has 3 poll intervals of grace.
//
// Customer ids are labels, so no secret can reach a metric through this API.

#include <chrono>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/values.hpp"
#include "model/wait_stats.hpp"

namespace comeback {

// Why the /metrics listener closed a connection without answering it.
enum class connection_drop {
    limit,    // metrics.max_connections were open: the oldest made room for a new one
    timeout,  // the request, or the taking of its response, outlasted metrics.request_timeout
    memory,   // the answers being sent held over their budget: the one sent longest made room
};

// What one committed window changed (the loader's load_counts, by value).
struct window_rows {
    std::uint64_t inserted = 0;
    std::uint64_t updated = 0;
    std::uint64_t deleted = 0;
    std::uint64_t undeleted = 0;
    std::uint64_t rejected = 0;
    bool confirmed = false;  // confirmed by its content digest, not compared row by row
};

struct health_status {
    bool healthy = true;
    std::string reason;  // why not healthy, for /healthz and logs; "ok" when healthy
};

class metrics_registry {
public:
    using clock = std::chrono::system_clock;

    // `started` is when the health grace period begins.
    explicit metrics_registry(std::chrono::seconds poll_interval,
                              clock::time_point started = clock::now());
    ~metrics_registry();
    metrics_registry(const metrics_registry&) = delete;
    metrics_registry& operator=(const metrics_registry&) = delete;

    // After a reload. Customers no longer configured lose their series;
    // new ones start without a last success, configured at `now`.
    void set_customers(std::span<const std::string> customer_ids, clock::time_point now = clock::now());
    void set_poll_interval(std::chrono::seconds poll_interval);
    // metrics.per_customer_series; `trouble` until set.
    void set_per_customer_series(per_customer_series detail);

    // One attempt at one window, by outcome (outcome_label() of model/failure.hpp).
    void count_request(std::string_view customer, std::string_view outcome);

    // A window committed: counts its rows, its duration and the customer's last success.
    void window_succeeded(std::string_view customer, const window_rows& rows,
                          std::chrono::duration<double> duration,
                          clock::time_point finished = clock::now());
    // A window that ended without a commit (all attempts failed, auth, database).
    void window_failed(std::string_view customer, std::chrono::duration<double> duration,
                       clock::time_point finished = clock::now());
    // A window the deletion guard held: nothing of it changed, so it is no success.
    void window_held(std::string_view customer, std::chrono::duration<double> duration,
                     clock::time_point finished = clock::now());
    // How many of the customer's windows are held now (from its ledger). A
    // customer with held windows is in trouble.
    void set_windows_held(std::string_view customer, std::size_t held);

    // The database probe's word: up, or down with the reason, and when it
    // last answered (none yet: absent).
    void set_database(bool up, std::string reason, std::optional<clock::time_point> last_ok);

    health_status health(clock::time_point now = clock::now()) const;

    // Where the request limiter counts its starts (model/wait_stats.hpp);
    // read at each render. Null: the three series are absent.
    void watch_request_starts(std::shared_ptr<const wait_stats> stats);
    // Where the database pool counts its checkouts (sync/db_workers.hpp,
    // count_checkouts); read at each render. Null: the three series are absent.
    void watch_database_checkouts(std::shared_ptr<const wait_stats> stats);

    // The /metrics listener's own connections and answers (metrics_server).
    void listener_connections_open(std::size_t open);
    void listener_dropped(connection_drop reason);
    void listener_responded(unsigned status);
    void listener_accept_failed();

    // For the /metrics listener: the registry rendered, one render shared by
    // every answer that sends it. The latest render is given again instead of
    // a new one while an answer still holds it (a client is still taking it)
    // and it is younger than `while_sent` (set_render_sharing; 0 until set, so
    // every call renders). Clients flooding the listener, or many that never
    // read, then share a few renders instead of holding one each: a render of
    // 19 MB (10,000 customers in full detail) times max_connections would be
    // gigabytes. A scrape when no answer is being sent (Prometheus's, scrapes
    // one after another) always gets a new render: /metrics and /healthz agree.
    // Ages are measured on the steady clock at `at`. A new render writes into
    // the latest's buffer when no answer holds it any more: a scrape of
    // megabytes then reuses pages already faulted in (the daemon has glibc map
    // every buffer over 8 MiB anew, sync/response_hold.hpp).
    std::shared_ptr<const std::string> render_shared(
        std::chrono::steady_clock::time_point at = std::chrono::steady_clock::now()) const;
    void set_render_sharing(std::chrono::milliseconds while_sent);

    // The whole registry in Prometheus text format, rendered anew. Never throws
    // except std::bad_alloc. The registry's mutex is held only while what the
    // render shows is copied (about 1/20 of the render's time), not while it is
    // formatted.
    std::string render_prometheus() const { return render_prometheus(clock::now()); }
    std::string render_prometheus(clock::time_point now) const;

    // Upper bounds (seconds) of the window duration histogram buckets; +Inf is implied.
    static constexpr double duration_buckets[] = {0.05, 0.1, 0.25, 0.5, 1,   2.5,
                                                   5,    10,  30,   60,  120, 300};

private:
    struct histogram {
        std::vector<std::uint64_t> buckets = std::vector<std::uint64_t>(std::size(duration_buckets), 0);
        std::uint64_t count = 0;
        double sum = 0;
    };
    struct customer_series {
        std::string label;  // `customer="..."`, escaped once; empty for the totals
        std::map<std::string, std::uint64_t, std::less<>> requests;  // by outcome
        window_rows rows;
        std::uint64_t windows_ok = 0;
        std::uint64_t windows_confirmed = 0;  // of windows_ok
        std::uint64_t windows_failed = 0;
        std::uint64_t windows_held = 0;
        std::size_t held_now = 0;  // windows held in the ledger now; the totals' is not kept
        histogram durations;
        bool succeeded = false;
        clock::time_point last_success{};
        bool failed = false;
        clock::time_point last_failure{};
        clock::time_point configured{};  // since when it has been expected to succeed
    };

    // What a render shows, copied under mutex_ so that formatting it (most of
    // a render's time: 40 ms at 10,000 customers in full detail) holds up no
    // update on the sync's threads. Copied into the last render's snapshot, so
    // the copy reuses its memory instead of allocating under the lock.
    struct snapshot;
    void take_snapshot(clock::time_point now, snapshot& into) const;
    // Into `out`, which is emptied first; its memory is kept unless it is far
    // larger than this render needs.
    static std::string format(const snapshot& shown, std::string out);

    customer_series& series(std::string_view customer, clock::time_point now);  // mutex_ held
    static void count(customer_series& s, const window_rows& rows, double seconds,
                      clock::time_point finished);
    static void observe(histogram& h, double seconds);
    bool in_trouble(const customer_series& s, clock::time_point now) const;  // mutex_ held
    health_status health_locked(clock::time_point now) const;

    mutable std::mutex mutex_;
    std::chrono::seconds poll_interval_;
    clock::time_point started_;
    std::map<std::string, customer_series, std::less<>> customers_;
    customer_series totals_;  // every event of every customer, dropped ones included
    std::size_t configured_customers_ = 0;
    per_customer_series detail_ = per_customer_series::trouble;
    bool database_up_ = true;  // until a probe says otherwise
    std::string database_reason_;
    clock::time_point database_down_since_{};
    std::optional<clock::time_point> database_last_ok_;
    std::shared_ptr<const wait_stats> request_starts_;
    std::shared_ptr<const wait_stats> database_checkouts_;
    struct listener_series {
        std::size_t open = 0;
        std::uint64_t dropped_limit = 0;
        std::uint64_t dropped_timeout = 0;
        std::uint64_t dropped_memory = 0;
        std::map<unsigned, std::uint64_t> responses;  // by status code
        std::uint64_t accept_errors = 0;
    } listener_;
    mutable std::uint64_t renders_made_ = 0;  // by render_shared; mutex_ held
    mutable std::mutex render_mutex_;      // one render at a time; taken before mutex_
    std::unique_ptr<snapshot> snapshot_;  // render_mutex_ held
    // render_shared's latest render, when it was made, and how it is reused;
    // render_mutex_ held.
    // Not const itself, so a render nobody holds can give its memory to the
    // next; answers get it as const.
    mutable std::shared_ptr<std::string> latest_;
    mutable std::chrono::steady_clock::time_point latest_at_{};
    std::chrono::milliseconds share_while_sent_{0};
};

// Escapes a label value for the text format: backslash, double quote, newline.
std::string escape_label_value(std::string_view value);

}  // namespace comeback
