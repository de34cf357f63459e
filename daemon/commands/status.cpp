// `status`: the sync state per customer, read from the database (the
// sync_status view), so it works on any host that can reach it.

#include "commands/commands.hpp"

#include "config/config.hpp"
#include "exit_codes.hpp"
#include "load/ledger.hpp"
#include "model/timestamp.hpp"
#include "sync/database.hpp"
#include "observability/progress.hpp"
#include "sync/summary.hpp"

#include <boost/json.hpp>
#include <pqxx/pqxx>

#include <iostream>

namespace comeback {

namespace {

std::string day_text(const std::optional<date::local_days>& day) {
    return day ? date::format("%F", *day) : "";
}

std::string age_text(const std::optional<instant>& at, instant now) {
    if (!at) return "never";
    return human_duration(std::chrono::floor<std::chrono::seconds>(now - *at)) + " ago";
}

boost::json::value optional_text(const std::optional<std::string>& text) {
    return text ? boost::json::value(*text) : boost::json::value(nullptr);
}

}  // namespace

int status_command(const command_line& line, const config& cfg) {
    auto connection = open_database(cfg.database);
    const std::vector<customer_status> rows = read_sync_status(*connection, cfg.database.schema);
    const instant now = std::chrono::floor<std::chrono::microseconds>(std::chrono::system_clock::now());

    // Configured customers without ledger rows yet still get a line.
    std::vector<customer_status> all = rows;
    for (const auto& customer : cfg.customers) {
        const bool listed = std::any_of(rows.begin(), rows.end(),
                                        [&](const customer_status& s) { return s.customer_id == customer.id; });
        if (!listed) {
            customer_status unseen;
            unseen.customer_id = customer.id;
            all.push_back(std::move(unseen));
        }
    }

    const std::optional<std::string> warning = insecure_http_warning(cfg);
    if (line.json) {
        boost::json::array customers;
        for (const auto& s : all) {
            boost::json::object item;
            item["customer_id"] = s.customer_id;
            item["last_success"] = s.last_success ? boost::json::value(format_utc(*s.last_success))
                                                  : boost::json::value(nullptr);
            item["freshness_seconds"] =
                s.last_success ? boost::json::value(std::chrono::floor<std::chrono::seconds>(now - *s.last_success).count())
                               : boost::json::value(nullptr);
            item["windows_complete"] = s.windows_complete;
            item["windows_failed"] = s.windows_failed;
            item["windows_pending"] = s.windows_pending;
            item["stalest_window"] = s.stalest_window_first_day
                                         ? boost::json::value(day_text(s.stalest_window_first_day))
                                         : boost::json::value(nullptr);
            item["last_error"] = optional_text(s.last_error);
            customers.push_back(std::move(item));
        }
        boost::json::object document;
        document["schema"] = cfg.database.schema;
        document["customers"] = std::move(customers);
        // Settings that weaken security while they are on, as sentences.
        boost::json::array warnings;
        if (warning) warnings.emplace_back(*warning);
        document["warnings"] = std::move(warnings);
        std::cout << boost::json::serialize(document) << '\n';
        return exit_ok;
    }

    std::vector<std::vector<std::string>> table;
    for (const auto& s : all) {
        table.push_back({s.customer_id, s.last_success ? format_utc(*s.last_success) : "never",
                         age_text(s.last_success, now), std::to_string(s.windows_complete),
                         std::to_string(s.windows_failed), std::to_string(s.windows_pending),
                         day_text(s.stalest_window_first_day), s.last_error.value_or("")});
    }
    if (warning) std::cout << "WARNING: " << *warning << "\n\n";
    std::cout << render_table({"customer", "last success", "freshness", "complete", "failed", "pending",
                               "stalest window", "last error"},
                              table);
    return exit_ok;
}

}  // namespace comeback
