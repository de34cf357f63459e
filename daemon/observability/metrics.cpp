#include "observability/metrics.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>

namespace comeback {
namespace {

constexpr std::string_view prefix = "comeback_sync_";

void header(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out), "# HELP {}{} {}\n# TYPE {}{} {}\n", prefix, name, help,
                   prefix, name, type);
}

// Prometheus accepts Go's float syntax; fmt's shortest round-trip form is one.
std::string number(double value) { return fmt::format("{}", value); }

}  // namespace

std::string escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        switch (c) {
            case '\\': out += "\\\\"; break;
            case '"': out += "\\\""; break;
            case '\n': out += "\\n"; break;
            default: out += c;
        }
    }
    return out;
}

metrics_registry::metrics_registry(std::chrono::seconds poll_interval, clock::time_point started)
    : poll_interval_(poll_interval), started_(started), snapshot_(std::make_unique<snapshot>()) {}

metrics_registry::~metrics_registry() = default;

metrics_registry::customer_series& metrics_registry::series(std::string_view customer,
                                                            clock::time_point now) {
    auto found = customers_.find(customer);
    if (found == customers_.end()) {
        found = customers_.emplace(std::string(customer), customer_series{}).first;
        found->second.label = fmt::format("customer=\"{}\"", escape_label_value(customer));
        found->second.configured = now;
    }
    return found->second;
}

void metrics_registry::set_customers(std::span<const std::string> customer_ids, clock::time_point now) {
    const std::set<std::string, std::less<>> wanted(customer_ids.begin(), customer_ids.end());
    std::lock_guard lock(mutex_);
    std::erase_if(customers_, [&](const auto& entry) { return !wanted.contains(entry.first); });
    for (const auto& id : wanted) series(id, now);
    configured_customers_ = wanted.size();
}

void metrics_registry::set_poll_interval(std::chrono::seconds poll_interval) {
    std::lock_guard lock(mutex_);
    poll_interval_ = poll_interval;
}

void metrics_registry::set_per_customer_series(per_customer_series detail) {
    std::lock_guard lock(mutex_);
    detail_ = detail;
}

void metrics_registry::count_request(std::string_view customer, std::string_view outcome) {
    std::lock_guard lock(mutex_);
    for (auto* s : {&series(customer, clock::now()), &totals_}) {
        auto found = s->requests.find(outcome);
        if (found == s->requests.end()) found = s->requests.emplace(std::string(outcome), 0).first;
        ++found->second;
    }
}

void metrics_registry::count(customer_series& s, const window_rows& rows, double seconds,
                             clock::time_point finished) {
    s.rows.inserted += rows.inserted;
    s.rows.updated += rows.updated;
    s.rows.deleted += rows.deleted;
    s.rows.undeleted += rows.undeleted;
    s.rows.rejected += rows.rejected;
    ++s.windows_ok;
    if (rows.confirmed) ++s.windows_confirmed;
    observe(s.durations, seconds);
    if (!s.succeeded || finished > s.last_success) s.last_success = finished;
    s.succeeded = true;
}

void metrics_registry::window_succeeded(std::string_view customer, const window_rows& rows,
                                        std::chrono::duration<double> duration,
                                        clock::time_point finished) {
    std::lock_guard lock(mutex_);
    count(series(customer, finished), rows, duration.count(), finished);
    count(totals_, rows, duration.count(), finished);
}

void metrics_registry::window_failed(std::string_view customer,
                                     std::chrono::duration<double> duration,
                                     clock::time_point finished) {
    std::lock_guard lock(mutex_);
    for (auto* s : {&series(customer, finished), &totals_}) {
        ++s->windows_failed;
        observe(s->durations, duration.count());
        if (!s->failed || finished > s->last_failure) s->last_failure = finished;
        s->failed = true;
    }
}

void metrics_registry::window_held(std::string_view customer,
                                   std::chrono::duration<double> duration,
                                   clock::time_point finished) {
    std::lock_guard lock(mutex_);
    for (auto* s : {&series(customer, finished), &totals_}) {
        ++s->windows_held;
        observe(s->durations, duration.count());
    }
}

