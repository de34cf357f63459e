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
    : poll_interval_(poll_interval), started_(started) {}

metrics_registry::customer_series& metrics_registry::series(std::string_view customer) {
    auto found = customers_.find(customer);
    if (found == customers_.end()) {
        found = customers_.emplace(std::string(customer), customer_series{}).first;
    }
    return found->second;
}

void metrics_registry::set_customers(std::span<const std::string> customer_ids) {
    const std::set<std::string, std::less<>> wanted(customer_ids.begin(), customer_ids.end());
    std::lock_guard lock(mutex_);
    std::erase_if(customers_, [&](const auto& entry) { return !wanted.contains(entry.first); });
    for (const auto& id : wanted) series(id);
    configured_customers_ = wanted.size();
}

void metrics_registry::set_poll_interval(std::chrono::seconds poll_interval) {
    std::lock_guard lock(mutex_);
    poll_interval_ = poll_interval;
}

void metrics_registry::count_request(std::string_view customer, std::string_view outcome) {
    std::lock_guard lock(mutex_);
    auto& requests = series(customer).requests;
    auto found = requests.find(outcome);
    if (found == requests.end()) found = requests.emplace(std::string(outcome), 0).first;
    ++found->second;
}

void metrics_registry::window_succeeded(std::string_view customer, const window_rows& rows,
                                        std::chrono::duration<double> duration,
                                        clock::time_point finished) {
    std::lock_guard lock(mutex_);
    auto& s = series(customer);
    s.rows.inserted += rows.inserted;
    s.rows.updated += rows.updated;
    s.rows.deleted += rows.deleted;
    s.rows.undeleted += rows.undeleted;
    s.rows.rejected += rows.rejected;
    ++s.windows_ok;
    if (rows.confirmed) ++s.windows_confirmed;
    observe(s.durations, duration.count());
    if (!s.succeeded || finished > s.last_success) s.last_success = finished;
    s.succeeded = true;
}

void metrics_registry::window_failed(std::string_view customer,
                                     std::chrono::duration<double> duration) {
    std::lock_guard lock(mutex_);
    auto& s = series(customer);
    ++s.windows_failed;
    observe(s.durations, duration.count());
}

void metrics_registry::observe(histogram& h, double seconds) {
    for (std::size_t i = 0; i < std::size(duration_buckets); ++i) {
        if (seconds <= duration_buckets[i]) ++h.buckets[i];
    }
    ++h.count;
    h.sum += seconds;
}

health_status metrics_registry::health(clock::time_point now) const {
    std::lock_guard lock(mutex_);
    return health_locked(now);
}

health_status metrics_registry::health_locked(clock::time_point now) const {
    const auto allowed = 3 * poll_interval_;
    clock::time_point latest = started_;
    bool any_success = false;
    for (const auto& [id, s] : customers_) {
        if (s.succeeded) {
            any_success = true;
            latest = std::max(latest, s.last_success);
        }
    }
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

std::string metrics_registry::render_prometheus(clock::time_point now) const {
    std::lock_guard lock(mutex_);
    std::string out;
    auto line = [&](std::string_view name, std::string_view labels, std::string_view value) {
        fmt::format_to(std::back_inserter(out), "{}{}{{{}}} {}\n", prefix, name, labels, value);
    };
    auto customer_label = [](const std::string& id) {
        return fmt::format("customer=\"{}\"", escape_label_value(id));
    };

    header(out, "requests_total", "counter",
           "Window attempts (one request each) by customer and outcome: rows, or the failure kind that ended it.");
    for (const auto& [id, s] : customers_) {
        for (const auto& [outcome, count] : s.requests) {
            line("requests_total",
                 fmt::format("{},outcome=\"{}\"", customer_label(id), escape_label_value(outcome)),
                 std::to_string(count));
        }
    }

    header(out, "rows_total", "counter",
           "Comeback rows changed by committed windows, by customer and change.");
    for (const auto& [id, s] : customers_) {
        const std::pair<std::string_view, std::uint64_t> changes[] = {
            {"inserted", s.rows.inserted},   {"updated", s.rows.updated},
            {"deleted", s.rows.deleted},     {"undeleted", s.rows.undeleted},
            {"rejected", s.rows.rejected}};
        for (const auto& [change, count] : changes) {
            line("rows_total", fmt::format("{},change=\"{}\"", customer_label(id), change),
                 std::to_string(count));
        }
    }

    header(out, "windows_total", "counter", "Windows finished, by customer and result.");
    for (const auto& [id, s] : customers_) {
        line("windows_total", customer_label(id) + ",result=\"ok\"", std::to_string(s.windows_ok));
        line("windows_total", customer_label(id) + ",result=\"failed\"",
             std::to_string(s.windows_failed));
    }

    header(out, "windows_confirmed_total", "counter",
           "Committed windows confirmed by their content digest instead of compared row by row.");
    for (const auto& [id, s] : customers_) {
        line("windows_confirmed_total", customer_label(id), std::to_string(s.windows_confirmed));
    }

    header(out, "window_duration_seconds", "histogram",
           "Time from a window's first request to its commit or failure.");
    for (const auto& [id, s] : customers_) {
        const auto label = customer_label(id);
        // Buckets are cumulative in the exposition format, as observe() keeps them.
        for (std::size_t i = 0; i < std::size(duration_buckets); ++i) {
            line("window_duration_seconds_bucket",
                 fmt::format("{},le=\"{}\"", label, number(duration_buckets[i])),
                 std::to_string(s.durations.buckets[i]));
        }
        line("window_duration_seconds_bucket", label + ",le=\"+Inf\"",
             std::to_string(s.durations.count));
        line("window_duration_seconds_sum", label, number(s.durations.sum));
        line("window_duration_seconds_count", label, std::to_string(s.durations.count));
    }

    header(out, "last_success_timestamp_seconds", "gauge",
           "Unix time of the customer's last committed window.");
    for (const auto& [id, s] : customers_) {
        if (!s.succeeded) continue;
        const auto seconds = std::chrono::duration<double>(s.last_success.time_since_epoch());
        line("last_success_timestamp_seconds", customer_label(id), number(seconds.count()));
    }

    header(out, "freshness_seconds", "gauge",
           "Seconds since the customer's last committed window.");
    for (const auto& [id, s] : customers_) {
        if (!s.succeeded) continue;
        const auto age = std::chrono::duration<double>(now - s.last_success);
        line("freshness_seconds", customer_label(id), number(std::max(0.0, age.count())));
    }

    header(out, "customers", "gauge", "Customers in the configuration.");
    fmt::format_to(std::back_inserter(out), "{}customers {}\n", prefix, configured_customers_);

    header(out, "healthy", "gauge",
           "1 while some customer succeeded within 3 poll intervals, else 0 (/healthz).");
    fmt::format_to(std::back_inserter(out), "{}healthy {}\n", prefix,
                   health_locked(now).healthy ? 1 : 0);
    return out;
}

}  // namespace comeback
