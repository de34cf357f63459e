#include "sync/status_snapshot.hpp"

#include "model/timestamp.hpp"
#include "plan/schedule.hpp"

#include <date/tz.h>

#include <algorithm>
#include <functional>
#include <map>

namespace comeback {

namespace {

using window_sink = std::function<void(const customer_ledger_entry&)>;

// The snapshot of `statuses` and of the windows `feed` hands, one at a time,
// to the sink it is given.
status_snapshot build(const std::vector<customer_status>& statuses,
                      const std::function<void(const window_sink&)>& feed, const config& cfg,
                      instant now, std::span<const std::size_t> strip_pages) {
    std::map<std::string, status_customer> customers;
    for (const customer_config& configured : cfg.customers) {
        customers[configured.id].customer_id = configured.id;
    }
    for (const customer_status& status : statuses) {
        status_customer& customer = customers[status.customer_id];
        customer.customer_id = status.customer_id;
        customer.last_success = status.last_success;
        customer.last_error = status.last_error;
        customer.last_error_at = status.last_error_at;
        customer.last_error_kind = status.last_error_kind;
    }
    for (auto& [id, customer] : customers) {
        customer.configured = std::any_of(cfg.customers.begin(), cfg.customers.end(),
                                          [&](const customer_config& c) { return c.id == id; });
    }
    // The strips of the pages asked for, by the customers' order as listed
    // (a customer planned between the two reads comes without one).
    for (const std::size_t page : strip_pages) {
        const auto [first, last] = status_page_customers(customers.size(), page);
        auto customer = std::next(customers.begin(), static_cast<std::ptrdiff_t>(first));
        for (std::size_t i = first; i < last; ++i, ++customer) customer->second.strip_read = true;
    }

    // The fresh range is the same for every customer: how often each of its
    // windows is due, by first day. History windows never go stale.
    const date::time_zone& zone = find_zone(cfg.vitec.timezone);
    const auto today = std::chrono::floor<date::days>(zone.to_local(now));
    std::map<date::local_days, std::chrono::seconds> refresh_by_first_day;
    for (const window& w : plan_customer(today, cfg.sync, zone).fresh) {
        refresh_by_first_day[w.first_day] = refresh_interval(w, today, cfg.sync);
    }

    status_customer* customer = nullptr;  // of the window before: windows come by customer
    feed([&](const customer_ledger_entry& row) {
        if (!customer || customer->customer_id != row.customer_id) {
            if (customer) trim_strip(*customer);  // held until the next read
            customer = &customers[row.customer_id];
            customer->customer_id = row.customer_id;
        }
        const ledger_entry& entry = row.entry;
        status_window w{entry.first_day, entry.end_day, entry.status, entry.fetched_at};
        const auto refresh = refresh_by_first_day.find(entry.first_day);
        if (entry.status == "complete" && entry.fetched_at && refresh != refresh_by_first_day.end() &&
            now - *entry.fetched_at >= refresh->second) {
            w.state = "stale";
        }
        add_window(*customer, std::move(w));
    });
    if (customer) trim_strip(*customer);

    status_snapshot snapshot;
    snapshot.read_at = now;
    snapshot.customers.reserve(customers.size());
    for (auto& [id, customer] : customers) snapshot.customers.push_back(std::move(customer));
    return snapshot;
}

}  // namespace

status_snapshot build_status_snapshot(const std::vector<customer_status>& statuses,
                                      const std::vector<customer_ledger_entry>& windows,
                                      const config& cfg, instant now,
                                      std::span<const std::size_t> strip_pages) {
    return build(statuses, [&](const window_sink& add) {
        for (const customer_ledger_entry& row : windows) add(row);
    }, cfg, now, strip_pages);
}

status_snapshot read_status_snapshot(pqxx::connection& connection, const config& cfg, instant now,
                                     std::span<const std::size_t> strip_pages) {
    const auto statuses = read_sync_status(connection, cfg.database.schema);
    return build(statuses, [&](const window_sink& add) {
        for_each_ledger_window(connection, cfg.database.schema, cfg.sync.date_criteria,
                               ledger_read_chunk_rows, add);
    }, cfg, now, strip_pages);
}

}  // namespace comeback