bool metrics_registry::in_trouble(const customer_series& s, clock::time_point now) const {
    if (s.held_now > 0) return true;  // deletions wait for an operator's check
    const auto limit = 3 * poll_interval_;  // the health rule's, per customer
    if (!s.succeeded) return s.failed || now - s.configured > limit;
    return s.failed && (s.last_failure >= s.last_success || now - s.last_failure <= limit);
}

void metrics_registry::listener_connections_open(std::size_t open) {
    std::lock_guard lock(mutex_);
    listener_.open = open;
}

void metrics_registry::listener_dropped(connection_drop reason) {
    std::lock_guard lock(mutex_);
    switch (reason) {
        case connection_drop::limit: ++listener_.dropped_limit; break;
        case connection_drop::timeout: ++listener_.dropped_timeout; break;
        case connection_drop::memory: ++listener_.dropped_memory; break;
    }
}

void metrics_registry::listener_responded(unsigned status) {
    std::lock_guard lock(mutex_);
    ++listener_.responses[status];
}

void metrics_registry::listener_accept_failed() {
    std::lock_guard lock(mutex_);
    ++listener_.accept_errors;
}

void metrics_registry::set_windows_held(std::string_view customer, std::size_t held) {
    std::lock_guard lock(mutex_);
    series(customer, clock::now()).held_now = held;
}

void metrics_registry::observe(histogram& h, double seconds) {
    for (std::size_t i = 0; i < std::size(duration_buckets); ++i) {
        if (seconds <= duration_buckets[i]) ++h.buckets[i];
    }
    ++h.count;
    h.sum += seconds;
}

void metrics_registry::watch_request_starts(std::shared_ptr<const wait_stats> stats) {
    std::lock_guard lock(mutex_);
    request_starts_ = std::move(stats);
}

void metrics_registry::watch_database_checkouts(std::shared_ptr<const wait_stats> stats) {
    std::lock_guard lock(mutex_);
    database_checkouts_ = std::move(stats);
}

void metrics_registry::set_database(bool up, std::string reason, std::optional<clock::time_point> last_ok) {
    std::lock_guard lock(mutex_);
    if (!up && database_up_) database_down_since_ = clock::now();
    database_up_ = up;
    database_reason_ = std::move(reason);
    if (last_ok) database_last_ok_ = last_ok;
}

health_status metrics_registry::health(clock::time_point now) const {
    std::lock_guard lock(mutex_);
    return health_locked(now);
}

health_status metrics_registry::health_locked(clock::time_point now) const {
    if (!database_up_) {
        const auto down = std::chrono::duration_cast<std::chrono::seconds>(now - database_down_since_);
        return {false, fmt::format("database unreachable for {}s: {}", std::max<long long>(0, down.count()),
                                   database_reason_)};
    }
    const auto allowed = 3 * poll_interval_;
    // The totals' latest success is every customer's latest: one read, not a
    // walk over thousands of customers under the mutex every window's update
    // takes, however often /healthz is asked.
    const bool any_success = totals_.succeeded;
    const clock::time_point latest = any_success ? std::max(started_, totals_.last_success) : started_;
    const auto quiet = std::chrono::duration_cast<std::chrono::seconds>(now - latest);
    if (quiet <= allowed) return {true, "ok"};
    if (any_success) {
        return {false, fmt::format("no customer has succeeded for {}s (limit: 3 poll intervals = {}s)",
                                   quiet.count(), allowed.count())};
    }
    return {false, fmt::format("no customer has succeeded since start {}s ago (limit: 3 poll "
                               "intervals = {}s)",
                               quiet.count(), allowed.count())};
}

struct metrics_registry::snapshot {
    // The series each family shows: every customer's, or the totals' (first,
    // with the label empty) and those of the customers in trouble.
    std::vector<customer_series> shown;
    // Every customer that has succeeded, in either mode: label, seconds since.
    std::vector<std::pair<std::string, double>> freshness;
    std::size_t configured_customers = 0;
    std::size_t in_trouble = 0;
    bool database_up = true;
    std::optional<clock::time_point> database_last_ok;
    bool healthy = true;
    std::shared_ptr<const wait_stats> request_starts;
    std::shared_ptr<const wait_stats> database_checkouts;
    listener_series listener;
    std::uint64_t renders = 0;
};

namespace {

// Puts `value` at `at` of `into`, reusing what the element held before (its
// strings', maps' and vectors' memory), so a render like the last allocates
// nothing while the registry is locked.
template <class T>
void put(std::vector<T>& into, std::size_t at, const T& value) {
    if (at < into.size()) {
        into[at] = value;
    } else {
        into.push_back(value);
    }
}

}  // namespace

void metrics_registry::take_snapshot(clock::time_point now, snapshot& taken) const {
    std::lock_guard lock(mutex_);
    std::size_t shown = 0;
    std::size_t fresh = 0;
    taken.in_trouble = 0;
    if (detail_ == per_customer_series::trouble) {
        put(taken.shown, shown++, totals_);
        // The totals' held windows are every customer's held now.
        for (const auto& [id, s] : customers_) taken.shown.front().held_now += s.held_now;
    }
    for (const auto& [id, s] : customers_) {
        const bool trouble = in_trouble(s, now);
        taken.in_trouble += trouble ? 1 : 0;
        if (detail_ == per_customer_series::all || trouble) put(taken.shown, shown++, s);
        if (s.succeeded) {
            const auto age = std::chrono::duration<double>(now - s.last_success).count();
            if (fresh == taken.freshness.size()) taken.freshness.emplace_back();
            taken.freshness[fresh].first = s.label;
            taken.freshness[fresh++].second = std::max(0.0, age);
        }
    }
    taken.shown.resize(shown);
    taken.freshness.resize(fresh);
    taken.configured_customers = configured_customers_;
    taken.database_up = database_up_;
    taken.database_last_ok = database_last_ok_;
    taken.healthy = health_locked(now).healthy;
    taken.request_starts = request_starts_;
    taken.database_checkouts = database_checkouts_;
    taken.listener = listener_;
    taken.renders = renders_made_;
}

std::string metrics_registry::render_prometheus(clock::time_point now) const {
    // One render at a time: they share the snapshot's memory.
    std::lock_guard rendering(render_mutex_);
    take_snapshot(now, *snapshot_);
    return format(*snapshot_, std::string());
}

void metrics_registry::set_render_sharing(std::chrono::milliseconds while_sent) {
    std::lock_guard rendering(render_mutex_);
    share_while_sent_ = while_sent;
}

std::shared_ptr<const std::string> metrics_registry::render_shared(std::chrono::steady_clock::time_point at) const {
    std::lock_guard rendering(render_mutex_);
    // use_count: answers hold copies only ever made here, under render_mutex_.
    if (latest_ && latest_.use_count() > 1 && at - latest_at_ < share_while_sent_) return latest_;
    std::string buffer;
    if (latest_ && latest_.use_count() == 1) {
        // No answer holds it, and none can take it but through here: its
        // memory is the next render's.
        buffer = std::move(*latest_);
    }
    latest_.reset();
    {
        std::lock_guard lock(mutex_);
        ++renders_made_;
    }
    take_snapshot(clock::now(), *snapshot_);
    latest_ = std::make_shared<std::string>(format(*snapshot_, std::move(buffer)));
    latest_at_ = at;
    return latest_;
}

std::string metrics_registry::format(const snapshot& taken, std::string out) {
    const auto& shown = taken.shown;
    const auto& listener = taken.listener;
    // Room for the whole render at once, and for the HTTP head the listener
    // puts in front of it (metrics_http.cpp): a buffer of megabytes grown by
    // doubling, or copied to add a head, has its new pages faulted in anew.
    // A reused buffer far larger (the customers fewer since) is let go.
    const std::size_t room = 128 * 1024 + 80 * taken.freshness.size() + 2'000 * shown.size();
    out.clear();
    if (out.capacity() > 2 * room) out.shrink_to_fit();  // assigning an empty string would keep it
    out.reserve(room);
    auto it = std::back_inserter(out);
    // One sample: the subject's customer label (empty for the totals), then `more`.
    auto line = [&](std::string_view name, std::string_view customer, std::string_view more,
                    const auto& value) {
        const std::string_view comma = !customer.empty() && !more.empty() ? "," : "";
        if (customer.empty() && more.empty()) {
            fmt::format_to(it, "{}{} {}\n", prefix, name, value);
        } else {
            fmt::format_to(it, "{}{}{{{}{}{}}} {}\n", prefix, name, customer, comma, more, value);
        }
    };
    std::string labels;  // scratch for `outcome="..."`
    std::vector<std::string> bucket_labels;
    for (double bound : duration_buckets) bucket_labels.push_back(fmt::format("le=\"{}\"", number(bound)));

    header(out, "requests_total", "counter",
           "Window attempts (one request each) by customer and outcome: rows, or the failure kind that ended it.");
    for (const auto& s : shown) {
        for (const auto& [outcome, count] : s.requests) {
            labels = fmt::format("outcome=\"{}\"", escape_label_value(outcome));
            line("requests_total", s.label, labels, count);
        }
    }

    header(out, "rows_total", "counter",
           "Comeback rows changed by committed windows, by customer and change.");
    for (const auto& s : shown) {
        line("rows_total", s.label, R"(change="inserted")", s.rows.inserted);
        line("rows_total", s.label, R"(change="updated")", s.rows.updated);
        line("rows_total", s.label, R"(change="deleted")", s.rows.deleted);
        line("rows_total", s.label, R"(change="undeleted")", s.rows.undeleted);
        line("rows_total", s.label, R"(change="rejected")", s.rows.rejected);
    }

    header(out, "windows_total", "counter", "Windows finished, by customer and result.");
    for (const auto& s : shown) {
        line("windows_total", s.label, R"(result="ok")", s.windows_ok);
        line("windows_total", s.label, R"(result="failed")", s.windows_failed);
        line("windows_total", s.label, R"(result="held")", s.windows_held);
    }

    header(out, "windows_held", "gauge",
           "Windows whose load the deletion guard holds now (status held in the ledger).");
    for (const auto& s : shown) {
        line("windows_held", s.label, "", s.held_now);
    }

    header(out, "windows_confirmed_total", "counter",
           "Committed windows confirmed by their content digest instead of compared row by row.");
    for (const auto& s : shown) line("windows_confirmed_total", s.label, "", s.windows_confirmed);

    header(out, "window_duration_seconds", "histogram",
           "Time from a window's first request to its commit or failure.");
    for (const auto& s : shown) {
        // Buckets are cumulative in the exposition format, as observe() keeps them.
        for (std::size_t i = 0; i < std::size(duration_buckets); ++i) {
            line("window_duration_seconds_bucket", s.label, bucket_labels[i], s.durations.buckets[i]);
        }
        line("window_duration_seconds_bucket", s.label, R"(le="+Inf")", s.durations.count);
        line("window_duration_seconds_sum", s.label, "", number(s.durations.sum));
        line("window_duration_seconds_count", s.label, "", s.durations.count);
    }

    header(out, "last_success_timestamp_seconds", "gauge",
           "Unix time of the customer's last committed window (without a customer label: of any customer's).");
    for (const auto& s : shown) {
        if (!s.succeeded) continue;
        const auto seconds = std::chrono::duration<double>(s.last_success.time_since_epoch());
        line("last_success_timestamp_seconds", s.label, "", number(seconds.count()));
    }

    // Every customer in either mode: staleness is what an operator alerts on.
    header(out, "freshness_seconds", "gauge",
           "Seconds since the customer's last committed window.");
    for (const auto& [label, age] : taken.freshness) line("freshness_seconds", label, "", number(age));

    header(out, "customers", "gauge", "Customers in the configuration.");
    line("customers", "", "", taken.configured_customers);

    header(out, "customers_in_trouble", "gauge",
           "Customers whose last window failed or with a failed window within 3 poll intervals.");
    line("customers_in_trouble", "", "", taken.in_trouble);

    header(out, "database_up", "gauge",
           "1 while the database answers the daemon's probe, else 0.");
    fmt::format_to(std::back_inserter(out), "{}database_up {}\n", prefix, taken.database_up ? 1 : 0);

    header(out, "database_last_ok_timestamp_seconds", "gauge",
           "Unix time of the last probe the database answered.");
    if (taken.database_last_ok) {
        fmt::format_to(std::back_inserter(out), "{}database_last_ok_timestamp_seconds {}\n", prefix,
                       number(std::chrono::duration<double>(taken.database_last_ok->time_since_epoch()).count()));
    }

    header(out, "healthy", "gauge",
           "1 while the database answers and some customer succeeded within 3 poll intervals, else 0 (/healthz).");
    line("healthy", "", "", taken.healthy ? 1 : 0);

    // A bounded resource's waits (model/wait_stats.hpp): how many wait now,
    // how many were given it, and their waits in all.
    struct wait_series {
        std::string_view waiting, started, wait_seconds;     // names
        std::string_view waiting_help, started_help, wait_help;
    };
    auto waits = [&](const wait_stats& stats, const wait_series& names) {
        header(out, names.waiting, "gauge", names.waiting_help);
        line(names.waiting, "", "", stats.waiting.load(std::memory_order_relaxed));
        header(out, names.started, "counter", names.started_help);
        line(names.started, "", "", stats.started.load(std::memory_order_relaxed));
        header(out, names.wait_seconds, "counter", names.wait_help);
        line(names.wait_seconds, "", "",
             number(static_cast<double>(stats.wait_microseconds.load(std::memory_order_relaxed)) / 1e6));
    };
    if (taken.request_starts) {
        waits(*taken.request_starts,
              {"requests_waiting", "requests_started_total", "request_start_wait_seconds_total",
               "Requests waiting for their start at the request limiter (a free slot, or the next start "
               "vitec.max_requests_per_second allows).",
               "Requests the request limiter started.",
               "Seconds the started requests waited for their start at the request limiter, in all."});
    }
    if (taken.database_checkouts) {
        waits(*taken.database_checkouts,
              {"database_sessions_waiting", "database_sessions_started_total",
               "database_session_wait_seconds_total",
               "Database work (loads, fetch tickets, ledger reads) waiting for a session of the pool now "
               "(every one of database.pool_size in use, or waiting for one to come back).",
               "Database sessions the pool handed out.",
               "Seconds the handed-out sessions waited for the pool, in all."});
    }

    header(out, "metrics_connections_open", "gauge", "Connections open to the /metrics listener.");
    line("metrics_connections_open", "", "", listener.open);

    header(out, "metrics_connections_dropped_total", "counter",
           "Connections the /metrics listener closed before their answer was taken: reason limit "
           "(metrics.max_connections were open, the oldest made room), timeout (metrics.request_timeout "
           "ran out) or memory (the answers being sent held over their budget, the oldest sender made room).");
    line("metrics_connections_dropped_total", "", "reason=\"limit\"", listener.dropped_limit);
    line("metrics_connections_dropped_total", "", "reason=\"timeout\"", listener.dropped_timeout);
    line("metrics_connections_dropped_total", "", "reason=\"memory\"", listener.dropped_memory);

    header(out, "metrics_responses_total", "counter", "Answers of the /metrics listener by HTTP status code.");
    for (const auto& [status, count] : listener.responses) {
        line("metrics_responses_total", "", fmt::format("code=\"{}\"", status), count);
    }

    header(out, "metrics_accept_errors_total", "counter",
           "Connections the /metrics listener failed to accept (e.g. out of file descriptors).");
    line("metrics_accept_errors_total", "", "", listener.accept_errors);

    header(out, "metrics_renders_total", "counter",
           "Renders of /metrics the listener made; the answers in between shared the latest.");
    line("metrics_renders_total", "", "", taken.renders);
    return out;
}

}  // namespace comeback
